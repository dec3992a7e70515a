//! `envoy.filters.network.mongo_proxy`: an observer placed before tcp_proxy that decodes both
//! directions of a MongoDB connection (OP_MSG first, with the legacy opcodes Envoy knows) and
//! counts `mongo.<stat_prefix>.*` (see `stats`). Requests and replies are matched by
//! requestID/responseTo, so pipelined requests, `moreToCome` requests (no reply) and exhaust
//! replies (`moreToCome` replies, each answering the previous one) all time correctly.
//!
//! Fault injection (`delay`, Envoy's `tryInjectDelay`): a request message, when the dice say
//! so, asks the pump to hold the downstream bytes of the read it arrived in (and what follows)
//! for the delay; while one delay runs no other is started, so `delays_injected` counts delays,
//! not delayed requests. Envoy does this for each legacy request it decodes; Legate also for
//! OP_MSG (acknowledged or `moreToCome`), which Envoy cannot decode.
//!
//! The close hook tells who closed the connection; requests still waiting for their replies
//! then count `cx_destroy_{remote,local}_with_active_rq` as in Envoy's `onEvent` (Envoy tracks
//! OP_QUERY only; Legate every request that expects a reply).
//!
//! Drain close (Envoy's, in `decodeReply`): while the server drains (SIGTERM,
//! `/quitquitquit`), a reply that leaves no request outstanding is forwarded and then the
//! connection is closed (`cx_drain_close`), so clients move to another proxy between requests
//! instead of holding the drain open; runtime `mongo.drain_close_enabled` (percent, 100).
//!
//! Bad input never stops the bytes: a message that cannot be read is counted in
//! `decoding_error` and skipped; a stream that can no longer be framed (a length outside
//! 16..=48,000,000) is counted and no longer decoded, while tcp_proxy keeps forwarding it.

mod framer;
mod log;
pub mod stats;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use legate_codecs::mongo::facts::{QueryType, ReplyFacts, RequestFacts};
use legate_codecs::mongo::{op_query, op_reply, Header, Message, OpCompressed, OpMsg};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use self::framer::Framer;
use self::log::MongoLog;
use self::stats::{Caps, CmdStats, CollStats, QueryStats, Registry};
use crate::config::http_filters::FractionalPercent;
use crate::config::mongo_proxy::{self as cfg, MongoProxyConfig};
use crate::filter::http::filters::percent;
use crate::filter::{CloseOrigin, ConnContext, FilterAction, Observer, ObserverFactory};
use crate::runtime::Runtime;
use crate::stats::Store;

/// Requests a connection remembers while waiting for their replies; past it the oldest is
/// forgotten (a client pipelining this deep without reading is not timing anything).
const MAX_PENDING: usize = 1024;

/// The built filter: stats registry and access log, shared by its connections.
pub struct MongoProxy {
    reg: Registry,
    log: Option<MongoLog>,
    /// The delay and how often, after runtime overrides; `None`: no fault injection.
    delay: Option<(Duration, FractionalPercent)>,
    /// How often a drain closes a connection after a reply (`mongo.drain_close_enabled`).
    drain_close: FractionalPercent,
}

impl MongoProxy {
    pub fn new(c: &MongoProxyConfig, store: &Store, runtime: &Runtime) -> Result<MongoProxy, String> {
        let cap = |key, default| runtime.get_u64(key).unwrap_or(default) as usize;
        let caps = Caps {
            commands: cap(cfg::RUNTIME_MAX_COMMANDS, cfg::DEFAULT_MAX_COMMANDS),
            collections: cap(cfg::RUNTIME_MAX_COLLECTIONS, cfg::DEFAULT_MAX_COLLECTIONS),
            callsites: cap(cfg::RUNTIME_MAX_CALLSITES, cfg::DEFAULT_MAX_CALLSITES),
        };
        let log = match &c.access_log {
            Some(p) => Some(MongoLog::open(p).map_err(|e| format!("mongo_proxy access_log '{p}': {e}"))?),
            None => None,
        };
        // Envoy's `delayDuration`: runtime overrides the percentage and the duration; a delay
        // with no fixed duration (header_delay) or of 0 ms never applies.
        let delay = c.delay.as_ref().and_then(|d| {
            let fixed = d.fixed?;
            let pct = percent::percent_or(runtime, Some(cfg::RUNTIME_DELAY_PERCENT), d.percentage);
            let ms = runtime.get_u64(cfg::RUNTIME_DELAY_DURATION_MS).unwrap_or(fixed.as_millis() as u64);
            (ms > 0 && pct.numerator > 0).then(|| (Duration::from_millis(ms), pct))
        });
        let drain_close = percent::percent_or(
            runtime,
            Some(cfg::RUNTIME_DRAIN_CLOSE_ENABLED),
            FractionalPercent { numerator: 100, denominator: 100 },
        );
        let reg = Registry::new(store, &c.stat_prefix, c.commands.as_deref(), caps);
        Ok(MongoProxy { reg, log, delay, drain_close })
    }
}

