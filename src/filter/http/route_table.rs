//! The route configuration compiled once per config generation: virtual-host selection in
//! Envoy's domain order, route matching, path rewrites, redirect locations, header mutations
//! and the retry policy the router reads.
//!
//! Everything that needs compiling (regexes, header names and values, `%VAR%` templates) is
//! compiled by the config decoder (`config::route`), because it has to compile them anyway to
//! report a bad one with its YAML path; the decoded values are the types defined here.
//! `RouteTable::build` then only indexes the domains and shares what the routes hold. On the
//! request path nothing is compiled, and nothing is allocated except: a path rewrite or a
//! redirect location (a new string by nature), a non-ASCII or over-long `Host` lower-cased for
//! lookup, and header-mutation values that contain a `%VAR%` operator.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::config::route::RouteConfig;

// ---------------------------------------------------------------------------------------------
// The request as routing sees it, and the result.

/// What route selection reads from a request.
pub struct RequestView<'a> {
    pub authority: &'a str,
    /// The path with its query string.
    pub path: &'a str,
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
}

/// The outcome of `RouteTable::select`.
#[derive(Debug, Clone, Copy)]
pub enum Selection<'a> {
    /// No virtual host matches the authority (404 `NR`).
    NoVirtualHost,
    /// A virtual host matched but none of its routes (404 `NR`).
    NoRoute(&'a VirtualHost),
    Route(&'a VirtualHost, &'a Route),
}

// ---------------------------------------------------------------------------------------------
// The table.

/// A route configuration ready to serve requests.
#[derive(Debug)]
pub struct RouteTable {
    vhosts: Vec<VirtualHost>,
    /// Lower-cased exact domains → index in `vhosts`.
    exact: HashMap<String, usize>,
    /// `*.suffix` domains by wildcard length, longest first: (length of the suffix, suffix → index).
    suffixes: Vec<(usize, HashMap<String, usize>)>,
    /// `prefix.*` domains, the same way.
    prefixes: Vec<(usize, HashMap<String, usize>)>,
    /// The `*` virtual host.
    default: Option<usize>,
    ignore_port_in_host_matching: bool,
    most_specific_header_mutations_wins: bool,
    /// Whether any route has a `runtime_fraction` (then one random number is drawn per request).
    uses_random: bool,
    request_headers: HeaderMutations,
    response_headers: HeaderMutations,
}

impl RouteTable {
    /// Indexes the virtual hosts by domain. The config decoder has validated the domains
    /// (unique, one `*`) and compiled everything else.
    pub fn build(cfg: &RouteConfig) -> RouteTable {
        let mut table = RouteTable {
            vhosts: Vec::with_capacity(cfg.virtual_hosts.len()),
            exact: HashMap::new(),
            suffixes: Vec::new(),
            prefixes: Vec::new(),
            default: None,
            ignore_port_in_host_matching: cfg.ignore_port_in_host_matching,
            most_specific_header_mutations_wins: cfg.most_specific_header_mutations_wins,
            uses_random: false,
            request_headers: cfg.request_headers.clone(),
            response_headers: cfg.response_headers.clone(),
        };
        for (i, vh) in cfg.virtual_hosts.iter().enumerate() {
            table.uses_random |= vh.host.routes.iter().any(|r| r.matcher.runtime_fraction.is_some());
            table.vhosts.push(vh.host.clone());
            for domain in &vh.domains {
                let d = domain.to_ascii_lowercase();
                if d == "*" {
                    table.default.get_or_insert(i);
                } else if let Some(suffix) = d.strip_prefix('*') {
                    insert_wildcard(&mut table.suffixes, suffix, i);
                } else if let Some(prefix) = d.strip_suffix('*') {
                    insert_wildcard(&mut table.prefixes, prefix, i);
                } else {
                    table.exact.entry(d).or_insert(i);
                }
            }
        }
        table
    }

    /// Envoy's virtual-host selection (`RouteMatcher::findVirtualHost`): the host is
    /// lower-cased; its port is kept (so `foo.com:8080` matches only a domain spelt with that
    /// port, or a `foo.com:*` prefix wildcard) unless `ignore_port_in_host_matching`; then an
    /// exact domain, the longest `*suffix`, the longest `prefix*` (a wildcard never matches an
    /// empty part), and finally `*`. Then the first route of that host that matches.
    pub fn select(&self, req: &RequestView<'_>) -> Selection<'_> {
        let Some(vh) = self.find_virtual_host(req.authority) else { return Selection::NoVirtualHost };
        let random = if self.uses_random { rand::random::<u64>() } else { 0 };
        match vh.routes.iter().find(|r| r.matcher.matches(req, random)) {
            Some(r) => Selection::Route(vh, r),
            None => Selection::NoRoute(vh),
        }
    }

    fn find_virtual_host(&self, authority: &str) -> Option<&VirtualHost> {
        let default = self.default.and_then(|i| self.vhosts.get(i));
        if self.exact.is_empty() && self.suffixes.is_empty() && self.prefixes.is_empty() {
            return default;
        }
        // Envoy: no authority at all finds no virtual host unless `*` is the only one.
        if authority.is_empty() {
            return None;
        }
        let mut host = authority;
        if self.ignore_port_in_host_matching {
            if let Some(i) = port_start(host) {
                host = &host[..i];
            }
        }
        let mut buf = [0u8; 256];
        let lowered: Cow<'_, str> = if !host.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Borrowed(host)
        } else if host.len() <= buf.len() {
            buf[..host.len()].copy_from_slice(host.as_bytes());
            buf[..host.len()].make_ascii_lowercase();
            // ASCII lower-casing keeps UTF-8 valid.
            match std::str::from_utf8(&buf[..host.len()]) {
                Ok(s) => Cow::Borrowed(s),
                Err(_) => Cow::Owned(host.to_ascii_lowercase()),
            }
        } else {
            Cow::Owned(host.to_ascii_lowercase())
        };
        let host: &str = &lowered;
        let found = self
            .exact
            .get(host)
            .copied()
            .or_else(|| find_wildcard(&self.suffixes, host, |h, n| h.get(h.len() - n..)))
            .or_else(|| find_wildcard(&self.prefixes, host, |h, n| h.get(..n)));
        match found {
            Some(i) => self.vhosts.get(i),
            None => default,
        }
    }

