//! Proof of work before joining a room (`--pow-difficulty N`): ALTCHA PoW v2
//! challenges (the `altcha` crate) in its deterministic mode, bound to one
//! room and signed with keys drawn from FLASHSALE_QUEUE_SECRET.

use altcha::{CreateChallengeOptions, HmacAlgorithm, Payload, VerifySolutionOptions};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{config::Secret, keys::Room, signature::hex};

/// PBKDF2-SHA-256 iterations per attempt: a solver makes about N attempts.
const COST: u32 = 100;
/// How long a challenge may be solved and used (seconds).
pub const TTL_SECS: u64 = 300;
/// Longest payload read (a solved challenge is about 700 bytes).
const MAX_PAYLOAD: usize = 4096;

pub struct Pow {
    /// Signs a challenge's parameters.
    challenge_key: String,
    /// Signs the key the solver must find (so a check derives nothing).
    solution_key: String,
}

/// A solved challenge that checks out: its nonce (used once, until `expires_ms`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Solved {
    pub nonce: String,
    pub expires_ms: u64,
}

impl Pow {
    pub fn new(secret: &Secret) -> Pow {
        let derive = |purpose: &str| {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.0.as_bytes()).expect("HMAC takes any key length");
            mac.update(purpose.as_bytes());
            hex(&mac.finalize().into_bytes())
        };
        Pow { challenge_key: derive("altcha-challenge"), solution_key: derive("altcha-solution") }
    }

    /// A challenge for `room` that takes about `difficulty` attempts (the
    /// counter to find is drawn from [N/2, 3N/2)), as the ALTCHA widget reads it.
    pub fn challenge(&self, room: Room, difficulty: u32) -> Result<serde_json::Value, altcha::Error> {
        let n = u64::from(difficulty.max(1));
        let counter = n / 2 + rand::random::<u64>() % n;
        let data = [("room".to_string(), serde_json::Value::from(room.member()))].into_iter().collect();
        let challenge = altcha::create_challenge(CreateChallengeOptions {
            counter: Some(counter.min(u64::from(u32::MAX)) as u32),
            cost: COST,
            data: Some(data),
            expires_at: Some(crate::time::now_ms() / 1000 + TTL_SECS),
            hmac_signature_secret: Some(self.challenge_key.clone()),
            hmac_key_signature_secret: Some(self.solution_key.clone()),
            ..Default::default()
        })?;
        Ok(serde_json::to_value(challenge).unwrap_or_default())
    }

    /// The solved challenge `payload` (base64 of the ALTCHA JSON, or the JSON
    /// itself) if this service made it for `room`, it has not expired and
    /// the solution is right. Nothing is derived: the solution key is signed.
    pub fn check(&self, room: Room, payload: &str) -> Option<Solved> {
        if payload.len() > MAX_PAYLOAD {
            return None;
        }
        let json = match payload.trim_start().starts_with('{') {
            true => payload.as_bytes().to_vec(),
            false => base64::engine::general_purpose::STANDARD.decode(payload.trim()).ok()?,
        };
        let Payload { challenge, solution } = serde_json::from_slice(&json).ok()?;
        let p = &challenge.parameters;
        let ours = p.key_signature.is_some()
            && p.cost == COST
            && p.data.as_ref().and_then(|d| d.get("room")).and_then(|r| r.as_str()) == Some(&room.member());
        let expires_at = p.expires_at?;
        if !ours {
            return None;
        }
        let verified = altcha::verify_solution(VerifySolutionOptions {
            challenge: &challenge,
            solution: &solution,
            hmac_algorithm: HmacAlgorithm::Sha256,
            hmac_key_signature_secret: Some(self.solution_key.clone()),
            hmac_signature_secret: self.challenge_key.clone(),
        })
        .is_ok_and(|r| r.verified);
        // Remembered a minute past the expiry: the check reads this clock, Redis its own.
        let expires_ms = expires_at.saturating_add(60).saturating_mul(1000);
        verified.then(|| Solved { nonce: p.nonce.clone(), expires_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solve(challenge: &serde_json::Value) -> String {
        let challenge: altcha::Challenge = serde_json::from_value(challenge.clone()).unwrap();
        let solution = altcha::solve_challenge(altcha::SolveChallengeOptions::new(&challenge)).unwrap().unwrap();
        let payload = serde_json::to_vec(&Payload { challenge, solution }).unwrap();
        base64::engine::general_purpose::STANDARD.encode(payload)
    }

    #[test]
    fn a_solved_challenge_checks_out_for_its_room_only() {
        let pow = Pow::new(&"a-queue-secret-of-16+".parse().unwrap());
        let challenge = pow.challenge(Room::Sale(7), 20).unwrap();
        let payload = solve(&challenge);
        let solved = pow.check(Room::Sale(7), &payload).expect("solved");
        assert_eq!(solved.nonce, challenge["parameters"]["nonce"]);
        assert_eq!(pow.check(Room::Coupon(7), &payload), None, "another room");
        assert_eq!(Pow::new(&"another-secret-of-16+".parse().unwrap()).check(Room::Sale(7), &payload), None);
        for junk in ["", "{}", "not base64", "e30=", &"A".repeat(5000)] {
            assert_eq!(pow.check(Room::Sale(7), junk), None, "{junk}");
        }
        // A wrong solution: the derived key of another counter.
        let mut wrong: serde_json::Value =
            serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(&payload).unwrap()).unwrap();
        wrong["solution"]["counter"] = (wrong["solution"]["counter"].as_u64().unwrap() + 1).into();
        wrong["solution"]["derivedKey"] = "00".repeat(32).into();
        assert_eq!(pow.check(Room::Sale(7), &wrong.to_string()), None);
    }
}
