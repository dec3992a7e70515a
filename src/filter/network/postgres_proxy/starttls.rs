//! In-band TLS for postgres_proxy (Envoy's `starttls` transport sockets), on both sides.
//!
//! Downstream (`terminate_ssl`, `downstream_ssl`): before the filter chain runs, the first
//! packet is peeked at. An SSLRequest is consumed and answered `S`, and the TLS handshake runs
//! with the chain's `starttls` certificate; the rest of the session (StartupMessage onwards) is
//! clear text to the observer and the upstream. Exactly the 8 bytes of the request are read,
//! so whatever the client sent after it stays in the socket and reaches the TLS handshake, which
//! rejects plain text: bytes injected after the request can never pass as part of the
//! encrypted session (PostgreSQL's CVE-2021-23214). A GSSENCRequest is answered `N` (GSS
//! encryption cannot be terminated here), after which libpq goes on with SSL or in clear.
//! Anything else is left unread for the observer, unless `downstream_ssl: REQUIRE` refuses it
//! (a StartupMessage in clear; a CancelRequest is let through, as PostgreSQL does).
//!
//! Upstream (`upstream_ssl`): once connected, the filter sends an SSLRequest to the server,
//! reads its one-byte answer, and on `S` runs the handshake with the cluster's `starttls`
//! socket before any client byte is forwarded. That needs a session readable here: terminated
//! above, or in clear. So without termination a client's own SSLRequest is answered `N` (as a
//! server without SSL would; libpq's default `sslmode=prefer` goes on in clear). Envoy passes
//! such a request through instead and then never asks the server, so `upstream_ssl: REQUIRE`
//! is silently not applied to libpq's default clients; here it always is.

use std::sync::Arc;
use std::time::Duration;