    /// Route-configuration-level request mutations (`RouteConfiguration.request_headers_to_*`).
    pub fn request_headers(&self) -> &HeaderMutations {
        &self.request_headers
    }

    /// Route-configuration-level response mutations.
    pub fn response_headers(&self) -> &HeaderMutations {
        &self.response_headers
    }

    /// Applies every level's request mutations in Envoy's order: the weighted cluster's, then
    /// the route's, the virtual host's and the route configuration's, so that the least specific
    /// level wins an overwrite — or the reverse with `most_specific_header_mutations_wins`.
    pub fn finalize_request_headers(
        &self,
        vh: &VirtualHost,
        route: &Route,
        weighted: Option<&WeightedCluster>,
        headers: &mut HeaderMap,
        vars: &HeaderVars<'_>,
    ) {
        let levels = [&route.request_headers, &vh.request_headers, &self.request_headers];
        self.finalize(weighted.map(|w| &w.request_headers), levels, headers, vars);
    }

    /// The same for the response (also applied to direct responses and redirects, as Envoy does).
    pub fn finalize_response_headers(
        &self,
        vh: &VirtualHost,
        route: &Route,
        weighted: Option<&WeightedCluster>,
        headers: &mut HeaderMap,
        vars: &HeaderVars<'_>,
    ) {
        let levels = [&route.response_headers, &vh.response_headers, &self.response_headers];
        self.finalize(weighted.map(|w| &w.response_headers), levels, headers, vars);
    }

    fn finalize(
        &self,
        weighted: Option<&HeaderMutations>,
        mut levels: [&HeaderMutations; 3],
        headers: &mut HeaderMap,
        vars: &HeaderVars<'_>,
    ) {
        if let Some(w) = weighted {
            w.apply(headers, vars);
        }
        if self.most_specific_header_mutations_wins {
            levels.reverse();
        }
        for m in levels {
            m.apply(headers, vars);
        }
    }
}

fn insert_wildcard(list: &mut Vec<(usize, HashMap<String, usize>)>, part: &str, i: usize) {
    let len = part.len();
    let pos = match list.iter().position(|(l, _)| *l <= len) {
        Some(p) if list[p].0 == len => p,
        Some(p) => {
            list.insert(p, (len, HashMap::new()));
            p
        }
        None => {
            list.push((len, HashMap::new()));
            list.len() - 1
        }
    };
    list[pos].1.entry(part.to_string()).or_insert(i);
}

fn find_wildcard(
    list: &[(usize, HashMap<String, usize>)],
    host: &str,
    part: impl Fn(&str, usize) -> Option<&str>,
) -> Option<usize> {
    // `>=`: the wildcard must stand for at least one character.
    list.iter()
        .filter(|(len, _)| *len < host.len())
        .find_map(|(len, map)| part(host, *len).and_then(|p| map.get(p)).copied())
}

/// Envoy's `HeaderUtility::getPortStart`: the index of the `:` before a numeric port, outside
/// an IPv6 literal's brackets.
fn port_start(host: &str) -> Option<usize> {
    let colon = host.rfind(':')?;
    if host.rfind(']').is_some_and(|b| b > colon) {
        return None;
    }
    host[colon + 1..].parse::<u32>().ok().map(|_| colon)
}

// ---------------------------------------------------------------------------------------------
// Virtual hosts and routes.

/// `VirtualHost.require_tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequireTls {
    #[default]
    None,
    ExternalOnly,
    All,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VirtualHost {
    /// Stats use `vhost.<name>.`.
    pub name: String,
    pub retry_policy: Option<Arc<RetryPolicy>>,
    pub include_request_attempt_count: bool,
    pub include_attempt_count_in_response: bool,
    pub request_headers: HeaderMutations,
    pub response_headers: HeaderMutations,
    pub require_tls: RequireTls,
    /// `per_request_buffer_limit_bytes` (None: the listener's buffer limit applies).
    pub per_request_buffer_limit_bytes: Option<u32>,
    pub(crate) routes: Vec<Route>,
}

