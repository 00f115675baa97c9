//! `deploy/kubernetes/` (the kustomize base) against the Kubernetes API schemas
//! and the binary it runs: every manifest passes `kubernetes-validate --strict`
//! (unknown fields fail) for the oldest and the newest Kubernetes the base
//! supports; every variable a container sets is one its `flashsale` subcommand
//! reads (the built binary's `--help` says which) and its command line parses;
//! the sink StatefulSet's `--instance I/N` takes I from the pod's ordinal and N
//! from its replicas; secrets come only from the Secret docs/operations.md says to
//! create; probes, ports, Services, budgets, the autoscaler and resources line
//! up. No cluster is needed: the files are parsed.

use std::{
    collections::{BTreeMap, BTreeSet},
    process::Command,
};

use clap::Parser;
use flashsale::cli::Cli;
use yaml_rust2::{Yaml, YamlLoader};

use crate::compose_files::*;
use crate::helpers::unique;

const BASE: &str = "deploy/kubernetes";
const SERVICE_MONITOR: &str = "deploy/kubernetes/optional/servicemonitor.yaml";
/// The oldest Kubernetes the base supports (the pod-index label below is 1.28's)
/// and the newest whose schemas kubernetes-validate 1.37.0 (scripts/install --test) carries.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.28.0", "1.37.0"];
const POD_INDEX_FIELD: &str = "metadata.labels['apps.kubernetes.io/pod-index']";
/// The Secret the `kubectl create secret` of docs/operations.md makes; the base ships none.
const SECRET: &str = "flashsale-secrets";

/// One document of a manifest file.
struct Manifest {
    file: String,
    doc: Yaml,
}

impl Manifest {
    fn kind(&self) -> String {
        scalar(&self.doc["kind"]).unwrap_or_else(|| panic!("{}: a document without kind", self.file))
    }
    fn name(&self) -> String {
        scalar(&self.doc["metadata"]["name"]).unwrap_or_else(|| panic!("{}: a document without a name", self.file))
    }
    fn id(&self) -> String {
        format!("{}/{}", self.kind(), self.name())
    }
}

fn load(rel: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not YAML: {e}"))
}

/// The files kustomization.yaml lists, relative to the repository root.
fn resources() -> Vec<String> {
    let kustomization = yaml(&format!("{BASE}/kustomization.yaml"));
    assert_eq!(scalar(&kustomization["kind"]).as_deref(), Some("Kustomization"));
    words(&kustomization["resources"]).iter().map(|r| format!("{BASE}/{r}")).collect()
}

fn manifests() -> Vec<Manifest> {
    let mut out = Vec::new();
    for file in resources() {
        for doc in load(&file).into_iter().filter(|d| !d.is_null()) {
            out.push(Manifest { file: file.clone(), doc });
        }
    }
    out
}

fn find<'a>(manifests: &'a [Manifest], kind: &str, name: &str) -> &'a Manifest {
    manifests
        .iter()
        .find(|m| m.kind() == kind && m.name() == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {BASE}"))
}

/// Deployments, StatefulSets and Jobs: (manifest, its pod template).
fn workloads(manifests: &[Manifest]) -> Vec<(&Manifest, &Yaml)> {
    let kinds = ["Deployment", "StatefulSet", "Job"];
    manifests.iter().filter(|m| kinds.contains(&m.kind().as_str())).map(|m| (m, &m.doc["spec"]["template"])).collect()
}

fn containers(template: &Yaml) -> &Vec<Yaml> {
    template["spec"]["containers"].as_vec().expect("containers")
}

fn labels(y: &Yaml) -> BTreeMap<String, String> {
    y.as_hash()
        .map_or_else(BTreeMap::new, |m| m.iter().map(|(k, v)| (scalar(k).unwrap(), scalar(v).unwrap())).collect())
}

/// `selector` (a Service's map, or `matchLabels`) picks pods labelled `pod`.
fn selects(selector: &BTreeMap<String, String>, pod: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| pod.get(k) == Some(v))
}

/// The name of each `env` entry with its entry, in order.
fn env_entries(container: &Yaml) -> Vec<(String, &Yaml)> {
    container["env"].as_vec().map_or_else(Vec::new, |v| v.iter().map(|e| (scalar(&e["name"]).unwrap(), e)).collect())
}

/// The variables the ConfigMaps of the container's `envFrom` give it, with their values.
fn from_config_maps(container: &Yaml, manifests: &[Manifest]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for source in container["envFrom"].as_vec().into_iter().flatten() {
        let map = scalar(&source["configMapRef"]["name"])
            .unwrap_or_else(|| panic!("envFrom {source:?}: only ConfigMaps (a Secret's keys would be invisible here)"));
        out.extend(labels(&find(manifests, "ConfigMap", &map).doc["data"]));
    }
    out
}

