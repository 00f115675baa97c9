//! What the raw-HTTP property test sends: real route shapes and random
//! ones, methods (lowercase, garbage), queries with raw non-ASCII and control
//! bytes and `%` escapes, headers (tokens valid, expired, forged, garbage),
//! bodies (JSON-ish, deep, huge numbers, non-UTF-8) and framings (lengths
//! right, wrong and absurd; chunks good and broken).

use std::time::{SystemTime, UNIX_EPOCH};

use proptest::{collection::vec, prelude::*, sample::select};

use super::{
    wire::{Framing, RawRequest},
    SECRET,
};

fn bytes(s: impl Strategy<Value = String>) -> impl Strategy<Value = Vec<u8>> {
    s.prop_map(String::into_bytes)
}

fn fixed(options: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    select(options).prop_map(|s| s.as_bytes().to_vec())
}

fn method() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        16 => fixed(&["GET", "POST"]),
        4 => fixed(&["PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "CONNECT", "get", "post", "Get", "pOsT"]),
        1 => bytes("[A-Za-z0-9!#$%&'*+.^_`|~-]{1,10}"),
        1 => vec(any::<u8>(), 1..8),
    ]
}

/// A path id: valid, out of range, signed, non-ASCII, escaped, empty.
fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("1".to_string()),
        2 => select(&["2", "0", "18446744073709551615"][..]).prop_map(String::from),
        2 => select(&["18446744073709551616", "-1", "+1", "01", "1.5", "", "abc", "%31", "1%00", "1%C3%A9"][..])
            .prop_map(String::from),
        1 => "[0-9]{1,30}",
        2 => "[0-9]{0,3}\\PC{1,3}",
        2 => "[0-9]{0,3}[^\\x00-\\x7F]{1,2}",
    ]
}

/// A path and the method its route serves: real route shapes (the
/// query-parsing routes weighted up: they read the most request text), then
/// anything.
fn path() -> impl Strategy<Value = (String, &'static str)> {
    let real = prop_oneof![
        3 => id().prop_map(|c| (format!("/v1/coupons/{c}/issue"), "POST")),
        1 => id().prop_map(|c| (format!("/v1/coupons/{c}"), "GET")),
        1 => id().prop_map(|s| (format!("/v1/sales/{s}"), "GET")),
        3 => id().prop_map(|s| (format!("/v1/sales/{s}/orders"), "POST")),
        1 => (id(), id()).prop_map(|(s, o)| (format!("/v1/sales/{s}/orders/{o}"), "GET")),
        3 => (id(), id(), select(&["confirm", "cancel", "confirm/", "cancel/x", "pay", ""][..]))
            .prop_map(|(s, o, a)| (format!("/v1/sales/{s}/orders/{o}/{a}"), "POST")),
        4 => Just(("/v1/rankings/products".to_string(), "GET")),
        3 => Just(("/v1/dashboard/stats".to_string(), "GET")),
        2 => select(
            &[
                "/metrics",
                "/healthz",
                "/readyz",
                "/dashboard",
                "/v1/rankings/products/",
                "/v1/coupons/",
                "/v1/sales/",
                "/",
                "//",
            ][..]
        )
        .prop_map(|p| (p.to_string(), "GET")),
        2 => vec("[a-z0-9.%-]{0,8}|\\PC{0,4}", 0..5)
            .prop_map(|segments| (format!("/{}", segments.join("/")), "GET")),
    ];
    prop_oneof![
        24 => real.clone(),
        2 => real.prop_map(|(p, m)| (format!("http://example.test{p}"), m)),
        1 => Just(("*".to_string(), "OPTIONS")),
    ]
}

fn query_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => fixed(&["1d", "3d", "6h", "30d", "31d", "0h", "5", "1", "100", "101", "0", "-1", "", "d", "h", "3w"]),
        2 => bytes("[0-9]{1,25}[hdw]?"),
        3 => bytes("[0-9]{0,3}\\PC{1,3}"),
        // Valid UTF-8, not ASCII: reaches the router as it is.
        3 => bytes("[0-9]{0,3}[^\\x00-\\x7F]{1,2}"),
        2 => bytes("(%[0-9A-Fa-f]{2}|%[G-Zg-z]?|%){1,4}"),
        // Controls, spaces, invalid UTF-8: hyper's 400 mostly.
        1 => vec(any::<u8>(), 0..6),
    ]
}

