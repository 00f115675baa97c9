//! Who the client is, network-wise: the TCP peer, or — only when that peer is
//! a trusted proxy (`FLASHSALE_TRUSTED_PROXIES`) — the address the proxies
//! recorded in `X-Forwarded-For`. The header is read from the right: each
//! trusted hop appended the address it received from, so the rightmost entry
//! that is not a trusted proxy is the first one no proxy of ours vouches for.
//! Anything left of it may be forged by the client. Without trusted proxies the
//! header is ignored: any client could name any address in it. A trusted
//! proxy's header that cannot be read is refused, not skipped. Limits key an
//! IPv6 client on its /64 (one subscriber's block) — see [`limit_key`].

use std::net::IpAddr;

use hyper::HeaderMap;

pub use crate::cidr::Cidr;

/// The trusted proxies and the rule above.
#[derive(Clone, Debug, Default)]
pub struct ClientIp {
    trusted: Vec<Cidr>,
}

/// Longest `X-Forwarded-For` chain read; a longer one is cut from the left.
const MAX_HOPS: usize = 32;

impl ClientIp {
    pub fn new(trusted: &[Cidr]) -> ClientIp {
        ClientIp { trusted: trusted.to_vec() }
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(ip))
    }

    /// The client's address for a request from `peer` with `headers`; Err
    /// when a trusted proxy's `X-Forwarded-For` cannot be read up to the
    /// client (falling back to the proxy's own address would let the client
    /// leave its bucket for the proxy's).
    pub fn of(&self, peer: IpAddr, headers: &HeaderMap) -> Result<IpAddr, Malformed> {
        if !self.trusts(peer) {
            return Ok(peer);
        }
        // Several X-Forwarded-For headers form one list, in order.
        let mut hops: Vec<&str> = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            let text = value.to_str().map_err(|_| Malformed)?;
            hops.extend(text.split(',').map(str::trim));
        }
        let mut client = peer;
        for hop in hops.iter().rev().take(MAX_HOPS) {
            client = parse_hop(hop).ok_or(Malformed)?;
            if !self.trusts(client) {
                break;
            }
        }
        Ok(client)
    }
}

/// A trusted proxy sent an `X-Forwarded-For` that is not a list of addresses.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

/// What limits count a client by: an IPv4 address, or an IPv6 address's /64
/// (a subscriber gets a whole /64 and can rotate within it at will).
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
        v4 => v4,
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:5678`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok());
    }
    hop.rsplit_once(':').and_then(|(ip, port)| port.parse::<u16>().ok().and(ip.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> ClientIp {
        ClientIp::new(&list.iter().map(|s| s.parse().unwrap()).collect::<Vec<_>>())
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_peer() {
        let p = proxies(&["10.0.0.0/8"]);
        let of = |peer, h: &HeaderMap| p.of(ip(peer), h).unwrap();
        assert_eq!(of("203.0.113.9", &xff(&["1.1.1.1"])), ip("203.0.113.9"), "untrusted peer: header ignored");
        assert_eq!(of("10.1.2.3", &xff(&["1.1.1.1"])), ip("1.1.1.1"));
        assert_eq!(of("10.1.2.3", &HeaderMap::new()), ip("10.1.2.3"), "no header: the peer");
        let none = ClientIp::default();
        assert_eq!(none.of(ip("10.1.2.3"), &xff(&["1.1.1.1"])), Ok(ip("10.1.2.3")), "no proxies trusted");
    }

    #[test]
    fn the_rightmost_untrusted_hop_wins_over_anything_forged_left_of_it() {
        let p = proxies(&["10.0.0.0/8", "192.168.1.7"]);
        let forged = xff(&["6.6.6.6, 1.1.1.1, 10.0.0.5"]);
        let of = |peer, h: &HeaderMap| p.of(ip(peer), h);
        assert_eq!(of("192.168.1.7", &forged), Ok(ip("1.1.1.1")));
        assert_eq!(of("10.0.0.1", &xff(&["6.6.6.6", "1.1.1.1:443", "10.9.9.9"])), Ok(ip("1.1.1.1")), "headers join");
        assert_eq!(of("10.0.0.1", &xff(&["10.0.0.2, 10.0.0.3"])), Ok(ip("10.0.0.2")), "all trusted: the leftmost");
        assert_eq!(of("10.0.0.1", &xff(&["[2001:db8::1]:80"])), Ok(ip("2001:db8::1")));
        assert_eq!(
            of("10.0.0.1", &xff(&["garbage, 1.1.1.1, 10.0.0.3"])),
            Ok(ip("1.1.1.1")),
            "forged garbage is left of it"
        );
    }

    #[test]
    fn a_trusted_proxys_unreadable_header_is_refused_not_skipped() {
        let p = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            p.of(ip("10.0.0.1"), &xff(&["1.1.1.1, garbage, 10.0.0.3"])),
            Err(Malformed),
            "garbage before the client"
        );
        assert_eq!(p.of(ip("10.0.0.1"), &xff(&[""])), Err(Malformed));
        let mut non_ascii = HeaderMap::new();
        non_ascii.append("x-forwarded-for", hyper::header::HeaderValue::from_bytes(b"1.1.1.1\xff").unwrap());
        assert_eq!(p.of(ip("10.0.0.1"), &non_ascii), Err(Malformed));
        assert_eq!(
            p.of(ip("203.0.113.9"), &non_ascii),
            Ok(ip("203.0.113.9")),
            "an untrusted peer's header is not read"
        );
    }

    #[test]
    fn limits_key_ipv6_clients_on_their_64() {
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa::1")), limit_key(ip("2001:db8:1:2:ffff::9")));
        assert_ne!(limit_key(ip("2001:db8:1:2::1")), limit_key(ip("2001:db8:1:3::1")));
        assert_eq!(limit_key(ip("::ffff:1.2.3.4")), ip("1.2.3.4"));
        assert_ne!(limit_key(ip("1.2.3.4")), limit_key(ip("1.2.3.5")));
    }

    #[test]
    fn blocks_parse_and_match() {
        assert!("10.0.0.0/8".parse::<Cidr>().unwrap().contains(ip("10.200.1.1")));
        assert!(!"10.0.0.0/8".parse::<Cidr>().unwrap().contains(ip("11.0.0.1")));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("8.8.8.8")));
        assert!("127.0.0.1".parse::<Cidr>().unwrap().contains(ip("::ffff:127.0.0.1")));
        assert!("2001:db8::/32".parse::<Cidr>().unwrap().contains(ip("2001:db8:1::1")));
        assert!("::/0".parse::<Cidr>().unwrap().contains(ip("::1")));
        for bad in ["10.0.0.0/33", "x", "10.0.0.0/", "::/129", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }
}
