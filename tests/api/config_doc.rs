//! docs/configuration.md against the real binary: every FLASHSALE_* variable some
//! subcommand's `--help` lists is in the doc with the same default, and the doc names
//! no other; and `flashsale config <subcommand>` shows the effective settings.

use std::{
    collections::{BTreeMap, BTreeSet},
    process::Command,
};

use crate::compose_files::read;

const DOC: &str = "docs/configuration.md";

/// The binary with no FLASHSALE_* variable of the test's environment.
fn flashsale() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flashsale"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("FLASHSALE_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

fn help(path: &[String]) -> String {
    let out = flashsale().args(path).arg("--help").output().unwrap();
    assert!(out.status.success(), "flashsale {path:?} --help fails");
    String::from_utf8(out.stdout).unwrap()
}

/// The subcommands a help text lists under `Commands:` (not `help`).
fn subcommands(help: &str) -> Vec<String> {
    let Some((_, list)) = help.split_once("\nCommands:\n") else { return vec![] };
    list.lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l[2..].starts_with(' '))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .filter(|name| name != "help")
        .collect()
}

/// (variable, default) of every option of a help text that has an `[env: ...]`. The
/// default is the `[default: ...]` clap prints after it (a help text may say
/// "[default: ...]" in its prose too, before it).
fn settings(help: &str) -> Vec<(String, Option<String>)> {
    let mut blocks: Vec<String> = Vec::new();
    for line in help.lines() {
        let indent = line.len() - line.trim_start().len();
        let option = line.trim_start();
        let option = option.strip_prefix("-h, ").or_else(|| option.strip_prefix("-V, ")).unwrap_or(option);
        if (2..=6).contains(&indent) && option.starts_with("--") {
            blocks.push(String::new());
        }
        if let Some(block) = blocks.last_mut() {
            block.push(' ');
            block.push_str(line.trim());
        }
    }
    blocks
        .iter()
        .filter_map(|block| {
            let at = block.find("[env: ")?;
            let rest = &block[at + "[env: ".len()..];
            let name = rest[..rest.find(['=', ']']).unwrap()].to_string();
            let default = rest.split_once("[default: ").map(|(_, d)| d[..d.find(']').unwrap()].to_string());
            Some((name, default))
        })
        .collect()
}

/// Subcommand path -> its settings, for every subcommand of the binary.
fn every_help() -> BTreeMap<String, Vec<(String, Option<String>)>> {
    fn walk(path: Vec<String>, out: &mut BTreeMap<String, Vec<(String, Option<String>)>>) {
        let text = help(&path);
        out.insert(path.join(" "), settings(&text));
        for sub in subcommands(&text) {
            let mut next = path.clone();
            next.push(sub);
            walk(next, out);
        }
    }
    let mut out = BTreeMap::new();
    walk(vec![], &mut out);
    out
}

/// Variable -> the defaults the doc's tables give it (`—`: none).
fn documented() -> BTreeMap<String, BTreeSet<Option<String>>> {
    let mut out: BTreeMap<String, BTreeSet<Option<String>>> = BTreeMap::new();
    for line in read(DOC).lines().filter(|l| l.starts_with("| `FLASHSALE_")) {
        let cells: Vec<&str> = line.split(" | ").map(|c| c.trim_matches(['|', ' '])).collect();
        assert!(cells.len() >= 4, "{DOC}: a row is | variable | flag | default | meaning |: {line}");
        let name = cells[0].trim_matches('`').to_string();
        let default = match cells[2] {
            "—" => None,
            d => Some(d.strip_prefix('`').and_then(|d| d.strip_suffix('`')).unwrap_or_else(|| panic!("{line}")).into()),
        };
        out.entry(name).or_default().insert(default);
    }
    out
}

