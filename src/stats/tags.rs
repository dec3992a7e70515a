//! Tag extraction (Envoy's `TagProducerImpl`): turns `cluster.c.upstream_rq_200` into the
//! tag-extracted name `cluster.upstream_rq` plus tags `envoy.response_code=200`,
//! `envoy.cluster_name=c`. Rules are regexes (group 1 is removed from the name, group 2 is the
//! value), token patterns, or fixed values. Rules whose pattern starts with a literal first
//! token only run on names with that first token, after all rules without such a prefix.

use std::collections::{HashMap, HashSet};

use regex::Regex;

use super::tag_defaults::default_rules;

#[derive(Clone, Debug)]
enum RuleKind {
    Regex {
        regex: Regex,
        /// Envoy skips the regex unless the name contains this substring.
        substr: String,
        /// An extracted value equal to this is not a match (`listener.admin.`).
        negative: String,
        /// RE2 semantics (built-ins) vs std::regex semantics (user rules).
        re2: bool,
    },
    Tokens {
        tokens: Vec<String>,
        match_index: usize,
    },
    Fixed {
        value: String,
    },
}

/// One tag extraction rule.
#[derive(Clone, Debug)]
pub struct TagRule {
    name: String,
    prefix: String,
    kind: RuleKind,
}

/// Envoy's `extractRegexPrefix`: `^word\.` (or `^word(?=\.)`, or `^word$`) gives `word`.
fn regex_prefix(regex: &str) -> String {
    let bytes = regex.as_bytes();
    if bytes.first() != Some(&b'^') {
        return String::new();
    }
    for i in 1..bytes.len() {
        let c = bytes[i];
        if !c.is_ascii_alphanumeric() && c != b'_' {
            if i > 1 {
                let last_char = i == bytes.len() - 1;
                let rest = &regex[i..];
                let starts_with_dot = rest.starts_with("\\.") || rest.starts_with("(?=\\.)");
                if (!last_char && starts_with_dot) || (last_char && c == b'$') {
                    return regex[1..i].to_string();
                }
            }
            break;
        }
    }
    String::new()
}

impl TagRule {
    /// A user-defined regex rule (`stats_tags { tag_name, regex }`). Group 1 is removed from
    /// the name; group 2, when present, is the value (otherwise group 1 is).
    pub fn regex(name: &str, pattern: &str) -> Result<TagRule, String> {
        if name.is_empty() {
            return Err("tag_name cannot be empty".to_string());
        }
        if pattern.is_empty() {
            return Err(format!("No regex specified for tag specifier and no default regex for name: '{name}'"));
        }
        let regex = Regex::new(pattern).map_err(|e| format!("Invalid regex '{pattern}': {e}"))?;
        Ok(TagRule {
            name: name.to_string(),
            prefix: regex_prefix(pattern),
            kind: RuleKind::Regex { regex, substr: String::new(), negative: String::new(), re2: false },
        })
    }

    /// A constant tag added to every stat (`stats_tags { tag_name, fixed_value }`).
    pub fn fixed(name: &str, value: &str) -> TagRule {
        TagRule {
            name: name.to_string(),
            prefix: regex_prefix(value),
            kind: RuleKind::Fixed { value: value.to_string() },
        }
    }

    /// Builds the rules for one `stats_tags` entry the way Envoy does: a fixed value, a regex,
    /// or (no regex) every built-in rule with that tag name.
    pub fn from_specifier(name: &str, regex: Option<&str>, fixed_value: Option<&str>) -> Result<Vec<TagRule>, String> {
        if let Some(value) = fixed_value {
            return Ok(vec![TagRule::fixed(name, value)]);
        }
        match regex {
            Some(pattern) if !pattern.is_empty() => Ok(vec![TagRule::regex(name, pattern)?]),
            _ => {
                let found: Vec<TagRule> = default_rules().into_iter().filter(|r| r.name == name).collect();
                if found.is_empty() {
                    Err(format!("No regex specified for tag specifier and no default regex for name: '{name}'"))
                } else {
                    Ok(found)
                }
            }
        }
    }

    /// Envoy's default rules, in Envoy's order.
    pub fn defaults() -> Vec<TagRule> {
        default_rules()
    }

    /// A built-in RE2 rule.
    pub(crate) fn builtin_regex(name: &str, pattern: &str, substr: &str, negative: &str) -> Result<TagRule, String> {
        let regex = Regex::new(pattern).map_err(|e| e.to_string())?;
        Ok(TagRule {
            name: name.to_string(),
            prefix: regex_prefix(pattern),
            kind: RuleKind::Regex { regex, substr: substr.to_string(), negative: negative.to_string(), re2: true },
        })
    }

