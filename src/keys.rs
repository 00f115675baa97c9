//! The Redis key layout. Every key this service owns is built here.
//!
//! All keys of one campaign share the hash tag `{coupon:ID}` so one Lua script
//! may touch them together on a Redis Cluster:
//!
//! | key                          | type   | holds                                             |
//! |------------------------------|--------|---------------------------------------------------|
//! | `P{coupon:ID}:meta`          | hash   | `total`, `remaining`, `starts_at`, `ends_at` (ms), `discount`, `use_seq`, `held_until` (latest deadline of an order holding it), `retired_at` |
//! | `P{coupon:ID}:users`         | set    | ids of users who got the coupon                   |
//! | `P{coupon:ID}:outbox`        | stream | issue events not yet acknowledged by Kafka        |
//! | `P{coupon:ID}:used`          | hash   | user -> `sale:order` that holds the coupon (on a cluster for a moment `hold:sale:token`) |
//! | `P{coupon:ID}:holds`         | zset   | cluster only: `user:sale:token` held for an order, by deadline (ms) |
//! | `P{coupon:ID:B}:meta`, `:users`, `:outbox` | | bucket B > 0 of a campaign created with `--buckets N` (see `buckets`); the campaign's meta keeps `buckets` = N |
//! | `P{coupon:ID}:queue`, `:queue_users`, `:queue_marks`, `:queue_joined:N`, `:queue_admitted`, `:queue_pow` | | a campaign's waiting room (`coupon create --queue`), as a sale's below |
//! | `Pcoupons`                   | set    | ids of live campaigns (the relay's stream list)   |
//! | `P{sale:ID}:meta`            | hash   | `starts_at`, `ends_at`, `per_user_limit`, `hold_ms`, `retired_at` |
//! | `P{sale:ID}:prices`          | hash   | sku -> price (minor units)                        |
//! | `P{sale:ID}:stock`           | hash   | sku -> remaining                                  |
//! | `P{sale:ID}:initial`         | hash   | sku -> supplied in all (seed + top-ups)           |
//! | `P{sale:ID}:bought`          | hash   | user -> quantity held (reserved + paid)           |
//! | `P{sale:ID}:orders`          | hash   | order id -> order JSON                            |
//! | `P{sale:ID}:deadlines`       | zset   | reserved order ids by expiry (ms)                 |
//! | `P{sale:ID}:released`        | zset   | cancelled / expired order ids by release (ms): forgotten once MySQL has them (see `sales::forget`) |
//! | `P{sale:ID}:idem`            | hash   | `user:key` -> expiry, fingerprint and first answer |
//! | `P{sale:ID}:idem_expiry`     | zset   | `user:key` by when its answer expires (ms)        |
//! | `P{sale:ID}:seq`             | string | last order id                                     |
//! | `P{sale:ID}:outbox`          | stream | order events not yet acknowledged by Kafka        |
//! | `P{sale:ID}:paying`          | zset   | order id -> deadline of its wallet payment's hold |
//! | `P{sale:ID}:coupon_holds`    | hash   | coupons held apart (cluster, bucketed campaign): hold token -> order id, `o:ORDER` -> token |
//! | `P{sale:ID}:coupon_returns`  | zset   | cluster only: `coupon:user:order` released, coupon not yet given back |
//! | `P{sale:ID}:moves`           | hash   | sales with buckets: stock taken from this bucket for another, not yet done: `id` -> `home:sku:units:taken_at` |
//! | `P{sale:ID}:received`        | zset   | sales with buckets: moves this bucket was given, by when taken (ms) |
//! | `P{sale:ID:B}:...`           |        | bucket B > 0 of a single-SKU sale created with `--buckets N` (see `sales::moves`): every key above; each bucket's meta keeps `buckets` = N |
//! | `P{sale:ID}:queue`           | hash   | waiting room (`sale create --queue`): `seq` joins, `pre` joins before the start, `served` places decided, `tokens`/`at` the admission allowance, `epoch` (ms), `key` the pre-queue draw's, `admitted` in all |
//! | `P{sale:ID}:queue_users`     | string | the user of each join, 20 bytes each, by join number |
//! | `P{sale:ID}:queue_marks`     | string | a u32 per join: skipped, last seen, or admitted until (lua/lib/queue.lua) |
//! | `P{sale:ID}:queue_joined:N`  | hash   | user -> their latest join number, in 8192 parts N by the user's last digits (lua/lib/queue.lua) |
//! | `P{sale:ID}:queue_admitted`  | zset   | users admitted and not yet reserved, by admitted until (ms) |
//! | `P{sale:ID}:queue_pow`       | zset   | with `--pow-difficulty`: nonces of the solved challenges used to join, by expiry (ms) |
//! | `Psales`                     | set    | ids of live sales (the relay's and the sweeper's list) |
//! | `Pqueues`                    | set    | waiting rooms, `sale:ID` / `coupon:ID` (the admitter's list) |
//! | `Pretiring`                  | zset   | `coupon:ID` / `sale:ID` retired, by when its keys go (ms) |
//! | `P{rank}:products:H`         | zset   | sku -> paid orders in hour H (since the epoch); one tag for every hour |
//! | `Prelay:alive:NAME`          | string | a running relay's heartbeat (expires when it stops) |
//! | `Pexpiry:turn`               | string | the instance running the sweeper's current turn |
//! | `P{sale:ID}:ack`, `P{coupon:ID}:ack` | string | on a cluster with acknowledgement: the write before a wait (10 s) |
//!
//! On Redis Cluster every key with a `{tag}` lives in its tag's slot; the
//! untagged ones (registries, `retiring`, heartbeats) are written beside the
//! scripts, never from them.
//! Live: created and not yet retired. A campaign or sale retires (see
//! `retirement`) once it has ended and every event of it is in MySQL: it leaves
//! `Pcoupons` / `Psales` for `Pretiring`, and its keys are deleted at once
//! when their time comes.
//!
//! Wallets live in [`WALLET_SHARDS`] shards, user `U` in shard `U % WALLET_SHARDS`;
//! each shard is one hash tag `{wallets:S}`, so one script call serves many
//! users of a shard and the relay reads a fixed set of outbox streams:
//!
//! | key                          | type   | holds                                             |
//! |------------------------------|--------|---------------------------------------------------|
//! | `P{wallets:S}:balances`      | hash   | user -> `balance:version:updated_at` (ms)         |
//! | `P{wallets:S}:idem`          | hash   | `user:key` -> charge fingerprint and first answer |
//! | `P{wallets:S}:pays`          | hash   | `user:sale:order:attempt` -> debit made, or void  |
//! | `P{wallets:S}:aged`          | zset   | `i:`/`p:` + an idem/pays field, by time written   |
//! | `P{wallets:S}:outbox`        | stream | wallet events not yet acknowledged by Kafka       |
//!
//! `P` is the configured prefix (`FLASHSALE_KEY_PREFIX`, default `fs:`).

