//! Routing: method and path to handler. Errors become replies here and only here.

use std::{convert::Infallible, sync::Arc};

use hyper::{body::Incoming, Method, Request};

use super::{coupon, error::ApiError, health, issue, respond::Reply};
use crate::app::App;

pub async fn route(app: Arc<App>, req: Request<Incoming>) -> Result<Reply, Infallible> {
    let result = dispatch(&app, req).await;
    Ok(result.unwrap_or_else(ApiError::into_reply))
}

async fn dispatch(app: &App, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let path = req.uri().path();
    if let Some(rest) = path.strip_prefix("/v1/coupons/") {
        return match rest.split_once('/') {
            Some((id, "issue")) => {
                let id = coupon_id(id)?;
                allow(&req, &Method::POST, "POST")?;
                issue::handle(app, id, req).await
            }
            None => {
                let id = coupon_id(rest)?;
                allow(&req, &Method::GET, "GET")?;
                coupon::handle(app, id).await
            }
            Some(_) => Err(ApiError::NotFound(path.to_string())),
        };
    }
    match path {
        "/healthz" => health::healthz(),
        "/readyz" => health::readyz(app).await,
        _ => Err(ApiError::NotFound(path.to_string())),
    }
}

fn allow(req: &Request<Incoming>, method: &Method, allowed: &'static str) -> Result<(), ApiError> {
    if req.method() == method {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed(allowed))
    }
}

fn coupon_id(text: &str) -> Result<u64, ApiError> {
    text.parse().map_err(|_| {
        ApiError::BadRequest(
            "invalid_coupon_id",
            format!("coupon id must be an integer from 0 to 2^64-1, got `{text}`"),
        )
    })
}
