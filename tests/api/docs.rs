//! The docs a newcomer reads: every relative link in README.md and docs/*.md
//! resolves (the file, and a `#heading` in it), the README stays a front door
//! (at most 250 lines), the quick start's demo is what `scripts/run` prints
//! and runs as printed against the real service, and the architecture doc's
//! key tables are those of `src/keys.rs`.

use std::{
    collections::BTreeSet,
    io::{Read, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{
    chaos::log_to,
    helpers::{unique, wait_for_port, KilledOnDrop, TestApp},
};

/// The gateway secret `scripts/run` sets unless the shell has one.
const DEMO_SECRET: &str = "demo-payment-secret-change-me";
const DEMO_START: &str = "<!-- demo:start -->";
const DEMO_END: &str = "<!-- demo:end -->";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// README.md and every docs/*.md, relative to the repository root.
fn markdown_files() -> Vec<String> {
    let mut files = vec!["README.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The lines of `text` outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            lines.push(line);
        }
    }
    lines
}

/// The targets of the inline links `[text](target)` in `text`'s prose.
fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in prose(text) {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let Some(end) = rest.find(')') else { break };
            found.push(rest[..end].trim().to_string());
            rest = &rest[end..];
        }
    }
    found
}

/// GitHub's anchor for a heading: lower case, letters, digits, `-` and `_`
/// kept, spaces made `-`, everything else dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of `text`'s headings (a repeated one also as `-1`, `-2`, ...).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for line in prose(text) {
        let Some(heading) = line.strip_prefix('#') else { continue };
        let base = slug(heading.trim_start_matches('#'));
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

/// Every relative link of `text` (the file at `rel`) that does not resolve,
/// with why; `read` gives another file's text, or None when it is missing.
fn broken_links(rel: &str, text: &str, read: &dyn Fn(&Path) -> Option<String>) -> Vec<String> {
    let dir = Path::new(rel).parent().unwrap_or(Path::new(""));
    let mut broken = Vec::new();
    for target in links(text) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = match target.split_once('#') {
            Some((path, anchor)) => (path, Some(anchor)),
            None => (target.as_str(), None),
        };
        let file = if path.is_empty() { PathBuf::from(rel) } else { normalise(&dir.join(path)) };
        let Some(linked) = read(&file) else {
            broken.push(format!("{rel}: ({target}): no file {}", file.display()));
            continue;
        };
        if let Some(anchor) = anchor {
            if file.extension().is_some_and(|e| e == "md") && !anchors(&linked).contains(anchor) {
                broken.push(format!("{rel}: ({target}): no heading #{anchor} in {}", file.display()));
            }
        }
    }
    broken
}

/// `a/b/../c` -> `a/c`, without touching the file system.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn read_in_repo(path: &Path) -> Option<String> {
    let full = root().join(path);
    if full.is_dir() {
        return Some(String::new());
    }
    std::fs::read(full).ok().map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

