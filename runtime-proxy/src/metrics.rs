//! Prometheus metrics: Istio's standard request metrics (same names and labels, so Istio's
//! Grafana dashboards work unchanged) and the proxy's own (table, reloads, upstream
//! connections, retries, outlier ejections, requests in flight, telemetry queues).
//!
//! Label values come from the loaded table (cluster host, subset, endpoint labels) and the
//! process's configuration, never from raw request strings, so the number of series stays
//! bounded by the table. The hot path does not build label strings: each table gets a
//! per-cluster vector of interned destinations, and a series is found by a packed `u64` key
//! (destination id, status, flags, protocol, gRPC status). Strings are written at scrape time.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, UNIX_EPOCH};

use arc_swap::ArcSwap;
use mesh_table::ClusterView;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, LabelSetEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::observe::{Flags, Protocol, Reporter};
use crate::reload::hex;
use crate::state::{Loaded, Shared};
use crate::trace::ExportCounters;

/// Istio's default buckets for `istio_request_duration_milliseconds`, in milliseconds.
const DURATION_BUCKETS_MS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];
/// Istio's default buckets for `istio_request_bytes` and `istio_response_bytes`.
const SIZE_BUCKETS: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

const UNKNOWN: &str = "unknown";

/// The labels that describe this proxy (the source side for `reporter="source"`).
#[derive(Clone, Debug)]
pub struct ProcessLabels {
    pub reporter: Reporter,
    pub workload: String,
    pub namespace: String,
}

/// One destination as the metrics name it: everything here comes from the table.
#[derive(Debug)]
pub struct Destination {
    id: u32,
    /// The table's cluster name (`outbound|9080|v1|reviews.default.svc.cluster.local`), or
    /// empty for a destination without a cluster.
    cluster_name: String,
    service: String,
    service_name: String,
    service_namespace: String,
    version: String,
    app: String,
    canonical_service: String,
    canonical_revision: String,
    retries: AtomicU64,
    ejections: AtomicU64,
}

/// The identity of a destination; equal keys share one interned [`Destination`].
#[derive(Clone, PartialEq, Eq, Hash)]
struct DestinationKey {
    cluster_name: String,
    service: String,
    version: String,
    app: String,
}

impl DestinationKey {
    fn unknown() -> DestinationKey {
        DestinationKey {
            cluster_name: String::new(),
            service: UNKNOWN.to_owned(),
            version: UNKNOWN.to_owned(),
            app: UNKNOWN.to_owned(),
        }
    }

    fn of_cluster(cluster: ClusterView<'_>) -> DestinationKey {
        // The `app` label that every endpoint of the cluster carries, if they agree.
        let mut app: Option<&str> = None;
        let mut agreed = true;
        for endpoint in cluster.endpoints() {
            let this = endpoint.labels().find(|(k, _)| *k == "app").map(|(_, v)| v);
            match (app, this) {
                (None, Some(v)) if agreed => app = Some(v),
                (Some(a), Some(v)) if a == v => {}
                _ => agreed = false,
            }
        }
        DestinationKey {
            cluster_name: cluster.name().to_owned(),
            service: cluster.host().to_owned(),
            version: cluster.subset().unwrap_or(UNKNOWN).to_owned(),
            app: app.filter(|_| agreed).unwrap_or(UNKNOWN).to_owned(),
        }
    }

    fn of_host(host: &str) -> DestinationKey {
        DestinationKey {
            cluster_name: String::new(),
            service: host.to_owned(),
            version: UNKNOWN.to_owned(),
            app: UNKNOWN.to_owned(),
        }
    }
}

/// `name.namespace.svc.<domain>` -> (`name`, `namespace`); any other host is its own name.
fn service_name_and_namespace(host: &str) -> (&str, &str) {
    let mut parts = host.splitn(4, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(name), Some(namespace), Some("svc")) => (name, namespace),
        _ => (host, UNKNOWN),
    }
}

impl Destination {
    fn new(id: u32, key: DestinationKey) -> Destination {
        let (name, namespace) = service_name_and_namespace(&key.service);
        let (name, namespace) = (name.to_owned(), namespace.to_owned());
        let canonical_service = if key.app != UNKNOWN {
            key.app.clone()
        } else {
            name.clone()
        };
        let canonical_revision = if key.version != UNKNOWN {
            key.version.clone()
        } else {
            "latest".to_owned()
        };
        Destination {
            id,
            cluster_name: key.cluster_name,
            service: key.service,
            service_name: name,
            service_namespace: namespace,
            version: key.version,
            app: key.app,
            canonical_service,
            canonical_revision,
            retries: AtomicU64::new(0),
            ejections: AtomicU64::new(0),
        }
    }
}

