//! One client request in flight and how its reply is assembled: a local answer, one upstream
//! reply, the parts of a split command (MGET, MSET, DEL/EXISTS/TOUCH/UNLINK) reassembled in
//! key order, or the per-shard replies of a command sent to every shard (KEYS, SCAN, INFO,
//! FLUSHALL, CONFIG, SCRIPT, SLOWLOG, ROLE) merged with Envoy's rules.

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    MGet,
    MSet,
    Sum,
    /// Envoy's `ScanRequest`: every shard's array elements, in shard order.
    Scan,
    /// `ArrayMergeAggregateResponseHandler` (KEYS, CONFIG GET, SLOWLOG GET).
    Merge,
    /// `ArrayAppendAggregateResponseHandler` (ROLE): each shard's array as one element.
    Append,
    /// `AllshardSameResponseHandler` (FLUSHALL, FLUSHDB, SCRIPT, CONFIG SET, ...).
    Same,
    /// `IntegerSumAggregateResponseHandler` (SLOWLOG LEN).
    IntSum,
    /// `InfoCmdAggregateResponseHandler`, with the requested section (lower case, may be empty).
    Info(Vec<u8>),
}

pub enum Body {
    /// Answered without an upstream.
    Local(Bytes),
    Single(Part),
    /// One shard's reply forwarded as is (INFO.SHARD, RANDOMKEY, CLUSTER): an error reply
    /// counts as an error, unlike `Single`.
    Shard(Part),
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
    /// A transaction's own upstream connections (and its mirrors'), kept open until this
    /// reply (EXEC/DISCARD) arrives.
    pub hold: Vec<std::sync::Arc<super::upstream::HostConns>>,
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
            hold: Vec::new(),
        }
    }

    pub fn error(msg: &str) -> Pending {
        let mut b = BytesMut::new();
        reply::error(&mut b, msg);
        Pending::local(b.freeze())
    }

    pub fn upstream(body: Body, cmd: usize, started: Instant) -> Pending {
        Pending { body, cmd: Some(cmd), started, delay: None, delay_until: None, close_after: false, hold: Vec::new() }
    }

    /// Whether the reply can be written now (polls without waiting).
    pub fn ready(&mut self) -> bool {
        let parts_done = match &mut self.body {
            Body::Local(_) => true,
            Body::Single(p) | Body::Shard(p) => p.poll(),
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
            Body::Single(p) | Body::Shard(p) => p.wait().await,
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
            Body::Shard(p) => match p.reply() {
                Ok(b) => Outcome { bytes: b.clone(), success: reply::kind(b) != ReplyKind::Error },
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

/// Envoy's `MGETRequest`, `MSETRequest` and `SplitKeysSumResultRequest::onChildResponse`, and
/// the cluster-scope response handlers.
fn assemble(shape: Shape, parts: &[Part]) -> Outcome {
    let mut errors = 0usize;
    match shape {
        Shape::Scan | Shape::Merge | Shape::Append | Shape::Same | Shape::IntSum | Shape::Info(_) => {
            // A shard that failed answers Envoy's `upstream failure` error.
            let replies: Vec<Bytes> =
                parts.iter().map(|p| p.reply().cloned().unwrap_or_else(|_| error_bytes(UPSTREAM_FAILURE))).collect();
            merge_shards(&shape, &replies)
        }
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

fn fail(msg: &str) -> Outcome {
    Outcome { bytes: error_bytes(msg), success: false }
}

fn ok(bytes: Bytes) -> Outcome {
    Outcome { bytes, success: true }
}

/// The per-shard replies of a fan-out command merged as Envoy 1.40 merges them.
fn merge_shards(shape: &Shape, replies: &[Bytes]) -> Outcome {
    if *shape == Shape::Scan {
        // `ScanRequest::onChildResponse`: array elements appended, anything else an error.
        let mut elements = Vec::new();
        let mut errors = 0usize;
        for r in replies {
            match reply::array_elements(r) {
                Some(e) => elements.extend(e),
                None => errors += 1,
            }
        }
        if errors > 0 {
            return fail(&format!("finished with {errors} error(s)"));
        }
        return ok(array_of(&elements));
    }
    // The cluster-scope handlers return the first error reply of any shard.
    if let Some(e) = replies.iter().find(|r| reply::kind(r) == ReplyKind::Error) {
        return Outcome { bytes: e.clone(), success: false };
    }
    match shape {
        Shape::Same => {
            if replies.windows(2).all(|w| w[0] == w[1]) {
                replies.first().map_or_else(|| fail("all responses not same"), |r| ok(r.clone()))
            } else {
                fail("all responses not same")
            }
        }
        Shape::Merge => {
            let mut elements = Vec::new();
            for r in replies {
                match reply::array_elements(r) {
                    Some(e) => elements.extend(e),
                    None => return fail("non-array response received from shard"),
                }
            }
            ok(array_of(&elements))
        }
        Shape::Append => {
            if replies.iter().any(|r| reply::array_elements(r).is_none()) {
                return fail("non-array response received from shard");
            }
            ok(array_of(replies))
        }
        Shape::IntSum => {
            let mut sum: i64 = 0;
            for r in replies {
                match reply::integer_value(r) {
                    None => return fail("non-integer response received from shard"),
                    Some(n) if n < 0 => return fail("negative value received from upstream"),
                    Some(n) => sum = sum.wrapping_add(n),
                }
            }
            let mut out = BytesMut::new();
            reply::integer(&mut out, sum);
            ok(out.freeze())
        }
        Shape::Info(section) => {
            let mut texts = Vec::with_capacity(replies.len());
            for r in replies {
                match reply::bulk_value(r) {
                    Some(t) => texts.push(t),
                    None => return fail("unexpected response type received from shard"),
                }
            }
            let mut out = BytesMut::new();
            reply::bulk(&mut out, super::info::aggregate(&texts, section).as_bytes());
            ok(out.freeze())
        }
        Shape::MGet | Shape::MSet | Shape::Sum | Shape::Scan => fail(UPSTREAM_PROTOCOL_ERROR),
    }
}

fn array_of(elements: &[Bytes]) -> Bytes {
    let mut out = BytesMut::with_capacity(16 + elements.iter().map(Bytes::len).sum::<usize>());
    reply::array_header(&mut out, elements.len());
    for e in elements {
        out.extend_from_slice(e);
    }
    out.freeze()
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

    #[test]
    fn shard_replies_merge_as_envoy_merges_them() {
        let keys = assemble(Shape::Merge, &[done(b"*1\r\n$1\r\na\r\n"), done(b"*0\r\n"), done(b"*1\r\n$1\r\nb\r\n")]);
        assert_eq!(&keys.bytes[..], b"*2\r\n$1\r\na\r\n$1\r\nb\r\n");
        assert!(keys.success);
        let role = assemble(Shape::Append, &[done(b"*1\r\n:1\r\n"), done(b"*0\r\n")]);
        assert_eq!(&role.bytes[..], b"*2\r\n*1\r\n:1\r\n*0\r\n");
        let same = assemble(Shape::Same, &[done(b"+OK\r\n"), done(b"+OK\r\n")]);
        assert_eq!(&same.bytes[..], b"+OK\r\n");
        let differ = assemble(Shape::Same, &[done(b"+OK\r\n"), done(b":1\r\n")]);
        assert_eq!(&differ.bytes[..], b"-all responses not same\r\n");
        let first_error = assemble(Shape::Same, &[done(b"+OK\r\n"), Part::failed(), done(b"-ERR x\r\n")]);
        assert_eq!(&first_error.bytes[..], b"-upstream failure\r\n");
        assert!(!first_error.success);
        assert_eq!(&assemble(Shape::IntSum, &[done(b":2\r\n"), done(b":3\r\n")]).bytes[..], b":5\r\n");
        assert_eq!(
            &assemble(Shape::IntSum, &[done(b":2\r\n"), done(b":-1\r\n")]).bytes[..],
            b"-negative value received from upstream\r\n"
        );
        assert_eq!(
            &assemble(Shape::Merge, &[done(b":1\r\n")]).bytes[..],
            b"-non-array response received from shard\r\n"
        );
        let scan =
            assemble(Shape::Scan, &[done(b"*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n"), done(b"*2\r\n$1\r\n7\r\n*0\r\n")]);
        assert_eq!(&scan.bytes[..], b"*4\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n$1\r\n7\r\n*0\r\n");
        let scan = assemble(Shape::Scan, &[done(b"-ERR invalid cursor\r\n"), Part::failed()]);
        assert_eq!(&scan.bytes[..], b"-finished with 2 error(s)\r\n");
    }
}
