//! What a waiting room survives: the retirement of its sale or campaign, a
//! kill -9 of the service mid-line, and Redis losing it (`stock load` /
//! `coupon load` bring it back) — on the real servers.

use std::time::{Duration, Instant};

use fred::prelude::*;
use hyper::StatusCode;
use serde_json::{json, Value};

use crate::{
    helpers::TestApp,
    queue::{app, QUEUE_SECRET},
};

#[tokio::test]
async fn a_room_leaves_redis_with_its_sale_or_campaign() {
    let app = TestApp::spawn_with(|c| {
        c.http.queue_secret = Some(QUEUE_SECRET.parse().unwrap());
        c.retention.retain_after_end = Duration::from_secs(1);
    })
    .await;
    let ends = (std::time::SystemTime::now() + Duration::from_secs(4)).duration_since(std::time::UNIX_EPOCH).unwrap();
    let ends = ends.as_secs().to_string();
    app.create_sale(11, &["1:100:10"], &["--queue", "--ends-at", &ends]);
    app.create_coupon(11, 10, &["--queue", "--ends-at", &ends]);
    assert_eq!(app.join(11, 1).await.status, StatusCode::CREATED);
    let r = app.post("/v1/coupons/11/queue", &json!({ "user_id": 1 }), &[]).await;
    assert_eq!(r.status, StatusCode::CREATED);

    let redis = flashsale::redis::client(&app.config.redis).await.unwrap();
    let prefix = app.config.redis.key_prefix.clone();
    let queue_keys = crate::retirement::keys_under(&redis, &prefix).await;
    for room in ["{sale:11}:queue", "{coupon:11}:queue"] {
        let n = queue_keys.iter().filter(|k| k.contains(room)).count();
        assert!(n >= 4, "{room}: the room's keys are there ({n}): {queue_keys:?}");
    }
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let keys = crate::retirement::keys_under(&redis, &prefix).await;
        let left: Vec<_> = keys.iter().filter(|k| k.contains("{sale:11}") || k.contains("{coupon:11}")).collect();
        let rooms: Vec<String> = redis.smembers(format!("{prefix}queues")).await.unwrap();
        if left.is_empty() && rooms.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still there after the end: {left:?}, rooms {rooms:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One request to `127.0.0.1:port` (HTTP/1.1, closed after): status and JSON body.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    use std::io::{Read, Write};
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let json =
        answer.split_once("\r\n\r\n").map_or(Value::Null, |(_, b)| serde_json::from_str(b).unwrap_or(Value::Null));
    (status, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kill_9_of_the_service_mid_queue_loses_nobodys_place() {
    let app = app().await;
    app.create_sale(16, &["1:100:100"], &["--queue", "--admit-per-second", "5"]);
    let port = crate::helpers::free_port();
    let settings = [("FLASHSALE_QUEUE_SECRET", QUEUE_SECRET), ("FLASHSALE_QUEUE_JOINS_PER_IP", "0")];
    let mut service = crate::chaos::Service::start_with(&app, port, &settings);
    let mut tickets = Vec::new();
    for user in 1..=30u64 {
        let (status, body) = http(port, "POST", "/v1/sales/16/queue", Some(&json!({ "user_id": user })));
        assert_eq!((status, &body["position"]), (201, &json!(user)), "{body}");
        tickets.push(body["ticket"].as_str().unwrap().to_string());
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    service.kill9();
    service.restart();

    // Every ticket is where it was, and the line goes on in order to the last.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut states = Vec::new();
        for (i, t) in tickets.iter().enumerate() {
            let (status, body) = http(port, "GET", &format!("/v1/sales/16/queue/{t}"), None);
            assert_eq!((status, &body["position"]), (200, &json!(i + 1)), "ticket {i} after the restart: {body}");
            states.push(body["state"].as_str().unwrap().to_string());
        }
        let n = states.iter().filter(|s| *s == "admitted").count();
        assert!(states[..n].iter().all(|s| s == "admitted"), "admitted out of order: {states:?}");
        if n == tickets.len() {
            break;
        }
        assert!(Instant::now() < deadline, "not all admitted after the restart: {states:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn a_sale_or_campaign_loaded_after_redis_lost_it_gets_its_room_back() {
    let app = app().await;
    app.create_sale(17, &["1:100:10"], &["--queue", "--admit-per-second", "7", "--pow-difficulty", "5"]);
    app.create_coupon(17, 10, &["--queue", "--admit-per-second", "9"]);
    let lost = app.post("/v1/coupons/17/queue", &json!({ "user_id": 1 }), &[]).await;
    assert_eq!(lost.status, StatusCode::CREATED);
    let lost_ticket = lost.body["ticket"].as_str().unwrap().to_string();
    // Redis loses both, every key of theirs.
    let redis = flashsale::redis::client(&app.config.redis).await.unwrap();
    let keys = crate::retirement::keys_under(&redis, &app.config.redis.key_prefix).await;
    let theirs: Vec<String> =
        keys.into_iter().filter(|k| k.contains("{sale:17}") || k.contains("{coupon:17}")).collect();
    assert!(theirs.len() > 5, "{theirs:?}");
    let _: () = redis.del(theirs).await.unwrap();
    assert_ne!(app.cli(&["queue", "show", "--sale", "17"]).code, Some(0), "the room went with the keys");

    let loaded = app.cli(&["stock", "load", "--sale", "17"]).success().stdout;
    assert!(loaded.contains("waiting room (admits 7/s"), "{loaded}");
    let loaded = app.cli(&["coupon", "load", "--id", "17"]).success().stdout;
    assert!(loaded.contains("waiting room (admits 9/s"), "{loaded}");
    let shown = app.cli(&["queue", "show", "--sale", "17"]).success().stdout;
    assert!(shown.contains("limit 7") && shown.contains("proof of work of ~5"), "{shown}");
    // The settings are back (the proof of work too); the line starts empty.
    assert_eq!(app.join(17, 1).await.body["error"], "pow_required");
    let other = app.post("/v1/coupons/17/queue", &json!({ "user_id": 2 }), &[]).await;
    assert_eq!((other.status, &other.body["position"]), (StatusCode::CREATED, &json!(1)), "{:?}", other.body);
    // User 1's ticket of the lost line names join 1, now user 2's: once that
    // place is served, it is not user 1's admission.
    let deadline = Instant::now() + Duration::from_secs(5);
    let (mine, theirs) = loop {
        let theirs = app.get(&format!("/v1/coupons/17/queue/{}", other.body["ticket"].as_str().unwrap())).await.body;
        let mine = app.get(&format!("/v1/coupons/17/queue/{lost_ticket}")).await.body;
        if (theirs["state"] == "admitted" && mine["state"] != "waiting") || Instant::now() > deadline {
            break (mine, theirs);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(theirs["state"], "admitted", "{theirs}");
    assert_eq!(mine["state"], "expired", "a lost line's ticket is not admitted in someone's place: {mine}");
    let again = app.post("/v1/coupons/17/queue", &json!({ "user_id": 1 }), &[]).await;
    assert_eq!((again.status, &again.body["position"]), (StatusCode::CREATED, &json!(2)), "{:?}", again.body);
}