#[test]
fn every_variable_of_every_subcommand_help_is_documented_with_its_default_and_no_other() {
    let helps = every_help();
    assert!(helps.len() > 15, "the walk finds the nested subcommands: {:?}", helps.keys());
    assert!(helps["sink reset-offset"].iter().any(|(n, _)| n == "FLASHSALE_MYSQL_URL"), "nested subcommands are read");
    let doc = documented();
    let mut in_help = BTreeSet::new();
    for (path, settings) in &helps {
        for (name, default) in settings {
            in_help.insert(name.clone());
            let Some(defaults) = doc.get(name) else {
                panic!("`flashsale {path} --help` lists {name}, {DOC} does not");
            };
            assert!(
                defaults.contains(default),
                "{name}: `flashsale {path} --help` says default {default:?}, {DOC} says {defaults:?}"
            );
        }
    }
    for (name, defaults) in &doc {
        assert!(in_help.contains(name), "{DOC} lists {name}, no subcommand's --help does");
        for default in defaults {
            let said = helps.values().flatten().any(|(n, d)| n == name && d == default);
            assert!(said, "{DOC}: {name} default {default:?} is not what any --help says");
        }
    }
    for needed in ["FLASHSALE_READY_REQUIRES", "FLASHSALE_LOG", "FLASHSALE_SINK_INSTANCE"] {
        assert!(doc.contains_key(needed), "{needed}");
    }
}

/// `flashsale config ARGS` with `env`: (NAME -> (value, source)) of its lines, and stdout.
fn config(args: &[&str], env: &[(&str, &str)]) -> (BTreeMap<String, (String, String)>, String) {
    let out = flashsale().arg("config").args(args).envs(env.iter().copied()).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "flashsale config {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let lines = stdout
        .lines()
        .map(|line| {
            let (setting, source) = line.split_once("  # ").unwrap_or_else(|| panic!("NAME=value  # source: {line}"));
            let (name, value) = setting.split_once('=').unwrap();
            (name.to_string(), (value.trim_end().to_string(), source.to_string()))
        })
        .collect();
    (lines, stdout)
}

#[test]
fn config_serve_shows_flags_environment_and_defaults_with_secrets_masked() {
    let secret = "a-payment-secret-nobody-may-see";
    let (lines, stdout) = config(
        &["serve", "--listen", "0.0.0.0:18123", "--ready-requires", "redis"],
        &[
            ("FLASHSALE_KEY_PREFIX", "from-env:"),
            ("FLASHSALE_PAYMENT_SECRET", secret),
            ("FLASHSALE_MYSQL_URL", "mysql://shop:hunter2-password@db:3306/shop"),
            // The flag wins over the environment.
            ("FLASHSALE_LISTEN", "127.0.0.1:9"),
        ],
    );
    let get = |name: &str| lines.get(name).cloned().unwrap_or_else(|| panic!("no {name} line in:\n{stdout}"));
    assert_eq!(get("FLASHSALE_LISTEN"), ("0.0.0.0:18123".into(), "flag".into()));
    assert_eq!(get("FLASHSALE_READY_REQUIRES"), ("redis".into(), "flag".into()));
    assert_eq!(get("FLASHSALE_KEY_PREFIX"), ("from-env:".into(), "env".into()));
    assert_eq!(get("FLASHSALE_REDIS_TIMEOUT_MS"), ("1000".into(), "default".into()));
    assert_eq!(get("FLASHSALE_JWT_SECRET"), (String::new(), "unset".into()));
    assert_eq!(get("FLASHSALE_PAYMENT_SECRET"), ("***".into(), "env".into()));
    assert_eq!(get("FLASHSALE_MYSQL_URL"), ("mysql://shop:***@db:3306/shop".into(), "env".into()));
    assert!(!stdout.contains(secret) && !stdout.contains("hunter2"), "a secret printed:\n{stdout}");

    // Every setting `serve --help` lists, and only those.
    let help: BTreeSet<String> = settings(&help(&["serve".into()])).into_iter().map(|(n, _)| n).collect();
    assert_eq!(lines.keys().cloned().collect::<BTreeSet<_>>(), help);
}

#[test]
fn config_of_a_subcommand_with_required_flags_and_of_a_nested_one_needs_none() {
    let (lines, _) = config(&["coupon", "create"], &[]);
    assert!(lines.contains_key("FLASHSALE_REDIS_URL") && !lines.contains_key("FLASHSALE_LISTEN"), "{lines:?}");
    let (lines, _) = config(&["sink", "reset-offset"], &[("FLASHSALE_KAFKA_BROKERS", "k1:9092,k2:9092")]);
    assert_eq!(lines["FLASHSALE_KAFKA_BROKERS"], ("k1:9092,k2:9092".into(), "env".into()));
    // A value serve would refuse is refused here too.
    let out = flashsale().args(["config", "serve", "--listen", "nowhere"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}
