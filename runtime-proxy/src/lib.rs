//! mesh-proxy: serves HTTP from a compiled meshc routing table, with hot reload.
//!
//! Phases of a request (one function each): listener (`listener.rs`) -> route, fault and
//! action (`proxy.rs`) -> split and upstream with retries (`lb.rs`, `upstream.rs`) -> observe
//! (`observe.rs`). The table and its per-cluster state live in one `ArcSwap` (`state.rs`),
//! replaced whole by `reload.rs`; `admin.rs` serves health and table facts.

mod accesslog;
mod admin;
pub mod busy_poll;
mod downstream;
mod error;
mod fields;
#[doc(hidden)]
pub mod fuzzing;
mod h1;
mod headers;
mod lb;
mod listener;
mod metrics;
mod observe;
mod pool;
mod proxy;
mod reload;
mod rng;
mod state;
mod trace;
mod upstream;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use accesslog::AccessLogTarget;
pub use error::{ErrorKind, ProxyError, Side};
pub use listener::{Limits, raise_open_file_limit};
pub use observe::{Flags, ObserveConfig, Protocol, Reporter, RequestFacts};
pub use proxy::Body;
pub use reload::TableError;
pub use state::{Loaded, Shared};
pub use trace::traces_url;

/// How to run the proxy.
#[derive(Clone, Debug)]
pub struct Config {
    pub table_path: PathBuf,
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    /// How long in-flight requests may take to finish after shutdown starts.
    pub grace: Duration,
    /// How often the table file's identity is checked.
    pub poll_interval: Duration,
    /// Bounds on downstream connections (both listeners).
    pub limits: Limits,
    /// Metrics, access log and traces.
    pub observe: ObserveConfig,
}

impl Config {
    /// Defaults: traffic on 127.0.0.1:15001, admin on 127.0.0.1:15000, 5 s grace, 500 ms poll.
    pub fn new(table_path: impl Into<PathBuf>) -> Config {
        Config {
            table_path: table_path.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 15001)),
            admin: SocketAddr::from(([127, 0, 0, 1], 15000)),
            grace: Duration::from_secs(5),
            poll_interval: Duration::from_millis(500),
            limits: Limits::default(),
            observe: ObserveConfig::default(),
        }
    }
}

/// Why the proxy could not start.
#[derive(Debug)]
pub enum StartError {
    Table(TableError),
    Bind(&'static str, SocketAddr, std::io::Error),
    /// The access log could not be opened.
    Observe(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Table(e) => write!(f, "{e}"),
            StartError::Bind(what, addr, e) => write!(f, "cannot listen for {what} on {addr}: {e}"),
            StartError::Observe(e) => write!(f, "cannot start telemetry: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A started proxy: its bound addresses and the handles to reload or stop it.
pub struct Running {
    pub listen_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub shared: Arc<Shared>,
    reload_now: Arc<Notify>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Re-reads the table now (what SIGHUP does).
    pub fn reload(&self) {
        self.reload_now.notify_one();
    }

    /// Stops accepting, drains in-flight requests up to the grace period, and returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Loads the table (refusing to start without a valid one), binds both listeners and starts
/// serving on the current tokio runtime.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let path = config.table_path.clone();
    let identity_before_read = reload::identity(&config.table_path);
    let loaded = tokio::task::spawn_blocking(move || reload::read_table(&path))
        .await
        .unwrap_or_else(|e| {
            Err(TableError::Read(
                config.table_path.clone(),
                std::io::Error::other(e.to_string()),
            ))
        })
        .map_err(StartError::Table)?;
    let shared = Arc::new(Shared {
        current: ArcSwap::from_pointee(loaded),
        table_path: config.table_path.clone(),
        reloads_ok: AtomicU64::new(0),
        reloads_failed: AtomicU64::new(0),
    });
    // Each downstream connection is a file descriptor; the default soft limit is often 1,024.
    listener::raise_open_file_limit(&config.limits);
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError::Bind("traffic", config.listen, e))?;
    let admin_listener = TcpListener::bind(config.admin)
        .await
        .map_err(|e| StartError::Bind("admin", config.admin, e))?;
    let listen_addr = listener
        .local_addr()
        .map_err(|e| StartError::Bind("traffic", config.listen, e))?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|e| StartError::Bind("admin", config.admin, e))?;

    let (shutdown, shutdown_rx) = watch::channel(false);
    let reload_now = Arc::new(Notify::new());
    let (observer, telemetry) = observe::Observer::start(
        &config.observe,
        shared.clone(),
        shutdown_rx.clone(),
        config.grace,
    )
    .map_err(StartError::Observe)?;
    let observer = Arc::new(observer);
    let proxy = Arc::new(proxy::Proxy {
        shared: shared.clone(),
        pool: pool::Pool::new(observer.connections()),
        observer: observer.clone(),
    });
    let traffic = tokio::spawn(listener::serve_listener(
        listener,
        move |req, peer| proxy::handle(proxy.clone(), req, peer),
        shutdown_rx.clone(),
        config.grace,
        config.limits.clone(),
    ));
    let admin_shared = shared.clone();
    let admin = tokio::spawn(listener::serve_listener(
        admin_listener,
        move |req, _peer| admin::handle(admin_shared.clone(), observer.clone(), req),
        shutdown_rx.clone(),
        config.grace,
        config.limits.clone(),
    ));
    let watcher = tokio::spawn(reload::watch_table(
        shared.clone(),
        identity_before_read,
        config.poll_interval,
        reload_now.clone(),
        shutdown_rx,
    ));
    tracing::info!(%listen_addr, %admin_addr, table = %config.table_path.display(), "mesh-proxy serving");
    Ok(Running {
        listen_addr,
        admin_addr,
        shared,
        reload_now,
        shutdown,
        tasks: [traffic, admin, watcher]
            .into_iter()
            .chain(telemetry)
            .collect(),
    })
}