#[derive(Default)]
struct Interner {
    all: Vec<Arc<Destination>>,
    by_key: HashMap<DestinationKey, u32>,
}

impl Interner {
    fn intern(&mut self, key: DestinationKey) -> Arc<Destination> {
        if let Some(&id) = self.by_key.get(&key)
            && let Some(existing) = self.all.get(id as usize)
        {
            return existing.clone();
        }
        let id = self.all.len() as u32;
        let destination = Arc::new(Destination::new(id, key.clone()));
        self.all.push(destination.clone());
        self.by_key.insert(key, id);
        destination
    }
}

/// The destinations of one table, by cluster id and by virtual host id.
struct TableDestinations {
    content_hash: [u8; 32],
    clusters: Vec<Arc<Destination>>,
    virtual_hosts: Vec<Arc<Destination>>,
    unknown: Arc<Destination>,
}

impl TableDestinations {
    fn build(loaded: &Loaded, interner: &mut Interner) -> TableDestinations {
        let table = &loaded.table;
        let unknown = interner.intern(DestinationKey::unknown());
        let clusters = table
            .clusters()
            .map(|c| interner.intern(DestinationKey::of_cluster(c)))
            .collect();
        let virtual_hosts = table
            .virtual_hosts()
            .map(|v| {
                let host = v.domains().next().unwrap_or(UNKNOWN);
                interner.intern(DestinationKey::of_host(host))
            })
            .collect();
        TableDestinations {
            content_hash: *table.content_hash(),
            clusters,
            virtual_hosts,
            unknown,
        }
    }
}

/// A histogram over fixed integer bounds (`value <= bound`), plus the overflow bucket.
struct Histogram<const N: usize> {
    buckets: [AtomicU64; N],
    overflow: AtomicU64,
    sum: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    fn new() -> Histogram<N> {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            overflow: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }

    fn observe(&self, bounds: &[u64; N], value: u64) {
        match bounds.iter().position(|&b| value <= b) {
            Some(i) => self.buckets[i].fetch_add(1, Ordering::Relaxed),
            None => self.overflow.fetch_add(1, Ordering::Relaxed),
        };
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Per-bucket counts (not cumulative; the encoder accumulates) and the total count.
    fn snapshot(&self, bounds: &[f64; N]) -> (Vec<(f64, u64)>, u64) {
        let mut buckets: Vec<(f64, u64)> = bounds
            .iter()
            .zip(&self.buckets)
            .map(|(&b, c)| (b, c.load(Ordering::Relaxed)))
            .collect();
        buckets.push((f64::INFINITY, self.overflow.load(Ordering::Relaxed)));
        let count = buckets.iter().map(|(_, c)| c).sum();
        (buckets, count)
    }
}

/// One label combination of the Istio request metrics.
struct Series {
    requests: AtomicU64,
    /// In microseconds, so the sum keeps sub-millisecond requests.
    duration: Histogram<19>,
    request_bytes: Histogram<9>,
    response_bytes: Histogram<9>,
}

const DURATION_BOUNDS_US: [u64; 19] = {
    let mut bounds = [0u64; 19];
    let mut i = 0;
    while i < 19 {
        bounds[i] = (DURATION_BUCKETS_MS[i] * 1000.0) as u64;
        i += 1;
    }
    bounds
};

const SIZE_BOUNDS_F64: [f64; 9] = {
    let mut bounds = [0f64; 9];
    let mut i = 0;
    while i < 9 {
        bounds[i] = SIZE_BUCKETS[i] as f64;
        i += 1;
    }
    bounds
};

impl Series {
    fn new() -> Series {
        Series {
            requests: AtomicU64::new(0),
            duration: Histogram::new(),
            request_bytes: Histogram::new(),
            response_bytes: Histogram::new(),
        }
    }
}

/// A multiply-shift hasher for the packed series keys (already well spread in the low bits
/// except the destination id, which the multiply mixes in).
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        let x = (n ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = x ^ (x >> 29);
    }
}

