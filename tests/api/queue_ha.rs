//! Waiting rooms on the Redis topologies the service runs on: on a Redis
//! Cluster a sale's and a campaign's rooms admit in join order, let only the
//! admitted reserve or be issued, and leave the cluster at retirement; a drill
//! kills a Sentinel group's primary mid-line and finds every acknowledged join
//! where it was, and every admission a poll handed out still honoured
//! (`ack_replicas = 1`).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        atomic::{AtomicBool, AtomicU8, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use flashsale::{
    keys::{Keys, RoomKeys},
    time::now_ms,
};
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
#[derive(Clone)]
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
    /// What polls of the line answered throughout, and what became of the admissions they showed.
    admissions: Admissions,
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
        let a = &self.admissions;
        for phase in PHASES {
            let answers: Vec<String> =
                a.polls.iter().filter(|((p, _), _)| *p == phase).map(|((_, k), n)| format!("{k}: {n}")).collect();
            eprintln!("{label}: polls sent {phase:?}: {}", answers.join(", "));
        }
        eprintln!(
            "{label}: {} tickets shown admitted (first shown: {:?}); after the failover {} honoured ({:?}), \
             {} lapsed, {} taken back",
            a.shown.len(),
            a.first_shown(),
            a.honoured.values().sum::<u64>(),
            a.honoured,
            a.lapsed,
            a.taken_back.len()
        );
        for taken in a.taken_back.values().take(5) {
            eprintln!("  {label}: {taken}");
        }
    }
}

/// What the drill had done to the Redis group when a poll was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Both nodes up.
    Before,
    /// The replica stalled (SIGSTOP), the primary up: nothing written now can reach a replica.
    Stalled,
    /// The primary killed, the replica not yet promoted.
    Down,
    /// The replica promoted, with no replica of its own yet.
    Promoted,
    /// The old primary back, as the new one's replica.
    Recovered,
}

const PHASES: [Phase; 5] = [Phase::Before, Phase::Stalled, Phase::Down, Phase::Promoted, Phase::Recovered];

/// The drill's phase, shared with the poller.
#[derive(Clone, Default)]
struct PhaseNow(Arc<AtomicU8>);

impl PhaseNow {
    fn get(&self) -> Phase {
        PHASES[usize::from(self.0.load(Relaxed))]
    }

    fn set(&self, phase: Phase) {
        self.0.store(phase as u8, Relaxed);
    }
}

/// An admission a poll handed out.
#[derive(Clone)]
struct Shown {
    user: u64,
    ticket: String,
    position: u64,
    /// The `admission` text, as the user would send it.
    admission: String,
    /// `admitted_until`, ms since the epoch.
    until: u64,
    /// When the poll that showed it was sent.
    sent: Phase,
}