impl ObserverFactory for Arc<MongoProxy> {
    fn create(&self, cx: &ConnContext) -> Box<dyn Observer> {
        let mut o = MongoObserver::new(self.clone());
        o.drain = Some(cx.drain.clone());
        Box::new(o)
    }
}

/// What a reply to a request charges.
struct Pending {
    request_id: i32,
    start: Instant,
    cmd: Option<Arc<CmdStats>>,
    query: Option<Arc<CollStats>>,
    callsite: Option<Arc<QueryStats>>,
    write: Option<(Write, Arc<CollStats>)>,
    /// An OP_QUERY (Envoy's `op_query_active`), else an OP_MSG.
    legacy: bool,
}

#[derive(Clone, Copy)]
enum Write {
    Insert,
    Update,
    Delete,
}

struct MongoObserver {
    shared: Arc<MongoProxy>,
    down: Framer,
    up: Framer,
    pending: VecDeque<Pending>,
    upstream: Option<SocketAddr>,
    dead: bool,
    /// A delay asked of the pump for the bytes being decoded now.
    delay_now: Option<Duration>,
    /// When the running delay ends (no other starts before).
    delayed_until: Option<Instant>,
    /// Cancelled when the server starts draining.
    drain: Option<CancellationToken>,
    /// A reply was decoded in the bytes being read now.
    replied: bool,
}

/// `{"callingFunction": "..."}` in a query comment (Envoy's call-site convention).
fn calling_function(comment: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(comment).ok()?;
    v.get("callingFunction")?.as_str().map(str::to_string)
}

impl MongoObserver {
    fn new(shared: Arc<MongoProxy>) -> MongoObserver {
        MongoObserver {
            shared,
            down: Framer::default(),
            up: Framer::default(),
            pending: VecDeque::new(),
            upstream: None,
            dead: false,
            delay_now: None,
            delayed_until: None,
            drain: None,
            replied: false,
        }
    }

    /// Envoy's drain close: after a reply, with nothing outstanding, while draining.
    fn drain_close_now(&mut self) -> bool {
        if !std::mem::take(&mut self.replied) || !self.pending.is_empty() {
            return false;
        }
        if !self.drain.as_ref().is_some_and(CancellationToken::is_cancelled) || !percent::roll(self.shared.drain_close)
        {
            return false;
        }
        tracing::debug!(target: "mongo", "drain closing mongo connection");
        self.stats().cx_drain_close.inc();
        true
    }

    /// Envoy's `tryInjectDelay`, once per decoded request message.
    fn try_delay(&mut self) {
        let Some((d, pct)) = self.shared.delay else { return };
        let now = Instant::now();
        if self.delay_now.is_some() || self.delayed_until.is_some_and(|t| now < t) {
            return;
        }
        if percent::roll(pct) {
            self.delay_now = Some(d);
            self.delayed_until = Some(now + d);
            self.stats().delays_injected.inc();
        }
    }

    fn stats(&self) -> &stats::MongoStats {
        &self.shared.reg.fixed
    }

    /// Writes an access-log line; `message` is only built when a log is configured.
    fn log(&self, message: impl FnOnce() -> serde_json::Value) {
        if let Some(l) = &self.shared.log {
            l.write(&message(), self.upstream);
        }
    }

    fn give_up(&mut self) {
        self.stats().decoding_error.inc();
        self.dead = true;
        self.down.clear();
        self.up.clear();
        self.clear_pending();
    }

    fn clear_pending(&mut self) {
        while let Some(p) = self.pending.pop_front() {
            self.untrack(&p);
        }
    }

    fn untrack(&self, p: &Pending) {
        if p.legacy {
            self.stats().op_query_active.dec();
        } else {
            self.stats().op_msg_active.dec();
        }
    }

