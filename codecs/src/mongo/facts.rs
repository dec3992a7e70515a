//! What a proxy counts from a message, read without copying: for a request the command (first
//! key of the body), database (`$db`), collection, filter shape and document count; for a reply
//! `ok`, the error code, the number of documents, the cursor id and the write counts.

use bson::raw::RawElement;
use bson::{RawBsonRef, RawDocument};

use super::op_reply::OpReply;
use super::{OpMsg, OpQuery};

/// The shape of a query's filter, as Envoy classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryType {
    /// No `_id` in the filter: every shard must be asked.
    #[default]
    ScatterGet,
    /// `_id` equal to a scalar.
    PrimaryKey,
    /// `_id` equal to a document or array (`{$in: [...]}` and the like).
    MultiGet,
}

/// Facts of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RequestFacts<'a> {
    /// The command name: the first key of the body, with Envoy's legacy aliases normalised
    /// (`ismaster` → `isMaster`, ...). `None` for a plain legacy query.
    pub command: Option<&'a str>,
    pub db: Option<&'a str>,
    pub collection: Option<&'a str>,
    /// Shape of `find`'s `filter` or of `aggregate`'s first `$match` stage.
    pub query_type: QueryType,
    /// Documents carried: inserted documents, update or delete statements.
    pub documents: u32,
    /// The `comment` (OP_MSG) or `$comment` (OP_QUERY) string, if any.
    pub comment: Option<&'a str>,
    /// `maxTimeMS` / `$maxTimeMS` when an integer.
    pub max_time_ms: i64,
    /// False when the body's elements could not all be read (invalid BSON).
    pub valid: bool,
}

/// Envoy's aliases of old lower-case command spellings.
fn normalise(command: &str) -> &str {
    match command {
        "collstats" => "collStats",
        "dbstats" => "dbStats",
        "findandmodify" => "findAndModify",
        "getlasterror" => "getLastError",
        "ismaster" => "isMaster",
        other => other,
    }
}

fn first_key(doc: &RawDocument) -> Option<(&str, RawBsonRef<'_>)> {
    doc.iter().next().and_then(Result::ok)
}

fn get<'a>(doc: &'a RawDocument, key: &str) -> Option<RawBsonRef<'a>> {
    doc.get(key).ok().flatten()
}

fn get_str<'a>(doc: &'a RawDocument, key: &str) -> Option<&'a str> {
    match get(doc, key)? {
        RawBsonRef::String(s) => Some(s),
        _ => None,
    }
}

fn str_value<'a>(el: &RawElement<'a>) -> Option<&'a str> {
    match el.value().ok()? {
        RawBsonRef::String(s) => Some(s),
        _ => None,
    }
}

fn doc_value<'a>(el: &RawElement<'a>) -> Option<&'a RawDocument> {
    match el.value().ok()? {
        RawBsonRef::Document(d) => Some(d),
        _ => None,
    }
}

fn as_i64(v: RawBsonRef<'_>) -> Option<i64> {
    match v {
        RawBsonRef::Int32(i) => Some(i64::from(i)),
        RawBsonRef::Int64(i) => Some(i),
        RawBsonRef::Double(d) if d.is_finite() => Some(d as i64),
        _ => None,
    }
}

/// Number of elements of an array value (0 for anything else).
fn array_len(v: Option<RawBsonRef<'_>>) -> u32 {
    match v {
        Some(RawBsonRef::Array(a)) => match RawDocument::from_bytes(a.as_bytes()) {
            Ok(d) => d.iter_elements().take_while(Result::is_ok).count() as u32,
            Err(_) => 0,
        },
        _ => 0,
    }
}

/// Envoy: `_id` absent → scatter get; `_id` a document or array → multi get; else primary key.
pub fn query_type(filter: &RawDocument) -> QueryType {
    match get(filter, "_id") {
        None => QueryType::ScatterGet,
        Some(RawBsonRef::Document(_) | RawBsonRef::Array(_)) => QueryType::MultiGet,
        Some(_) => QueryType::PrimaryKey,
    }
}