    /// A built-in token rule such as `cluster.$.**`.
    pub(crate) fn tokens(name: &str, pattern: &str) -> TagRule {
        let tokens: Vec<String> = pattern.split('.').map(str::to_string).collect();
        let match_index = tokens.iter().position(|t| t == "$").unwrap_or(0);
        let prefix = match tokens.first().map(String::as_str) {
            Some("$") | Some("*") | Some("**") | None => String::new(),
            Some(first) => first.to_string(),
        };
        TagRule { name: name.to_string(), prefix, kind: RuleKind::Tokens { tokens, match_index } }
    }

    /// The tag name, e.g. `envoy.cluster_name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The first name token this rule is limited to (empty: applies to every name).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Tries the rule on `stat_name`; on a match pushes the tag and marks the characters to
    /// remove.
    fn apply(&self, stat_name: &str, tags: &mut Vec<(String, String)>, remove: &mut [bool]) -> bool {
        match &self.kind {
            RuleKind::Fixed { value } => {
                tags.push((self.name.clone(), value.clone()));
                true
            }
            RuleKind::Regex { regex, substr, negative, re2 } => {
                if !substr.is_empty() && !stat_name.contains(substr.as_str()) {
                    return false;
                }
                let Some(caps) = regex.captures(stat_name) else {
                    return false;
                };
                let (remove_span, value) = if *re2 {
                    // RE2::PartialMatch(name, re, &remove, &value): both groups must exist.
                    if caps.len() < 3 {
                        return false;
                    }
                    let Some(rm) = caps.get(1).filter(|m| !m.as_str().is_empty()) else {
                        return false;
                    };
                    let value = caps.get(2).map(|m| m.as_str()).filter(|v| !v.is_empty()).unwrap_or(rm.as_str());
                    (Some(rm.range()), value)
                } else {
                    // std::regex_search: needs at least one group; group 2 is the value if the
                    // expression has one.
                    if caps.len() < 2 {
                        return false;
                    }
                    let rm = caps.get(1);
                    let value = if caps.len() > 2 {
                        caps.get(2).map_or("", |m| m.as_str())
                    } else {
                        rm.map_or("", |m| m.as_str())
                    };
                    (rm.map(|m| m.range()), value)
                };
                if !negative.is_empty() && negative == value {
                    return false;
                }
                tags.push((self.name.clone(), value.to_string()));
                if let Some(span) = remove_span {
                    remove[span].iter_mut().for_each(|b| *b = true);
                }
                true
            }
            RuleKind::Tokens { tokens, match_index } => {
                let input: Vec<&str> = stat_name.split('.').collect();
                let mut start = 0usize;
                let mut matched = input.len();
                if !search_tokens(tokens, *match_index, &input, 0, 0, 0, &mut start, &mut matched) {
                    return false;
                }
                let Some(value) = input.get(matched) else {
                    return false;
                };
                let mut end = start + value.len();
                if matched + 1 < input.len() {
                    end += 1; // also remove the dot before the next token
                } else {
                    start = start.saturating_sub(1); // last token: remove the dot before it
                }
                tags.push((self.name.clone(), (*value).to_string()));
                let end = end.min(remove.len());
                remove[start.min(end)..end].iter_mut().for_each(|b| *b = true);
                true
            }
        }
    }
}

/// Envoy's `TagExtractorTokensImpl::searchTags`, including its character bookkeeping.
#[allow(clippy::too_many_arguments)]
fn search_tokens(
    pattern: &[String],
    match_index: usize,
    input: &[&str],
    mut ii: usize,
    mut pi: usize,
    mut ci: usize,
    start: &mut usize,
    matched: &mut usize,
) -> bool {
    while ii < input.len() && pi < pattern.len() {
        if pi == match_index {
            *start = ci;
            *matched = ii;
        } else {
            let expected = pattern[pi].as_str();
            if expected == "**" {
                if pi == pattern.len() - 1 {
                    return true;
                }
                pi += 1;
                while ii < input.len() {
                    if search_tokens(pattern, match_index, input, ii, pi, ci, start, matched) {
                        return true;
                    }
                    ci += input[ii].len() + 1;
                    ii += 1;
                }
                return false;
            }
            if expected != "*" && expected != input[ii] {
                return false;
            }
            ci += input[ii].len() + 1;
        }
        ii += 1;
        pi += 1;
    }
    pi == pattern.len() && ii == input.len()
}

