//! `openapi.yaml` against the server: every operation the spec lists is a route
//! the live server serves (not 404 `not_found`, not 405) and answers with a
//! status the spec documents; every route the router serves is in the spec; a
//! method the spec does not list gets 405 with `Allow`; and every error code
//! the source can answer with is named in the spec. `scripts/schemathesis`
//! checks the shapes in depth; this keeps the route table honest in CI.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
};

use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use yaml_rust2::{Yaml, YamlLoader};

use crate::helpers::TestApp;

/// The routes `src/http/router.rs` dispatches, as (method, OpenAPI path template).
/// Keep in step with the router: a route added there and not here (or in the
/// spec) fails `every_router_route_is_in_the_spec_and_nothing_else`.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/coupons/{coupon_id}/issue"),
    ("GET", "/v1/coupons/{coupon_id}"),
    ("GET", "/v1/sales/{sale_id}"),
    ("POST", "/v1/sales/{sale_id}/orders"),
    ("POST", "/v1/sales/{sale_id}/queue"),
    ("GET", "/v1/sales/{sale_id}/queue/{ticket}"),
    ("POST", "/v1/coupons/{coupon_id}/queue"),
    ("GET", "/v1/coupons/{coupon_id}/queue/{ticket}"),
    ("GET", "/v1/queue/challenge"),
    ("GET", "/wait/sales/{sale_id}"),
    ("GET", "/wait/coupons/{coupon_id}"),
    ("GET", "/v1/sales/{sale_id}/orders/{order_id}"),
    ("POST", "/v1/sales/{sale_id}/orders/{order_id}/confirm"),
    ("POST", "/v1/sales/{sale_id}/orders/{order_id}/cancel"),
    ("POST", "/v1/sales/{sale_id}/orders/{order_id}/pay"),
    ("GET", "/v1/wallets/{user_id}"),
    ("POST", "/v1/wallets/{user_id}/charge"),
    ("GET", "/v1/wallets/{user_id}/transactions"),
    ("GET", "/v1/users/{user_id}/coupons"),
    ("GET", "/v1/users/{user_id}/orders"),
    ("GET", "/v1/rankings/products"),
    ("GET", "/dashboard"),
    ("GET", "/v1/dashboard/stats"),
    ("GET", "/metrics"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
];

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn spec() -> Yaml {
    let mut docs = YamlLoader::load_from_str(&read("openapi.yaml")).unwrap_or_else(|e| panic!("openapi.yaml: {e}"));
    assert_eq!(docs.len(), 1, "openapi.yaml: one YAML document");
    let spec = docs.remove(0);
    assert_eq!(spec["openapi"].as_str(), Some("3.0.3"), "openapi.yaml is OpenAPI 3.0.3");
    spec
}

/// One operation of the spec.
struct Operation {
    method: String,
    path: String,
    /// Documented response statuses ("200", "404", ...).
    statuses: BTreeSet<String>,
    /// The request body's example, when the operation takes a body.
    example: Option<Value>,
}

fn operations(spec: &Yaml) -> Vec<Operation> {
    let paths = spec["paths"].as_hash().expect("openapi.yaml has paths");
    let mut ops = Vec::new();
    for (path, item) in paths {
        let path = path.as_str().expect("path keys are strings");
        let item = item.as_hash().unwrap_or_else(|| panic!("{path}: a path item"));
        for (method, op) in item {
            let method = method.as_str().expect("method keys are strings");
            if !METHODS.contains(&method) {
                continue; // `parameters`, `summary`, ...
            }
            let statuses: BTreeSet<String> = op["responses"]
                .as_hash()
                .unwrap_or_else(|| panic!("{method} {path}: responses"))
                .keys()
                .map(|k| match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(n) => n.to_string(),
                    other => panic!("{method} {path}: response key {other:?}"),
                })
                .collect();
            let body = &op["requestBody"];
            let example = match body {
                Yaml::BadValue => None,
                _ => {
                    let example = &body["content"]["application/json"]["example"];
                    assert!(!example.is_badvalue(), "{method} {path}: the request body has an example");
                    Some(to_json(example))
                }
            };
            ops.push(Operation { method: method.to_uppercase(), path: path.to_string(), statuses, example });
        }
    }
    ops
}

fn to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Real(s) => json!(s.parse::<f64>().unwrap()),
        Yaml::Integer(n) => json!(n),
        Yaml::String(s) => json!(s),
        Yaml::Boolean(b) => json!(b),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Hash(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.as_str().expect("string keys").to_string(), to_json(v))).collect())
        }
        Yaml::Null => Value::Null,
        other => panic!("unsupported YAML in an example: {other:?}"),
    }
}

