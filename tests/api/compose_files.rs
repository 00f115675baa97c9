//! Reading the files `compose.rs` checks: the compose file, the Dockerfile,
//! Prometheus and Grafana configs, and the binary's own settings (through clap).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use clap::CommandFactory;
use flashsale::cli::Cli;
use yaml_rust2::{Yaml, YamlLoader};

pub const COMPOSE: &str = "compose/docker-compose.yml";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

pub fn yaml(rel: &str) -> Yaml {
    let mut docs = YamlLoader::load_from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not YAML: {e}"));
    assert_eq!(docs.len(), 1, "{rel}: one YAML document");
    docs.remove(0)
}

/// A scalar as text (YAML may type `1` or `true`; compose passes them as strings).
pub fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Compose interpolation with every variable unset: `${NAME:-default}` and
/// `${NAME-default}` give the default, `${NAME}` gives "", `$$` is a literal `$`.
/// `${NAME?message}` (required: compose refuses to start while it is unset) gives
/// "", the value a user sets to turn that setting off on purpose.
pub fn interpolate(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = r.find('}').unwrap_or_else(|| panic!("unclosed ${{ in {text:?}"));
            let expr = &r[..end];
            let required = expr.split_once(":?").or_else(|| expr.split_once('?'));
            let value = match expr.split_once(":-").or_else(|| expr.split_once('-')).filter(|_| required.is_none()) {
                Some((_, default)) => default,
                None if required.is_some() => "",
                None => {
                    assert!(!expr.contains(['?', '+']), "{text:?}: only ${{NAME}} and ${{NAME:-default}} are used");
                    ""
                }
            };
            out.push_str(value);
            rest = &r[end + 1..];
        } else {
            panic!("{text:?}: write variables as ${{NAME}} (or $$ for a literal $)");
        }
    }
    out.push_str(rest);
    out
}

/// The `${NAME?message}` variables of a text: compose refuses to start while one is unset.
pub fn required_variables(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("${") {
        let expr = &text[i + 2..];
        let expr = &expr[..expr.find('}').unwrap_or(expr.len())];
        if let Some((name, _)) = expr.split_once(":?").or_else(|| expr.split_once('?')) {
            out.insert(name.to_string());
        }
    }
    out
}

/// A list of strings, or one string split on whitespace (compose's two forms).
pub fn words(y: &Yaml) -> Vec<String> {
    match y {
        Yaml::Array(items) => items.iter().map(|i| scalar(i).expect("a scalar list item")).collect(),
        Yaml::BadValue => Vec::new(),
        other => shell_words(&scalar(other).expect("a string or a list")),
    }
}

/// Words of one shell line: whitespace-separated, single and double quotes grouping.
pub fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quote, mut in_word) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (None, '\'' | '"') => (quote, in_word) = (Some(c), true),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (_, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    assert!(quote.is_none(), "unbalanced quote in {line:?}");
    if in_word {
        words.push(word);
    }
    words
}

/// A service's `environment`, map or `KEY=VALUE` list form, interpolated.
pub fn environment(service: &Yaml) -> BTreeMap<String, String> {
    match &service["environment"] {
        Yaml::Hash(map) => {
            map.iter().map(|(k, v)| (scalar(k).unwrap(), interpolate(&scalar(v).unwrap_or_default()))).collect()
        }
        Yaml::Array(items) => items
            .iter()
            .map(|i| {
                let item = scalar(i).unwrap();
                let (k, v) = item.split_once('=').unwrap_or((&item, ""));
                (k.to_string(), interpolate(v))
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

pub fn services(compose: &Yaml) -> Vec<(String, &Yaml)> {
    compose["services"].as_hash().expect("services").iter().map(|(k, v)| (scalar(k).unwrap(), v)).collect()
}

pub fn service<'a>(compose: &'a Yaml, name: &str) -> &'a Yaml {
    let s = &compose["services"][name];
    assert!(!s.is_badvalue(), "no service `{name}` in {COMPOSE}");
    s
}

/// (path, text) of every Rust source under src/.
pub fn rust_sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("src"), &mut out);
    out
}

