//! Admin query parameters: `a=1&b&c=x%20y`, decoded, in the order sent. A key without `=` has
//! the empty value (Envoy's `?usedonly`). The query string keeps `+` as is (it is common in
//! regexes such as `name_regex=echo.+`); a form body (`application/x-www-form-urlencoded`,
//! what the home page's buttons send) decodes `+` as a space, as that format requires.

/// Decoded `(key, value)` pairs in request order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    /// Parses a query string (without the leading `?`).
    pub fn parse(raw: &str) -> Query {
        let mut q = Query::default();
        q.extend(raw, false);
        q
    }

    /// Adds the parameters of a form body.
    pub fn extend_form(&mut self, body: &str) {
        self.extend(body, true);
    }

    fn extend(&mut self, raw: &str, plus_is_space: bool) {
        for part in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            self.0.push((decode(k, plus_is_space), decode(v, plus_is_space)));
        }
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Whether `key` was given (with or without a value).
    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// Every pair, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

/// Percent-decoding; an invalid escape is kept literally, invalid UTF-8 is replaced.
fn decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_without_value_are_present_and_empty() {
        let q = Query::parse("usedonly&filter=tcp");
        assert!(q.has("usedonly"));
        assert_eq!(q.get("usedonly"), Some(""));
        assert_eq!(q.get("filter"), Some("tcp"));
        assert_eq!(q.get("type"), None);
    }

    #[test]
    fn percent_escapes_are_decoded_and_plus_kept_in_query() {
        let q = Query::parse("name_regex=echo.%2B&x=a+b&bad=%zz&end=%4");
        assert_eq!(q.get("name_regex"), Some("echo.+"));
        assert_eq!(q.get("x"), Some("a+b"));
        assert_eq!(q.get("bad"), Some("%zz"));
        assert_eq!(q.get("end"), Some("%4"));
    }

    #[test]
    fn form_bodies_decode_plus_as_space() {
        let mut q = Query::parse("");
        q.extend_form("level=&paths=upstream%3Adebug+x");
        assert_eq!(q.get("level"), Some(""));
        assert_eq!(q.get("paths"), Some("upstream:debug x"));
    }
}