/// An admitted poll's `admitted_until`, ms since the epoch.
fn admitted_until(poll: &Value) -> u64 {
    let until = poll["admitted_until"].as_str().and_then(|u| humantime::parse_rfc3339(u).ok());
    until.expect("an admitted ticket's admitted_until").duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// What polls handed out during the drill, and what became of it.
#[derive(Default)]
struct Admissions {
    /// Poll answers ("200 waiting", "503 outcome_unknown", ...) by the phase each poll was sent in.
    polls: BTreeMap<(Phase, String), u64>,
    /// Per ticket, each admission shown for it, first first.
    shown: BTreeMap<String, Vec<Shown>>,
    /// Per ticket, how an admission shown for it was taken back: a later poll
    /// answered it not admitted, or admitted until another time; after the
    /// failover it polled other than admitted, or reserving with it answered other than 201.
    taken_back: BTreeMap<String, String>,
    /// Admissions reserved with (201) after the failover, by when first shown.
    honoured: BTreeMap<Phase, u64>,
    /// Admissions not checked after the failover: lapsed by then.
    lapsed: u64,
    /// Users who reserved with the admission they were shown.
    reserved: BTreeSet<u64>,
}

impl Admissions {
    /// Tickets shown admitted, by the phase the first poll showing it was sent in.
    fn first_shown(&self) -> BTreeMap<Phase, u64> {
        let mut by = BTreeMap::new();
        for s in self.shown.values() {
            *by.entry(s[0].sent).or_default() += 1;
        }
        by
    }

    /// Poll answers sent in `phase` whose kind starts with `kind`.
    fn polls_sent(&self, phase: Phase, kind: &str) -> u64 {
        self.polls.iter().filter(|((p, k), _)| *p == phase && k.starts_with(kind)).map(|(_, n)| n).sum()
    }

    fn take_back(&mut self, s: &Shown, how: String) {
        self.taken_back.entry(s.ticket.clone()).or_insert_with(|| {
            format!(
                "user {} (place {}): shown admitted until {} by a poll sent {:?}, {how}",
                s.user,
                s.position,
                rfc3339(s.until),
                s.sent
            )
        });
    }

    /// Notes a poll of `j`'s ticket, sent in `sent`.
    fn note(&mut self, j: &Joined, sent: Phase, answer: Result<Response, String>) {
        let kind = match &answer {
            Ok(r) if r.status == StatusCode::OK => format!("200 {}", r.body["state"].as_str().unwrap_or("-")),
            Ok(r) => format!("{} {}", r.status.as_u16(), r.body["error"].as_str().unwrap_or("-")),
            Err(_) => "transport error".to_string(),
        };
        *self.polls.entry((sent, kind)).or_default() += 1;
        let r = match answer {
            Ok(r) if r.status == StatusCode::OK => r,
            _ => return,
        };
        let first = self.shown.get(&j.ticket).map(|s| s[0].clone());
        if r.body["state"] == "admitted" {
            let admission = r.body["admission"].as_str().expect("an admitted ticket's admission").to_string();
            let until = admitted_until(&r.body);
            if let Some(first) = first.filter(|f| f.until != until) {
                self.take_back(&first, format!("later admitted until {} (poll sent {sent:?})", rfc3339(until)));
            }
            let shown = self.shown.entry(j.ticket.clone()).or_default();
            if !shown.iter().any(|s| s.admission == admission) {
                let (user, ticket, position) = (j.user, j.ticket.clone(), j.position);
                shown.push(Shown { user, ticket, position, admission, until, sent });
            }
        } else if let Some(first) = first.filter(|f| f.until > now_ms() + 1_000) {
            let how = format!("then polled {} at place {} (poll sent {sent:?})", r.body["state"], r.body["position"]);
            self.take_back(&first, how);
        }
    }
}

/// Each round, the first this many tickets of the line not yet shown admitted
/// are polled (the room admits from there), besides every one shown admitted.
const FRONT: usize = 30;

/// Polls the front of the line and every ticket shown admitted four times a
/// second, until `stop`: all at once, a ticket's next poll sent once its last
/// is answered (while the replica stalls, a poll may wait out the ack timeout
/// or the Redis timeout; the others go on).
async fn poll_the_line(
    app: Arc<TestApp>,
    joined: Arc<Mutex<Vec<Joined>>>,
    phase: PhaseNow,
    stop: Arc<AtomicBool>,
) -> Admissions {
    let mut seen = Admissions::default();
    let mut in_flight = BTreeSet::new();
    let mut polls = tokio::task::JoinSet::<(Joined, Phase, Result<Response, String>)>::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Relaxed) {
        tick.tick().await;
        while let Some(done) = polls.try_join_next() {
            let (j, sent, answer) = done.unwrap();
            in_flight.remove(&j.ticket);
            seen.note(&j, sent, answer);
        }
        let mut round: Vec<Joined> =
            joined.lock().unwrap().iter().filter(|j| !seen.shown.contains_key(&j.ticket)).cloned().collect();
        round.sort_by_key(|j| j.position);
        round.truncate(FRONT);
        round.extend(seen.shown.values().map(|s| {
            let s = &s[0];
            Joined { user: s.user, ticket: s.ticket.clone(), position: s.position }
        }));
        for j in round {
            if !in_flight.insert(j.ticket.clone()) {
                continue;
            }
            let (app, phase) = (app.clone(), phase.clone());
            polls.spawn(async move {
                let sent = phase.get();
                let answer = app.try_request(Method::GET, &format!("{ROOM}/queue/{}", j.ticket), None).await;
                (j, sent, answer)
            });
        }
    }
    while let Some(done) = polls.join_next().await {
        let (j, sent, answer) = done.unwrap();
        seen.note(&j, sent, answer);
    }
    seen
}

