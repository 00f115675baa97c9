//! The sink takes the rows it writes in key order, so two partitions'
//! batches that share coupon rows wait for each other instead of
//! deadlocking (MySQL 1213), whatever order their events came in.

use flashsale::{
    events::{CouponIssued, Event},
    sink::writer::{self, WriteError},
};

use crate::helpers::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_sharing_coupon_rows_in_opposite_orders_never_deadlock() {
    let app = TestApp::spawn().await;
    let (topic, rounds, users) = ("lock-order", 20u64, 300u64);
    let mut next = [0i64; 2];
    for partition in [0, 1] {
        writer::start_offset(&app.mysql, topic, partition).await.unwrap();
    }
    let batch = |coupon: u64, partition: i32| -> Vec<Event> {
        let mut order: Vec<u64> = (1..=users).collect();
        if partition == 1 {
            order.reverse();
        }
        order
            .into_iter()
            .map(|user| {
                Event::CouponIssued(CouponIssued {
                    event_id: format!("c{coupon}-{partition}-{user}"),
                    coupon_id: coupon,
                    user_id: user,
                    issued_at: 1_800_000_000_000,
                })
            })
            .collect()
    };
    let mut deadlocks = 0;
    for round in 0..rounds {
        let coupon = 1_000 + round;
        let (a, b) = (batch(coupon, 0), batch(coupon, 1));
        let (ra, rb) = tokio::join!(
            writer::write_batch(&app.mysql, topic, 0, next[0], next[0] + 1, &a),
            writer::write_batch(&app.mysql, topic, 1, next[1], next[1] + 1, &b),
        );
        for (partition, result) in [(0, ra), (1, rb)] {
            match result {
                Ok(()) => next[partition] += 1,
                Err(WriteError::Mysql(mysql_async::Error::Server(e))) if e.code == 1213 => deadlocks += 1,
                Err(e) => panic!("partition {partition}: {e}"),
            }
        }
    }
    assert_eq!(deadlocks, 0, "batches in opposite orders deadlocked {deadlocks} times in {rounds} rounds");
    assert_eq!(next, [rounds as i64; 2], "every batch committed");
    let rows: Vec<u64> = app.sql("SELECT COUNT(*) FROM coupon_issues WHERE coupon_id >= 1000").await;
    assert_eq!(rows[0], rounds * users);
}
