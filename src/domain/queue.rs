//! What the API asks of a waiting room (a sale's or a campaign's): join, poll
//! a ticket, and whether an admission lets a user reserve or be issued. Tickets and admissions are
//! signed (`queue::tickets`); a poll answers from the process's view.

use std::sync::Arc;

use super::{record, refuse, Error, Refusal};
use crate::{
    keys::Room,
    queue::{
        draw,
        pow::Pow,
        tickets::{Admission, Ticket, Tickets},
        Queues, ADMITTED,
    },
    scripts::{JoinOutcome, QueueState},
    time::now_ms,
};

#[derive(Clone)]
pub struct QueueService {
    queues: Queues,
    /// None without FLASHSALE_QUEUE_SECRET: the queue routes refuse.
    tickets: Option<Arc<Tickets>>,
    /// Proof of work (`--pow-difficulty`), keyed from the same secret.
    pow: Option<Arc<Pow>>,
}

/// A join's answer: the ticket, whether it is new, and where it stands.
pub struct Joined {
    pub ticket: String,
    pub new: bool,
    pub status: Status,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Waiting,
    Admitted,
    SoldOut,
    Expired,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Admitted => "admitted",
            State::SoldOut => "sold_out",
            State::Expired => "expired",
        }
    }
}

/// What the process's view tells of a ticket: where it stands, or that its
/// place (the one given) was served, and Redis knows the rest.
enum Standing {
    Known(Status),
    Served(u64),
}

/// Where a ticket stands. `position` and `ahead` are None in the pre-queue
/// (drawn at the start).
pub struct Status {
    pub state: State,
    pub position: Option<u64>,
    pub ahead: Option<u64>,
    pub eta_seconds: Option<u64>,
    pub poll_after_ms: u64,
    /// When admitted: the admission and until when (ms).
    pub admission: Option<(String, u64)>,
}

impl QueueService {
    pub fn new(queues: Queues, secret: Option<&crate::config::Secret>) -> QueueService {
        QueueService {
            queues,
            tickets: secret.map(|s| Arc::new(Tickets::new(s))),
            pow: secret.map(|s| Arc::new(Pow::new(s))),
        }
    }

    fn tickets(&self) -> Result<&Tickets, Error> {
        self.tickets.as_deref().ok_or(Error::Refused(Refusal::QueueNotConfigured))
    }

    /// `altcha`: a solved proof-of-work challenge (needed where the room asks).
    pub async fn join(&self, room: Room, user: u64, altcha: Option<&str>) -> Result<Joined, Error> {
        let result = self.try_join(room, user, altcha).await;
        record("queue_join", &result, |j| if j.new { "joined" } else { "again" });
        result
    }

    async fn try_join(&self, room: Room, user: u64, altcha: Option<&str>) -> Result<Joined, Error> {
        let tickets = self.tickets()?;
        let solved = match (altcha, self.pow.as_deref()) {
            (Some(payload), Some(pow)) => Some(pow.check(room, payload).ok_or(Error::Refused(Refusal::PowInvalid))?),
            _ => None,
        };
        let name = || match room {
            Room::Sale(id) => format!("sale {id}"),
            Room::Coupon(id) => format!("coupon campaign {id}"),
        };
        match self.queues.join(room, user, solved.as_ref()).await? {
            JoinOutcome::Joined { join, again, pre, served } => {
                let ticket = Ticket { room, user, join };
                // A new join's mark was written alive just now: no liveness to send.
                let status = self.status(ticket, Some((pre, served)), again).await?;
                Ok(Joined { ticket: tickets.ticket(ticket), new: !again, status })
            }
            JoinOutcome::Unknown => refuse(match room {
                Room::Sale(id) => Refusal::UnknownSale(id),
                Room::Coupon(id) => Refusal::UnknownCoupon(id),
            }),
            JoinOutcome::NoQueue => refuse(Refusal::NoQueue),
            JoinOutcome::NotStarted { .. } => refuse(Refusal::NotStarted(format!("the waiting room of {}", name()))),
            JoinOutcome::Ended => refuse(Refusal::Ended(name())),
            JoinOutcome::SoldOut => refuse(Refusal::NothingLeft(name())),
            JoinOutcome::PowRequired => refuse(Refusal::PowRequired),
            JoinOutcome::PowReused => refuse(Refusal::PowInvalid),
        }
    }

    /// The room's state as this process sees it (the waiting page's settings).
    pub async fn room(&self, room: Room) -> Result<Arc<QueueState>, Error> {
        self.tickets()?;
        self.queues.state(room).await?.ok_or(Error::Refused(Refusal::NoQueue))
    }

    /// The room's state as this process sees it, for the live view; None: no room.
    pub async fn state(&self, room: Room) -> Result<Option<Arc<QueueState>>, Error> {
        Ok(self.queues.state(room).await?)
    }

    /// A proof-of-work challenge for joining `room` (the ALTCHA widget's JSON).
    pub async fn challenge(&self, room: Room) -> Result<serde_json::Value, Error> {
        let pow = self.pow.as_deref().ok_or(Error::Refused(Refusal::QueueNotConfigured))?;
        let Some(state) = self.queues.state(room).await? else { return refuse(Refusal::NoQueue) };
        if state.spec.pow_difficulty == 0 {
            return refuse(Refusal::PowNotRequired);
        }
        pow.challenge(room, state.spec.pow_difficulty)
            .map_err(|e| Error::Bug(format!("a proof-of-work challenge: {e}")))
    }

