//! `envoy.filters.listener.tls_inspector`: peeks at the first bytes of a connection, without
//! consuming them, to learn whether it is TLS and which server name (SNI) and application
//! protocols (ALPN) the client asks for, so the filter chain can be chosen on them (and TLS can
//! be passed through untouched by SNI). Parsing is in `legate_codecs::tls::client_hello`.

use std::time::Duration;

use legate_codecs::tls::client_hello::{self, ClientHello, Peek};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::config::listener::TlsInspectorConfig;
use crate::define_stats;

define_stats! {
    /// `tls_inspector.*` (one tree for the whole server, as in Envoy).
    pub struct TlsInspectorStats {
        counter alpn_found,
        counter alpn_not_found,
        counter client_hello_too_large,
        counter sni_found,
        counter sni_not_found,
        counter tls_found,
        counter tls_not_found,
        histogram bytes_processed: Bytes,
    }
}

/// What the inspector learnt.
#[derive(Debug)]
pub enum Inspected {
    Tls(ClientHello),
    /// Not TLS (or the timeout passed with `continue_on_listener_filters_timeout`).
    Raw,
    /// Close the connection (a read error, the peer left, a ClientHello over the limit, or the
    /// timeout passed).
    Close {
        timed_out: bool,
    },
}

/// First peek size; grown up to the limit only for large ClientHellos.
const FIRST_PEEK: usize = 2048;

/// Peeks until the ClientHello is complete, it is clearly not TLS, or `timeout` passes.
pub async fn inspect(
    stream: &TcpStream,
    cfg: &TlsInspectorConfig,
    stats: &TlsInspectorStats,
    timeout: Option<Duration>,
    continue_on_timeout: bool,
) -> Inspected {
    let max = cfg.max_client_hello_size as usize;
    let mut buf = vec![0u8; FIRST_PEEK.min(max)];
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut backoff = Duration::from_millis(1);
    loop {
        let peeked = match deadline {
            Some(d) => match tokio::time::timeout_at(d, stream.peek(&mut buf)).await {
                Ok(r) => r,
                Err(_) => return on_timeout(continue_on_timeout),
            },
            None => stream.peek(&mut buf).await,
        };
        let n = match peeked {
            Ok(0) | Err(_) => return Inspected::Close { timed_out: false },
            Ok(n) => n,
        };
        match client_hello::peek(&buf[..n], max) {
            Peek::Hello(h) => {
                stats.bytes_processed.record(n as u64);
                stats.tls_found.inc();
                if h.server_name.is_some() {
                    stats.sni_found.inc()
                } else {
                    stats.sni_not_found.inc()
                }
                if h.alpn.is_empty() {
                    stats.alpn_not_found.inc()
                } else {
                    stats.alpn_found.inc()
                }
                return Inspected::Tls(h);
            }
            Peek::NotTls => {
                stats.bytes_processed.record(n as u64);
                stats.tls_not_found.inc();
                return Inspected::Raw;
            }
            Peek::TooLarge => {
                stats.client_hello_too_large.inc();
                return Inspected::Close { timed_out: false };
            }
            Peek::NeedMore if n == buf.len() && buf.len() < max => {
                buf.resize((buf.len() * 2).min(max), 0);
            }
            Peek::NeedMore => {
                // A peek does not consume, so the socket stays readable: wait a little for
                // the rest of the ClientHello instead of spinning.
                let wake = Instant::now() + backoff;
                if deadline.is_some_and(|d| wake >= d) {
                    tokio::time::sleep_until(deadline.unwrap_or(wake)).await;
                    return on_timeout(continue_on_timeout);
                }
                tokio::time::sleep_until(wake).await;
                backoff = (backoff * 2).min(Duration::from_millis(50));
            }
        }
    }
}

fn on_timeout(continue_on_timeout: bool) -> Inspected {
    if continue_on_timeout {
        Inspected::Raw
    } else {
        Inspected::Close { timed_out: true }
    }
}