#[test]
fn every_relative_link_in_the_readme_and_docs_resolves() {
    let files = markdown_files();
    assert!(files.len() > 5, "README.md and docs/*.md: {files:?}");
    let mut broken = Vec::new();
    let mut checked = 0;
    for rel in &files {
        let text = read(rel);
        checked += links(&text).len();
        broken.extend(broken_links(rel, &text, &read_in_repo));
    }
    assert!(checked > 20, "only {checked} links found: is the link reader broken?");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_link_check_finds_a_missing_file_and_a_missing_heading() {
    let text = "# Top\n\nSee [a](other.md), [b](other.md#nowhere), [c](#top), [d](#gone), \
                [e](https://example.com/x).\n\n```sh\n# not a heading [f](nothing.md)\n```\n";
    let other = |p: &Path| (p == Path::new("docs/other.md")).then(|| "# Some: heading (`x`)\n".to_string());
    let own = |p: &Path| if p == Path::new("docs/self.md") { Some(text.to_string()) } else { other(p) };
    let broken = broken_links("docs/self.md", text, &own);
    assert_eq!(broken.len(), 2, "{broken:?}");
    assert!(broken[0].contains("#nowhere") && broken[1].contains("#gone"), "{broken:?}");
    assert_eq!(slug("Soak: months in minutes (`scripts/soak`)"), "soak-months-in-minutes-scriptssoak");
    let missing = broken_links("README.md", "[x](docs/missing.md)", &|_: &Path| None);
    assert_eq!(missing.len(), 1, "{missing:?}");
}

#[test]
fn the_key_tables_of_the_architecture_doc_are_those_of_src_keys_rs() {
    let doc = read("docs/architecture.md");
    let rows: Vec<String> =
        read("src/keys.rs").lines().filter_map(|l| l.strip_prefix("//! |")).map(|row| format!("|{row}")).collect();
    assert!(rows.len() > 30, "src/keys.rs documents its keys in tables: {} rows", rows.len());
    let missing: Vec<&String> = rows.iter().filter(|row| !doc.lines().any(|l| l == row.as_str())).collect();
    assert!(missing.is_empty(), "docs/architecture.md lacks these rows of src/keys.rs:\n{missing:#?}");
}

#[test]
fn the_readme_is_a_front_door_of_at_most_250_lines() {
    let lines = read("README.md").lines().count();
    assert!(lines <= 250, "README.md has {lines} lines; move detail under docs/");
}

/// The shell lines between the demo markers of the README (the fence dropped).
fn readme_demo() -> Vec<String> {
    let readme = read("README.md");
    let start = readme.find(DEMO_START).expect("README marks its demo with <!-- demo:start -->");
    let end = readme.find(DEMO_END).expect("README marks its demo's end with <!-- demo:end -->");
    let block: Vec<String> = readme[start + DEMO_START.len()..end]
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("```"))
        .map(String::from)
        .collect();
    assert!(block.len() >= 3, "the demo has its commands: {block:?}");
    block
}

/// What `scripts/run` prints under "try:", as a fresh shell sees it: its own
/// lines from `listen=` to the live view's, run by bash without the caller's
/// FLASHSALE_* or CARGO_* settings (so its defaults apply), one indent dropped.
/// It asks `target/release/flashsale config serve` for the address: run from
/// a scratch directory where that path is the binary under test.
fn scripts_run_demo() -> Vec<String> {
    let script = read("scripts/run");
    let from = script.find("\nlisten=").expect("scripts/run sets listen=");
    let to = script.find("exec ").expect("scripts/run ends with exec");
    let scratch = std::env::temp_dir().join(unique("flashsale-docs-run-"));
    std::fs::create_dir_all(scratch.join("target/release")).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_flashsale"), scratch.join("target/release/flashsale")).unwrap();
    let out = Command::new("bash")
        .args(["-c", &script[from..to]])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(&scratch)
        .output()
        .expect("bash runs");
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = printed.lines().collect();
    let start = lines.iter().position(|l| *l == "try:").expect("scripts/run prints try:") + 1;
    let end = lines.iter().position(|l| l.starts_with("live view:")).expect("scripts/run prints the live view");
    lines[start..end].iter().map(|l| l.strip_prefix("  ").unwrap_or(l).to_string()).collect()
}

#[test]
fn the_readme_demo_is_what_scripts_run_prints() {
    assert_eq!(readme_demo(), scripts_run_demo(), "README's demo block and scripts/run's try: lines differ");
}

/// The status line of each HTTP answer curl received, in order.
fn statuses(dir: &Path) -> Vec<String> {
    let mut files: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().parse().unwrap(), p))
        .collect();
    files.sort();
    files
        .iter()
        .map(|(_, p)| std::fs::read_to_string(p).unwrap().lines().next().unwrap_or("").trim().to_string())
        .collect()
}

/// GET /healthz answers 200 on `addr`.
fn healthy(addr: &str) -> bool {
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else { return false };
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.1 200")
}