impl VirtualHost {
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub name: Option<String>,
    pub action: RouteAction,
    pub request_headers: HeaderMutations,
    pub response_headers: HeaderMutations,
    /// `per_request_buffer_limit_bytes`, overriding the virtual host's.
    pub per_request_buffer_limit_bytes: Option<u32>,
    pub(crate) matcher: RouteMatcher,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RouteAction {
    Forward(Box<ForwardAction>),
    Redirect(Box<RedirectAction>),
    DirectResponse { status: u16, body: Bytes },
}

/// Envoy adds `location` to a direct response with status 201 or 3xx: the request's own URL
/// (`Http::Utility::newUri` without a redirect config).
pub fn direct_response_location(status: u16, scheme: &str, authority: &str, path: &str) -> Option<String> {
    if status != 201 && !(300..400).contains(&status) {
        return None;
    }
    let slash = if path.starts_with('/') { "" } else { "/" };
    Some(format!("{scheme}://{authority}{slash}{path}"))
}

// ---------------------------------------------------------------------------------------------
// Matching.

/// The path part of a `RouteMatch`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PathMatch {
    Prefix(String),
    Exact(String),
    /// Full match on the path without its query; `case_sensitive` does not apply (Envoy).
    Regex(Regex),
    /// Matches `/p` and `/p/...`, never `/pp`.
    SeparatedPrefix(String),
}

/// A compiled `RouteMatch`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RouteMatcher {
    pub(crate) path: PathMatch,
    pub(crate) case_sensitive: bool,
    pub(crate) headers: Vec<HeaderMatcher>,
    pub(crate) query_parameters: Vec<QueryParameterMatcher>,
    /// `grpc: {}`.
    pub(crate) grpc: bool,
    /// `runtime_fraction.default_value` as (numerator, denominator).
    pub(crate) runtime_fraction: Option<(u64, u64)>,
}

impl RouteMatcher {
    fn matches(&self, req: &RequestView<'_>, random: u64) -> bool {
        let path = strip_query(req.path);
        let path_ok = match &self.path {
            PathMatch::Prefix(p) => starts_with(path, p, self.case_sensitive),
            PathMatch::Exact(p) => eq(path, p, self.case_sensitive),
            PathMatch::Regex(re) => re.is_match(path),
            PathMatch::SeparatedPrefix(p) => {
                starts_with(path, p, self.case_sensitive) && (path.len() == p.len() || path.as_bytes()[p.len()] == b'/')
            }
        };
        if !path_ok {
            return false;
        }
        // Envoy's `featureEnabled`: random % denominator < numerator.
        if let Some((num, den)) = self.runtime_fraction {
            if random % den >= num {
                return false;
            }
        }
        if self.grpc && !is_grpc(req.headers) {
            return false;
        }
        if !self.headers.iter().all(|h| h.matches_request(req)) {
            return false;
        }
        self.query_parameters.iter().all(|q| q.matches(req.path))
    }

    /// How much of the path the match consumed, for `prefix_rewrite`.
    fn matched_len(&self, path: &str) -> usize {
        match &self.path {
            PathMatch::Prefix(p) | PathMatch::SeparatedPrefix(p) => p.len(),
            PathMatch::Exact(_) | PathMatch::Regex(_) => strip_query(path).len(),
        }
    }
}

/// The path without `?query` or `#fragment` (Envoy's `PathUtil::removeQueryAndFragment`).
fn strip_query(path: &str) -> &str {
    match path.find(['?', '#']) {
        Some(i) => &path[..i],
        None => path,
    }
}

fn starts_with(s: &str, p: &str, case_sensitive: bool) -> bool {
    match s.as_bytes().get(..p.len()) {
        Some(head) if case_sensitive => head == p.as_bytes(),
        Some(head) => head.eq_ignore_ascii_case(p.as_bytes()),
        None => false,
    }
}

fn eq(s: &str, p: &str, case_sensitive: bool) -> bool {
    if case_sensitive {
        s == p
    } else {
        s.eq_ignore_ascii_case(p)
    }
}

/// Envoy's `Grpc::Common::hasGrpcContentType`: `application/grpc` or `application/grpc+...`
/// (so not `application/grpc-web`).
fn is_grpc(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(http::header::CONTENT_TYPE) else { return false };
    let ct = ct.as_bytes();
    const GRPC: &[u8] = b"application/grpc";
    ct.starts_with(GRPC) && (ct.len() == GRPC.len() || ct[GRPC.len()] == b'+')
}

/// A regex with RE2-like semantics, compiled once (by the config decoder). Equality is by source.
#[derive(Debug, Clone)]
pub struct Regex {
    source: String,
    re: regex::Regex,
}