/// Every `env = "NAME"` in the sources under src/.
pub fn env_vars_read_by_the_binary() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (_, text) in rust_sources() {
        for (i, _) in text.match_indices("env = \"") {
            let rest = &text[i + "env = \"".len()..];
            found.insert(rest[..rest.find('"').unwrap()].to_string());
        }
    }
    assert!(found.contains("FLASHSALE_LISTEN"), "the scan finds the settings in src/config.rs");
    found
}

/// One instruction of a Dockerfile stage: keyword (upper case) and the rest.
pub type Instruction = (String, String);

/// Stages (name, instructions) of the Dockerfile, continuation lines joined.
pub fn dockerfile_stages() -> Vec<(String, Vec<Instruction>)> {
    let mut stages: Vec<(String, Vec<Instruction>)> = Vec::new();
    let mut logical = String::new();
    for line in read("Dockerfile").lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && logical.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            logical.push_str(head);
            logical.push(' ');
            continue;
        }
        logical.push_str(trimmed);
        let text = std::mem::take(&mut logical);
        let (keyword, rest) = text.split_once(char::is_whitespace).unwrap_or((&text, ""));
        let (keyword, rest) = (keyword.to_ascii_uppercase(), rest.trim().to_string());
        if keyword == "FROM" {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            let name = match parts.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => name.to_string(),
                _ => format!("stage{}", stages.len()),
            };
            stages.push((name, vec![(keyword, rest)]));
        } else {
            stages.last_mut().expect("FROM first").1.push((keyword, rest));
        }
    }
    stages
}

pub fn json_words(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_else(|_| panic!("exec (JSON) form expected: {text}"))
}

/// ENTRYPOINT, CMD, ENV and EXPOSE of the image (its last stage).
pub struct Image {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub expose: Vec<u16>,
    pub user: Option<String>,
}

pub fn image() -> Image {
    let stages = dockerfile_stages();
    let (_, last) = stages.last().expect("a stage");
    let mut image = Image { entrypoint: vec![], cmd: vec![], env: BTreeMap::new(), expose: vec![], user: None };
    for (keyword, rest) in last {
        match keyword.as_str() {
            "ENTRYPOINT" => image.entrypoint = json_words(rest),
            "CMD" => image.cmd = json_words(rest),
            "USER" => image.user = Some(rest.clone()),
            "EXPOSE" => {
                image.expose.extend(rest.split_whitespace().map(|p| p.trim_end_matches("/tcp").parse::<u16>().unwrap()))
            }
            "ENV" => {
                for pair in rest.split_whitespace() {
                    let (k, v) = pair.split_once('=').expect("ENV KEY=VALUE");
                    image.env.insert(k.to_string(), v.to_string());
                }
            }
            _ => {}
        }
    }
    image
}