use legate_codecs::postgres::startup::{CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, SSL_REQUEST_CODE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{replies, Shared};
use crate::config::postgres_proxy::SslMode;
use crate::filter::Downstream;
use crate::tls::server::{TlsFacts, TlsServer};
use crate::upstream::cluster::{UpstreamConn, UpstreamStream};

/// How soon a peek looks again while the first packet is still incomplete (doubling, up to
/// [`PEEK_RETRY_MAX`], so a client that stalls mid-packet costs few wake-ups).
const PEEK_RETRY: Duration = Duration::from_millis(1);
const PEEK_RETRY_MAX: Duration = Duration::from_millis(50);
/// Most bytes of a refused StartupMessage read before the refusal is sent (so the close is a
/// FIN, not a reset that could discard the reply). PostgreSQL's own startup limit.
const MAX_STARTUP: usize = 10_000;

/// postgres_proxy's part in a chain with in-band TLS (built once per chain).
pub struct PgStartTls {
    shared: Arc<Shared>,
    /// The chain's `starttls` certificate and `downstream_ssl` (`terminate_ssl` is `ALLOW`).
    downstream: Option<(Arc<TlsServer>, SslMode)>,
    upstream: SslMode,
}

/// What became of the downstream after the SSL negotiation.
pub enum Accepted {
    /// Go on with this transport (`Some` facts when TLS was terminated).
    Serve(Downstream, Option<TlsFacts>),
    /// The connection is over (refused, failed handshake, or the client left).
    Closed,
}

/// What became of the upstream after asking it for SSL.
pub enum UpstreamSsl {
    Continue,
    /// Close the session after telling the client why; with the TLS failure for the access
    /// log's `%UPSTREAM_TRANSPORT_FAILURE_REASON%` when the handshake failed.
    Refuse(&'static [u8], Option<String>),
}

impl PgStartTls {
    pub(super) fn new(shared: Arc<Shared>, downstream: Option<(Arc<TlsServer>, SslMode)>, upstream: SslMode) -> Self {
        PgStartTls { shared, downstream, upstream }
    }

    /// Whether the client's first packets are looked at before the pump (to terminate its
    /// SSL, or to refuse it when the server connection needs a readable session).
    pub fn negotiates_downstream(&self) -> bool {
        self.downstream.is_some() || self.upstream != SslMode::Disable
    }

    /// Answers the client's SSLRequest and terminates its TLS, within `timeout`.
    pub async fn accept(&self, mut stream: TcpStream, timeout: Duration) -> Accepted {
        let deadline = Instant::now() + timeout;
        let stats = &self.shared.stats;
        // Each kind of request once, as PostgreSQL allows: a client cannot keep this loop going.
        let (mut ssl_asked, mut gss_asked) = (false, false);
        loop {
            let Some((len, code)) = peek_head(&stream, deadline).await else {
                // Gone, silent or too short: the observer sees (or misses) it as without TLS.
                return Accepted::Serve(Downstream::Tcp(stream), None);
            };
            if len == 8 && (code == SSL_REQUEST_CODE || code == GSSENC_REQUEST_CODE) {
                let mut req = [0u8; 8];
                if stream.read_exact(&mut req).await.is_err() {
                    return Accepted::Closed;
                }
                stats.messages.inc();
                stats.messages_frontend.inc();
                let asked = if code == SSL_REQUEST_CODE { &mut ssl_asked } else { &mut gss_asked };
                if std::mem::replace(asked, true) {
                    stats.protocol_errors.inc();
                    let _ = stream.write_all(replies::invalid_startup()).await;
                    let _ = stream.shutdown().await;
                    return Accepted::Closed;
                }
                let Some((server, _)) = self.downstream.as_ref().filter(|_| code == SSL_REQUEST_CODE) else {
                    // Protocol: 'N' refuses the encryption; the client goes on in clear (or
                    // with SSL after a refused GSS request) or gives up. GSS encryption
                    // cannot be terminated here, and without termination an upstream_ssl
                    // session must stay readable to be moved onto TLS toward the server.
                    if stream.write_all(b"N").await.is_err() {
                        return Accepted::Closed;
                    }
                    continue;
                };
                if stream.write_all(b"S").await.is_err() {
                    return Accepted::Closed;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                // Boxed: the handshake's state is large and lives only while it runs.
                return match Box::pin(server.accept(stream, left)).await {
                    Some((tls, facts)) => {
                        stats.sessions_terminated_ssl.inc();
                        Accepted::Serve(Downstream::Tls(Box::new(tls)), Some(facts))
                    }
                    // Counted by the listener's `ssl.connection_error`.
                    None => Accepted::Closed,
                };
            }
            // A CancelRequest carries no credentials and PostgreSQL itself takes it in clear
            // whatever pg_hba says (libpq before 17 always sends it in clear), so REQUIRE lets
            // it through: Ctrl-C in psql keeps working. (Envoy refuses it.)
            let cancel = len == 16 && code == CANCEL_REQUEST_CODE;
            if matches!(self.downstream, Some((_, SslMode::Require))) && !cancel {
                stats.messages.inc();
                stats.messages_frontend.inc();
                let want = (len as usize).clamp(8, MAX_STARTUP);
                let mut buf = vec![0u8; want];
                let _ = tokio::time::timeout_at(deadline, stream.read_exact(&mut buf)).await;
                let _ = stream.write_all(replies::downstream_ssl_required()).await;
                let _ = stream.shutdown().await;
                return Accepted::Closed;
            }
            return Accepted::Serve(Downstream::Tcp(stream), None);
        }
    }

    /// Asks the server for SSL when `upstream_ssl` says so (the session is readable here:
    /// [`PgStartTls::accept`] terminated or refused the client's own SSL). The cluster's
    /// `connect_timeout` bounds the server's answer and the handshake.
    pub async fn connect_upstream(&self, up: &mut UpstreamConn) -> UpstreamSsl {
        if self.upstream == SslMode::Disable {
            return UpstreamSsl::Continue;
        }
        let stats = &self.shared.stats;
        let host = up.host.address;
        let fail = |why: &str| {
            tracing::debug!(target: "postgres", "upstream SSL with {host} failed: {why}");
            stats.sessions_upstream_ssl_failed.inc();
        };
        let cluster = up.cluster.clone();
        let Some(tls) = cluster.starttls() else {
            fail("the cluster has no starttls transport socket");
            return self.refuse_or_clear();
        };
        let limit = cluster.config.connect_timeout;
        let answer = match up.transport_mut() {
            UpstreamStream::Tcp(t) => tokio::time::timeout(limit, ask_for_ssl(t)).await,
            UpstreamStream::Tls(_) => return UpstreamSsl::Continue,
        };
        match answer {
            Ok(Ok(b'S')) => match up.start_tls(tls, limit).await {
                Ok(()) => {
                    stats.sessions_upstream_ssl_success.inc();
                    UpstreamSsl::Continue
                }
                Err(e) => {
                    fail(&e);
                    UpstreamSsl::Refuse(replies::upstream_ssl_failed(), Some(e))
                }
            },
            // Protocol: 'N' means the server does not do SSL; the session may go on in clear.
            Ok(Ok(b'N')) => {
                fail("the server answered N");
                self.refuse_or_clear()
            }
            Ok(Ok(other)) => {
                fail(&format!("unexpected answer {other:#04x} to SSLRequest"));
                UpstreamSsl::Refuse(replies::upstream_ssl_failed(), None)
            }
            Ok(Err(e)) => {
                fail(&e.to_string());
                UpstreamSsl::Refuse(replies::server_gone(), None)
            }
            Err(_) => {
                fail("no answer to SSLRequest within connect_timeout");
                UpstreamSsl::Refuse(replies::upstream_ssl_failed(), None)
            }
        }
    }

    fn refuse_or_clear(&self) -> UpstreamSsl {
        match self.upstream {
            SslMode::Require => UpstreamSsl::Refuse(replies::upstream_ssl_failed(), None),
            _ => UpstreamSsl::Continue,
        }
    }
}

/// Sends an SSLRequest and reads the one-byte answer (and nothing more: bytes after it belong
/// to the TLS handshake, where plain text fails).
async fn ask_for_ssl(t: &mut TcpStream) -> std::io::Result<u8> {
    let mut req = [0u8; 8];
    req[..4].copy_from_slice(&8u32.to_be_bytes());
    req[4..].copy_from_slice(&SSL_REQUEST_CODE.to_be_bytes());
    t.write_all(&req).await?;
    let mut b = [0u8; 1];
    t.read_exact(&mut b).await?;
    Ok(b[0])
}

/// The length and code of the client's first packet, without consuming it; `None` when the
/// client closes, errs or stays silent until `deadline` before 8 bytes arrived.
async fn peek_head(stream: &TcpStream, deadline: Instant) -> Option<(u32, u32)> {
    let mut buf = [0u8; 8];
    let mut backoff = PEEK_RETRY;
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Ok(Ok(n)) => n,
            _ => return None,
        };
        if n == 0 {
            return None;
        }
        if n == buf.len() {
            let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
            let code = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
            return Some((len, code));
        }
        // A peek does not consume, so the socket stays readable: wait a little for the rest.
        if Instant::now() + backoff > deadline {
            return None;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(PEEK_RETRY_MAX);
    }
}
