//! Where formatted lines go: one configured access logger (formatter + file/stdout/stderr).
//!
//! Files are opened for appending and created when missing (Envoy's
//! `envoy.access_loggers.file`); `envoy.access_loggers.stdout` / `.stderr` write to the
//! process streams. All threads share one writer behind a `Mutex`, and each line goes out in a
//! single `write_all` while the lock is held, so lines never interleave. Nothing is buffered in
//! the process (Envoy buffers and flushes every `file_flush_interval`; Legate writes at once).
//! [`AccessLog::reopen`] reopens the file by path, for `/reopen_logs` after log rotation.
//! A failed write is counted ([`AccessLog::failed_writes`]) and otherwise ignored: logging
//! never fails a request.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::format::Formatter;
use super::stream_info::StreamInfo;

/// Where a logger writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkTarget {
    /// A file, opened in append mode and created if missing.
    File(PathBuf),
    /// The process's standard output.
    Stdout,
    /// The process's standard error.
    Stderr,
}

enum Writer {
    File(File),
    Stdout,
    Stderr,
}

impl Writer {
    fn open(target: &SinkTarget) -> io::Result<Writer> {
        Ok(match target {
            SinkTarget::File(path) => Writer::File(open_append(path)?),
            SinkTarget::Stdout => Writer::Stdout,
            SinkTarget::Stderr => Writer::Stderr,
        })
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        match self {
            Writer::File(file) => file.write_all(line),
            Writer::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(line)?;
                out.flush()
            }
            Writer::Stderr => io::stderr().lock().write_all(line),
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// One configured access logger.
pub struct AccessLog {
    target: SinkTarget,
    formatter: Formatter,
    writer: Mutex<Writer>,
    failed_writes: AtomicU64,
}

impl AccessLog {
    /// Opens the sink (creating the file if needed) for lines rendered by `formatter`.
    pub fn open(target: SinkTarget, formatter: Formatter) -> io::Result<AccessLog> {
        let writer = Writer::open(&target)?;
        Ok(AccessLog { target, formatter, writer: Mutex::new(writer), failed_writes: AtomicU64::new(0) })
    }

    /// Formats `info` and writes the line.
    pub fn log(&self, info: &StreamInfo) {
        let line = self.formatter.format(info);
        if self.lock().write_line(line.as_bytes()).is_err() {
            self.failed_writes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Reopens the file by path (after rotation); a no-op for stdout and stderr.
    pub fn reopen(&self) -> io::Result<()> {
        if let SinkTarget::File(path) = &self.target {
            let file = open_append(path)?;
            *self.lock() = Writer::File(file);
        }
        Ok(())
    }

    /// Where this logger writes.
    pub fn target(&self) -> &SinkTarget {
        &self.target
    }

    /// The formatter this logger renders lines with.
    pub fn formatter(&self) -> &Formatter {
        &self.formatter
    }

    /// How many lines could not be written.
    pub fn failed_writes(&self) -> u64 {
        self.failed_writes.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("target", &self.target)
            .field("formatter", &self.formatter)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A scratch directory removed when the test ends.
    struct TempDir(PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn temp_dir(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("legate_accesslog_{}_{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn info(id: u64) -> StreamInfo {
        StreamInfo { connection_id: id, ..StreamInfo::default() }
    }

    #[test]
    fn file_is_created_and_appended_to() {
        let dir = temp_dir("append");
        let path = dir.0.join("access.log");
        std::fs::write(&path, "old\n").unwrap();
        let f = Formatter::parse_text("cid=%CONNECTION_ID%\n").unwrap();
        let log = AccessLog::open(SinkTarget::File(path.clone()), f).unwrap();
        log.log(&info(1));
        log.log(&info(2));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\ncid=1\ncid=2\n");
        assert_eq!(log.failed_writes(), 0);
        assert_eq!(log.target(), &SinkTarget::File(path));
    }

    #[test]
    fn lines_from_many_threads_never_interleave() {
        let dir = temp_dir("threads");
        let path = dir.0.join("access.log");
        let f = Formatter::parse_text("%CONNECTION_ID% %REQ(X-PAD)%\n").unwrap();
        let log = Arc::new(AccessLog::open(SinkTarget::File(path.clone()), f).unwrap());
        let pad = "x".repeat(3000);
        let handles: Vec<_> = (0..8u64)
            .map(|t| {
                let log = Arc::clone(&log);
                let pad = pad.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let mut si = info(t * 1000 + i);
                        si.request_headers = vec![("x-pad".into(), pad.clone())];
                        log.log(&si);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 400);
        assert!(lines.iter().all(|l| l.ends_with(&pad) && l.len() == pad.len() + 1 + l.find(' ').unwrap()));
    }

    #[test]
    fn reopen_follows_a_rotated_file() {
        let dir = temp_dir("reopen");
        let path = dir.0.join("access.log");
        let f = Formatter::parse_text("%CONNECTION_ID%\n").unwrap();
        let log = AccessLog::open(SinkTarget::File(path.clone()), f).unwrap();
        log.log(&info(1));
        let rotated = path.with_extension("1");
        std::fs::rename(&path, &rotated).unwrap();
        log.log(&info(2));
        log.reopen().unwrap();
        log.log(&info(3));
        assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "1\n2\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "3\n");
    }

    #[test]
    fn opening_a_file_in_a_missing_directory_fails() {
        let dir = temp_dir("missing");
        let path = dir.0.join("no/such/dir/access.log");
        let f = Formatter::envoy_default();
        assert!(AccessLog::open(SinkTarget::File(path), f).is_err());
    }

    #[test]
    fn stdout_and_stderr_sinks_open_and_reopen() {
        let log = AccessLog::open(SinkTarget::Stderr, Formatter::parse_text("").unwrap()).unwrap();
        log.log(&info(1));
        assert!(log.reopen().is_ok());
        let out = AccessLog::open(SinkTarget::Stdout, Formatter::parse_text("").unwrap()).unwrap();
        out.log(&info(1));
        assert_eq!(out.failed_writes(), 0);
    }
}
