//! A real PostgreSQL server on 127.0.0.1 for the postgres_proxy tests: a throw-away cluster
//! (trust authentication, fsync off) on a free port, and the real `psql` and `pgbench`.
//!
//! `initdb` runs once per test binary into a template directory; each server copies it and
//! starts its own `postgres`, so tests do not share a server (nor its stats). When the tests
//! run as root, PostgreSQL (which refuses to run as root) runs as the `postgres` user that
//! Debian's package creates, through `setpriv`.

use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::peers::free_port;
use crate::process::{self, find_on_path, require_binary, Finished, Proc, TempDir, PATIENCE};

/// The database user the tests connect as (the cluster's superuser).
pub const USER: &str = "postgres";

/// Finds a PostgreSQL server binary: on PATH, else in Debian's `/usr/lib/postgresql/<v>/bin`
/// (newest version first). Fails the test when there is none.
pub fn server_binary(name: &str) -> PathBuf {
    if let Some(p) = find_on_path(name) {
        return p;
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path().join("bin").join(name)).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    dirs.sort_by_key(|p| {
        let v = p.iter().rev().nth(2).and_then(|s| s.to_str()).and_then(|s| s.parse::<u32>().ok());
        std::cmp::Reverse(v)
    });
    dirs.into_iter().next().unwrap_or_else(|| {
        panic!(
            "PostgreSQL's `{name}` is neither on PATH nor in /usr/lib/postgresql/*/bin: \
             `bash integration/run-tests.sh` installs Debian's postgresql; tests do not skip"
        )
    })
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// A command that runs `program` as the postgres user when we are root.
fn as_pg_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new(require_binary("setpriv"));
        c.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn chown_to_pg(path: &Path) {
    if is_root() {
        let ok = Command::new("chown").arg("-R").arg("postgres:postgres").arg(path).status().is_ok_and(|s| s.success());
        assert!(ok, "chown -R postgres {} failed (is there a `postgres` user?)", path.display());
    }
}

const TEMPLATE_PREFIX: &str = "legate-it-pg-template-";

/// Removes the templates of test processes that are gone (a template lives as long as its
/// test binary; nothing runs when the binary exits to remove it).
fn remove_stale_templates() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix(TEMPLATE_PREFIX) {
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// The initdb'd template data directory of this test binary.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        remove_stale_templates();
        let dir = std::env::temp_dir().join(format!("{TEMPLATE_PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create template dir");
        chown_to_pg(&dir);
        let data = dir.join("data");
        let mut cmd = as_pg_user(&server_binary("initdb"));
        cmd.arg("-D").arg(&data).args(["-A", "trust", "-U", USER, "-E", "UTF8", "--no-sync", "--locale=C"]);
        let out = cmd.output().expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// A running PostgreSQL server; stopped (SIGQUIT: immediate shutdown, then SIGKILL) on drop.
pub struct PgServer {
    pub port: u16,
    pub dir: TempDir,
    proc: Option<Proc>,
}

impl PgServer {
    /// Starts a server on a free port.
    pub fn start() -> PgServer {
        PgServer::start_with(&[])
    }

    /// Starts a server with extra `-c name=value` settings.
    pub fn start_with(settings: &[&str]) -> PgServer {
        let dir = TempDir::new("pg");
        let data = dir.path().join("data");
        let ok = Command::new("cp").arg("-a").arg(template().join("data")).arg(&data).status();
        assert!(ok.is_ok_and(|s| s.success()), "copying the template cluster failed");
        chown_to_pg(dir.path());
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = as_pg_user(&server_binary("postgres"));
            cmd.arg("-D").arg(&data).args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"]);
            cmd.arg("-c").arg(format!("unix_socket_directories={}", dir.path().display()));
            for s in ["fsync=off", "synchronous_commit=off", "full_page_writes=off", "shared_buffers=32MB"]
                .iter()
                .chain(settings)
            {
                cmd.args(["-c", s]);
            }
            let mut proc = Proc::spawn(&format!("postgres-{port}"), cmd, &dir);
            let deadline = Instant::now() + PATIENCE;
            while Instant::now() < deadline {
                if proc.try_exit().is_some() {
                    break; // most likely the port was taken
                }
                if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() && psql_ok(port) {
                    return PgServer { port, dir, proc: Some(proc) };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            eprintln!("postgres on port {port} did not come up: {}", proc.stderr_text());
        }
        panic!("postgres did not start on any of 5 free ports");
    }

    /// The postmaster's PID.
    pub fn pid(&self) -> u32 {
        self.proc.as_ref().map_or(0, Proc::pid)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            if p.try_exit().is_none() {
                p.signal("QUIT");
                let _ = process::wait_until_or(Duration::from_secs(5), || p.try_exit().is_some());
            }
        }
    }
}

fn psql_ok(port: u16) -> bool {
    let out = psql(port, &["-Atc", "SELECT 1"]);
    out.code == Some(0) && out.stdout.trim() == "1"
}

/// Runs `psql -h 127.0.0.1 -p <port> -U postgres -X <args>` to completion.
pub fn psql(port: u16, args: &[&str]) -> Finished {
    let bin = require_binary("psql");
    let port = port.to_string();
    let mut all = vec!["-h", "127.0.0.1", "-p", port.as_str(), "-U", USER, "-X", "-d", "postgres"];
    all.extend_from_slice(args);
    process::run_to_end(&bin, &all, None)
}

/// Runs psql with a connection string (`conninfo`) instead of host/port flags.
pub fn psql_conninfo(conninfo: &str, args: &[&str]) -> Finished {
    let bin = require_binary("psql");
    let mut all = vec!["-X", "-d", conninfo];
    all.extend_from_slice(args);
    process::run_to_end(&bin, &all, None)
}

/// Runs `pgbench -h 127.0.0.1 -p <port> -U postgres <args> postgres` to completion.
pub fn pgbench(port: u16, args: &[&str]) -> Finished {
    let bin = require_binary("pgbench");
    let port = port.to_string();
    let mut all = vec!["-h", "127.0.0.1", "-p", port.as_str(), "-U", USER];
    all.extend_from_slice(args);
    all.push("postgres");
    process::run_to_end(&bin, &all, None)
}

/// The "number of transactions actually processed: N" of pgbench's report.
pub fn pgbench_processed(out: &Finished) -> u64 {
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("number of transactions actually processed:"))
        .unwrap_or_else(|| panic!("no transaction count in pgbench's output:\n{}{}", out.stdout, out.stderr));
    let n = line.split(':').nth(1).and_then(|s| s.trim().split('/').next()).and_then(|s| s.trim().parse().ok());
    n.unwrap_or_else(|| panic!("cannot read the transaction count in {line:?}"))
}

/// A listener `pg` on an ephemeral port: postgres_proxy (`stat_prefix: pg`, plus the YAML lines
/// `filter_extra` under its typed_config) before tcp_proxy to cluster `pg`; `chain_extra` is
/// appended to the filter chain (a `transport_socket`, say).
pub fn pg_listener(filter_extra: &str, chain_extra: &str) -> String {
    format!(
        "  - name: pg
    address:
      socket_address: {{address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.postgres_proxy
        typed_config:
          '@type': type.googleapis.com/envoy.extensions.filters.network.postgres_proxy.v3alpha.PostgresProxy
          stat_prefix: pg
{filter_extra}      - name: envoy.filters.network.tcp_proxy
        typed_config:
          '@type': type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: pg_tcp
          cluster: pg
{chain_extra}"
    )
}
