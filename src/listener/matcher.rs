//! Filter-chain selection in Envoy's order (FilterChainMatch docs): destination port,
//! destination IP ranges, server names, transport protocol, application protocols, direct
//! source IP ranges, source type, source IP ranges, source ports. At each step the most
//! specific matching value wins; chains that leave the criterion unset are the fallback.
//! Server names, transport protocol and ALPN come from the `tls_inspector` listener filter.

use std::net::SocketAddr;

use crate::config::address::CidrRange;
use crate::config::listener::{FilterChainMatch, SourceType};

/// Facts about a new connection that chains are matched against.
#[derive(Debug, Clone, Copy)]
pub struct ConnFacts<'a> {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The requested server name (SNI), lower-cased, when the inspector found one.
    pub server_name: Option<&'a str>,
    /// `tls` or `raw_buffer` (the default when nothing detected TLS).
    pub transport: &'a str,
    /// The client's ALPN protocols.
    pub alpn: &'a [String],
}

/// Returns the index of the chain to use, or `None` (then the default chain, if any).
/// `n` chains, read through `chain(i)`, so the caller needs no list of references.
pub fn select<'m>(n: usize, chains: impl Fn(usize) -> &'m FilterChainMatch, facts: &ConnFacts) -> Option<usize> {
    let mut cand: Vec<usize> = (0..n).collect();
    // 1. destination port
    narrow(&mut cand, |i| chains(i).destination_port.map(|p| if p == facts.local.port() { Some(1) } else { None }));
    // 2. destination IP ranges
    narrow(&mut cand, |i| cidr_score(&chains(i).prefix_ranges, facts.local));
    // 3. server names: an exact name beats the longest matching `*.suffix`
    narrow(&mut cand, |i| server_name_score(&chains(i).server_names, facts.server_name));
    // 4. transport protocol
    narrow(&mut cand, |i| chains(i).transport_protocol.as_deref().map(|t| (t == facts.transport).then_some(1)));
    // 5. application protocols: any of the chain's protocols offered by the client
    narrow(&mut cand, |i| {
        let want = &chains(i).application_protocols;
        (!want.is_empty()).then(|| want.iter().any(|p| facts.alpn.contains(p)).then_some(1))
    });
    // 6. direct source IP ranges (no PROXY protocol, so the same as the source)
    narrow(&mut cand, |i| cidr_score(&chains(i).direct_source_prefix_ranges, facts.remote));
    // 7. source type
    narrow(&mut cand, |i| match chains(i).source_type {
        SourceType::Any => None,
        SourceType::SameIpOrLoopback => {
            Some((facts.remote.ip().is_loopback() || facts.remote.ip() == facts.local.ip()).then_some(1))
        }
        SourceType::External => {
            Some((!facts.remote.ip().is_loopback() && facts.remote.ip() != facts.local.ip()).then_some(1))
        }
    });
    // 8. source IP ranges
    narrow(&mut cand, |i| cidr_score(&chains(i).source_prefix_ranges, facts.remote));
    // 9. source ports
    narrow(&mut cand, |i| {
        let ports = &chains(i).source_ports;
        (!ports.is_empty()).then(|| ports.contains(&facts.remote.port()).then_some(1))
    });
    cand.first().copied()
}

fn server_name_score(names: &[String], sni: Option<&str>) -> Option<Option<u32>> {
    if names.is_empty() {
        return None;
    }
    let Some(sni) = sni else { return Some(None) };
    Some(
        names
            .iter()
            .filter_map(|n| match n.strip_prefix('*') {
                // `*.example.com` matches `www.example.com`, never `example.com` itself.
                Some(suffix) => (sni.len() > suffix.len() && sni.ends_with(suffix)).then_some(suffix.len() as u32),
                None => (n == sni).then_some(u32::MAX),
            })
            .max(),
    )
}

/// `None` = criterion unset; `Some(None)` = set and not matching; `Some(Some(n))` = matching
/// with specificity n (higher is more specific).
fn cidr_score(ranges: &[CidrRange], addr: SocketAddr) -> Option<Option<u32>> {
    if ranges.is_empty() {
        return None;
    }
    Some(ranges.iter().filter(|r| r.contains(addr.ip())).map(|r| u32::from(r.len) + 1).max())
}

