//! The joins polled since liveness was last sent, noted by every poll: in
//! shards, one per worker thread or so, so polls on different threads do not
//! take the same lock.

use std::{collections::HashMap, sync::Mutex};

use crate::{keys::Room, shard};

const SHARDS: usize = 16;
/// Most joins a shard keeps per room until the next send.
const MOST_PER_SHARD: usize = 100_000 / SHARDS;

type Polled = HashMap<Room, Vec<u64>>;
/// A shard: per room (a few at a time: a list beats hashing), joins polled.
type Shard = Vec<(Room, Vec<u64>)>;

pub struct Seen {
    shards: [Mutex<Shard>; SHARDS],
}

impl Seen {
    pub fn new() -> Seen {
        Seen { shards: std::array::from_fn(|_| Mutex::default()) }
    }

    pub fn note(&self, room: Room, join: u64) {
        let mut shard = self.shards[shard::of_thread(SHARDS)].lock().unwrap_or_else(|e| e.into_inner());
        let at = match shard.iter().position(|(r, _)| *r == room) {
            Some(at) => at,
            None => {
                shard.push((room, Vec::new()));
                shard.len() - 1
            }
        };
        let joins = &mut shard[at].1;
        if joins.len() < MOST_PER_SHARD && joins.last() != Some(&join) {
            joins.push(join);
        }
    }

    /// Every join noted since the last take, per room: sorted, once each.
    pub fn take(&self) -> Polled {
        let mut all = Polled::new();
        for shard in &self.shards {
            let taken = std::mem::take(&mut *shard.lock().unwrap_or_else(|e| e.into_inner()));
            for (room, joins) in taken {
                all.entry(room).or_default().extend(joins);
            }
        }
        for joins in all.values_mut() {
            joins.sort_unstable();
            joins.dedup();
        }
        all
    }
}
