//! The waiting room's scripts (`lua/queue_*.lua`, sharing `lua/lib/queue.lua`).

use fred::{prelude::*, types::scripts::Script};

use super::{int, text, unexpected};
use crate::{durability::Ack, keys::QueueKeys};

pub struct QueueScripts {
    pub(super) setup: Script,
    pub(super) join: Script,
    pub(super) admit: Script,
    pub(super) seen: Script,
    pub(super) state: Script,
    pub(super) fate: Script,
    pub(super) ack: Ack,
}

/// A waiting room's settings (`sale create --queue`, `coupon create --queue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    pub admit_per_second: u32,
    pub admission_ttl_ms: u64,
    pub opens_before_ms: u64,
    pub poll_grace_ms: u64,
    /// Attempts a join's proof of work takes (0: none asked).
    pub pow_difficulty: u32,
    /// Where the waiting page sends an admitted user (`--return-url`).
    pub return_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    /// `again`: the user was already waiting, or admitted and not lapsed.
    Joined {
        join: u64,
        again: bool,
        pre: Option<u64>,
        served: u64,
    },
    /// No such sale or campaign.
    Unknown,
    NoQueue,
    NotStarted {
        opens: u64,
    },
    Ended,
    SoldOut,
    /// The room asks for proof of work, and none was shown.
    PowRequired,
    /// The solved challenge shown was used before.
    PowReused,
}

/// One admitter call's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmitOutcome {
    Admitted { served: u64, joins: u64, admitted: u64, skipped: u64, remaining: u64 },
    NotStarted,
    NoQueue,
}

/// What every poll needs, read a few times a second per process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueState {
    pub joins: u64,
    /// Joins before the start: fixed once it passed.
    pub pre: Option<u64>,
    pub served: u64,
    pub remaining: u64,
    pub admissions_unused: u64,
    pub admitted_total: u64,
    pub epoch: u64,
    pub draw_key: String,
    pub spec: QueueSpec,
    pub starts_at: u64,
    /// When the units ran out (ms), as the admitter saw it; None while some remain.
    pub sold_out_at: Option<u64>,
}

impl QueueScripts {
    /// Gives the sale a fresh waiting room (`Some`) or none; `epoch` is when it opens.
    pub async fn setup(
        &self,
        client: &Client,
        keys: &QueueKeys,
        spec: Option<&QueueSpec>,
        draw_key: &str,
        epoch: u64,
    ) -> Result<(), Error> {
        let k: Vec<&str> = keys.all().to_vec();
        let args: Vec<String> = match spec {
            None => vec!["off".into()],
            Some(s) => vec![
                "on".into(),
                s.admit_per_second.to_string(),
                s.admission_ttl_ms.to_string(),
                s.opens_before_ms.to_string(),
                s.poll_grace_ms.to_string(),
                draw_key.into(),
                epoch.to_string(),
                s.pow_difficulty.to_string(),
                s.return_url.clone().unwrap_or_default(),
            ],
        };
        let _: Value = self.ack.evalsha(&self.setup, client, k, args).await?;
        Ok(())
    }

    /// Joins `requests` in order in one call: each a user and, when shown and
    /// checked, the nonce and expiry (ms) of their solved challenge.
    pub async fn join(
        &self,
        client: &Client,
        keys: &QueueKeys,
        requests: &[(u64, Option<(String, u64)>)],
    ) -> Result<Vec<JoinOutcome>, Error> {
        let mut args = Vec::with_capacity(3 * requests.len());
        for (user, pow) in requests {
            let (nonce, expires) =
                pow.as_ref().map_or((String::new(), String::new()), |(n, e)| (n.clone(), e.to_string()));
            args.extend([user.to_string(), nonce, expires]);
        }
        let answers: Vec<Value> = self.ack.evalsha(&self.join, client, keys.all().to_vec(), args).await?;
        if answers.len() != requests.len() {
            return Err(unexpected("queue_join", &Value::Array(answers)));
        }
        answers.into_iter().map(join_outcome).collect()
    }

    /// Admits up to `most` places' worth (admitted or skipped) in one call.
    pub async fn admit(&self, client: &Client, keys: &QueueKeys, most: u32) -> Result<AdmitOutcome, Error> {
        let answer: Vec<Value> =
            self.ack.evalsha(&self.admit, client, keys.all().to_vec(), vec![most.to_string()]).await?;
        let n = |i: usize| answer.get(i).and_then(int).map(|v| v.max(0) as u64).unwrap_or(0);
        Ok(match text(answer.first()).as_deref() {
            Some("admitted") => {
                AdmitOutcome::Admitted { served: n(1), joins: n(2), admitted: n(4), skipped: n(5), remaining: n(6) }
            }
            Some("not_started") => AdmitOutcome::NotStarted,
            Some("no_queue") => AdmitOutcome::NoQueue,
            _ => return Err(unexpected("queue_admit", &Value::Array(answer))),
        })
    }

