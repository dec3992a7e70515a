//! `cluster_type: {name: envoy.clusters.redis, typed_config: RedisClusterConfig}`: a cluster
//! whose hosts are discovered with `CLUSTER SLOTS` from the seed hosts of its
//! `load_assignment`, with Envoy's defaults.

use std::time::Duration;

use super::decode::Obj;

pub const REDIS_CLUSTER_NAME: &str = "envoy.clusters.redis";
pub const REDIS_CLUSTER_TYPE: &str = "type.googleapis.com/envoy.extensions.clusters.redis.v3.RedisClusterConfig";

/// Envoy's `cluster_refresh_rate` default (5 s).
pub const DEFAULT_CLUSTER_REFRESH_RATE: Duration = Duration::from_secs(5);
/// Envoy's `cluster_refresh_timeout` default (3 s).
pub const DEFAULT_CLUSTER_REFRESH_TIMEOUT: Duration = Duration::from_secs(3);
/// Envoy's `redirect_refresh_interval` default (5 s).
pub const DEFAULT_REDIRECT_REFRESH_INTERVAL: Duration = Duration::from_secs(5);
/// Envoy's `redirect_refresh_threshold` default (5).
pub const DEFAULT_REDIRECT_REFRESH_THRESHOLD: u32 = 5;

/// `envoy.extensions.clusters.redis.v3.RedisClusterConfig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisClusterConfig {
    pub cluster_refresh_rate: Duration,
    pub cluster_refresh_timeout: Duration,
    pub redirect_refresh_interval: Duration,
    /// Redirections (MOVED/ASK) before a topology refresh is triggered; 0 disables.
    pub redirect_refresh_threshold: u32,
    /// Upstream failures before a topology refresh is triggered; 0 (the default) disables.
    pub failure_refresh_threshold: u32,
    /// Hosts turning degraded/unhealthy before a refresh; 0 disables (accepted: Legate has no
    /// health checks on Redis Cluster hosts, so it never fires).
    pub host_degraded_refresh_threshold: u32,
}

impl Default for RedisClusterConfig {
    fn default() -> Self {
        RedisClusterConfig {
            cluster_refresh_rate: DEFAULT_CLUSTER_REFRESH_RATE,
            cluster_refresh_timeout: DEFAULT_CLUSTER_REFRESH_TIMEOUT,
            redirect_refresh_interval: DEFAULT_REDIRECT_REFRESH_INTERVAL,
            redirect_refresh_threshold: DEFAULT_REDIRECT_REFRESH_THRESHOLD,
            failure_refresh_threshold: 0,
            host_degraded_refresh_threshold: 0,
        }
    }
}

