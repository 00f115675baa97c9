//! Tickets and admissions: what a waiting room hands out, signed with
//! FLASHSALE_QUEUE_SECRET (HMAC-SHA256) and bound to one user and one room
//! (a sale's or a campaign's).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{config::Secret, keys::Room, signature::hex};

/// A place in a waiting room: the user and their join number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    pub room: Room,
    pub user: u64,
    pub join: u64,
}

/// Leave to reserve in a sale, or be issued a coupon, until `until` (ms since
/// the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    pub room: Room,
    pub user: u64,
    pub until: u64,
}

/// Signs and reads tickets (`s{sale}.{user}.{join}.{mac}`, `c{coupon}...` for a
/// campaign) and admissions (`s{sale}.{user}.{until}.{mac}`); each kind's MAC
/// covers its own name.
pub struct Tickets {
    key: Hmac<Sha256>,
}

/// Hex characters of the MAC kept (128 bits).
const MAC_HEX: usize = 32;

impl Tickets {
    pub fn new(secret: &Secret) -> Tickets {
        Tickets { key: Hmac::new_from_slice(secret.0.as_bytes()).expect("HMAC takes any key length") }
    }

    pub fn ticket(&self, t: Ticket) -> String {
        self.sign("ticket", t.room, t.user, t.join)
    }

    pub fn admission(&self, a: Admission) -> String {
        self.sign("admission", a.room, a.user, a.until)
    }

    /// The ticket `text` stands for, if this service signed it.
    pub fn read_ticket(&self, text: &str) -> Option<Ticket> {
        let (room, user, join) = self.read("ticket", text)?;
        Some(Ticket { room, user, join })
    }

    /// The admission `text` stands for, if this service signed it.
    pub fn read_admission(&self, text: &str) -> Option<Admission> {
        let (room, user, until) = self.read("admission", text)?;
        Some(Admission { room, user, until })
    }

    fn sign(&self, kind: &str, room: Room, user: u64, n: u64) -> String {
        let body = match room {
            Room::Sale(id) => format!("s{id}.{user}.{n}"),
            Room::Coupon(id) => format!("c{id}.{user}.{n}"),
        };
        format!("{body}.{}", &hex(&self.mac(kind, &body))[..MAC_HEX])
    }

    fn read(&self, kind: &str, text: &str) -> Option<(Room, u64, u64)> {
        let (body, mac) = text.rsplit_once('.')?;
        let mac = mac_bytes(mac)?;
        let mut check = self.key.clone();
        check.update(kind.as_bytes());
        check.update(b":");
        check.update(body.as_bytes());
        check.verify_truncated_left(&mac).ok()?;
        let (room, rest): (fn(u64) -> Room, &str) = match body.split_at_checked(1)? {
            ("s", rest) => (Room::Sale, rest),
            ("c", rest) => (Room::Coupon, rest),
            _ => return None,
        };
        let mut parts = rest.split('.');
        let mut next = || parts.next()?.parse::<u64>().ok();
        let read = (room(next()?), next()?, next()?);
        parts.next().is_none().then_some(read)
    }

    fn mac(&self, kind: &str, body: &str) -> Vec<u8> {
        let mut mac = self.key.clone();
        mac.update(kind.as_bytes());
        mac.update(b":");
        mac.update(body.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

/// A MAC's hex digits as bytes (no allocation: every poll reads one).
fn mac_bytes(text: &str) -> Option<[u8; MAC_HEX / 2]> {
    let digits = text.as_bytes();
    if digits.len() != MAC_HEX {
        return None;
    }
    let mut mac = [0; MAC_HEX / 2];
    for (byte, pair) in mac.iter_mut().zip(digits.chunks_exact(2)) {
        let digit = |c: u8| char::from(c).to_digit(16);
        *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tickets(secret: &str) -> Tickets {
        Tickets::new(&secret.parse().unwrap())
    }

    #[test]
    fn a_ticket_reads_back_and_nothing_else_does() {
        let t = tickets("a-queue-secret-of-16+");
        let ticket = Ticket { room: Room::Sale(7), user: 42, join: 3 };
        let text = t.ticket(ticket);
        assert_eq!(t.read_ticket(&text), Some(ticket));
        assert_eq!(t.read_admission(&text), None, "a ticket is no admission");
        assert_eq!(tickets("another-secret-of-16+").read_ticket(&text), None);
        for forged in [text.replacen("s7.42.", "s7.43.", 1), text.replacen("s7.", "c7.", 1)] {
            assert_eq!(t.read_ticket(&forged), None, "{forged}");
        }
        let coupon = Ticket { room: Room::Coupon(7), ..ticket };
        assert_eq!(t.read_ticket(&t.ticket(coupon)), Some(coupon));
        for junk in ["", ".", "s7.42.3", "s7.42.3.zz", "s7.42.3.00", "\u{e9}\u{e9}.aa"] {
            assert_eq!(t.read_ticket(junk), None, "{junk}");
        }
        let admission = Admission { room: Room::Sale(7), user: 42, until: 1_800_000_000_000 };
        assert_eq!(t.read_admission(&t.admission(admission)), Some(admission));
    }
}
