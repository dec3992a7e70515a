//! A resumable, bounded RESP2/RESP3 frame scanner: finds where one complete frame ends without
//! building it, so the proxy can forward a request's or a reply's bytes untouched.
//!
//! Check-then-parse: every length is checked against [`Limits`] before anything is trusted, a
//! nested aggregate deeper than `max_depth` is refused (the `redis-protocol` decoder recurses,
//! so this check is what keeps a `*1\r\n*1\r\n...` stream from exhausting the stack), and the
//! scan resumes where it stopped when more bytes arrive, so a large frame arriving in small
//! pieces costs O(size) in total.

/// Bounds applied while scanning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest bulk string / blob error / verbatim string payload.
    pub max_bulk_len: usize,
    /// Most elements in one aggregate (an array, set, push; a map counts its pairs).
    pub max_array_len: usize,
    /// Deepest nesting of aggregates (a flat array has depth 1).
    pub max_depth: usize,
    /// Longest simple string, error or number line (without its CRLF).
    pub max_line_len: usize,
    /// Accept inline commands (`PING\r\n`: a line of printable text that does not start with a
    /// RESP type byte) at the top level, as Redis and Envoy do for clients.
    pub inline: bool,
}

/// Redis's own `proto-max-bulk-len` default (512 MiB).
pub const REDIS_MAX_BULK_LEN: usize = 512 * 1024 * 1024;

/// Requests are one flat array of bulk strings; Redis itself caps a multibulk at 1024*1024
/// elements for unauthenticated clients' inline reads and at INT_MAX otherwise; a proxy that
/// buffers requests needs a tighter bound.
/// Nested arrays are not valid requests (they get `invalid request`) but are framed, up to a
/// small depth; an inline command may be 64 KiB long (Redis's `PROTO_INLINE_MAX_SIZE`).
pub const REQUEST_LIMITS: Limits = Limits {
    max_bulk_len: REDIS_MAX_BULK_LEN,
    max_array_len: 1024 * 1024,
    max_depth: 16,
    max_line_len: 64 * 1024,
    inline: true,
};

/// Replies can nest (XREAD, CLUSTER SLOTS, RESP3 maps of arrays) and be large (SMEMBERS).
pub const REPLY_LIMITS: Limits = Limits {
    max_bulk_len: REDIS_MAX_BULK_LEN,
    max_array_len: 64 * 1024 * 1024,
    max_depth: 64,
    max_line_len: 1024 * 1024,
    inline: false,
};

/// Why a byte stream can no longer be framed as RESP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("invalid RESP type byte 0x{0:02x}")]
    InvalidType(u8),
    #[error("invalid length or integer")]
    BadNumber,
    #[error("bulk length {0} exceeds the limit")]
    BulkTooLong(i64),
    #[error("aggregate length {0} exceeds the limit")]
    ArrayTooLong(i64),
    #[error("aggregates nested deeper than the limit")]
    TooDeep,
    #[error("bulk payload not followed by CRLF")]
    BadTerminator,
    #[error("line longer than the limit")]
    LineTooLong,
    #[error("inline command with a non-printable byte")]
    BadInline,
}

/// Scans one frame at a time from the front of a growing buffer.
#[derive(Debug, Clone)]
pub struct Scanner {
    limits: Limits,
    /// Offset of the next unscanned element within the current frame.
    pos: usize,
    /// Elements still expected by each open aggregate, outermost first.
    stack: Vec<u64>,
}

enum Step {
    /// One whole element (scalar or empty aggregate) ended at the new `pos`.
    Done,
    /// An aggregate with this many children opened.
    Open(u64),
    NeedMore,
}

impl Scanner {
    pub fn new(limits: Limits) -> Scanner {
        Scanner { limits, pos: 0, stack: Vec::new() }
    }

    /// Forgets a partly scanned frame (after the caller dropped the buffer).
    pub fn reset(&mut self) {
        self.pos = 0;
        self.stack.clear();
    }

    /// Whether a frame has been partly scanned.
    pub fn in_frame(&self) -> bool {
        self.pos > 0
    }