/// Decodes `cluster_type`; `None` (with an error recorded) for any other custom cluster type.
pub fn decode_cluster_type(ct: &mut Obj) -> Option<RedisClusterConfig> {
    let name = ct.req_string("name");
    if name != REDIS_CLUSTER_NAME {
        if !name.is_empty() {
            ct.error(
                "name",
                format!("custom cluster type '{name}' is not supported by Legate (only {REDIS_CLUSTER_NAME})"),
            );
        }
        ct.accept(&["typed_config"]);
        ct.finish(&[]);
        return None;
    }
    let mut out = RedisClusterConfig::default();
    if let Some(mut tc) = ct.obj("typed_config", "RedisClusterConfig") {
        let ty = tc.string("@type").unwrap_or_default();
        if ty != REDIS_CLUSTER_TYPE {
            tc.error(
                "@type",
                format!("cluster type {REDIS_CLUSTER_NAME} needs typed_config @type {REDIS_CLUSTER_TYPE}"),
            );
        }
        let positive = |tc: &mut Obj, key: &'static str, default: Duration| -> Duration {
            match tc.duration(key) {
                Some(d) if d.is_zero() => {
                    tc.error(key, "must be greater than 0s");
                    default
                }
                Some(d) => d,
                None => default,
            }
        };
        out.cluster_refresh_rate = positive(&mut tc, "cluster_refresh_rate", DEFAULT_CLUSTER_REFRESH_RATE);
        out.cluster_refresh_timeout = positive(&mut tc, "cluster_refresh_timeout", DEFAULT_CLUSTER_REFRESH_TIMEOUT);
        out.redirect_refresh_interval =
            tc.duration("redirect_refresh_interval").unwrap_or(DEFAULT_REDIRECT_REFRESH_INTERVAL);
        out.redirect_refresh_threshold = tc
            .uint("redirect_refresh_threshold", 0, u64::from(u32::MAX))
            .map(|v| v as u32)
            .unwrap_or(DEFAULT_REDIRECT_REFRESH_THRESHOLD);
        out.failure_refresh_threshold =
            tc.uint("failure_refresh_threshold", 0, u64::from(u32::MAX)).unwrap_or(0) as u32;
        out.host_degraded_refresh_threshold =
            tc.uint("host_degraded_refresh_threshold", 0, u64::from(u32::MAX)).unwrap_or(0) as u32;
        tc.finish(&[]);
    } else {
        ct.missing("typed_config");
    }
    ct.finish(&[]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::cluster::{DiscoveryType, LbPolicyConfig};
    use super::super::{load, LoadOptions};
    use super::*;

    fn cluster(extra: &str) -> String {
        format!(
            r#"
static_resources:
  clusters:
  - name: rc
    connect_timeout: 1s
{extra}
    load_assignment:
      cluster_name: rc
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: redis-seed.example, port_value: 7000}}}}}}}}]}}]
"#
        )
    }

    fn load_text(name: &str, text: &str) -> Result<super::super::Loaded, String> {
        let dir = std::env::temp_dir().join(format!("legate-redis-cluster-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        load(&LoadOptions { config_path: Some(p.to_string_lossy().into_owned()), ..Default::default() })
            .map_err(|e| e.to_string())
    }

    #[test]
    fn redis_cluster_type_decodes_with_envoy_defaults() {
        let text = cluster(
            "    lb_policy: CLUSTER_PROVIDED
    cluster_type:
      name: envoy.clusters.redis
      typed_config:
        \"@type\": type.googleapis.com/envoy.extensions.clusters.redis.v3.RedisClusterConfig
        cluster_refresh_rate: 2s
        redirect_refresh_threshold: {value: 1}",
        );
        let loaded = load_text("ok.yaml", &text).expect("loads");
        let c = &loaded.bootstrap.clusters[0];
        assert_eq!(c.discovery, DiscoveryType::RedisCluster);
        assert_eq!(c.lb_policy, LbPolicyConfig::ClusterProvided);
        let r = c.redis_cluster.as_ref().expect("redis cluster");
        assert_eq!(r.cluster_refresh_rate, Duration::from_secs(2));
        assert_eq!(r.cluster_refresh_timeout, DEFAULT_CLUSTER_REFRESH_TIMEOUT);
        assert_eq!(r.redirect_refresh_interval, DEFAULT_REDIRECT_REFRESH_INTERVAL);
        assert_eq!(r.redirect_refresh_threshold, 1);
        assert_eq!(r.failure_refresh_threshold, 0);
    }

    #[test]
    fn cluster_provided_and_other_cluster_types_are_checked() {
        let err = load_text("lb.yaml", &cluster("    lb_policy: CLUSTER_PROVIDED")).expect_err("rejected");
        assert!(err.contains("static_resources.clusters[0].lb_policy"), "{err}");
        assert!(err.contains("CLUSTER_PROVIDED needs a cluster type"), "{err}");
        let err =
            load_text("other.yaml", &cluster("    cluster_type: {name: envoy.clusters.aggregate, typed_config: {}}"))
                .expect_err("rejected");
        assert!(err.contains("static_resources.clusters[0].cluster_type.name"), "{err}");
        assert!(err.contains("custom cluster type 'envoy.clusters.aggregate' is not supported by Legate"), "{err}");
        let err = load_text(
            "bad.yaml",
            &cluster(
                "    cluster_type:
      name: envoy.clusters.redis
      typed_config:
        \"@type\": type.googleapis.com/envoy.extensions.clusters.redis.v3.RedisClusterConfig
        cluster_refresh_rate: 0s
        cluster_refresh_ratee: 1s",
            ),
        )
        .expect_err("rejected");
        assert!(err.contains("cluster_refresh_rate"), "{err}");
        assert!(err.contains("must be greater than 0s"), "{err}");
        assert!(err.contains("did you mean 'cluster_refresh_rate'"), "{err}");
    }
}
