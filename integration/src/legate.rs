//! The `legate` binary under test: where it is, running it to completion (`--mode validate`,
//! CLI errors), and serving a config written into a per-test directory with its admin on an
//! ephemeral port (found through `--admin-address-path`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::admin::{self, Response, Stats};
use crate::process::{self, wait_until, Finished, Proc, TempDir, PATIENCE};

/// The workspace root (this crate lives in `<root>/integration`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("integration/ has a parent").to_path_buf()
}

/// The `legate` binary: `$LEGATE_BIN`, else `$CARGO_TARGET_DIR/debug/legate`, else
/// `<workspace>/target/debug/legate`. The integration crate cannot depend on a binary, so the
/// test command builds it first (`cargo build --workspace`); a missing or stale binary fails
/// here with that advice instead of testing old code.
pub fn legate_binary() -> PathBuf {
    let path = match std::env::var_os("LEGATE_BIN") {
        Some(p) => PathBuf::from(p),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .map(|t| if t.is_relative() { workspace_root().join(t) } else { t })
                .unwrap_or_else(|| workspace_root().join("target"));
            target.join("debug").join("legate")
        }
    };
    assert!(
        path.is_file(),
        "legate binary not found at {}: run `cargo build --workspace` first \
         (integration/run-tests.sh does)",
        path.display()
    );
    // run-tests.sh builds the binary with cargo right before the tests (cargo knows what is
    // fresh; a test-only source edit rightly does not relink it), so it skips this heuristic.
    if std::env::var_os("LEGATE_BIN").is_none() && std::env::var_os("LEGATE_BINARY_JUST_BUILT").is_none() {
        check_fresh(&path);
    }
    path
}

/// Fails when a source file of the `legate` package (or its codecs) is newer than the binary.
fn check_fresh(bin: &Path) {
    let built = mtime(bin);
    let root = workspace_root();
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    // Only sources: cargo rebuilds when one of them is newer, while manifest edits that do
    // not affect the binary leave it untouched.
    let mut visit = vec![root.join("src"), root.join("codecs").join("src")];
    while let Some(p) = visit.pop() {
        if p.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                visit.extend(rd.filter_map(|e| e.ok()).map(|e| e.path()));
            }
        } else if p.is_file() {
            let t = mtime(&p);
            if newest.as_ref().is_none_or(|(n, _)| t > *n) {
                newest = Some((t, p));
            }
        }
    }
    if let Some((t, p)) = newest {
        assert!(
            t <= built,
            "{} is newer than the legate binary {}: run `cargo build --workspace` first",
            p.display(),
            bin.display()
        );
    }
}

