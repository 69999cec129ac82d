//! The observe phase: the facts gathered about one request, handed to one hook at the end.
//! Metrics and access logs plug in here; names come from the table, never from raw request
//! strings.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mesh_table::{ClusterId, RouteId};

use crate::state::Loaded;

/// Envoy-style response flags, as a bit set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags(u16);

impl Flags {
    /// No route (or no virtual host).
    pub const NR: Flags = Flags(1 << 0);
    /// Fault: delay injected.
    pub const DI: Flags = Flags(1 << 1);
    /// Fault: abort injected.
    pub const FI: Flags = Flags(1 << 2);
    /// No healthy upstream.
    pub const UH: Flags = Flags(1 << 3);
    /// Upstream connect failure.
    pub const UF: Flags = Flags(1 << 4);
    /// Upstream retries exhausted.
    pub const URX: Flags = Flags(1 << 5);
    /// Upstream request timeout.
    pub const UT: Flags = Flags(1 << 6);
    /// Upstream overflow (circuit breaker).
    pub const UO: Flags = Flags(1 << 7);
    /// Upstream reset.
    pub const UR: Flags = Flags(1 << 8);
    /// Downstream request body could not be read.
    pub const DPE: Flags = Flags(1 << 9);

    const NAMES: [(Flags, &'static str); 10] = [
        (Flags::NR, "NR"),
        (Flags::DI, "DI"),
        (Flags::FI, "FI"),
        (Flags::UH, "UH"),
        (Flags::UF, "UF"),
        (Flags::URX, "URX"),
        (Flags::UT, "UT"),
        (Flags::UO, "UO"),
        (Flags::UR, "UR"),
        (Flags::DPE, "DPE"),
    ];

    pub fn set(&mut self, flag: Flags) {
        self.0 |= flag.0;
    }

    pub fn contains(self, flag: Flags) -> bool {
        self.0 & flag.0 == flag.0
    }
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("-");
        }
        let mut first = true;
        for (flag, name) in Flags::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// What happened to one request. It keeps the table the request used, so names are read from
/// the table that decided, even if a reload happened meanwhile.
pub struct RequestFacts {
    pub loaded: Arc<Loaded>,
    pub method: http::Method,
    pub route: Option<RouteId>,
    pub cluster: Option<ClusterId>,
    /// Index of the last endpoint tried, in the cluster's state.
    pub endpoint: Option<usize>,
    pub flags: Flags,
    pub attempts: u32,
    pub status: u16,
    pub started: Instant,
    /// From the first upstream try to the last response headers.
    pub upstream_time: Option<Duration>,
}

impl RequestFacts {
    pub fn new(loaded: Arc<Loaded>, method: http::Method) -> RequestFacts {
        RequestFacts {
            loaded,
            method,
            route: None,
            cluster: None,
            endpoint: None,
            flags: Flags::default(),
            attempts: 0,
            status: 0,
            started: Instant::now(),
            upstream_time: None,
        }
    }
}

/// The one hook at the end of every request. Today: a debug-level log line.
pub fn observe(facts: &RequestFacts) {
    if !tracing::enabled!(target: "mesh_proxy::access", tracing::Level::DEBUG) {
        return;
    }
    let table = &facts.loaded.table;
    let route = facts.route.and_then(|id| table.route(id));
    let cluster = facts.cluster.and_then(|id| table.cluster(id));
    let upstream = facts
        .cluster
        .and_then(|id| facts.loaded.cluster(id))
        .zip(facts.endpoint)
        .and_then(|(state, idx)| state.endpoints.get(idx))
        .map(|e| e.authority.as_str());
    tracing::debug!(
        target: "mesh_proxy::access",
        method = %facts.method,
        status = facts.status,
        flags = %facts.flags,
        vs = route.map(|r| r.vs_name()),
        route = route.and_then(|r| r.name()),
        cluster = cluster.map(|c| c.name()),
        attempts = facts.attempts,
        upstream,
        upstream_ms = facts.upstream_time.map(|d| d.as_millis() as u64),
        duration_ms = facts.started.elapsed().as_millis() as u64,
    );
}

#[cfg(test)]
mod tests {
    use super::Flags;

    #[test]
    fn flags_render_like_envoy() {
        let mut flags = Flags::default();
        assert_eq!(flags.to_string(), "-");
        flags.set(Flags::URX);
        flags.set(Flags::UF);
        assert_eq!(flags.to_string(), "UF,URX");
    }
}