/// Compiled-program size cap (Envoy caps RE2's program size instead; the units differ).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl Regex {
    /// For matching: the whole input must match (RE2's `FullMatch`, as Envoy uses).
    pub fn full(source: &str) -> Result<Regex, String> {
        Self::compile(source, &format!("^(?:{source})$"))
    }

    /// For `regex_rewrite`: every match in the input is replaced.
    pub fn search(source: &str) -> Result<Regex, String> {
        Self::compile(source, source)
    }

    fn compile(source: &str, pattern: &str) -> Result<Regex, String> {
        // Compile the bare source first so the error names the user's pattern, not our anchors.
        regex::RegexBuilder::new(source).size_limit(REGEX_SIZE_LIMIT).build().map_err(|e| e.to_string())?;
        let re = regex::RegexBuilder::new(pattern).size_limit(REGEX_SIZE_LIMIT).build().map_err(|e| e.to_string())?;
        Ok(Regex { source: source.to_string(), re })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }

    /// Capture groups in the pattern, not counting the whole match.
    pub fn groups(&self) -> usize {
        self.re.captures_len() - 1
    }
}

impl PartialEq for Regex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.re.as_str() == other.re.as_str()
    }
}

/// `envoy.type.matcher.v3.StringMatcher`.
#[derive(Debug, Clone, PartialEq)]
pub enum StringMatch {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Regex(Regex),
}

#[derive(Debug, Clone, PartialEq)]
pub struct StringMatcher {
    pub kind: StringMatch,
    /// ASCII case-insensitive (not allowed with a regex).
    pub ignore_case: bool,
}

impl StringMatcher {
    pub fn matches(&self, v: &str) -> bool {
        let ic = self.ignore_case;
        match &self.kind {
            StringMatch::Exact(p) => eq(v, p, !ic),
            StringMatch::Prefix(p) => starts_with(v, p, !ic),
            StringMatch::Suffix(p) => {
                v.len() >= p.len() && {
                    let tail = &v.as_bytes()[v.len() - p.len()..];
                    if ic {
                        tail.eq_ignore_ascii_case(p.as_bytes())
                    } else {
                        tail == p.as_bytes()
                    }
                }
            }
            StringMatch::Contains(p) if ic => {
                p.is_empty() || v.as_bytes().windows(p.len()).any(|w| w.eq_ignore_ascii_case(p.as_bytes()))
            }
            StringMatch::Contains(p) => v.contains(p.as_str()),
            StringMatch::Regex(re) => re.is_match(v),
        }
    }
}

/// Which header a `HeaderMatcher` reads. Envoy keeps `Host` as `:authority`, so a matcher on
/// `host` reads the authority too.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderKey {
    Authority,
    Path,
    Method,
    /// `:status`, for retriable_headers on responses.
    Status,
    Name(HeaderName),
}

#[derive(Debug, Clone, PartialEq)]
pub enum HeaderMatch {
    /// No specifier: the header is present.
    Present,
    /// `present_match: <bool>`.
    PresentMatch(bool),
    /// `range_match`: `[start, end)` on the value parsed as an integer.
    Range {
        start: i64,
        end: i64,
    },
    String(StringMatcher),
}

/// `envoy.config.route.v3.HeaderMatcher`.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderMatcher {
    pub key: HeaderKey,
    pub kind: HeaderMatch,
    pub invert_match: bool,
    pub treat_missing_header_as_empty: bool,
}

impl HeaderMatcher {
    /// Against a request (retriable_headers match responses with `matches_response`).
    pub fn matches_request(&self, req: &RequestView<'_>) -> bool {
        match &self.key {
            HeaderKey::Authority => self.eval(std::iter::once(Cow::Borrowed(req.authority))),
            HeaderKey::Path => self.eval(std::iter::once(Cow::Borrowed(req.path))),
            HeaderKey::Method => self.eval(std::iter::once(Cow::Borrowed(req.method.as_str()))),
            HeaderKey::Status => self.eval(std::iter::empty()),
            HeaderKey::Name(n) => self.eval(req.headers.get_all(n).iter().map(lossy)),
        }
    }

    /// Against response headers (`retriable_headers`).
    pub fn matches_response(&self, status: StatusCode, headers: &HeaderMap) -> bool {
        match &self.key {
            HeaderKey::Status => self.eval(std::iter::once(Cow::Borrowed(status.as_str()))),
            HeaderKey::Name(n) => self.eval(headers.get_all(n).iter().map(lossy)),
            _ => self.eval(std::iter::empty()),
        }
    }

    /// Envoy 1.40 semantics (checked against it): a missing header matches only `present_match`
    /// false (or true when inverted), unless it is treated as empty; otherwise the matcher
    /// matches when any one value of the header matches, and `invert_match` negates that.
    fn eval<'a>(&self, values: impl Iterator<Item = Cow<'a, str>>) -> bool {
        let mut values = values.peekable();
        if values.peek().is_none() {
            if !self.treat_missing_header_as_empty {
                return match self.kind {
                    HeaderMatch::PresentMatch(p) => p == self.invert_match,
                    _ => false,
                };
            }
            return self.one("") != self.invert_match;
        }
        values.any(|v| self.one(&v)) != self.invert_match
    }

    fn one(&self, v: &str) -> bool {
        match &self.kind {
            HeaderMatch::Present => true,
            HeaderMatch::PresentMatch(p) => *p,
            HeaderMatch::Range { start, end } => v.trim_ascii().parse::<i64>().is_ok_and(|n| n >= *start && n < *end),
            HeaderMatch::String(m) => m.matches(v),
        }
    }
}

