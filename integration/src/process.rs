//! Processes the tests start (Legate, Envoy, redis-server): each is owned by a [`Proc`] guard
//! that kills it by PID when dropped, so a failing test never leaves one behind. Also the
//! per-test scratch directory, the "required binary" check and bounded polling.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a test waits for anything that should be quick (a process to start or exit, a
/// counter to move). Generous because CI machines are slow; only ever an upper bound.
pub const PATIENCE: Duration = Duration::from_secs(15);

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

/// A scratch directory under `std::env::temp_dir()`, unique per test, removed on drop (kept,
/// and its path printed, when the test is failing so its configs and logs can be read).
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("legate-it-{tag}-{}-{n}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to `name` inside the directory and returns the full path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.path.join(name);
        fs::write(&p, contents).unwrap_or_else(|e| panic!("cannot write {}: {e}", p.display()));
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("[legate-it] kept {} for inspection", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Whether we run in CI (`CI=true`, as CI providers set it).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Finds `name` on `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// The path of a binary a test needs. A missing binary fails the test with a message that says
/// how to get it: tests never skip, in CI (`CI=true`) or locally.
pub fn require_binary(name: &str) -> PathBuf {
    find_on_path(name).unwrap_or_else(|| {
        panic!(
            "required binary `{name}` is not on PATH (CI={}). `bash integration/run-tests.sh` \
             installs every peer the tests need; tests do not skip when one is missing.",
            in_ci()
        )
    })
}

/// Polls `f` every 20 ms until it returns `Some`, for at most `timeout`; panics naming `what`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `f` every 20 ms until it returns true, for at most `timeout`; returns whether it did.
pub fn wait_until_or(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process with stdout and stderr captured to files; killed (SIGKILL, by PID) on drop
/// if it is still running. When the test is failing, the tail of its stderr is printed.
pub struct Proc {
    name: String,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Spawns `cmd` with its output going to `<dir>/<name>.stdout` and `.stderr`.
    pub fn spawn(name: &str, mut cmd: Command, dir: &TempDir) -> Proc {
        let stdout = dir.path().join(format!("{name}.stdout"));
        let stderr = dir.path().join(format!("{name}.stderr"));
        let out = fs::File::create(&stdout).expect("create stdout capture file");
        let err = fs::File::create(&stderr).expect("create stderr capture file");
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name} ({:?}): {e}", cmd.get_program()));
        Proc { name: name.to_string(), child, stdout, stderr, status: None }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`"TERM"`, `"INT"`, `"HUP"`, ...) to this process by PID, with the
    /// shell's `kill` builtin (no libc bindings needed).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("sh")
            .args(["-c", "kill -s \"$1\" \"$2\"", "sh", sig, &self.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "could not send SIG{sig} to {} (pid {})", self.name, self.pid());
    }

    /// The exit status if the process has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status
    }

    /// Waits for the process to exit, for at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let name = self.name.clone();
        wait_until(&format!("{name} to exit"), timeout, || self.try_exit())
    }

    pub fn stdout_text(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn stderr_text(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.try_exit().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            let err = self.stderr_text();
            let lines: Vec<&str> = err.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!("[legate-it] last stderr lines of {} (pid {}):\n{}", self.name, self.child.id(), tail.join("\n"));
        }
    }
}

/// The result of a command run to completion.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command to completion (bounded by [`PATIENCE`]) and returns its exit code and output.
pub fn run_to_end<S: AsRef<OsStr>>(program: &Path, args: &[S], cwd: Option<&Path>) -> Finished {
    let dir = TempDir::new("run");
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(c) = cwd {
        cmd.current_dir(c);
    }
    let name = program.file_name().map_or("cmd".into(), |n| n.to_string_lossy().into_owned());
    let mut p = Proc::spawn(&name, cmd, &dir);
    let status = p.wait_exit(PATIENCE);
    Finished { code: status.code(), stdout: p.stdout_text(), stderr: p.stderr_text() }
}
