//! The `legate` binary: parse the command line, load and validate the config, run.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Parser;
use legate::cli::{self, Mode, Options};
use legate::config::{self, LoadOptions};
use legate::logging::LogControl;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // Envoy exits 1 on any unparsable argument (clap's default is 2); help goes to stdout, 0.
    let opts = match Options::try_parse() {
        Ok(o) => o,
        Err(e) => {
            let code = if e.use_stderr() { ExitCode::FAILURE } else { ExitCode::SUCCESS };
            let _ = e.print();
            return code;
        }
    };
    if opts.version {
        print!("{}", cli::version_text());
        return ExitCode::SUCCESS;
    }
    let mode = match opts.mode() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let components = match opts.check_log_levels() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let log = match LogControl::init(&opts.log_level, &components, opts.log_path.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot open log path: {e}");
            return ExitCode::FAILURE;
        }
    };
    let load_opts = LoadOptions {
        config_path: opts.config_path.clone(),
        config_yaml: opts.config_yaml.clone(),
        allow_unknown_static_fields: opts.allow_unknown_static_fields,
    };
    let mut loaded = match config::load(&load_opts) {
        Ok(l) => l,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::FAILURE;
        }
    };
    apply_node_overrides(&opts, &mut loaded.bootstrap);
    let workers = opts.workers();
    // One worker (`--concurrency 1`, how the benchmarks and most sidecars run): a current-thread
    // runtime, so the accept loops, the admin endpoint and every connection share one thread with
    // no cross-thread queue, wake-up or work stealing to pay for (Envoy's worker is likewise a
    // single-threaded event loop). More workers: tokio's multi-thread scheduler.
    let runtime = if workers == 1 {
        legate::listener::WORKER_ID.with(|w| w.set(0));
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        let next = AtomicUsize::new(0);
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .thread_name("legate-worker")
            .on_thread_start(move || {
                let id = next.fetch_add(1, Ordering::Relaxed);
                legate::listener::WORKER_ID.with(|w| w.set(id));
            })
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let origin = opts.config_path.clone().unwrap_or_default();
    let result = runtime.block_on(async {
        match mode {
            Mode::Validate => {
                for w in &loaded.warnings {
                    eprintln!("warning: {w}");
                }
                legate::server::check_buildable(&loaded).await.map(|_| {
                    println!("configuration '{origin}' OK");
                })
            }
            Mode::Serve | Mode::InitOnly => {
                legate::server::run(opts.clone(), loaded, log, mode == Mode::InitOnly).await
            }
        }
    });
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(errors) => {
            if mode == Mode::Validate {
                eprintln!(
                    "configuration '{origin}' is invalid ({} error{}):",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" }
                );
            }
            for e in errors {
                eprintln!("  {e}");
            }
            ExitCode::FAILURE
        }
    }
}

/// `--service-node`, `--service-cluster` and `--service-zone` override the bootstrap's node.
fn apply_node_overrides(opts: &Options, b: &mut legate::config::Bootstrap) {
    if let Some(n) = &opts.service_node {
        b.node.id = n.clone();
    }
    if let Some(c) = &opts.service_cluster {
        b.node.cluster = c.clone();
    }
    if let Some(z) = &opts.service_zone {
        if !b.node.locality.is_object() {
            b.node.locality = serde_json::json!({});
        }
        b.node.locality["zone"] = serde_json::Value::String(z.clone());
    }
}
