//! Reading a config document (YAML or JSON) into a `serde_json::Value` plus an index from YAML
//! path (`static_resources.listeners[0].name`) to line and column, so later passes can say
//! exactly where a problem is. YAML goes through serde-saphyr (merge keys honoured); positions
//! come from the same parser's event stream.

use std::collections::HashMap;

use serde_json::Value;
use serde_saphyr::granit_parser::{Event, Parser};

/// Line (1-based) and column (1-based) of a node in its source document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// YAML path → position of the key (for mapping entries) or the item (for sequence entries).
#[derive(Debug, Default, Clone)]
pub struct Positions {
    map: HashMap<String, Pos>,
}

impl Positions {
    pub fn get(&self, path: &str) -> Option<Pos> {
        self.map.get(path).copied()
    }
}

/// A document that failed to parse at all.
#[derive(Debug, Clone)]
pub struct ParseFailure {
    pub message: String,
    pub pos: Option<Pos>,
}

/// Parses YAML (a superset of JSON) or, when `json` is set, strict JSON.
pub fn parse(text: &str, json: bool) -> Result<(Value, Positions), ParseFailure> {
    let value: Value = if json {
        serde_json::from_str(text)
            .map_err(|e| ParseFailure { message: e.to_string(), pos: Some(Pos { line: e.line(), col: e.column() }) })?
    } else {
        serde_saphyr::from_str::<Value>(text)
            .map_err(|e| ParseFailure { message: first_line(&e.to_string()), pos: None })?
    };
    // An empty document (or a bare scalar) is not a bootstrap; Envoy rejects it too.
    if !value.is_object() {
        return Err(ParseFailure {
            message: format!("the document must be a mapping (a Bootstrap), found {}", super::decode::kind(&value)),
            pos: None,
        });
    }
    let positions = if json { Positions::default() } else { index_positions(text) };
    Ok((value, positions))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).trim().to_string()
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

/// Walks the parser's events and records where each mapping key and sequence item starts.
fn index_positions(text: &str) -> Positions {
    let mut out = Positions::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut parser = Parser::new_from_str(text);
    while let Some(Ok((event, span))) = parser.next_event() {
        let pos = Pos { line: span.start.line(), col: span.start.col() + 1 };
        match event {
            Event::Scalar(s, ..) => {
                if let Some(Frame::Map { path, key }) = stack.last_mut() {
                    if key.is_none() {
                        let child = join(path, &s);
                        out.map.entry(child).or_insert(pos);
                        *key = Some(s.into_owned());
                        continue;
                    }
                }
                value_done(&mut stack, &mut out, pos);
            }
            Event::Alias(_) => value_done(&mut stack, &mut out, pos),
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = child_path(&stack);
                if let Some(Frame::Seq { .. }) = stack.last() {
                    out.map.entry(path.clone()).or_insert(pos);
                }
                if matches!(event, Event::MappingStart(..)) {
                    stack.push(Frame::Map { path, key: None });
                } else {
                    stack.push(Frame::Seq { path, index: 0 });
                }
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                advance(&mut stack);
            }
            Event::StreamEnd => break,
            _ => {}
        }
    }
    out
}

fn value_done(stack: &mut [Frame], out: &mut Positions, pos: Pos) {
    if let Some(Frame::Seq { .. }) = stack.last() {
        out.map.entry(child_path(stack)).or_insert(pos);
    }
    advance(stack);
}

fn advance(stack: &mut [Frame]) {
    match stack.last_mut() {
        Some(Frame::Map { key, .. }) => *key = None,
        Some(Frame::Seq { index, .. }) => *index += 1,
        None => {}
    }
}

fn child_path(stack: &[Frame]) -> String {
    match stack.last() {
        Some(Frame::Map { path, key: Some(k) }) => join(path, k),
        Some(Frame::Map { path, key: None }) => path.clone(),
        Some(Frame::Seq { path, index }) => format!("{path}[{index}]"),
        None => String::new(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_indexed_by_yaml_path() {
        let text = "a:\n  b: 1\n  list:\n  - x: 1\n  - y: 2\nc: [1, 2]\n";
        let (v, p) = parse(text, false).expect("parses");
        assert_eq!(v["a"]["list"][1]["y"], 2);
        assert_eq!(p.get("a.b"), Some(Pos { line: 2, col: 3 }));
        assert_eq!(p.get("a.list[1].y"), Some(Pos { line: 5, col: 5 }));
        assert_eq!(p.get("a.list[1]").map(|p| p.line), Some(5));
        assert_eq!(p.get("c").map(|p| p.line), Some(6));
    }

    #[test]
    fn merge_keys_are_honoured() {
        let text = "base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n";
        let (v, _) = parse(text, false).expect("parses");
        assert_eq!(v["other"]["x"], 1);
        assert_eq!(v["other"]["y"], 3);
    }

    #[test]
    fn malformed_yaml_is_a_parse_failure() {
        assert!(parse("a: [1, 2\nb: c", false).is_err());
        assert!(parse("{\"a\": }", true).is_err());
    }
}