    /// Records that `joins` were polled just now (those still waiting).
    pub async fn seen(&self, client: &Client, keys: &QueueKeys, joins: &[u64]) -> Result<(), Error> {
        let args: Vec<String> = joins.iter().map(u64::to_string).collect();
        let _: Value = self
            .seen
            .evalsha_with_reload(client, vec![keys.room.queue.as_str(), keys.room.marks.as_str()], args)
            .await?;
        Ok(())
    }

    /// The room's state; None without a queue.
    pub async fn state(&self, client: &Client, keys: &QueueKeys) -> Result<Option<QueueState>, Error> {
        let answer: Vec<Value> =
            self.state.evalsha_with_reload(client, keys.all().to_vec(), Vec::<String>::new()).await?;
        if answer.is_empty() {
            return Ok(None);
        }
        let n = |i: usize| answer.get(i).and_then(int).map(|v| v.max(0) as u64);
        let bad = || unexpected("queue_state", &Value::Array(answer.clone()));
        Ok(Some(QueueState {
            joins: n(0).ok_or_else(bad)?,
            pre: n(1),
            served: n(2).unwrap_or(0),
            remaining: n(3).unwrap_or(0),
            admissions_unused: n(4).unwrap_or(0),
            admitted_total: n(5).unwrap_or(0),
            epoch: n(6).unwrap_or(0),
            draw_key: text(answer.get(7)).unwrap_or_default(),
            spec: QueueSpec {
                admit_per_second: n(8).unwrap_or(0) as u32,
                admission_ttl_ms: n(9).unwrap_or(0),
                opens_before_ms: 0,
                poll_grace_ms: n(11).unwrap_or(0),
                pow_difficulty: n(12).unwrap_or(0).min(u64::from(u32::MAX)) as u32,
                return_url: text(answer.get(13)).filter(|u| !u.is_empty()),
            },
            starts_at: n(10).unwrap_or(0),
            sold_out_at: n(14),
        }))
    }

    /// The mark of a join whose place was served (lua/lib/queue.lua), read
    /// behind a wait where answers wait for replicas (a poll must not hand out
    /// an admission a failover could take back); None: that join is not
    /// `user`'s (the line was lost since the ticket was signed).
    pub async fn fate(&self, client: &Client, keys: &QueueKeys, join: u64, user: u64) -> Result<Option<u64>, Error> {
        let k = vec![keys.room.marks.as_str(), keys.room.users.as_str()];
        let mark: Value = self.ack.evalsha(&self.fate, client, k, vec![join.to_string(), user.to_string()]).await?;
        match int(&mark) {
            Some(m) if m >= 0 => Ok(Some(m as u64)),
            Some(_) => Ok(None),
            None => Err(unexpected("queue_fate", &mark)),
        }
    }
}

/// One user's answer of `queue_join.lua`.
fn join_outcome(answer: Value) -> Result<JoinOutcome, Error> {
    let answer: Vec<Value> = match answer {
        Value::Array(a) => a,
        other => return Err(unexpected("queue_join", &other)),
    };
    let n = |i: usize| answer.get(i).and_then(int).map(|v| v.max(0) as u64);
    Ok(match text(answer.first()).as_deref() {
        Some(kind @ ("joined" | "again")) => JoinOutcome::Joined {
            join: n(1).ok_or_else(|| unexpected("queue_join", &Value::Array(answer.clone())))?,
            again: kind == "again",
            pre: n(2),
            served: n(3).unwrap_or(0),
        },
        Some("unknown") => JoinOutcome::Unknown,
        Some("no_queue") => JoinOutcome::NoQueue,
        Some("not_started") => JoinOutcome::NotStarted { opens: n(1).unwrap_or(0) },
        Some("ended") => JoinOutcome::Ended,
        Some("sold_out") => JoinOutcome::SoldOut,
        Some("pow_required") => JoinOutcome::PowRequired,
        Some("pow_reused") => JoinOutcome::PowReused,
        _ => return Err(unexpected("queue_join", &Value::Array(answer))),
    })
}
