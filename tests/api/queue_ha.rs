//! Waiting rooms on the Redis topologies the service runs on: on a Redis
//! Cluster a sale's and a campaign's rooms admit in join order, let only the
//! admitted reserve or be issued, and leave the cluster at retirement; a drill
//! kills a Sentinel group's primary mid-line and finds every acknowledged join
//! where it was (`ack_replicas = 1`).

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use flashsale::keys::{Keys, RoomKeys};
use fred::prelude::*;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::{cluster::cluster_url, ha_redis::HaRedis, helpers::TestApp, queue::QUEUE_SECRET, requests::Response};

/// `room`: `/v1/sales/ID` or `/v1/coupons/ID`.
async fn join(app: &TestApp, room: &str, user: u64) -> Response {
    app.post(&format!("{room}/queue"), &json!({ "user_id": user }), &[]).await
}

async fn poll(app: &TestApp, room: &str, ticket: &str) -> Response {
    app.get(&format!("{room}/queue/{ticket}")).await
}

/// What the room stands in front of: one unit of SKU 1 reserved (a sale's), or an issue (a campaign's).
async fn enter(app: &TestApp, room: &str, user: u64, admission: Option<&str>) -> Response {
    let headers: Vec<(&str, &str)> = admission.map(|a| ("flashsale-admission", a)).into_iter().collect();
    if room.contains("/sales/") {
        let body = json!({ "user_id": user, "items": [{ "sku": 1, "quantity": 1 }] });
        app.post(&format!("{room}/orders"), &body, &headers).await
    } else {
        app.post(&format!("{room}/issue"), &json!({ "user_id": user }), &headers).await
    }
}

