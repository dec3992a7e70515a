//! Admin `/stats` query parameters (`usedonly`, `filter`, `type`, `histogram_buckets`, `format`,
//! `hidden`, `text_readouts`), parsed and validated like Envoy's `StatsParams::parse`, with
//! Envoy's error texts.

use regex::Regex;

/// Which stat types `/stats?type=` selects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StatsKind {
    #[default]
    All,
    Counters,
    Gauges,
    Histograms,
    TextReadouts,
}

/// How histograms are shown (`histogram_buckets=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BucketMode {
    /// Quantile summary (the default; also `summary` and `none`).
    #[default]
    Summary,
    Cumulative,
    Disjoint,
    Detailed,
}

/// Output format requested with `format=` (the `/stats/prometheus` path forces Prometheus).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StatsFormat {
    #[default]
    Text,
    Json,
    Prometheus,
    Html,
    ActiveHtml,
}

/// Parsed `/stats` query.
#[derive(Clone, Debug, Default)]
pub struct StatsQuery {
    /// Partial-match filter on the full stat name.
    pub filter: Option<Regex>,
    pub used_only: bool,
    pub kind: StatsKind,
    pub histogram_buckets: BucketMode,
    pub format: StatsFormat,
    /// Prometheus only: also emit text readouts (as gauges with a `text_value` label).
    pub text_readouts: bool,
}

