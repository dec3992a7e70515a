//! Format strings: Envoy's substitution-format parser and the [`Formatter`] built from it.
//!
//! Parsing follows Envoy 1.40's `SubstitutionFormatParser::parse`: text is copied, `%%` is a
//! literal `%`, and any other `%` must start a command matching
//! `^%([A-Z0-9_]+)(?:\((.*?)\))?(?::([0-9]+))?%` (the parameter is the shortest run, without
//! newlines, that is followed by `)`, an optional `:N` and `%`). Otherwise parsing fails with
//! Envoy's `Incorrect configuration: <format>. Couldn't find valid command at position <byte>`.
//! Command names and their errors are in the `syntax` and `operator` modules. Parsing happens once, when the
//! configuration is loaded; [`Formatter::format`] only evaluates the parsed pieces.
//!
//! A missing value prints `-` (nothing with `omit_empty_values`). A present but empty value
//! (an empty header, `%REQ(X):0%`) prints nothing.

use super::json::JsonFormat;
use super::operator::{parse_op, Op};
use super::stream_info::StreamInfo;

/// Envoy's default access log format, trailing newline included.
pub const DEFAULT_FORMAT: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% \
%PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% \
%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \
\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

/// One piece of a parsed format string.
#[derive(Clone, Debug)]
pub(crate) enum Piece {
    Literal(String),
    Command(Op),
}

/// A parsed access log format (text or `json_format`).
#[derive(Clone, Debug)]
pub struct Formatter {
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Text { pieces: Vec<Piece>, omit_empty_values: bool },
    Json(JsonFormat),
}

impl Formatter {
    /// Parses an Envoy `text_format` / `text_format_source` / `format` string.
    pub fn parse_text(fmt: &str) -> Result<Formatter, String> {
        Formatter::parse_text_with_options(fmt, false)
    }

    /// Like [`Formatter::parse_text`], honouring `log_format.omit_empty_values`.
    pub fn parse_text_with_options(fmt: &str, omit_empty_values: bool) -> Result<Formatter, String> {
        Ok(Formatter { kind: Kind::Text { pieces: parse_pieces(fmt)?, omit_empty_values } })
    }

    /// Envoy's default format ([`DEFAULT_FORMAT`]).
    pub fn envoy_default() -> Formatter {
        Formatter::parse_text(DEFAULT_FORMAT)
            .unwrap_or_else(|_| Formatter { kind: Kind::Text { pieces: Vec::new(), omit_empty_values: false } })
    }

    /// Parses a `json_format` map; the output is one JSON object per line (rules in the `json` module).
    pub fn parse_json(map: &serde_json::Value, omit_empty_values: bool) -> Result<Formatter, String> {
        Ok(Formatter { kind: Kind::Json(JsonFormat::parse(map, omit_empty_values)?) })
    }

    /// Renders one log line for `info`.
    pub fn format(&self, info: &StreamInfo) -> String {
        match &self.kind {
            Kind::Text { pieces, omit_empty_values } => {
                let missing = if *omit_empty_values { "" } else { "-" };
                let mut line = String::with_capacity(256);
                for piece in pieces {
                    match piece {
                        Piece::Literal(text) => line.push_str(text),
                        Piece::Command(op) => match op.eval(info).into_text() {
                            Some(text) => line.push_str(&text),
                            None => line.push_str(missing),
                        },
                    }
                }
                line
            }
            Kind::Json(json) => json.format(info),
        }
    }
}

/// Envoy's `SubstitutionFormatParser::parse`.
pub(crate) fn parse_pieces(format: &str) -> Result<Vec<Piece>, String> {
    let bytes = format.as_bytes();
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut pos = 0;
    while pos < bytes.len() {
        if bytes[pos] != b'%' {
            let next = format[pos..].find('%').map_or(format.len(), |offset| pos + offset);
            literal.push_str(&format[pos..next]);
            pos = next;
            continue;
        }
        if bytes.get(pos + 1) == Some(&b'%') {
            literal.push('%');
            pos += 2;
            continue;
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(&mut literal)));
        }
        let invalid = || format!("Incorrect configuration: {format}. Couldn't find valid command at position {pos}");
        let token = match_command(&format[pos..]).ok_or_else(invalid)?;
        let len = match token.length {
            Some(digits) => Some(digits.parse::<usize>().map_err(|_| invalid())?),
            None => None,
        };
        pieces.push(Piece::Command(parse_op(token.name, token.param, len)?));
        pos += token.consumed;
    }
    if !literal.is_empty() || format.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(pieces)
}

