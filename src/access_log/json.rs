//! `json_format`: Envoy 1.40's `JsonFormatterImpl`, checked against lines it wrote.
//!
//! - Keys are sorted by byte order at every level (`"Zed"` before `"bool"`, `"Ü"` last), output
//!   has no spaces and ends with `\n`.
//! - A string value without `%` is a literal. A value with `%` is a format string: when it is a
//!   single operator the value is *typed*: numbers for `%BYTES_SENT%`, `%BYTES_RECEIVED%`,
//!   `%RESPONSE_CODE%`, `%DURATION%`, `%CONNECTION_ID%`, the `*_PORT` operators,
//!   `%*_HEADERS_BYTES%`, `%GRPC_STATUS(NUMBER)%`; strings otherwise (`%START_TIME%` included);
//!   and `null` when missing (Envoy 1.40 writes `null`, not `"-"`, e.g. `"protocol":null` for
//!   TCP). Several pieces always make a string, with `-` for missing parts (`"a-b"`).
//! - Numbers, booleans, `null`, nested maps and lists in the configuration are kept (maps and
//!   lists recursively formatted). Numbers print like `fmt::to_string(double)`: `42`, `1.5`,
//!   `0.001`, `1e+20`. Note that Envoy's YAML loader turned `1.5` into the string `"1.5"`;
//!   JSON configuration kept it a number.
//! - `omit_empty_values`: pairs and list items whose value is `null` are dropped, a map left
//!   empty is dropped too (`{}` at the top), lists stay even when empty, missing parts of
//!   multi-piece strings become empty (`"a%REQ(X)%b"` → `"ab"`), and present-but-empty strings
//!   stay (`""`).
//! - Strings are escaped like nlohmann::json: `\"`, `\\`, `\b \f \n \r \t`, other control
//!   characters as `\u00xx`; everything else (DEL, non-ASCII, `/`) is written as is.

use super::format::{parse_pieces, Piece};
use super::operator::Value;
use super::stream_info::StreamInfo;

#[derive(Clone, Debug)]
enum Node {
    /// Entries sorted by key; each key is pre-rendered as `"key":`.
    Map(Vec<(String, Node)>),
    List(Vec<Node>),
    /// A pre-rendered literal (string, number, boolean).
    Raw(String),
    Null,
    Template(Vec<Piece>),
}

/// A parsed `json_format`.
#[derive(Clone, Debug)]
pub(crate) struct JsonFormat {
    root: Node,
    omit_empty_values: bool,
}

impl JsonFormat {
    pub(crate) fn parse(map: &serde_json::Value, omit_empty_values: bool) -> Result<Self, String> {
        if !map.is_object() {
            return Err("json_format must be a JSON object".to_string());
        }
        Ok(JsonFormat { root: build(map)?, omit_empty_values })
    }

    pub(crate) fn format(&self, info: &StreamInfo) -> String {
        let mut line = self.render(&self.root, info).unwrap_or_else(|| "{}".to_string());
        line.push('\n');
        line
    }

    /// The JSON text for `node`, or `None` when `omit_empty_values` drops it.
    fn render(&self, node: &Node, info: &StreamInfo) -> Option<String> {
        let omit = self.omit_empty_values;
        match node {
            Node::Null => (!omit).then(|| "null".to_string()),
            Node::Raw(raw) => Some(raw.clone()),
            Node::Template(pieces) => match pieces.as_slice() {
                [Piece::Literal(text)] => Some(quote(text)),
                [Piece::Command(op)] => match op.eval(info) {
                    Value::Missing => (!omit).then(|| "null".to_string()),
                    Value::Str(s) => Some(quote(&s)),
                    Value::Uint(n) => Some(number(n as f64)),
                    Value::Int(n) => Some(number(n as f64)),
                },
                _ => {
                    let mut text = String::new();
                    for piece in pieces {
                        match piece {
                            Piece::Literal(l) => text.push_str(l),
                            Piece::Command(op) => match op.eval(info).into_text() {
                                Some(v) => text.push_str(&v),
                                None if omit => {}
                                None => text.push('-'),
                            },
                        }
                    }
                    Some(quote(&text))
                }
            },
            Node::List(items) => {
                let parts: Vec<String> = items.iter().filter_map(|i| self.render(i, info)).collect();
                Some(format!("[{}]", parts.join(",")))
            }
            Node::Map(entries) => {
                let parts: Vec<String> = entries
                    .iter()
                    .filter_map(|(key, value)| self.render(value, info).map(|v| format!("{key}{v}")))
                    .collect();
                if omit && parts.is_empty() {
                    None
                } else {
                    Some(format!("{{{}}}", parts.join(",")))
                }
            }
        }
    }
}