/// Every variable the container gets, with its value when the manifests hold it: `env`
/// (literal values; `valueFrom` ones without) and the ConfigMaps of `envFrom`.
fn variables(container: &Yaml, manifests: &[Manifest]) -> BTreeMap<String, Option<String>> {
    let mut out: BTreeMap<String, Option<String>> =
        from_config_maps(container, manifests).into_iter().map(|(k, v)| (k, Some(v))).collect();
    for (name, entry) in env_entries(container) {
        out.insert(name, scalar(&entry["value"]));
    }
    out
}

/// The `$(NAME)` references in a command line: Kubernetes fills them in from `env`.
fn references(args: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for arg in args {
        for (i, _) in arg.match_indices("$(") {
            let rest = &arg[i + 2..];
            out.insert(rest[..rest.find(')').expect("$(NAME)")].to_string());
        }
    }
    out
}

/// The FLASHSALE_* variables `flashsale <subcommand> --help` lists, from the built binary.
fn read_by(subcommand: &[String]) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_flashsale")).args(subcommand).arg("--help").output().unwrap();
    assert!(out.status.success(), "flashsale {subcommand:?} --help fails");
    let help = String::from_utf8(out.stdout).unwrap();
    let names: BTreeSet<String> = help
        .match_indices("[env: ")
        .map(|(i, _)| {
            let rest = &help[i + "[env: ".len()..];
            rest[..rest.find(['=', ']']).unwrap()].to_string()
        })
        .collect();
    assert!(!names.is_empty(), "flashsale {subcommand:?} --help names no [env: ...]");
    names
}

