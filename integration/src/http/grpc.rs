//! gRPC peers: the Python grpcio echo server and client in `integration/grpc/` (service
//! `legate.test.Echo`: unary, client-, server- and bidi-streaming), run with the venv python
//! `integration/provision.d/http.sh` makes (`$LEGATE_GRPC_PYTHON`, else
//! `~/.cache/legate-test/grpc-venv/bin/python`). The scripts generate their stubs at start
//! with `grpc_tools.protoc` into a temporary directory. A missing venv fails the test.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::process::{wait_until, Proc, TempDir, PATIENCE};

/// The venv's python (grpcio, grpcio-tools).
pub fn grpc_python() -> PathBuf {
    let p = std::env::var_os("LEGATE_GRPC_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/legate-test/grpc-venv/bin/python")
    });
    assert!(
        p.is_file(),
        "the gRPC test venv is missing ({}): `bash integration/run-tests.sh` provisions it \
         (integration/provision.d/http.sh); tests do not skip",
        p.display()
    );
    p
}

/// A script in `integration/grpc/`.
pub fn grpc_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("grpc").join(name)
}

/// A running `integration/grpc/server.py` on 127.0.0.1; killed by PID on drop.
pub struct GrpcServer {
    pub port: u16,
    pub proc: Proc,
    _dir: TempDir,
}

impl GrpcServer {
    /// Starts a server labelled `grpc`.
    pub fn start() -> GrpcServer {
        GrpcServer::named("grpc")
    }

    /// Starts a server whose replies carry `server: <name>`.
    pub fn named(name: &str) -> GrpcServer {
        let dir = TempDir::new("grpc-server");
        let mut cmd = Command::new(grpc_python());
        cmd.arg(grpc_script("server.py")).args(["--port", "0", "--name", name, "--max-seconds", "600"]);
        let mut proc = Proc::spawn(&format!("grpc-server-{name}"), cmd, &dir);
        // stub generation plus grpcio import take a second or two on a busy machine
        let port = wait_until("the gRPC server to print its port", PATIENCE * 2, || {
            if let Some(s) = proc.try_exit() {
                panic!("grpc server exited with {s}: {}", proc.stderr_text());
            }
            proc.stdout_text().lines().next().and_then(|l| l.trim().parse::<u16>().ok())
        });
        GrpcServer { port, proc, _dir: dir }
    }

    /// `127.0.0.1:<port>`.
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// The four call kinds of the echo service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrpcKind {
    Unary,
    ClientStream,
    ServerStream,
    Bidi,
}

impl GrpcKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GrpcKind::Unary => "unary",
            GrpcKind::ClientStream => "client_stream",
            GrpcKind::ServerStream => "server_stream",
            GrpcKind::Bidi => "bidi",
        }
    }
}

/// What one call asks of the server (see `integration/grpc/echo.proto`).
#[derive(Clone, Debug, Default)]
pub struct GrpcOpts {
    /// Request messages (streams send each; unary sends the first). Empty: `["hello"]`.
    pub messages: Vec<String>,
    /// The call's deadline (sent as `grpc-timeout`).
    pub deadline: Option<Duration>,
    /// The server sleeps this long before each reply.
    pub sleep_ms: u32,
    /// Non-zero: the server fails the call with this status code.
    pub fail_code: i32,
    pub fail_message: String,
    /// server_stream: the number of replies.
    pub repeat: u32,
    /// Request metadata.
    pub metadata: Vec<(String, String)>,
    /// Overrides `:authority` (else the target).
    pub authority: Option<String>,
}

/// Runs one call with `integration/grpc/client.py` against `target` (`host:port`) and returns
/// its JSON outcome: `code` (e.g. `"OK"`, `"DEADLINE_EXCEEDED"`), `code_value`, `details`,
/// `responses` (`message`, `index`, `server`, `metadata`), `initial_metadata`,
/// `trailing_metadata`, `elapsed_ms`.
pub fn grpc_call(target: &str, kind: GrpcKind, opts: &GrpcOpts) -> serde_json::Value {
    let dir = TempDir::new("grpc-client");
    let mut cmd = Command::new(grpc_python());
    cmd.arg(grpc_script("client.py")).args(["--target", target, "--kind", kind.as_str()]);
    for m in &opts.messages {
        cmd.args(["--message", m]);
    }
    if let Some(d) = opts.deadline {
        cmd.args(["--deadline", &format!("{:.3}", d.as_secs_f64())]);
    }
    cmd.args(["--sleep-ms", &opts.sleep_ms.to_string(), "--repeat", &opts.repeat.to_string()]);
    if opts.fail_code != 0 {
        cmd.args(["--fail-code", &opts.fail_code.to_string(), "--fail-message", &opts.fail_message]);
    }
    for (k, v) in &opts.metadata {
        cmd.args(["--metadata", &format!("{k}={v}")]);
    }
    if let Some(a) = &opts.authority {
        cmd.args(["--authority", a]);
    }
    let mut p = Proc::spawn("grpc-client", cmd, &dir);
    // bounded: the deadline (if any) plus start-up, never more than a minute and a half
    let bound = PATIENCE * 2 + opts.deadline.unwrap_or(Duration::from_secs(30)).min(Duration::from_secs(60));
    let status = p.wait_exit(bound);
    let out = p.stdout_text();
    assert!(status.success(), "grpc client failed ({status}): {}\n{out}", p.stderr_text());
    serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("grpc client printed no JSON ({e}): {out}\n{}", p.stderr_text()))
}
