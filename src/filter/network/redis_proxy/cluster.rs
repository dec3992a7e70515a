//! Redis Cluster routing for the proxy: the host of a key's hash slot under `read_policy`
//! (Envoy's `RedisClusterLoadBalancer`), and the MOVED / ASK / CLUSTERDOWN replies that
//! `enable_redirection` acts on (Envoy's `ClientImpl::onRespValue`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use legate_codecs::redis::is_write;

use crate::config::redis_proxy::ReadPolicy;
use crate::upstream::host::Host;
use crate::upstream::redis_cluster::Shard;

/// Whether `name` (any case) is a read command, which `read_policy` may send to a replica:
/// Envoy's `SupportedCommands::isReadCommand`, the same list that decides what
/// `exclude_read_commands` mirrors ([`legate_codecs::redis::is_write`]).
pub fn is_read_command(name: &[u8]) -> bool {
    let mut lower = [0u8; 32];
    let Some(buf) = lower.get_mut(..name.len()) else { return false };
    buf.copy_from_slice(name);
    buf.make_ascii_lowercase();
    let Ok(s) = std::str::from_utf8(buf) else { return false };
    !is_write(s)
}

fn random(hosts: &[Arc<Host>]) -> Option<Arc<Host>> {
    if hosts.is_empty() {
        return None;
    }
    hosts.get(rand::random::<u32>() as usize % hosts.len()).cloned()
}

/// Envoy's `RedisClusterLoadBalancer::chooseHost` for one shard: writes go to the primary;
/// reads follow the policy (every host is healthy: Legate runs no health checks on them).
pub fn pick(shard: &Shard, policy: ReadPolicy, read: impl FnOnce() -> bool) -> Option<Arc<Host>> {
    if policy == ReadPolicy::Master || !read() {
        return Some(shard.primary.clone());
    }
    match policy {
        ReadPolicy::Master | ReadPolicy::PreferMaster => Some(shard.primary.clone()),
        ReadPolicy::Replica => random(&shard.replicas),
        ReadPolicy::PreferReplica => random(&shard.replicas).or_else(|| random(&shard.all)),
        ReadPolicy::Any => random(&shard.all),
    }
}

/// A redirection reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redirect {
    pub ask: bool,
    pub to: SocketAddr,
}

/// What an error reply means with `enable_redirection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorReply {
    /// `-MOVED <slot> <ip>:<port>` or `-ASK <slot> <ip>:<port>` (exactly three words).
    Redirect(Redirect),
    /// A MOVED/ASK whose address Envoy cannot use (not `ip:port`): a failed redirection.
    BadRedirect,
    /// `-CLUSTERDOWN ...`: Envoy fails the request (`upstream failure`).
    ClusterDown,
    Other,
}

/// Classifies an error reply frame (`-...\r\n`).
pub fn classify_error(frame: &[u8]) -> ErrorReply {
    let Some(text) = frame.strip_prefix(b"-").and_then(|f| f.strip_suffix(b"\r\n")) else {
        return ErrorReply::Other;
    };
    let Ok(text) = std::str::from_utf8(text) else { return ErrorReply::Other };
    // Envoy splits on single spaces, dropping empty tokens.
    let words: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
    match words.first() {
        Some(&"CLUSTERDOWN") => return ErrorReply::ClusterDown,
        Some(&"MOVED") | Some(&"ASK") if words.len() == 3 => {}
        _ => return ErrorReply::Other,
    }
    let ask = words[0] == "ASK";
    match parse_address(words[2]) {
        Some(to) => ErrorReply::Redirect(Redirect { ask, to }),
        None => ErrorReply::BadRedirect,
    }
}

/// `ip:port`, the IPv6 form unbracketed as Redis writes it (`::1:7000`) or bracketed.
fn parse_address(s: &str) -> Option<SocketAddr> {
    let colon = s.rfind(':')?;
    let (ip, port) = (&s[..colon], &s[colon + 1..]);
    let port: u16 = port.parse().ok()?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    Some(SocketAddr::new(ip.parse::<IpAddr>().ok()?, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::host::Locality;

    #[test]
    fn write_list_is_sorted_and_reads_are_the_rest() {
        // Envoy 1.40 routes these as reads (checked against it with read_policy REPLICA).
        assert!(is_read_command(b"GETSET") && is_read_command(b"xadd") && is_read_command(b"getex"));
        assert!(!is_read_command(b"sort") && !is_read_command(b"HEXPIRE"));
        assert!(is_read_command(b"GET"));
        assert!(is_read_command(b"mget"));
        assert!(is_read_command(b"zrange"));
        assert!(!is_read_command(b"SET"));
        assert!(!is_read_command(b"incr"));
        assert!(!is_read_command(&[b'x'; 40]));
    }

    #[test]
    fn redirections_are_recognised_as_envoy_does() {
        let r = |s: &str| classify_error(format!("-{s}\r\n").as_bytes());
        let to: SocketAddr = "127.0.0.1:7002".parse().expect("addr");
        assert_eq!(r("MOVED 3999 127.0.0.1:7002"), ErrorReply::Redirect(Redirect { ask: false, to }));
        assert_eq!(r("ASK 3999 127.0.0.1:7002"), ErrorReply::Redirect(Redirect { ask: true, to }));
        let v6: SocketAddr = "[::1]:7002".parse().expect("addr");
        assert_eq!(r("MOVED 1 ::1:7002"), ErrorReply::Redirect(Redirect { ask: false, to: v6 }));
        assert_eq!(r("MOVED 1 redis-a:7002"), ErrorReply::BadRedirect);
        assert_eq!(r("MOVED 3999"), ErrorReply::Other);
        assert_eq!(r("CLUSTERDOWN The cluster is down"), ErrorReply::ClusterDown);
        assert_eq!(r("ERR wrong type"), ErrorReply::Other);
        assert_eq!(classify_error(b"+OK\r\n"), ErrorReply::Other);
    }

    #[test]
    fn read_policy_picks_within_the_shard() {
        let h = |p: u16| {
            Arc::new(Host::new(SocketAddr::from(([127, 0, 0, 1], p)), String::new(), 1, 0, Locality::default()))
        };
        let (p, r) = (h(1), h(2));
        let shard = Shard { primary: p.clone(), replicas: vec![r.clone()], all: vec![p.clone(), r.clone()] };
        let port = |x: Option<Arc<Host>>| x.map(|h| h.address.port());
        assert_eq!(port(pick(&shard, ReadPolicy::Replica, || true)), Some(2));
        assert_eq!(port(pick(&shard, ReadPolicy::Replica, || false)), Some(1));
        assert_eq!(port(pick(&shard, ReadPolicy::Master, || true)), Some(1));
        assert_eq!(port(pick(&shard, ReadPolicy::PreferMaster, || true)), Some(1));
        assert_eq!(port(pick(&shard, ReadPolicy::PreferReplica, || true)), Some(2));
        let alone = Shard { primary: p.clone(), replicas: vec![], all: vec![p] };
        assert_eq!(port(pick(&alone, ReadPolicy::Replica, || true)), None);
        assert_eq!(port(pick(&alone, ReadPolicy::PreferReplica, || true)), Some(1));
        assert_eq!(port(pick(&alone, ReadPolicy::Any, || true)), Some(1));
    }
}
