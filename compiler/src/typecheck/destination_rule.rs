//! The typed DestinationRule: host resolved, subsets with labels, traffic policies with
//! durations in milliseconds.

use std::collections::BTreeMap;

use super::read::{self, Cx};
use super::{Dur, Host, Meta, Spanned, duration, host};
use crate::parse::Node;
use crate::source::Span;

#[derive(Debug)]
pub struct DestinationRule {
    pub meta: Meta,
    pub host: Option<Host>,
    pub subsets: Vec<Subset>,
    pub traffic_policy: Option<TrafficPolicy>,
    pub export_to: Vec<Spanned<String>>,
    pub workload_selector: Option<BTreeMap<String, String>>,
}

#[derive(Debug)]
pub struct Subset {
    pub name: Spanned<String>,
    pub labels: BTreeMap<String, String>,
    /// The `labels` key, or the subset's name when there are no labels.
    pub labels_span: Span,
    pub traffic_policy: Option<TrafficPolicy>,
}

#[derive(Clone, Debug, Default)]
pub struct TrafficPolicy {
    pub span: Span,
    pub load_balancer: Option<LoadBalancer>,
    pub connection_pool: Option<ConnectionPool>,
    pub outlier_detection: Option<OutlierDetection>,
    pub port_level: Vec<PortTrafficPolicy>,
}

