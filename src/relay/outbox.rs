//! The relay's side of Redis: which outbox streams exist, reading them with
//! the consumer group, claiming entries a gone relay left pending, and
//! forgetting entries once Kafka has them.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicUsize, Ordering::Relaxed},
        Arc,
    },
};

use fred::prelude::*;

use super::liveness;
use crate::{
    events::{CouponIssued, Event, OrderChanged, WalletChanged},
    keys::{Keys, OUTBOX_GROUP, WALLET_SHARDS},
    order::Order,
    placement::StreamReads,
    scripts::Scripts,
};

/// Events per entry assumed before the first read: a spike's entries carry
/// tens of issues (up to 256), a quiet service's one.
const FIRST_GUESS: usize = 16;

/// Entries claimed from a gone relay per round trip.
const CLAIM_SLICE: u64 = 1000;

/// One outbox entry, decoded: the events of one script call (a coupon entry
/// carries every issue of its call, a reservation entry every new order of
/// its call; confirm, cancel and expiry entries one order change each).
pub struct Entry {
    pub stream: Arc<str>,
    pub id: String,
    pub events: Vec<Event>,
}

pub struct Outbox {
    /// Blocking reads park this connection, so it is the relay's alone.
    reader: Client,
    /// Whether one read takes every stream (see `placement`).
    reads: StreamReads,
    redis: Pool,
    scripts: Arc<Scripts>,
    keys: Keys,
    consumer: String,
    /// Outbox keys whose consumer group exists.
    streams: Vec<Arc<str>>,
    /// Events per entry in the last read that found any, rounded up: sizes
    /// the next read (a coupon entry holds a whole script call's issues).
    /// Starts at `FIRST_GUESS`, so a first read after a restart, of entries
    /// written during a spike, stays small.
    per_entry: AtomicUsize,
}

impl Outbox {
    pub fn new(
        reader: Client,
        reads: StreamReads,
        redis: Pool,
        scripts: Arc<Scripts>,
        keys: Keys,
        consumer: String,
    ) -> Self {
        let (streams, per_entry) = (Vec::new(), AtomicUsize::new(FIRST_GUESS));
        Outbox { reader, reads, redis, scripts, keys, consumer, streams, per_entry }
    }

    /// This relay's consumer name in the outbox groups.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Starts this relay's heartbeat (see `liveness`): it expires `ttl_ms`
    /// after the relay stops refreshing it.
    pub async fn heartbeat(&self, ttl_ms: u64) -> liveness::Heartbeat {
        liveness::Heartbeat::start(self.redis.clone(), self.keys.relay_alive(&self.consumer), ttl_ms).await
    }

    /// Makes the next `refresh` check (and create) every stream's group again.
    pub fn forget_streams(&mut self) {
        self.streams.clear();
    }

    pub fn has_streams(&self) -> bool {
        !self.streams.is_empty()
    }