/// `kubernetes-validate` (pip), run as `python3 -m kubernetes_validate` so it is found
/// wherever pip put its script. Fails (never skips) when it is missing.
fn kubernetes_validate(args: &[&str]) -> (bool, String) {
    let out = Command::new("python3").args(["-m", "kubernetes_validate"]).args(args).output();
    let out = out.unwrap_or_else(|e| panic!("python3: {e}; this test needs python3 and kubernetes-validate"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        !text.contains("No module named kubernetes_validate"),
        "kubernetes-validate is missing: run scripts/install --test (pip install kubernetes-validate==1.37.0)"
    );
    (out.status.success(), text)
}

/// The container port a probe or Service names (by name or number).
fn port_number(container: &Yaml, port: &Yaml) -> u16 {
    if let Yaml::Integer(n) = port {
        return *n as u16;
    }
    let name = scalar(port).unwrap();
    let ports = container["ports"].as_vec().into_iter().flatten();
    let found = ports.into_iter().find(|p| scalar(&p["name"]).as_deref() == Some(&name));
    let found = found.unwrap_or_else(|| panic!("no container port named {name}"));
    found["containerPort"].as_i64().unwrap() as u16
}

fn listen_port(address: &str) -> u16 {
    address.parse::<std::net::SocketAddr>().unwrap_or_else(|_| panic!("{address}: not host:port")).port()
}

#[test]
fn every_manifest_of_the_base_passes_strict_kubernetes_schema_validation() {
    let files = resources();
    let documents = manifests().len();
    let (_, version) = kubernetes_validate(&["--version"]);
    for kubernetes in KUBERNETES_VERSIONS {
        let mut args = vec!["--strict", "--kubernetes-version", kubernetes];
        args.extend(files.iter().map(|f| f.as_str()));
        let (ok, out) = kubernetes_validate(&args);
        // A kind without a schema is only a warning to the tool: here it fails.
        let complaints: Vec<&str> = out.lines().filter(|l| l.starts_with("WARN") || l.starts_with("ERROR")).collect();
        assert!(ok && complaints.is_empty(), "kubernetes-validate {} against {kubernetes}:\n{out}", version.trim());
        let passed = out.lines().filter(|l| l.contains(" passed for resource ")).count();
        assert_eq!(passed, documents, "every document was checked against {kubernetes}:\n{out}");
    }
    // --strict is what it claims: a field the schema lacks fails.
    let path = std::env::temp_dir().join(format!("{}.yaml", unique("flashsale-k8s-")));
    std::fs::write(&path, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labelz: {}\n").unwrap();
    let (ok, out) = kubernetes_validate(&["--strict", "--kubernetes-version", "1.28.0", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    assert!(!ok && out.contains("labelz"), "an unknown field must fail --strict:\n{out}");
}

#[test]
fn the_kustomization_lists_every_manifest_of_the_base_and_not_the_optional_ones() {
    let listed: BTreeSet<String> = resources().into_iter().collect();
    let mut present = BTreeSet::new();
    for entry in std::fs::read_dir(root().join(BASE)).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") && name != "kustomization.yaml" {
            present.insert(format!("{BASE}/{name}"));
        }
    }
    assert_eq!(listed, present, "kustomization.yaml lists exactly the manifests beside it");
    // The optional ServiceMonitor needs the Prometheus Operator's CRDs: not in the base, and not
    // checked against Kubernetes' own schemas; it is well-formed and aims at the base's ops ports.
    let monitor = load(SERVICE_MONITOR);
    assert_eq!(monitor.len(), 1, "{SERVICE_MONITOR}: one document");
    let monitor = &monitor[0];
    assert_eq!(scalar(&monitor["apiVersion"]).as_deref(), Some("monitoring.coreos.com/v1"));
    assert_eq!(scalar(&monitor["kind"]).as_deref(), Some("ServiceMonitor"));
    let selector = labels(&monitor["spec"]["selector"]["matchLabels"]);
    let manifests = manifests();
    let mut scraped = BTreeSet::new();
    for endpoint in monitor["spec"]["endpoints"].as_vec().expect("endpoints") {
        assert_eq!(scalar(&endpoint["path"]).as_deref(), Some("/metrics"));
        let port = scalar(&endpoint["port"]).expect("a named Service port");
        for service in manifests.iter().filter(|m| m.kind() == "Service") {
            let ports = service.doc["spec"]["ports"].as_vec().unwrap();
            if selects(&selector, &labels(&service.doc["metadata"]["labels"]))
                && ports.iter().any(|p| scalar(&p["name"]).as_deref() == Some(&port))
            {
                scraped.insert(labels(&service.doc["spec"]["selector"])["app.kubernetes.io/component"].clone());
            }
        }
    }
    assert_eq!(scraped, ["api", "sink"].map(String::from).into(), "the ServiceMonitor scrapes the API and the sinks");
}

#[test]
fn every_variable_a_container_sets_is_read_by_the_flashsale_subcommand_it_runs() {
    let manifests = manifests();
    let image = scalar(&service(&yaml(COMPOSE), "flashsale")["image"]).unwrap();
    let mut subcommands = BTreeSet::new();
    for (workload, template) in workloads(&manifests) {
        for container in containers(template) {
            let id = format!("{} ({})", workload.id(), workload.file);
            assert_eq!(scalar(&container["image"]).as_deref(), Some(image.as_str()), "{id}: compose's image");
            assert!(container["command"].is_badvalue(), "{id}: the image's entrypoint (flashsale) runs");
            let args = words(&container["args"]);
            let subcommand: Vec<String> = args.iter().take_while(|a| !a.starts_with('-')).cloned().collect();
            subcommands.insert(subcommand.join(" "));
            let read = read_by(&subcommand);
            let refs = references(&args);
            let vars = variables(container, &manifests);
            for name in vars.keys() {
                let helper = refs.contains(name) && !name.starts_with("FLASHSALE_");
                assert!(
                    read.contains(name) || helper,
                    "{id}: sets {name}, which `flashsale {subcommand:?}` does not read"
                );
            }
            for name in &refs {
                assert!(vars.contains_key(name), "{id}: args use $({name}), which its env does not define");
            }
            // Each relay names itself (host name + port): a fixed name would be every replica's.
            assert!(!vars.contains_key("FLASHSALE_RELAY_CONSUMER"), "{id}: sets FLASHSALE_RELAY_CONSUMER");
            // The command line parses, with the values the manifests hold given as the flags they
            // stand for, and the Kubernetes-only references filled in.
            let mut argv: Vec<String> = ["flashsale".to_string()].into_iter().chain(args.iter().cloned()).collect();
            for arg in argv.iter_mut() {
                for name in &refs {
                    *arg = arg.replace(&format!("$({name})"), "0");
                }
            }
            for arg in leaf(&argv).get_arguments() {
                let value = arg.get_env().and_then(|e| vars.get(e.to_str().unwrap())).cloned().flatten();
                if let Some(value) = value {
                    argv.push(format!("--{}={value}", arg.get_long().unwrap()));
                }
            }
            if let Err(e) = Cli::try_parse_from(&argv) {
                panic!("{id}: `{}` does not parse:\n{e}", argv.join(" "));
            }
        }
    }
    assert_eq!(subcommands, ["serve", "sink", "migrate"].map(String::from).into());
}

#[test]
fn secrets_come_only_from_the_secret_the_operations_doc_says_to_create() {
    let manifests = manifests();
    assert!(!manifests.iter().any(|m| m.kind() == "Secret"), "the base ships no Secret, so no default secret value");
    let mut keys = BTreeSet::new();
    let mut api = BTreeSet::new();
    for (workload, template) in workloads(&manifests) {
        for container in containers(template) {
            for (name, entry) in env_entries(container) {
                let secret = &entry["valueFrom"]["secretKeyRef"];
                let sensitive = name.ends_with("_SECRET") || name == "FLASHSALE_MYSQL_URL";
                assert_eq!(!secret.is_badvalue(), sensitive, "{}: {name} from a Secret, and only it", workload.id());
                if sensitive {
                    assert_eq!(scalar(&secret["name"]).as_deref(), Some(SECRET), "{}: {name}", workload.id());
                    keys.insert(scalar(&secret["key"]).unwrap());
                    if words(&container["args"])[0] == "serve" {
                        api.insert(name);
                    }
                }
            }
            let from_maps = from_config_maps(container, &manifests);
            let sensitive = |k: &String| k.ends_with("_SECRET") || k == "FLASHSALE_MYSQL_URL";
            assert!(!from_maps.keys().any(sensitive), "{}: a secret in a ConfigMap", workload.id());
        }
    }
    for name in ["FLASHSALE_JWT_SECRET", "FLASHSALE_PAYMENT_SECRET", "FLASHSALE_MYSQL_URL"] {
        assert!(api.contains(name), "the API gets {name} from {SECRET}");
    }
    // docs/operations.md's command creates exactly those keys.
    let doc = read("docs/operations.md");
    let command = format!("kubectl create secret generic {SECRET}");
    let start = doc.find(&command).unwrap_or_else(|| panic!("docs/operations.md shows `{command} ...`"));
    let block = &doc[start..];
    let end = [block.find("\n\n"), block.find("\n```")].into_iter().flatten().min().unwrap();
    let block = &block[..end];
    let created: BTreeSet<String> = shell_words(&block.replace("\\\n", " "))
        .iter()
        .filter_map(|w| w.strip_prefix("--from-literal=").map(|kv| kv.split('=').next().unwrap().to_string()))
        .collect();
    assert_eq!(created, keys, "docs/operations.md's `{command}` creates every key the manifests read: {block}");
}

#[test]
fn the_sink_statefulset_runs_one_instance_per_pod_out_of_its_replicas() {
    let manifests = manifests();
    let mut sinks = Vec::new();
    for (workload, template) in workloads(&manifests) {
        for container in containers(template) {
            let args = words(&container["args"]);
            match args[0].as_str() {
                "serve" => {
                    assert!(args.iter().any(|a| a == "--no-sink"), "{}: runs a sink in every replica", workload.id())
                }
                "sink" => sinks.push((workload, container, args)),
                _ => {}
            }
        }
    }
    assert_eq!(sinks.len(), 1, "one workload runs the sink");
    let (set, container, args) = &sinks[0];
    assert_eq!(set.kind(), "StatefulSet", "the sink's instance is its pod's ordinal");
    let replicas = set.doc["spec"]["replicas"].as_i64().expect("replicas") as usize;
    let value = flag_value(args, "--instance").unwrap_or_else(|| panic!("{args:?}: no --instance I/N"));
    let (index, n) = sink_instance(&value);
    assert_eq!(n, replicas, "--instance {value}: N is the StatefulSet's replicas");
    assert!(replicas >= 2, "the sinks share the partitions");
    let var = index.strip_prefix("$(").and_then(|v| v.strip_suffix(')')).expect("I is $(VAR)");
    let entry = env_entries(container).into_iter().find(|(name, _)| name == var).map(|(_, e)| e).unwrap();
    let field = scalar(&entry["valueFrom"]["fieldRef"]["fieldPath"]);
    assert_eq!(field.as_deref(), Some(POD_INDEX_FIELD), "{var} is the pod's ordinal");
    // Every sink has partitions to write: the topics have at least N.
    let partitions = variables(container, &manifests)["FLASHSALE_KAFKA_PARTITIONS"].clone().unwrap();
    assert!(partitions.parse::<usize>().unwrap() >= n, "FLASHSALE_KAFKA_PARTITIONS={partitions} < {n} sinks");
    // Its governing Service is headless and selects its pods.
    let governing = scalar(&set.doc["spec"]["serviceName"]).unwrap();
    let service = find(&manifests, "Service", &governing);
    assert_eq!(scalar(&service.doc["spec"]["clusterIP"]).as_deref(), Some("None"), "{governing} is headless");
    let pods = labels(&set.doc["spec"]["template"]["metadata"]["labels"]);
    assert!(selects(&labels(&service.doc["spec"]["selector"]), &pods), "{governing} selects the sinks");
}

#[test]
fn probes_ports_services_budgets_and_the_autoscaler_line_up() {
    let manifests = manifests();
    let pods: Vec<(&Manifest, BTreeMap<String, String>, &Yaml)> =
        workloads(&manifests).into_iter().map(|(m, t)| (m, labels(&t["metadata"]["labels"]), t)).collect();
    for (workload, pod_labels, template) in &pods {
        let id = workload.id();
        let selector = labels(&workload.doc["spec"]["selector"]["matchLabels"]);
        assert!(workload.kind() == "Job" || selects(&selector, pod_labels), "{id}: its selector picks its pods");
        let spec = &template["spec"];
        // Service links would add FLASHSALE_SERVICE_HOST, FLASHSALE_PORT, ... to the settings.
        assert_eq!(spec["enableServiceLinks"].as_bool(), Some(false), "{id}: enableServiceLinks: false");
        assert_eq!(spec["securityContext"]["runAsNonRoot"].as_bool(), Some(true), "{id}: runAsNonRoot");
        for container in containers(template) {
            for kind in ["requests", "limits"] {
                for resource in ["cpu", "memory"] {
                    let value = &container["resources"][kind][resource];
                    assert!(scalar(value).is_some(), "{id}: resources.{kind}.{resource}");
                }
            }
            let vars = variables(container, &manifests);
            let port = |var: &str, name: &str| {
                let value = vars.get(var).cloned().flatten()?;
                let port = listen_port(&value);
                assert_eq!(port_number(container, &Yaml::String(name.into())), port, "{id}: {var}={value}");
                Some(port)
            };
            let api = port("FLASHSALE_LISTEN", "http");
            let ops = port("FLASHSALE_METRICS_LISTEN", "ops");
            if workload.kind() == "Job" {
                continue;
            }
            // Ready: /readyz on the ops port. Alive: /healthz, on a port the process listens on.
            let ready = &container["readinessProbe"]["httpGet"];
            assert_eq!(scalar(&ready["path"]).as_deref(), Some("/readyz"), "{id}: readiness");
            assert_eq!(Some(port_number(container, &ready["port"])), ops, "{id}: readiness on the ops port");
            let alive = &container["livenessProbe"]["httpGet"];
            assert_eq!(scalar(&alive["path"]).as_deref(), Some("/healthz"), "{id}: liveness");
            let alive_port = Some(port_number(container, &alive["port"]));
            assert!(alive_port == api || alive_port == ops, "{id}: liveness on a port it listens on");
        }
    }
    let pods_of = |selector: &BTreeMap<String, String>| -> Vec<&(&Manifest, BTreeMap<String, String>, &Yaml)> {
        pods.iter().filter(|(_, l, _)| selects(selector, l)).collect()
    };
    for m in &manifests {
        match m.kind().as_str() {
            "Service" => {
                let selected = pods_of(&labels(&m.doc["spec"]["selector"]));
                assert!(!selected.is_empty(), "{}: selects pods", m.id());
                for p in m.doc["spec"]["ports"].as_vec().unwrap() {
                    for (workload, _, template) in &selected {
                        let container = &containers(template)[0];
                        port_number(container, &p["targetPort"]); // panics when the name is unknown
                        assert!(workload.kind() != "Job", "{}: selects a Job's pod", m.id());
                    }
                }
            }
            "PodDisruptionBudget" => {
                let selected = pods_of(&labels(&m.doc["spec"]["selector"]["matchLabels"]));
                assert_eq!(selected.len(), 1, "{}: covers one workload", m.id());
            }
            "HorizontalPodAutoscaler" => {
                let target = &m.doc["spec"]["scaleTargetRef"];
                assert_eq!(scalar(&target["kind"]).as_deref(), Some("Deployment"));
                let deployment = find(&manifests, "Deployment", &scalar(&target["name"]).unwrap());
                // A `replicas:` would reset the autoscaler's count on every apply.
                assert!(deployment.doc["spec"]["replicas"].is_badvalue(), "{}: the HPA owns replicas", deployment.id());
                let min = m.doc["spec"]["minReplicas"].as_i64().unwrap();
                assert!(min >= 2, "{}: minReplicas {min}: more than one machine's worth", m.id());
                let metric = &m.doc["spec"]["metrics"][0]["resource"];
                assert_eq!(scalar(&metric["name"]).as_deref(), Some("cpu"), "{}: scales on CPU", m.id());
            }
            _ => {}
        }
    }
}