type SeriesMap = HashMap<u64, Arc<Series>, BuildHasherDefault<KeyHasher>>;

/// The labels of one request that are not the destination's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLabels {
    pub status: u16,
    pub flags: Flags,
    pub protocol: Protocol,
    /// gRPC status 0..=16 from the response headers.
    pub grpc_status: Option<u8>,
}

/// Packs (destination, status, flags, protocol, gRPC status) into a series key: destination
/// in bits 32..64, status 22..32, flags 7..22, protocol 5..7, gRPC status 0..5 (31 = none).
fn series_key(destination: u32, labels: RequestLabels) -> u64 {
    let status = u64::from(labels.status.min(1023));
    let flags = u64::from(labels.flags.bits()) & 0x7fff;
    let protocol = labels.protocol as u64 & 0x3;
    let grpc = u64::from(labels.grpc_status.map_or(31, |g| g.min(30)));
    (u64::from(destination) << 32) | (status << 22) | (flags << 7) | (protocol << 5) | grpc
}

fn unpack_key(key: u64) -> (u32, RequestLabels) {
    let grpc = (key & 0x1f) as u8;
    let protocol = match (key >> 5) & 0x3 {
        1 => Protocol::Grpc,
        _ => Protocol::Http,
    };
    (
        (key >> 32) as u32,
        RequestLabels {
            status: ((key >> 22) & 0x3ff) as u16,
            flags: Flags::from_bits(((key >> 7) & 0x7fff) as u16),
            protocol,
            grpc_status: (grpc != 31).then_some(grpc),
        },
    )
}

/// Upstream connection counts, kept by the connection pool.
#[derive(Debug, Default)]
pub struct ConnectionCounters {
    pub opened: AtomicU64,
    pub active: AtomicI64,
}

/// What one finished request adds to the metrics.
pub struct Sample<'a> {
    pub loaded: &'a Arc<Loaded>,
    pub cluster: Option<mesh_table::ClusterId>,
    pub route: Option<mesh_table::RouteId>,
    pub labels: RequestLabels,
    pub duration: Duration,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub retries: u32,
    pub ejections: u32,
}

/// Everything `/metrics` shows, shared by the hot path (recording) and the admin listener.
pub struct Metrics {
    inner: Arc<Inner>,
    registry: Registry,
}

struct Inner {
    process: ProcessLabels,
    shared: Arc<Shared>,
    interner: Mutex<Interner>,
    table: ArcSwap<TableDestinations>,
    series: RwLock<SeriesMap>,
    in_flight: AtomicI64,
    connections: Arc<ConnectionCounters>,
    access_log_dropped: Arc<AtomicU64>,
    spans: Arc<ExportCounters>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new(
        process: ProcessLabels,
        shared: Arc<Shared>,
        connections: Arc<ConnectionCounters>,
        access_log_dropped: Arc<AtomicU64>,
        spans: Arc<ExportCounters>,
    ) -> Metrics {
        let mut interner = Interner::default();
        let table = TableDestinations::build(&shared.current.load(), &mut interner);
        let inner = Arc::new(Inner {
            process,
            shared,
            interner: Mutex::new(interner),
            table: ArcSwap::from_pointee(table),
            series: RwLock::new(SeriesMap::default()),
            in_flight: AtomicI64::new(0),
            connections,
            access_log_dropped,
            spans,
        });
        let mut registry = Registry::default();
        registry.register_collector(Box::new(inner.clone()));
        Metrics { inner, registry }
    }