/// `portLevelSettings[]`: the same policies for one port.
#[derive(Clone, Debug, Default)]
pub struct PortTrafficPolicy {
    pub port: Option<u16>,
    pub load_balancer: Option<LoadBalancer>,
    pub connection_pool: Option<ConnectionPool>,
    pub outlier_detection: Option<OutlierDetection>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum LoadBalancer {
    /// `simple`: `ROUND_ROBIN`, `LEAST_REQUEST`, `RANDOM`, `PASSTHROUGH`, ...
    Simple(String),
    ConsistentHash(ConsistentHash),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConsistentHash {
    pub header: Option<String>,
    pub cookie: Option<String>,
    pub cookie_path: Option<String>,
    /// `httpCookie.ttl` in ms (Istio does not range-check it; `0s` is a session cookie).
    pub cookie_ttl_ms: Option<u64>,
    pub source_ip: bool,
    pub query_param: Option<String>,
}

/// Integers as written (the schema checks their range).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConnectionPool {
    pub max_connections: Option<i64>,
    pub connect_timeout: Option<Dur>,
    /// `tcp.idleTimeout`; `0s` disables it.
    pub tcp_idle_timeout: Option<Dur>,
    pub max_connection_duration: Option<Dur>,
    pub http1_max_pending_requests: Option<i64>,
    pub http2_max_requests: Option<i64>,
    pub max_requests_per_connection: Option<i64>,
    pub max_retries: Option<i64>,
    pub http_idle_timeout: Option<Dur>,
    pub max_concurrent_streams: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutlierDetection {
    pub consecutive_5xx_errors: Option<i64>,
    pub consecutive_gateway_errors: Option<i64>,
    pub consecutive_local_origin_failures: Option<i64>,
    pub interval: Option<Dur>,
    pub base_ejection_time: Option<Dur>,
    pub max_ejection_percent: Option<i64>,
    pub min_health_percent: Option<i64>,
}

pub(super) fn build(meta: Meta, spec: &Node, cx: &mut Cx) -> DestinationRule {
    let ns = meta.namespace.clone();
    let host = read::string(spec, "host").map(|(h, span)| Host {
        fqdn: host::resolve(h, &ns),
        written: h.to_owned(),
        span,
    });
    let subsets = read::seq(spec, "subsets")
        .iter()
        .filter_map(|s| {
            let name = read::spanned_string(s, "name")?;
            Some(Subset {
                labels: read::string_map(s, "labels"),
                labels_span: read::key_span(s, "labels").unwrap_or(name.span),
                traffic_policy: s
                    .entry("trafficPolicy")
                    .map(|e| traffic_policy(&e.value, e.key_span, cx)),
                name,
            })
        })
        .collect();
    DestinationRule {
        traffic_policy: spec
            .entry("trafficPolicy")
            .map(|e| traffic_policy(&e.value, e.key_span, cx)),
        export_to: read::strings(spec, "exportTo"),
        workload_selector: spec
            .get("workloadSelector")
            .map(|w| read::string_map(w, "matchLabels")),
        host,
        subsets,
        meta,
    }
}

fn traffic_policy(node: &Node, span: Span, cx: &mut Cx) -> TrafficPolicy {
    let port_level = read::seq(node, "portLevelSettings")
        .iter()
        .map(|p| PortTrafficPolicy {
            port: p
                .get("port")
                .and_then(|n| read::port(n, "number"))
                .map(|n| n.value),
            load_balancer: p.get("loadBalancer").map(|n| load_balancer(n, cx)),
            connection_pool: p.get("connectionPool").map(|n| connection_pool(n, cx)),
            outlier_detection: p.get("outlierDetection").map(|n| outlier(n, cx)),
        })
        .collect();
    TrafficPolicy {
        span,
        load_balancer: node.get("loadBalancer").map(|n| load_balancer(n, cx)),
        connection_pool: node.get("connectionPool").map(|n| connection_pool(n, cx)),
        outlier_detection: node.get("outlierDetection").map(|n| outlier(n, cx)),
        port_level,
    }
}

fn load_balancer(node: &Node, cx: &mut Cx) -> LoadBalancer {
    if let Some(warmup) = node.get("warmup") {
        cx.duration(warmup, "duration", false);
    }
    let Some(hash) = node.get("consistentHash") else {
        return LoadBalancer::Simple(
            read::string(node, "simple")
                .map_or("UNSPECIFIED", |s| s.0)
                .to_owned(),
        );
    };
    let text = |n: &Node, k: &str| read::string(n, k).map(|s| s.0.to_owned());
    let cookie = hash.get("httpCookie");
    LoadBalancer::ConsistentHash(ConsistentHash {
        header: text(hash, "httpHeaderName"),
        cookie: cookie.and_then(|c| text(c, "name")),
        cookie_path: cookie.and_then(|c| text(c, "path")),
        // Istio does not validate the cookie TTL (`duration-validation:none`).
        cookie_ttl_ms: cookie
            .and_then(|c| read::string(c, "ttl"))
            .and_then(|(t, _)| duration::parse(t))
            .filter(|n| *n >= 0 && n % 1_000_000 == 0)
            .map(|n| (n / 1_000_000) as u64),
        source_ip: read::boolean(hash, "useSourceIp").unwrap_or(false),
        query_param: text(hash, "httpQueryParameterName"),
    })
}

fn connection_pool(node: &Node, cx: &mut Cx) -> ConnectionPool {
    let mut pool = ConnectionPool::default();
    if let Some(tcp) = node.get("tcp") {
        pool.max_connections = read::int(tcp, "maxConnections").map(|v| v.value);
        pool.connect_timeout = cx.duration(tcp, "connectTimeout", false);
        pool.tcp_idle_timeout = cx.duration(tcp, "idleTimeout", true);
        pool.max_connection_duration = cx.duration(tcp, "maxConnectionDuration", false);
        if let Some(keepalive) = tcp.get("tcpKeepalive") {
            cx.duration(keepalive, "time", false);
            cx.duration(keepalive, "interval", false);
        }
    }
    if let Some(http) = node.get("http") {
        let int = |k: &str| read::int(http, k).map(|v| v.value);
        pool.http1_max_pending_requests = int("http1MaxPendingRequests");
        pool.http2_max_requests = int("http2MaxRequests");
        pool.max_requests_per_connection = int("maxRequestsPerConnection");
        pool.max_retries = int("maxRetries");
        pool.max_concurrent_streams = int("maxConcurrentStreams");
        pool.http_idle_timeout = cx.duration(http, "idleTimeout", false);
        if let Some(keepalive) = http.get("http2KeepAlive") {
            cx.duration(keepalive, "interval", false);
            cx.duration(keepalive, "timeout", false);
        }
    }
    pool
}

fn outlier(node: &Node, cx: &mut Cx) -> OutlierDetection {
    let int = |k: &str| read::int(node, k).map(|v| v.value);
    OutlierDetection {
        consecutive_5xx_errors: int("consecutive5xxErrors"),
        consecutive_gateway_errors: int("consecutiveGatewayErrors"),
        consecutive_local_origin_failures: int("consecutiveLocalOriginFailures"),
        interval: cx.duration(node, "interval", false),
        base_ejection_time: cx.duration(node, "baseEjectionTime", false),
        max_ejection_percent: int("maxEjectionPercent"),
        min_health_percent: int("minHealthPercent"),
    }
}
