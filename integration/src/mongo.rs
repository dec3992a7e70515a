//! MongoDB peers: `nx-27017` (a MongoDB wire-protocol server backed by SQLite), `mockupdb`
//! scripts and pymongo workloads, all from the venv `integration/provision.d/mongo.sh` makes
//! (`$LEGATE_MONGO_PYTHON`, else `~/.cache/legate-test/mongo-venv/bin/python`). A missing venv
//! fails the test with that advice.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{wait_until, Proc, TempDir, PATIENCE};

/// The venv's python.
pub fn python() -> PathBuf {
    let p = std::env::var_os("LEGATE_MONGO_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/legate-test/mongo-venv/bin/python")
    });
    assert!(
        p.is_file(),
        "the MongoDB test venv is missing ({}): `bash integration/run-tests.sh` provisions it \
         (integration/provision.d/mongo.sh); tests do not skip",
        p.display()
    );
    p
}

/// A port that was free a moment ago (nx-27017 cannot be told to pick one).
pub fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a probe port");
    l.local_addr().expect("probe address").port()
}

fn wait_listening(addr: SocketAddr, proc: &mut Proc) {
    wait_until(&format!("a server on {addr}"), PATIENCE, || {
        if let Some(s) = proc.try_exit() {
            panic!("server exited with {s}: {}", proc.stderr_text());
        }
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok().map(|_| ())
    });
}

/// A running nx-27017 with an in-memory database.
pub struct NxServer {
    pub proc: Proc,
    pub addr: SocketAddr,
    pub dir: TempDir,
}

impl NxServer {
    pub fn start() -> NxServer {
        let py = python();
        let bin = py.with_file_name("nx-27017");
        let dir = TempDir::new("nx27017");
        let port = free_port();
        let mut cmd = Command::new(&bin);
        cmd.args(["--db", "memory", "--host", "127.0.0.1", "-p", &port.to_string()])
            .arg("--log-file")
            .arg(dir.path().join("nx.log"))
            .arg("--pid-file")
            .arg(dir.path().join("nx.pid"));
        let mut proc = Proc::spawn("nx-27017", cmd, &dir);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_listening(addr, &mut proc);
        NxServer { proc, addr, dir }
    }
}

/// Runs `script <args>` with the venv's python to completion (bounded); returns stdout.
pub fn run_script(script: &Path, args: &[&str]) -> String {
    let dir = TempDir::new("pymongo");
    let mut cmd = Command::new(python());
    cmd.arg(script).args(args);
    let mut p = Proc::spawn("pymongo", cmd, &dir);
    let status = p.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "{} {args:?} failed ({status}):\n{}", script.display(), p.stderr_text());
    p.stdout_text()
}

/// Starts a long-running python script (a mockupdb server) that prints its port first.
pub fn spawn_script(script: &Path, args: &[&str], dir: &TempDir) -> (Proc, SocketAddr) {
    let mut cmd = Command::new(python());
    cmd.arg("-u").arg(script).args(args);
    let mut p = Proc::spawn("mockupdb", cmd, dir);
    let port: u16 = wait_until("the script to print its port", PATIENCE, || {
        if let Some(s) = p.try_exit() {
            panic!("{} exited with {s}: {}", script.display(), p.stderr_text());
        }
        p.stdout_text().lines().next()?.trim().parse().ok()
    });
    (p, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// A listener running `mongo_proxy` (with `extra` fields) then `tcp_proxy` to `cluster`.
pub fn mongo_listener(name: &str, stat_prefix: &str, cluster: &str, extra: &str) -> String {
    let extra: String = extra.lines().map(|l| format!("\n          {l}")).collect();
    format!(
        "  - name: {name}\n    address:\n      socket_address: {{address: 127.0.0.1, port_value: 0}}\n    filter_chains:\n    - filters:\n      - name: envoy.filters.network.mongo_proxy\n        typed_config:\n          '@type': type.googleapis.com/envoy.extensions.filters.network.mongo_proxy.v3.MongoProxy\n          stat_prefix: {stat_prefix}{extra}\n      - name: envoy.filters.network.tcp_proxy\n        typed_config:\n          '@type': type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\n          stat_prefix: {stat_prefix}\n          cluster: {cluster}\n"
    )
}

/// `integration/tests/mongo/<name>`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("mongo").join(name)
}

/// The stats every client's run of the shared CRUD workload (`tests/mongo/workload.py` and the
/// Rust driver's copy of it) leaves, whatever the driver: `v` reads `mongo.<prefix>.<name>`.
pub fn assert_crud_workload_stats(v: impl Fn(&str) -> u64) {
    assert_eq!(v("cmd.insert.total"), 3, "insert_one, insert_many, the duplicate");
    assert_eq!(v("cmd.find.total"), 4, "by _id, by _id $in, by name, the cursor");
    assert_eq!(v("cmd.getMore.total"), 2, "6 documents in batches of 2");
    assert_eq!(v("cmd.update.total"), 1);
    assert_eq!(v("cmd.delete.total"), 1);
    assert_eq!(v("cmd.aggregate.total"), 3, "two aggregates and count_documents");
    // The server-side error and the write error, per command.
    assert_eq!(v("cmd.aggregate.error"), 1);
    assert_eq!(v("cmd.insert.write_error"), 1);
    assert_eq!(v("cmd.insert.error"), 0, "write errors come with ok: 1");
    assert_eq!(v("op_msg_reply_error"), 1);
    // Collection query stats: 4 finds + 3 aggregates on `items`.
    assert_eq!(v("collection.items.query.total"), 7);
    assert_eq!(v("collection.items.query.multi_get"), 1, "the _id $in find");
    assert_eq!(v("collection.items.query.scatter_get"), 4, "by name, the cursor, 2 aggregates (count is by _id)");
    // Documents written, from the replies' `n` (insert_many's 6 go in one kind 1 sequence).
    assert_eq!(v("collection.items.docs_inserted"), 7, "1 + 6 + the duplicate's 0");
    assert_eq!(v("collection.items.docs_updated"), 2);
    assert_eq!(v("collection.items.docs_deleted"), 1);
    assert_eq!(v("op_msg_more_to_come"), 0);
    // Every request got its reply: nothing pending, nothing unreadable.
    assert_eq!(v("decoding_error"), 0);
    assert_eq!(v("op_msg"), v("op_msg_reply"), "every request was answered");
    assert_eq!(v("op_query"), 0, "current drivers speak OP_MSG only");
}