impl<'a> RequestFacts<'a> {
    /// Facts of an OP_MSG request, read in one pass over the body's top-level elements
    /// (values are only decoded for the keys that matter).
    pub fn from_msg(m: &OpMsg<'a>) -> RequestFacts<'a> {
        let mut f = RequestFacts { valid: true, ..RequestFacts::default() };
        let (mut collection_field, mut filter, mut pipeline, mut statements) = (None, None, None, None);
        for (i, el) in m.body.iter_elements().enumerate() {
            let Ok(el) = el else {
                f.valid = false;
                break;
            };
            let key = el.key();
            if i == 0 {
                f.command = Some(normalise(key));
                if let Ok(RawBsonRef::String(s)) = el.value() {
                    f.collection = Some(s);
                }
                continue;
            }
            match key {
                "$db" => f.db = str_value(&el),
                "collection" => collection_field = str_value(&el),
                "comment" => f.comment = str_value(&el),
                "maxTimeMS" => f.max_time_ms = el.value().ok().and_then(as_i64).unwrap_or(0),
                "filter" => filter = doc_value(&el),
                "pipeline" => pipeline = el.value().ok(),
                "documents" | "updates" | "deletes" => statements = el.value().ok(),
                _ => {}
            }
        }
        if f.collection.is_none() {
            f.collection = collection_field;
        }
        match f.command.unwrap_or("") {
            "find" => f.query_type = filter.map_or(QueryType::ScatterGet, query_type),
            "aggregate" => {
                // The first stage, when it is a `$match`, is the filter.
                if let Some(RawBsonRef::Array(p)) = pipeline {
                    if let Ok(Some(RawBsonRef::Document(stage))) = p.get(0) {
                        if let Some(RawBsonRef::Document(m)) = get(stage, "$match") {
                            f.query_type = query_type(m);
                        }
                    }
                }
            }
            c @ ("insert" | "update" | "delete") => {
                let seq = match c {
                    "insert" => "documents",
                    "update" => "updates",
                    _ => "deletes",
                };
                // Drivers put the statements in a kind 1 section; the body array is the
                // other allowed form.
                f.documents = match m.sequence(seq) {
                    Some(s) => s.count,
                    None => array_len(statements),
                };
            }
            _ => {}
        }
        f
    }

    /// Facts of an OP_QUERY: a command when the namespace is `<db>.$cmd` (the command document
    /// may be wrapped in `$query`), else a plain query on `<db>.<collection>`.
    pub fn from_query(q: &OpQuery<'a>) -> RequestFacts<'a> {
        let (db, coll) = q.full_collection_name.split_once('.').unwrap_or((q.full_collection_name, ""));
        let valid = q.query.iter_elements().all(|e| e.is_ok());
        let mut f = RequestFacts { db: Some(db), valid, ..RequestFacts::default() };
        let wrapped = match get(q.query, "$query") {
            Some(RawBsonRef::Document(d)) => Some(d),
            _ => None,
        };
        if q.full_collection_name.contains("$cmd") {
            let doc = wrapped.unwrap_or(q.query);
            if let Some((name, value)) = first_key(doc) {
                let command = normalise(name);
                if command == "find" {
                    // Envoy: the 3.2 `find` command is a query on its collection.
                    if let RawBsonRef::String(s) = value {
                        f.collection = Some(s);
                    }
                    f.comment = get_str(doc, "comment");
                    if let Some(RawBsonRef::Document(filter)) = get(doc, "filter") {
                        f.query_type = query_type(filter);
                    }
                } else {
                    f.command = Some(command);
                }
            }
            return f;
        }
        f.collection = Some(coll);
        f.comment = get_str(q.query, "$comment");
        f.max_time_ms = get(q.query, "$maxTimeMS").or_else(|| get(q.query, "maxTimeMS")).and_then(as_i64).unwrap_or(0);
        f.query_type = query_type(q.query);
        if f.query_type == QueryType::ScatterGet {
            if let Some(w) = wrapped {
                f.query_type = query_type(w);
            }
        }
        f
    }
}

/// Facts of one reply.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReplyFacts {
    /// `ok: 1` (OP_REPLY without a command document: no query failure flag).
    pub ok: bool,
    pub code: Option<i32>,
    /// Documents returned: a cursor's batch, else the reply documents (1 for a command reply).
    pub documents: u32,
    /// Bytes of the reply's documents (Envoy's `reply_size`).
    pub size: u64,
    pub cursor_id: i64,
    /// A write command's `n` (documents inserted, matched or deleted).
    pub n: Option<i64>,
    pub n_modified: Option<i64>,
    /// Entries in `writeErrors`.
    pub write_errors: u32,
    /// False when the reply document's elements could not all be read (invalid BSON).
    pub valid: bool,
}

fn ok_value(v: Option<RawBsonRef<'_>>) -> bool {
    match v {
        Some(RawBsonRef::Double(d)) => d == 1.0,
        Some(RawBsonRef::Int32(i)) => i == 1,
        Some(RawBsonRef::Int64(i)) => i == 1,
        Some(RawBsonRef::Boolean(b)) => b,
        _ => false,
    }
}

impl ReplyFacts {
    /// Facts of a command reply document (the OP_MSG body, or OP_REPLY's first document), in
    /// one pass over its top-level elements.
    fn from_command_reply(doc: &RawDocument) -> ReplyFacts {
        let mut f =
            ReplyFacts { documents: 1, size: doc.as_bytes().len() as u64, valid: true, ..ReplyFacts::default() };
        for el in doc.iter_elements() {
            let Ok(el) = el else {
                f.valid = false;
                break;
            };
            match el.key() {
                "ok" => f.ok = ok_value(el.value().ok()),
                "code" => f.code = el.value().ok().and_then(as_i64).map(|c| c as i32),
                "n" => f.n = el.value().ok().and_then(as_i64),
                "nModified" => f.n_modified = el.value().ok().and_then(as_i64),
                "writeErrors" => f.write_errors = array_len(el.value().ok()),
                "cursor" => {
                    let Some(c) = doc_value(&el) else { continue };
                    f.documents = 0;
                    for el in c.iter_elements() {
                        let Ok(el) = el else { break };
                        match el.key() {
                            "id" => f.cursor_id = el.value().ok().and_then(as_i64).unwrap_or(0),
                            "firstBatch" | "nextBatch" => f.documents = array_len(el.value().ok()),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        f
    }

    pub fn from_msg(m: &OpMsg<'_>) -> ReplyFacts {
        let mut f = ReplyFacts::from_command_reply(m.body);
        // A reply may carry its batch in a kind 1 section.
        if m.sequence_documents > 0 {
            f.documents = m.sequence_documents;
        }
        f
    }

    /// An OP_REPLY: `command` when it answers a command (its first document is the result).
    pub fn from_reply(r: &OpReply<'_>, command: bool) -> ReplyFacts {
        let mut f = match (command, r.first()) {
            (true, Some(doc)) => ReplyFacts::from_command_reply(doc),
            _ => ReplyFacts { ok: r.flags & super::op_reply::QUERY_FAILURE == 0, valid: true, ..ReplyFacts::default() },
        };
        // Envoy: the reply's document count and the sum of their sizes.
        f.documents = r.document_count;
        f.size = r.documents.len() as u64;
        if f.cursor_id == 0 {
            f.cursor_id = r.cursor_id;
        }
        f
    }
}
