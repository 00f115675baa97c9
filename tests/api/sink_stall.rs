//! A sink that cannot go on says so: a stored offset past the partition's
//! end, or a batch MySQL refuses again and again, shows in /metrics
//! (`flashsale_sink_stalled`), fails /readyz, and `flashsale status` prints
//! the way out; `flashsale sink reset-offset` is refused while a sink runs.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use hyper::{Method, StatusCode};
use mysql_async::prelude::*;

use crate::{
    helpers::{free_port, wait_for_port, KilledOnDrop, TestApp},
    metrics::{sample, scrape},
};

fn stalled_series(topic: &str, partition: i32) -> String {
    format!("flashsale_sink_stalled{{topic=\"{topic}\",partition=\"{partition}\"}}")
}

/// Polls `check` every 50 ms until it answers `Ok`; fails the test with
/// `what` and the last `Err` after `limit`.
async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match check().await {
            Ok(found) => return found,
            Err(last) => assert!(Instant::now() < deadline, "{what}; last seen: {last}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn exec(app: &TestApp, statement: &str) {
    app.mysql.get_conn().await.unwrap().query_drop(statement).await.unwrap();
}

async fn stored_offsets(app: &TestApp, topic: &str) -> Vec<(i32, i64)> {
    app.sql(&format!(
        "SELECT partition_id, next_offset FROM sink_offsets WHERE topic = '{topic}' ORDER BY partition_id"
    ))
    .await
}

fn reset_offset(app: &TestApp, topic: &str, partition: i32, to: &str) -> crate::helpers::CliOutput {
    app.cli(&["sink", "reset-offset", "--topic", topic, "--partition", &partition.to_string(), "--to", to])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_offset_past_the_partitions_end_stalls_the_sink_loudly_until_an_operator_resets_it() {
    let mut app = TestApp::spawn().await;
    let topic = app.config.kafka.coupon_topic.clone();
    app.create_coupon(1, 100, &[]);
    for user in 1..=4 {
        assert_eq!(app.issue(1, user).await.status, StatusCode::CREATED);
    }
    assert_eq!(app.wait_for_rows(1, 4).await.len(), 4);
    app.stop().await;

    // What a recreated topic or a broker that lost its data leaves behind:
    // MySQL remembers offsets the broker no longer reaches.
    exec(&app, &format!("UPDATE sink_offsets SET next_offset = next_offset + 1000000 WHERE topic = '{topic}'")).await;
    let partitions: Vec<i32> = stored_offsets(&app, &topic).await.into_iter().map(|(p, _)| p).collect();
    assert_eq!(partitions, vec![0, 1], "both partitions of the coupon topic have a stored offset");
    app.start().await;

    eventually(Duration::from_secs(15), "every partition reports the stall in /metrics", || async {
        let scrape = scrape(&app).await;
        match partitions.iter().all(|p| sample(&scrape, &stalled_series(&topic, *p)) == 1.0) {
            true => Ok(()),
            false => Err(scrape.lines().filter(|l| l.contains(&topic)).collect::<Vec<_>>().join("\n")),
        }
    })
    .await;
    let ready = app.request(Method::GET, "/readyz", None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE, "{}", ready.body);
    assert_eq!(ready.body["sink"], "stalled");
    assert_eq!((ready.body["redis"].as_str(), ready.body["mysql"].as_str()), (Some("ok"), Some("ok")));

    let text = app.cli(&["status"]).success().stdout;
    for p in &partitions {
        let way_out = format!("flashsale sink reset-offset --topic {topic} --partition {p} --to earliest|latest|N");
        assert!(text.contains(&way_out), "status prints the way out for partition {p}:\n{text}");
    }
    assert!(text.contains("past the broker's end"), "status says why:\n{text}");
    let json: serde_json::Value = serde_json::from_str(&app.cli(&["status", "--json"]).success().stdout).unwrap();
    for p in json["partitions"].as_array().unwrap() {
        assert_eq!(p["stalled"], true, "{p}");
        assert_eq!(p["sink_running"], true, "{p}");
    }

    let refused = reset_offset(&app, &topic, 0, "latest");
    assert_ne!(refused.code, Some(0), "refused while the sink runs: {}", refused.stdout);
    assert!(refused.stderr.contains(&format!("a sink is running on {topic}/0; stop it first")), "{}", refused.stderr);
    assert!(stored_offsets(&app, &topic).await.iter().all(|(_, o)| *o >= 1_000_000), "nothing was rewritten");

    app.stop().await;
    let beyond = reset_offset(&app, &topic, 0, "1000000");
    assert_ne!(beyond.code, Some(0), "an offset past the end would stall again: {}", beyond.stdout);
    assert!(beyond.stderr.contains("outside what the broker holds"), "{}", beyond.stderr);
    for p in &partitions {
        let out = reset_offset(&app, &topic, *p, "latest").success();
        assert!(out.stdout.contains(&format!("{topic}/{p}")), "{}", out.stdout);
    }
    let json: serde_json::Value = serde_json::from_str(&app.cli(&["status", "--json"]).success().stdout).unwrap();
    for p in json["partitions"].as_array().unwrap() {
        assert_eq!(p["sink_next_offset"], p["end_offset"], "reset to the broker's end: {p}");
        assert_eq!(p["stalled"], false, "{p}");
    }

    app.start().await;
    for user in 5..=7 {
        assert_eq!(app.issue(1, user).await.status, StatusCode::CREATED);
    }
    assert_eq!(app.wait_for_rows(1, 7).await.len(), 7, "new events flow again");
    eventually(Duration::from_secs(15), "the stall clears in /metrics", || async {
        let scrape = scrape(&app).await;
        match partitions.iter().all(|p| sample(&scrape, &stalled_series(&topic, *p)) == 0.0)
            && scrape.contains(&stalled_series(&topic, 0))
        {
            true => Ok(()),
            false => Err(scrape.lines().filter(|l| l.contains(&topic)).collect::<Vec<_>>().join("\n")),
        }
    })
    .await;
    let ready = app.request(Method::GET, "/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(ready.body["sink"], "ok");
}

/// `flashsale sink` as a child process on `app`'s servers, serving /metrics
/// and /readyz on `port`; killed when dropped.
fn standalone_sink(app: &TestApp, port: u16, env: &[(&str, &str)]) -> KilledOnDrop {
    Command::new(env!("CARGO_BIN_EXE_flashsale"))
        .arg("sink")
        .envs(app.env().iter().map(|(k, v)| (*k, v.as_str())))
        .env("FLASHSALE_METRICS_LISTEN", format!("127.0.0.1:{port}"))
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(KilledOnDrop)
        .expect("flashsale sink starts")
}

/// GET `path` on a local port: (status code, body).
async fn get_raw(port: u16, path: &str) -> (u16, String) {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (status, body)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_mysql_keeps_refusing_stalls_the_sink_after_n_attempts_and_it_recovers_once_the_cause_is_gone() {
    let app = TestApp::spawn_with(|c| c.run_sink = false).await;
    let topic = app.config.kafka.coupon_topic.clone();
    app.create_coupon(1, 100, &[]);
    // Deterministic and local to this test's database: every issued row breaks a rule.
    exec(&app, "ALTER TABLE coupon_issues ADD CONSTRAINT test_refuses_every_row CHECK (user_id = 0)").await;

    let port = free_port();
    let _sink = standalone_sink(&app, port, &[("FLASHSALE_SINK_STALL_AFTER", "3")]);
    wait_for_port(port, Duration::from_secs(20), "the sink's metrics listener is up");
    assert_eq!(app.issue(1, 7).await.status, StatusCode::CREATED);

    let partition =
        eventually(Duration::from_secs(30), "the sink reports the stall after 3 refused attempts", || async {
            let (_, scrape) = get_raw(port, "/metrics").await;
            match [0, 1].into_iter().find(|p| sample(&scrape, &stalled_series(&topic, *p)) == 1.0) {
                Some(partition) => Ok(partition),
                None => Err(scrape
                    .lines()
                    .filter(|l| l.contains("stalled") || l.contains("mysql_errors"))
                    .collect::<Vec<_>>()
                    .join("\n")),
            }
        })
        .await;
    let (_, scrape) = get_raw(port, "/metrics").await;
    assert!(sample(&scrape, "flashsale_mysql_errors_total") >= 3.0, "stalled only after 3 failures");
    assert_eq!(sample(&scrape, &stalled_series(&topic, 1 - partition)), 0.0, "the other partition is fine");
    let (status, body) = get_raw(port, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains(r#""sink":"stalled""#), "{body}");

    let text = app.cli(&["status"]).success().stdout;
    assert!(text.contains("test_refuses_every_row"), "status shows MySQL's last error:\n{text}");
    let way_out = format!("flashsale sink reset-offset --topic {topic} --partition {partition} --to earliest|latest|N");
    assert!(text.contains(&way_out), "{text}");
    assert!(app.mysql_users(1).await.is_empty());

    exec(&app, "ALTER TABLE coupon_issues DROP CONSTRAINT test_refuses_every_row").await;
    assert_eq!(app.wait_for_rows(1, 1).await, vec![7], "the same batch goes through by itself");
    eventually(Duration::from_secs(15), "the stall clears", || async {
        let (_, scrape) = get_raw(port, "/metrics").await;
        let (status, body) = get_raw(port, "/readyz").await;
        match (sample(&scrape, &stalled_series(&topic, partition)), status) {
            (0.0, 200) => Ok(()),
            (stalled, _) => Err(format!("stalled {stalled}, readyz {status} {body}")),
        }
    })
    .await;
    let json: serde_json::Value = serde_json::from_str(&app.cli(&["status", "--json"]).success().stdout).unwrap();
    assert!(json["partitions"].as_array().unwrap().iter().all(|p| p["stalled"] == false), "{json}");
}

#[test]
fn flashsale_sink_runs_as_before_and_takes_reset_offset_as_a_subcommand() {
    use clap::Parser;
    use flashsale::cli::Cli;
    for args in [
        &["flashsale", "sink"][..],
        &["flashsale", "sink", "--sink-fetch-bytes", "1024", "--metrics-listen", "0.0.0.0:9091"],
    ] {
        assert!(Cli::try_parse_from(args).is_ok(), "{args:?}");
    }
    let reset = ["flashsale", "sink", "reset-offset", "--topic", "t", "--partition", "0", "--to"];
    for to in ["earliest", "latest", "42"] {
        assert!(Cli::try_parse_from(reset.iter().chain(&[to])).is_ok(), "--to {to}");
    }
    assert!(Cli::try_parse_from(reset.iter().chain(&["yesterday"])).is_err());
    assert!(Cli::try_parse_from(["flashsale", "sink", "--sink-fetch-bytes", "1", "reset-offset"]).is_err());

    let help = Command::new(env!("CARGO_BIN_EXE_flashsale")).args(["sink", "--help"]).output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("Usage: flashsale sink [OPTIONS]"), "{help}");
    for expected in
        ["--mysql-url", "--sink-fetch-bytes", "--metrics-listen", "FLASHSALE_SINK_STALL_AFTER", "reset-offset"]
    {
        assert!(help.contains(expected), "`flashsale sink --help` names {expected}:\n{help}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sink_stands_by_until_the_first_stops_and_then_takes_over() {
    let app = TestApp::spawn_with(|c| c.run_sink = false).await;
    app.create_coupon(1, 100, &[]);
    let (first_port, second_port) = (free_port(), free_port());
    let first = standalone_sink(&app, first_port, &[]);
    wait_for_port(first_port, Duration::from_secs(20), "the first sink is up");
    eventually(Duration::from_secs(20), "the first sink holds every partition", || async {
        let status = app.cli(&["status", "--json"]).success().stdout;
        let status: serde_json::Value = serde_json::from_str(&status).unwrap();
        let partitions: Vec<_> =
            ["partitions", "order_partitions"].iter().flat_map(|t| status[t].as_array().unwrap().clone()).collect();
        match partitions.len() == 4 && partitions.iter().all(|p| p["sink_running"] == true) {
            true => Ok(()),
            false => Err(format!("{partitions:?}")),
        }
    })
    .await;
    let _second = standalone_sink(&app, second_port, &[]);
    wait_for_port(second_port, Duration::from_secs(20), "the second sink is up");

    for user in 1..=5 {
        assert_eq!(app.issue(1, user).await.status, StatusCode::CREATED);
    }
    assert_eq!(app.wait_for_rows(1, 5).await.len(), 5);
    // Counted just after the commit: poll rather than race it.
    let events_reach = |port: u16, n: f64, what: &'static str| async move {
        eventually(Duration::from_secs(10), what, || async {
            match sample(&get_raw(port, "/metrics").await.1, "flashsale_sink_events_total") {
                seen if seen == n => Ok(()),
                seen => Err(seen.to_string()),
            }
        })
        .await
    };
    events_reach(first_port, 5.0, "the first sink wrote every event").await;
    let (_, scrape) = get_raw(second_port, "/metrics").await;
    assert_eq!(sample(&scrape, "flashsale_sink_events_total"), 0.0, "the second stood by");
    let (status, body) = get_raw(second_port, "/readyz").await;
    assert_eq!((status, body.as_str()), (200, r#"{"sink":"ok"}"#), "standing by is not a stall");

    drop(first); // SIGKILL: MySQL releases its locks with its connections.
    for user in 6..=8 {
        assert_eq!(app.issue(1, user).await.status, StatusCode::CREATED);
    }
    assert_eq!(app.wait_for_rows(1, 8).await.len(), 8, "the second sink took over");
    events_reach(second_port, 3.0, "the second sink wrote the new events").await;
}
