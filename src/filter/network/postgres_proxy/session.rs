//! One connection's observer: a framer per direction, and the counting.
//!
//! SSL/GSS without termination (Envoy's behaviour without `terminate_ssl`, improved): the
//! SSLRequest (or GSSENCRequest) passes to the server; the filter then reads the server's
//! one-byte answer. `S` (or `G`) means the rest of the connection is encrypted: the session
//! counts in `sessions` and `sessions_encrypted` and decoding stops in both directions. `N`
//! means the client goes on in clear (or gives up), and decoding goes on with the next startup
//! packet. (Envoy counts an encrypted session at the SSLRequest, whatever the server answers.)
//!
//! With `terminate_ssl` / `downstream_ssl` / `upstream_ssl` the SSL negotiation happens before
//! this observer sees a byte (`starttls.rs`, before the pump starts), so it starts on the clear
//! StartupMessage as for any plain session.

use std::sync::Arc;

use legate_codecs::postgres::backend::{self, Authentication, BackendMessage, CommandKind, Severity};
use legate_codecs::postgres::framer::{Body, Flow, Framer, Handler, Kind, Mode, Msg};
use legate_codecs::postgres::frontend::{self, FrontendMessage};
use legate_codecs::postgres::startup::{self, StartupPacket};

use super::latency::LatencyTracker;
use super::tx::{Outcome, TxTracker};
use super::{replies, sql, Shared};
use crate::filter::{CloseOrigin, FilterAction, Observer};

/// Most bytes of a wanted frontend body (Query/Parse SQL for the parser) gathered across reads.
const MAX_KEEP_FRONTEND: usize = 1024 * 1024;
/// Most bytes of a wanted backend body (CommandComplete, ErrorResponse, ...) gathered.
const MAX_KEEP_BACKEND: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Startup,
    Session,
    /// A CancelRequest connection: no session.
    Cancel,
}

struct State {
    shared: Arc<Shared>,
    phase: Phase,
    /// (database, user) from the StartupMessage, counted when authentication succeeds.
    names: Option<(Vec<u8>, Vec<u8>)>,
    tx: TxTracker,
    latency: LatencyTracker,
    copy_in: bool,
    /// The client sent Terminate.
    terminated: bool,
    /// The client closed its side.
    client_ended: bool,
    /// The server sent a FATAL or PANIC error (it closes next).
    fatal_seen: bool,
    /// The client asked for encryption: the server's next byte is the answer.
    expect_answer: bool,
    encrypted: bool,
    /// A local reply the frontend side asks for before closing.
    failure: Option<&'static [u8]>,
    protocol_error_counted: bool,
    /// Messages seen in the current read, added to `messages*` once per read (one atomic add
    /// per counter per read instead of two per message).
    seen_frontend: u64,
    seen_backend: u64,
}

impl State {
    /// Adds the messages counted locally to the shared counters.
    fn flush_counts(&mut self) {
        let (f, b) = (std::mem::take(&mut self.seen_frontend), std::mem::take(&mut self.seen_backend));
        if f + b == 0 {
            return;
        }
        let s = &self.shared.stats;
        s.messages.add(f + b);
        if f > 0 {
            s.messages_frontend.add(f);
        }
        if b > 0 {
            s.messages_backend.add(b);
        }
    }

    /// Counts a protocol error once per connection.
    fn protocol_error(&mut self, what: &dyn std::fmt::Display) {
        tracing::debug!(target: "postgres", "protocol error: {what}");
        if !std::mem::replace(&mut self.protocol_error_counted, true) {
            self.shared.stats.protocol_errors.inc();
        }
    }

    fn outcome(&self, o: Option<Outcome>) {
        let Some(o) = o else { return };
        let s = &self.shared.stats;
        s.transactions.inc();
        match o {
            Outcome::Commit => s.transactions_commit.inc(),
            Outcome::Rollback => s.transactions_rollback.inc(),
            Outcome::Prepared => {}
        }
    }

    fn on_frontend(&mut self, m: Msg<'_>) -> Flow {
        self.seen_frontend += 1;
        let stats = &self.shared.stats;
        match m.kind {
            Kind::Startup => {
                let Body::Whole(body) = m.body else { return Flow::Continue };
                match startup::parse(body) {
                    Ok(StartupPacket::SslRequest | StartupPacket::GssEncRequest) => self.expect_answer = true,
                    Ok(StartupPacket::Startup { params, .. }) => {
                        self.phase = Phase::Session;
                        let user = params.user().unwrap_or_default();
                        let db = params.database().unwrap_or_default();
                        self.names = Some((db.to_vec(), user.to_vec()));
                    }
                    Ok(StartupPacket::Cancel { .. }) => self.phase = Phase::Cancel,
                    Err(e) => {
                        self.protocol_error(&e);
                        self.failure = Some(replies::invalid_startup());
                        return Flow::Stop;
                    }
                }
            }
            Kind::Message(t) => {
                if !frontend::is_known(t) {
                    stats.messages_unknown.inc();
                    return Flow::Continue;
                }
                match t {
                    frontend::tag::QUERY => {
                        self.latency.on_query(crate::clock::now());
                        self.parse_sql(t, m.body);
                    }
                    frontend::tag::PARSE => self.parse_sql(t, m.body),
                    frontend::tag::EXECUTE => self.latency.on_execute(crate::clock::now()),
                    frontend::tag::SYNC => self.latency.on_sync(),
                    frontend::tag::TERMINATE => self.terminated = true,
                    frontend::tag::COPY_DONE | frontend::tag::COPY_FAIL => self.copy_in = false,
                    _ => {}
                }
            }
            Kind::EncryptionAnswer(_) => {}
        }
        Flow::Continue
    }