/// Consumer group the relay reads the outbox streams with.
pub const OUTBOX_GROUP: &str = "relay";

/// Key builder bound to one deployment's prefix.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

/// The keys of one coupon campaign, in the order the scripts take them.
#[derive(Clone, Debug)]
pub struct CouponKeys {
    pub meta: String,
    pub users: String,
    pub outbox: String,
    pub used: String,
    /// On a cluster: coupons held for orders being reserved (see `sales::holds`).
    pub holds: String,
    /// The waiting room (see `queue`; the table above): none without `--queue`.
    pub room: RoomKeys,
}

/// The keys of one sale, in the order `seed_sale.lua` takes them (outbox last).
#[derive(Clone, Debug)]
pub struct SaleKeys {
    pub meta: String,
    pub prices: String,
    pub stock: String,
    pub initial: String,
    pub bought: String,
    pub orders: String,
    pub deadlines: String,
    pub idem: String,
    pub seq: String,
    pub outbox: String,
    pub idem_expiry: String,
    /// Orders held by a wallet payment under way (see `wallet`).
    pub paying: String,
    /// On a cluster: which order took which coupon hold (see `sales::holds`).
    pub coupon_holds: String,
    /// On a cluster: released orders whose coupon is still to be given back.
    pub coupon_returns: String,
    /// With buckets: stock taken from this bucket for another, not yet done.
    pub moves: String,
    /// With buckets: the moves this bucket was given (so none is given twice).
    pub received: String,
    /// Released orders by release time, until forgotten (see `sales::forget`).
    pub released: String,
    /// The waiting room (see `queue`; the table above): none without `--queue`.
    pub room: RoomKeys,
}

/// What a waiting room stands in front of: a sale's orders or a campaign's issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Room {
    Sale(u64),
    Coupon(u64),
}