/// The `flashsale ...` command lines a container built from the Dockerfile runs:
/// the image's ENTRYPOINT/CMD as the service overrides them, or the lines of an
/// `sh -c` script.
pub fn invocations(name: &str, service: &Yaml, image: &Image) -> Vec<Vec<String>> {
    let entrypoint_set = !service["entrypoint"].is_badvalue();
    let entrypoint = if entrypoint_set { words(&service["entrypoint"]) } else { image.entrypoint.clone() };
    let command = match &service["command"] {
        Yaml::BadValue if entrypoint_set => vec![], // a new entrypoint drops the image's CMD
        Yaml::BadValue => image.cmd.clone(),
        c => words(c),
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(command).map(|w| interpolate(&w)).collect();
    match argv.first().map(String::as_str) {
        Some("flashsale") => vec![argv],
        Some("/bin/sh" | "sh" | "/bin/bash" | "bash") => {
            assert!(argv.len() == 3 && argv[1].starts_with('-') && argv[1].contains('c'), "{name}: sh -c SCRIPT");
            let script = argv[2].replace("\\\n", " ");
            let mut commands: Vec<Vec<String>> = Vec::new();
            for line in script.lines() {
                let mut current = Vec::new();
                for word in shell_words(line) {
                    if ["&&", ";", "||"].contains(&word.as_str()) {
                        commands.push(std::mem::take(&mut current));
                    } else {
                        current.push(word);
                    }
                }
                commands.push(current);
            }
            commands.retain(|c| !c.is_empty());
            if commands.len() > 1 {
                assert!(
                    argv[1].contains('e') || script.contains("&&"),
                    "{name}: a failed step must fail the container (sh -e or &&)"
                );
            }
            let flashsale: Vec<Vec<String>> = commands.into_iter().filter(|c| c[0] == "flashsale").collect();
            assert!(!flashsale.is_empty(), "{name}: its script runs no flashsale command");
            flashsale
        }
        other => panic!("{name}: runs {other:?}, not flashsale"),
    }
}

/// The subcommand an argv names (`coupon create` -> the `create` under `coupon`).
pub fn leaf(argv: &[String]) -> clap::Command {
    let mut cmd = Cli::command();
    for word in &argv[1..] {
        match cmd.find_subcommand(word) {
            Some(sub) => cmd = sub.clone(),
            None => break,
        }
    }
    cmd
}

/// FLASHSALE_* name -> (long flag, default) over every subcommand.
pub fn settings() -> BTreeMap<String, (String, Option<String>)> {
    fn walk(cmd: &clap::Command, out: &mut BTreeMap<String, (String, Option<String>)>) {
        for arg in cmd.get_arguments() {
            if let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) {
                let default = arg.get_default_values().first().map(|d| d.to_string_lossy().into_owned());
                out.insert(env.to_string_lossy().into_owned(), (long.to_string(), default));
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = BTreeMap::new();
    walk(&Cli::command(), &mut out);
    out
}

/// Services built from the repository's Dockerfile, with their flashsale command lines.
pub fn built_services(compose: &Yaml) -> Vec<(String, &Yaml, Vec<Vec<String>>)> {
    let image = image();
    let compose_dir = root().join("compose");
    let mut built = Vec::new();
    for (name, s) in services(compose) {
        let build = &s["build"];
        if build.is_badvalue() {
            continue;
        }
        let (context, dockerfile) = match build {
            Yaml::String(context) => (context.clone(), "Dockerfile".to_string()),
            b => (scalar(&b["context"]).unwrap_or(".".into()), scalar(&b["dockerfile"]).unwrap_or("Dockerfile".into())),
        };
        let context = compose_dir.join(context).canonicalize().unwrap();
        assert_eq!(context, root().canonicalize().unwrap(), "{name}: builds from the repository root");
        assert_eq!(dockerfile, "Dockerfile", "{name}: builds the repository's Dockerfile");
        let lines = invocations(&name, s, &image);
        built.push((name, s, lines));
    }
    assert!(built.len() >= 3, "init, service and sink are built from the Dockerfile");
    built
}

/// The value of `--flag VALUE` or `--flag=VALUE` in a command line.
pub fn flag_value(argv: &[String], flag: &str) -> Option<String> {
    let joined = format!("{flag}=");
    argv.iter().enumerate().find_map(|(i, word)| match word.strip_prefix(&joined) {
        Some(value) => Some(value.to_string()),
        None if word == flag => Some(argv.get(i + 1).unwrap_or_else(|| panic!("{flag} without a value")).clone()),
        None => None,
    })
}

/// `I/N` of `flashsale sink --instance I/N`: I as written (a number, or a `$(VAR)` Kubernetes
/// fills in) and N.
pub fn sink_instance(value: &str) -> (String, usize) {
    let (index, count) = value.split_once('/').unwrap_or_else(|| panic!("--instance {value}: not I/N"));
    (index.to_string(), count.parse().unwrap_or_else(|_| panic!("--instance {value}: N is not a number")))
}

/// (host, port) of `scheme://[user[:pass]@]host:port[/...]` or `host:port`.
pub fn host_port(url: &str) -> (String, u16) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap();
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = hostport.rsplit_once(':').unwrap_or_else(|| panic!("{url}: no port"));
    (host.to_string(), port.parse().unwrap_or_else(|_| panic!("{url}: bad port")))
}
