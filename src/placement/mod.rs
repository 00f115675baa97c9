//! Where data lives on the Redis topology in use (one node, Sentinel,
//! Cluster), decided once at start-up: every choice that differs by topology
//! is made here, and the bucket router is handed down from here.

mod router;

pub use router::{holders, BucketRouter};

use fred::{prelude::*, types::config::ServerConfig};

use crate::{
    buckets::Of,
    durability::{Ack, WaitMark},
    keys::Keys,
    scripts::Ranking,
};

/// The Redis topology the service runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    /// One primary, addressed directly (replicas, if any, behind it).
    Node,
    /// One primary, found through Sentinel: placed as one node.
    Sentinel,
    /// Redis Cluster: a script may touch the keys of one slot only.
    Cluster,
}

/// Where an order's coupon is checked and marked used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CouponPlace {
    /// In the order's own script (its keys share the sale's node).
    InOrder,
    /// Held in the coupon's slot first, then settled (see `sales::holds`):
    /// on a cluster, or for a campaign whose holders are in several buckets.
    Held,
}

/// How a released order's coupon goes back to its user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CouponReturn {
    /// Freed by the releasing script itself, through the coupon keys' prefix.
    InScript(String),
    /// Queued in the sale's `coupon_returns` and freed apart (`holds::give_back`).
    Queued,
}

impl CouponReturn {
    /// What `release_orders.lua` takes as ARGV[2]: the prefix, or "" to queue.
    pub fn script_prefix(&self) -> &str {
        match self {
            CouponReturn::InScript(prefix) => prefix,
            CouponReturn::Queued => "",
        }
    }
}

/// How the relay reads the outbox streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamReads {
    /// Every stream in one (blocking) `XREADGROUP`.
    Together,
    /// One read per stream, none blocking: each stream has its own slot.
    OnePerStream,
}

/// The placement of this process: built once, cheap to clone.
#[derive(Clone)]
pub struct Placement {
    topology: Topology,
    buckets: BucketRouter,
}

impl Placement {
    pub fn new(topology: Topology) -> Self {
        Placement { topology, buckets: BucketRouter::default() }
    }

    /// The topology `client` was built for (from the Redis URL).
    pub fn detect(client: &Client) -> Self {
        let topology = if client.is_clustered() {
            Topology::Cluster
        } else if matches!(client.client_config().server, ServerConfig::Sentinel { .. }) {
            Topology::Sentinel
        } else {
            Topology::Node
        };
        Placement::new(topology)
    }

    pub fn topology(&self) -> Topology {
        self.topology
    }

    fn cluster(&self) -> bool {
        self.topology == Topology::Cluster
    }

    /// The bucket counts learnt so far, shared by every clone.
    pub fn buckets(&self) -> &BucketRouter {
        &self.buckets
    }

    /// `ack` with the mark its waits need here: on a cluster `PUBLISH`
    /// travels the cluster bus, not the replication stream, so a write to a
    /// key in the call's slot moves the connection's offset instead.
    pub fn ack(&self, ack: Ack) -> Ack {
        let mark = if self.cluster() { WaitMark::SlotKey } else { WaitMark::Publish };
        Ack { mark, ..ack }
    }

    /// Where orders redeeming `coupon_id` use it: held apart on a cluster
    /// (another slot), or when the campaign has buckets (holders in several).
    pub async fn coupon(&self, client: &Client, keys: &Keys, coupon_id: u64) -> Result<CouponPlace, Error> {
        if self.cluster() || self.buckets.count(client, keys, Of::Coupon, coupon_id).await? > 1 {
            Ok(CouponPlace::Held)
        } else {
            Ok(CouponPlace::InOrder)
        }
    }

    /// How released orders give their coupons back: in the releasing
    /// script on one node, queued on a cluster (the coupon is in another slot).
    pub fn coupon_return(&self, keys: &Keys) -> CouponReturn {
        if self.cluster() {
            CouponReturn::Queued
        } else {
            CouponReturn::InScript(keys.coupon_key_prefix())
        }
    }

    /// How the relay reads the outbox streams: a command's keys must share a
    /// slot on a cluster, and each stream has its own.
    pub fn stream_reads(&self) -> StreamReads {
        if self.cluster() {
            StreamReads::OnePerStream
        } else {
            StreamReads::Together
        }
    }

    /// How a payment bumps the hourly ranking tally `hour`: in its script on one
    /// node, apart after it on a cluster (the tally is in another slot).
    pub fn ranking<'a>(&self, hour: &'a str) -> Ranking<'a> {
        if self.cluster() {
            Ranking::Apart(hour)
        } else {
            Ranking::InScript(hour)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_cluster_places_anything_apart() {
        let keys = Keys::new("t:");
        for topology in [Topology::Node, Topology::Sentinel] {
            let one = Placement::new(topology);
            assert_eq!(one.ranking("r"), Ranking::InScript("r"));
            assert_eq!(one.coupon_return(&keys), CouponReturn::InScript(keys.coupon_key_prefix()));
            assert_eq!(one.stream_reads(), StreamReads::Together);
            assert_eq!(one.ack(Ack::new(1, 10, false)).mark, WaitMark::Publish);
        }
        let cluster = Placement::new(Topology::Cluster);
        assert_eq!(cluster.ranking("r"), Ranking::Apart("r"));
        assert_eq!(cluster.coupon_return(&keys).script_prefix(), "");
        assert_eq!(cluster.stream_reads(), StreamReads::OnePerStream);
        let ack = cluster.ack(Ack::new(1, 10, false));
        assert_eq!((ack.mark, ack.replicas, ack.timeout_ms), (WaitMark::SlotKey, 1, 10));
    }

    #[test]
    fn clones_share_the_bucket_counts_they_learn() {
        let (keys, placement) = (Keys::new("t:"), Placement::new(Topology::Node));
        let clone = placement.clone();
        assert_eq!(clone.buckets().believed(&keys, Of::Sale, 7), 1);
        placement.buckets().learn(&keys, Of::Sale, 7, 4);
        assert_eq!(clone.buckets().believed(&keys, Of::Sale, 7), 4);
        assert_eq!(clone.buckets().believed(&keys, Of::Coupon, 7), 1, "a campaign's id is another's");
        assert_eq!(Placement::new(Topology::Node).buckets().believed(&keys, Of::Sale, 7), 1, "no process-wide state");
    }
}
