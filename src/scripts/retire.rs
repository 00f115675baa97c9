//! `lua/retire.lua` and `lua/drop_retired.lua`: a campaign or sale leaves
//! the live registry, then, when its time comes, its keys go in one step.

use fred::{prelude::*, types::scripts::Script};

use super::{int, text, unexpected};
use crate::keys::{CouponKeys, SaleKeys};

pub struct Retire(pub(super) Script);
pub struct DropRetired(pub(super) Script);

/// The keys of the campaign or sale being retired, and what it is.
pub enum Owner<'a> {
    Coupon(u64, &'a CouponKeys),
    Sale(u64, &'a SaleKeys),
}

impl Owner<'_> {
    /// Its name in the `retiring` zset: `coupon:ID` or `sale:ID`.
    pub fn member(&self) -> String {
        match self {
            Owner::Coupon(id, _) => format!("coupon:{id}"),
            Owner::Sale(id, _) => format!("sale:{id}"),
        }
    }

    fn meta(&self) -> &str {
        match self {
            Owner::Coupon(_, k) => &k.meta,
            Owner::Sale(_, k) => &k.meta,
        }
    }
}

/// What `retire.lua` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retired {
    /// Marked retired; its keys go at `delete_at` (ms): the caller moves it
    /// from the registry to `retiring`.
    Retired { delete_at: u64 },
    /// It no longer is as the caller saw it (not ended, events or
    /// reservations left, rows differ, replaced): nothing changed.
    Changed,
    /// Its meta is gone.
    Gone,
}

/// What `drop_retired.lua` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    Dropped,
    /// Created again since it retired, or already gone: left alone.
    Revived,
    /// A reservation holds its coupon `until` (ms): tried again at `again`.
    Held {
        until: u64,
        again: u64,
    },
}

/// What the caller saw: the end, and the rows MySQL holds (issued users or orders).
pub struct Seen {
    pub ends_at: u64,
    pub rows: u64,
}

/// When its keys go: `retain_ms` after `ends_at`, and no sooner than
/// `at_least_ms` from now.
pub struct Keep {
    pub retain_ms: u64,
    pub at_least_ms: u64,
}

impl Retire {
    /// Retires `owner` if it ended when `seen` says, its outbox is empty, a
    /// sale holds no reservation, and Redis holds as many users (campaign) or
    /// orders (sale) as `seen` says MySQL has.
    pub async fn call(&self, client: &Client, owner: &Owner<'_>, seen: Seen, keep: &Keep) -> Result<Retired, Error> {
        let (id, kind, keys) = match owner {
            Owner::Coupon(id, k) => (*id, "coupon", [&k.meta, &k.outbox, &k.users, &k.meta]),
            Owner::Sale(id, k) => (*id, "sale", [&k.meta, &k.outbox, &k.orders, &k.deadlines]),
        };
        let k: Vec<&str> = keys.iter().map(|s| s.as_str()).collect();
        let args = vec![
            id.to_string(),
            owner.member(),
            kind.to_string(),
            seen.ends_at.to_string(),
            seen.rows.to_string(),
            keep.retain_ms.to_string(),
            keep.at_least_ms.to_string(),
        ];
        let answer: Vec<Value> = self.0.evalsha_with_reload(client, k, args).await?;
        match text(answer.first()).as_deref() {
            Some("retired") => match answer.get(1).and_then(int) {
                Some(at) => Ok(Retired::Retired { delete_at: at.max(0) as u64 }),
                None => Err(unexpected("retire", &Value::Array(answer))),
            },
            Some("changed") => Ok(Retired::Changed),
            Some("gone") => Ok(Retired::Gone),
            _ => Err(unexpected("retire", &Value::Array(answer))),
        }
    }
}

impl DropRetired {
    /// Deletes every key of `owner` if it is still retired and no reservation
    /// holds its coupon until `margin_ms` ago.
    pub async fn call(&self, client: &Client, owner: &Owner<'_>, margin_ms: u64) -> Result<Dropped, Error> {
        let mut k: Vec<&str> = vec![owner.meta()];
        let joined = match owner {
            Owner::Coupon(_, keys) => {
                k.extend(keys.all().into_iter().filter(|key| *key != keys.meta));
                &keys.room.joined
            }
            Owner::Sale(_, keys) => {
                k.extend(keys.all().into_iter().filter(|key| *key != keys.meta));
                &keys.room.joined
            }
        };
        let args = vec![margin_ms.to_string(), joined.clone()];
        let answer: Vec<Value> = self.0.evalsha_with_reload(client, k, args).await?;
        match text(answer.first()).as_deref() {
            Some("dropped") => Ok(Dropped::Dropped),
            Some("revived") => Ok(Dropped::Revived),
            Some("held") => match (answer.get(1).and_then(int), answer.get(2).and_then(int)) {
                (Some(until), Some(again)) => {
                    Ok(Dropped::Held { until: until.max(0) as u64, again: again.max(0) as u64 })
                }
                _ => Err(unexpected("drop_retired", &Value::Array(answer))),
            },
            _ => Err(unexpected("drop_retired", &Value::Array(answer))),
        }
    }
}
