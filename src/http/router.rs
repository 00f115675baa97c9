//! Routing: method and path to handler. Errors become replies here and only here.
//!
//! The request timeout cuts a request short only while nothing it asked for
//! was sent (see `caller`): it is then answered 503 `timeout`, truthfully
//! "not done". A request whose write was sent waits for Redis's real answer,
//! which Redis's command timeout bounds.

use std::{
    convert::Infallible,
    future::Future,
    net::IpAddr,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use futures_util::FutureExt;
use hyper::{body::Incoming, Method, Request};

use super::{
    coupon, dashboard,
    error::{ApiError, Write},
    health,
    idle::Watch,
    issue, mine, order, pay, queue, rankings, reserve,
    respond::Reply,
    sale,
    surface::Surface,
    wait, wallet,
};
use crate::{
    app::App,
    caller::{self, Caller},
    keys::Room,
    metrics::{Route, METRICS},
};

/// How many Redis command timeouts a sent request may still take: three script
/// calls (a wallet payment's hold, debit and settle; a confirmation and the
/// release of a late order are two), each of which may reload its script
/// (three commands). Only a bug outlasts it.
const SENT_COMMANDS: u32 = 9;

/// How long a request that sent a write still waits for its answers.
fn backstop(redis_timeout: Duration) -> Duration {
    redis_timeout * SENT_COMMANDS + Duration::from_secs(1)
}

/// The longest a request can still be at work: its timeout, then the backstop.
pub fn longest_request(request_timeout: Duration, redis_timeout: Duration) -> Duration {
    request_timeout + backstop(redis_timeout)
}

/// Answers a request. Most answers need no await (polls, sold out): those are
/// made right here, as hyper hands the request over, so the request (and the
/// read buffer it holds) is let go before hyper reads on, and no timer is armed.
/// `watch`: the connection's, told of the request (see `idle`).
pub fn route(app: Arc<App>, surface: Surface, peer: IpAddr, req: Request<Incoming>, watch: &Arc<Watch>) -> Answer {
    let started = Instant::now();
    watch.arrived();
    let route = classify(req.uri().path());
    if let Some(result) = answer_now(&app, surface, peer, &req, route) {
        return Answer::Made(Some(answered(route, started, result)));
    }
    let caller = Caller::new();
    let guarded = {
        let app = app.clone();
        async move {
            if !surface.serves(req.uri().path()) {
                return Err(ApiError::NotFound(req.uri().path().to_string()));
            }
            if req.uri().path().starts_with("/v1/") {
                app.guard.check_ip(peer, req.headers())?;
            }
            if route == Route::QueueJoin {
                app.guard.check_join(peer, req.headers())?;
            }
            dispatch(&app, surface, req).await
        }
    };
    let mut work = Box::pin(caller::scope(caller.clone(), caught(guarded)));
    // A first poll with a waker that does nothing: if the handler must wait,
    // the poll of `Answer::Working` hands it the real one.
    if let Poll::Ready(result) = work.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        return Answer::Made(Some(answered(route, started, result)));
    }
    let busy = watch.busy();
    Answer::Working(Box::pin(async move {
        // Polled again before the timer is armed: a body that came with the
        // head is read by now (hyper reads it after handing the request over),
        // so a refusal such as sold out still costs no timer.
        let again = std::future::poll_fn(|cx| Poll::Ready(work.as_mut().poll(cx))).await;
        let result = if let Poll::Ready(result) = again {
            result
        } else {
            tokio::select! {
                result = &mut work => result,
                () = tokio::time::sleep(app.http.request_timeout()) => {
                    if caller.give_up() {
                        Err(ApiError::Timeout)
                    } else {
                        match tokio::time::timeout(backstop(app.redis_timeout), &mut work).await {
                            Ok(result) => result,
                            Err(_) => Err(write_of(route).map_or(ApiError::Internal, ApiError::OutcomeUnknown)),
                        }
                    }
                }
            }
        };
        drop(busy);
        answered(route, started, result)
    }))
}

/// A request's answer: made at once, or still at work (boxed: hyper moves
/// this future around, and most answers are made at once).
pub enum Answer {
    Made(Option<Reply>),
    Working(Pin<Box<dyn Future<Output = Reply> + Send>>),
}