impl Room {
    /// Its member in the `queues` set: `sale:ID` or `coupon:ID`.
    pub fn member(self) -> String {
        match self {
            Room::Sale(id) => format!("sale:{id}"),
            Room::Coupon(id) => format!("coupon:{id}"),
        }
    }

    pub fn from_member(member: &str) -> Option<Room> {
        let (kind, id) = member.split_once(':')?;
        let id = id.parse().ok()?;
        match kind {
            "sale" => Some(Room::Sale(id)),
            "coupon" => Some(Room::Coupon(id)),
            _ => None,
        }
    }
}

/// A waiting room's own keys, under its sale's or campaign's tag.
#[derive(Clone, Debug)]
pub struct RoomKeys {
    pub queue: String,
    pub users: String,
    pub marks: String,
    pub joined: String,
    /// Users admitted and not yet reserved (or issued).
    pub admitted: String,
    pub pow: String,
}

impl RoomKeys {
    fn under(tag: &str) -> RoomKeys {
        RoomKeys {
            queue: format!("{tag}:queue"),
            users: format!("{tag}:queue_users"),
            marks: format!("{tag}:queue_marks"),
            joined: format!("{tag}:queue_joined"),
            admitted: format!("{tag}:queue_admitted"),
            pow: format!("{tag}:queue_pow"),
        }
    }
}

/// The keys the queue scripts take (lua/lib/queue.lua): the room's, with its
/// sale's or campaign's meta and stock (a campaign's `stock` is its meta).
#[derive(Clone, Debug)]
pub struct QueueKeys {
    pub meta: String,
    pub stock: String,
    pub room: RoomKeys,
}

impl QueueKeys {
    /// Every key the scripts take, in their order.
    pub fn all(&self) -> [&str; 8] {
        let r = &self.room;
        [&self.meta, &r.queue, &r.users, &r.marks, &r.joined, &r.admitted, &self.stock, &r.pow]
    }
}

impl CouponKeys {
    /// Every key of the campaign.
    pub fn all(&self) -> [&str; 11] {
        [
            &self.meta,
            &self.users,
            &self.outbox,
            &self.used,
            &self.holds,
            &self.room.queue,
            &self.room.users,
            &self.room.marks,
            &self.room.joined,
            &self.room.admitted,
            &self.room.pow,
        ]
    }
}

impl SaleKeys {
    /// Every key of the sale.
    pub fn all(&self) -> [&str; 23] {
        [
            &self.meta,
            &self.prices,
            &self.stock,
            &self.initial,
            &self.bought,
            &self.orders,
            &self.deadlines,
            &self.idem,
            &self.seq,
            &self.outbox,
            &self.idem_expiry,
            &self.paying,
            &self.coupon_holds,
            &self.coupon_returns,
            &self.moves,
            &self.received,
            &self.released,
            &self.room.queue,
            &self.room.users,
            &self.room.marks,
            &self.room.joined,
            &self.room.admitted,
            &self.room.pow,
        ]
    }
}

/// Wallet shards: fixed forever (a user's shard is `user % WALLET_SHARDS`;
/// changing it would lose every wallet).
pub const WALLET_SHARDS: u64 = 16;

