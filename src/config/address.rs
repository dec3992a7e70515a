//! `envoy.config.core.v3.Address` (`socket_address` only; `pipe` is not supported) and
//! `CidrRange`.

use std::net::{IpAddr, SocketAddr};

use super::decode::Obj;

/// `SocketAddress.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

/// A decoded `socket_address`: the host may be an IP literal or (for DNS clusters) a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketAddress {
    pub protocol: Protocol,
    pub address: String,
    pub port: u16,
}

impl SocketAddress {
    /// The address as an IP socket address, when `address` is an IP literal.
    pub fn ip(&self) -> Option<SocketAddr> {
        let ip: IpAddr = self.address.trim_start_matches('[').trim_end_matches(']').parse().ok()?;
        Some(SocketAddr::new(ip, self.port))
    }

    pub fn decode(o: &mut Obj) -> Option<SocketAddress> {
        let mut sa = o.obj("socket_address", "SocketAddress")?;
        let protocol = match sa.enumeration("protocol", &["TCP", "UDP"]) {
            Some("UDP") => Protocol::Udp,
            _ => Protocol::Tcp,
        };
        let address = sa.req_string("address");
        let port = sa.uint("port_value", 0, 65535).unwrap_or(0) as u16;
        sa.accept(&["ipv4_compat"]);
        sa.finish(&["named_port", "resolver_name", "network_namespace_filepath"]);
        Some(SocketAddress { protocol, address, port })
    }
}

/// Decodes an `Address` message found at field `key` of `o`.
pub fn address(o: &mut Obj, key: &'static str) -> Option<SocketAddress> {
    let mut a = o.obj(key, "Address")?;
    if !a.has("socket_address") {
        a.cx.error(
            &a.path,
            "Address needs 'socket_address' (pipe and envoy_internal_address are not supported by Legate)",
        );
    }
    let sa = SocketAddress::decode(&mut a);
    a.finish(&["pipe", "envoy_internal_address"]);
    sa
}

/// `envoy.config.core.v3.CidrRange`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CidrRange {
    pub prefix: IpAddr,
    pub len: u8,
}

impl CidrRange {
    pub fn decode(o: &mut Obj) -> Option<CidrRange> {
        let text = o.req_string("address_prefix");
        let len = o.uint("prefix_len", 0, 128).unwrap_or(0) as u8;
        let prefix: IpAddr = match text.parse() {
            Ok(ip) => ip,
            Err(_) => {
                if !text.is_empty() {
                    o.error("address_prefix", format!("'{text}' is not an IP address"));
                }
                return None;
            }
        };
        let max = if prefix.is_ipv4() { 32 } else { 128 };
        if len > max {
            o.error("prefix_len", format!("prefix length {len} is too long for {prefix}"));
            return None;
        }
        Some(CidrRange { prefix, len })
    }

    /// Whether `ip` is inside this range (IPv4-mapped IPv6 addresses match IPv4 ranges).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.prefix, ip) {
            (IpAddr::V4(p), IpAddr::V4(a)) => {
                let mask = if self.len == 0 { 0 } else { u32::MAX << (32 - u32::from(self.len)) };
                (u32::from(p) & mask) == (u32::from(a) & mask)
            }
            (IpAddr::V6(p), IpAddr::V6(a)) => {
                let mask = if self.len == 0 { 0 } else { u128::MAX << (128 - u32::from(self.len)) };
                (u128::from(p) & mask) == (u128::from(a) & mask)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_ranges_match_by_prefix() {
        let r = CidrRange { prefix: "10.1.0.0".parse().expect("ip"), len: 16 };
        assert!(r.contains("10.1.200.3".parse().expect("ip")));
        assert!(!r.contains("10.2.0.1".parse().expect("ip")));
        assert!(r.contains("::ffff:10.1.0.9".parse().expect("ip")));
        let all = CidrRange { prefix: "0.0.0.0".parse().expect("ip"), len: 0 };
        assert!(all.contains("192.168.1.1".parse().expect("ip")));
    }
}