struct Token<'a> {
    name: &'a str,
    param: &'a str,
    length: Option<&'a str>,
    consumed: usize,
}

/// Matches `^%([A-Z0-9_]+)(?:\((.*?)\))?(?::([0-9]+))?%` with RE2's leftmost-first rules.
fn match_command(s: &str) -> Option<Token<'_>> {
    let b = s.as_bytes();
    let name_end =
        1 + b[1..].iter().take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || **c == b'_').count();
    if name_end == 1 {
        return None;
    }
    let name = &s[1..name_end];
    // `(?::([0-9]+))?%` at `j`: the length digits and the end of the match.
    let tail = |j: usize| -> Option<(Option<&str>, usize)> {
        if b.get(j) == Some(&b':') {
            let digits = b[j + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits > 0 && b.get(j + 1 + digits) == Some(&b'%') {
                return Some((Some(&s[j + 1..j + 1 + digits]), j + 2 + digits));
            }
        }
        (b.get(j) == Some(&b'%')).then_some((None, j + 1))
    };
    let token = |param, (length, consumed)| Token { name, param, length, consumed };
    if b.get(name_end) != Some(&b'(') {
        return tail(name_end).map(|t| token("", t));
    }
    let start = name_end + 1;
    for j in start..b.len() {
        match b[j] {
            b'\n' => return None,
            b')' => {
                if let Some(t) = tail(j + 1) {
                    return Some(token(&s[start..j], t));
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log::response_flags::ResponseFlags;
    use std::time::{Duration, UNIX_EPOCH};

    fn text(fmt: &str, info: &StreamInfo) -> String {
        match Formatter::parse_text(fmt) {
            Ok(f) => f.format(info),
            Err(e) => format!("ERR {e}"),
        }
    }

    fn err(fmt: &str) -> String {
        Formatter::parse_text(fmt).err().unwrap_or_default()
    }

    fn http_info() -> StreamInfo {
        let h = |pairs: &[(&str, &str)]| pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        StreamInfo {
            start_time: UNIX_EPOCH + Duration::from_nanos(1_795_308_472_306_910_000),
            protocol: Some("HTTP/1.1"),
            response_code: Some(200),
            request_headers: h(&[
                (":method", "GET"),
                (":path", "/up/path?q=1"),
                ("user-agent", "curl-test/1.0"),
                ("x-dup", "one"),
                ("x-dup", "two"),
                ("x-empty", ""),
            ]),
            response_headers: h(&[("x-resp", "abcdefghij")]),
            ..StreamInfo::default()
        }
    }

    #[test]
    fn percent_percent_is_a_literal_percent() {
        let info = StreamInfo::default();
        assert_eq!(text("pct=100%%", &info), "pct=100%");
        assert_eq!(text("%%", &info), "%");
        assert_eq!(text("%RESPONSE_CODE%%%", &info), "0%");
        assert_eq!(text("%%PROTOCOL%%", &info), "%PROTOCOL%");
    }

    #[test]
    fn unknown_operator_error_text() {
        assert_eq!(err("%FOO%"), "Not supported field in StreamInfo: FOO");
        assert_eq!(err("x %FOO(bar):3% y"), "Not supported field in StreamInfo: FOO");
        assert_eq!(err("%_%"), "Not supported field in StreamInfo: _");
        assert_eq!(err("%1%"), "Not supported field in StreamInfo: 1");
    }

    #[test]
    fn malformed_commands_report_the_byte_position() {
        // Each message is Envoy 1.40's, from `envoy --mode validate`.
        let at =
            |f: &str, p: usize| format!("Incorrect configuration: {f}. Couldn't find valid command at position {p}");
        assert_eq!(err("a % b"), at("a % b", 2));
        assert_eq!(err("abc%"), at("abc%", 3));
        assert_eq!(err("%protocol%"), at("%protocol%", 0));
        assert_eq!(err("%REQ(A)B%"), at("%REQ(A)B%", 0));
        assert_eq!(err("%REQ(A"), at("%REQ(A", 0));
        assert_eq!(err("%%%"), at("%%%", 2));
        assert_eq!(err("%REQ(A):abc%"), at("%REQ(A):abc%", 0));
        assert_eq!(err("%START_TIME(%s):%"), at("%START_TIME(%s):%", 0));
        assert_eq!(err("%START_TIME(%s)%%"), at("%START_TIME(%s)%%", 16));
        assert_eq!(err("%REQ(a\nb)%"), at("%REQ(a\nb)%", 0));
        let huge = "%REQ(A):99999999999999999999999%";
        assert_eq!(err(huge), at(huge, 0));
        assert_eq!(err("é%"), at("é%", 2));
    }

    #[test]
    fn parameters_end_at_the_first_paren_followed_by_percent() {
        let info = http_info();
        assert_eq!(err("%REQ(A)):3%"), "Invalid header configuration. Format string contains invalid characters.");
        assert_eq!(text("%START_TIME(%Y)%", &info), "2026");
        assert_eq!(text("%START_TIME(%H)(%M)%", &info), "00)(47");
        assert_eq!(text("%PROTOCOL()%", &info), "HTTP/1.1");
    }

    #[test]
    fn header_truncation() {
        let info = http_info();
        assert_eq!(text("%REQ(:PATH):3%", &info), "/up");
        assert_eq!(text("[%REQ(:PATH):0%]", &info), "[]");
        assert_eq!(text("%REQ(:PATH):99%", &info), "/up/path?q=1");
        assert_eq!(text("%RESP(X-RESP):5%", &info), "abcde");
        assert_eq!(text("%REQ(:PATH):0000%", &info), "");
        assert_eq!(text("[%REQ(X-NOPE):3%]", &info), "[-]");
    }

    #[test]
    fn fallback_header() {
        let info = http_info();
        assert_eq!(text("%REQ(X-NOPE?USER-AGENT)%", &info), "curl-test/1.0");
        assert_eq!(text("%REQ(X-NOPE?USER-AGENT):4%", &info), "curl");
        assert_eq!(text("%REQ(USER-AGENT?X-NOPE)%", &info), "curl-test/1.0");
        assert_eq!(text("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", &info), "/up/path?q=1");
        assert_eq!(text("%REQ(?USER-AGENT)%", &info), "curl-test/1.0");
        assert_eq!(text("%REQ(X-NOPE?)%", &info), "-");
        assert_eq!(text("%REQUEST_HEADER(USER-AGENT)%", &info), "curl-test/1.0");
        assert_eq!(text("%RESPONSE_HEADER(X-RESP)%", &info), "abcdefghij");
        assert_eq!(text("%REQ(X-DUP)%", &info), "one");
        assert_eq!(text("[%REQ(X-EMPTY)%]", &info), "[]");
    }

    #[test]
    fn missing_values_print_dash_or_nothing_with_omit_empty_values() {
        let mut info = StreamInfo::default();
        info.response_flags.set(ResponseFlags::UF);
        info.response_flags.set(ResponseFlags::URX);
        let fmt = "[%PROTOCOL%][%RESPONSE_CODE%][%REQ(:METHOD)%][%RESPONSE_FLAGS%]\n";
        assert_eq!(text(fmt, &info), "[-][0][-][UF,URX]\n");
        // Captured from Envoy 1.40 with `omit_empty_values: true`.
        let omit = Formatter::parse_text_with_options(fmt, true).map(|f| f.format(&info));
        assert_eq!(omit.as_deref(), Ok("[][0][][UF,URX]\n"));
    }

    #[test]
    fn empty_format_prints_nothing() {
        assert_eq!(text("", &StreamInfo::default()), "");
    }

    #[test]
    fn default_format_parses() {
        assert!(Formatter::parse_text(DEFAULT_FORMAT).is_ok());
        assert!(Formatter::envoy_default().format(&http_info()).ends_with('\n'));
    }
}