    /// `Ok(Some(n))` when `buf[..n]` is one complete frame (the scanner is then ready for the
    /// next one, which starts at `buf[n]` once the caller has consumed the first); `Ok(None)`
    /// when more bytes are needed. `buf` must start with the same bytes as on the last call.
    pub fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, ScanError> {
        loop {
            match self.step(buf)? {
                Step::NeedMore => return Ok(None),
                Step::Open(n) => {
                    if self.stack.len() >= self.limits.max_depth {
                        return Err(ScanError::TooDeep);
                    }
                    self.stack.push(n);
                    continue;
                }
                Step::Done => {}
            }
            // One element finished: close every aggregate it completes.
            while let Some(top) = self.stack.last_mut() {
                *top -= 1;
                if *top == 0 {
                    self.stack.pop();
                } else {
                    break;
                }
            }
            if self.stack.is_empty() {
                let end = self.pos;
                self.pos = 0;
                return Ok(Some(end));
            }
        }
    }

    fn step(&mut self, buf: &[u8]) -> Result<Step, ScanError> {
        let Some(&kind) = buf.get(self.pos) else { return Ok(Step::NeedMore) };
        if self.limits.inline && self.stack.is_empty() && !is_type_byte(kind) {
            return self.inline(buf);
        }
        let line_start = self.pos + 1;
        let max_line = match kind {
            b'+' | b'-' => self.limits.max_line_len,
            // Big numbers and doubles can be long; lengths and integers never exceed 20 bytes.
            b'(' | b',' => self.limits.max_line_len,
            _ => 24,
        };
        let Some(line_end) = find_crlf(buf, line_start, max_line)? else { return Ok(Step::NeedMore) };
        let line = &buf[line_start..line_end];
        let after = line_end + 2;
        match kind {
            b'+' | b'-' | b'_' | b'#' | b',' | b'(' => {
                self.pos = after;
                Ok(Step::Done)
            }
            b':' => {
                parse_int(line)?;
                self.pos = after;
                Ok(Step::Done)
            }
            b'$' | b'!' | b'=' => {
                let n = parse_int(line)?;
                if n == -1 && kind == b'$' {
                    self.pos = after;
                    return Ok(Step::Done);
                }
                if n < 0 {
                    return Err(ScanError::BadNumber);
                }
                if n as u64 > self.limits.max_bulk_len as u64 {
                    return Err(ScanError::BulkTooLong(n));
                }
                let end = after + n as usize;
                if buf.len() < end + 2 {
                    return Ok(Step::NeedMore);
                }
                if &buf[end..end + 2] != b"\r\n" {
                    return Err(ScanError::BadTerminator);
                }
                self.pos = end + 2;
                Ok(Step::Done)
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let n = parse_int(line)?;
                if n == -1 && kind == b'*' {
                    self.pos = after;
                    return Ok(Step::Done);
                }
                if n < 0 {
                    return Err(ScanError::BadNumber);
                }
                if n as u64 > self.limits.max_array_len as u64 {
                    return Err(ScanError::ArrayTooLong(n));
                }
                let n = n as u64;
                // A map holds key/value pairs; an attribute is a map followed by the reply it
                // annotates.
                let children = match kind {
                    b'%' => n * 2,
                    b'|' => n * 2 + 1,
                    _ => n,
                };
                self.pos = after;
                if children == 0 {
                    Ok(Step::Done)
                } else {
                    Ok(Step::Open(children))
                }
            }
            other => Err(ScanError::InvalidType(other)),
        }
    }
}

impl Scanner {
    /// An inline command: one line of printable ASCII (spaces and tabs separate arguments).
    fn inline(&mut self, buf: &[u8]) -> Result<Step, ScanError> {
        let Some(end) = find_crlf(buf, self.pos, self.limits.max_line_len)? else { return Ok(Step::NeedMore) };
        if !buf[self.pos..end].iter().all(|&b| (0x20..0x7f).contains(&b) || b == b'\t') {
            return Err(ScanError::BadInline);
        }
        self.pos = end + 2;
        Ok(Step::Done)
    }
}

/// Whether `b` starts a RESP2 or RESP3 frame.
pub fn is_type_byte(b: u8) -> bool {
    matches!(b, b'+' | b'-' | b':' | b'$' | b'*' | b'_' | b'#' | b',' | b'(' | b'!' | b'=' | b'%' | b'~' | b'>' | b'|')
}

/// The index of the `\r` of the first CRLF at or after `from`, refusing lines over `max`.
fn find_crlf(buf: &[u8], from: usize, max: usize) -> Result<Option<usize>, ScanError> {
    let window = &buf[from.min(buf.len())..];
    let limit = window.len().min(max + 1);
    match window[..limit].iter().position(|&b| b == b'\r') {
        Some(i) => match window.get(i + 1) {
            Some(b'\n') => Ok(Some(from + i)),
            Some(_) => Err(ScanError::BadNumber),
            None => Ok(None),
        },
        None if window.len() > max => Err(ScanError::LineTooLong),
        None => Ok(None),
    }
}

