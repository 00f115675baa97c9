//! `POST /v1/sales/{sale}/queue` (join the waiting room) and
//! `GET /v1/sales/{sale}/queue/{ticket}` (where a ticket stands); the same
//! under `/v1/coupons/{id}`.

use hyper::{body::Incoming, header::AUTHORIZATION, Request, StatusCode};
use serde::{Deserialize, Serialize};

use super::{
    body::read_json,
    error::ApiError,
    query::pairs,
    respond::{json, Reply},
};
use crate::{app::App, domain::queue::Status, keys::Room, time::rfc3339_ms};

/// The header that carries an admission to reserve or issue.
pub const ADMISSION: &str = "flashsale-admission";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinRequest {
    /// Required unless auth is on (then the token names the user).
    #[serde(default)]
    user_id: Option<u64>,
    /// A solved proof-of-work challenge, where the room asks for one.
    #[serde(default)]
    altcha: Option<String>,
}

const FIELDS: &[(&str, &str)] =
    &[("user_id", "an integer from 0 to 2^64-1"), ("altcha", "a solved challenge of GET /v1/queue/challenge")];

/// Longest ticket accepted in a path.
const MAX_TICKET: usize = 128;

pub async fn join(app: &App, room: Room, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let authorization = req.headers().get(AUTHORIZATION).cloned();
    let body: JoinRequest = read_json(req, &app.http, FIELDS).await?;
    let user_id = app.guard.user(authorization.as_ref(), body.user_id)?;
    let joined = app.domain.queue.join(room, user_id, body.altcha.as_deref()).await?;
    let view = StatusView { ticket: Some(&joined.ticket), ..StatusView::of(&joined.status) };
    Ok(json(if joined.new { StatusCode::CREATED } else { StatusCode::OK }, &view))
}

/// `GET /v1/queue/challenge?sale=ID` (or `?coupon=ID`): a proof-of-work
/// challenge for joining that room.
pub async fn challenge(app: &App, query: Option<&str>) -> Result<Reply, ApiError> {
    let mut room = None;
    for (name, value) in pairs(query) {
        let id = || {
            crate::http::decimal::canonical(value)
                .ok_or_else(|| ApiError::BadRequest("invalid_query", format!("`{name}` must be an id (a u64)")))
        };
        room = match name {
            "sale" => Some(Room::Sale(id()?)),
            "coupon" => Some(Room::Coupon(id()?)),
            _ => return Err(ApiError::BadRequest("invalid_query", format!("unknown parameter `{name}`"))),
        };
    }
    let room = room.ok_or_else(|| {
        ApiError::BadRequest("invalid_query", "name the waiting room: `?sale=ID` or `?coupon=ID`".into())
    })?;
    let challenge = app.domain.queue.challenge(room).await?;
    Ok(json(StatusCode::OK, &challenge))
}

pub async fn poll(app: &App, room: Room, ticket: &str) -> Result<Reply, ApiError> {
    if ticket.len() > MAX_TICKET {
        return Err(invalid_ticket());
    }
    let status = app.domain.queue.poll(room, ticket).await?;
    Ok(json(StatusCode::OK, &StatusView::of(&status)))
}

/// `poll` when it needs no await (see `router::answer_now`); None: call `poll`.
pub fn poll_now(app: &App, room: Room, ticket: &str) -> Option<Result<Reply, ApiError>> {
    if ticket.len() > MAX_TICKET {
        return Some(Err(invalid_ticket()));
    }
    let status = app.domain.queue.poll_now(room, ticket)?;
    Some(status.map(|s| json(StatusCode::OK, &StatusView::of(&s))).map_err(ApiError::from))
}

fn invalid_ticket() -> ApiError {
    ApiError::from(crate::domain::Error::Refused(crate::domain::Refusal::InvalidTicket))
}

/// A join's or poll's answer (serialised straight: polls are the hot path).
#[derive(Serialize)]
struct StatusView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ticket: Option<&'a str>,
    state: &'static str,
    position: Option<u64>,
    ahead: Option<u64>,
    eta_seconds: Option<u64>,
    poll_after_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    admission: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    admitted_until: Option<String>,
}

impl<'a> StatusView<'a> {
    fn of(s: &'a Status) -> StatusView<'a> {
        StatusView {
            ticket: None,
            state: s.state.as_str(),
            position: s.position,
            ahead: s.ahead,
            eta_seconds: s.eta_seconds,
            poll_after_ms: s.poll_after_ms,
            admission: s.admission.as_ref().map(|(a, _)| a.as_str()),
            admitted_until: s.admission.as_ref().map(|&(_, until)| rfc3339_ms(until)),
        }
    }
}