fn build(value: &serde_json::Value) -> Result<Node, String> {
    use serde_json::Value as J;
    Ok(match value {
        J::Null => Node::Null,
        J::Bool(b) => Node::Raw(b.to_string()),
        J::Number(n) => Node::Raw(n.as_f64().map_or_else(|| n.to_string(), number)),
        J::String(s) if s.contains('%') => Node::Template(parse_pieces(s)?),
        J::String(s) => Node::Raw(quote(s)),
        J::Array(items) => Node::List(items.iter().map(build).collect::<Result<_, _>>()?),
        J::Object(map) => {
            let mut entries =
                map.iter().map(|(k, v)| Ok((k.clone(), build(v)?))).collect::<Result<Vec<_>, String>>()?;
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            let entries = entries.into_iter().map(|(k, v)| (format!("{}:", quote(&k)), v)).collect();
            Node::Map(entries)
        }
    })
}

/// A JSON string literal, escaped like nlohmann::json.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A double printed like `fmt::to_string(double)`: shortest round-trip digits, fixed notation
/// for decimal exponents in [-4, 16), otherwise `d.ddde+XX`.
pub(crate) fn number(x: f64) -> String {
    if x.is_nan() {
        return "null".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if x < 0.0 { "-" } else { "" };
    if !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}{rest}e{exp_sign}{:02}", exp.abs());
    }
    if exp < 0 {
        let zeros = "0".repeat((-exp - 1) as usize);
        return format!("{sign}0.{zeros}{digits}");
    }
    let int_len = exp as usize + 1;
    if digits.len() <= int_len {
        format!("{sign}{digits}{}", "0".repeat(int_len - digits.len()))
    } else {
        format!("{sign}{}.{}", &digits[..int_len], &digits[int_len..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log::format::Formatter;
    use serde_json::json;

    fn fmt(map: serde_json::Value, omit: bool, info: &StreamInfo) -> String {
        match Formatter::parse_json(&map, omit) {
            Ok(f) => f.format(info),
            Err(e) => format!("ERR {e}"),
        }
    }

    fn tcp_info() -> StreamInfo {
        StreamInfo {
            bytes_received: 16,
            bytes_sent: 16,
            duration: Some(std::time::Duration::from_millis(73)),
            connection_id: 1,
            upstream_cluster: Some("echo".into()),
            ..StreamInfo::default()
        }
    }

    #[test]
    fn numbers_print_like_fmt() {
        assert_eq!(number(42.0), "42");
        assert_eq!(number(-3.0), "-3");
        assert_eq!(number(1.5), "1.5");
        assert_eq!(number(0.001), "0.001");
        assert_eq!(number(1e20), "1e+20");
        assert_eq!(number(1e-5), "1e-05");
        assert_eq!(number(0.0001), "0.0001");
        assert_eq!(number(1e15), "1000000000000000");
        assert_eq!(number(1e16), "1e+16");
        assert_eq!(number(123.456), "123.456");
        assert_eq!(number(1_795_308_472_306_910_000.0), "1.79530847230691e+18");
        assert_eq!(number(0.0), "0");
    }

    #[test]
    fn strings_are_escaped_like_nlohmann() {
        assert_eq!(quote("a\"b\\c\td/é"), r#""a\"b\\c\td/é""#);
        assert_eq!(quote("café\n"), "\"café\\n\"");
        assert_eq!(quote("\u{1}\u{7f}"), "\"\\u0001\u{7f}\"");
    }

    #[test]
    fn json_format_values_are_typed_and_keys_sorted() {
        let map = json!({
            "protocol": "%PROTOCOL%", "code": "%RESPONSE_CODE%", "bs": "%BYTES_SENT%",
            "dur": "%DURATION%", "cluster": "%UPSTREAM_CLUSTER%", "mixed": "x%BYTES_SENT%y",
            "missing_mixed": "a%REQ(:METHOD)%b", "literal": "plain", "pct": "100%%",
            "num": 42, "flt": 1.5, "t": true, "n": null, "Zed": "%RESPONSE_CODE_DETAILS%",
        });
        assert_eq!(
            fmt(map, false, &tcp_info()),
            "{\"Zed\":null,\"bs\":16,\"cluster\":\"echo\",\"code\":0,\"dur\":73,\"flt\":1.5,\
             \"literal\":\"plain\",\"missing_mixed\":\"a-b\",\"mixed\":\"x16y\",\"n\":null,\
             \"num\":42,\"pct\":\"100%\",\"protocol\":null,\"t\":true}\n"
        );
    }

    #[test]
    fn json_format_nested() {
        let map = json!({
            "nested": {"z": "%DURATION%", "a": {"deeper": "%PROTOCOL%"}},
            "list": ["%BYTES_SENT%", "lit", null, {"q": "%CONNECTION_ID%"}],
            "empty_map": {}, "empty_list": [],
        });
        assert_eq!(
            fmt(map, false, &tcp_info()),
            "{\"empty_list\":[],\"empty_map\":{},\"list\":[16,\"lit\",null,{\"q\":1}],\
             \"nested\":{\"a\":{\"deeper\":null},\"z\":73}}\n"
        );
    }

    #[test]
    fn json_format_omit_empty_values() {
        // The same shape Envoy 1.40 rendered as
        // {"code":0,"emptyval":"","list":["GET"],"lit":"x","mixed":"ab","some":{"m":"GET"}}.
        let map = json!({
            "protocol": "%PROTOCOL%", "code": "%RESPONSE_CODE%", "none": "%REQ(X-NOPE)%",
            "mixed": "a%REQ(X-NOPE)%b", "lit": "x", "zlast": "%REQ(X-NOPE)%",
            "allnone": {"x": "%REQ(X-NOPE)%", "y": {"z": "%REQ(X-NOPE2)%"}},
            "some": {"x": "%REQ(X-NOPE)%", "m": "%REQ(:METHOD)%", "y": {"z": "%REQ(X-NOPE2)%"}},
            "list": ["%REQ(X-NOPE)%", "%REQ(:METHOD)%", {"q": "%REQ(X-NOPE)%"}],
            "emptyval": "%REQ(X-EMPTY)%", "litnull": null, "emptymap": {}, "emptylist": [],
        });
        let info = StreamInfo {
            request_headers: vec![(":method".into(), "GET".into()), ("x-empty".into(), String::new())],
            ..StreamInfo::default()
        };
        assert_eq!(
            fmt(map.clone(), true, &info),
            "{\"code\":0,\"emptylist\":[],\"emptyval\":\"\",\"list\":[\"GET\"],\"lit\":\"x\",\
             \"mixed\":\"ab\",\"some\":{\"m\":\"GET\"}}\n"
        );
        let all_missing = json!({"a": "%REQ(X-NOPE)%", "b": {"c": "%REQ(X-NOPE)%"}});
        assert_eq!(fmt(all_missing, true, &info), "{}\n");
    }

    #[test]
    fn json_format_parse_errors_are_envoys() {
        let bad = json!({"a": {"b": "%FOO%"}});
        assert_eq!(fmt(bad, false, &tcp_info()), "ERR Not supported field in StreamInfo: FOO");
        let lone = json!({"a": "50%"});
        assert_eq!(
            fmt(lone, false, &tcp_info()),
            "ERR Incorrect configuration: 50%. Couldn't find valid command at position 2"
        );
        assert_eq!(fmt(json!("x"), false, &tcp_info()), "ERR json_format must be a JSON object");
    }
}