fn lossy(v: &HeaderValue) -> Cow<'_, str> {
    String::from_utf8_lossy(v.as_bytes())
}

#[derive(Debug, Clone, PartialEq)]
pub enum QueryMatch {
    /// No specifier: present.
    Present,
    /// `present_match: <bool>` (false: the parameter is absent).
    PresentMatch(bool),
    String(StringMatcher),
}

/// `envoy.config.route.v3.QueryParameterMatcher`. Values are compared as sent (not
/// percent-decoded) and only the first occurrence counts, as in Envoy.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryParameterMatcher {
    pub name: String,
    pub kind: QueryMatch,
}

impl QueryParameterMatcher {
    fn matches(&self, path: &str) -> bool {
        let value = path.split_once('?').and_then(|(_, q)| {
            let q = q.split('#').next().unwrap_or("");
            q.split('&').find_map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k == self.name).then_some(v)
            })
        });
        match (&self.kind, value) {
            (QueryMatch::PresentMatch(p), None) => !*p,
            (_, None) => false,
            (QueryMatch::Present, Some(_)) => true,
            (QueryMatch::PresentMatch(p), Some(_)) => *p,
            (QueryMatch::String(m), Some(v)) => m.matches(v),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Forwarding.

#[derive(Debug, Clone, PartialEq)]
pub enum ClusterChoice {
    Name(String),
    /// `cluster_header`: the first value of this request header names the cluster.
    Header(HeaderName),
    Weighted(WeightedClusters),
}

#[derive(Debug, Clone, PartialEq)]
pub struct WeightedCluster {
    pub name: String,
    pub weight: u32,
    pub request_headers: HeaderMutations,
    pub response_headers: HeaderMutations,
}

/// `weighted_clusters`: never empty, weights sum to more than 0 (the decoder checks).
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedClusters {
    clusters: Vec<WeightedCluster>,
    total: u64,
}

impl WeightedClusters {
    /// None when `clusters` is empty or every weight is 0.
    pub fn new(clusters: Vec<WeightedCluster>) -> Option<WeightedClusters> {
        let total = clusters.iter().map(|c| u64::from(c.weight)).sum();
        (total > 0).then_some(WeightedClusters { clusters, total })
    }

    pub fn clusters(&self) -> &[WeightedCluster] {
        &self.clusters
    }

    /// Envoy's pick: `r % total` falls in one cluster's `[begin, begin + weight)`.
    pub fn pick(&self, r: u64) -> &WeightedCluster {
        let selected = r % self.total;
        let mut end = 0;
        for c in &self.clusters {
            end += u64::from(c.weight);
            if selected < end {
                return c;
            }
        }
        // Unreachable: `selected < total`, the sum of the weights; `new` keeps clusters non-empty.
        &self.clusters[self.clusters.len() - 1]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum HostRewrite {
    None,
    Literal(HeaderValue),
    /// `auto_host_rewrite`: the router sets the host to the chosen upstream host's hostname.
    Auto,
    /// `host_rewrite_header`: the host comes from this request header (when present).
    Header(HeaderName),
}

/// `request_mirror_policies[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorPolicy {
    pub cluster: String,
    /// `runtime_fraction.default_value` in parts per million (1,000,000 when absent).
    pub per_million: u32,
    /// `disable_shadow_host_suffix_append`: keep the host as is rather than adding `-shadow`.
    pub disable_shadow_host_suffix_append: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HashKind {
    Header(HeaderName),
    /// `cookie{name, ttl, path}`: with a ttl, Envoy generates the cookie when it is missing.
    Cookie {
        name: String,
        ttl: Option<Duration>,
        path: Option<String>,
    },
    /// `connection_properties{source_ip: true}`.
    SourceIp,
    QueryParameter(String),
}

/// `hash_policy[]` entry: hashes are combined in order; a `terminal` one that produced a hash
/// stops the list.
#[derive(Debug, Clone, PartialEq)]
pub struct HashPolicy {
    pub kind: HashKind,
    pub terminal: bool,
}

/// How the upstream path is rewritten.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PathRewrite {
    None,
    /// `prefix_rewrite`: the matched prefix (or whole matched path) is replaced.
    Prefix(String),
    /// `regex_rewrite`: every match in the path (query excluded) is replaced; `substitution`
    /// is already in the regex crate's `${N}` syntax.
    Regex {
        pattern: Regex,
        substitution: String,
    },
}

impl PathRewrite {
    fn apply(&self, route: &Route, path: &str) -> Option<String> {
        match self {
            PathRewrite::None => None,
            PathRewrite::Prefix(p) => {
                let rest = path.get(route.matcher.matched_len(path)..).unwrap_or("");
                Some(format!("{p}{rest}"))
            }
            PathRewrite::Regex { pattern, substitution } => {
                let just_path = strip_query(path);
                let replaced = pattern.re.replace_all(just_path, substitution.as_str());
                Some(format!("{replaced}{}", &path[just_path.len()..]))
            }
        }
    }
}

/// `RouteAction`: forward to a cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardAction {
    pub cluster: ClusterChoice,
    /// 503 (default) or 404 (or 500) when the cluster does not exist.
    pub cluster_not_found_response_code: u16,
    /// None = disabled (`0s`); Envoy's default is 15 s.
    pub timeout: Option<Duration>,
    /// None = not set (the HCM's `stream_idle_timeout` applies); `Some(0)` = disabled.
    pub idle_timeout: Option<Duration>,
    /// The route's own policy; when None the router falls back to the virtual host's.
    pub retry_policy: Option<Arc<RetryPolicy>>,
    pub mirrors: Vec<MirrorPolicy>,
    pub host_rewrite: HostRewrite,
    pub hash_policy: Vec<HashPolicy>,
    /// (lower-case upgrade type, enabled), overriding the HCM's `upgrade_configs`.
    pub upgrade_configs: Vec<(String, bool)>,
    pub max_stream_duration: Option<Duration>,
    /// None: `grpc-timeout` is ignored; `Some(0)`: honoured without a cap.
    pub grpc_timeout_header_max: Option<Duration>,
    pub grpc_timeout_header_offset: Option<Duration>,
    pub(crate) path_rewrite: PathRewrite,
}

impl ForwardAction {
    /// Envoy's `usingNewTimeouts()`: the route has a `max_stream_duration` block (seen through
    /// its fields), which turns the route `timeout` off.
    pub fn uses_new_timeouts(&self) -> bool {
        self.max_stream_duration.is_some()
            || self.grpc_timeout_header_max.is_some()
            || self.grpc_timeout_header_offset.is_some()
    }

    /// The upstream path after prefix_rewrite/regex_rewrite (query kept), or None when no
    /// rewrite applies. `route` is the route this action belongs to (its match decides how much
    /// of the path a prefix rewrite replaces). Envoy's caveat holds: `prefix: /p` with
    /// `prefix_rewrite: /` turns `/p/x` into `//x`; pair `/p/` → `/` with `/p` → `/`.
    pub fn rewrite_path(&self, route: &Route, path: &str) -> Option<String> {
        self.path_rewrite.apply(route, path)
    }
}

// ---------------------------------------------------------------------------------------------
// Redirects.

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RedirectPath {
    /// Keep the request's path.
    Keep,
    /// `path_redirect`; when it has a query it replaces the request's and `strip_query` is ignored.
    Path { value: String, has_query: bool },
    /// `prefix_rewrite` / `regex_rewrite`.
    Rewrite(PathRewrite),
}

/// `RedirectAction`.
#[derive(Debug, Clone, PartialEq)]
pub struct RedirectAction {
    /// `scheme_redirect`, or `https` for `https_redirect`.
    pub(crate) scheme: Option<String>,
    pub(crate) host: Option<String>,
    /// `:<port_redirect>`.
    pub(crate) port: Option<String>,
    pub(crate) path: RedirectPath,
    pub(crate) strip_query: bool,
    pub(crate) status: u16,
}

impl RedirectAction {
    /// 301 (default), 302, 303, 307 or 308.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The `location` header (Envoy's `Http::Utility::newUri`). `scheme` is the request's
    /// scheme as the HCM sees it (`x-forwarded-proto`); `path` includes the query. The request's
    /// port is dropped when a `port_redirect` is given, or when the scheme changes and the port
    /// was the old scheme's default (`:80` for http, `:443` for https).
    pub fn location(&self, route: &Route, scheme: &str, authority: &str, path: &str) -> String {
        let final_scheme = self.scheme.as_deref().unwrap_or(scheme);
        let final_port = self.port.as_deref().unwrap_or("");
        let final_host = match &self.host {
            Some(h) => h.as_str(),
            None => request_host(authority, scheme, final_scheme, !final_port.is_empty()),
        };
        let mut path_has_query_of_its_own = false;
        let mut final_path: Cow<'_, str> = match &self.path {
            RedirectPath::Keep => Cow::Borrowed(path),
            RedirectPath::Path { value, has_query: true } => {
                path_has_query_of_its_own = true;
                Cow::Borrowed(value.as_str())
            }
            RedirectPath::Path { value, has_query: false } => match path.find('?') {
                Some(q) => Cow::Owned(format!("{value}{}", &path[q..])),
                None => Cow::Borrowed(value.as_str()),
            },
            RedirectPath::Rewrite(r) => r.apply(route, path).map_or(Cow::Borrowed(path), Cow::Owned),
        };
        if !final_path.starts_with('/') {
            final_path = Cow::Owned(format!("/{final_path}"));
        }
        if self.strip_query && !path_has_query_of_its_own {
            if let Some(q) = final_path.find('?') {
                final_path = Cow::Owned(final_path[..q].to_string());
            }
        }
        format!("{final_scheme}://{final_host}{final_port}{final_path}")
    }
}