fn query() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        12 => fixed(&["window", "limit", "coupon", "sale"]),
        2 => bytes("\\PC{0,4}"),
        1 => vec(any::<u8>(), 0..4),
    ];
    vec((key, prop::option::of(query_value())), 0..4).prop_map(|pairs| {
        let mut out = Vec::new();
        for (i, (key, value)) in pairs.into_iter().enumerate() {
            if i > 0 {
                out.push(b'&');
            }
            out.extend_from_slice(&key);
            if let Some(value) = value {
                out.push(b'=');
                out.extend_from_slice(&value);
            }
        }
        out
    })
}

/// A request target and the method its route serves.
fn target() -> impl Strategy<Value = (Vec<u8>, &'static str)> {
    (path(), prop::option::weighted(0.8, query()), prop::option::weighted(0.03, vec(any::<u8>(), 1..4))).prop_map(
        |((path, method), query, junk)| {
            let mut out = path.as_bytes().to_vec();
            if let Some(junk) = junk {
                out.extend_from_slice(&junk);
            }
            if let Some(query) = query.filter(|_| path != "*") {
                out.push(b'?');
                out.extend_from_slice(&query);
            }
            (out, method)
        },
    )
}

fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// An HS256 token signed with the test service's secret.
fn sign(sub: u64, exp: u64) -> String {
    let claims = serde_json::json!({"sub": sub.to_string(), "exp": exp});
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &claims, &key).unwrap()
}

/// A good token of user 1, 2 or 3: gets requests past the identity check.
fn user_token() -> impl Strategy<Value = Vec<u8>> {
    let exp = now_s() + 3600;
    (1u64..=3).prop_map(move |user| format!("Bearer {}", sign(user, exp)).into_bytes())
}

/// Tokens valid, expired, forged, truncated, non-ASCII, of other schemes.
fn authorization() -> impl Strategy<Value = Vec<u8>> {
    let valid = (
        prop_oneof![Just(1u64), Just(0), Just(u64::MAX), any::<u64>()],
        select(vec![0, 1, now_s() + 3600, u64::MAX / 1000, u64::MAX / 1000 + 1, u64::MAX]),
    )
        .prop_map(move |(sub, exp)| format!("Bearer {}", sign(sub, exp)).into_bytes());
    prop_oneof![
        2 => valid,
        2 => bytes("Bearer [A-Za-z0-9_.-]{0,60}"),
        1 => bytes("Bearer \\PC{0,10}"),
        1 => vec(128u8.., 0..12).prop_map(|b| [b"Bearer ".to_vec(), b].concat()),
        // alg "none", alg "HS256" with a garbage payload
        1 => fixed(&[
            "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ.",
            "Bearer eyJhbGciOiJIUzI1NiJ9.AAAA.AAAA",
            "Bearer ...",
            "Bearer",
            "Basic dXNlcjpwYXNz",
            "",
        ]),
    ]
}

