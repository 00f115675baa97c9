//! `compose/` and the `Dockerfile` against the binary they package: the
//! FLASHSALE_* variables the compose file sets are flags the binary reads (and
//! their values parse), the ports line up with FLASHSALE_LISTEN and the config
//! defaults, the image builds `flashsale` and every container runs subcommands
//! that exist, the API runs without a sink beside sinks that split the
//! partitions (`--instance I/N`), and start-up waits on health checks (Grafana and its metrics:
//! `compose_grafana.rs`). No Docker engine is needed: the files are parsed.

use std::{collections::BTreeSet, net::SocketAddr};

use clap::Parser;
use flashsale::cli::Cli;
use yaml_rust2::Yaml;

use crate::compose_files::*;

#[test]
fn compose_sets_only_flashsale_variables_the_binary_reads_with_values_that_parse() {
    let compose = yaml(COMPOSE);
    let read_by_binary = env_vars_read_by_the_binary();
    let settings = settings();
    for (name, s) in services(&compose) {
        for key in environment(s).keys().filter(|k| k.starts_with("FLASHSALE_")) {
            assert!(read_by_binary.contains(key), "{name}: {key} is set, but no `env = \"{key}\"` is in src/");
        }
    }
    for key in image().env.keys().filter(|k| k.starts_with("FLASHSALE_")) {
        assert!(read_by_binary.contains(key), "the Dockerfile sets {key}, but no `env = \"{key}\"` is in src/");
    }
    for (name, s, lines) in built_services(&compose) {
        let env = environment(s);
        for key in env.keys().filter(|k| k.starts_with("FLASHSALE_")) {
            let readers: Vec<&Vec<String>> = lines
                .iter()
                .filter(|argv| leaf(argv).get_arguments().any(|a| a.get_env().is_some_and(|e| e == key.as_str())))
                .collect();
            assert!(!readers.is_empty(), "{name}: {key} is set, but none of its commands {lines:?} reads it");
        }
        // Each command line parses, with the compose values given as the flags they stand for.
        for argv in &lines {
            let mut full = argv.clone();
            for arg in leaf(argv).get_arguments() {
                let Some(value) = arg.get_env().and_then(|e| env.get(e.to_str().unwrap())) else { continue };
                full.push(format!("--{}={value}", arg.get_long().unwrap()));
            }
            if let Err(e) = Cli::try_parse_from(&full) {
                panic!("{name}: `{}` does not parse:\n{e}", full.join(" "));
            }
        }
    }
    assert!(settings.contains_key("FLASHSALE_RELAY_CONSUMER"));
}

#[test]
fn compose_runs_the_api_without_a_sink_and_sinks_that_split_the_partitions_between_them() {
    let compose = yaml(COMPOSE);
    let (mut servers, mut sinks) = (0, Vec::new());
    for (name, s, lines) in built_services(&compose) {
        // Each relay names itself (host name + listen port); one fixed name would be shared by
        // every copy of the service, and two live relays under one name duplicate into Kafka.
        assert!(
            !environment(s).contains_key("FLASHSALE_RELAY_CONSUMER"),
            "{name}: sets FLASHSALE_RELAY_CONSUMER; leave it to the relay's own default"
        );
        for argv in &lines {
            match argv[1].as_str() {
                "serve" => {
                    servers += 1;
                    assert!(argv.iter().any(|w| w == "--no-sink"), "{name}: `{}` runs a sink too", argv.join(" "));
                }
                "sink" => {
                    let value = flag_value(argv, "--instance")
                        .unwrap_or_else(|| panic!("{name}: `{}` has no --instance I/N", argv.join(" ")));
                    sinks.push((name.clone(), sink_instance(&value)));
                }
                _ => {}
            }
        }
    }
    assert_eq!(servers, 1, "one service runs `flashsale serve`");
    // Every partition has a sink: the instances are 0..N of one N, N being how many run.
    let n = sinks.len();
    assert!(n >= 2, "the sink runs as several instances: {sinks:?}");
    let mut indices: Vec<usize> = sinks
        .iter()
        .map(|(name, (index, count))| {
            assert_eq!(*count, n, "{name}: --instance {index}/{count}, but {n} sinks run");
            index.parse().unwrap_or_else(|_| panic!("{name}: instance {index} is not a number"))
        })
        .collect();
    indices.sort();
    assert_eq!(indices, (0..n).collect::<Vec<_>>(), "each instance 0..{n} once: {sinks:?}");
    // The sinks differ only in their instance: one environment for all.
    let envs: BTreeSet<_> = sinks.iter().map(|(name, _)| environment(service(&compose, name))).collect();
    assert_eq!(envs.len(), 1, "every sink has the same settings: {envs:?}");
}

