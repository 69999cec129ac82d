//! mesh-proxy: serves HTTP from a compiled meshc routing table.
//!
//! `mesh-proxy --table FILE [--listen ADDR] [--admin ADDR] [--workers N] [--grace-ms MS]`

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

const USAGE: &str = "usage: mesh-proxy --table FILE [--listen 127.0.0.1:15001] \
[--admin 127.0.0.1:15000] [--workers N] [--grace-ms 5000]";

struct Args {
    config: mesh_proxy::Config,
    workers: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut table = None;
    let mut listen: Option<SocketAddr> = None;
    let mut admin: Option<SocketAddr> = None;
    let mut workers = std::thread::available_parallelism().map_or(1, usize::from);
    let mut grace = Duration::from_secs(5);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--table" => table = Some(value("--table")?),
            "--listen" => {
                listen = Some(
                    value("--listen")?
                        .parse()
                        .map_err(|e| format!("--listen: {e}"))?,
                )
            }
            "--admin" => {
                admin = Some(
                    value("--admin")?
                        .parse()
                        .map_err(|e| format!("--admin: {e}"))?,
                )
            }
            "--workers" => {
                workers = value("--workers")?
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("--workers needs a positive number")?
            }
            "--grace-ms" => {
                grace = Duration::from_millis(
                    value("--grace-ms")?
                        .parse()
                        .map_err(|e| format!("--grace-ms: {e}"))?,
                )
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    let table = table.ok_or_else(|| format!("--table is required\n{USAGE}"))?;
    let mut config = mesh_proxy::Config::new(table);
    if let Some(listen) = listen {
        config.listen = listen;
    }
    if let Some(admin) = admin {
        config.admin = admin;
    }
    config.grace = grace;
    Ok(Args { config, workers })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("mesh-proxy: {message}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mesh-proxy: internal error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args.config))
}

async fn run(config: mesh_proxy::Config) -> ExitCode {
    let (mut hangup, mut terminate, mut interrupt) = match (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(h), Ok(t), Ok(i)) => (h, t, i),
        _ => {
            eprintln!("mesh-proxy: internal error: cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    let running = match mesh_proxy::start(config).await {
        Ok(running) => running,
        Err(e) => {
            eprintln!("mesh-proxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    loop {
        tokio::select! {
            _ = hangup.recv() => running.reload(),
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    tracing::info!("shutting down: draining in-flight requests");
    running.shutdown().await;
    ExitCode::SUCCESS
}