    fn track(&mut self, p: Pending) {
        if self.pending.len() >= MAX_PENDING {
            if let Some(old) = self.pending.pop_front() {
                self.untrack(&old);
            }
        }
        if p.legacy {
            self.stats().op_query_active.inc();
        } else {
            self.stats().op_msg_active.inc();
        }
        self.pending.push_back(p);
    }

    /// Collection query stats (`find`, `aggregate`, legacy queries) and their call site.
    fn charge_query(&self, f: &RequestFacts) -> (Option<Arc<CollStats>>, Option<Arc<QueryStats>>) {
        let Some(coll) = f.collection.filter(|c| !c.is_empty()) else { return (None, None) };
        let Some(cs) = self.shared.reg.collection(coll) else { return (None, None) };
        charge_query_type(cs.query(), f.query_type);
        let site = f.comment.and_then(calling_function).and_then(|fname| self.shared.reg.callsite(coll, &fname));
        if let Some(s) = &site {
            charge_query_type(s, f.query_type);
        }
        (Some(cs), site)
    }

    fn on_request(&mut self, h: &Header, bytes: &[u8]) {
        let msg = match Message::parse(h, bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(target: "mongo", "mongo decoding error: {e}");
                self.stats().decoding_error.inc();
                return;
            }
        };
        if !matches!(msg, Message::Compressed(_) | Message::Reply(_) | Message::Unknown { .. })
            || matches!(msg, Message::Unknown { op_code: 2010, .. })
        {
            self.try_delay();
        }
        match msg {
            Message::Msg(m) => self.on_msg_request(h, &m),
            Message::Query(q) => self.on_query(h, &q),
            Message::Insert(i) => {
                self.stats().op_insert.inc();
                let coll = i.full_collection_name.split_once('.').map_or("", |(_, c)| c);
                if let Some(cs) = self.shared.reg.collection(coll) {
                    cs.writes().docs_inserted.add(u64::from(i.document_count));
                }
                self.log(|| {
                    json!({"opcode": "OP_INSERT", "id": h.request_id, "response_to": h.response_to,
                    "flags": format!("{:#x}", i.flags), "ns": i.full_collection_name, "documents": i.document_count})
                });
            }
            Message::GetMore(g) => {
                self.stats().op_get_more.inc();
                self.log(|| {
                    json!({"opcode": "OP_GET_MORE", "id": h.request_id, "response_to": h.response_to,
                    "ns": g.full_collection_name, "return": g.number_to_return, "cursor": g.cursor_id})
                });
            }
            Message::KillCursors(k) => {
                self.stats().op_kill_cursors.inc();
                self.log(|| {
                    json!({"opcode": "OP_KILL_CURSORS", "id": h.request_id, "response_to": h.response_to,
                    "num_cursors": k.number_of_cursor_ids})
                });
            }
            Message::Update(_) => self.stats().op_update.inc(),
            Message::Delete(_) => self.stats().op_delete.inc(),
            Message::Compressed(c) => {
                self.stats().op_compressed.inc();
                if let Some((orig, bytes)) = self.decompress(h, &c) {
                    self.on_request(&orig, &bytes);
                }
            }
            Message::Unknown { op_code: 2010, .. } => self.stats().op_command.inc(),
            Message::Reply(_) | Message::Unknown { .. } => self.stats().op_unknown.inc(),
        }
    }

    /// The original message inside an OP_COMPRESSED (snappy, zlib, zstd, noop); `None` for a
    /// compressor id the spec does not define (counted only) or a body that does not
    /// decompress (counted as `decoding_error`).
    fn decompress(&self, h: &Header, c: &OpCompressed) -> Option<(Header, Vec<u8>)> {
        let mut out = Vec::new();
        match c.decompress(h, &mut out) {
            Ok(Some(orig)) => Some((orig, out)),
            Ok(None) => None,
            Err(e) => {
                tracing::debug!(target: "mongo", "mongo decoding error: {e}");
                self.stats().decoding_error.inc();
                None
            }
        }
    }

    fn on_msg_request(&mut self, h: &Header, m: &OpMsg) {
        let s = self.stats();
        s.op_msg.inc();
        if m.more_to_come() {
            s.op_msg_more_to_come.inc();
        }
        if m.exhaust_allowed() {
            s.op_msg_exhaust_allowed.inc();
        }
        let f = RequestFacts::from_msg(m);
        if !f.valid {
            s.decoding_error.inc();
            return;
        }
        let name = f.command.unwrap_or("");
        let cmd = self.shared.reg.command(name);
        cmd.total.inc();
        let (query, callsite) = match name {
            "find" | "aggregate" => self.charge_query(&f),
            _ => (None, None),
        };
        let write_kind = match name {
            "insert" => Some(Write::Insert),
            "update" => Some(Write::Update),
            "delete" => Some(Write::Delete),
            _ => None,
        };
        let write = write_kind.and_then(|w| Some((w, self.shared.reg.collection(f.collection?)?)));
        self.log(|| {
            json!({"opcode": "OP_MSG", "id": h.request_id, "response_to": h.response_to,
            "flags": format!("{:#x}", m.flags), "command": name, "db": f.db, "collection": f.collection,
            "documents": f.documents})
        });
        if m.more_to_come() {
            // Unacknowledged: no reply will say how many, so the request's count stands.
            if let Some((w, cs)) = &write {
                add_writes(cs, *w, i64::from(f.documents));
            }
            return;
        }
        self.track(Pending {
            request_id: h.request_id,
            start: Instant::now(),
            cmd: Some(cmd),
            query,
            callsite,
            write,
            legacy: false,
        });
    }

    fn on_query(&mut self, h: &Header, q: &legate_codecs::mongo::OpQuery) {
        let s = self.stats();
        s.op_query.inc();
        for (bit, c) in [
            (op_query::TAILABLE_CURSOR, &s.op_query_tailable_cursor),
            (op_query::NO_CURSOR_TIMEOUT, &s.op_query_no_cursor_timeout),
            (op_query::AWAIT_DATA, &s.op_query_await_data),
            (op_query::EXHAUST, &s.op_query_exhaust),
        ] {
            if q.flags & bit != 0 {
                c.inc();
            }
        }
        let f = RequestFacts::from_query(q);
        if !f.valid {
            s.decoding_error.inc();
            return;
        }
        self.log(|| {
            json!({"opcode": "OP_QUERY", "id": h.request_id, "response_to": h.response_to,
            "flags": format!("{:#x}", q.flags), "ns": q.full_collection_name, "skip": q.number_to_skip,
            "return": q.number_to_return, "command": f.command})
        });
        let mut p = Pending {
            request_id: h.request_id,
            start: Instant::now(),
            cmd: None,
            query: None,
            callsite: None,
            write: None,
            legacy: true,
        };
        if let Some(name) = f.command {
            let cmd = self.shared.reg.command(name);
            cmd.total.inc();
            p.cmd = Some(cmd);
        } else {
            // Envoy: a plain query (or the 3.2 `find` command) charges its collection.
            (p.query, p.callsite) = self.charge_query(&f);
            let s = self.stats();
            if f.max_time_ms < 1 {
                s.op_query_no_max_time.inc();
            }
            match f.query_type {
                QueryType::ScatterGet => s.op_query_scatter_get.inc(),
                QueryType::MultiGet => s.op_query_multi_get.inc(),
                QueryType::PrimaryKey => {}
            }
        }
        self.track(p);
    }

    fn on_reply(&mut self, h: &Header, bytes: &[u8]) {
        let msg = match Message::parse(h, bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(target: "mongo", "mongo decoding error: {e}");
                self.stats().decoding_error.inc();
                return;
            }
        };
        let (facts, more) = match msg {
            Message::Msg(m) => {
                let s = self.stats();
                s.op_msg_reply.inc();
                let f = ReplyFacts::from_msg(&m);
                if m.more_to_come() {
                    s.op_msg_reply_more_to_come.inc();
                }
                if !f.ok {
                    s.op_msg_reply_error.inc();
                }
                self.log(|| {
                    json!({"opcode": "OP_MSG", "id": h.request_id, "response_to": h.response_to,
                    "flags": format!("{:#x}", m.flags), "ok": u8::from(f.ok), "code": f.code,
                    "documents": f.documents, "cursor_id": f.cursor_id})
                });
                (f, m.more_to_come())
            }
            Message::Reply(r) => {
                let s = self.stats();
                s.op_reply.inc();
                if r.cursor_id != 0 {
                    s.op_reply_valid_cursor.inc();
                }
                if r.flags & op_reply::CURSOR_NOT_FOUND != 0 {
                    s.op_reply_cursor_not_found.inc();
                }
                if r.flags & op_reply::QUERY_FAILURE != 0 {
                    s.op_reply_query_failure.inc();
                }
                let command = self.pending.iter().any(|p| p.request_id == h.response_to && p.cmd.is_some());
                let f = ReplyFacts::from_reply(&r, command);
                self.log(|| {
                    json!({"opcode": "OP_REPLY", "id": h.request_id, "response_to": h.response_to,
                    "flags": format!("{:#x}", r.flags), "cursor": r.cursor_id, "from": r.starting_from,
                    "returned": r.number_returned})
                });
                (f, false)
            }
            Message::Compressed(c) => {
                self.stats().op_compressed.inc();
                if let Some((orig, bytes)) = self.decompress(h, &c) {
                    self.on_reply(&orig, &bytes);
                }
                return;
            }
            Message::Unknown { op_code: 2011, .. } => {
                self.stats().op_command_reply.inc();
                return;
            }
            _ => {
                self.stats().op_unknown.inc();
                return;
            }
        };
        if !facts.valid {
            self.stats().decoding_error.inc();
            return;
        }
        self.replied = true;
        let Some(i) = self.pending.iter().position(|p| p.request_id == h.response_to) else {
            // A reply to a request this connection never sent.
            self.stats().decoding_error.inc();
            return;
        };
        let p = &mut self.pending[i];
        let ms = p.start.elapsed().as_millis() as u64;
        if let Some(c) = &p.cmd {
            c.reply_num_docs.record(u64::from(facts.documents));
            c.reply_size.record(facts.size);
            c.reply_time_ms.record(ms);
            if !facts.ok {
                c.error.inc();
            }
            c.write_error.add(u64::from(facts.write_errors));
        }
        for q in p.query.as_ref().map(|c| c.query()).into_iter().chain(p.callsite.as_deref()) {
            q.reply_num_docs.record(u64::from(facts.documents));
            q.reply_size.record(facts.size);
            q.reply_time_ms.record(ms);
        }
        if let Some((w, cs)) = &p.write {
            if facts.ok {
                add_writes(cs, *w, facts.n.unwrap_or(0));
            }
        }
        if more {
            // Exhaust: the next reply answers this one.
            p.request_id = h.request_id;
        } else if let Some(p) = self.pending.remove(i) {
            self.untrack(&p);
        }
    }
}