    /// Follows the live campaigns and sales (the registry sets): streams of
    /// ones created since the last call get the relay's group (from 0, so no
    /// entry is skipped; only while their meta exists, see `join_outbox.lua`),
    /// and streams of ones that retired since are no longer read (retirement
    /// waits until a stream is empty, and deletes it only seconds later).
    pub async fn refresh(&mut self) -> Result<(), Error> {
        let coupons: Vec<u64> = self.redis.smembers(self.keys.coupons()).await?;
        let sales: Vec<u64> = self.redis.smembers(self.keys.sales()).await?;
        // Every bucket's outbox (see `buckets`), each joined while its own
        // meta exists: the counts read concurrently.
        let client = self.redis.next();
        let counts: Vec<Option<u32>> = futures_util::future::try_join_all(
            coupons.iter().map(|&id| client.hget::<Option<u32>, _, _>(self.keys.coupon(id).meta, "buckets")),
        )
        .await?;
        let sale_counts: Vec<Option<u32>> = futures_util::future::try_join_all(
            sales.iter().map(|&id| client.hget::<Option<u32>, _, _>(self.keys.sale(id).meta, "buckets")),
        )
        .await?;
        let mut live: Vec<(String, String)> = Vec::new();
        for (&id, n) in coupons.iter().zip(counts) {
            let n = n.unwrap_or(1).clamp(1, crate::buckets::MAX_BUCKETS);
            live.extend(crate::buckets::all(&self.keys, id, n).into_iter().map(|k| (k.meta, k.outbox)));
        }
        for (&id, n) in sales.iter().zip(sale_counts) {
            let n = n.unwrap_or(1).clamp(1, crate::buckets::MAX_BUCKETS);
            live.extend(crate::buckets::all_of_sale(&self.keys, id, n).into_iter().map(|k| (k.meta, k.outbox)));
        }
        // A fixed set of streams, one per wallet shard, however many users; never retired.
        let wallets: Vec<String> = (0..WALLET_SHARDS).map(|shard| self.keys.wallets(shard).outbox).collect();
        let outboxes: HashSet<&str> =
            live.iter().map(|(_, outbox)| outbox.as_str()).chain(wallets.iter().map(String::as_str)).collect();
        self.streams.retain(|s| outboxes.contains(&**s));
        let known: HashSet<Arc<str>> = self.streams.iter().cloned().collect();
        for (meta, outbox) in &live {
            if known.contains(outbox.as_str()) {
                continue;
            }
            if self.scripts.join_outbox.call(self.redis.next(), meta, outbox).await? {
                self.streams.push(outbox.as_str().into());
            }
        }
        for outbox in &wallets {
            if known.contains(outbox.as_str()) {
                continue;
            }
            let created: Result<(), Error> = self.redis.xgroup_create(outbox, OUTBOX_GROUP, "0", true).await;
            match created {
                Ok(()) => {}
                Err(e) if e.details().starts_with("BUSYGROUP") => {}
                Err(e) => return Err(e),
            }
            self.streams.push(outbox.as_str().into());
        }
        Ok(())
    }

    /// Reads entries holding about `events` events per stream (by the last
    /// read's events per entry): with `pending`, the entries this consumer
    /// read before but never acknowledged; otherwise new entries. With
    /// `block_ms`, waits that long for some when there are none. Also says
    /// whether some stream gave as many entries as asked (more may wait).
    pub async fn read(&self, events: usize, pending: bool, block_ms: Option<u64>) -> Result<(Vec<Entry>, bool), Error> {
        let count = (events / self.per_entry.load(Relaxed)).max(1);
        let entries = self.read_entries(count as u64, pending, block_ms).await?;
        let mut per_stream: HashMap<&str, usize> = HashMap::new();
        for entry in &entries {
            *per_stream.entry(&entry.stream).or_default() += 1;
        }
        let full = per_stream.values().any(|&n| n >= count);
        let read: usize = entries.iter().map(|e| e.events.len()).sum();
        if !entries.is_empty() {
            self.per_entry.store(read.div_ceil(entries.len()).max(1), Relaxed);
        }
        Ok((entries, full))
    }

    /// The read and a wait for the acknowledgement mode, in one pipeline on
    /// the reader's connection: entries come back only when the replicas (or
    /// disks) the mode names hold them, so nothing goes to Kafka that a
    /// failover could take back. A short wait is an error (`Timeout`); the
    /// entries stay pending in this consumer and the next read takes them
    /// again from its pending list.
    async fn read_acknowledged(
        &self,
        count: u64,
        block_ms: Option<u64>,
        keys: Vec<&str>,
        ids: Vec<&str>,
    ) -> Result<Value, Error> {
        let first = keys.first().map(|k| k.to_string());
        let pipe = self.reader.pipeline();
        let _: () =
            pipe.xreadgroup(OUTBOX_GROUP, self.consumer.as_str(), Some(count), block_ms, false, keys, ids).await?;
        self.scripts.ack.queue_wait(&pipe, first.as_deref()).await?;
        let mut results = pipe.try_all::<Value>().await.into_iter();
        let reply = results.next().unwrap_or_else(|| Err(Error::new(ErrorKind::Unknown, "an empty pipeline")))?;
        let _published = results.next();
        match results.next() {
            Some(waited) => self.scripts.ack.acknowledged(waited?)?,
            None => return Err(Error::new(ErrorKind::Timeout, "the outbox read's wait went unanswered")),
        }
        Ok(reply)
    }