#[test]
fn compose_refuses_to_start_without_the_jwt_and_payment_secrets() {
    let compose = yaml(COMPOSE);
    let required = required_variables(&read(COMPOSE));
    for secret in ["FLASHSALE_JWT_SECRET", "FLASHSALE_PAYMENT_SECRET"] {
        assert!(required.contains(secret), "{secret} must be `${{{secret}?...}}`: required, no default");
    }
    // No secret has a default anywhere: every *_SECRET a service sets is required.
    for (name, s) in services(&compose) {
        let Yaml::Hash(map) = &s["environment"] else { continue };
        for (k, v) in map {
            let (key, raw) = (scalar(k).unwrap(), scalar(v).unwrap_or_default());
            if key.ends_with("_SECRET") {
                let required = [format!("${{{key}?"), format!("${{{key}:?")];
                assert!(required.iter().any(|r| raw.starts_with(r.as_str())), "{name}: {key} = {raw}: not required");
                assert_eq!(environment(s)[&key], "", "{name}: {key} has no default value");
            }
        }
    }
    // Set empty, both parse and turn their feature off (auth off; confirm refused).
    let parsed = Cli::try_parse_from(["flashsale", "serve", "--jwt-secret=", "--payment-secret="]);
    assert!(parsed.is_ok(), "empty secrets parse as 'off'");
}

#[test]
fn compose_ports_match_the_listen_address_and_the_config_defaults() {
    let compose = yaml(COMPOSE);
    let settings = settings();
    let image = image();
    let default_port = |var: &str| {
        let default = settings[var].1.clone().unwrap_or_else(|| panic!("{var} has a default"));
        host_port(default.split(',').next().unwrap()).1
    };
    let prometheus = yaml("compose/prometheus.yml");
    let mut servers = 0;
    for (name, s, lines) in built_services(&compose) {
        let env = environment(s);
        // Connections to the other containers: the servers' standard ports, as in the config defaults.
        for var in ["FLASHSALE_REDIS_URL", "FLASHSALE_MYSQL_URL", "FLASHSALE_KAFKA_BROKERS"] {
            let Some(value) = env.get(var) else { continue };
            for target in value.split(',') {
                let (host, port) = host_port(target);
                let server = service(&compose, &host);
                assert_eq!(port, default_port(var), "{name}: {var}={value} uses the default port");
                let server_command = words(&server["command"]).join(" ");
                assert!(!server_command.contains("--port"), "{host} listens on its standard port");
                if let Some(advertised) = environment(server).get("KAFKA_ADVERTISED_LISTENERS") {
                    assert!(advertised.contains(&format!("//{host}:{port}")), "{host} advertises {target}");
                }
            }
            if var == "FLASHSALE_MYSQL_URL" {
                let mysql = environment(service(&compose, &host_port(value).0));
                let creds = format!("{}:{}@", mysql["MYSQL_USER"], mysql["MYSQL_PASSWORD"]);
                assert!(value.contains(&creds), "{name}: {var} uses MySQL's MYSQL_USER/MYSQL_PASSWORD");
                assert!(value.ends_with(&format!("/{}", mysql["MYSQL_DATABASE"])), "{name}: the same database");
            }
        }
        // The HTTP listener: FLASHSALE_LISTEN (compose, else the image, else the default) on all
        // interfaces, published, health-checked, scraped and exposed on that port.
        let targets: Vec<String> = prometheus["scrape_configs"]
            .as_vec()
            .unwrap()
            .iter()
            .filter(|job| scalar(&job["metrics_path"]).is_none_or(|p| p == "/metrics"))
            .flat_map(|job| job["static_configs"].as_vec().unwrap().iter().flat_map(|c| words(&c["targets"])))
            .collect();
        if let Some(metrics) = env.get("FLASHSALE_METRICS_LISTEN") {
            let port = metrics.parse::<SocketAddr>().unwrap().port();
            assert!(targets.contains(&format!("{name}:{port}")), "Prometheus scrapes {name}:{port}/metrics");
        }
        if !lines.iter().any(|argv| argv.get(1).is_some_and(|c| c == "serve")) {
            assert!(s["ports"].is_badvalue(), "{name}: publishes a port but serves no HTTP");
            continue;
        }
        servers += 1;
        let listen = env
            .get("FLASHSALE_LISTEN")
            .or(image.env.get("FLASHSALE_LISTEN"))
            .cloned()
            .unwrap_or_else(|| settings["FLASHSALE_LISTEN"].1.clone().unwrap());
        let listen: SocketAddr = listen.parse().unwrap();
        assert!(listen.ip().is_unspecified(), "{name}: FLASHSALE_LISTEN={listen} must listen on every interface");
        let port = listen.port();
        // The ops routes: on FLASHSALE_METRICS_LISTEN when set, else on the API port.
        let ops_port = env.get("FLASHSALE_METRICS_LISTEN").map_or(port, |a| a.parse::<SocketAddr>().unwrap().port());
        let published = s["ports"].as_vec().unwrap_or_else(|| panic!("{name}: publishes its port"));
        let mut published_ports = BTreeSet::new();
        for p in published {
            let target = match p {
                Yaml::Hash(_) => scalar(&p["target"]).unwrap(),
                other => {
                    let spec = interpolate(&scalar(other).unwrap());
                    spec.trim_end_matches("/tcp").rsplit(':').next().unwrap().to_string()
                }
            };
            assert!([port, ops_port].map(|p| p.to_string()).contains(&target), "{name}: publishes port {target}");
            published_ports.insert(target);
        }
        assert!(published_ports.contains(&port.to_string()), "{name}: publishes container port {port}");
        let health = words(&s["healthcheck"]["test"]).join(" ");
        assert!(health.contains(&format!("/{ops_port}")), "{name}: its health check asks port {ops_port}: {health}");
        assert!(
            targets.contains(&format!("{name}:{ops_port}")),
            "Prometheus scrapes {name}:{ops_port}/metrics: {targets:?}"
        );
        assert!(image.expose.contains(&port), "the Dockerfile EXPOSEs {port}");
    }
    assert_eq!(servers, 1, "one service runs `flashsale serve`");
}

