//! Envoy's built-in tag extraction rules (`source/common/config/well_known_names.cc`), in
//! Envoy's order: the regex rules first, then the tokenized ones. RE2's `\d`/`\w` are ASCII-only,
//! so they are spelled as explicit ASCII classes here.

use std::sync::OnceLock;

use super::tags::TagRule;

/// `<ADDRESS>`: an IPv4 or bracketed IPv6 address followed by `_<port>`.
const ADDRESS: &str = r"(?:(?:[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[[a-fA-F_0-9]+\])_[0-9]+)";
/// `<CIPHER>`: alphanumerics, dashes and underscores.
const CIPHER: &str = r"[0-9A-Za-z_\-]+";
/// `<TLS_VERSION>`.
const TLS_VERSION: &str = r"TLSv[0-9]\.[0-9]";
/// `<TAG_VALUE>`: anything but a dot.
const TAG_VALUE: &str = r"[^\.]+";
/// `<ROUTE_CONFIG_NAME>`: word characters, dashes and dots.
const ROUTE_CONFIG_NAME: &str = r"[0-9A-Za-z_\-\.]+";
/// `<LISTENER_OR_CLUSTER_WITH_NAME>`.
const LISTENER_OR_CLUSTER_WITH_NAME: &str = r"(?:listener|cluster)\..*?";

fn expand(regex: &str) -> String {
    regex
        .replace("<ADDRESS>", ADDRESS)
        .replace("<CIPHER>", CIPHER)
        .replace("<TLS_VERSION>", TLS_VERSION)
        .replace("<TAG_VALUE>", TAG_VALUE)
        .replace("<ROUTE_CONFIG_NAME>", ROUTE_CONFIG_NAME)
        .replace("<LISTENER_OR_CLUSTER_WITH_NAME>", LISTENER_OR_CLUSTER_WITH_NAME)
}

/// (tag name, regex, required substring, negative value)
const REGEX_RULES: &[(&str, &str, &str, &str)] = &[
    ("envoy.response_code", r"_rq(_([0-9]{3}))$", "_rq_", ""),
    ("envoy.response_code_class", r"_rq_(([0-9]))xx$", "_rq_", ""),
    (
        "envoy.dynamo_partition_id",
        r"^http\.<TAG_VALUE>\.dynamodb\.table\.<TAG_VALUE>\.capacity\.<TAG_VALUE>(\.__partition_id=([0-9A-Za-z_]{7}))$",
        ".dynamodb.table.",
        "",
    ),
    (
        "envoy.dynamo_operation",
        r"^http\.<TAG_VALUE>\.dynamodb.(?:operation|table\.<TAG_VALUE>\.capacity)(\.(<TAG_VALUE>))(?:\.|$)",
        ".dynamodb.",
        "",
    ),
    ("envoy.dynamo_table", r"^http\.<TAG_VALUE>\.dynamodb.(?:table|error)\.((<TAG_VALUE>)\.)", ".dynamodb.", ""),
    ("envoy.ssl_cipher", r"^listener\..*?\.ssl\.ciphers(\.(<CIPHER>))$", ".ssl.ciphers.", ""),
    ("envoy.ssl_curve", r"^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.curves(\.(<CIPHER>))$", ".ssl.curves.", ""),
    ("envoy.ssl_sigalg", r"^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.sigalgs(\.(<CIPHER>))$", ".ssl.sigalgs.", ""),
    ("envoy.ssl_version", r"^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.versions(\.(<TLS_VERSION>))$", ".ssl.versions.", ""),
    ("cipher_suite", r"^cluster\.<TAG_VALUE>\.ssl\.ciphers(\.(<CIPHER>))$", ".ssl.ciphers.", ""),
    ("envoy.http_conn_manager_prefix", r"^listener\..*?\.http\.((<TAG_VALUE>)\.)", ".http.", ""),
    (
        "envoy.worker_id",
        r"^(?:listener\.(?:<ADDRESS>|<TAG_VALUE>)\.|server\.|listener_manager\.)worker_(([0-9]+)\.)",
        "",
        "",
    ),
    ("envoy.listener_address", r"^listener\.((<ADDRESS>|<TAG_VALUE>)\.)", "", "admin"),
    ("envoy.rds_route_config", r"^http\.<TAG_VALUE>\.rds\.((<ROUTE_CONFIG_NAME>)\.)[0-9A-Za-z_]+?$", ".rds.", ""),
];

