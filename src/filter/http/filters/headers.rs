//! Request header matching (`HeaderUtility::matchHeaders`) and header mutation
//! (`HeaderValueOption`), as the fault and local rate limit filters use them.

use http::HeaderMap;

use crate::config::http_filters::{AppendAction, HeaderMatch, HeaderMatcherConfig, HeaderValueOptionConfig};

/// Whether `headers` satisfy one matcher. Several values of one header are joined with `,`.
pub fn matches(headers: &HeaderMap, m: &HeaderMatcherConfig) -> bool {
    let mut values = headers.get_all(&m.name).iter().peekable();
    if values.peek().is_none() && !m.treat_missing_as_empty {
        // Envoy: a missing header only satisfies `present_match: false` (or its inversion).
        // (`present_match: true` with `invert_match`), as `HeaderUtility::matchHeaders`.
        return matches!(m.kind, HeaderMatch::Present(p) if p == m.invert);
    }
    let joined: Vec<&str> = values.map(|v| v.to_str().unwrap_or("")).collect();
    let value = joined.join(",");
    let hit = match &m.kind {
        HeaderMatch::Present(p) => *p,
        HeaderMatch::Range(start, end) => value.parse::<i64>().is_ok_and(|v| v >= *start && v < *end),
        HeaderMatch::String(s, ignore_case) => s.matches(&value, *ignore_case),
    };
    hit != m.invert
}

/// Whether every matcher matches (an empty list matches everything).
pub fn all_match(headers: &HeaderMap, matchers: &[HeaderMatcherConfig]) -> bool {
    matchers.iter().all(|m| matches(headers, m))
}

/// Applies header mutations in order.
pub fn apply(headers: &mut HeaderMap, options: &[HeaderValueOptionConfig]) {
    for o in options {
        if o.value.is_empty() && !o.keep_empty_value {
            continue;
        }
        match o.action {
            AppendAction::AppendIfExistsOrAdd => {
                headers.append(o.name.clone(), o.value.clone());
            }
            AppendAction::AddIfAbsent => {
                if !headers.contains_key(&o.name) {
                    headers.insert(o.name.clone(), o.value.clone());
                }
            }
            AppendAction::OverwriteIfExistsOrAdd => {
                headers.insert(o.name.clone(), o.value.clone());
            }
            AppendAction::OverwriteIfExists => {
                if headers.contains_key(&o.name) {
                    headers.insert(o.name.clone(), o.value.clone());
                }
            }
        }
    }
}