/// Envoy's `processRequestHost`: the request's host, without its port when a new port is
/// given or the scheme changes away from the one whose default port it is.
fn request_host<'a>(authority: &'a str, request_scheme: &str, new_scheme: &str, new_port: bool) -> &'a str {
    if authority.is_empty() {
        return authority;
    }
    let host_end = if authority.starts_with('[') { authority.rfind("]:").map(|i| i + 1) } else { authority.rfind(':') };
    let Some(end) = host_end else { return authority };
    let port = &authority[end..];
    let mut remove = new_port;
    if new_scheme != request_scheme {
        remove |= (request_scheme == "https" && port == ":443") || (request_scheme == "http" && port == ":80");
    }
    if remove {
        &authority[..end]
    } else {
        authority
    }
}

// ---------------------------------------------------------------------------------------------
// Retries.

/// `retry_on` conditions as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct RetryOn(u32);

impl RetryOn {
    pub const NONE: RetryOn = RetryOn(0);
    pub const FIVE_XX: RetryOn = RetryOn(1 << 0);
    pub const GATEWAY_ERROR: RetryOn = RetryOn(1 << 1);
    pub const RESET: RetryOn = RetryOn(1 << 2);
    pub const CONNECT_FAILURE: RetryOn = RetryOn(1 << 3);
    pub const RETRIABLE_4XX: RetryOn = RetryOn(1 << 4);
    pub const REFUSED_STREAM: RetryOn = RetryOn(1 << 5);
    pub const RETRIABLE_STATUS_CODES: RetryOn = RetryOn(1 << 6);
    pub const RETRIABLE_HEADERS: RetryOn = RetryOn(1 << 7);
    pub const ENVOY_RATELIMITED: RetryOn = RetryOn(1 << 8);
    pub const RESET_BEFORE_REQUEST: RetryOn = RetryOn(1 << 9);
    pub const HTTP3_POST_CONNECT_FAILURE: RetryOn = RetryOn(1 << 10);
    pub const GRPC_CANCELLED: RetryOn = RetryOn(1 << 16);
    pub const GRPC_DEADLINE_EXCEEDED: RetryOn = RetryOn(1 << 17);
    pub const GRPC_INTERNAL: RetryOn = RetryOn(1 << 18);
    pub const GRPC_RESOURCE_EXHAUSTED: RetryOn = RetryOn(1 << 19);
    pub const GRPC_UNAVAILABLE: RetryOn = RetryOn(1 << 20);