fn charge_query_type(q: &QueryStats, t: QueryType) {
    q.total.inc();
    match t {
        QueryType::ScatterGet => q.scatter_get.inc(),
        QueryType::MultiGet => q.multi_get.inc(),
        QueryType::PrimaryKey => {}
    }
}

fn add_writes(cs: &CollStats, w: Write, n: i64) {
    let n = u64::try_from(n).unwrap_or(0);
    let s = cs.writes();
    match w {
        Write::Insert => s.docs_inserted.add(n),
        Write::Update => s.docs_updated.add(n),
        Write::Delete => s.docs_deleted.add(n),
    }
}

impl Observer for MongoObserver {
    fn on_downstream_data(&mut self, data: &[u8]) -> FilterAction {
        if !self.dead {
            let mut fr = std::mem::take(&mut self.down);
            let r = fr.feed(data, &mut |h, b| self.on_request(h, b));
            self.down = fr;
            if let Err(e) = r {
                tracing::debug!(target: "mongo", "mongo decoding error: {e}; no longer decoding this connection");
                self.give_up();
            }
        }
        match self.delay_now.take() {
            Some(d) => FilterAction::Delay(d),
            None => FilterAction::Continue,
        }
    }

    fn on_upstream_data(&mut self, data: &[u8]) -> FilterAction {
        if !self.dead {
            let mut fr = std::mem::take(&mut self.up);
            let r = fr.feed(data, &mut |h, b| self.on_reply(h, b));
            self.up = fr;
            if let Err(e) = r {
                tracing::debug!(target: "mongo", "mongo decoding error: {e}; no longer decoding this connection");
                self.give_up();
            }
        }
        if self.drain_close_now() {
            FilterAction::FlushAndClose
        } else {
            FilterAction::Continue
        }
    }

    fn on_upstream_host(&mut self, addr: SocketAddr) {
        self.upstream = Some(addr);
    }

    fn on_close(&mut self, origin: CloseOrigin) {
        if !self.pending.is_empty() {
            match origin {
                CloseOrigin::Remote => self.stats().cx_destroy_remote_with_active_rq.inc(),
                CloseOrigin::Local => self.stats().cx_destroy_local_with_active_rq.inc(),
            }
        }
        self.clear_pending();
    }
}