    /// Where the ticket `text` of `room` stands.
    pub async fn poll(&self, room: Room, text: &str) -> Result<Status, Error> {
        let ticket = self.read_ticket(room, text)?;
        self.status(ticket, None, true).await
    }

    /// `poll` when it needs no await (nearly always: the process's view is
    /// fresh and the ticket's place not yet served); None: call `poll`.
    pub fn poll_now(&self, room: Room, text: &str) -> Option<Result<Status, Error>> {
        let ticket = match self.read_ticket(room, text) {
            Ok(ticket) => ticket,
            Err(e) => return Some(Err(e)),
        };
        let Some(state) = self.queues.state_now(room)? else { return Some(refuse(Refusal::NoQueue)) };
        match self.status_of(&state, ticket, true) {
            Standing::Known(status) => Some(Ok(status)),
            Standing::Served(_) => None,
        }
    }

    fn read_ticket(&self, room: Room, text: &str) -> Result<Ticket, Error> {
        let ticket = self.tickets()?.read_ticket(text).filter(|t| t.room == room);
        ticket.ok_or(Error::Refused(Refusal::InvalidTicket))
    }

    /// Where `t` stands by the process's view of its room; `fresher`: the
    /// pre-queue size and serving position a join's own answer just gave;
    /// `note`: while waiting, count this as the ticket's poll (liveness).
    async fn status(&self, t: Ticket, fresher: Option<(Option<u64>, u64)>, note: bool) -> Result<Status, Error> {
        let Some(mut state) = self.queues.state(t.room).await? else { return refuse(Refusal::NoQueue) };
        if let Some((pre, served)) = fresher.filter(|&(pre, served)| pre != state.pre || served > state.served) {
            let pre = pre.or(state.pre);
            state = Arc::new(QueueState { pre, served: served.max(state.served), ..(*state).clone() });
        }
        match self.status_of(&state, t, note) {
            Standing::Known(status) => Ok(status),
            Standing::Served(position) => Box::pin(self.decided(&state, t, position, now_ms())).await,
        }
    }

    /// Where `t` stands by `state`, unless its place was served.
    fn status_of(&self, state: &QueueState, t: Ticket, note: bool) -> Standing {
        let now = now_ms();
        let rate = u64::from(state.spec.admit_per_second.max(1));
        let Some(position) = position(state, t.join) else {
            // The pre-queue: drawn at the start.
            if note {
                self.queues.saw(t.room, t.join);
            }
            let until_start = state.starts_at.saturating_sub(now);
            return Standing::Known(Status {
                state: State::Waiting,
                position: None,
                ahead: None,
                eta_seconds: Some(until_start.div_ceil(1000)),
                poll_after_ms: poll_after(state, until_start),
                admission: None,
            });
        };
        if position <= state.served {
            return Standing::Served(position);
        }
        let ahead = position - state.served - 1;
        if state.remaining == 0 {
            return Standing::Known(Status {
                state: State::SoldOut,
                position: Some(position),
                ahead: Some(ahead),
                eta_seconds: None,
                poll_after_ms: poll_after(state, 5_000),
                admission: None,
            });
        }
        if note {
            self.queues.saw(t.room, t.join);
        }
        let eta_ms = ahead * 1000 / rate;
        Standing::Known(Status {
            state: State::Waiting,
            position: Some(position),
            ahead: Some(ahead),
            eta_seconds: Some(eta_ms.div_ceil(1000)),
            poll_after_ms: poll_after(state, eta_ms / 2),
            admission: None,
        })
    }

    /// A ticket whose place was served: admitted (until when), or skipped.
    async fn decided(&self, state: &QueueState, t: Ticket, position: u64, now: u64) -> Result<Status, Error> {
        let mark = self.queues.fate(t.room, t.join, t.user).await?;
        let until = mark.filter(|&m| m >= ADMITTED).map(|m| state.epoch + (m - ADMITTED) * 1000);
        let (state_now, admission) = match until {
            Some(until) if until > now => {
                let admission = Admission { room: t.room, user: t.user, until };
                (State::Admitted, Some((self.tickets()?.admission(admission), until)))
            }
            _ => (State::Expired, None),
        };
        Ok(Status {
            state: state_now,
            position: Some(position),
            ahead: Some(0),
            eta_seconds: Some(0),
            poll_after_ms: poll_after(state, 10_000),
            admission,
        })
    }

    /// Whether `admission` is one this service signed for `user` in `room`,
    /// not lapsed. Checked here without Redis; the reservation and issue
    /// scripts refuse a room's sale or campaign unless it is, and Redis's
    /// record agrees.
    pub fn admitted(&self, room: Room, user: u64, admission: Option<&str>) -> bool {
        self.tickets
            .as_deref()
            .zip(admission)
            .and_then(|(tickets, text)| tickets.read_admission(text))
            .is_some_and(|a| a.room == room && a.user == user && a.until > now_ms())
    }
}

/// A join's place in line (1-based): the pre-queue's drawn places first, then
/// joins in order. None before the start (the draw is not made yet).
fn position(state: &QueueState, join: u64) -> Option<u64> {
    let pre = state.pre?;
    if join > pre {
        Some(join)
    } else {
        Some(draw::place_of(&state.draw_key, pre, join - 1) + 1)
    }
}

/// When to poll again: about `wait_ms`, at least every second, and often
/// enough to stay within the poll grace.
fn poll_after(state: &QueueState, wait_ms: u64) -> u64 {
    let grace = state.spec.poll_grace_ms.max(3_000);
    wait_ms.clamp(1_000, (grace / 3).min(20_000))
}