    /// Envoy's names (`x-envoy-retry-on` and `x-envoy-retry-grpc-on` share one list here).
    pub const NAMES: &'static [(&'static str, RetryOn)] = &[
        ("5xx", RetryOn::FIVE_XX),
        ("gateway-error", RetryOn::GATEWAY_ERROR),
        ("reset", RetryOn::RESET),
        ("reset-before-request", RetryOn::RESET_BEFORE_REQUEST),
        ("connect-failure", RetryOn::CONNECT_FAILURE),
        ("envoy-ratelimited", RetryOn::ENVOY_RATELIMITED),
        ("retriable-4xx", RetryOn::RETRIABLE_4XX),
        ("refused-stream", RetryOn::REFUSED_STREAM),
        ("retriable-status-codes", RetryOn::RETRIABLE_STATUS_CODES),
        ("retriable-headers", RetryOn::RETRIABLE_HEADERS),
        ("http3-post-connect-failure", RetryOn::HTTP3_POST_CONNECT_FAILURE),
        ("cancelled", RetryOn::GRPC_CANCELLED),
        ("deadline-exceeded", RetryOn::GRPC_DEADLINE_EXCEEDED),
        ("internal", RetryOn::GRPC_INTERNAL),
        ("resource-exhausted", RetryOn::GRPC_RESOURCE_EXHAUSTED),
        ("unavailable", RetryOn::GRPC_UNAVAILABLE),
    ];

    /// A comma list; whitespace around names is trimmed, empty and unknown names are ignored
    /// (Envoy's `parseRetryOn` + `parseRetryGrpcOn`).
    pub fn parse(list: &str) -> RetryOn {
        Self::parse_reporting(list, |_| {})
    }

    /// `parse`, calling `unknown` with each name it ignores.
    pub fn parse_reporting(list: &str, mut unknown: impl FnMut(&str)) -> RetryOn {
        let mut out = RetryOn::NONE;
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match Self::NAMES.iter().find(|(n, _)| *n == name) {
                Some((_, bit)) => out = out | *bit,
                None => unknown(name),
            }
        }
        out
    }

    /// Whether every condition in `o` is set (and `o` is not empty).
    pub fn contains(self, o: RetryOn) -> bool {
        o.0 != 0 && self.0 & o.0 == o.0
    }

    /// Whether any condition in `o` is set.
    pub fn intersects(self, o: RetryOn) -> bool {
        self.0 & o.0 != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::BitOr for RetryOn {
    type Output = RetryOn;
    fn bitor(self, o: RetryOn) -> RetryOn {
        RetryOn(self.0 | o.0)
    }
}

/// Envoy's retry back-off base (`retry_back_off.base_interval` default, 25 ms).
pub const DEFAULT_RETRY_BASE_INTERVAL: Duration = Duration::from_millis(25);
/// The back-off cap is this many times the base unless `max_interval` is set.
pub const DEFAULT_RETRY_MAX_INTERVAL_FACTOR: u32 = 10;
/// Envoy's `num_retries` default.
pub const DEFAULT_NUM_RETRIES: u32 = 1;

/// A route's or virtual host's `retry_policy`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub retry_on: RetryOn,
    pub num_retries: u32,
    pub per_try_timeout: Option<Duration>,
    pub base_interval: Duration,
    pub max_interval: Duration,
    pub retriable_status_codes: Vec<u16>,
    pub retriable_headers: Vec<HeaderMatcher>,
}