impl Future for Answer {
    type Output = Result<Reply, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            // Taken once; a poll after that (a misuse) waits forever.
            Answer::Made(reply) => reply.take().map_or(Poll::Pending, |reply| Poll::Ready(Ok(reply))),
            Answer::Working(work) => work.as_mut().poll(cx).map(Ok),
        }
    }
}

/// The reply to a request, counted.
fn answered(route: Route, started: Instant, result: Result<Reply, ApiError>) -> Reply {
    let reply = result.unwrap_or_else(ApiError::into_reply);
    METRICS.request(route, reply.status().as_u16(), started.elapsed());
    reply
}

/// The answers made without building a future: a waiting room's poll that
/// the process's view answers (nearly every poll). None: the full path,
/// which also gives every error of a path or method this does not take.
fn answer_now(
    app: &App,
    surface: Surface,
    peer: IpAddr,
    req: &Request<Incoming>,
    route: Route,
) -> Option<Result<Reply, ApiError>> {
    let path = req.uri().path();
    if route != Route::QueuePoll || req.method() != Method::GET || !surface.serves(path) {
        return None;
    }
    let (kind, rest) = path
        .strip_prefix("/v1/sales/")
        .map(|r| ("sale", r))
        .or_else(|| path.strip_prefix("/v1/coupons/").map(|r| ("coupon", r)))?;
    let mut parts = rest.split('/');
    let (id, ticket) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(id), Some("queue"), Some(ticket), None) => (super::decimal::canonical(id)?, ticket),
        _ => return None,
    };
    let room = if kind == "sale" { Room::Sale(id) } else { Room::Coupon(id) };
    if let Err(e) = app.guard.check_ip(peer, req.headers()) {
        return Some(Err(e));
    }
    queue::poll_now(app, room, ticket)
}

/// The write a route makes, if any.
fn write_of(route: Route) -> Option<Write> {
    match route {
        Route::IssueCoupon => Some(Write::IssueCoupon),
        Route::ReserveOrder => Some(Write::ReserveOrder),
        Route::ConfirmOrder => Some(Write::ConfirmOrder),
        Route::CancelOrder => Some(Write::CancelOrder),
        Route::ChargeWallet => Some(Write::ChargeWallet),
        Route::PayOrder => Some(Write::PayOrder),
        _ => None,
    }
}

/// A panic is a bug, counted and logged by the hook in `panics`. The client
/// still gets an answer (500 `internal`) rather than a dropped connection;
/// only this request's future is abandoned, as tokio would abandon the task.
async fn caught(handler: impl Future<Output = Result<Reply, ApiError>>) -> Result<Reply, ApiError> {
    AssertUnwindSafe(handler).catch_unwind().await.unwrap_or(Err(ApiError::Internal))
}

/// The metrics route of a path (by shape only; ids are not checked here).
fn classify(path: &str) -> Route {
    if let Some(rest) = path.strip_prefix("/v1/coupons/") {
        return match rest.split('/').count() {
            2 if rest.ends_with("/issue") => Route::IssueCoupon,
            2 if rest.ends_with("/queue") => Route::QueueJoin,
            3 if rest.split('/').nth(1) == Some("queue") => Route::QueuePoll,
            _ => Route::GetCoupon,
        };
    }
    if let Some(rest) = path.strip_prefix("/v1/sales/") {
        return match rest.split('/').count() {
            1 => Route::GetSale,
            2 if rest.ends_with("/queue") => Route::QueueJoin,
            2 => Route::ReserveOrder,
            3 if rest.split('/').nth(1) == Some("queue") => Route::QueuePoll,
            3 => Route::GetOrder,
            _ if rest.ends_with("/confirm") => Route::ConfirmOrder,
            _ if rest.ends_with("/cancel") => Route::CancelOrder,
            _ if rest.ends_with("/pay") => Route::PayOrder,
            _ => Route::Other,
        };
    }
    if let Some(rest) = path.strip_prefix("/v1/wallets/") {
        return match rest.split_once('/') {
            None => Route::GetWallet,
            Some((_, "charge")) => Route::ChargeWallet,
            Some((_, "transactions")) => Route::WalletTransactions,
            Some(_) => Route::Other,
        };
    }
    if let Some(rest) = path.strip_prefix("/v1/users/") {
        return match rest.split_once('/') {
            Some((_, "coupons")) => Route::MyCoupons,
            Some((_, "orders")) => Route::MyOrders,
            _ => Route::Other,
        };
    }
    match path {
        "/v1/rankings/products" => Route::Rankings,
        "/v1/queue/challenge" => Route::QueueChallenge,
        _ if path.starts_with("/wait/") => Route::WaitPage,
        "/healthz" | "/readyz" => Route::Health,
        "/metrics" => Route::Metrics,
        _ if path.starts_with("/dashboard") || path.starts_with("/v1/dashboard") => Route::Dashboard,
        _ => Route::Other,
    }
}

