//! What the raw-HTTP property test sends: real route shapes and random
//! ones, methods (lowercase, garbage), queries with raw non-ASCII and control
//! bytes and `%` escapes, headers (tokens valid, expired, forged, garbage),
//! bodies (JSON-ish, deep, huge numbers, non-UTF-8) and framings (lengths
//! right, wrong and absurd; chunks good and broken).

use std::time::{SystemTime, UNIX_EPOCH};

use flashsale::http::Jwt;
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
        8 => fixed(&["GET", "POST"]),
        3 => fixed(&["PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "CONNECT", "get", "post", "Get", "pOsT"]),
        1 => bytes("[A-Za-z0-9!#$%&'*+.^_`|~-]{1,10}"),
        1 => vec(any::<u8>(), 1..8),
    ]
}

/// A path id: valid, out of range, signed, non-ASCII, escaped, empty.
fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(&["1", "2", "0", "18446744073709551615"][..]).prop_map(String::from),
        2 => select(&["18446744073709551616", "-1", "+1", "01", "1.5", "", "abc", "%31", "1%00", "1%C3%A9"][..])
            .prop_map(String::from),
        1 => "[0-9]{1,30}",
        2 => "[0-9]{0,3}\\PC{1,3}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    let real = prop_oneof![
        id().prop_map(|c| format!("/v1/coupons/{c}/issue")),
        id().prop_map(|c| format!("/v1/coupons/{c}")),
        id().prop_map(|s| format!("/v1/sales/{s}")),
        id().prop_map(|s| format!("/v1/sales/{s}/orders")),
        (id(), id()).prop_map(|(s, o)| format!("/v1/sales/{s}/orders/{o}")),
        (id(), id(), select(&["confirm", "cancel", "confirm/", "cancel/x", "pay", ""][..]))
            .prop_map(|(s, o, a)| format!("/v1/sales/{s}/orders/{o}/{a}")),
        select(
            &[
                "/v1/rankings/products",
                "/v1/dashboard/stats",
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
        .prop_map(String::from),
        vec("[a-z0-9.%-]{0,8}|\\PC{0,4}", 0..5).prop_map(|segments| format!("/{}", segments.join("/"))),
    ];
    prop_oneof![
        12 => real.clone(),
        1 => real.prop_map(|p| format!("http://example.test{p}")),
        1 => Just("*".to_string()),
    ]
}

fn query_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => fixed(&["1d", "3d", "6h", "30d", "31d", "0h", "5", "1", "100", "101", "0", "-1", "", "d", "h", "3w"]),
        2 => bytes("[0-9]{1,25}[hdw]?"),
        3 => bytes("[0-9]{0,3}\\PC{1,3}"),
        1 => bytes("(%[0-9A-Fa-f]{2}|%[G-Zg-z]?|%){1,4}"),
        1 => vec(any::<u8>(), 0..6),
    ]
}

fn query() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        4 => fixed(&["window", "limit", "coupon", "sale"]),
        1 => bytes("\\PC{0,4}"),
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

fn target() -> impl Strategy<Value = Vec<u8>> {
    (path(), prop::option::of(query()), prop::option::weighted(0.1, vec(any::<u8>(), 1..4))).prop_map(
        |(path, query, junk)| {
            let mut out = path.into_bytes();
            if let Some(junk) = junk {
                out.extend_from_slice(&junk);
            }
            if let Some(query) = query {
                out.push(b'?');
                out.extend_from_slice(&query);
            }
            out
        },
    )
}

fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn authorization() -> impl Strategy<Value = Vec<u8>> {
    let jwt = Jwt::new(&SECRET.parse().unwrap());
    let valid = (
        prop_oneof![Just(1u64), Just(0), Just(u64::MAX), any::<u64>()],
        select(vec![0, 1, now_s() + 3600, u64::MAX / 1000, u64::MAX / 1000 + 1, u64::MAX]),
    )
        .prop_map(move |(sub, exp)| format!("Bearer {}", jwt.sign(sub, exp)).into_bytes());
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
    let text = prop_oneof![bytes("[ -~]{0,30}"), bytes("\\PC{0,6}"), vec(any::<u8>(), 0..8)];
    prop_oneof![
        3 => (
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
        4 => (name("authorization"), authorization()),
        2 => (
            name("idempotency-key"),
            prop_oneof![bytes("[!-~]{1,140}"), bytes("\\PC{1,8}"), vec(128u8.., 1..8), Just(vec![])]
        ),
        1 => (name("expect"), fixed(&["100-continue", "nonsense"])),
        1 => (name("connection"), fixed(&["close", "keep-alive", "upgrade", "Keep-Alive, Upgrade", ""])),
        1 => (name("upgrade"), fixed(&["websocket", "h2c"])),
        2 => (bytes("[A-Za-z0-9-]{1,12}"), text.clone()),
        1 => (vec(any::<u8>(), 0..6), text),
        // A head past max_header_bytes (16 KiB): hyper's 431.
        1 => (name("x-big"), (1usize..24).prop_map(|k| vec![b'a'; k * 1024])),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    let number = "-?[0-9]{1,40}(\\.[0-9]{1,5})?([eE][+-]?[0-9]{1,4})?";
    prop_oneof![
        3 => Just(vec![]),
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
        3 => Just(Framing::Bare),
        6 => Just(Framing::Length),
        1 => prop_oneof![(-5i64..0), (1i64..5)].prop_map(Framing::LengthOff),
        1 => select(
            &["18446744073709551616", "99999999999999", "-1", "abc", "1, 2", "0x10", " 3", "1\u{e9}"][..]
        )
        .prop_map(Framing::LengthText),
        2 => vec(1usize..20, 0..4).prop_map(Framing::Chunked),
        1 => select(
            &["bad_size", "size_too_big", "size_too_small", "huge_size", "extension", "no_crlf", "no_last_chunk", "trailer_junk"][..]
        )
        .prop_map(Framing::BrokenChunks),
        1 => Just(Framing::Both),
    ]
}

pub fn request() -> impl Strategy<Value = RawRequest> {
    (
        method(),
        target(),
        prop_oneof![10 => Just("HTTP/1.1"), 1 => select(&["HTTP/1.0", "HTTP/1.2", "HTTP/9.9", "http/1.1", "HTTP/1", "FOO"][..])],
        prop::bool::weighted(0.9),
        vec(header(), 0..5),
        framing(),
        body(),
    )
        .prop_map(|(method, target, version, host, mut headers, framing, body)| {
            if host {
                headers.insert(0, (b"host".to_vec(), b"t".to_vec()));
            }
            RawRequest { method, target, version, headers, framing, body }
        })
}