fn header() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    let name = |n: &'static str| Just(n.as_bytes().to_vec());
    let text = prop_oneof![
        4 => bytes("[ -~]{0,30}"),
        4 => bytes("\\PC{0,6}"),
        2 => vec(128u8.., 0..8),
        1 => vec(any::<u8>(), 0..8),
    ];
    prop_oneof![
        6 => (
            name("content-type"),
            fixed(&[
                "application/json",
                "application/json; charset=utf-8",
                "text/plain",
                "",
                "multipart/form-data; boundary=x",
                "application/json\u{e9}",
            ])
        ),
        8 => (name("authorization"), authorization()),
        4 => (
            name("idempotency-key"),
            prop_oneof![bytes("[!-~]{1,140}"), bytes("\\PC{1,8}"), vec(128u8.., 1..8), Just(vec![])]
        ),
        2 => (name("expect"), fixed(&["100-continue", "nonsense"])),
        2 => (name("connection"), fixed(&["close", "keep-alive", "upgrade", "Keep-Alive, Upgrade", ""])),
        2 => (name("upgrade"), fixed(&["websocket", "h2c"])),
        4 => (bytes("[A-Za-z0-9-]{1,12}"), text.clone()),
        1 => (vec(any::<u8>(), 0..6), text),
        // A head past max_header_bytes (16 KiB): hyper's 431.
        1 => (name("x-big"), (8usize..24).prop_map(|k| vec![b'a'; k * 1024])),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    let number = "-?[0-9]{1,40}(\\.[0-9]{1,5})?([eE][+-]?[0-9]{1,4})?";
    prop_oneof![
        3 => Just(vec![]),
        3 => fixed(&[r#"{}"#, r#"{"items":[{"sku":1,"quantity":1}]}"#, r#"{"payment_key":"p","amount":100}"#]),
        4 => fixed(&[
            r#"{"user_id":1}"#,
            r#"{}"#,
            r#"{"items":[{"sku":1,"quantity":1}]}"#,
            r#"{"items":[{"sku":1,"quantity":1},{"sku":1,"quantity":2}]}"#,
            r#"{"items":[{"sku":1,"quantity":9223372036854775808}]}"#,
            r#"{"items":[],"coupon_id":1}"#,
            r#"{"payment_key":"p","amount":100}"#,
            r#"{"payment_key":"","amount":100}"#,
            r#"{"user_id":18446744073709551616}"#,
            r#"{"user_id":1e400}"#,
            r#"{"user_id":-0}"#,
            r#"{"user_id":"1"}"#,
            r#"{"user_id":1,"user_id":2}"#,
            "[1]",
            "null",
            "\"x\"",
            "{\"user_id\":1",
        ]),
        2 => (select(&["user_id", "amount", "coupon_id", "sku", "quantity"][..]), number)
            .prop_map(|(field, n)| format!(r#"{{"{field}":{n},"payment_key":"k","items":[]}}"#).into_bytes()),
        1 => ((1usize..200), select(&["[", "{\"a\":", "{\"items\":["][..]))
            .prop_map(|(depth, open)| open.repeat(depth).into_bytes()),
        1 => bytes("\\PC{0,40}"),
        1 => vec(any::<u8>(), 0..300),
        1 => (4000usize..4200).prop_map(|n| format!("{{\"user_id\":1,\"pad\":\"{}\"}}", "x".repeat(n)).into_bytes()),
    ]
}

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![
        6 => Just(Framing::Bare),
        12 => Just(Framing::Length),
        2 => prop_oneof![(-5i64..0), (1i64..5)].prop_map(Framing::LengthOff),
        1 => select(
            &["18446744073709551616", "99999999999999", "-1", "abc", "1, 2", "0x10", " 3", "1\u{e9}"][..]
        )
        .prop_map(Framing::LengthText),
        4 => vec(1usize..20, 0..4).prop_map(Framing::Chunked),
        2 => select(
            &["bad_size", "size_too_big", "size_too_small", "huge_size", "extension", "no_crlf", "no_last_chunk", "trailer_junk"][..]
        )
        .prop_map(Framing::BrokenChunks),
        1 => Just(Framing::Both),
    ]
}

pub fn request() -> impl Strategy<Value = RawRequest> {
    (
        // The route's own method mostly, so most requests reach its handler.
        prop::option::weighted(0.3, method()),
        target(),
        prop_oneof![
            20 => Just("HTTP/1.1"),
            2 => Just("HTTP/1.0"),
            1 => select(&["HTTP/1.2", "HTTP/9.9", "http/1.1", "HTTP/1", "FOO"][..]),
        ],
        prop::bool::weighted(0.9),
        prop::option::weighted(0.4, user_token()),
        vec(header(), 0..4),
        framing(),
        body(),
    )
        .prop_map(|(method, (target, served), version, host, user, mut headers, framing, body)| {
            let method = method.unwrap_or_else(|| served.as_bytes().to_vec());
            if let Some(token) = user {
                headers.insert(0, (b"authorization".to_vec(), token));
            }
            if host {
                headers.insert(0, (b"host".to_vec(), b"t".to_vec()));
            }
            RawRequest { method, target, version, headers, framing, body }
        })
}