/// Each handler's future is boxed: inline, the largest one (readyz) would size
/// every request's future (17 KB, copied per request and held while in flight).
async fn dispatch(app: &App, surface: Surface, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let path = req.uri().path();
    if let Some(rest) = path.strip_prefix("/v1/coupons/") {
        let mut parts = rest.split('/');
        let id = parts.next().unwrap_or("");
        return match (parts.next(), parts.next(), parts.next()) {
            (Some("issue"), None, _) => {
                let id = coupon_id(id)?;
                allow(&req, &Method::POST, "POST")?;
                Box::pin(issue::handle(app, id, req)).await
            }
            (None, ..) => {
                let id = coupon_id(id)?;
                allow(&req, &Method::GET, "GET")?;
                Box::pin(coupon::handle(app, id)).await
            }
            (Some("queue"), None, _) => {
                let room = Room::Coupon(coupon_id(id)?);
                allow(&req, &Method::POST, "POST")?;
                Box::pin(queue::join(app, room, req)).await
            }
            (Some("queue"), Some(ticket), None) => {
                let room = Room::Coupon(coupon_id(id)?);
                allow(&req, &Method::GET, "GET")?;
                Box::pin(queue::poll(app, room, ticket)).await
            }
            _ => Err(ApiError::NotFound(path.to_string())),
        };
    }
    if let Some(rest) = path.strip_prefix("/v1/sales/") {
        let mut parts = rest.split('/');
        let sale_id = id(parts.next().unwrap_or(""), "sale")?;
        return match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (None, ..) => {
                allow(&req, &Method::GET, "GET")?;
                Box::pin(sale::get(app, sale_id)).await
            }
            (Some("queue"), None, ..) => {
                allow(&req, &Method::POST, "POST")?;
                Box::pin(queue::join(app, Room::Sale(sale_id), req)).await
            }
            (Some("queue"), Some(ticket), None, _) => {
                allow(&req, &Method::GET, "GET")?;
                Box::pin(queue::poll(app, Room::Sale(sale_id), ticket)).await
            }
            (Some("orders"), None, ..) => {
                allow(&req, &Method::POST, "POST")?;
                Box::pin(reserve::handle(app, sale_id, req)).await
            }
            (Some("orders"), Some(order_id), None, _) => {
                let order_id = id(order_id, "order")?;
                allow(&req, &Method::GET, "GET")?;
                Box::pin(order::get(app, sale_id, order_id, req.headers())).await
            }
            (Some("orders"), Some(order_id), Some(action @ ("confirm" | "cancel")), None) => {
                let order_id = id(order_id, "order")?;
                allow(&req, &Method::POST, "POST")?;
                if action == "confirm" {
                    Box::pin(order::confirm(app, sale_id, order_id, req)).await
                } else {
                    Box::pin(order::cancel(app, sale_id, order_id, req.headers())).await
                }
            }
            (Some("orders"), Some(order_id), Some("pay"), None) => {
                let order_id = id(order_id, "order")?;
                allow(&req, &Method::POST, "POST")?;
                Box::pin(pay::handle(app, sale_id, order_id, req)).await
            }
            _ => Err(ApiError::NotFound(path.to_string())),
        };
    }
    if let Some(rest) = path.strip_prefix("/v1/wallets/") {
        let (user, action) = rest.split_once('/').map_or((rest, None), |(u, a)| (u, Some(a)));
        let user_id = id(user, "user")?;
        return match action {
            None => {
                allow(&req, &Method::GET, "GET")?;
                Box::pin(wallet::get(app, user_id, req.headers())).await
            }
            Some("charge") => {
                allow(&req, &Method::POST, "POST")?;
                Box::pin(wallet::charge(app, user_id, req)).await
            }
            Some("transactions") => {
                allow(&req, &Method::GET, "GET")?;
                Box::pin(wallet::transactions(app, user_id, req.headers(), req.uri().query())).await
            }
            Some(_) => Err(ApiError::NotFound(path.to_string())),
        };
    }
    if let Some(rest) = path.strip_prefix("/v1/users/") {
        let Some((user, what)) = rest.split_once('/') else { return Err(ApiError::NotFound(path.to_string())) };
        let user_id = id(user, "user")?;
        return match what {
            "coupons" => {
                allow(&req, &Method::GET, "GET")?;
                Box::pin(mine::coupons(app, user_id, req.headers())).await
            }
            "orders" => {
                allow(&req, &Method::GET, "GET")?;
                Box::pin(mine::orders(app, user_id, req.headers(), req.uri().query())).await
            }
            _ => Err(ApiError::NotFound(path.to_string())),
        };
    }
    if let Some(rest) = path.strip_prefix("/wait/") {
        let room = match rest.split_once('/') {
            Some(("sales", id)) => Room::Sale(self::id(id, "sale")?),
            Some(("coupons", id)) => Room::Coupon(coupon_id(id)?),
            _ => return Err(ApiError::NotFound(path.to_string())),
        };
        allow(&req, &Method::GET, "GET")?;
        return Box::pin(wait::page(app, room)).await;
    }
    match path {
        "/v1/queue/challenge" => {
            allow(&req, &Method::GET, "GET")?;
            Box::pin(queue::challenge(app, req.uri().query())).await
        }
        "/v1/rankings/products" => {
            allow(&req, &Method::GET, "GET")?;
            Box::pin(rankings::get(app, req.uri().query())).await
        }
        "/dashboard" => {
            allow(&req, &Method::GET, "GET")?;
            dashboard::page()
        }
        "/v1/dashboard/stats" => {
            allow(&req, &Method::GET, "GET")?;
            Box::pin(dashboard::stats(app, req.uri().query())).await
        }
        "/metrics" => {
            allow(&req, &Method::GET, "GET")?;
            Ok(super::respond::text(crate::metrics::render(), "text/plain; version=0.0.4"))
        }
        "/healthz" => {
            allow(&req, &Method::GET, "GET")?;
            health::healthz()
        }
        "/readyz" => {
            allow(&req, &Method::GET, "GET")?;
            Box::pin(health::readyz(app, surface.names_servers())).await
        }
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
    id(text, "coupon")
}