/// Polls `tickets` (in line order) until the first `n` are admitted, checking at
/// every look that the admitted are a prefix of the line; the last answers.
async fn admitted_in_order(app: &TestApp, room: &str, tickets: &[String], n: usize, limit: Duration) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    loop {
        let mut answers = Vec::with_capacity(tickets.len());
        for t in tickets {
            let r = poll(app, room, t).await;
            assert_eq!(r.status, StatusCode::OK, "{room}: {:?}", r.body);
            answers.push(r.body);
        }
        let admitted: Vec<bool> = answers.iter().map(|a| a["state"] == "admitted").collect();
        let k = admitted.iter().take_while(|a| **a).count();
        assert!(admitted[k..].iter().all(|a| !a), "{room}: admitted out of join order: {admitted:?}");
        if k >= n {
            return answers;
        }
        assert!(Instant::now() < deadline, "{room}: {k} of {n} admitted after {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn refusal(r: &Response) -> (StatusCode, Option<&str>) {
    (r.status, r.body["error"].as_str())
}

/// The room's keys in Redis and its sale's or campaign's meta (`queue_joined`: user 1's part).
async fn room_keys_left(redis: &Client, meta: &str, room: &RoomKeys) -> u64 {
    let part = format!("{}:1", room.joined);
    let keys: [&str; 6] = [meta, &room.queue, &room.users, &room.marks, &room.admitted, &part];
    let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    redis.exists(keys).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_cluster_rooms_admit_in_join_order_and_only_the_admitted_reserve_or_are_issued() {
    let app = TestApp::spawn_with(|c| {
        c.redis.redis_url = cluster_url();
        c.redis.ack_replicas = 1;
        c.http.queue_secret = Some(QUEUE_SECRET.parse().unwrap());
        c.retention.retain_after_end = Duration::from_secs(1);
    })
    .await;
    let keys = Keys::new(app.config.redis.key_prefix.clone());
    let redis = flashsale::redis::client(&app.config.redis).await.unwrap();
    // A sale and a campaign that end soon: their rooms must leave the cluster.
    let ends = (SystemTime::now() + Duration::from_secs(10)).duration_since(UNIX_EPOCH).unwrap().as_secs().to_string();
    app.create_sale(32, &["1:100:10"], &["--queue", "--ends-at", &ends]);
    app.create_coupon(32, 10, &["--queue", "--ends-at", &ends]);
    for room in ["/v1/sales/32", "/v1/coupons/32"] {
        assert_eq!(join(&app, room, 1).await.status, StatusCode::CREATED, "{room}");
    }
    let (sale_32, coupon_32) = (keys.sale(32), keys.coupon(32));
    assert!(room_keys_left(&redis, &sale_32.meta, &sale_32.room).await >= 5, "the sale's room is in Redis");
    assert!(room_keys_left(&redis, &coupon_32.meta, &coupon_32.room).await >= 5, "the campaign's room is in Redis");

    let (sale, campaign) = ("/v1/sales/31", "/v1/coupons/31");
    app.create_sale(31, &["1:100:100"], &["--queue", "--admit-per-second", "10"]);
    app.create_coupon(31, 3, &["--queue", "--admit-per-second", "10"]);
    let mut tickets = Vec::new();
    for user in 1..=12u64 {
        let r = join(&app, sale, user).await;
        assert_eq!((r.status, &r.body["position"]), (StatusCode::CREATED, &json!(user)), "{:?}", r.body);
        tickets.push(r.body["ticket"].as_str().unwrap().to_string());
    }
    let again = join(&app, sale, 5).await;
    assert_eq!((again.status, again.body["ticket"].as_str()), (StatusCode::OK, Some(tickets[4].as_str())));
    for user in [12, 99] {
        let r = enter(&app, sale, user, None).await;
        assert_eq!(refusal(&r), (StatusCode::FORBIDDEN, Some("not_admitted")), "user {user}");
    }

    // At 10 a second, 12 joins take about a second, admitted in join order.
    let answers = admitted_in_order(&app, sale, &tickets, 12, Duration::from_secs(20)).await;
    let admission = |i: usize| answers[i]["admission"].as_str().unwrap().to_string();
    let r = enter(&app, sale, 2, Some(&admission(0))).await;
    assert_eq!(refusal(&r), (StatusCode::FORBIDDEN, Some("not_admitted")), "another user's admission");
    for user in 1..=12u64 {
        let r = enter(&app, sale, user, Some(&admission(user as usize - 1))).await;
        assert_eq!(r.status, StatusCode::CREATED, "user {user}: {:?}", r.body);
    }
    let r = enter(&app, sale, 1, Some(&admission(0))).await;
    assert_eq!(refusal(&r), (StatusCode::FORBIDDEN, Some("not_admitted")), "an admission is used once");
    assert_eq!(app.remaining(31).await[&1], 88);

    // Three coupons: the first three joins are admitted, the other two never.
    let mut coupon_tickets = Vec::new();
    for user in 1..=5u64 {
        let r = join(&app, campaign, user).await;
        assert_eq!((r.status, &r.body["position"]), (StatusCode::CREATED, &json!(user)), "{:?}", r.body);
        coupon_tickets.push(r.body["ticket"].as_str().unwrap().to_string());
    }
    let answers = admitted_in_order(&app, campaign, &coupon_tickets, 3, Duration::from_secs(20)).await;
    assert!(answers[3..].iter().all(|a| a["state"] != "admitted"), "{answers:?}");
    for user in [4, 99] {
        let r = enter(&app, campaign, user, None).await;
        assert_eq!(refusal(&r), (StatusCode::FORBIDDEN, Some("not_admitted")), "user {user}");
    }
    for user in 1..=3u64 {
        let r = enter(&app, campaign, user, answers[user as usize - 1]["admission"].as_str()).await;
        assert_eq!(r.status, StatusCode::CREATED, "user {user}: {:?}", r.body);
    }

    // What the rooms let through reaches MySQL.
    let mut holders = app.wait_for_rows(31, 3).await;
    holders.sort_unstable();
    assert_eq!(holders, vec![1, 2, 3]);
    assert_eq!(app.wait_for_sql("SELECT COUNT(*) FROM orders WHERE sale_id = 31", 12).await, 12);

    // The ended sale's and campaign's rooms leave the cluster with them.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = room_keys_left(&redis, &sale_32.meta, &sale_32.room).await
            + room_keys_left(&redis, &coupon_32.meta, &coupon_32.room).await;
        let rooms: Vec<String> = redis.smembers(keys.queues()).await.unwrap();
        let listed = rooms.iter().filter(|r| r.ends_with(":32")).count();
        if left == 0 && listed == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "after the end: {left} room keys left, rooms {rooms:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = redis.quit().await;
}

/// An acknowledged join (201): who, and the ticket and place they were given.
struct Joined {
    user: u64,
    ticket: String,
    position: u64,
}

/// What the drill saw.
struct Drill {
    app: Arc<TestApp>,
    /// Kept to the end: dropped, the servers die (after the app, which forgets its keys).
    _ha: HaRedis,
    /// Acknowledged joins, in answer order.
    joined: Vec<Joined>,
    /// The joins' other answers, by status and error code.
    refused: BTreeMap<String, u64>,
    failover: Duration,
    /// Acknowledged joins the room lost: a poll not 200 at the same place (or
    /// expired), a join again not a 200 with the same ticket, a place given twice.
    lost: Vec<String>,
}

impl Drill {
    fn print(&self, label: &str) {
        eprintln!(
            "{label}: {} joins acknowledged, other answers {:?}, failover {:.1} s, {} signs of lost joins",
            self.joined.len(),
            self.refused,
            self.failover.as_secs_f64(),
            self.lost.len()
        );
        for lost in self.lost.iter().take(5) {
            eprintln!("  {label}: {lost}");
        }
    }
}

const ROOM: &str = "/v1/sales/1";

/// 48 MB written to the primary at `port`. A stalled replica's socket still
/// takes what a few joins write, and gets it on waking even with the primary
/// dead; behind this, they wait in the primary's memory and die with it.
async fn ballast(port: u16) {
    let url = format!("redis://127.0.0.1:{port}");
    let client = Builder::from_config(Config::from_url(&url).unwrap()).build().unwrap();
    client.init().await.unwrap();
    let _: () = client.set("ballast", bytes::Bytes::from(vec![b'.'; 48 << 20]), None, None, false).await.unwrap();
    let _ = client.quit().await;
}

/// Fresh users join sale 1's room while the replica stalls and the primary is
/// killed -9; Sentinel promotes the replica, joins go on; then every
/// acknowledged join is looked for.
async fn join_through_a_failover(ack_replicas: u32) -> Drill {
    let mut ha = HaRedis::start(true);
    let url = ha.sentinel_url();
    let app = Arc::new(
        TestApp::spawn_with(|c| {
            c.redis.redis_url = url;
            c.redis.redis_timeout_ms = 1_000;
            c.redis.ack_replicas = ack_replicas;
            c.redis.ack_timeout_ms = 500;
            c.http.queue_secret = Some(QUEUE_SECRET.parse().unwrap());
        })
        .await,
    );
    app.create_sale(1, &["1:100:100000"], &["--queue", "--admit-per-second", "20"]);
    // The CLI does not wait for the replica: the room itself is not what is drilled.
    tokio::task::block_in_place(|| ha.wait_for_replicas_caught_up(ha.primary.port));

    let stop = Arc::new(AtomicBool::new(false));
    let joined = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..4u64 {
        let (app, stop, joined, refused) = (app.clone(), stop.clone(), joined.clone(), refused.clone());
        tasks.spawn(async move {
            for n in 1.. {
                if stop.load(Relaxed) {
                    break;
                }
                let user = client * 1_000_000 + n;
                let body = serde_json::to_vec(&json!({ "user_id": user })).unwrap();
                let answer = app.try_request(Method::POST, &format!("{ROOM}/queue"), Some(body)).await;
                let kind = match answer {
                    Ok(r) if r.status == StatusCode::CREATED => {
                        let ticket = r.body["ticket"].as_str().unwrap().to_string();
                        let position = r.body["position"].as_u64().unwrap();
                        joined.lock().unwrap().push(Joined { user, ticket, position });
                        None
                    }
                    Ok(r) => Some(format!("{} {}", r.status.as_u16(), r.body["error"].as_str().unwrap_or("-"))),
                    Err(_) => Some("transport error".to_string()),
                };
                if let Some(kind) = kind {
                    *refused.lock().unwrap().entry(kind).or_default() += 1;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // As failover.rs's crash drill: what the primary takes while the replica
    // stalls dies with it.
    ha.replica.pause(true);
    ballast(ha.primary.port).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ha.primary.kill9();
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    ha.replica.pause(false);
    let second = ha.replica.port;
    tokio::task::block_in_place(|| ha.wait_for_primary(second, Duration::from_secs(30)));
    let failover = killed.elapsed();
    // The old primary comes back empty as a replica: the new one takes writes
    // only with a replica (`min-replicas-to-write 1`).
    ha.primary.restart();
    tokio::task::block_in_place(|| ha.wait_for_replicas(second, 1));
    let before = joined.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(30);
    while joined.lock().unwrap().len() < before + 20 {
        assert!(Instant::now() < deadline, "joins never acknowledged again after the failover: {refused:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Relaxed);
    while tasks.join_next().await.is_some() {}

    let joined = std::mem::take(&mut *joined.lock().unwrap());
    let refused = refused.lock().unwrap().clone();
    let mut lost = Vec::new();
    let mut places = BTreeMap::new();
    for j in &joined {
        if let Some(other) = places.insert(j.position, j.user) {
            lost.push(format!("place {} given to user {other} and to user {}", j.position, j.user));
        }
        let r = poll(&app, ROOM, &j.ticket).await;
        if r.status != StatusCode::OK || r.body["position"] != j.position || r.body["state"] == "expired" {
            lost.push(format!("user {} (place {}): poll {} {}", j.user, j.position, r.status, r.body));
        }
        let again = join(&app, ROOM, j.user).await;
        if again.status != StatusCode::OK || again.body["ticket"] != j.ticket.as_str() {
            lost.push(format!("user {} (place {}): joined again {} {}", j.user, j.position, again.status, again.body));
        }
    }
    Drill { app, _ha: ha, joined, refused, failover, lost }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "kills Redis processes; run alone: scripts/test runs it after the suite"]
async fn chaos_a_room_survives_a_sentinel_failover_with_replica_acks() {
    let drill = join_through_a_failover(1).await;
    drill.print("room, ack replicas=1");
    assert!(drill.refused.values().sum::<u64>() > 0, "the joins saw the outage");
    assert!(!drill.refused.keys().any(|k| k.starts_with("500")), "an outage is a 503, not a 500: {:?}", drill.refused);
    assert!(drill.lost.is_empty(), "acknowledged joins lost: {:#?}", &drill.lost[..drill.lost.len().min(10)]);

    // Admission goes on in join order after the failover.
    let app = &drill.app;
    let mut line: Vec<&Joined> = drill.joined.iter().collect();
    line.sort_by_key(|j| j.position);
    let tickets: Vec<String> = line.iter().map(|j| j.ticket.clone()).collect();
    let now = admitted_in_order(app, ROOM, &tickets, 0, Duration::ZERO).await;
    let admitted = now.iter().filter(|a| a["state"] == "admitted").count();
    let answers =
        admitted_in_order(app, ROOM, &tickets, (admitted + 20).min(tickets.len()), Duration::from_secs(30)).await;

    // Only the admitted reserve, each with their own admission.
    let admission = |i: usize| answers[i]["admission"].as_str().unwrap().to_string();
    let last = line.last().unwrap();
    if answers.last().unwrap()["state"] != "admitted" {
        let r = enter(app, ROOM, last.user, None).await;
        assert_eq!(refusal(&r), (StatusCode::FORBIDDEN, Some("not_admitted")), "still waiting");
    }
    let r = enter(app, ROOM, last.user, Some(&admission(0))).await;
    assert_eq!(refusal(&r), (StatusCode::FORBIDDEN, Some("not_admitted")), "another user's admission");
    let r = enter(app, ROOM, line[0].user, None).await;
    assert_eq!(refusal(&r), (StatusCode::FORBIDDEN, Some("not_admitted")), "admitted, without the header");
    for (i, j) in line.iter().take(5).enumerate() {
        let r = enter(app, ROOM, j.user, Some(&admission(i))).await;
        assert_eq!(r.status, StatusCode::CREATED, "user {} (place {}): {:?}", j.user, j.position, r.body);
    }
    let orders = app.wait_for_sql("SELECT COUNT(*) FROM orders WHERE sale_id = 1", 5).await;
    assert_eq!(orders, 5, "the five admitted reservations, and no other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "kills Redis processes; run alone: scripts/test runs it after the suite"]
async fn chaos_a_room_in_async_mode_loses_joins_the_stalled_replica_missed() {
    let drill = join_through_a_failover(0).await;
    drill.print("room, ack replicas=0");
    // The drill can fail: without the replica's ack, joins answered 201 during the stall are gone.
    assert!(!drill.lost.is_empty(), "async mode lost no acknowledged join: the drill no longer bites");
}