#[tokio::test]
async fn the_readme_demo_runs_as_printed() {
    let mut demo = readme_demo().join("\n");
    // The address the README prints; no other test uses it. Should something
    // else on this machine hold it, the demo's address is rewritten to a free
    // port (the only change made to the printed lines), and the test says so.
    let printed = "127.0.0.1:8080";
    assert!(demo.contains(&format!("http://{printed}/")), "the demo talks to http://{printed}");
    let addr = match std::net::TcpListener::bind(printed) {
        Ok(_) => printed.to_string(),
        Err(_) => {
            let port = crate::helpers::free_port();
            eprintln!("{printed} is taken on this machine: the demo runs against 127.0.0.1:{port}");
            demo = demo.replace(printed, &format!("127.0.0.1:{port}"));
            format!("127.0.0.1:{port}")
        }
    };

    // Seeded as scripts/run seeds the stack, in this test's own prefix and database.
    let app = TestApp::prepare_with(|c| c.http.payment_secret = Some(DEMO_SECRET.parse().unwrap())).await;
    app.create_coupon(1, 1000, &[]);
    app.create_sale(1, &["1:9900:1000", "2:19900:50"], &["--per-user", "2", "--hold", "10m"]);
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let _server = KilledOnDrop(
        Command::new(env!("CARGO_BIN_EXE_flashsale"))
            .args(["serve", "--demo"])
            .envs(app.env())
            .env("FLASHSALE_LISTEN", &addr)
            .env("FLASHSALE_RELAY_CONSUMER", unique("relay-docs"))
            .stdout(Stdio::null())
            .stderr(log_to("serve-docs-demo"))
            .spawn()
            .expect("flashsale serve starts"),
    );
    wait_for_port(port, Duration::from_secs(60), "the demo's service did not start");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !healthy(&addr) {
        assert!(Instant::now() < deadline, "the demo's service is not healthy");
        std::thread::sleep(Duration::from_millis(50));
    }

    // A shell as a reader has one: in the repository root after scripts/run,
    // where `target/release/flashsale` is the binary it built. Here the
    // working directory is a scratch one whose `target/release/flashsale` is
    // the binary under test (a symlink), so the printed path runs it as
    // printed, whatever target directory and profile this test was built
    // with. `curl` on PATH is the real one, also told (`-D`) to record each
    // answer's headers, so the test can read the statuses the demo prints
    // no sign of; nothing else is added.
    let scratch = std::env::temp_dir().join(unique("flashsale-docs-demo-"));
    let (release, bin, headers) = (scratch.join("target/release"), scratch.join("bin"), scratch.join("headers"));
    for dir in [&release, &bin, &headers] {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_flashsale"), release.join("flashsale")).unwrap();
    let real_curl = Command::new("sh").args(["-c", "command -v curl"]).output().expect("sh runs");
    let real_curl = String::from_utf8_lossy(&real_curl.stdout).trim().to_string();
    assert!(!real_curl.is_empty(), "curl is installed");
    let shim =
        format!("#!/bin/sh\nn=$(ls '{h}' | wc -l)\nexec '{real_curl}' -D '{h}'/$n \"$@\"\n", h = headers.display());
    std::fs::write(bin.join("curl"), shim).unwrap();
    Command::new("chmod").args(["+x"]).arg(bin.join("curl")).status().unwrap();

    let mut shell = Command::new("bash");
    shell.args(["-e", "-o", "pipefail", "-c", &demo]).current_dir(&scratch);
    for (name, _) in std::env::vars() {
        if name.starts_with("FLASHSALE_") || name.starts_with("CARGO") {
            shell.env_remove(name);
        }
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = tokio::task::spawn_blocking(move || shell.env("PATH", path).output().expect("bash runs")).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the demo failed\nstdout: {stdout}\nstderr: {stderr}");

    // Three answers: the issue, the reserve (read by python3 for its id), the confirm.
    let statuses = statuses(&headers);
    assert_eq!(statuses.len(), 3, "{statuses:?}\nstdout: {stdout}");
    assert!(statuses[0].starts_with("HTTP/1.1 201"), "the issue: {statuses:?}\n{stdout}");
    assert!(statuses[1].starts_with("HTTP/1.1 201"), "the reserve: {statuses:?}\n{stdout}");
    assert!(statuses[2].starts_with("HTTP/1.1 200"), "the confirm: {statuses:?}\n{stdout}\n{stderr}");
    // curl prints each body without a newline: the two answers follow each other.
    let answers: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(answers.len(), 2, "the issue's and the confirm's answers: {stdout}");
    assert_eq!((answers[0]["coupon_id"].as_u64(), answers[0]["user_id"].as_u64()), (Some(1), Some(7)), "{stdout}");
    assert_eq!(answers[1]["status"], "paid", "{stdout}");
    assert_eq!((answers[1]["sale_id"].as_u64(), answers[1]["user_id"].as_u64()), (Some(1), Some(7)), "{stdout}");
    let _ = std::fs::remove_dir_all(&scratch);
}