    pub fn request_started(&self) {
        self.inner.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one finished request (the request must have been counted as started).
    pub fn record(&self, sample: &Sample<'_>) {
        let inner = &*self.inner;
        inner.in_flight.fetch_sub(1, Ordering::Relaxed);
        // The cached destinations, unless the request's table is not the cached one (the
        // first request after a reload, or one that started before it).
        let cached = inner.table.load();
        let rebuilt;
        let table: &TableDestinations =
            if cached.content_hash == *sample.loaded.table.content_hash() {
                &cached
            } else {
                rebuilt = inner.destinations_for(sample.loaded);
                &rebuilt
            };
        let destination = match (sample.cluster, sample.route) {
            (Some(cluster), _) => table.clusters.get(cluster.0 as usize),
            (None, Some(route)) => sample
                .loaded
                .table
                .route(route)
                .and_then(|r| table.virtual_hosts.get(r.virtual_host().id().0 as usize)),
            (None, None) => None,
        }
        .unwrap_or(&table.unknown);
        if sample.retries > 0 {
            destination
                .retries
                .fetch_add(u64::from(sample.retries), Ordering::Relaxed);
        }
        if sample.ejections > 0 {
            destination
                .ejections
                .fetch_add(u64::from(sample.ejections), Ordering::Relaxed);
        }
        let key = series_key(destination.id, sample.labels);
        let observe = |series: &Series| {
            series.requests.fetch_add(1, Ordering::Relaxed);
            let micros = u64::try_from(sample.duration.as_micros()).unwrap_or(u64::MAX);
            series.duration.observe(&DURATION_BOUNDS_US, micros);
            series
                .request_bytes
                .observe(&SIZE_BUCKETS, sample.bytes_received);
            series
                .response_bytes
                .observe(&SIZE_BUCKETS, sample.bytes_sent);
        };
        {
            let map = inner.series.read().unwrap_or_else(|e| e.into_inner());
            if let Some(series) = map.get(&key) {
                observe(series);
                return;
            }
        }
        let mut map = inner.series.write().unwrap_or_else(|e| e.into_inner());
        observe(map.entry(key).or_insert_with(|| Arc::new(Series::new())));
    }

    /// The Prometheus text exposition (format 0.0.4) and its content type.
    pub fn render(&self) -> (String, &'static str) {
        let mut out = String::with_capacity(16 * 1024);
        if prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        (
            out,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )
    }
}

impl Inner {
    /// The destinations of `loaded`'s table, built (once per reload) and cached if that table
    /// is the current one.
    fn destinations_for(&self, loaded: &Arc<Loaded>) -> Arc<TableDestinations> {
        let mut interner = self.interner.lock().unwrap_or_else(|e| e.into_inner());
        // Another request may have rebuilt it while this one waited for the lock.
        let cached = self.table.load_full();
        if cached.content_hash == *loaded.table.content_hash() {
            return cached;
        }
        let built = Arc::new(TableDestinations::build(loaded, &mut interner));
        if Arc::ptr_eq(&self.shared.current.load(), loaded) {
            self.table.store(built.clone());
        }
        built
    }
}

/// The Istio labels of one series, written in Istio's order.
struct IstioLabels<'a> {
    process: &'a ProcessLabels,
    destination: &'a Destination,
    request: RequestLabels,
}

impl EncodeLabelSet for IstioLabels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), fmt::Error> {
        let p = self.process;
        let d = self.destination;
        let code = self.request.status.to_string();
        let flags = self.request.flags.to_string();
        let grpc = self
            .request
            .grpc_status
            .map(|g| g.to_string())
            .unwrap_or_default();
        let workload_namespace = if p.namespace.is_empty() {
            UNKNOWN
        } else {
            &p.namespace
        };
        let pairs: [(&str, &str); 25] = [
            ("reporter", p.reporter.as_str()),
            ("source_workload", &p.workload),
            ("source_workload_namespace", workload_namespace),
            ("source_principal", UNKNOWN),
            ("source_app", UNKNOWN),
            ("source_version", UNKNOWN),
            ("source_cluster", UNKNOWN),
            ("source_canonical_service", &p.workload),
            ("source_canonical_revision", "latest"),
            ("destination_workload", UNKNOWN),
            ("destination_workload_namespace", &d.service_namespace),
            ("destination_principal", UNKNOWN),
            ("destination_app", &d.app),
            ("destination_version", &d.version),
            ("destination_service", &d.service),
            ("destination_service_name", &d.service_name),
            ("destination_service_namespace", &d.service_namespace),
            ("destination_cluster", UNKNOWN),
            ("destination_canonical_service", &d.canonical_service),
            ("destination_canonical_revision", &d.canonical_revision),
            ("request_protocol", self.request.protocol.as_str()),
            ("response_code", &code),
            ("grpc_response_status", &grpc),
            ("response_flags", &flags),
            // Istio reports `unknown` here for the source side: the proxy does not do mTLS.
            ("connection_security_policy", UNKNOWN),
        ];
        pairs.as_slice().encode(encoder)
    }
}

/// Labels for the proxy's per-cluster counters.
struct ClusterLabels<'a>(&'a Destination);

