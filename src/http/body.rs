//! Reading request bodies: a size limit, then JSON into a typed request, with
//! a 400 that names the offending field when the JSON does not fit.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{body::Incoming, header, Request};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::config::HttpSettings;

/// Reads at most `limit` bytes of body and parses it as `T`.
/// `fields` lists `T`'s required fields with what each must be, for the 400 message.
pub async fn read_json<T: DeserializeOwned>(
    req: Request<Incoming>,
    limits: &HttpSettings,
    fields: &[(&str, &str)],
) -> Result<T, ApiError> {
    let body = read_bytes(req, limits).await?;
    parse_body(&body, limits, fields)
}

/// The raw body, at most `limit` bytes (a signed callback is checked on these
/// exact bytes before they are parsed).
pub async fn read_bytes(req: Request<Incoming>, limits: &HttpSettings) -> Result<Bytes, ApiError> {
    let limit = limits.body_limit;
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    read_limited(req.into_body(), limit).await
}

/// Parses a body read by [`read_bytes`] as `T`, within the depth limit.
pub fn parse_body<T: DeserializeOwned>(
    body: &[u8],
    limits: &HttpSettings,
    fields: &[(&str, &str)],
) -> Result<T, ApiError> {
    check_depth(body, limits.max_json_depth)?;
    parse_json(body, fields)
}

/// The whole body, at most `limit` bytes. A body that arrives in one frame (a
/// small JSON request nearly always does) is taken as it is, without copying.
async fn read_limited(mut body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    let unreadable =
        |e: hyper::Error| ApiError::BadRequest("unreadable_body", format!("could not read the request body: {e}"));
    let (mut first, mut joined, mut len): (Option<Bytes>, Option<Vec<u8>>, usize) = (None, None, 0);
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(unreadable)?.into_data() else { continue };
        len += data.len();
        if len > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        match (&mut joined, first.take()) {
            (Some(buf), _) => buf.extend_from_slice(&data),
            (None, None) => first = Some(data),
            (None, Some(head)) => {
                let mut buf = Vec::with_capacity(len);
                buf.extend_from_slice(&head);
                buf.extend_from_slice(&data);
                joined = Some(buf);
            }
        }
    }
    Ok(joined.map(Bytes::from).or(first).unwrap_or_default())
}

/// Rejects JSON nested deeper than `max` before any parser recurses into it.
fn check_depth(bytes: &[u8], max: usize) -> Result<(), ApiError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return Err(ApiError::BadRequest("too_deep", format!("JSON may nest at most {max} levels")));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Parses `bytes` as `T`. The typed parse is the fast path; only a failure
/// looks at the JSON again to say which field is wrong.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8], fields: &[(&str, &str)]) -> Result<T, ApiError> {
    // serde would also take a struct as an array (`[7]`); requests are objects.
    let opens_object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    match serde_json::from_slice(bytes) {
        Ok(value) if opens_object => Ok(value),
        Ok(_) => Err(ApiError::BadRequest("invalid_body", "the request body must be a JSON object".into())),
        Err(e) => Err(explain(bytes, e, fields)),
    }
}

fn explain(bytes: &[u8], err: serde_json::Error, fields: &[(&str, &str)]) -> ApiError {
    let value: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(_) if bytes.iter().all(u8::is_ascii_whitespace) => {
            return ApiError::BadRequest("malformed_json", "the request body is empty; expected a JSON object".into())
        }
        Err(e) => return ApiError::BadRequest("malformed_json", format!("the request body is not valid JSON: {e}")),
    };
    let Some(object) = value.as_object() else {
        return ApiError::BadRequest("invalid_body", "the request body must be a JSON object".into());
    };
    for (name, expected) in fields {
        match object.get(*name) {
            None | Some(serde_json::Value::Null) => {
                return ApiError::BadRequest("missing_field", format!("`{name}` is required: {expected}"))
            }
            Some(_) => {}
        }
    }
    let message = err.to_string();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let name = rest.split('`').next().unwrap_or_default();
        let name: String = name.chars().take(64).collect();
        return ApiError::BadRequest("unknown_field", format!("`{name}` is not a field of this request"));
    }
    let field = fields.iter().find(|(name, _)| message.contains(&format!("`{name}`")) || message.contains(name));
    match field {
        Some((name, expected)) => ApiError::BadRequest("invalid_field", format!("`{name}` must be {expected}")),
        None if fields.len() == 1 => {
            let (name, expected) = fields[0];
            ApiError::BadRequest("invalid_field", format!("`{name}` must be {expected}"))
        }
        None => ApiError::BadRequest("invalid_field", message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Req {
        user_id: u64,
    }

    const FIELDS: &[(&str, &str)] = &[("user_id", "an integer from 0 to 2^64-1")];

    fn code(body: &str) -> &'static str {
        parse_json::<Req>(body.as_bytes(), FIELDS).unwrap_err().code()
    }

    #[test]
    fn nesting_is_counted_outside_strings_only() {
        assert!(check_depth(br#"{"a":[{"b":1}]}"#, 3).is_ok());
        assert!(check_depth(br#"{"a":[{"b":[1]}]}"#, 3).is_err());
        assert!(check_depth(br#"{"a":"[[[[[[\"[["}"#, 1).is_ok());
    }

    #[test]
    fn each_kind_of_bad_body_gets_its_own_code() {
        assert_eq!(code("{"), "malformed_json");
        assert_eq!(code(""), "malformed_json");
        assert_eq!(code("[1]"), "invalid_body");
        assert_eq!(code("{}"), "missing_field");
        assert_eq!(code(r#"{"user_id":null}"#), "missing_field");
        assert_eq!(code(r#"{"user_id":"7"}"#), "invalid_field");
        assert_eq!(code(r#"{"user_id":-1}"#), "invalid_field");
        assert_eq!(code(r#"{"user_id":1.5}"#), "invalid_field");
        assert_eq!(parse_json::<Req>(br#"{"user_id":7}"#, FIELDS).unwrap().user_id, 7);
    }
}

/// Properties of the parsing layer over arbitrary input: it never panics, and
/// it accepts exactly what it should.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Req {
        user_id: u64,
    }

    const FIELDS: &[(&str, &str)] = &[("user_id", "an integer")];

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_errors_are_400s(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = check_depth(&bytes, 8);
            if let Err(e) = parse_json::<Req>(&bytes, FIELDS) {
                prop_assert_eq!(e.status(), hyper::StatusCode::BAD_REQUEST);
            }
        }

        #[test]
        fn any_user_id_round_trips(user_id in any::<u64>(), pad in "[ \\n]{0,3}") {
            let body = format!("{pad}{{\"user_id\":{user_id}}}{pad}");
            prop_assert_eq!(parse_json::<Req>(body.as_bytes(), FIELDS).unwrap(), Req { user_id });
        }

        #[test]
        fn depth_is_counted_exactly(depth in 1usize..40) {
            let body = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
            prop_assert_eq!(check_depth(body.as_bytes(), 16).is_ok(), depth <= 16);
        }

        #[test]
        fn brackets_inside_strings_never_count(noise in "[\\[\\]{}a-z]{0,64}") {
            let body = serde_json::json!({ "user_id": 1, "note": noise }).to_string();
            prop_assert!(check_depth(body.as_bytes(), 1).is_ok());
        }
    }
}