    fn parse_sql(&mut self, t: u8, body: Body<'_>) {
        if !self.shared.sql_parsing {
            return;
        }
        let Body::Whole(body) = body else { return };
        let text = match frontend::parse(t, body) {
            Ok(FrontendMessage::Query { sql }) | Ok(FrontendMessage::Parse { sql, .. }) => sql,
            Ok(_) => return,
            Err(e) => {
                self.protocol_error(&e);
                return;
            }
        };
        let stats = &self.shared.stats;
        if sql::parses(text) {
            stats.statements_parsed.inc();
        } else {
            stats.statements_parse_error.inc();
        }
    }

    fn on_backend(&mut self, m: Msg<'_>) -> Flow {
        let t = match m.kind {
            Kind::EncryptionAnswer(b) => return self.on_encryption_answer(b),
            Kind::Message(t) => t,
            Kind::Startup => return Flow::Continue,
        };
        self.seen_backend += 1;
        let stats = &self.shared.stats;
        if !backend::is_known(t) {
            stats.messages_unknown.inc();
            return Flow::Continue;
        }
        match t {
            backend::tag::COPY_IN_RESPONSE => self.copy_in = true,
            backend::tag::EMPTY_QUERY_RESPONSE | backend::tag::PORTAL_SUSPENDED => {
                self.latency.on_other_end(crate::clock::now())
            }
            _ => {}
        }
        let body = match m.body {
            Body::Whole(b) => b,
            Body::Skipped => return Flow::Continue,
            Body::TooLarge => {
                // Only an enormous ErrorResponse/NoticeResponse gets here.
                match t {
                    backend::tag::ERROR_RESPONSE => self.on_error(Severity::Unknown),
                    backend::tag::NOTICE_RESPONSE => self.on_notice(Severity::Unknown),
                    _ => {}
                }
                return Flow::Continue;
            }
        };
        match backend::parse(t, body) {
            Ok(BackendMessage::Authentication(Authentication::Ok)) => {
                stats.sessions.inc();
                stats.sessions_unencrypted.inc();
                if let Some((db, user)) = self.names.take() {
                    self.shared.databases.inc(&db);
                    self.shared.users.inc(&user);
                }
            }
            Ok(BackendMessage::CommandComplete(tag)) => {
                stats.statements.inc();
                let latency = self.latency.on_complete(crate::clock::now());
                let l = &self.shared.latency;
                let (counter, hist) = match tag.kind {
                    CommandKind::Select => (&stats.statements_select, &l.select),
                    CommandKind::Insert => (&stats.statements_insert, &l.insert),
                    CommandKind::Update => (&stats.statements_update, &l.update),
                    CommandKind::Delete => (&stats.statements_delete, &l.delete),
                    _ => (&stats.statements_other, &l.other),
                };
                counter.inc();
                if let Some(d) = latency {
                    hist.record(d.as_micros() as u64);
                }
                let o = self.tx.on_command(tag.kind);
                self.outcome(o);
            }
            Ok(BackendMessage::ErrorResponse(f)) => self.on_error(f.severity()),
            Ok(BackendMessage::NoticeResponse(f)) => self.on_notice(f.severity()),
            Ok(BackendMessage::ReadyForQuery(status)) => {
                let o = self.tx.on_ready(status);
                self.outcome(o);
                self.latency.on_ready();
            }
            Ok(_) => {}
            Err(e) => self.protocol_error(&e),
        }
        Flow::Continue
    }

    fn on_encryption_answer(&mut self, b: u8) -> Flow {
        let stats = &self.shared.stats;
        match b {
            // Protocol: 'S' accepts SSLRequest, 'G' accepts GSSENCRequest.
            b'S' | b'G' => {
                stats.sessions.inc();
                stats.sessions_encrypted.inc();
                self.encrypted = true;
                Flow::Stop
            }
            // Refused: the client goes on in clear with a new startup packet.
            b'N' => Flow::Continue,
            other => {
                self.protocol_error(&format_args!("unexpected answer {other:#04x} to an encryption request"));
                Flow::Stop
            }
        }
    }

    fn on_error(&mut self, sev: Severity) {
        let s = &self.shared.stats;
        s.errors.inc();
        match sev {
            Severity::Error => s.errors_error.inc(),
            Severity::Fatal => {
                s.errors_fatal.inc();
                self.fatal_seen = true;
            }
            Severity::Panic => {
                s.errors_panic.inc();
                self.fatal_seen = true;
            }
            _ => s.errors_unknown.inc(),
        }
        self.tx.on_error();
    }