#[test]
fn the_dockerfile_builds_the_binary_the_services_run() {
    let stages = dockerfile_stages();
    assert!(stages.len() >= 2, "multi-stage");
    let (builder, build_steps) = &stages[0];
    let build = build_steps
        .iter()
        .find(|(k, rest)| k == "RUN" && rest.contains("cargo build"))
        .map(|(_, rest)| rest.clone())
        .expect("the builder runs cargo build");
    for flag in ["--release", "--locked", "--bin flashsale"] {
        assert!(build.contains(flag), "cargo build {flag}: {build}");
    }
    // The builder copies every input: manifests, src/, and what src/ embeds (include_str!/include_bytes!).
    let copied: BTreeSet<String> = build_steps
        .iter()
        .filter(|(k, _)| k == "COPY")
        .flat_map(|(_, rest)| {
            let parts: Vec<&str> = rest.split_whitespace().filter(|p| !p.starts_with("--")).collect();
            parts[..parts.len() - 1].iter().map(|p| p.trim_end_matches('/').to_string()).collect::<Vec<_>>()
        })
        .collect();
    let mut needed: BTreeSet<String> = ["Cargo.toml", "Cargo.lock", "src"].map(String::from).into();
    for (path, text) in rust_sources() {
        for marker in ["include_str!(\"", "include_bytes!(\""] {
            for (i, _) in text.match_indices(marker) {
                let rest = &text[i + marker.len()..];
                let file = path.parent().unwrap().join(&rest[..rest.find('"').unwrap()]);
                let Ok(file) = file.canonicalize() else { continue }; // a mention in a comment
                let top = file.strip_prefix(root().canonicalize().unwrap()).unwrap().components().next();
                needed.insert(top.unwrap().as_os_str().to_string_lossy().into_owned());
            }
        }
    }
    assert!(needed.contains("lua") && needed.contains("sql"), "{needed:?}");
    for input in &needed {
        assert!(copied.contains(input), "the builder stage copies {input} (copies {copied:?})");
    }
    let ignored: Vec<String> = read(".dockerignore").lines().map(|l| l.trim().trim_matches('/').to_string()).collect();
    for entry in ["target", ".stack", ".git", "k6/out"] {
        assert!(ignored.iter().any(|i| i == entry), ".dockerignore lists {entry}");
    }
    for input in &needed {
        assert!(!ignored.contains(input), ".dockerignore must not drop {input}");
    }

    // The final stage takes the built binary into PATH and runs it as a non-root user.
    let (_, last) = stages.last().unwrap();
    let from = last[0].1.split_whitespace().next().unwrap();
    assert!(from.starts_with("debian:") && from.ends_with("-slim"), "a slim Debian final stage: {from}");
    let copy = last
        .iter()
        .find(|(k, rest)| k == "COPY" && rest.contains(&format!("--from={builder}")))
        .map(|(_, rest)| rest.split_whitespace().collect::<Vec<_>>())
        .expect("the final stage copies from the builder");
    let (source, dest) = (copy[copy.len() - 2], copy[copy.len() - 1]);
    assert!(source.ends_with("/flashsale") && build.contains(source.trim_end_matches("/flashsale")), "{source}");
    assert_eq!(dest, "/usr/local/bin/flashsale", "the binary lands in PATH");
    let image = image();
    let user = image.user.expect("a USER");
    assert!(!["root", "0", "0:0"].contains(&user.as_str()), "non-root: {user}");
    assert_eq!(image.entrypoint, ["flashsale"]);
    assert_eq!(image.cmd, ["serve"]);
    let argv: Vec<String> = image.entrypoint.iter().chain(&image.cmd).cloned().collect();
    assert!(Cli::try_parse_from(&argv).is_ok(), "the image's default command parses: {argv:?}");

    // Every container built from it runs flashsale subcommands that exist, with flags that exist.
    let compose = yaml(COMPOSE);
    let mut subcommands = BTreeSet::new();
    for (name, _, lines) in built_services(&compose) {
        for argv in lines {
            if let Err(e) = Cli::try_parse_from(&argv) {
                panic!("{name}: `{}` is not a valid flashsale command line:\n{e}", argv.join(" "));
            }
            subcommands
                .insert(argv[1..].iter().take_while(|w| !w.starts_with('-')).cloned().collect::<Vec<_>>().join(" "));
        }
    }
    for expected in ["serve", "sink", "migrate", "coupon create", "sale create"] {
        assert!(subcommands.contains(expected), "a container runs `flashsale {expected}`: {subcommands:?}");
    }
}