fn mtime(p: &Path) -> SystemTime {
    std::fs::metadata(p).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Runs `legate <args>` to completion (bounded) in `cwd`.
pub fn run_legate(args: &[&str], cwd: Option<&Path>) -> Finished {
    process::run_to_end(&legate_binary(), args, cwd)
}

/// `legate --mode validate -c <path>` plus `extra` flags.
pub fn validate(path: &Path, extra: &[&str]) -> Finished {
    let p = path.to_string_lossy().into_owned();
    let mut args = vec!["--mode", "validate", "-c", p.as_str()];
    args.extend_from_slice(extra);
    run_legate(&args, None)
}

/// The admin block every test config uses: 127.0.0.1, port chosen by the kernel.
pub const ADMIN_EPHEMERAL: &str = "admin:\n  address:\n    socket_address: {address: 127.0.0.1, port_value: 0}\n";

/// A serving Legate. Killed by PID when dropped (use [`Legate::stop`] for a clean shutdown).
pub struct Legate {
    pub proc: Proc,
    pub admin: SocketAddr,
    pub dir: TempDir,
    pub config: PathBuf,
}

/// The `--concurrency` every test Legate runs with: 2, or `LEGATE_TEST_CONCURRENCY` (the test
/// command's second pass sets 1, which runs the single-threaded runtime).
pub fn test_concurrency() -> u64 {
    std::env::var("LEGATE_TEST_CONCURRENCY").ok().and_then(|v| v.parse().ok()).unwrap_or(2)
}

impl Legate {
    /// Serves `yaml` with `--concurrency 2` (or `LEGATE_TEST_CONCURRENCY`, which the test command
    /// sets to 1 for a second pass over the single-threaded runtime) and waits until `/ready`
    /// says LIVE.
    pub fn start(yaml: &str) -> Legate {
        Legate::start_with(yaml, &[])
    }

    /// As [`Legate::start`], with extra command-line flags.
    pub fn start_with(yaml: &str, extra: &[&str]) -> Legate {
        let mut l = Legate::spawn(yaml, extra);
        l.wait_ready();
        l
    }

    /// Starts the process without waiting for it to come up.
    pub fn spawn(yaml: &str, extra: &[&str]) -> Legate {
        let dir = TempDir::new("legate");
        let config = dir.write("legate.yaml", yaml);
        let admin_file = dir.path().join("admin_address");
        let mut cmd = Command::new(legate_binary());
        cmd.arg("-c")
            .arg(&config)
            .arg("--admin-address-path")
            .arg(&admin_file)
            .arg("--concurrency")
            .arg(test_concurrency().to_string())
            .args(extra)
            .current_dir(dir.path());
        let proc = Proc::spawn("legate", cmd, &dir);
        Legate { proc, admin: SocketAddr::from(([127, 0, 0, 1], 0)), dir, config }
    }

    /// Waits for the admin address file and for `/ready` to answer `LIVE`.
    pub fn wait_ready(&mut self) {
        let file = self.dir.path().join("admin_address");
        let proc = &mut self.proc;
        let admin: SocketAddr = wait_until("legate to write its admin address", PATIENCE, || {
            if let Some(status) = proc.try_exit() {
                panic!("legate exited with {status} before serving; stderr:\n{}", proc.stderr_text());
            }
            std::fs::read_to_string(&file).ok()?.trim().parse().ok()
        });
        self.admin = admin;
        wait_until("legate /ready to say LIVE", PATIENCE, || {
            let r = admin::request(admin, "GET", "/ready").ok()?;
            (r.status == 200 && r.body == "LIVE\n").then_some(())
        });
    }

    pub fn get(&self, path: &str) -> Response {
        admin::get(self.admin, path)
    }

    pub fn post(&self, path: &str) -> Response {
        admin::post(self.admin, path)
    }

    /// `/stats`, parsed.
    pub fn stats(&self) -> Stats {
        let r = self.get("/stats");
        assert_eq!(r.status, 200, "/stats failed: {}", r.body);
        Stats::parse(&r.body)
    }

    /// Waits until stat `name` is at least `min` and returns its value.
    pub fn wait_stat(&self, name: &str, min: u64) -> u64 {
        wait_until(&format!("{name} >= {min}"), PATIENCE, || {
            let v = self.stats().value(name);
            (v >= min).then_some(v)
        })
    }

    /// Waits until stat `name` is exactly `want`.
    pub fn wait_stat_eq(&self, name: &str, want: u64) {
        let mut last = 0;
        let ok = crate::process::wait_until_or(PATIENCE, || {
            last = self.stats().value(name);
            last == want
        });
        assert!(ok, "{name} is {last}, expected {want}");
    }

    /// The port the config's only listener is bound to (the config said port 0). Read from
    /// `/listeners` when the admin endpoint has it, else from the `listener.<ip>_<port>.*`
    /// stats, which only works when there is exactly one listener.
    pub fn listener_port(&self, name: &str) -> u16 {
        let r = admin::request(self.admin, "GET", "/listeners").expect("GET /listeners");
        admin::parse_listeners(&r.body)
            .get(name)
            .unwrap_or_else(|| panic!("legate /listeners has no '{name}':\n{}", r.body))
            .port()
    }

    /// The listener's address on 127.0.0.1.
    pub fn listener_addr(&self, name: &str) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.listener_port(name)))
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit code.
    pub fn stop(&mut self) -> Option<i32> {
        self.proc.signal("TERM");
        self.proc.wait_exit(PATIENCE).code()
    }

    /// Waits for the process to exit (bounded) and returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        self.proc.wait_exit(timeout).code()
    }
}
