//! Name resolution for STRICT_DNS and LOGICAL_DNS clusters, through the system resolver
//! (`getaddrinfo` via tokio), honouring `dns_lookup_family` and refreshing every
//! `dns_refresh_rate`. STRICT_DNS keeps every address of every name; LOGICAL_DNS keeps the
//! first address only, as Envoy does.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::cluster::Cluster;
use super::host::{Host, Locality};
use crate::config::cluster::{ClusterConfig, DiscoveryType, DnsLookupFamily};

/// Resolves one name to the addresses `family` allows, in Envoy's preference order.
pub async fn resolve(name: &str, port: u16, family: DnsLookupFamily) -> std::io::Result<Vec<SocketAddr>> {
    let name = name.trim_start_matches('[').trim_end_matches(']');
    // An IP literal resolves to itself, still subject to the family (as with Envoy's resolver).
    let all: Vec<SocketAddr> = match name.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((name, port)).await?.collect(),
    };
    let v4: Vec<SocketAddr> = all.iter().copied().filter(SocketAddr::is_ipv4).collect();
    let v6: Vec<SocketAddr> = all.iter().copied().filter(SocketAddr::is_ipv6).collect();
    let pick = |first: Vec<SocketAddr>, second: Vec<SocketAddr>| {
        if first.is_empty() {
            second
        } else {
            first
        }
    };
    let out = match family {
        DnsLookupFamily::V4Only => v4,
        DnsLookupFamily::V6Only => v6,
        DnsLookupFamily::Auto => pick(v6, v4),
        DnsLookupFamily::V4Preferred => pick(v4, v6),
        DnsLookupFamily::All => all,
    };
    if out.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no addresses for '{name}' in the requested family"),
        ));
    }
    Ok(out)
}

/// Builds the host list of `config`, resolving names for DNS clusters.
pub async fn resolve_hosts(config: &ClusterConfig) -> Result<Vec<Arc<Host>>, String> {
    let mut hosts = Vec::new();
    for loc in &config.localities {
        let locality = Locality { region: loc.region.clone(), zone: loc.zone.clone(), sub_zone: loc.sub_zone.clone() };
        for ep in &loc.endpoints {
            let addrs = match config.discovery {
                DiscoveryType::Static => ep.address.ip().into_iter().collect(),
                _ => resolve(&ep.address.address, ep.address.port, config.dns_lookup_family)
                    .await
                    .map_err(|e| format!("cluster '{}': cannot resolve '{}': {e}", config.name, ep.address.address))?,
            };
            let addrs =
                if config.discovery == DiscoveryType::LogicalDns { addrs.into_iter().take(1).collect() } else { addrs };
            let hostname = if ep.hostname.is_empty() && config.discovery != DiscoveryType::Static {
                ep.address.address.clone()
            } else {
                ep.hostname.clone()
            };
            for a in addrs {
                hosts.push(Arc::new(Host::new(a, hostname.clone(), ep.weight, loc.priority, locality.clone())));
            }
        }
    }
    Ok(hosts)
}

/// Re-resolves a DNS cluster every `dns_refresh_rate` until the task is aborted.
pub async fn refresh_loop(cluster: Arc<Cluster>) {
    let mut tick = tokio::time::interval(cluster.config.dns_refresh_rate);
    tick.tick().await;
    loop {
        tick.tick().await;
        cluster.stats.update_attempt.inc();
        match resolve_hosts(&cluster.config).await {
            Ok(hosts) if hosts.is_empty() => {
                cluster.stats.update_empty.inc();
            }
            Ok(hosts) => {
                cluster.stats.update_success.inc();
                cluster.set_hosts(hosts);
            }
            Err(e) => {
                cluster.stats.update_failure.inc();
                tracing::warn!(target: "upstream", "{e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literals_resolve_to_themselves_within_the_family() {
        let v6 = resolve("::1", 80, DnsLookupFamily::Auto).await.expect("resolves");
        assert_eq!(v6, vec!["[::1]:80".parse::<SocketAddr>().expect("addr")]);
        let err = resolve("::1", 80, DnsLookupFamily::V4Only).await.expect_err("no IPv4 address");
        assert!(err.to_string().contains("no addresses for '::1' in the requested family"), "{err}");
        let v4 = resolve("127.0.0.1", 80, DnsLookupFamily::V4Preferred).await.expect("resolves");
        assert_eq!(v4.len(), 1);
    }
}