// ---------------------------------------------------------------------------------------------
// Header mutations.

/// `HeaderValueOption.append_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppendAction {
    #[default]
    AppendIfExistsOrAdd,
    AddIfAbsent,
    OverwriteIfExistsOrAdd,
    OverwriteIfExists,
}

/// One piece of a header value template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValuePiece {
    Text(String),
    DownstreamRemoteAddress,
    DownstreamRemoteAddressWithoutPort,
    DownstreamLocalAddress,
    Protocol,
    UpstreamRemoteAddress,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HeaderValueTemplate {
    /// No operator: built once.
    Static(HeaderValue),
    Format(Vec<ValuePiece>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct HeaderAdd {
    pub name: HeaderName,
    pub value: HeaderValueTemplate,
    pub action: AppendAction,
    /// `keep_empty_value`: add the header even when its value comes out empty.
    pub keep_empty_value: bool,
}

/// What `%VAR%` operators in header values read.
#[derive(Debug, Clone, Copy)]
pub struct HeaderVars<'a> {
    pub downstream_remote: SocketAddr,
    pub downstream_local: SocketAddr,
    /// `HTTP/1.1`, `HTTP/2`, ...
    pub protocol: &'a str,
    pub upstream_remote: Option<SocketAddr>,
}

/// `*_headers_to_add` + `*_headers_to_remove` of one level.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeaderMutations {
    pub remove: Vec<HeaderName>,
    pub add: Vec<HeaderAdd>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Skip,
    Overwrite,
    Append,
}

impl HeaderMutations {
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.add.is_empty()
    }

    /// Envoy's `HeaderParser::evaluateHeaders`: removes first; then every add is decided
    /// against the headers as they are after the removals (`ADD_IF_ABSENT`,
    /// `OVERWRITE_IF_EXISTS`), values that come out empty are skipped unless
    /// `keep_empty_value`; then all overwrites are applied, then all appends.
    pub fn apply(&self, headers: &mut HeaderMap, vars: &HeaderVars<'_>) {
        for name in &self.remove {
            headers.remove(name);
        }
        if self.add.is_empty() {
            return;
        }
        const INLINE: usize = 32;
        let mut inline = [Step::Skip; INLINE];
        let mut heap = Vec::new();
        let steps: &mut [Step] = if self.add.len() <= INLINE {
            &mut inline[..self.add.len()]
        } else {
            heap.resize(self.add.len(), Step::Skip);
            &mut heap
        };
        for (a, step) in self.add.iter().zip(steps.iter_mut()) {
            let present = headers.contains_key(&a.name);
            *step = match a.action {
                AppendAction::AppendIfExistsOrAdd => Step::Append,
                AppendAction::AddIfAbsent if present => Step::Skip,
                AppendAction::AddIfAbsent => Step::Append,
                AppendAction::OverwriteIfExists if !present => Step::Skip,
                AppendAction::OverwriteIfExists | AppendAction::OverwriteIfExistsOrAdd => Step::Overwrite,
            };
        }
        for pass in [Step::Overwrite, Step::Append] {
            for (a, step) in self.add.iter().zip(steps.iter()) {
                if *step != pass {
                    continue;
                }
                let Some(value) = a.value.render(vars) else { continue };
                if value.is_empty() && !a.keep_empty_value {
                    continue;
                }
                if pass == Step::Overwrite {
                    headers.insert(a.name.clone(), value);
                } else {
                    headers.append(a.name.clone(), value);
                }
            }
        }
    }
}

impl HeaderValueTemplate {
    /// The value for this request; None if a rendered value is not a valid header value.
    fn render(&self, vars: &HeaderVars<'_>) -> Option<HeaderValue> {
        use std::fmt::Write;
        match self {
            HeaderValueTemplate::Static(v) => Some(v.clone()),
            HeaderValueTemplate::Format(pieces) => {
                let mut s = String::new();
                for p in pieces {
                    // Writing to a String cannot fail.
                    let _ = match p {
                        ValuePiece::Text(t) => write!(s, "{t}"),
                        ValuePiece::DownstreamRemoteAddress => write!(s, "{}", vars.downstream_remote),
                        ValuePiece::DownstreamRemoteAddressWithoutPort => write!(s, "{}", vars.downstream_remote.ip()),
                        ValuePiece::DownstreamLocalAddress => write!(s, "{}", vars.downstream_local),
                        ValuePiece::Protocol => write!(s, "{}", vars.protocol),
                        // Unknown: empty (Envoy's header formatter omits empty values).
                        ValuePiece::UpstreamRemoteAddress => match vars.upstream_remote {
                            Some(a) => write!(s, "{a}"),
                            None => Ok(()),
                        },
                    };
                }
                HeaderValue::from_maybe_shared(Bytes::from(s)).ok()
            }
        }
    }
}

#[cfg(test)]
#[path = "route_table_tests.rs"]
mod tests;
