//! mesh-proxy: serves HTTP from a compiled meshc routing table.
//!
//! `mesh-proxy --table FILE [--listen ADDR] [--admin ADDR] [--workers N] [--busy-poll MICROS]
//! [--grace-ms MS]`
//! plus the telemetry flags in [`OBSERVE_FLAGS`] and the connection limits.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

/// mimalloc rather than the system allocator: a proxied request allocates and frees a few dozen
/// small buffers and header maps, and glibc's malloc spent about a third of the proxy's
/// user-space instructions on them (BENCHMARKS.md, "allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: mesh-proxy --table FILE [--listen 127.0.0.1:15001] \
[--admin 127.0.0.1:15000] [--workers N] [--busy-poll 50] [--grace-ms 5000]";

/// Telemetry flags (docs/observability.md).
const OBSERVE_FLAGS: &str = "[--metrics on|off] [--access-log stdout|off|FILE] \
[--reporter source|destination] [--workload-name NAME] [--workload-namespace NS] \
[--otlp-endpoint http://HOST:PORT[/PATH]] [--trace-sampling PERCENT]";

/// The binary's telemetry defaults: metrics on, access log to stdout, the workload's name and
/// namespace from `MESH_WORKLOAD_NAME` and `MESH_WORKLOAD_NAMESPACE` when set.
fn default_observe() -> mesh_proxy::ObserveConfig {
    let mut observe = mesh_proxy::ObserveConfig {
        access_log: mesh_proxy::AccessLogTarget::Stdout,
        ..mesh_proxy::ObserveConfig::default()
    };
    if let Ok(name) = std::env::var("MESH_WORKLOAD_NAME")
        && !name.is_empty()
    {
        observe.workload_name = name;
    }
    if let Ok(namespace) = std::env::var("MESH_WORKLOAD_NAMESPACE")
        && !namespace.is_empty()
    {
        observe.workload_namespace = namespace;
    }
    observe
}

