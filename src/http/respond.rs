//! Building responses: JSON bodies and the common headers.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{header, Response, StatusCode};
use serde::Serialize;

pub type Reply = Response<Full<Bytes>>;

pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Reply {
    // Most answers fit: no regrowing on the way (polls are the hot path).
    let mut body = Vec::with_capacity(256);
    serde_json::to_writer(&mut body, value).expect("replies always serialise");
    let mut reply = Response::new(Full::new(Bytes::from(body)));
    *reply.status_mut() = status;
    reply.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    reply
}

pub fn text(body: String, content_type: &'static str) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(body)));
    reply.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    reply
}