/// A rule list prepared for repeated use: rules without a prefix first, then per-prefix lists,
/// each in configuration order; same-named rules only produce one tag.
#[derive(Clone, Debug, Default)]
pub(crate) struct TagExtractor {
    unprefixed: Vec<(TagRule, bool)>,
    by_prefix: HashMap<String, Vec<(TagRule, bool)>>,
}

impl TagExtractor {
    pub(crate) fn new(rules: &[TagRule]) -> TagExtractor {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for r in rules {
            *counts.entry(r.name.as_str()).or_default() += 1;
        }
        let mut out = TagExtractor::default();
        for r in rules {
            let shared = counts.get(r.name.as_str()).copied().unwrap_or(0) > 1;
            if r.prefix.is_empty() {
                out.unprefixed.push((r.clone(), shared));
            } else {
                out.by_prefix.entry(r.prefix.clone()).or_default().push((r.clone(), shared));
            }
        }
        out
    }

    /// Returns the tag-extracted name and the tags in extraction order.
    pub(crate) fn extract(&self, name: &str) -> (String, Vec<(String, String)>) {
        let mut tags = Vec::new();
        let mut remove = vec![false; name.len()];
        let mut seen: HashSet<&str> = HashSet::new();
        let prefixed =
            name.split_once('.').and_then(|(first, _)| self.by_prefix.get(first)).map(Vec::as_slice).unwrap_or(&[]);
        for (rule, shared) in self.unprefixed.iter().chain(prefixed.iter()) {
            if *shared && seen.contains(rule.name.as_str()) {
                continue;
            }
            if rule.apply(name, &mut tags, &mut remove) && *shared {
                seen.insert(rule.name.as_str());
            }
        }
        let kept: Vec<u8> = name.bytes().zip(remove.iter()).filter(|(_, &r)| !r).map(|(b, _)| b).collect();
        (String::from_utf8_lossy(&kept).into_owned(), tags)
    }
}

