//! Socket reads for filters that drive a `TcpStream` with `readable()` + `try_read`.
//!
//! tokio's `try_read` clears a socket's readiness only when the kernel answers `EAGAIN`, so a
//! loop of `readable().await` + `try_read` pays one failing `recvfrom` after every message. A
//! short read already shows that the socket buffer is drained (epoll is edge-triggered, as
//! tokio's own `poll_read` assumes), so [`try_read_drained`] clears the readiness then instead:
//! the next `readable()` waits for new data without that extra system call. readiness that
//! arrived meanwhile is not lost (tokio only clears the readiness event it observed).

use std::io;

use bytes::BytesMut;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Reads what the socket holds into `buf`'s spare capacity (reserve first). `Ok(0)` is end of
/// stream; `Err(WouldBlock)` means nothing was there.
pub fn try_read_drained(stream: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    let room = buf.capacity() - buf.len();
    let mut got = None;
    let r = stream.try_io(Interest::READABLE, || {
        let n = stream.try_read_buf(buf)?;
        got = Some(n);
        if n > 0 && n < room {
            // Drained: let tokio clear the readiness it saw.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match got {
        Some(n) => Ok(n),
        None => r,
    }
}
