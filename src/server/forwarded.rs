//! Who the client really is behind a reverse proxy: `X-Forwarded-For` and
//! `X-Real-IP` (de-facto standards; RFC 7239 `Forwarded` says the same
//! more formally), believed only from peers in `--trusted-proxy`.
//!
//! ```text
//!  X-Forwarded-For: client, proxy1, proxy2      (each proxy appends the
//!                                                address it heard from)
//!  peer (the socket) = proxy3, trusted
//!  walk right to left, skipping trusted proxies: proxy2? trusted, skip;
//!  proxy1? not trusted: that is the client (everything left of it could
//!  have been written by the client itself, so it is never believed)
//! ```
//!
//! A peer that is not trusted is the client, whatever its headers say.
//! (Here, not in `http/`: addresses are `std::net`'s, and the leaves
//! stay free of it.)

use std::net::IpAddr;

use crate::config::Cidr;

/// Is `ip` one of the trusted proxies?
pub fn is_trusted(trusted: &[Cidr], ip: IpAddr) -> bool {
    trusted.iter().any(|cidr| cidr.contains(ip))
}

/// The client's address: `peer` itself unless it is a trusted proxy;
/// then, walking `X-Forwarded-For` from the right, the first hop that is
/// not a trusted proxy. A hop that does not parse stops the walk at the
/// last address believed (what lies left of it was written by someone we
/// cannot vouch for). Every hop trusted: the left-most. `X-Real-IP` only
/// when there is no `X-Forwarded-For` at all. (Several `X-Forwarded-For`
/// headers count as one list, in order.)
pub fn client_address<'a>(
    peer: IpAddr,
    headers: impl Iterator<Item = (&'a str, &'a str)> + Clone,
    trusted: &[Cidr],
) -> IpAddr {
    if !is_trusted(trusted, peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .clone()
        .filter(|(name, _)| name.eq_ignore_ascii_case("x-forwarded-for"))
        .flat_map(|(_, value)| value.split(','))
        .map(str::trim)
        .filter(|hop| !hop.is_empty())
        .collect();
    if hops.is_empty() {
        return headers
            .filter(|(name, _)| name.eq_ignore_ascii_case("x-real-ip"))
            .find_map(|(_, value)| value.trim().parse().ok())
            .unwrap_or(peer);
    }
    let mut believed = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if is_trusted(trusted, ip) => believed = ip,
            Ok(ip) => return ip,
            Err(_) => return believed,
        }
    }
    believed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|c| Cidr::parse(c).unwrap()).collect()
    }

    #[test]
    fn only_a_trusted_peer_is_believed_and_only_up_to_the_first_untrusted_hop() {
        let trusted = cidrs(&["127.0.0.1", "10.0.0.0/8"]);
        let xff = |v: &'static str| vec![("X-Forwarded-For", v)];
        let of = |peer: &str, h: Vec<(&'static str, &'static str)>| {
            client_address(ip(peer), h.into_iter(), &trusted)
        };
        // Not a trusted peer: its headers are ignored.
        assert_eq!(of("192.0.2.7", xff("1.2.3.4")), ip("192.0.2.7"));
        // One proxy.
        assert_eq!(of("127.0.0.1", xff("1.2.3.4")), ip("1.2.3.4"));
        // The client wrote a fake first hop; the proxy appended the real one.
        assert_eq!(of("127.0.0.1", xff("6.6.6.6, 1.2.3.4")), ip("1.2.3.4"));
        // Two proxies of ours.
        assert_eq!(of("127.0.0.1", xff("1.2.3.4, 10.0.0.5")), ip("1.2.3.4"));
        // X-Real-IP when there is no X-Forwarded-For.
        assert_eq!(
            of("127.0.0.1", vec![("x-real-ip", "2001:db8::1")]),
            ip("2001:db8::1")
        );
        // Garbage: the proxy itself; and X-Real-IP is not a way around it.
        assert_eq!(of("127.0.0.1", xff("not an address")), ip("127.0.0.1"));
        let both = vec![("X-Forwarded-For", "x"), ("X-Real-IP", "9.9.9.9")];
        assert_eq!(of("127.0.0.1", both), ip("127.0.0.1"), "no chosen address");
        // A hop that does not parse stops the walk at the last one believed.
        assert_eq!(
            of("127.0.0.1", xff("1.2.3.4, junk, 10.0.0.7")),
            ip("10.0.0.7")
        );
        assert_eq!(of("127.0.0.1", vec![]), ip("127.0.0.1"));
    }
}