/// `%XX` decoding; malformed escapes are kept literally and `+` stays `+`, as in Envoy.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits a query string (with or without the leading path and `?`) into decoded pairs.
fn parse_pairs(query: &str) -> Vec<(String, String)> {
    let query = match query.split_once('?') {
        Some((_, q)) => q,
        None => query,
    };
    let query = query.split('#').next().unwrap_or("");
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Translates a regex compile error into RE2's wording (`<code>: <argument>`).
pub(crate) fn re2_error(pattern: &str, err: &regex::Error) -> String {
    let text = err.to_string();
    let detail = text.lines().rev().find_map(|l| l.trim().strip_prefix("error: ")).unwrap_or(text.as_str()).to_string();
    let from_bracket = pattern.find('[').map_or(pattern, |i| &pattern[i..]).to_string();
    let message = if detail.contains("unclosed group") {
        format!("missing ): {pattern}")
    } else if detail.contains("unopened group") {
        format!("unexpected ): {pattern}")
    } else if detail.contains("unclosed character class") {
        format!("missing ]: {from_bracket}")
    } else if detail.contains("repetition operator missing expression") {
        let op: String =
            pattern.chars().find(|c| matches!(c, '*' | '+' | '?' | '{')).map(String::from).unwrap_or_default();
        format!("no argument for repetition operator: {op}")
    } else if detail.contains("incomplete escape") {
        "trailing \\".to_string()
    } else if detail.contains("invalid character class range") {
        let range = pattern.find('[').and_then(|i| pattern[i + 1..].split(']').next()).unwrap_or(pattern);
        format!("invalid character class range: {range}")
    } else if detail.contains("decimal") || detail.contains("repetition") {
        let rep = pattern.find('{').map_or(pattern, |i| &pattern[i..]).split_inclusive('}').next().unwrap_or(pattern);
        format!("invalid repetition size: {rep}")
    } else if detail.contains("capture group name") || detail.contains("group name") {
        let start = pattern.find("(?P<").map_or(0, |i| i);
        format!("invalid named capture group: {}", &pattern[start..])
    } else {
        detail
    };
    format!("Invalid re2 regex: {message}")
}

impl StatsQuery {
    /// Parses the query of `/stats` (any `format=`).
    pub fn parse(query: &str) -> Result<StatsQuery, String> {
        let (q, native) = Self::parse_common(query)?;
        if native && q.format != StatsFormat::Prometheus {
            return Err("Invalid histogram_buckets type for non prometheus stats type".to_string());
        }
        if q.format == StatsFormat::Prometheus {
            Self::check_prometheus(&q, native)?;
        }
        Ok(q)
    }

    /// Parses the query of `/stats/prometheus` (the format is always Prometheus).
    pub fn parse_prometheus(query: &str) -> Result<StatsQuery, String> {
        let (mut q, native) = Self::parse_common(query)?;
        q.format = StatsFormat::Prometheus;
        Self::check_prometheus(&q, native)?;
        Ok(q)
    }

    fn check_prometheus(q: &StatsQuery, native: bool) -> Result<(), String> {
        if native {
            return Err(
                "unsupported prometheusnative histogram type when not using protobuf exposition format".to_string()
            );
        }
        match q.histogram_buckets {
            BucketMode::Summary | BucketMode::Cumulative => Ok(()),
            BucketMode::Disjoint | BucketMode::Detailed => {
                Err("unsupported prometheus histogram bucket mode".to_string())
            }
        }
    }

    /// Common parsing; the flag is true for `histogram_buckets=prometheusnative`.
    fn parse_common(query: &str) -> Result<(StatsQuery, bool), String> {
        let pairs = parse_pairs(query);
        let mut q = StatsQuery {
            used_only: first(&pairs, "usedonly").is_some(),
            text_readouts: first(&pairs, "text_readouts").is_some(),
            ..StatsQuery::default()
        };

        if let Some(f) = first(&pairs, "filter").filter(|f| !f.is_empty()) {
            q.filter = Some(Regex::new(f).map_err(|e| re2_error(f, &e))?);
        }

        let mut native = false;
        match first(&pairs, "histogram_buckets").unwrap_or("") {
            "" | "summary" | "none" => {}
            "cumulative" => q.histogram_buckets = BucketMode::Cumulative,
            "disjoint" => q.histogram_buckets = BucketMode::Disjoint,
            "detailed" => q.histogram_buckets = BucketMode::Detailed,
            "prometheusnative" => native = true,
            _ => {
                return Err(
                    "usage: /stats?histogram_buckets=(cumulative|disjoint|detailed|summary|prometheusnative)\n"
                        .to_string(),
                );
            }
        }

        q.kind = match first(&pairs, "type").unwrap_or("") {
            "" | "All" => StatsKind::All,
            "Counters" => StatsKind::Counters,
            "Gauges" => StatsKind::Gauges,
            "Histograms" => StatsKind::Histograms,
            "TextReadouts" => StatsKind::TextReadouts,
            _ => return Err("invalid &type= param".to_string()),
        };

        match first(&pairs, "hidden").unwrap_or("") {
            "" | "include" | "only" | "exclude" => {}
            _ => return Err("usage: /stats?hidden=(include|only|exclude)\n\n".to_string()),
        }

        q.format = match first(&pairs, "format").unwrap_or("") {
            "" | "text" => StatsFormat::Text,
            "json" => StatsFormat::Json,
            "prometheus" => StatsFormat::Prometheus,
            "html" => StatsFormat::Html,
            "active-html" => StatsFormat::ActiveHtml,
            _ => return Err("usage: /stats?format=(html|active-html|json|prometheus|text)\n\n".to_string()),
        };
        Ok((q, native))
    }

    /// True when a stat with this name and used flag passes `usedonly` and `filter`.
    pub fn matches(&self, name: &str, used: bool) -> bool {
        (!self.used_only || used) && self.filter.as_ref().is_none_or(|re| re.is_match(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_parameters() {
        let q =
            StatsQuery::parse("usedonly&filter=cluster%5C.c%2B&type=Counters&histogram_buckets=cumulative").unwrap();
        assert!(q.used_only);
        assert_eq!(q.filter.as_ref().map(|r| r.as_str()), Some(r"cluster\.c+"));
        assert_eq!(q.kind, StatsKind::Counters);
        assert_eq!(q.histogram_buckets, BucketMode::Cumulative);
        assert_eq!(q.format, StatsFormat::Text);

        let q = StatsQuery::parse("/stats?format=json&usedonly=false&filter=a+b").unwrap();
        assert!(q.used_only, "any usedonly value enables it");
        assert_eq!(q.format, StatsFormat::Json);
        assert_eq!(q.filter.map(|r| r.as_str().to_string()).as_deref(), Some("a+b"));

        let q = StatsQuery::parse("").unwrap();
        assert!(!q.used_only && q.filter.is_none() && q.kind == StatsKind::All);
        assert_eq!(StatsQuery::parse("filter=&type=").unwrap().kind, StatsKind::All);
        assert_eq!(percent_decode("server%zzlive%2"), "server%zzlive%2");
        assert_eq!(percent_decode("a%20b"), "a b");
    }

    #[test]
    fn envoy_error_texts() {
        let err = |q: &str| StatsQuery::parse(q).unwrap_err();
        assert_eq!(err("type=bogus"), "invalid &type= param");
        assert_eq!(err("type=counters"), "invalid &type= param");
        assert_eq!(err("filter=("), "Invalid re2 regex: missing ): (");
        assert_eq!(err("filter=)"), "Invalid re2 regex: unexpected ): )");
        assert_eq!(err("filter=%5Ba"), "Invalid re2 regex: missing ]: [a");
        assert_eq!(err("filter=*a"), "Invalid re2 regex: no argument for repetition operator: *");
        assert_eq!(err("filter=a%7B2,1%7D"), "Invalid re2 regex: invalid repetition size: {2,1}");
        assert_eq!(err("filter=%5C"), "Invalid re2 regex: trailing \\");
        assert_eq!(err("filter=%5Bz-a%5D"), "Invalid re2 regex: invalid character class range: z-a");
        assert_eq!(
            err("histogram_buckets=bogus"),
            "usage: /stats?histogram_buckets=(cumulative|disjoint|detailed|summary|prometheusnative)\n"
        );
        assert_eq!(err("format=bogus"), "usage: /stats?format=(html|active-html|json|prometheus|text)\n\n");
        assert_eq!(err("hidden=bogus"), "usage: /stats?hidden=(include|only|exclude)\n\n");
        assert_eq!(
            err("histogram_buckets=prometheusnative"),
            "Invalid histogram_buckets type for non prometheus stats type"
        );
        assert_eq!(err("format=prometheus&histogram_buckets=detailed"), "unsupported prometheus histogram bucket mode");
        let perr = |q: &str| StatsQuery::parse_prometheus(q).unwrap_err();
        assert_eq!(perr("histogram_buckets=disjoint"), "unsupported prometheus histogram bucket mode");
        assert_eq!(
            perr("histogram_buckets=prometheusnative"),
            "unsupported prometheusnative histogram type when not using protobuf exposition format"
        );
        assert_eq!(perr("type=bogus"), "invalid &type= param");
        assert_eq!(StatsQuery::parse_prometheus("format=json").unwrap().format, StatsFormat::Prometheus);
        assert!(StatsQuery::parse("histogram_buckets=none").is_ok());
        assert!(StatsQuery::parse("hidden=include").is_ok());
    }

    #[test]
    fn matches_filter_and_used() {
        let q = StatsQuery::parse("usedonly&filter=^cluster").unwrap();
        assert!(q.matches("cluster.a", true));
        assert!(!q.matches("cluster.a", false));
        assert!(!q.matches("server.live", true));
    }
}
