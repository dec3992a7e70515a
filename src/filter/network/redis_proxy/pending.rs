//! One client request in flight and how its reply is assembled: a local answer, one upstream
//! reply, or the parts of a split command (MGET, MSET, DEL/EXISTS/TOUCH/UNLINK) reassembled in
//! key order with Envoy's rules.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use legate_codecs::redis::reply::{self, ReplyKind};
use tokio::sync::oneshot;

use super::upstream::{Failure, Reply};

/// Envoy's `Response` strings.
pub const UPSTREAM_FAILURE: &str = "upstream failure";
pub const UPSTREAM_PROTOCOL_ERROR: &str = "upstream protocol error";
pub const NO_UPSTREAM_HOST: &str = "no upstream host";
pub const INVALID_REQUEST: &str = "invalid request";
pub const AUTH_REQUIRED: &str = "NOAUTH Authentication required.";
pub const FAULT_ERROR: &str = "Fault Injected: Error";
pub const DOWNSTREAM_PROTOCOL_ERROR: &str = "downstream protocol error";

/// One upstream reply a request waits for.
pub enum Part {
    Wait(oneshot::Receiver<Reply>),
    Done(Reply),
}

impl Part {
    pub fn failed() -> Part {
        Part::Done(Err(Failure::Upstream))
    }

    /// A part that is already an error reply (e.g. `no upstream host` for one key of a split).
    pub fn error(msg: &str) -> Part {
        let mut b = BytesMut::new();
        reply::error(&mut b, msg);
        Part::Done(Ok(b.freeze()))
    }

    fn poll(&mut self) -> bool {
        if let Part::Wait(rx) = self {
            match rx.try_recv() {
                Ok(r) => *self = Part::Done(r),
                Err(oneshot::error::TryRecvError::Empty) => return false,
                Err(oneshot::error::TryRecvError::Closed) => *self = Part::failed(),
            }
        }
        true
    }

    async fn wait(&mut self) {
        if let Part::Wait(rx) = self {
            let r = rx.await.unwrap_or(Err(Failure::Upstream));
            *self = Part::Done(r);
        }
    }

    fn reply(&self) -> Result<&Bytes, Failure> {
        match self {
            Part::Done(Ok(b)) => Ok(b),
            _ => Err(Failure::Upstream),
        }
    }
}

/// How split parts are reassembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    MGet,
    MSet,
    Sum,
}

pub enum Body {
    /// Answered without an upstream.
    Local(Bytes),
    Single(Part),
    Split(Shape, Vec<Part>),
}

/// A request in flight, in the client's order.
pub struct Pending {
    pub body: Body,
    /// Index of the command's stats, when they count this request's outcome at completion.
    pub cmd: Option<usize>,
    pub started: Instant,
    /// A delay fault: the reply is held this long after it is ready.
    pub delay: Option<Duration>,
    delay_until: Option<Instant>,
    /// Close the connection once this reply is written (QUIT).
    pub close_after: bool,
    /// A transaction's own upstream connection, kept open until this reply (EXEC/DISCARD)
    /// arrives.
    pub hold: Option<std::sync::Arc<super::upstream::HostConns>>,
}

/// The finished reply and whether the command succeeded (Envoy's `updateStats`).
pub struct Outcome {
    pub bytes: Bytes,
    pub success: bool,
}

impl Pending {
    pub fn local(bytes: Bytes) -> Pending {
        Pending {
            body: Body::Local(bytes),
            cmd: None,
            started: Instant::now(),
            delay: None,
            delay_until: None,
            close_after: false,
            hold: None,
        }
    }

    pub fn error(msg: &str) -> Pending {
        let mut b = BytesMut::new();
        reply::error(&mut b, msg);
        Pending::local(b.freeze())
    }

    pub fn upstream(body: Body, cmd: usize, started: Instant) -> Pending {
        Pending { body, cmd: Some(cmd), started, delay: None, delay_until: None, close_after: false, hold: None }
    }

    /// Whether the reply can be written now (polls without waiting).
    pub fn ready(&mut self) -> bool {
        let parts_done = match &mut self.body {
            Body::Local(_) => true,
            Body::Single(p) => p.poll(),
            Body::Split(_, parts) => parts.iter_mut().all(Part::poll),
        };
        if !parts_done {
            return false;
        }
        match self.delay {
            None => true,
            Some(d) => {
                let until = *self.delay_until.get_or_insert_with(|| Instant::now() + d);
                Instant::now() >= until
            }
        }
    }