    fn on_notice(&mut self, sev: Severity) {
        let s = &self.shared.stats;
        s.notices.inc();
        match sev {
            Severity::Warning => s.notices_warning.inc(),
            Severity::Notice => s.notices_notice.inc(),
            Severity::Debug => s.notices_debug.inc(),
            Severity::Info => s.notices_info.inc(),
            Severity::Log => s.notices_log.inc(),
            _ => s.notices_unknown.inc(),
        }
    }
}

struct FrontSink<'a>(&'a mut State);

impl Handler for FrontSink<'_> {
    fn wants_body(&mut self, kind: Kind, _len: usize) -> bool {
        self.0.shared.sql_parsing && matches!(kind, Kind::Message(frontend::tag::QUERY | frontend::tag::PARSE))
    }

    fn on_message(&mut self, m: Msg<'_>) -> Flow {
        self.0.on_frontend(m)
    }
}

struct BackSink<'a>(&'a mut State);

impl Handler for BackSink<'_> {
    fn wants_body(&mut self, kind: Kind, _len: usize) -> bool {
        use backend::tag::*;
        matches!(
            kind,
            Kind::Message(AUTHENTICATION | COMMAND_COMPLETE | ERROR_RESPONSE | NOTICE_RESPONSE | READY_FOR_QUERY)
        )
    }

    fn on_message(&mut self, m: Msg<'_>) -> Flow {
        self.0.on_backend(m)
    }
}

/// The per-connection observer.
pub struct PostgresSession {
    front: Framer,
    back: Framer,
    st: State,
}

impl PostgresSession {
    pub(super) fn new(shared: Arc<Shared>) -> PostgresSession {
        PostgresSession {
            front: Framer::new(Mode::Startup, MAX_KEEP_FRONTEND),
            back: Framer::new(Mode::Regular, MAX_KEEP_BACKEND),
            st: State {
                shared,
                phase: Phase::Startup,
                names: None,
                tx: TxTracker::default(),
                latency: LatencyTracker::default(),
                copy_in: false,
                terminated: false,
                client_ended: false,
                fatal_seen: false,
                expect_answer: false,
                encrypted: false,
                failure: None,
                protocol_error_counted: false,
                seen_frontend: 0,
                seen_backend: 0,
            },
        }
    }

    /// Answers with `reply` when the client is at a message boundary of the server's stream
    /// (so the reply reads as the next message), else just closes.
    fn reply_or_close(&self, reply: &'static [u8]) -> FilterAction {
        if self.back.at_boundary() && !self.st.encrypted {
            FilterAction::ReplyAndClose(reply)
        } else {
            FilterAction::Close
        }
    }
}

impl Observer for PostgresSession {
    fn on_downstream_data(&mut self, data: &[u8]) -> FilterAction {
        if self.front.stopped() {
            return FilterAction::Continue;
        }
        let fed = self.front.feed(data, &mut FrontSink(&mut self.st));
        self.st.flush_counts();
        if let Err(e) = fed {
            self.st.protocol_error(&e);
            return self.reply_or_close(replies::invalid_message());
        }
        if let Some(r) = self.st.failure.take() {
            return self.reply_or_close(r);
        }
        if std::mem::take(&mut self.st.expect_answer) {
            // The server answers nothing before it has the request, so its stream is at a
            // boundary here.
            self.back.set_mode(Mode::EncryptionAnswer);
        }
        FilterAction::Continue
    }

    fn on_upstream_data(&mut self, data: &[u8]) -> FilterAction {
        if self.back.stopped() {
            return FilterAction::Continue;
        }
        let fed = self.back.feed(data, &mut BackSink(&mut self.st));
        self.st.flush_counts();
        if let Err(e) = fed {
            self.st.protocol_error(&e);
            return FilterAction::Close;
        }
        if self.st.encrypted {
            self.front.stop();
        }
        FilterAction::Continue
    }

    fn on_downstream_eof(&mut self) {
        self.st.client_ended = true;
    }

    fn on_upstream_eof(&mut self) -> Option<&'static [u8]> {
        let st = &mut self.st;
        if st.encrypted || st.terminated || st.client_ended || st.fatal_seen || st.phase == Phase::Cancel {
            return None;
        }
        st.protocol_error(&"the server closed the connection without an error message");
        (self.back.at_boundary() && !self.back.stopped()).then(replies::server_gone)
    }

    fn on_close(&mut self, _origin: CloseOrigin) {
        if self.st.encrypted {
            return;
        }
        let o = self.st.tx.on_session_end();
        self.st.outcome(o);
        if self.st.copy_in {
            self.st.protocol_error(&"the connection ended in the middle of COPY FROM STDIN");
        } else if !self.front.at_boundary() || !self.back.at_boundary() {
            self.st.protocol_error(&"the connection ended in the middle of a message");
        }
    }
}