/// Applies one telemetry flag; `Ok(false)` when `flag` is not one of them.
fn observe_flag(
    observe: &mut mesh_proxy::ObserveConfig,
    flag: &str,
    value: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<bool, String> {
    match flag {
        "--metrics" => {
            observe.metrics = match value(flag)?.as_str() {
                "on" => true,
                "off" => false,
                other => return Err(format!("--metrics takes `on` or `off`, not `{other}`")),
            }
        }
        "--access-log" => {
            observe.access_log = match value(flag)?.as_str() {
                "stdout" | "-" => mesh_proxy::AccessLogTarget::Stdout,
                "off" => mesh_proxy::AccessLogTarget::Off,
                "" => return Err("--access-log needs `stdout`, `off` or a file path".to_owned()),
                path => mesh_proxy::AccessLogTarget::File(path.into()),
            }
        }
        "--reporter" => {
            let reporter = value(flag)?;
            observe.reporter = mesh_proxy::Reporter::parse(&reporter).ok_or_else(|| {
                format!("--reporter takes `source` or `destination`, not `{reporter}`")
            })?;
        }
        "--workload-name" | "--workload-namespace" => {
            let text = value(flag)?;
            if text.is_empty() || text.chars().any(|c| c.is_control()) {
                return Err(format!("{flag} needs a non-empty name"));
            }
            if flag == "--workload-name" {
                observe.workload_name = text;
            } else {
                observe.workload_namespace = text;
            }
        }
        "--otlp-endpoint" => {
            observe.otlp_endpoint =
                Some(mesh_proxy::traces_url(&value(flag)?).map_err(|e| format!("{flag}: {e}"))?)
        }
        "--trace-sampling" => {
            let text = value(flag)?;
            observe.trace_sampling_percent = text
                .parse::<f64>()
                .ok()
                .filter(|p| (0.0..=100.0).contains(p))
                .ok_or_else(|| {
                    format!("--trace-sampling needs a percentage from 0 to 100, not `{text}`")
                })?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

struct Args {
    config: mesh_proxy::Config,
    workers: usize,
    /// The longest busy-poll window with one worker (`busy_poll.rs`); zero turns it off.
    busy_poll: Duration,
}

/// The default longest busy-poll window (BENCHMARKS.md, "Busy polling before the worker sleeps").
const BUSY_POLL_DEFAULT: Duration = Duration::from_micros(50);

fn parse_args() -> Result<Args, String> {
    let mut table = None;
    let mut listen: Option<SocketAddr> = None;
    let mut admin: Option<SocketAddr> = None;
    let mut workers = std::thread::available_parallelism().map_or(1, usize::from);
    let mut grace = Duration::from_secs(5);
    let mut busy_poll = BUSY_POLL_DEFAULT;
    let mut limits = mesh_proxy::Limits::default();
    let mut observe = default_observe();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        if observe_flag(&mut observe, &arg, &mut value)? {
            continue;
        }
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
            "--busy-poll" => {
                busy_poll = value("--busy-poll")?
                    .parse()
                    .ok()
                    .filter(|&us| us <= 10_000)
                    .map(Duration::from_micros)
                    .ok_or("--busy-poll needs microseconds from 0 (off) to 10000")?
            }
            "--grace-ms" => {
                grace = Duration::from_millis(
                    value("--grace-ms")?
                        .parse()
                        .map_err(|e| format!("--grace-ms: {e}"))?,
                )
            }
            flag if mesh_proxy::Limits::is_flag(flag) => limits.set_flag(flag, &value(flag)?)?,
            "-h" | "--help" => {
                return Err(format!(
                    "{USAGE}\n       {}\n       {OBSERVE_FLAGS}",
                    mesh_proxy::Limits::FLAGS
                ));
            }
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
    config.limits = limits;
    config.observe = observe;
    Ok(Args {
        config,
        workers,
        busy_poll,
    })
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
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // One worker: everything runs on this thread (no work-stealing scheduler, no wake-ups
    // across threads), busy-polling briefly before it sleeps unless `--busy-poll 0`. More: a
    // multi-threaded runtime with that many workers.
    let runtime = if args.workers == 1 && !args.busy_poll.is_zero() {
        mesh_proxy::busy_poll::runtime(args.busy_poll)
    } else if args.workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.workers)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(flag: &str, value: &str) -> Result<mesh_proxy::ObserveConfig, String> {
        let mut observe = mesh_proxy::ObserveConfig::default();
        let mut value = |_: &str| Ok(value.to_owned());
        assert!(
            observe_flag(&mut observe, flag, &mut value)?,
            "{flag} is a flag"
        );
        Ok(observe)
    }

    #[test]
    fn telemetry_flags_parse_and_refuse_bad_values() {
        assert!(!apply("--metrics", "off").unwrap().metrics);
        assert_eq!(
            apply("--access-log", "/var/log/access.log")
                .unwrap()
                .access_log,
            mesh_proxy::AccessLogTarget::File("/var/log/access.log".into())
        );
        assert_eq!(
            apply("--access-log", "off").unwrap().access_log,
            mesh_proxy::AccessLogTarget::Off
        );
        assert_eq!(
            apply("--reporter", "destination").unwrap().reporter,
            mesh_proxy::Reporter::Destination
        );
        assert_eq!(
            apply("--trace-sampling", "12.5")
                .unwrap()
                .trace_sampling_percent,
            12.5
        );
        assert_eq!(
            apply("--otlp-endpoint", "http://127.0.0.1:4318")
                .unwrap()
                .otlp_endpoint
                .map(|u| u.to_string()),
            Some("http://127.0.0.1:4318/v1/traces".to_owned())
        );
        for (flag, bad) in [
            ("--metrics", "maybe"),
            ("--reporter", "sideways"),
            ("--trace-sampling", "150"),
            ("--trace-sampling", "NaN"),
            ("--otlp-endpoint", "https://collector:4318"),
            ("--workload-name", ""),
        ] {
            assert!(apply(flag, bad).is_err(), "{flag} {bad} is refused");
        }
        let mut observe = mesh_proxy::ObserveConfig::default();
        let mut value = |_: &str| Ok(String::new());
        assert_eq!(
            observe_flag(&mut observe, "--listen", &mut value),
            Ok(false)
        );
    }
}