#[test]
fn every_router_route_is_in_the_spec_and_nothing_else() {
    let spec = spec();
    let documented: BTreeSet<(String, String)> = operations(&spec).into_iter().map(|op| (op.method, op.path)).collect();
    let routed: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    let missing: Vec<_> = routed.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(missing.is_empty(), "routes the router serves and openapi.yaml does not describe: {missing:?}");
    assert!(extra.is_empty(), "operations in openapi.yaml the router does not serve: {extra:?}");

    // The router's source still has an arm for every path of the list (a cheap
    // guard against the list drifting from src/http/router.rs).
    let router = read("src/http/router.rs");
    for literal in ["\"/v1/coupons/\"", "\"issue\"", "\"/v1/sales/\"", "\"orders\"", "\"confirm\"", "\"cancel\""] {
        assert!(router.contains(literal), "src/http/router.rs no longer matches {literal}");
    }
    for (_, path) in ROUTES.iter().filter(|(_, p)| !p.contains('{')) {
        assert!(router.contains(&format!("\"{path}\"")), "src/http/router.rs has no arm for {path}");
    }
}

/// Error codes are written in the spec as whole words (`sold_out`, not a part of one).
fn mentions(text: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// The string literals between `start` and the end of that item (the first
/// line after it that closes at the item's own indentation).
fn literals_of_item(source: &str, start: &str) -> Vec<String> {
    let at = source.find(start).unwrap_or_else(|| panic!("`{start}` not found"));
    let indent = source[..at].rsplit('\n').next().unwrap_or("").len();
    let close = format!("\n{}}}", " ".repeat(indent));
    let end = source[at..].find(&close).map_or(source.len(), |e| at + e);
    string_literals(&source[at..end])
}

fn string_literals(text: &str) -> Vec<String> {
    text.split('"').skip(1).step_by(2).map(str::to_string).collect()
}

#[test]
fn every_error_code_is_named_in_the_spec() {
    let spec_text = read("openapi.yaml");
    let mut codes = BTreeSet::new();
    // The match arms of `ApiError::code()`.
    let error_rs = read("src/http/error.rs");
    codes.extend(literals_of_item(&error_rs, "pub fn code(&self)"));
    // The domain's refusals, answered with their own codes.
    let refusals = read("src/error.rs");
    codes.extend(literals_of_item(&refusals, "pub fn code(&self)"));
    // `BadRequest(code, _) => code`: the codes handlers and the router pass in.
    for entry in std::fs::read_dir(root().join("src/http")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        for (at, _) in source.match_indices("BadRequest(") {
            let rest = source[at + "BadRequest(".len()..].trim_start();
            if let Some(rest) = rest.strip_prefix('"') {
                codes.insert(rest[..rest.find('"').unwrap()].to_string());
            }
        }
        // The router's `invalid_<what>_id` codes come from a match on `what`.
        for line in source.lines().filter(|l| l.contains("=> \"invalid_")) {
            codes.extend(string_literals(line).into_iter().filter(|l| l.starts_with("invalid_")));
        }
    }
    for expected in
        ["sold_out", "order_paid", "invalid_coupon_id", "invalid_order_id", "invalid_query", "duplicate_sku"]
    {
        assert!(codes.contains(expected), "the source scan found {expected}: {codes:?}");
    }
    let missing: Vec<_> = codes.iter().filter(|c| !mentions(&spec_text, c)).collect();
    assert!(missing.is_empty(), "error codes the server answers with and openapi.yaml never names: {missing:?}");
}

/// The path with its parameters filled in.
fn concrete(template: &str, ids: &BTreeMap<&str, String>) -> String {
    let mut path = template.to_string();
    for (name, id) in ids {
        path = path.replace(&format!("{{{name}}}"), id);
    }
    assert!(!path.contains('{'), "{template}: a path parameter the test does not fill");
    path
}

/// (status, JSON body or Null, Allow header) for one request.
async fn call(app: &TestApp, method: &str, path: &str, body: Option<&Value>) -> (StatusCode, Value, Option<String>) {
    let method: Method = method.parse().unwrap();
    if method == Method::GET && (matches!(path, "/metrics" | "/dashboard") || path.starts_with("/wait/")) {
        // Not JSON: text/plain and text/html.
        let (status, content_type, _) = app.try_request_raw(path).await;
        assert!(content_type.starts_with("text/"), "GET {path}: {content_type}");
        return (status, Value::Null, None);
    }
    let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
    // Every write may carry an Idempotency-Key (a wallet charge must) and is
    // signed as the gateway would (confirm and charge need it; others ignore it).
    let signature = crate::requests::sign_payment(path, bytes.as_deref().unwrap_or_default());
    let headers = [("idempotency-key", "openapi-1"), ("flashsale-signature", signature.as_str())];
    let res = app
        .try_request_with(method.clone(), path, bytes, &headers)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let allow = res.headers.get("allow").map(|v| v.to_str().unwrap().to_string());
    (res.status, res.body, allow)
}

#[tokio::test]
async fn every_spec_operation_is_served_and_answers_a_documented_status() {
    let app = crate::queue::app().await;
    app.create_coupon(1, 100, &["--discount", "500"]);
    app.create_sale(1, &["1:9900:100", "2:19900:100"], &["--per-user", "0", "--hold", "10m"]);
    let order = app.reserve(1, 99, &[(2, 1)]).await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
    let ids = BTreeMap::from([
        ("coupon_id", "1".to_string()),
        ("sale_id", "1".to_string()),
        ("order_id", order.body["order_id"].as_u64().unwrap().to_string()),
        ("user_id", "99".to_string()),
    ]);
    // The waiting rooms' routes ask sale 2 and campaign 2, which have one, of the spec's example user.
    app.create_sale(2, &["1:9900:100"], &["--queue"]);
    let joined = app.post("/v1/sales/2/queue", &json!({"user_id": 7}), &[]).await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    let mut queue_ids = ids.clone();
    queue_ids.insert("sale_id", "2".to_string());
    queue_ids.insert("ticket", joined.body["ticket"].as_str().unwrap().to_string());
    app.create_coupon(2, 100, &["--queue"]);
    app.create_sale(3, &["1:9900:100"], &["--queue", "--pow-difficulty", "10"]);
    let joined = app.post("/v1/coupons/2/queue", &json!({"user_id": 7}), &[]).await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    let mut coupon_queue_ids = ids.clone();
    coupon_queue_ids.insert("coupon_id", "2".to_string());
    coupon_queue_ids.insert("ticket", joined.body["ticket"].as_str().unwrap().to_string());
    let room = |path: &str| path.contains("/queue") || path.starts_with("/wait/");
    let ids_of = |path: &str| match (room(path), path.starts_with("/v1/coupons") || path.starts_with("/wait/coupons")) {
        (true, true) => &coupon_queue_ids,
        (true, false) => &queue_ids,
        _ => &ids,
    };

    let spec = spec();
    let ops = operations(&spec);
    assert_eq!(ops.len(), ROUTES.len());
    let mut methods_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for op in &ops {
        methods_of.entry(op.path.as_str()).or_default().insert(op.method.as_str());
        let path = concrete(&op.path, ids_of(&op.path));
        let path = match op.path.as_str() {
            p if p.ends_with("/stats") => format!("{path}?coupon=1"),
            "/v1/queue/challenge" => format!("{path}?sale=3"),
            _ => path,
        };
        let (status, body, _) = call(&app, &op.method, &path, op.example.as_ref()).await;
        let what = format!("{} {path} -> {status} {body}", op.method);
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{what}");
        assert!(!(status == StatusCode::NOT_FOUND && body["error"] == "not_found"), "no route: {what}");
        assert!(
            op.statuses.contains(status.as_str()),
            "{what}: status not documented for the operation (documented: {:?})",
            op.statuses
        );
        // With the spec's own example and real ids, everything succeeds but the
        // order's state changes (the example amount is not this order's to_pay)
        // and readiness (a busy broker can make it 503).
        if !op.path.contains("/orders/") && op.path != "/readyz" {
            assert!(status.is_success(), "{what}");
        }
    }

    // A method the spec does not list for a path gets 405 and `Allow` names the
    // documented one.
    for (template, documented) in &methods_of {
        let path = concrete(template, ids_of(template));
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            if documented.contains(method) {
                continue;
            }
            let (status, body, allow) = call(&app, method, &path, None).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {body}");
            assert_eq!(body["error"], "method_not_allowed");
            let allow = allow.unwrap_or_else(|| panic!("{method} {path}: 405 without Allow"));
            assert!(documented.contains(allow.as_str()), "{method} {path}: Allow {allow}, spec {documented:?}");
        }
    }

    // And the check above can fail: paths no route serves are 404 `not_found`.
    for path in ["/v1/coupons/1/nope", "/v1/sales/1/orders/1/refund", "/v1/nope", "/nope"] {
        let (status, body, _) = call(&app, "POST", path, None).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "POST {path}");
    }
}