/// The keys of one wallet shard, in the order `wallet_apply.lua` takes them.
#[derive(Clone, Debug)]
pub struct WalletKeys {
    pub balances: String,
    pub idem: String,
    pub pays: String,
    pub aged: String,
    pub outbox: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Keys { prefix: prefix.into() }
    }

    /// The deployment's prefix (`FLASHSALE_KEY_PREFIX`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn coupon(&self, coupon_id: u64) -> CouponKeys {
        self.coupon_bucket(coupon_id, 0)
    }

    /// The keys of bucket `bucket` of a campaign created with `--buckets`
    /// (see `buckets`): bucket 0 is the campaign's own keys, bucket B > 0
    /// lives under the hash tag `{coupon:ID:B}` (its own slot); only its
    /// `meta`, `users` and `outbox` are used.
    pub fn coupon_bucket(&self, coupon_id: u64, bucket: u32) -> CouponKeys {
        let tag = match bucket {
            0 => format!("{}{{coupon:{coupon_id}}}", self.prefix),
            b => format!("{}{{coupon:{coupon_id}:{b}}}", self.prefix),
        };
        CouponKeys {
            meta: format!("{tag}:meta"),
            users: format!("{tag}:users"),
            outbox: format!("{tag}:outbox"),
            used: format!("{tag}:used"),
            holds: format!("{tag}:holds"),
            room: RoomKeys::under(&tag),
        }
    }

    /// What precedes a coupon id in its keys (`P{coupon:`): scripts that learn
    /// the coupon from an order build its `used` key from this.
    pub fn coupon_key_prefix(&self) -> String {
        format!("{}{{coupon:", self.prefix)
    }

    pub fn sale(&self, sale_id: u64) -> SaleKeys {
        self.sale_bucket(sale_id, 0)
    }

    /// The keys of bucket `bucket` of a sale created with `--buckets` (see
    /// `sales::moves`): bucket 0 is the sale's own keys, bucket B > 0 lives
    /// under the hash tag `{sale:ID:B}` (its own slot).
    pub fn sale_bucket(&self, sale_id: u64, bucket: u32) -> SaleKeys {
        let tag = match bucket {
            0 => format!("{}{{sale:{sale_id}}}", self.prefix),
            b => format!("{}{{sale:{sale_id}:{b}}}", self.prefix),
        };
        SaleKeys {
            meta: format!("{tag}:meta"),
            prices: format!("{tag}:prices"),
            stock: format!("{tag}:stock"),
            initial: format!("{tag}:initial"),
            bought: format!("{tag}:bought"),
            orders: format!("{tag}:orders"),
            deadlines: format!("{tag}:deadlines"),
            idem: format!("{tag}:idem"),
            seq: format!("{tag}:seq"),
            outbox: format!("{tag}:outbox"),
            idem_expiry: format!("{tag}:idem_expiry"),
            released: format!("{tag}:released"),
            paying: format!("{tag}:paying"),
            coupon_holds: format!("{tag}:coupon_holds"),
            coupon_returns: format!("{tag}:coupon_returns"),
            moves: format!("{tag}:moves"),
            received: format!("{tag}:received"),
            room: RoomKeys::under(&tag),
        }
    }

    /// The keys of a waiting room (in its sale's or campaign's own slot): the
    /// same names as in `SaleKeys` / `CouponKeys`, built alone (a join builds them).
    pub fn queue(&self, room: Room) -> QueueKeys {
        let (tag, stock) = match room {
            Room::Sale(id) => (format!("{}{{sale:{id}}}", self.prefix), "stock"),
            Room::Coupon(id) => (format!("{}{{coupon:{id}}}", self.prefix), "meta"),
        };
        let stock = format!("{tag}:{stock}");
        QueueKeys { meta: format!("{tag}:meta"), stock, room: RoomKeys::under(&tag) }
    }

    /// The set of waiting rooms, `sale:ID` / `coupon:ID` (written beside the scripts).
    pub fn queues(&self) -> String {
        format!("{}queues", self.prefix)
    }

    /// The shard a user's wallet lives in.
    pub fn wallet_shard(user_id: u64) -> u64 {
        user_id % WALLET_SHARDS
    }

    pub fn wallets(&self, shard: u64) -> WalletKeys {
        let tag = format!("{}{{wallets:{shard}}}", self.prefix);
        WalletKeys {
            balances: format!("{tag}:balances"),
            idem: format!("{tag}:idem"),
            pays: format!("{tag}:pays"),
            aged: format!("{tag}:aged"),
            outbox: format!("{tag}:outbox"),
        }
    }

    /// The wallet shard an outbox key belongs to.
    pub fn wallet_shard_of_outbox(&self, key: &str) -> Option<u64> {
        key.strip_prefix(&self.prefix)?.strip_prefix("{wallets:")?.strip_suffix("}:outbox")?.parse().ok()
    }

    /// A relay's heartbeat: present while the relay of that consumer name runs
    /// (it expires `FLASHSALE_RELAY_CLAIM_IDLE_MS` after its last refresh).
    pub fn relay_alive(&self, consumer: &str) -> String {
        format!("{}relay:alive:{consumer}", self.prefix)
    }

    /// Whose turn the expiry task's current tick is (one instance per tick).
    pub fn expiry_turn(&self) -> String {
        format!("{}expiry:turn", self.prefix)
    }

    /// The set of live sale ids.
    pub fn sales(&self) -> String {
        format!("{}sales", self.prefix)
    }

    /// The zset of retired campaigns and sales (`coupon:ID`, `sale:ID`) by
    /// when their keys are deleted.
    pub fn retiring(&self) -> String {
        format!("{}retiring", self.prefix)
    }

    /// The product ranking bucket of hour `hour` (hours since the epoch).
    pub fn ranking_hour(&self, hour: u64) -> String {
        // One hash tag for every hour: a ranking's ZUNION stays in one slot.
        format!("{}{{rank}}:products:{hour}", self.prefix)
    }

    /// The sale an outbox key belongs to.
    /// The sale id and bucket (0 without buckets) an outbox key belongs to.
    pub fn sale_of_outbox(&self, key: &str) -> Option<(u64, u32)> {
        let tag = key.strip_prefix(&self.prefix)?.strip_prefix("{sale:")?.strip_suffix("}:outbox")?;
        match tag.split_once(':') {
            Some((id, bucket)) => Some((id.parse().ok()?, bucket.parse().ok().filter(|&b| b > 0)?)),
            None => Some((tag.parse().ok()?, 0)),
        }
    }

    /// The set of live campaign ids.
    pub fn coupons(&self) -> String {
        format!("{}coupons", self.prefix)
    }

    /// The campaign id an outbox key belongs to.
    /// The campaign id and bucket (0 without buckets) an outbox key belongs to.
    pub fn coupon_of_outbox(&self, key: &str) -> Option<(u64, u32)> {
        let tag = key.strip_prefix(&self.prefix)?.strip_prefix("{coupon:")?.strip_suffix("}:outbox")?;
        // A bucket's outbox: `{coupon:ID:B}`.
        match tag.split_once(':') {
            Some((id, bucket)) => Some((id.parse().ok()?, bucket.parse().ok().filter(|&b| b > 0)?)),
            None => Some((tag.parse().ok()?, 0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Keys, Room};

    #[test]
    fn a_rooms_keys_are_its_sales_or_campaigns() {
        let keys = Keys::new("t1:");
        let (sale, q) = (keys.sale(7), keys.queue(Room::Sale(7)));
        assert_eq!((&sale.meta, &sale.stock, &sale.room.queue), (&q.meta, &q.stock, &q.room.queue));
        assert_eq!(sale.room.queue, "t1:{sale:7}:queue");
        let (coupon, q) = (keys.coupon(7), keys.queue(Room::Coupon(7)));
        assert_eq!((&coupon.meta, &coupon.meta, &coupon.room.admitted), (&q.meta, &q.stock, &q.room.admitted));
    }

    #[test]
    fn campaign_keys_share_one_hash_tag_and_round_trip() {
        let keys = Keys::new("t1:");
        let c = keys.coupon(42);
        assert_eq!(c.meta, "t1:{coupon:42}:meta");
        assert_eq!(c.users, "t1:{coupon:42}:users");
        assert_eq!(keys.coupon_of_outbox(&c.outbox), Some((42, 0)));
        assert_eq!(keys.coupon_of_outbox("t2:{coupon:42}:outbox"), None);
        let b = keys.coupon_bucket(42, 3);
        assert_eq!(b.users, "t1:{coupon:42:3}:users");
        assert_eq!(keys.coupon_of_outbox(&b.outbox), Some((42, 3)));
        assert_eq!(keys.coupon_of_outbox("t1:{coupon:42:x}:outbox"), None);
        assert_eq!(keys.coupon_bucket(42, 0).meta, c.meta);
        assert_eq!(c.used, format!("{}42}}:used", keys.coupon_key_prefix()));
        let s = keys.sale(7);
        assert_eq!(s.meta, "t1:{sale:7}:meta");
        assert_eq!(keys.sale_of_outbox(&s.outbox), Some((7, 0)));
        assert_eq!(keys.sale_of_outbox(&keys.sale_bucket(7, 5).outbox), Some((7, 5)));
        assert_eq!(keys.sale_of_outbox("t1:{sale:7:x}:outbox"), None);
        assert_eq!(keys.coupon_of_outbox(&s.outbox), None);
        let w = keys.wallets(Keys::wallet_shard(35));
        assert_eq!(w.balances, "t1:{wallets:3}:balances");
        assert_eq!(keys.wallet_shard_of_outbox(&w.outbox), Some(3));
        assert_eq!(keys.sale_of_outbox(&w.outbox), None);
    }
}