/// A path id: `invalid_<what>_id` when it is not a u64 written canonically
/// (digits only: no sign, no leading zero), so one resource has one path.
fn id(text: &str, what: &'static str) -> Result<u64, ApiError> {
    super::decimal::canonical(text).ok_or_else(|| {
        let code = match what {
            "coupon" => "invalid_coupon_id",
            "sale" => "invalid_sale_id",
            "user" => "invalid_user_id",
            _ => "invalid_order_id",
        };
        ApiError::BadRequest(code, format!("{what} id must be an integer from 0 to 2^64-1, got `{text}`"))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use super::*;

    async fn deliberate_panic() -> Result<Reply, ApiError> {
        panic!("a deliberate panic in a handler (router test)")
    }

    #[tokio::test]
    async fn a_panicking_handler_is_answered_500_internal_and_counted() {
        crate::panics::install_hook();
        let before = METRICS.panics.load(Relaxed);
        let reply = caught(deliberate_panic()).await.unwrap_or_else(ApiError::into_reply);
        assert_eq!(reply.status(), hyper::StatusCode::INTERNAL_SERVER_ERROR);
        assert!(METRICS.panics.load(Relaxed) > before, "the hook counted it");
        assert!(crate::metrics::render().contains("\nflashsale_panics_total "));
    }
}