/// Keeps the most specific matching candidates if any chain sets the criterion and matches;
/// otherwise keeps the candidates that leave it unset.
/// In place: one candidate list per connection, no allocation per step.
fn narrow(cand: &mut Vec<usize>, score: impl Fn(usize) -> Option<Option<u32>>) {
    let best = cand.iter().filter_map(|&i| score(i).flatten()).max();
    match best {
        Some(b) => cand.retain(|&i| score(i) == Some(Some(b))),
        None => cand.retain(|&i| score(i).is_none()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(chains: &[&FilterChainMatch], facts: &ConnFacts) -> Option<usize> {
        super::select(chains.len(), |i| chains[i], facts)
    }

    fn facts(local: &str, remote: &str) -> ConnFacts<'static> {
        ConnFacts {
            local: local.parse().expect("addr"),
            remote: remote.parse().expect("addr"),
            server_name: None,
            transport: "raw_buffer",
            alpn: &[],
        }
    }

    fn names(list: &[&str]) -> FilterChainMatch {
        let mut m = FilterChainMatch::any();
        m.server_names = list.iter().map(|s| s.to_string()).collect();
        m
    }

    #[test]
    fn exact_server_name_beats_the_longest_wildcard_which_beats_none() {
        let exact = names(&["www.example.com"]);
        let wide = names(&["*.com"]);
        let narrow_ = names(&["*.example.com"]);
        let none = FilterChainMatch::any();
        let chains = [&none, &wide, &narrow_, &exact];
        let sni = |n: &'static str| ConnFacts {
            server_name: Some(n),
            transport: "tls",
            ..facts("127.0.0.1:443", "127.0.0.1:9")
        };
        assert_eq!(select(&chains, &sni("www.example.com")), Some(3));
        assert_eq!(select(&chains, &sni("api.example.com")), Some(2));
        assert_eq!(select(&chains, &sni("example.com")), Some(1));
        assert_eq!(select(&chains, &sni("example.org")), Some(0));
        assert_eq!(select(&chains, &facts("127.0.0.1:443", "127.0.0.1:9")), Some(0));
    }

    #[test]
    fn transport_and_alpn_select_chains() {
        let mut tls = FilterChainMatch::any();
        tls.transport_protocol = Some("tls".into());
        let mut h2 = tls.clone();
        h2.application_protocols = vec!["h2".into()];
        let raw = FilterChainMatch::any();
        let chains = [&raw, &tls, &h2];
        let alpn = ["h2".to_string(), "http/1.1".to_string()];
        let with_h2 = ConnFacts { transport: "tls", alpn: &alpn, ..facts("127.0.0.1:443", "127.0.0.1:9") };
        assert_eq!(select(&chains, &with_h2), Some(2));
        let tls_only = ConnFacts { transport: "tls", ..facts("127.0.0.1:443", "127.0.0.1:9") };
        assert_eq!(select(&chains, &tls_only), Some(1));
        assert_eq!(select(&chains, &facts("127.0.0.1:443", "127.0.0.1:9")), Some(0));
    }

    fn cidr(s: &str, len: u8) -> CidrRange {
        CidrRange { prefix: s.parse().expect("ip"), len }
    }

    #[test]
    fn destination_port_match_beats_an_unset_port() {
        let mut a = FilterChainMatch::any();
        a.destination_port = Some(9000);
        let b = FilterChainMatch::any();
        assert_eq!(select(&[&b, &a], &facts("127.0.0.1:9000", "127.0.0.1:5555")), Some(1));
        assert_eq!(select(&[&b, &a], &facts("127.0.0.1:9001", "127.0.0.1:5555")), Some(0));
    }

    #[test]
    fn longest_source_prefix_wins_and_no_match_falls_to_default() {
        let mut wide = FilterChainMatch::any();
        wide.source_prefix_ranges = vec![cidr("127.0.0.0", 8)];
        let mut narrow_ = FilterChainMatch::any();
        narrow_.source_prefix_ranges = vec![cidr("127.0.0.2", 32)];
        let chains = [&wide, &narrow_];
        assert_eq!(select(&chains, &facts("127.0.0.1:80", "127.0.0.2:1000")), Some(1));
        assert_eq!(select(&chains, &facts("127.0.0.1:80", "127.0.0.3:1000")), Some(0));
        assert_eq!(select(&chains, &facts("127.0.0.1:80", "10.0.0.3:1000")), None);
    }

    #[test]
    fn source_ports_and_source_type_narrow_the_choice() {
        let mut p = FilterChainMatch::any();
        p.source_ports = vec![4000];
        let mut local = FilterChainMatch::any();
        local.source_type = SourceType::SameIpOrLoopback;
        assert_eq!(select(&[&local, &p], &facts("127.0.0.1:80", "127.0.0.1:4000")), Some(0));
        assert_eq!(select(&[&p], &facts("127.0.0.1:80", "127.0.0.1:4001")), None);
    }
}