#[test]
fn compose_start_order_waits_for_health_checks_and_the_init_container() {
    let compose = yaml(COMPOSE);
    for (name, s) in services(&compose) {
        let Some(deps) = s["depends_on"].as_hash() else { continue };
        for (dep, spec) in deps {
            let dep = scalar(dep).unwrap();
            let target = service(&compose, &dep);
            match scalar(&spec["condition"]).as_deref() {
                Some("service_healthy") => {
                    assert!(
                        !target["healthcheck"]["test"].is_badvalue(),
                        "{name} waits for {dep} to be healthy: it needs a healthcheck"
                    )
                }
                Some("service_completed_successfully") => {
                    assert!(target["restart"].is_badvalue() || scalar(&target["restart"]).as_deref() == Some("no"))
                }
                Some("service_started") => {}
                other => panic!("{name} -> {dep}: condition {other:?}"),
            }
        }
    }
    // Whatever talks to Redis, MySQL or Kafka waits for it to be healthy; the service and the
    // sink wait for the init container (schema, demo data) to finish.
    for (name, s, lines) in built_services(&compose) {
        let env = environment(s);
        for (var, dep) in
            [("FLASHSALE_REDIS_URL", "redis"), ("FLASHSALE_MYSQL_URL", "mysql"), ("FLASHSALE_KAFKA_BROKERS", "kafka")]
        {
            if env.contains_key(var) {
                let condition = scalar(&s["depends_on"][dep]["condition"]);
                assert_eq!(condition.as_deref(), Some("service_healthy"), "{name} waits for {dep}");
            }
        }
        let runs_migrate = lines.iter().any(|argv| argv[1] == "migrate");
        if !runs_migrate {
            let init = s["depends_on"]
                .as_hash()
                .unwrap()
                .iter()
                .find(|(_, spec)| scalar(&spec["condition"]).as_deref() == Some("service_completed_successfully"))
                .map(|(dep, _)| scalar(dep).unwrap())
                .unwrap_or_else(|| panic!("{name} waits for the init container"));
            let init_lines = invocations(&init, service(&compose, &init), &image());
            assert!(init_lines.iter().any(|argv| argv[1] == "migrate"), "{init} runs flashsale migrate");
        }
    }
    let redis = words(&service(&compose, "redis")["command"]).join(" ");
    assert!(redis.contains("--appendonly yes") && redis.contains("--appendfsync everysec"), "{redis}");
}
