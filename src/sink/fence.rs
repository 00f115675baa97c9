//! The fence between a running sink and an operator: a MySQL named lock per
//! (database, topic, partition), held by the partition's sink task on a
//! connection of its own for as long as it runs. MySQL releases it when
//! that connection closes, so a killed sink lets go by itself.
//!
//! `flashsale sink reset-offset` takes the same lock without waiting and
//! refuses when it cannot. A second sink on the same partition stands by
//! until the lock is free. The offset guard in `writer::write_batch` stays
//! the safety net: even without the lock no range is committed twice.

use std::time::{Duration, Instant};

use mysql_async::{prelude::*, Conn, Opts};
use sha2::{Digest, Sha256};

/// How often a held lock is confirmed (its connection may have died).
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// MySQL refuses lock names longer than this (MariaDB does not).
const MAX_LOCK_NAME: usize = 64;

/// `flashsale-sink:<db>:<topic>:<partition>`, or, when that is too long for
/// MySQL, `flashsale-sink:` and a hash of the same: every process computes
/// the same name.
pub fn lock_name(db: &str, topic: &str, partition: i32) -> String {
    let full = format!("flashsale-sink:{db}:{topic}:{partition}");
    if full.len() <= MAX_LOCK_NAME {
        return full;
    }
    let digest = Sha256::digest(full.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("flashsale-sink:{}", &hex[..MAX_LOCK_NAME - "flashsale-sink:".len()])
}

/// Takes the lock on `conn` if it is free: true when `conn` holds it now.
pub async fn try_lock(conn: &mut Conn, name: &str) -> Result<bool, mysql_async::Error> {
    let got: Option<Option<i64>> = conn.exec_first("SELECT GET_LOCK(?, 0)", (name,)).await?;
    Ok(got.flatten() == Some(1))
}

/// Lets go of a lock `try_lock` took on `conn`.
pub async fn release(conn: &mut Conn, name: &str) -> Result<(), mysql_async::Error> {
    conn.exec_drop("DO RELEASE_LOCK(?)", (name,)).await
}

/// Whether some connection (a running sink) holds the lock.
pub async fn is_held(conn: &mut Conn, name: &str) -> Result<bool, mysql_async::Error> {
    let holder: Option<Option<u64>> = conn.exec_first("SELECT IS_USED_LOCK(?)", (name,)).await?;
    Ok(holder.flatten().is_some())
}

/// One partition's lock as its sink task holds it.
pub struct Fence {
    opts: Opts,
    pub name: String,
    conn: Option<Conn>,
    holding: bool,
    checked_at: Instant,
}

impl Fence {
    pub fn new(opts: Opts, topic: &str, partition: i32) -> Fence {
        let name = lock_name(opts.db_name().unwrap_or(""), topic, partition);
        Fence { opts, name, conn: None, holding: false, checked_at: Instant::now() }
    }

    /// True while this task holds the lock: takes it when free, and confirms
    /// a held one every `CHECK_EVERY` (a round trip only then). False: another
    /// sink holds it. An error drops the connection, and the lock with it.
    pub async fn held(&mut self) -> Result<bool, mysql_async::Error> {
        if self.holding && self.checked_at.elapsed() < CHECK_EVERY {
            return Ok(true);
        }
        let asked = self.ask().await;
        if asked.is_err() {
            self.holding = false;
            self.conn = None;
        }
        asked
    }

    async fn ask(&mut self) -> Result<bool, mysql_async::Error> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self.conn.insert(Conn::new(self.opts.clone()).await?),
        };
        let sql = if self.holding { "SELECT IS_USED_LOCK(?) = CONNECTION_ID()" } else { "SELECT GET_LOCK(?, 0)" };
        let answer: Option<Option<i64>> = conn.exec_first(sql, (&self.name,)).await?;
        self.holding = answer.flatten() == Some(1);
        self.checked_at = Instant::now();
        Ok(self.holding)
    }

    /// Lets go now (closing the connection releases the lock).
    pub async fn release(&mut self) {
        self.holding = false;
        if let Some(conn) = self.conn.take() {
            let _ = conn.disconnect().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lock_name;

    #[test]
    fn lock_names_fit_mysql_and_stay_distinct() {
        assert_eq!(lock_name("shop", "coupon-issued", 3), "flashsale-sink:shop:coupon-issued:3");
        let long = lock_name("a_rather_long_database_name", "an-even-longer-topic-name-for-events", 1);
        assert_eq!(long.len(), 64);
        assert_eq!(long, lock_name("a_rather_long_database_name", "an-even-longer-topic-name-for-events", 1));
        assert_ne!(long, lock_name("a_rather_long_database_name", "an-even-longer-topic-name-for-events", 2));
    }
}