/// Extracts tags from `name` with `rules` (in order, as configured).
pub fn extract_tags(name: &str, rules: &[TagRule]) -> (String, Vec<(String, String)>) {
    TagExtractor::new(rules).extract(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(name: &str) -> (String, Vec<(String, String)>) {
        extract_tags(name, &TagRule::defaults())
    }

    fn t(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn response_code_and_cluster() {
        assert_eq!(
            tags("cluster.c.upstream_rq_200"),
            ("cluster.upstream_rq".to_string(), t(&[("envoy.response_code", "200"), ("envoy.cluster_name", "c")]))
        );
        assert_eq!(
            tags("cluster.c.upstream_rq_2xx"),
            (
                "cluster.upstream_rq_xx".to_string(),
                t(&[("envoy.response_code_class", "2"), ("envoy.cluster_name", "c")])
            )
        );
        assert_eq!(tags("cluster.backend.external.upstream_rq_404").0, "cluster.external.upstream_rq");
    }

    #[test]
    fn listener_address_and_admin() {
        assert_eq!(
            tags("listener.0.0.0.0_10000.downstream_cx_total"),
            ("listener.downstream_cx_total".to_string(), t(&[("envoy.listener_address", "0.0.0.0_10000")]))
        );
        assert_eq!(tags("listener.[__1]_443.downstream_cx_total").1, t(&[("envoy.listener_address", "[__1]_443")]));
        assert_eq!(
            tags("listener.admin.downstream_cx_total"),
            ("listener.admin.downstream_cx_total".to_string(), vec![])
        );
        assert_eq!(
            tags("listener.127.0.0.1_19910.worker_1.downstream_cx_total"),
            (
                "listener.worker_downstream_cx_total".to_string(),
                t(&[("envoy.worker_id", "1"), ("envoy.listener_address", "127.0.0.1_19910")])
            )
        );
        assert_eq!(
            tags("listener.127.0.0.1_19911.http.ingress_http.downstream_rq_2xx"),
            (
                "listener.http.downstream_rq_xx".to_string(),
                t(&[
                    ("envoy.response_code_class", "2"),
                    ("envoy.http_conn_manager_prefix", "ingress_http"),
                    ("envoy.listener_address", "127.0.0.1_19911")
                ])
            )
        );
        assert_eq!(
            tags("listener.admin.http.admin.downstream_rq_completed"),
            (
                "listener.admin.http.downstream_rq_completed".to_string(),
                t(&[("envoy.http_conn_manager_prefix", "admin")])
            )
        );
    }

    #[test]
    fn filter_prefixes() {
        assert_eq!(
            tags("tcp.ingress.downstream_cx_total"),
            ("tcp.downstream_cx_total".to_string(), t(&[("envoy.tcp_prefix", "ingress")]))
        );
        assert_eq!(
            tags("redis.egress_redis.command.get.total"),
            ("redis.command.get.total".to_string(), t(&[("envoy.redis_prefix", "egress_redis")]))
        );
        assert_eq!(
            tags("mongo.p.cmd.find.total"),
            ("mongo.cmd.total".to_string(), t(&[("envoy.mongo_cmd", "find"), ("envoy.mongo_prefix", "p")]))
        );
        assert_eq!(
            tags("mongo.p.collection.c1.callsite.s1.query.total"),
            (
                "mongo.collection.callsite.query.total".to_string(),
                t(&[("envoy.mongo_callsite", "s1"), ("envoy.mongo_collection", "c1"), ("envoy.mongo_prefix", "p")])
            )
        );
        assert_eq!(
            tags("http.ingress_http.downstream_rq_2xx"),
            (
                "http.downstream_rq_xx".to_string(),
                t(&[("envoy.response_code_class", "2"), ("envoy.http_conn_manager_prefix", "ingress_http")])
            )
        );
        assert_eq!(
            tags("http.hcm.user_agent.ios.downstream_cx_total"),
            (
                "http.user_agent.downstream_cx_total".to_string(),
                t(&[("envoy.http_user_agent", "ios"), ("envoy.http_conn_manager_prefix", "hcm")])
            )
        );
        assert_eq!(tags("udp.dns.downstream_sess_total").1, t(&[("envoy.udp_prefix", "dns")]));
        assert_eq!(
            tags("vhost.vh.vcluster.vc.upstream_rq_time"),
            (
                "vhost.vcluster.upstream_rq_time".to_string(),
                t(&[("envoy.virtual_cluster", "vc"), ("envoy.virtual_host", "vh")])
            )
        );
        assert_eq!(
            tags("vhost.vh.route.r1.upstream_rq_completed").1,
            t(&[("envoy.virtual_host", "vh"), ("envoy.route", "r1")])
        );
        assert_eq!(
            tags("http.hcm.fault.dc.aborts_injected").1,
            t(&[("envoy.fault_downstream_cluster", "dc"), ("envoy.http_conn_manager_prefix", "hcm")])
        );
        assert_eq!(
            tags("cluster.grpc_c.grpc.svc.Method.success"),
            (
                "cluster.grpc.success".to_string(),
                t(&[
                    ("envoy.grpc_bridge_method", "Method"),
                    ("envoy.grpc_bridge_service", "svc"),
                    ("envoy.cluster_name", "grpc_c")
                ])
            )
        );
        assert_eq!(tags("auth.clientssl.cs.total").1, t(&[("envoy.clientssl_prefix", "cs")]));
        assert_eq!(tags("ratelimit.rl.ok").1, t(&[("envoy.ratelimit_prefix", "rl")]));
        assert_eq!(tags("thrift.tp.request").1, t(&[("envoy.thrift_prefix", "tp")]));
        assert_eq!(tags("local_rate_limit.lrl.rate_limited").1, t(&[("envoy.local_network_ratelimit_prefix", "lrl")]));
        assert_eq!(
            tags("listener_local_ratelimit.llr.rate_limited").1,
            t(&[("envoy.local_listener_ratelimit_prefix", "llr")])
        );
        assert_eq!(tags("dns_filter.dnsf.downstream_rx_queries").1, t(&[("envoy.dns_filter_prefix", "dnsf")]));
        assert_eq!(
            tags("lhrl.http_local_rate_limit.rate_limited"),
            ("http_local_rate_limit.rate_limited".to_string(), t(&[("envoy.local_http_ratelimit_prefix", "lhrl")]))
        );
        assert_eq!(
            tags("cluster.c.ext_authz.ea.ok").1,
            t(&[("envoy.cluster_name", "c"), ("envoy.ext_authz_prefix", "ea")])
        );
        assert_eq!(
            tags("http.hcm.ext_authz.ea.denied").1,
            t(&[("envoy.ext_authz_prefix", "ea"), ("envoy.http_conn_manager_prefix", "hcm")])
        );
        assert_eq!(
            tags("http.hcm.rds.my.route.cfg.config_reload"),
            (
                "http.rds.config_reload".to_string(),
                t(&[("envoy.rds_route_config", "my.route.cfg"), ("envoy.http_conn_manager_prefix", "hcm")])
            )
        );
    }

    #[test]
    fn dynamo_and_ssl() {
        assert_eq!(
            tags("http.dyn.dynamodb.operation.GetItem.upstream_rq_time"),
            (
                "http.dynamodb.operation.upstream_rq_time".to_string(),
                t(&[("envoy.dynamo_operation", "GetItem"), ("envoy.http_conn_manager_prefix", "dyn")])
            )
        );
        assert_eq!(
            tags("http.dyn.dynamodb.table.tbl.capacity.GetItem.__partition_id=ABCDEFG"),
            (
                "http.dynamodb.table.capacity".to_string(),
                t(&[
                    ("envoy.dynamo_partition_id", "ABCDEFG"),
                    ("envoy.dynamo_operation", "GetItem"),
                    ("envoy.dynamo_table", "tbl"),
                    ("envoy.http_conn_manager_prefix", "dyn")
                ])
            )
        );
        assert_eq!(
            tags("listener.0.0.0.0_443.ssl.ciphers.ECDHE-RSA-AES128-GCM-SHA256"),
            (
                "listener.ssl.ciphers".to_string(),
                t(&[("envoy.ssl_cipher", "ECDHE-RSA-AES128-GCM-SHA256"), ("envoy.listener_address", "0.0.0.0_443")])
            )
        );
        assert_eq!(
            tags("cluster.c.ssl.ciphers.AES128-SHA"),
            ("cluster.ssl.ciphers".to_string(), t(&[("cipher_suite", "AES128-SHA"), ("envoy.cluster_name", "c")]))
        );
        assert_eq!(
            tags("cluster.c.ssl.versions.TLSv1.2"),
            ("cluster.ssl.versions".to_string(), t(&[("envoy.ssl_version", "TLSv1.2"), ("envoy.cluster_name", "c")]))
        );
        assert_eq!(
            tags("listener.0.0.0.0_443.ssl.curves.P-256").1,
            t(&[("envoy.ssl_curve", "P-256"), ("envoy.listener_address", "0.0.0.0_443")])
        );
        assert_eq!(
            tags("cluster.c.ssl.sigalgs.rsa_pss_rsae_sha256").1,
            t(&[("envoy.ssl_sigalg", "rsa_pss_rsae_sha256"), ("envoy.cluster_name", "c")])
        );
    }

    #[test]
    fn untagged_names() {
        assert_eq!(tags("server.live"), ("server.live".to_string(), vec![]));
        assert_eq!(tags("cluster_manager.active_clusters"), ("cluster_manager.active_clusters".to_string(), vec![]));
        assert_eq!(
            tags("postgres.egress_postgres.sessions"),
            ("postgres.egress_postgres.sessions".to_string(), vec![])
        );
        assert_eq!(
            tags("server.worker_0.watchdog_miss"),
            ("server.worker_watchdog_miss".to_string(), t(&[("envoy.worker_id", "0")]))
        );
        assert_eq!(tags("cluster"), ("cluster".to_string(), vec![]));
    }

    #[test]
    fn user_rules_run_after_defaults() {
        let mut rules = TagRule::defaults();
        rules.push(TagRule::fixed("region", "eu"));
        rules.extend(TagRule::from_specifier("my_tag", Some(r"^cluster\.c\.(x_(\w+)\.)"), None).unwrap_or_default());
        let (name, got) = extract_tags("cluster.c.x_blue.upstream_cx_total", &rules);
        assert_eq!(name, "cluster.upstream_cx_total");
        assert_eq!(got, t(&[("region", "eu"), ("envoy.cluster_name", "c"), ("my_tag", "blue")]));
        assert!(TagRule::from_specifier("nope", None, None).is_err());
        assert_eq!(TagRule::from_specifier("envoy.cluster_name", None, None).map(|v| v.len()), Ok(1));
        assert!(TagRule::regex("", "x").is_err());
        assert!(TagRule::regex("a", "(").is_err());
        // use_all_default_tags = false: only the configured rules apply.
        let only = vec![TagRule::fixed("k", "v")];
        assert_eq!(
            extract_tags("cluster.c.upstream_rq_200", &only),
            ("cluster.c.upstream_rq_200".to_string(), t(&[("k", "v")]))
        );
    }

    #[test]
    fn regex_prefix_rules() {
        assert_eq!(regex_prefix(r"^cluster\.(x)"), "cluster");
        assert_eq!(regex_prefix(r"^cluster(?=\.)x"), "cluster");
        assert_eq!(regex_prefix(r"^cluster$"), "cluster");
        assert_eq!(regex_prefix(r"^cluster"), "");
        assert_eq!(regex_prefix(r"^(?:a|b)\."), "");
        assert_eq!(regex_prefix(r"cluster\."), "");
    }
}
