//! Acknowledgement modes (`FLASHSALE_ACK_REPLICAS`, `FLASHSALE_ACK_FSYNC`)
//! against a replicated Redis of the test's own.

use hyper::StatusCode;

use crate::{
    ha_redis::{low_free_port, redis_cli, HaRedis, Node},
    helpers::TestApp,
};

/// How long an answer waits for the replica. Generous: what must succeed
/// must not turn into `outcome_unknown` because a loaded box (tests run four
/// at a time on two cores) was slow; a stalled replica still answers nothing
/// within it. Below `min-replicas-max-lag` (10 s), so a stall that lasts it
/// is a late replica, not a missing one.
const ACK_TIMEOUT_MS: u64 = 4_000;

async fn replicated_app(ha: &HaRedis) -> TestApp {
    let url = ha.primary_url();
    TestApp::spawn_with(|c| {
        c.redis.redis_url = url;
        c.redis.ack_replicas = 1;
        c.redis.ack_timeout_ms = ACK_TIMEOUT_MS;
        // Room above the wait: the answer is the wait's, not a timeout's.
        c.redis.redis_timeout_ms = 15_000;
        c.http.request_timeout_ms = 15_000;
    })
    .await
}

fn users_key(app: &TestApp, coupon: u64) -> String {
    flashsale::keys::Keys::new(app.config.redis.key_prefix.clone()).coupon(coupon).users
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_ack_replicas_an_answer_waits_for_the_replica_and_a_stalled_one_turns_it_into_outcome_unknown() {
    let ha = HaRedis::start(false);
    let app = replicated_app(&ha).await;
    app.create_coupon(1, 100, &[]);
    app.create_sale(1, &["1:100:100"], &[]);
    // The replica holds everything so far: the first answer waits for its own write only.
    ha.wait_for_replicas_caught_up(ha.primary.port);

    let res = app.issue(1, 1).await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.body);
    // The 201 went out after the replica had the write.
    assert_eq!(ha.replica.cli(&["sismember", &users_key(&app, 1), "1"]), "1");

    // Both at once: the replica stalls for one wait, well within `min-replicas-max-lag`.
    ha.replica.pause(true);
    let (issue, reserve) = tokio::join!(app.issue(1, 2), app.reserve(1, 2, &[(1, 1)]));
    ha.replica.pause(false);
    for (what, res) in [("issue", &issue), ("reserve", &reserve)] {
        assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{what} while the replica stalls: {:?}", res.body);
        assert_eq!(res.body["error"], "outcome_unknown", "{what}: {:?}", res.body);
    }

    // It did happen on the primary: the retry tells the truth, once the
    // replica holds that too.
    let retry = app.issue(1, 2).await;
    assert_eq!(retry.status, StatusCode::CONFLICT, "{:?}", retry.body);
    assert_eq!(retry.body["error"], "already_issued");
    assert_eq!(ha.replica.cli(&["sismember", &users_key(&app, 1), "2"]), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_primary_without_its_replica_refuses_writes_and_the_answer_says_it_did_not_happen() {
    let mut ha = HaRedis::start(false);
    let app = replicated_app(&ha).await;
    app.create_coupon(1, 100, &[]);

    ha.replica.kill9();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let res = loop {
        let res = app.issue(1, 7).await;
        if res.body["error"] == "unavailable" || std::time::Instant::now() > deadline {
            break res;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    // min-replicas-to-write 1: NOREPLICAS before the script wrote anything.
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", res.body);
    assert_eq!(res.body["error"], "unavailable", "{:?}", res.body);
    assert_eq!(ha.primary.cli(&["sismember", &users_key(&app, 1), "7"]), "0", "refused means not issued");
}

/// Does this server have WAITAOF (Redis >= 7.2, Valkey)?
fn has_waitaof(port: u16) -> bool {
    !redis_cli(port, &["waitaof", "0", "0", "0"]).contains("unknown command")
}

#[tokio::test]
async fn ack_fsync_starts_only_where_an_answer_can_wait_for_the_disk() {
    let port = low_free_port();
    let dir = std::env::temp_dir().join(crate::helpers::unique("fs-aof"));
    std::fs::create_dir_all(&dir).unwrap();
    let args = ["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--dir", dir.to_str().unwrap()];
    let node = Node::start(args.iter().map(|s| s.to_string()).collect(), port);
    let mut app = TestApp::prepare_with(|c| c.redis.redis_url = format!("redis://127.0.0.1:{port}")).await;
    let create = |fsync: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_flashsale"));
        cmd.args(["coupon", "create", "--id", "1", "--quantity", "5", "--replace"]);
        cmd.envs(app.env().iter().map(|(k, v)| (*k, v.as_str()))).env("FLASHSALE_ACK_FSYNC", fsync);
        cmd.output().unwrap()
    };

    node.cli(&["config", "set", "appendonly", "no"]);
    let out = create("true");
    assert!(!out.status.success(), "no AOF, no fsync mode");
    assert!(String::from_utf8_lossy(&out.stderr).contains("appendonly"), "{}", String::from_utf8_lossy(&out.stderr));

    node.cli(&["config", "set", "appendonly", "yes"]);
    node.cli(&["config", "set", "appendfsync", "everysec"]);
    let out = create("true");
    if has_waitaof(port) {
        assert!(out.status.success(), "WAITAOF: {}", String::from_utf8_lossy(&out.stderr));
    } else {
        assert!(!out.status.success(), "no WAITAOF and fsync once a second: refused");
        assert!(String::from_utf8_lossy(&out.stderr).contains("appendfsync"));
    }

    node.cli(&["config", "set", "appendfsync", "always"]);
    let out = create("true");
    assert!(out.status.success(), "appendfsync always: {}", String::from_utf8_lossy(&out.stderr));

    app.config.redis.ack_fsync = true;
    app.start().await;
    let res = app.issue(1, 1).await;
    assert_eq!(res.status, StatusCode::CREATED, "{:?}", res.body);
    app.stop().await;
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}
