//! Fault injection for wallet payments: `kill -9` of the service while many
//! clients pay orders from their wallets. Whatever step a payment was at,
//! afterwards every debit has its paid order and every wallet-paid order its
//! one debit. `#[ignore]`d like the other chaos tests: `scripts/test` runs
//! them alone.
//!
//! How it can fail: make the recovery pass release every interrupted hold
//! (`WalletOutcome::Debited(_) => true` -> `false` in `src/wallet/pay.rs`)
//! and the debits made before a kill stay without their paid order.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, Instant},
};

use hyper::{Method, StatusCode};
use serde_json::json;

use crate::{
    chaos::Service,
    helpers::{free_port, TestApp},
};

const USERS: u64 = 40;
const CLIENTS: u64 = 32;
const PRICE: u64 = 100;

/// The wallet payments MySQL holds: (sale, order) -> debits, and the wallet-paid orders.
async fn ledger(app: &TestApp) -> (BTreeMap<(u64, u64), u64>, BTreeSet<(u64, u64)>) {
    let debits: Vec<(u64, u64, u64)> = app
        .sql("SELECT sale_id, order_id, COUNT(*) FROM wallet_transactions WHERE kind = 'payment' GROUP BY sale_id, order_id")
        .await;
    let paid: Vec<(u64, u64)> =
        app.sql("SELECT sale_id, order_id FROM orders WHERE status = 'paid' AND payment_key = 'wallet'").await;
    (debits.into_iter().map(|(s, o, n)| ((s, o), n)).collect(), paid.into_iter().collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "kills processes; run alone: scripts/test runs it after the suite"]
async fn chaos_kill_9_during_wallet_payments_never_splits_a_debit_from_its_order() {
    let port = free_port();
    let mut app = TestApp::prepare_with(|c| c.redis.redis_timeout_ms = 1_000).await;
    app.create_sale(1, &[&format!("1:{PRICE}:1000000")], &[]);
    app.addr = ([127, 0, 0, 1], port).into();
    let app = Arc::new(app);
    // A short hold, so the recovery pass meets interrupted payments within the drill.
    let mut service = Service::start_with(&app, port, &[("FLASHSALE_WALLET_HOLD_MS", "1000")]);
    // Enough for about 300 orders each: some run dry during the drill (402s).
    for user in 1..=USERS {
        let res = app.charge(user, json!(30_000), "start").await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let (paid_2xx, answered) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let (app, stop, paid_2xx, answered) = (app.clone(), stop.clone(), paid_2xx.clone(), answered.clone());
        clients.spawn(async move {
            let mut paid = BTreeSet::new();
            let mut n = 0;
            while !stop.load(Relaxed) {
                n += 1;
                let user = 1 + (client + n) % USERS;
                let Ok(order) = app.try_reserve(1, user, &[(1, 1)]).await else { continue };
                let Some(order) = order.body["order_id"].as_u64() else { continue };
                let path = format!("/v1/sales/1/orders/{order}/pay");
                let body = serde_json::to_vec(&json!({"method": "wallet"})).unwrap();
                if let Ok(res) = app.try_request(Method::POST, &path, Some(body)).await {
                    answered.fetch_add(1, Relaxed);
                    if res.status == StatusCode::OK {
                        paid_2xx.fetch_add(1, Relaxed);
                        paid.insert(order);
                    }
                }
            }
            paid
        });
    }
    for kill in 0..5u64 {
        tokio::time::sleep(Duration::from_millis(700 + 131 * kill)).await;
        service.kill9();
        service.restart();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Relaxed);
    let paid_answers: BTreeSet<u64> = clients.join_all().await.into_iter().flatten().collect();

    // The recovery pass settles the interrupted holds; then the pipe drains.
    let deadline = Instant::now() + Duration::from_secs(120);
    let (debits, paid) = loop {
        let out = app.cli(&["reconcile"]);
        let (debits, paid) = ledger(&app).await;
        let debited: BTreeSet<(u64, u64)> = debits.keys().copied().collect();
        if out.code == Some(0) && debited == paid {
            break (debits, paid);
        }
        assert!(
            Instant::now() < deadline,
            "never settled: {} debited orders, {} paid by wallet; debited not paid {:?}; paid not debited {:?}\n{}",
            debited.len(),
            paid.len(),
            debited.difference(&paid).take(5).collect::<Vec<_>>(),
            paid.difference(&debited).take(5).collect::<Vec<_>>(),
            out.stdout
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let doubled: Vec<_> = debits.iter().filter(|(_, n)| **n != 1).collect();
    assert!(doubled.is_empty(), "orders debited more than once: {doubled:?}");
    let lost: Vec<_> = paid_answers.iter().filter(|o| !paid.contains(&(1, **o))).collect();
    assert!(lost.is_empty(), "answered 200 but not paid: {lost:?}");
    for user in 1..=USERS {
        let (sum, _) = app.mysql_history(user).await;
        assert_eq!(sum, app.balance(user).await as i64, "user {user}: history sums to the balance");
    }
    println!(
        "chaos wallet kill -9: {} pays answered, {} paid 200, 5 kills, {} orders paid by wallet, each with one debit",
        answered.load(Relaxed),
        paid_2xx.load(Relaxed),
        paid.len()
    );
}