    /// Waits until [`Pending::ready`] would say yes.
    pub async fn wait(&mut self) {
        match &mut self.body {
            Body::Local(_) => {}
            Body::Single(p) => p.wait().await,
            Body::Split(_, parts) => {
                for p in parts.iter_mut() {
                    p.wait().await;
                }
            }
        }
        if let Some(d) = self.delay {
            let until = *self.delay_until.get_or_insert_with(|| Instant::now() + d);
            tokio::time::sleep_until(until.into()).await;
        }
    }

    /// Builds the reply of a ready request.
    pub fn finish(self) -> Outcome {
        match self.body {
            Body::Local(bytes) => Outcome { bytes, success: false },
            Body::Single(p) => match p.reply() {
                Ok(b) => Outcome { bytes: b.clone(), success: true },
                Err(_) => Outcome { bytes: error_bytes(UPSTREAM_FAILURE), success: false },
            },
            Body::Split(shape, parts) => assemble(shape, &parts),
        }
    }
}

fn error_bytes(msg: &str) -> Bytes {
    let mut b = BytesMut::new();
    reply::error(&mut b, msg);
    b.freeze()
}

/// Envoy's `MGETRequest`, `MSETRequest` and `SplitKeysSumResultRequest::onChildResponse`.
fn assemble(shape: Shape, parts: &[Part]) -> Outcome {
    let mut errors = 0usize;
    match shape {
        Shape::MGet => {
            let mut out = BytesMut::new();
            reply::array_header(&mut out, parts.len());
            for p in parts {
                match p.reply() {
                    Err(_) => {
                        errors += 1;
                        reply::error(&mut out, UPSTREAM_FAILURE);
                    }
                    Ok(b) => match reply::kind(b) {
                        ReplyKind::BulkString | ReplyKind::Null => out.extend_from_slice(b),
                        ReplyKind::Error => {
                            errors += 1;
                            out.extend_from_slice(b);
                        }
                        _ => {
                            errors += 1;
                            reply::error(&mut out, UPSTREAM_PROTOCOL_ERROR);
                        }
                    },
                }
            }
            Outcome { bytes: out.freeze(), success: errors == 0 }
        }
        Shape::MSet => {
            for p in parts {
                let ok = p.reply().ok().and_then(|b| reply::line_text(b).filter(|_| b[0] == b'+')) == Some(&b"OK"[..]);
                if !ok {
                    errors += 1;
                }
            }
            let mut out = BytesMut::new();
            if errors == 0 {
                reply::simple(&mut out, b"OK");
            } else {
                reply::error(&mut out, &format!("finished with {errors} error(s)"));
            }
            Outcome { bytes: out.freeze(), success: errors == 0 }
        }
        Shape::Sum => {
            let mut total: i64 = 0;
            for p in parts {
                match p.reply().ok().and_then(|b| reply::integer_value(b)) {
                    Some(n) => total = total.wrapping_add(n),
                    None => errors += 1,
                }
            }
            let mut out = BytesMut::new();
            if errors == 0 {
                reply::integer(&mut out, total);
            } else {
                reply::error(&mut out, &format!("finished with {errors} error(s)"));
            }
            Outcome { bytes: out.freeze(), success: errors == 0 }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(b: &'static [u8]) -> Part {
        Part::Done(Ok(Bytes::from_static(b)))
    }

    #[test]
    fn mget_keeps_key_order_and_marks_bad_parts() {
        let parts = vec![done(b"$1\r\na\r\n"), done(b"$-1\r\n"), done(b":1\r\n"), Part::failed(), done(b"-ERR x\r\n")];
        let o = assemble(Shape::MGet, &parts);
        assert_eq!(
            &o.bytes[..],
            &b"*5\r\n$1\r\na\r\n$-1\r\n-upstream protocol error\r\n-upstream failure\r\n-ERR x\r\n"[..]
        );
        assert!(!o.success);
    }

    #[test]
    fn mset_and_sum_count_errors() {
        let o = assemble(Shape::MSet, &[done(b"+OK\r\n"), done(b"+OK\r\n")]);
        assert_eq!(&o.bytes[..], b"+OK\r\n");
        let o = assemble(Shape::MSet, &[done(b"+OK\r\n"), Part::failed(), done(b"-ERR\r\n")]);
        assert_eq!(&o.bytes[..], b"-finished with 2 error(s)\r\n");
        let o = assemble(Shape::Sum, &[done(b":1\r\n"), done(b":0\r\n"), done(b":2\r\n")]);
        assert_eq!(&o.bytes[..], b":3\r\n");
        let o = assemble(Shape::Sum, &[done(b":1\r\n"), done(b"+OK\r\n")]);
        assert_eq!(&o.bytes[..], b"-finished with 1 error(s)\r\n");
    }
}
