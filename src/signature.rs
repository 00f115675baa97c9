//! Payment-callback signatures: the `Flashsale-Signature` header.
//!
//! A gateway call (order confirm, wallet charge) is believed only with
//! `Flashsale-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<METHOD> <path>.<raw body>")>`:
//! the method and path name what is paid, so a signature made for one order or
//! wallet verifies on no other. See docs/security.md.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;

/// The header's name.
pub const HEADER: &str = "flashsale-signature";
/// Largest distance between the signature's timestamp and now.
pub const TOLERANCE_SECS: u64 = 300;

/// Why a signature was refused (logged, never sent to the caller).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("no Flashsale-Signature header")]
    Missing,
    #[error("the header is not `t=<unix seconds>,v1=<hex>`")]
    Malformed,
    #[error("the timestamp is more than {TOLERANCE_SECS} s from now")]
    Stale,
    #[error("no v1 signature matches")]
    Mismatch,
}

/// Signs and checks payment callbacks with one shared secret.
pub struct Signer {
    key: Hmac<Sha256>,
}

impl Signer {
    pub fn new(secret: &Secret) -> Signer {
        Signer { key: Hmac::new_from_slice(secret.0.as_bytes()).expect("HMAC takes any key length") }
    }

    /// The header value for `method path` with `body`, signed at `t` (unix seconds).
    pub fn sign(&self, t: u64, target: &Target, body: &[u8]) -> String {
        let digest = self.mac(t, target, body).finalize().into_bytes();
        format!("t={t},v1={}", hex(&digest))
    }

    /// Checks a header value against `method path` and `body` at `now` (unix seconds).
    pub fn verify(&self, header: Option<&[u8]>, target: &Target, body: &[u8], now: u64) -> Result<(), Refused> {
        let header = std::str::from_utf8(header.ok_or(Refused::Missing)?).map_err(|_| Refused::Malformed)?;
        let mut t = None;
        let mut signatures = Vec::new();
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", value)) if t.is_none() => t = Some(value.parse::<u64>().map_err(|_| Refused::Malformed)?),
                Some(("t", _)) => return Err(Refused::Malformed),
                Some(("v1", value)) => signatures.push(unhex(value).ok_or(Refused::Malformed)?),
                // Other schemes (v0, future versions) are ignored, as Stripe does.
                Some(_) => {}
                None => return Err(Refused::Malformed),
            }
        }
        let t = t.ok_or(Refused::Malformed)?;
        if signatures.is_empty() || signatures.len() > 8 {
            return Err(Refused::Malformed);
        }
        if t.abs_diff(now) > TOLERANCE_SECS {
            return Err(Refused::Stale);
        }
        let mac = self.mac(t, target, body);
        if signatures.iter().any(|s| mac.clone().verify_slice(s).is_ok()) {
            Ok(())
        } else {
            Err(Refused::Mismatch)
        }
    }

    fn mac(&self, t: u64, target: &Target, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.key.clone();
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(target.method.as_bytes());
        mac.update(b" ");
        mac.update(target.path.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

/// What a signature authorizes besides the body: the request's method and
/// path (without the query).
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    pub method: &'a str,
    pub path: &'a str,
}

impl<'a> Target<'a> {
    pub fn post(path: &'a str) -> Target<'a> {
        Target { method: "POST", path }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 128 || !text.is_ascii() {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(secret: &str) -> Signer {
        Signer::new(&secret.parse().unwrap())
    }

    const BODY: &[u8] = br#"{"payment_key":"pay-1","amount":9900}"#;
    const PATH: Target = Target { method: "POST", path: "/v1/sales/1/orders/7/confirm" };

    #[test]
    fn a_signed_body_verifies_within_the_tolerance() {
        let s = signer("whsec-test-secret-0123");
        let header = s.sign(1_000_000, &PATH, BODY);
        assert!(header.starts_with("t=1000000,v1="));
        assert_eq!(s.verify(Some(header.as_bytes()), &PATH, BODY, 1_000_000), Ok(()));
        assert_eq!(s.verify(Some(header.as_bytes()), &PATH, BODY, 1_000_000 + TOLERANCE_SECS), Ok(()));
        assert_eq!(s.verify(Some(header.as_bytes()), &PATH, BODY, 1_000_000 - TOLERANCE_SECS), Ok(()));
    }

    #[test]
    fn a_stale_tampered_or_foreign_signature_is_refused() {
        let s = signer("whsec-test-secret-0123");
        let header = s.sign(1_000_000, &PATH, BODY);
        let h = Some(header.as_bytes());
        assert_eq!(s.verify(h, &PATH, BODY, 1_000_000 + TOLERANCE_SECS + 1), Err(Refused::Stale));
        assert_eq!(s.verify(h, &PATH, br#"{"payment_key":"pay-1","amount":0}"#, 1_000_000), Err(Refused::Mismatch));
        assert_eq!(signer("another-secret-entirely").verify(h, &PATH, BODY, 1_000_000), Err(Refused::Mismatch));
        // The timestamp is signed: moving it breaks the signature.
        let moved = header.replacen("t=1000000", "t=1000001", 1);
        assert_eq!(s.verify(Some(moved.as_bytes()), &PATH, BODY, 1_000_000), Err(Refused::Mismatch));
        assert_eq!(s.verify(None, &PATH, BODY, 1_000_000), Err(Refused::Missing));
        for bad in ["", "t=1", "v1=00", "t=x,v1=00", "t=1,v1=zz", "t=1,t=2,v1=00", "garbage", "t=1,v1=0"] {
            assert_eq!(s.verify(Some(bad.as_bytes()), &PATH, BODY, 1), Err(Refused::Malformed), "{bad}");
        }
    }

    #[test]
    fn a_signature_verifies_only_on_the_method_and_path_it_was_made_for() {
        let s = signer("whsec-test-secret-0123");
        let header = s.sign(1_000_000, &PATH, BODY);
        let h = Some(header.as_bytes());
        let other_order = Target::post("/v1/sales/1/orders/8/confirm");
        let a_wallet = Target::post("/v1/wallets/5/charge");
        let other_method = Target { method: "PUT", path: PATH.path };
        for target in [other_order, a_wallet, other_method] {
            assert_eq!(s.verify(h, &target, BODY, 1_000_000), Err(Refused::Mismatch), "{target:?}");
        }
        assert_eq!(s.verify(h, &PATH, BODY, 1_000_000), Ok(()));
    }

    #[test]
    fn any_matching_v1_of_several_is_accepted() {
        let s = signer("whsec-test-secret-0123");
        let good = s.sign(1_000_000, &PATH, BODY);
        let v1 = good.split_once(",v1=").unwrap().1;
        let header = format!("t=1000000,v1={},v0=ignored,v1={v1}", "ab".repeat(32));
        assert_eq!(s.verify(Some(header.as_bytes()), &PATH, BODY, 1_000_000), Ok(()));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    const BODY: &[u8] = b"{}";

    use super::*;

    proptest! {
        #[test]
        fn arbitrary_headers_never_verify_or_panic(header in proptest::collection::vec(any::<u8>(), 0..200)) {
            let s = Signer::new(&"whsec-test-secret-0123".parse().unwrap());
            let refused = s.verify(Some(&header), &Target::post("/"), BODY, 1_000_000).is_err();
            prop_assert!(refused);
        }
    }
}
