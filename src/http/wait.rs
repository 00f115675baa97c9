//! `GET /wait/sales/{sale}` and `/wait/coupons/{id}`: the waiting page a
//! merchant puts in front of a drop (`wait.html`, no external assets). It
//! joins, polls and sends the admitted user to the room's `--return-url`.

use serde_json::json;

use super::{
    error::ApiError,
    respond::{text, Reply},
};
use crate::{app::App, keys::Room};

const PAGE: &str = include_str!("wait.html");

pub async fn page(app: &App, room: Room) -> Result<Reply, ApiError> {
    let state = app.domain.queue.room(room).await?;
    let (api, name, challenge) = match room {
        Room::Sale(id) => (format!("/v1/sales/{id}"), format!("sale {id}"), format!("/v1/queue/challenge?sale={id}")),
        Room::Coupon(id) => {
            (format!("/v1/coupons/{id}"), format!("coupon {id}"), format!("/v1/queue/challenge?coupon={id}"))
        }
    };
    let config = json!({
        "api": api,
        "name": name,
        "challenge": challenge,
        "pow": state.spec.pow_difficulty > 0,
        "return_url": state.spec.return_url,
    });
    // In a <script> element: no `</script>` may close it early.
    let config = config.to_string().replace('<', "\\u003c");
    let mut reply = text(PAGE.replace("ROOM_JSON", &config), "text/html; charset=utf-8");
    reply.headers_mut().insert(
        hyper::header::CONTENT_SECURITY_POLICY,
        hyper::header::HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; \
             img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    Ok(reply)
}