/// The answer once the service answers other than 503: a 503 or a transport
/// error is tried again for up to 10 s (the last answer then).
async fn answered(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    headers: &[(&str, &str)],
) -> Response {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match app.try_request_with(method.clone(), path, body.clone(), headers).await {
            Ok(r) if r.status != StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline => return r,
            Err(e) if Instant::now() > deadline => panic!("{method} {path}: {e}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// After the failover, every admission a poll showed, the latest place first
/// (the room, had it lost them, would admit those last again): unless lapsed,
/// its ticket polls admitted until the same time (not admitted anew), and
/// reserving with that admission answers 201.
async fn check_shown(app: &TestApp, seen: &mut Admissions) {
    let mut shown: Vec<Shown> = seen.shown.values().map(|s| s[0].clone()).collect();
    shown.sort_by_key(|s| std::cmp::Reverse(s.position));
    for s in shown {
        if s.until <= now_ms() + 2_000 {
            seen.lapsed += 1;
            continue;
        }
        let r = answered(app, Method::GET, &format!("{ROOM}/queue/{}", s.ticket), None, &[]).await;
        if r.status != StatusCode::OK || r.body["state"] != "admitted" || admitted_until(&r.body) != s.until {
            seen.take_back(&s, format!("after the failover polled {} {}", r.status.as_u16(), r.body));
        }
        let body = serde_json::to_vec(&json!({ "user_id": s.user, "items": [{ "sku": 1, "quantity": 1 }] })).unwrap();
        let key = format!("queue-ha-{}", s.user);
        let headers = [("flashsale-admission", s.admission.as_str()), ("idempotency-key", key.as_str())];
        let r = answered(app, Method::POST, &format!("{ROOM}/orders"), Some(body), &headers).await;
        if r.status == StatusCode::CREATED {
            *seen.honoured.entry(s.sent).or_default() += 1;
            seen.reserved.insert(s.user);
        } else {
            seen.take_back(
                &s,
                format!("after the failover reserving with it answered {} {}", r.status.as_u16(), r.body),
            );
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
/// acknowledged join is looked for. All along the front of the line is polled
/// (at 40 a second the room admits through the stall, some 300 joins ahead);
/// once the old primary is back, every admission those polls showed is checked.
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
    app.create_sale(1, &["1:100:100000"], &["--queue", "--admit-per-second", "40"]);
    // The CLI does not wait for the replica: the room itself is not what is drilled.
    tokio::task::block_in_place(|| ha.wait_for_replicas_caught_up(ha.primary.port));

    let stop = Arc::new(AtomicBool::new(false));
    let joined = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let phase = PhaseNow::default();
    let polls_stop = Arc::new(AtomicBool::new(false));
    let poller = tokio::spawn(poll_the_line(app.clone(), joined.clone(), phase.clone(), polls_stop.clone()));
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
    phase.set(Phase::Stalled);
    ballast(ha.primary.port).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ha.primary.kill9();
    phase.set(Phase::Down);
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    ha.replica.pause(false);
    let second = ha.replica.port;
    tokio::task::block_in_place(|| ha.wait_for_primary(second, Duration::from_secs(30)));
    let failover = killed.elapsed();
    phase.set(Phase::Promoted);
    // The old primary comes back empty as a replica: the new one takes writes
    // only with a replica (`min-replicas-to-write 1`).
    tokio::task::block_in_place(|| ha.bring_back_old_primary(second));
    phase.set(Phase::Recovered);
    // At once: an admission the failover took back, the room soon gives again
    // (until another time) as it admits on in place order.
    polls_stop.store(true, Relaxed);
    let mut admissions = poller.await.unwrap();
    check_shown(&app, &mut admissions).await;
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
    Drill { app, _ha: ha, joined, refused, failover, lost, admissions }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "kills Redis processes; run alone: scripts/test runs it after the suite"]
async fn chaos_a_room_survives_a_sentinel_failover_with_replica_acks() {
    let drill = join_through_a_failover(1).await;
    drill.print("room, ack replicas=1");
    assert!(drill.refused.values().sum::<u64>() > 0, "the joins saw the outage");
    assert!(!drill.refused.keys().any(|k| k.starts_with("500")), "an outage is a 503, not a 500: {:?}", drill.refused);
    assert!(drill.lost.is_empty(), "acknowledged joins lost: {:#?}", &drill.lost[..drill.lost.len().min(10)]);

    // Every admission a poll handed out holds through the failover: a later
    // poll of its ticket answers it admitted until the same time, and after
    // the failover reserving with it answers 201 (unless lapsed).
    let a = &drill.admissions;
    let taken_back: Vec<&String> = a.taken_back.values().take(10).collect();
    assert!(a.taken_back.is_empty(), "{} admissions shown, then taken back: {taken_back:#?}", a.taken_back.len());
    assert_eq!(a.honoured.values().sum::<u64>() + a.lapsed, a.shown.len() as u64);
    // Not vacuously: admissions shown before the stall were honoured after it.
    assert!(a.honoured.get(&Phase::Before).is_some_and(|&n| n >= 5), "admissions honoured: {:?}", a.honoured);
    // While the replica stalled, no admission could be held by a replica: the
    // polls that would have shown one answered 503.
    assert_eq!(a.polls_sent(Phase::Stalled, "200 admitted"), 0, "admitted while the replica stalled: {:?}", a.polls);
    assert!(a.polls_sent(Phase::Stalled, "503") > 0, "no poll saw the stall: {:?}", a.polls);

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
    // Five admitted since who did not reserve in the drill.
    let fresh: Vec<usize> = (0..line.len())
        .filter(|&i| answers[i]["state"] == "admitted" && !a.reserved.contains(&line[i].user))
        .take(5)
        .collect();
    assert_eq!(fresh.len(), 5, "admitted and not reserved yet: {fresh:?}");
    for i in fresh {
        let r = enter(app, ROOM, line[i].user, Some(&admission(i))).await;
        assert_eq!(r.status, StatusCode::CREATED, "user {} (place {}): {:?}", line[i].user, line[i].position, r.body);
    }
    let expected = a.reserved.len() as u64 + 5;
    let orders = app.wait_for_sql("SELECT COUNT(*) FROM orders WHERE sale_id = 1", expected).await;
    assert_eq!(orders, expected, "the drill's and the five admitted reservations, and no other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "kills Redis processes; run alone: scripts/test runs it after the suite"]
async fn chaos_a_room_in_async_mode_loses_joins_the_stalled_replica_missed() {
    let drill = join_through_a_failover(0).await;
    drill.print("room, ack replicas=0");
    // The drill can fail: without the replica's ack, joins answered 201 during the stall are gone.
    assert!(!drill.lost.is_empty(), "async mode lost no acknowledged join: the drill no longer bites");
}