impl EncodeLabelSet for ClusterLabels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), fmt::Error> {
        let d = self.0;
        [
            ("cluster_name", d.cluster_name.as_str()),
            ("destination_service", &d.service),
            ("destination_version", &d.version),
        ]
        .encode(encoder)
    }
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    encoder
        .encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, u64, u64>(&value, None)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> fmt::Result {
    encoder
        .encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&value)
}

impl Collector for Inner {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let mut series: Vec<(u64, Arc<Series>)> = {
            let map = self.series.read().unwrap_or_else(|e| e.into_inner());
            map.iter().map(|(k, s)| (*k, s.clone())).collect()
        };
        series.sort_unstable_by_key(|(k, _)| *k);
        let destinations: Vec<Arc<Destination>> = self
            .interner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .all
            .clone();
        let labelled: Vec<(IstioLabels<'_>, &Series)> = series
            .iter()
            .filter_map(|(key, s)| {
                let (destination, request) = unpack_key(*key);
                let destination = destinations.get(destination as usize)?;
                Some((
                    IstioLabels {
                        process: &self.process,
                        destination,
                        request,
                    },
                    &**s,
                ))
            })
            .collect();

        {
            let mut metric = encoder.encode_descriptor(
                "istio_requests",
                "Requests handled, by source, destination and outcome.",
                None,
                MetricType::Counter,
            )?;
            for (labels, s) in &labelled {
                metric
                    .encode_family(labels)?
                    .encode_counter::<NoLabelSet, u64, u64>(
                        &s.requests.load(Ordering::Relaxed),
                        None,
                    )?;
            }
        }
        {
            let mut metric = encoder.encode_descriptor(
                "istio_request_duration_milliseconds",
                "Request duration, from the first request byte to the last response byte.",
                None,
                MetricType::Histogram,
            )?;
            for (labels, s) in &labelled {
                let (buckets, count) = s.duration.snapshot(&DURATION_BUCKETS_MS);
                let sum = s.duration.sum.load(Ordering::Relaxed) as f64 / 1000.0;
                metric
                    .encode_family(labels)?
                    .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
            }
        }
        for (name, help, pick) in [
            (
                "istio_request_bytes",
                "Request body sizes in bytes.",
                (|s: &Series| &s.request_bytes) as fn(&Series) -> &Histogram<9>,
            ),
            (
                "istio_response_bytes",
                "Response body sizes in bytes.",
                |s: &Series| &s.response_bytes,
            ),
        ] {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
            for (labels, s) in &labelled {
                let histogram = pick(s);
                let (buckets, count) = histogram.snapshot(&SIZE_BOUNDS_F64);
                let sum = histogram.sum.load(Ordering::Relaxed) as f64;
                metric
                    .encode_family(labels)?
                    .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
            }
        }

        // The proxy's own.
        let loaded = self.shared.current.load();
        let info = loaded.table.info();
        let hash = hex(&info.content_hash);
        let version = info.version.to_string();
        encoder
            .encode_descriptor(
                "mesh_proxy_table",
                "The loaded routing table: format version and content hash.",
                None,
                MetricType::Info,
            )?
            .encode_info(&[
                ("format_version", version.as_str()),
                ("content_hash", hash.as_str()),
            ])?;
        let loaded_at = loaded
            .loaded_at
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        encoder
            .encode_descriptor(
                "mesh_proxy_table_loaded_timestamp_seconds",
                "When the loaded table was loaded, in seconds since the Unix epoch.",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&loaded_at)?;
        {
            let mut metric = encoder.encode_descriptor(
                "mesh_proxy_table_reloads",
                "Table reloads, by result (a failed reload keeps the previous table).",
                None,
                MetricType::Counter,
            )?;
            for (result, value) in [
                ("ok", self.shared.reloads_ok.load(Ordering::Relaxed)),
                ("failed", self.shared.reloads_failed.load(Ordering::Relaxed)),
            ] {
                metric
                    .encode_family(&[("result", result)])?
                    .encode_counter::<NoLabelSet, u64, u64>(&value, None)?;
            }
        }
        gauge(
            &mut encoder,
            "mesh_proxy_requests_in_flight",
            "Requests received and not yet finished (response body not fully sent).",
            self.in_flight.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "mesh_proxy_upstream_connections_opened",
            "Connections opened to upstream endpoints.",
            self.connections.opened.load(Ordering::Relaxed),
        )?;
        gauge(
            &mut encoder,
            "mesh_proxy_upstream_connections_active",
            "Connections to upstream endpoints open now (in use or pooled).",
            self.connections.active.load(Ordering::Relaxed),
        )?;
        for (name, help, pick) in [
            (
                "mesh_proxy_upstream_retries",
                "Retries sent to a cluster (tries after the first).",
                (|d: &Destination| &d.retries) as fn(&Destination) -> &AtomicU64,
            ),
            (
                "mesh_proxy_outlier_ejections",
                "Endpoints of a cluster ejected by outlier detection.",
                |d: &Destination| &d.ejections,
            ),
        ] {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for destination in destinations.iter().filter(|d| !d.cluster_name.is_empty()) {
                let value = pick(destination).load(Ordering::Relaxed);
                if value == 0 {
                    continue;
                }
                metric
                    .encode_family(&ClusterLabels(destination))?
                    .encode_counter::<NoLabelSet, u64, u64>(&value, None)?;
            }
        }
        counter(
            &mut encoder,
            "mesh_proxy_access_log_dropped",
            "Access log lines dropped because the writer's queue was full.",
            self.access_log_dropped.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "mesh_proxy_spans_exported",
            "Spans accepted by the OTLP collector.",
            self.spans.exported.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "mesh_proxy_spans_dropped",
            "Spans dropped because the exporter's queue was full.",
            self.spans.dropped.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "mesh_proxy_span_export_failures",
            "Span batches the collector did not accept (refused, unreachable or timed out).",
            self.spans.failed_batches.load(Ordering::Relaxed),
        )?;
        // Busy polling exists on a one-worker runtime only, whose worker also serves /metrics.
        if let Some(stats) = crate::busy_poll::stats() {
            counter(
                &mut encoder,
                "mesh_proxy_busy_poll_wakeups_saved",
                "Times busy polling found work that would have found the worker asleep.",
                stats.caught,
            )?;
            encoder
                .encode_descriptor(
                    "mesh_proxy_busy_poll_idle_seconds",
                    "Time the worker spent busy polling without finding work.",
                    None,
                    MetricType::Counter,
                )?
                .encode_counter::<NoLabelSet, f64, u64>(&stats.idle.as_secs_f64(), None)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_keys_round_trip() {
        let mut flags = Flags::default();
        flags.set(Flags::UF);
        flags.set(Flags::URX);
        for labels in [
            RequestLabels {
                status: 200,
                flags: Flags::default(),
                protocol: Protocol::Http,
                grpc_status: None,
            },
            RequestLabels {
                status: 503,
                flags,
                protocol: Protocol::Grpc,
                grpc_status: Some(14),
            },
            RequestLabels {
                status: 0,
                flags: Flags::from_bits(0x7ff),
                protocol: Protocol::Grpc,
                grpc_status: Some(0),
            },
        ] {
            let key = series_key(123_456, labels);
            assert_eq!(unpack_key(key), (123_456, labels));
        }
        assert_ne!(
            series_key(
                1,
                RequestLabels {
                    status: 200,
                    flags: Flags::default(),
                    protocol: Protocol::Http,
                    grpc_status: None
                }
            ),
            series_key(
                2,
                RequestLabels {
                    status: 200,
                    flags: Flags::default(),
                    protocol: Protocol::Http,
                    grpc_status: None
                }
            )
        );
    }

    #[test]
    fn service_names_come_from_the_fqdn() {
        assert_eq!(
            service_name_and_namespace("reviews.default.svc.cluster.local"),
            ("reviews", "default")
        );
        assert_eq!(
            service_name_and_namespace("api.example.com"),
            ("api.example.com", "unknown")
        );
    }

    #[test]
    fn histograms_bucket_by_upper_bound_inclusive() {
        let h: Histogram<9> = Histogram::new();
        for value in [0, 1, 2, 10, 1_000_000_000] {
            h.observe(&SIZE_BUCKETS, value);
        }
        let (buckets, count) = h.snapshot(&SIZE_BOUNDS_F64);
        assert_eq!(count, 5);
        assert_eq!(buckets[0], (1.0, 2));
        assert_eq!(buckets[1], (10.0, 2));
        assert_eq!(buckets.last(), Some(&(f64::INFINITY, 1)));
        assert_eq!(DURATION_BOUNDS_US[0], 500);
        assert_eq!(DURATION_BOUNDS_US[18], 3_600_000_000);
    }
}
