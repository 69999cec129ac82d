//! The loaded table and the per-cluster runtime state built for it, swapped as one unit.
//!
//! A reload builds a new [`Loaded`] (table plus fresh endpoint state) and stores it with one
//! `ArcSwap::store`; a request keeps the `Arc<Loaded>` it started with, so it never sees a
//! cluster state that belongs to another table.

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use mesh_table::{ClusterView, LoadError, OutlierDetection, Table};

/// A validated table and the runtime state of each of its clusters (indexed by `ClusterId`).
pub struct Loaded {
    pub table: Table<'static>,
    pub clusters: Vec<ClusterState>,
    pub loaded_at: SystemTime,
    pub size: usize,
}

impl Loaded {
    /// Validates `bytes` with the checked loader and builds fresh cluster state.
    pub fn from_bytes(bytes: &[u8]) -> Result<Loaded, LoadError> {
        Loaded::from_aligned(std::sync::Arc::new(mesh_table::AlignedBytes::new(bytes)))
    }

    /// [`Loaded::from_bytes`] without a copy, for bytes already in aligned memory.
    pub fn from_aligned(
        bytes: std::sync::Arc<mesh_table::AlignedBytes>,
    ) -> Result<Loaded, LoadError> {
        let size = bytes.len();
        let table = Table::load_shared(bytes)?;
        let clusters = table.clusters().map(ClusterState::new).collect();
        Ok(Loaded {
            table,
            clusters,
            loaded_at: SystemTime::now(),
            size,
        })
    }

    pub fn cluster(&self, id: mesh_table::ClusterId) -> Option<&ClusterState> {
        self.clusters.get(id.0 as usize)
    }
}

/// What the whole process shares: the current table and reload counters.
pub struct Shared {
    pub current: ArcSwap<Loaded>,
    pub table_path: PathBuf,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
}

/// Milliseconds since the first call, on a monotonic clock; ejection deadlines use it so they
/// fit in an atomic.
pub fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Runtime state of one cluster: endpoints, the round-robin cursor, in-flight requests (for
/// circuit breaking) and outlier detection settings.
pub struct ClusterState {
    pub endpoints: Vec<EndpointState>,
    pub next: AtomicUsize,
    pub in_flight: AtomicU32,
    /// Requests allowed in flight before answering 503 `UO` (`u32::MAX` when unlimited).
    pub max_in_flight: u32,
    pub outlier: Option<OutlierDetection>,
}

/// One upstream endpoint and what the proxy learned about it.
pub struct EndpointState {
    /// `ip:port`, `[v6]:port` or `name:port`; the client's connector resolves names (through
    /// the system resolver on a blocking thread, as `tokio::net::lookup_host` would).
    pub authority: String,
    pub in_flight: AtomicU32,
    pub consecutive_5xx: AtomicU32,
    pub consecutive_gateway: AtomicU32,
    pub ejected_until_ms: AtomicU64,
    pub times_ejected: AtomicU32,
}

impl EndpointState {
    fn new(address: &str, port: u16) -> EndpointState {
        let authority = if address.parse::<Ipv6Addr>().is_ok() {
            format!("[{address}]:{port}")
        } else {
            format!("{address}:{port}")
        };
        EndpointState {
            authority,
            in_flight: AtomicU32::new(0),
            consecutive_5xx: AtomicU32::new(0),
            consecutive_gateway: AtomicU32::new(0),
            ejected_until_ms: AtomicU64::new(0),
            times_ejected: AtomicU32::new(0),
        }
    }

    pub fn is_healthy(&self, now_ms: u64) -> bool {
        self.ejected_until_ms.load(Ordering::Relaxed) <= now_ms
    }
}

impl ClusterState {
    /// The time to test [`EndpointState::is_healthy`] against: the clock (`now_ms`) once some
    /// endpoint has been ejected. Until then every endpoint is healthy at any time
    /// (`ejected_until_ms` is 0), and 0 serves without a clock read (about 35 ns).
    pub fn health_clock(&self) -> u64 {
        let ever_ejected = self
            .endpoints
            .iter()
            .any(|e| e.ejected_until_ms.load(Ordering::Relaxed) != 0);
        if ever_ejected { now_ms() } else { 0 }
    }

    fn new(cluster: ClusterView<'_>) -> ClusterState {
        let mut endpoints: Vec<EndpointState> = cluster
            .endpoints()
            .map(|e| EndpointState::new(e.address(), e.port()))
            .collect();
        if endpoints.is_empty() {
            // No endpoints in the table (a runtime-lookup host): resolve the host name itself
            // with the cluster port.
            endpoints.push(EndpointState::new(
                cluster.host(),
                cluster.port().unwrap_or(80),
            ));
        }
        let pool = cluster.connection_pool();
        // HTTP/1.1 upstreams carry one request per connection at a time, so connections plus
        // pending requests bound the requests in flight; http2MaxRequests bounds them directly.
        let from_connections = pool
            .max_connections
            .map(|c| c.saturating_add(pool.http1_max_pending.unwrap_or(u32::MAX)));
        let max_in_flight = [from_connections, pool.http2_max_requests]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(u32::MAX);
        ClusterState {
            endpoints,
            next: AtomicUsize::new(0),
            in_flight: AtomicU32::new(0),
            max_in_flight,
            outlier: cluster.outlier_detection(),
        }
    }
}

#[cfg(test)]
impl ClusterState {
    /// A cluster of `n` loopback endpoints, for load balancer and outlier tests.
    pub fn for_test(n: u16, outlier: Option<OutlierDetection>) -> ClusterState {
        ClusterState {
            endpoints: (0..n)
                .map(|i| EndpointState::new("127.0.0.1", 8000 + i))
                .collect(),
            next: AtomicUsize::new(0),
            in_flight: AtomicU32::new(0),
            max_in_flight: u32::MAX,
            outlier,
        }
    }
}