/// (tag name, token pattern): `$` is the value, `*` one token, `**` any number of tokens.
const TOKEN_RULES: &[(&str, &str)] = &[
    ("envoy.mongo_callsite", "mongo.*.collection.*.callsite.$.query.**"),
    ("envoy.mongo_collection", "mongo.*.collection.$.**.query.*"),
    ("envoy.mongo_cmd", "mongo.*.cmd.$.**"),
    ("envoy.grpc_bridge_method", "cluster.*.grpc.*.$.**"),
    ("envoy.http_user_agent", "http.*.user_agent.$.**"),
    ("envoy.virtual_cluster", "vhost.*.vcluster.$.**"),
    ("envoy.fault_downstream_cluster", "http.*.fault.$.**"),
    ("envoy.grpc_bridge_service", "cluster.*.grpc.$.**"),
    ("envoy.tcp_prefix", "tcp.$.**"),
    ("envoy.udp_prefix", "udp.$.**"),
    ("envoy.clientssl_prefix", "auth.clientssl.$.**"),
    ("envoy.ratelimit_prefix", "ratelimit.$.**"),
    ("envoy.cluster_name", "cluster.$.**"),
    ("envoy.ext_authz_prefix", "cluster.*.ext_authz.$.**"),
    ("envoy.ext_authz_prefix", "http.*.ext_authz.$.**"),
    ("envoy.http_conn_manager_prefix", "http.$.**"),
    ("envoy.virtual_host", "vhost.$.**"),
    ("envoy.mongo_prefix", "mongo.$.**"),
    ("envoy.route", "vhost.*.route.$.**"),
    ("envoy.thrift_prefix", "thrift.$.**"),
    ("envoy.redis_prefix", "redis.$.**"),
    ("envoy.local_http_ratelimit_prefix", "$.http_local_rate_limit.**"),
    ("envoy.local_network_ratelimit_prefix", "local_rate_limit.$.**"),
    ("envoy.local_listener_ratelimit_prefix", "listener_local_ratelimit.$.**"),
    ("envoy.dns_filter_prefix", "dns_filter.$.**"),
];

fn build() -> Vec<TagRule> {
    let mut rules = Vec::with_capacity(REGEX_RULES.len() + TOKEN_RULES.len());
    for &(name, regex, substr, negative) in REGEX_RULES {
        // The patterns are constants that a unit test compiles; a failure would drop one rule.
        if let Ok(rule) = TagRule::builtin_regex(name, &expand(regex), substr, negative) {
            rules.push(rule);
        }
    }
    for &(name, pattern) in TOKEN_RULES {
        rules.push(TagRule::tokens(name, pattern));
    }
    rules
}

/// Envoy's default tag extraction rules, in Envoy's order.
pub fn default_rules() -> Vec<TagRule> {
    static RULES: OnceLock<Vec<TagRule>> = OnceLock::new();
    RULES.get_or_init(build).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_builtin_rules_compile() {
        assert_eq!(default_rules().len(), REGEX_RULES.len() + TOKEN_RULES.len());
    }

    #[test]
    fn prefixes_follow_envoy() {
        let rules = default_rules();
        let prefix =
            |tag: &str, nth: usize| rules.iter().filter(|r| r.name() == tag).nth(nth).map(|r| r.prefix().to_string());
        assert_eq!(prefix("envoy.response_code", 0).as_deref(), Some(""));
        assert_eq!(prefix("envoy.worker_id", 0).as_deref(), Some(""));
        assert_eq!(prefix("envoy.ssl_curve", 0).as_deref(), Some(""));
        assert_eq!(prefix("envoy.listener_address", 0).as_deref(), Some("listener"));
        assert_eq!(prefix("envoy.http_conn_manager_prefix", 0).as_deref(), Some("listener"));
        assert_eq!(prefix("envoy.http_conn_manager_prefix", 1).as_deref(), Some("http"));
        assert_eq!(prefix("envoy.dynamo_table", 0).as_deref(), Some("http"));
        assert_eq!(prefix("cipher_suite", 0).as_deref(), Some("cluster"));
        assert_eq!(prefix("envoy.local_http_ratelimit_prefix", 0).as_deref(), Some(""));
        assert_eq!(prefix("envoy.clientssl_prefix", 0).as_deref(), Some("auth"));
    }
}