/// A strict RESP integer: optional `-`, then 1 to 19 digits.
pub fn parse_int(line: &[u8]) -> Result<i64, ScanError> {
    let (neg, digits) = match line.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, line),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ScanError::BadNumber);
    }
    let mut v: i64 = 0;
    for d in digits {
        v = v.checked_mul(10).and_then(|v| v.checked_add(i64::from(d - b'0'))).ok_or(ScanError::BadNumber)?;
    }
    Ok(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(limits: Limits, b: &[u8]) -> Result<Option<usize>, ScanError> {
        Scanner::new(limits).scan(b)
    }

    #[test]
    fn finds_the_end_of_each_resp2_type() {
        for f in [&b"+OK\r\n"[..], b"-ERR x\r\n", b":-12\r\n", b"$3\r\nfoo\r\n", b"$-1\r\n", b"*-1\r\n", b"*0\r\n"] {
            assert_eq!(whole(REPLY_LIMITS, f), Ok(Some(f.len())), "{f:?}");
        }
        let get = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n+next";
        assert_eq!(whole(REQUEST_LIMITS, get), Ok(Some(get.len() - 5)));
    }

    #[test]
    fn finds_the_end_of_resp3_types() {
        for f in [
            &b"_\r\n"[..],
            b"#t\r\n",
            b",1.5\r\n",
            b"(123\r\n",
            b"!3\r\nerr\r\n",
            b"=7\r\ntxt:abc\r\n",
            b"%1\r\n+a\r\n:1\r\n",
            b"~2\r\n:1\r\n:2\r\n",
            b">2\r\n+message\r\n$1\r\nx\r\n",
            b"|1\r\n+k\r\n+v\r\n:5\r\n",
        ] {
            assert_eq!(whole(REPLY_LIMITS, f), Ok(Some(f.len())), "{f:?}");
        }
    }

    #[test]
    fn incomplete_input_needs_more_at_every_cut() {
        let f = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n*2\r\n:1\r\n$2\r\nab\r\n";
        let mut limits = REPLY_LIMITS;
        limits.max_depth = 3;
        for cut in 0..f.len() {
            assert_eq!(whole(limits, &f[..cut]), Ok(None), "cut {cut}");
        }
        // Resuming after each byte gives the same answer as one scan.
        let mut s = Scanner::new(limits);
        for cut in 0..f.len() {
            assert_eq!(s.scan(&f[..cut]), Ok(None));
        }
        assert_eq!(s.scan(f), Ok(Some(f.len())));
        assert!(!s.in_frame());
    }

    #[test]
    fn a_bulk_length_of_2_pow_40_is_refused_before_any_payload() {
        assert_eq!(whole(REQUEST_LIMITS, b"*1\r\n$1099511627776\r\n"), Err(ScanError::BulkTooLong(1 << 40)));
        assert_eq!(whole(REQUEST_LIMITS, b"*1099511627776\r\n"), Err(ScanError::ArrayTooLong(1 << 40)));
    }

    #[test]
    fn deep_nesting_and_garbage_are_refused() {
        assert_eq!(whole(REPLY_LIMITS, &b"*1\r\n".repeat(65)), Err(ScanError::TooDeep));
        assert_eq!(whole(REPLY_LIMITS, b"PING\r\n"), Err(ScanError::InvalidType(b'P')));
        assert_eq!(whole(REQUEST_LIMITS, b"PING\r\n"), Ok(Some(6)));
        assert_eq!(whole(REQUEST_LIMITS, b"\x00\x01\r\n"), Err(ScanError::BadInline));
        assert_eq!(whole(REQUEST_LIMITS, b"$x\r\n"), Err(ScanError::BadNumber));
        assert_eq!(whole(REQUEST_LIMITS, b"$3\r\nfooXY"), Err(ScanError::BadTerminator));
        assert_eq!(whole(REQUEST_LIMITS, b"$-5\r\n"), Err(ScanError::BadNumber));
        assert_eq!(whole(REQUEST_LIMITS, b"*99999999999999999999\r\n"), Err(ScanError::BadNumber));
        let long = [b'+'; 100];
        assert_eq!(whole(REQUEST_LIMITS, &long[..]), Ok(None));
        assert_eq!(whole(REPLY_LIMITS, &[b'*'; 100][..]), Err(ScanError::LineTooLong));
    }
}