    async fn read_entries(&self, count: u64, pending: bool, block_ms: Option<u64>) -> Result<Vec<Entry>, Error> {
        let mut entries = Vec::new();
        if self.reads == StreamReads::OnePerStream {
            // One read per stream, all at once, none blocking; a round that
            // finds nothing waits `block_ms` before the next.
            let reads = self.streams.iter().map(|s| self.read_streams(count, pending, None, vec![&**s]));
            for reply in futures_util::future::try_join_all(reads).await? {
                self.decode_reply(reply, &mut entries).await?;
            }
            if let (true, Some(ms)) = (entries.is_empty(), block_ms) {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
            return Ok(entries);
        }
        let keys: Vec<&str> = self.streams.iter().map(|s| &**s).collect();
        let reply = self.read_streams(count, pending, block_ms, keys).await?;
        self.decode_reply(reply, &mut entries).await?;
        Ok(entries)
    }

    /// One XREADGROUP of `keys` (with the mode's wait). The raw reply: a
    /// blocking read that times out answers nil, which the typed map form
    /// cannot convert.
    async fn read_streams(
        &self,
        count: u64,
        pending: bool,
        block_ms: Option<u64>,
        keys: Vec<&str>,
    ) -> Result<Value, Error> {
        let ids = vec![if pending { "0" } else { ">" }; keys.len()];
        if self.scripts.ack.waits() {
            self.read_acknowledged(count, block_ms, keys, ids).await
        } else {
            self.reader.xreadgroup(OUTBOX_GROUP, self.consumer.as_str(), Some(count), block_ms, false, keys, ids).await
        }
    }

    /// Appends the entries of an XREADGROUP reply to `entries`; acknowledges
    /// (skips) any it cannot decode.
    async fn decode_reply(&self, reply: Value, entries: &mut Vec<Entry>) -> Result<(), Error> {
        let Value::Array(streams) = reply else {
            return Ok(());
        };
        for stream_reply in streams {
            let Value::Array(mut pair) = stream_reply else {
                continue;
            };
            let (Some(Value::Array(items)), Some(name)) = (pair.pop(), pair.pop()) else {
                continue;
            };
            let name = name.as_string().unwrap_or_default();
            let stream: Arc<str> = self.streams.iter().find(|s| ***s == *name).cloned().unwrap_or_else(|| name.into());
            for item in items {
                let Value::Array(mut entry) = item else {
                    continue;
                };
                let (fields, id) = (entry.pop(), entry.pop());
                let Some(id) = id.and_then(|v| v.as_string()) else {
                    continue;
                };
                let fields = match fields {
                    Some(Value::Array(kv)) => {
                        kv.chunks(2).filter_map(|p| Some((p.first()?.as_string()?, p.get(1)?.as_string()?))).collect()
                    }
                    _ => HashMap::new(),
                };
                match self.decode(&stream, &id, &fields) {
                    Some(events) => entries.push(Entry { stream: stream.clone(), id, events }),
                    None => {
                        // Not ours to interpret; never block the stream on it.
                        tracing::error!(%stream, %id, ?fields, "undecodable outbox entry skipped");
                        self.ack(&stream, &[id]).await?;
                    }
                }
            }
        }
        Ok(())
    }

    fn decode(&self, stream: &str, id: &str, fields: &HashMap<String, String>) -> Option<Vec<Event>> {
        if let Some((sale_id, bucket)) = self.keys.sale_of_outbox(stream) {
            let orders = entry_orders(fields)?;
            let events = orders.into_iter().enumerate().map(|(nth, order)| {
                Event::Order(OrderChanged { event_id: OrderChanged::event_id(sale_id, bucket, id, nth), order })
            });
            return Some(events.collect());
        }
        if let Some(shard) = self.keys.wallet_shard_of_outbox(stream) {
            let changes = serde_json::from_str::<Vec<WalletChanged>>(fields.get("events")?).ok()?;
            let events = changes.into_iter().enumerate().map(|(nth, mut change)| {
                change.event_id = WalletChanged::event_id(shard, id, nth);
                Event::Wallet(change)
            });
            return Some(events.collect());
        }
        let (coupon_id, bucket) = self.keys.coupon_of_outbox(stream)?;
        let issued_at = fields.get("issued_at")?.parse().ok()?;
        let events = coupon_users(fields)?.into_iter().enumerate().map(|(nth, user_id)| {
            Event::CouponIssued(CouponIssued {
                event_id: CouponIssued::event_id(coupon_id, bucket, id, nth),
                coupon_id,
                user_id,
                issued_at,
            })
        });
        Some(events.collect())
    }

    /// Moves the entries of gone relays (consumers without a heartbeat, see
    /// `liveness`) that have been idle for `min_idle_ms` into this consumer's
    /// pending list, to be read with `pending = true`; a live relay's entries
    /// stay its own however slow it is. Gone consumers that hold nothing are
    /// removed from the group. Returns how many entries were claimed.
    pub async fn claim_idle(&self, min_idle_ms: u64) -> Result<usize, Error> {
        let mut claimed = 0;
        let mut alive: HashMap<String, bool> = HashMap::new();
        for stream in &self.streams {
            for (consumer, pending) in liveness::consumers(&self.redis, stream, OUTBOX_GROUP).await? {
                if consumer == self.consumer {
                    continue;
                }
                let is_alive = match alive.get(&consumer) {
                    Some(known) => *known,
                    None => {
                        let known = liveness::is_alive(&self.redis, &self.keys.relay_alive(&consumer)).await?;
                        *alive.entry(consumer.clone()).or_insert(known)
                    }
                };
                if is_alive {
                    continue;
                }
                if pending > 0 {
                    claimed += self.claim_from(stream, &consumer, min_idle_ms).await?;
                }
                // Once it holds nothing (now, or after a later claim).
                if self.scripts.drop_consumer.call(self.redis.next(), stream, &consumer).await? {
                    tracing::info!(%stream, %consumer, "relay: removed a gone relay from the group");
                }
            }
        }
        Ok(claimed)
    }

    /// Claims `consumer`'s entries of `stream` idle for `min_idle_ms`.
    async fn claim_from(&self, stream: &str, consumer: &str, min_idle_ms: u64) -> Result<usize, Error> {
        let mut claimed = 0;
        loop {
            let held: Vec<(String, String, u64, u64)> =
                self.redis.xpending(stream, OUTBOX_GROUP, (min_idle_ms, "-", "+", CLAIM_SLICE, consumer)).await?;
            if held.is_empty() {
                return Ok(claimed);
            }
            let ids: Vec<String> = held.into_iter().map(|(id, ..)| id).collect();
            let taken: Vec<String> = self
                .redis
                .xclaim(
                    stream,
                    OUTBOX_GROUP,
                    self.consumer.as_str(),
                    min_idle_ms,
                    ids.clone(),
                    None,
                    None,
                    None,
                    false,
                    true,
                )
                .await?;
            claimed += taken.len();
            if ids.len() < CLAIM_SLICE as usize || taken.is_empty() {
                return Ok(claimed);
            }
        }
    }

    /// (entries in all outbox streams, entries read but not acknowledged):
    /// an XLEN and an XPENDING per stream (the relay asks once a second).
    pub async fn backlog(&self) -> Result<(u64, u64), Error> {
        let (mut entries, mut pending) = (0, 0);
        for stream in &self.streams {
            let len: u64 = self.redis.xlen(&**stream).await?;
            let summary: Value = self.redis.xpending(&**stream, OUTBOX_GROUP, ()).await?;
            entries += len;
            if let Value::Array(parts) = summary {
                pending += parts.first().and_then(Value::as_u64).unwrap_or(0);
            }
        }
        Ok((entries, pending))
    }

    /// Acknowledges and deletes `ids` of `stream`.
    pub async fn ack(&self, stream: &str, ids: &[String]) -> Result<(), Error> {
        self.scripts.ack_outbox.call(self.redis.next(), stream, ids).await.map(|_| ())
    }
}

/// The orders of a sale entry, in order: `orders` (one reservation call's
/// new orders: packed records, one per line, or in entries written before
/// them a JSON array) or `order` (one order, packed or JSON). None when
/// neither decodes.
fn entry_orders(fields: &HashMap<String, String>) -> Option<Vec<Order>> {
    if let Some(list) = fields.get("orders") {
        let orders = if list.starts_with('[') {
            serde_json::from_str::<Vec<Order>>(list).ok()?
        } else {
            list.split('\n').map(Order::decode).collect::<Result<Vec<_>, _>>().ok()?
        };
        return Some(orders).filter(|o| !o.is_empty());
    }
    Some(vec![Order::decode(fields.get("order")?).ok()?])
}

/// The users of a coupon entry, in issue order: `user_ids` (comma-separated,
/// one script call's issues) or, in entries written before that field,
/// `user_id`. None when a field is missing or not a list of u64.
fn coupon_users(fields: &HashMap<String, String>) -> Option<Vec<u64>> {
    if let Some(list) = fields.get("user_ids") {
        return list.split(',').map(|u| u.parse().ok()).collect::<Option<Vec<u64>>>().filter(|u| !u.is_empty());
    }
    Some(vec![fields.get("user_id")?.parse().ok()?])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// An order as reserve_order.lua writes it.
    fn order_json(id: u64) -> String {
        format!(
            r#"{{"order_id":"{id}","sale_id":"5","user_id":"9","status":"reserved","items":[{{"sku":"1","quantity":2,"price":100}}],"total":200,"discount":0,"to_pay":200,"coupon_id":null,"coupon_seq":null,"payment_key":null,"created_at":1,"expires_at":2,"updated_at":1,"version":1}}"#
        )
    }

    #[test]
    fn a_sale_entry_holds_one_order_or_a_list() {
        let one = entry_orders(&fields(&[("order", &order_json(3))])).unwrap();
        assert_eq!(one.iter().map(|o| o.order_id).collect::<Vec<_>>(), vec![3]);
        let list = format!("[{},{}]", order_json(4), order_json(6));
        let two = entry_orders(&fields(&[("orders", &list)])).unwrap();
        assert_eq!(two.iter().map(|o| o.order_id).collect::<Vec<_>>(), vec![4, 6]);
        assert!(entry_orders(&fields(&[("orders", "[]")])).is_none());
        let packed = entry_orders(&fields(&[("orders", "R|7|5|9|200|0|||1|2|1:2:100\nR|8|5|9|100|0|||1|2|1:1:100")]));
        assert_eq!(packed.unwrap().iter().map(|o| o.order_id).collect::<Vec<_>>(), vec![7, 8]);
        let one = entry_orders(&fields(&[("order", "R|9|5|9|100|0|||1|2|1:1:100")])).unwrap();
        assert_eq!(one[0].to_pay, 100);
        assert!(entry_orders(&fields(&[("orders", "R|7|5|9|200|0|||1|2|1:2:100\nR|8")])).is_none());
        assert!(entry_orders(&fields(&[("orders", "[{")])).is_none());
        assert!(entry_orders(&fields(&[("user_id", "1")])).is_none());
    }

    #[test]
    fn a_coupon_entry_names_its_users_in_a_list_or_alone() {
        assert_eq!(coupon_users(&fields(&[("user_ids", "7,3,12")])), Some(vec![7, 3, 12]));
        assert_eq!(coupon_users(&fields(&[("user_ids", "5")])), Some(vec![5]));
        assert_eq!(coupon_users(&fields(&[("user_id", "9")])), Some(vec![9]), "an entry of an older version");
        assert_eq!(coupon_users(&fields(&[("user_ids", "7,x")])), None);
        assert_eq!(coupon_users(&fields(&[("user_ids", "")])), None);
        assert_eq!(coupon_users(&fields(&[("issued_at", "1")])), None);
    }
}
