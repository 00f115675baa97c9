//! A number per thread, for state kept in shards so that threads at work at
//! once do not contend for one lock or cache line (request metrics, polls' liveness).

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

thread_local! {
    static NUMBER: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Relaxed)
    };
}

/// This thread's shard of `shards`.
pub fn of_thread(shards: usize) -> usize {
    NUMBER.with(|n| *n % shards)
}
