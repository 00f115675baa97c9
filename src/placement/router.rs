//! The bucket router: each campaign's and sale's bucket count as this
//! process last learnt it (see `buckets`), one per placement, handed down.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use fred::prelude::*;

use crate::{
    buckets::{walk, Of, MAX_BUCKETS},
    keys::Keys,
};

/// Campaigns and sales remembered at most (a cache: forgotten all at once past it).
const MAX_KNOWN: usize = 10_000;

/// Counts by key prefix, kind and id. One keeps its count for life; an id
/// created again may have another, and the scripts that depend on it (issue,
/// reserve) answer the true one to a caller that believed another.
type Counts = HashMap<String, HashMap<(Of, u64), u32>>;

/// Cheap to clone: the clones share what they learnt.
#[derive(Clone, Default)]
pub struct BucketRouter {
    known: Arc<Mutex<Counts>>,
}

impl BucketRouter {
    /// What this process believes the campaign or sale has: learnt, else 1
    /// (most have none). On the issue path: no allocation.
    pub fn believed(&self, keys: &Keys, of: Of, id: u64) -> u32 {
        self.known(keys, of, id).unwrap_or(1)
    }

    fn known(&self, keys: &Keys, of: Of, id: u64) -> Option<u32> {
        self.known.lock().unwrap().get(keys.prefix()).and_then(|ids| ids.get(&(of, id))).copied()
    }

    /// Remembers that the campaign or sale has `n` buckets.
    pub fn learn(&self, keys: &Keys, of: Of, id: u64, n: u32) {
        let mut known = self.known.lock().unwrap();
        if known.values().map(HashMap::len).sum::<usize>() >= MAX_KNOWN {
            known.clear();
        }
        known.entry(keys.prefix().to_string()).or_default().insert((of, id), n.clamp(1, MAX_BUCKETS));
    }

    /// The campaign's or sale's bucket count as its meta says now (1 when
    /// none or unknown), remembered when it exists.
    pub async fn read(&self, client: &Client, keys: &Keys, of: Of, id: u64) -> Result<u32, Error> {
        let meta = match of {
            Of::Coupon => keys.coupon(id).meta,
            Of::Sale => keys.sale(id).meta,
        };
        let (exists, n): (bool, Option<u32>) = {
            let pipe = client.pipeline();
            let _: () = pipe.exists(&meta).await?;
            let _: () = pipe.hget(&meta, "buckets").await?;
            pipe.all().await?
        };
        let n = n.unwrap_or(1).clamp(1, MAX_BUCKETS);
        if exists {
            self.learn(keys, of, id, n);
        }
        Ok(n)
    }

    /// The count this process learnt, else [`BucketRouter::read`]: one read
    /// per campaign or sale and process (each keeps its count for life).
    pub async fn count(&self, client: &Client, keys: &Keys, of: Of, id: u64) -> Result<u32, Error> {
        match self.known(keys, of, id) {
            Some(n) => Ok(n),
            None => self.read(client, keys, of, id).await,
        }
    }
}

/// For each user, whether some bucket of a campaign of `n` buckets issued
/// the coupon to them (a holder stays one for the campaign's life).
pub async fn holders(client: &Client, keys: &Keys, coupon_id: u64, n: u32, users: &[u64]) -> Result<Vec<bool>, Error> {
    let pipe = client.pipeline();
    for &user in users {
        for bucket in walk(user, n) {
            let _: () = pipe.sismember(keys.coupon_bucket(coupon_id, bucket).users, user).await?;
        }
    }
    let answers: Vec<bool> = pipe.all().await?;
    Ok(answers.chunks(n.max(1) as usize).map(|c| c.iter().any(|&m| m)).collect())
}
