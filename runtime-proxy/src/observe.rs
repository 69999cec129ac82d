//! The observe phase: the facts gathered about one request, from the first byte in to the
//! last byte out, handed to metrics (`metrics.rs`), the access log (`accesslog.rs`) and the
//! span exporter (`trace.rs`).
//!
//! `Observer::begin` runs before routing (request id, trace context, in-flight count);
//! `finish` runs when the response headers are ready and wraps the response body, so that
//! bytes sent and duration are taken when the body ends (or when the client goes away).

use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Response, Uri};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Frame, SizeHint};
use mesh_table::{ClusterId, RouteId};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::accesslog::{AccessLog, AccessLogTarget, Entry};
use crate::downstream::{Request, RequestBody};
use crate::fields::{ProxyField, RequestFields};
use crate::metrics::{ConnectionCounters, Metrics, ProcessLabels, RequestLabels, Sample};
use crate::proxy::{Body, BodyError, Reply};
use crate::rng;
use crate::state::{Loaded, Shared};
use crate::trace::{
    AttributeValue, ExportConfig, ExportCounters, Sampler, SpanRecord, SpanSink, TraceContext,
};

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
    /// The downstream connection went away before the response body was sent.
    pub const DC: Flags = Flags(1 << 10);

    const NAMES: [(Flags, &'static str); 11] = [
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
        (Flags::DC, "DC"),
    ];

    pub fn set(&mut self, flag: Flags) {
        self.0 |= flag.0;
    }

    pub fn contains(self, flag: Flags) -> bool {
        self.0 & flag.0 == flag.0
    }

    pub fn bits(self) -> u16 {
        self.0
    }

    pub fn from_bits(bits: u16) -> Flags {
        Flags(bits)
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

/// Istio's `request_protocol`: gRPC is told apart by its content type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Http = 0,
    Grpc = 1,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Grpc => "grpc",
        }
    }
}

/// Istio's `reporter`: `source` for a sidecar's outbound traffic (the client side),
/// `destination` for a proxy in front of the service it reports for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reporter {
    Source,
    Destination,
}

impl Reporter {
    pub fn as_str(self) -> &'static str {
        match self {
            Reporter::Source => "source",
            Reporter::Destination => "destination",
        }
    }

    pub fn parse(s: &str) -> Option<Reporter> {
        match s {
            "source" => Some(Reporter::Source),
            "destination" => Some(Reporter::Destination),
            _ => None,
        }
    }
}

/// What the proxy shows about its traffic.
#[derive(Clone, Debug)]
pub struct ObserveConfig {
    /// Istio and proxy metrics on the admin listener's `/metrics`.
    pub metrics: bool,
    /// The library default is `Off` (tests and embedders choose); the binary's is `Stdout`.
    pub access_log: AccessLogTarget,
    /// Entries waiting for the access log writer; beyond this they are dropped and counted.
    pub access_log_queue: usize,
    pub reporter: Reporter,
    /// This proxy's workload (`source_workload` for `reporter="source"`).
    pub workload_name: String,
    pub workload_namespace: String,
    /// OTLP/HTTP collector (`http://host:4318`, or a full URL); no export when absent.
    pub otlp_endpoint: Option<Uri>,
    /// Share of new traces sampled, in percent; a sampling decision that came with the
    /// request is kept.
    pub trace_sampling_percent: f64,
    /// How often queued spans are posted.
    pub trace_flush_interval: Duration,
}

impl Default for ObserveConfig {
    fn default() -> ObserveConfig {
        ObserveConfig {
            metrics: true,
            access_log: AccessLogTarget::Off,
            access_log_queue: 16 * 1024,
            reporter: Reporter::Source,
            workload_name: "unknown".to_owned(),
            workload_namespace: "unknown".to_owned(),
            otlp_endpoint: None,
            // Istio's default sampling rate.
            trace_sampling_percent: 1.0,
            trace_flush_interval: Duration::from_secs(1),
        }
    }
}

/// Request strings only the access log and spans need, copied into one buffer when the request
/// arrives (only when one of them will use them). Copying, rather than keeping hyper's header
/// values, lets hyper reuse its read buffer at once instead of allocating a new one while the
/// entry waits for the log writer.
pub struct LogFields {
    text: String,
    /// End offsets of the fields in `text`, in [`LogField`] order; `u32::MAX` when absent.
    ends: [u32; 5],
    pub peer: SocketAddr,
}

#[derive(Clone, Copy)]
enum LogField {
    Path = 0,
    Authority = 1,
    UserAgent = 2,
    ForwardedFor = 3,
    RequestId = 4,
}

impl LogFields {
    fn capture(req: &Request, peer: SocketAddr) -> LogFields {
        LogFields::capture_parts(&req.uri, &req.fields, peer)
    }

    fn capture_parts(uri: &Uri, headers: &RequestFields, peer: SocketAddr) -> LogFields {
        let authority = uri
            .authority()
            .map(|a| a.as_str().as_bytes())
            .or_else(|| headers.get("host"));
        let fields: [Option<&[u8]>; 5] = [
            uri.path_and_query().map(|p| p.as_str().as_bytes()),
            authority,
            headers.get("user-agent"),
            headers.get("x-forwarded-for"),
            headers.get("x-request-id"),
        ];
        let len = fields.iter().flatten().map(|f| f.len()).sum();
        let mut text = String::with_capacity(len);
        let mut ends = [u32::MAX; 5];
        for (end, field) in ends.iter_mut().zip(fields) {
            if let Some(bytes) = field {
                text.push_str(&String::from_utf8_lossy(bytes));
                *end = u32::try_from(text.len()).unwrap_or(u32::MAX);
            }
        }
        LogFields { text, ends, peer }
    }

    fn get(&self, field: LogField) -> Option<&str> {
        let i = field as usize;
        let end = *self.ends.get(i)?;
        if end == u32::MAX {
            return None;
        }
        let start = self.ends[..i]
            .iter()
            .rev()
            .find(|&&e| e != u32::MAX)
            .map_or(0, |&e| e as usize);
        self.text.get(start..end as usize)
    }

    pub fn path(&self) -> Option<&str> {
        self.get(LogField::Path)
    }
    pub fn authority(&self) -> Option<&str> {
        self.get(LogField::Authority)
    }
    pub fn user_agent(&self) -> Option<&str> {
        self.get(LogField::UserAgent)
    }
    pub fn forwarded_for(&self) -> Option<&str> {
        self.get(LogField::ForwardedFor)
    }
    pub fn request_id(&self) -> Option<&str> {
        self.get(LogField::RequestId)
    }
}

/// What happened to one request. It keeps the table the request used, so names are read from
/// the table that decided, even if a reload happened meanwhile.
pub struct RequestFacts {
    pub loaded: Arc<Loaded>,
    pub method: http::Method,
    pub version: http::Version,
    pub protocol: Protocol,
    pub route: Option<RouteId>,
    pub cluster: Option<ClusterId>,
    /// Index of the last endpoint tried, in the cluster's state.
    pub endpoint: Option<usize>,
    pub flags: Flags,
    pub attempts: u32,
    /// Endpoints this request's outcomes got ejected.
    pub ejections: u32,
    pub status: u16,
    pub grpc_status: Option<u8>,
    pub started: Instant,
    /// When the request began, by the wall clock; `UNIX_EPOCH` when neither the access log
    /// nor a span needs it.
    pub start_wall: SystemTime,
    /// From the first upstream try to the last response headers; set only for the access
    /// log.
    pub upstream_time: Option<Duration>,
    /// Request body bytes read when they were buffered; a streamed body counts into
    /// `request_body_counter`.
    pub bytes_received: u64,
    pub request_body_counter: Option<Arc<AtomicU64>>,
    pub trace: TraceContext,
    pub trace_state: Option<String>,
    pub log: Option<LogFields>,
}

impl RequestFacts {
    /// Facts with nothing observed yet (for tests and callers outside the request path).
    pub fn new(loaded: Arc<Loaded>, method: http::Method) -> RequestFacts {
        RequestFacts {
            loaded,
            method,
            version: http::Version::HTTP_11,
            protocol: Protocol::Http,
            route: None,
            cluster: None,
            endpoint: None,
            flags: Flags::default(),
            attempts: 0,
            ejections: 0,
            status: 0,
            grpc_status: None,
            started: Instant::now(),
            start_wall: SystemTime::now(),
            upstream_time: None,
            bytes_received: 0,
            request_body_counter: None,
            trace: TraceContext::start(&RequestFields::default(), Sampler::from_percent(0.0)),
            trace_state: None,
            log: None,
        }
    }

    fn bytes_received(&self) -> u64 {
        self.bytes_received
            + self
                .request_body_counter
                .as_ref()
                .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// The process's telemetry: metrics, access log writer and span exporter.
pub struct Observer {
    metrics: Option<Metrics>,
    access_log: Option<AccessLog>,
    spans: Option<SpanSink>,
    sampler: Sampler,
    reporter: Reporter,
    connections: Arc<ConnectionCounters>,
}

impl Observer {
    /// Opens the access log and starts the span exporter (if configured). The returned tasks
    /// end after shutdown once the access log and the span queue are written out (each waits
    /// at most `grace` plus a second after shutdown starts), so awaiting them loses no line.
    pub fn start(
        config: &ObserveConfig,
        shared: Arc<Shared>,
        shutdown: watch::Receiver<bool>,
        grace: Duration,
    ) -> Result<(Observer, Vec<JoinHandle<()>>), String> {
        let connections = Arc::new(ConnectionCounters::default());
        let access_log_dropped = Arc::new(AtomicU64::new(0));
        let span_counters = Arc::new(ExportCounters::default());
        let access_log = AccessLog::start(
            &config.access_log,
            config.access_log_queue,
            access_log_dropped.clone(),
        )
        .map_err(|e| e.to_string())?;
        let mut tasks = Vec::new();
        let access_log = access_log.map(|(log, done)| {
            tasks.push(tokio::spawn(wait_for_writer(done, shutdown.clone(), grace)));
            log
        });
        let spans = match &config.otlp_endpoint {
            Some(endpoint) => {
                let service_name = if config.workload_name == "unknown" {
                    "mesh-proxy".to_owned()
                } else {
                    format!("{}.{}", config.workload_name, config.workload_namespace)
                };
                let export = ExportConfig {
                    endpoint: endpoint.clone(),
                    service_name,
                    flush_interval: config.trace_flush_interval,
                    max_batch: 512,
                    queue: 8192,
                };
                let (sink, task) =
                    crate::trace::spawn_exporter(export, span_counters.clone(), shutdown, grace);
                tasks.push(task);
                Some(sink)
            }
            None => None,
        };
        let metrics = config.metrics.then(|| {
            Metrics::new(
                ProcessLabels {
                    reporter: config.reporter,
                    workload: config.workload_name.clone(),
                    namespace: config.workload_namespace.clone(),
                },
                shared,
                connections.clone(),
                access_log_dropped,
                span_counters,
            )
        });
        let observer = Observer {
            metrics,
            access_log,
            spans,
            sampler: Sampler::from_percent(config.trace_sampling_percent),
            reporter: config.reporter,
            connections,
        };
        Ok((observer, tasks))
    }

    pub fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_ref()
    }

    pub fn connections(&self) -> Arc<ConnectionCounters> {
        self.connections.clone()
    }

    fn records_anything(&self) -> bool {
        self.metrics.is_some() || self.access_log.is_some() || self.spans.is_some()
    }

    /// Before routing: adds an `x-request-id` when the request has none, starts the proxy's
    /// span from the incoming trace headers, and counts the request in flight.
    pub fn begin(
        &self,
        loaded: Arc<Loaded>,
        req: &mut Request,
        peer: SocketAddr,
    ) -> Box<RequestFacts> {
        let started = Instant::now();
        let headers = &mut req.fields;
        if headers.get_proxy(ProxyField::RequestId).is_none() {
            headers.insert(
                ProxyField::RequestId,
                &crate::headers::request_id(rng::next_u64(), rng::next_u64()),
            );
        }
        let trace = TraceContext::start(headers, self.sampler);
        let exporting = self.spans.is_some() && trace.sampled;
        let protocol = match headers.content_type() {
            Some(v) if v.starts_with(b"application/grpc") => Protocol::Grpc,
            _ => Protocol::Http,
        };
        let detailed = self.access_log.is_some() || exporting;
        // The wall clock is read only for the access log and spans.
        let start_wall = if detailed {
            SystemTime::now()
        } else {
            UNIX_EPOCH
        };
        let log = detailed.then(|| LogFields::capture(req, peer));
        let trace_state = exporting
            .then(|| req.fields.get_str("tracestate").map(str::to_owned))
            .flatten();
        if let Some(metrics) = &self.metrics {
            metrics.request_started();
        }
        Box::new(RequestFacts {
            loaded,
            method: req.method.clone(),
            version: req.version,
            protocol,
            route: None,
            cluster: None,
            endpoint: None,
            flags: Flags::default(),
            attempts: 0,
            ejections: 0,
            status: 0,
            grpc_status: None,
            started,
            start_wall,
            upstream_time: None,
            bytes_received: 0,
            request_body_counter: None,
            trace,
            trace_state,
            log,
        })
    }

    /// The request is over: metrics, span, access log entry.
    fn record(&self, facts: Box<RequestFacts>, bytes_sent: u64) {
        let duration = facts.started.elapsed();
        let bytes_received = facts.bytes_received();
        if let Some(metrics) = &self.metrics {
            metrics.record(&Sample {
                loaded: &facts.loaded,
                cluster: facts.cluster,
                route: facts.route,
                labels: RequestLabels {
                    status: facts.status,
                    flags: facts.flags,
                    protocol: facts.protocol,
                    grpc_status: facts.grpc_status,
                },
                duration,
                bytes_received,
                bytes_sent,
                retries: facts.attempts.saturating_sub(1),
                ejections: facts.ejections,
            });
        }
        if let Some(spans) = &self.spans
            && facts.trace.sampled
        {
            spans.submit(self.span(&facts, duration));
        }
        if let Some(log) = &self.access_log {
            log.submit(Entry {
                facts,
                duration,
                bytes_received,
                bytes_sent,
            });
        }
    }

    fn span(&self, facts: &RequestFacts, duration: Duration) -> SpanRecord {
        let table = &facts.loaded.table;
        let cluster = facts.cluster.and_then(|id| table.cluster(id));
        let route = facts.route.and_then(|id| table.route(id));
        // Istio names a sidecar's span `<service>:<port>/*`.
        let name = match (cluster, route) {
            (Some(c), _) => match c.port() {
                Some(port) => format!("{}:{port}/*", c.host()),
                None => format!("{}/*", c.host()),
            },
            (None, Some(r)) => format!(
                "{}/*",
                r.virtual_host().domains().next().unwrap_or("unknown")
            ),
            (None, None) => "unknown".to_owned(),
        };
        let mut attributes = vec![
            (
                "http.request.method",
                AttributeValue::Str(facts.method.to_string()),
            ),
            (
                "http.response.status_code",
                AttributeValue::Int(i64::from(facts.status)),
            ),
            (
                "response_flags",
                AttributeValue::Str(facts.flags.to_string()),
            ),
            (
                "retry_attempts",
                AttributeValue::Int(i64::from(facts.attempts.saturating_sub(1))),
            ),
        ];
        if let Some(log) = &facts.log {
            let text = |v: &str| AttributeValue::Str(v.to_owned());
            for (key, value) in [
                ("url.path", log.path()),
                ("server.address", log.authority()),
                ("user_agent.original", log.user_agent()),
                ("guid:x-request-id", log.request_id()),
            ] {
                if let Some(value) = value {
                    attributes.push((key, text(value)));
                }
            }
        }
        if let Some(c) = cluster {
            attributes.push(("upstream_cluster", AttributeValue::Str(c.name().to_owned())));
            if let Some(subset) = c.subset() {
                attributes.push(("destination_subset", AttributeValue::Str(subset.to_owned())));
            }
        }
        if let Some(endpoint) = facts
            .cluster
            .and_then(|id| facts.loaded.cluster(id))
            .zip(facts.endpoint)
            .and_then(|(state, idx)| state.endpoints.get(idx))
        {
            attributes.push((
                "upstream.address",
                AttributeValue::Str(endpoint.authority.clone()),
            ));
        }
        if let Some(r) = route {
            attributes.push((
                "virtual_service",
                AttributeValue::Str(r.vs_name().to_owned()),
            ));
            if let Some(name) = r.name() {
                attributes.push(("route_name", AttributeValue::Str(name.to_owned())));
            }
        }
        let start_unix_ns = facts
            .start_wall
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let duration_ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        SpanRecord {
            context: facts.trace,
            trace_state: facts.trace_state.clone(),
            name,
            // OTLP SpanKind: CLIENT for outbound (source), SERVER for inbound (destination).
            kind: match self.reporter {
                Reporter::Source => 3,
                Reporter::Destination => 2,
            },
            start_unix_ns,
            end_unix_ns: start_unix_ns.saturating_add(duration_ns),
            error: facts.status >= 500 || facts.status == 0,
            attributes,
        }
    }
}

/// Resolves when the access log writer has written everything and ended (when the last
/// request holding the observer is done), or `grace` plus a second after shutdown began.
async fn wait_for_writer(
    mut done: tokio::sync::oneshot::Receiver<()>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) {
    tokio::select! {
        _ = &mut done => return,
        _ = shutdown.changed() => {}
    }
    if tokio::time::timeout(grace + Duration::from_secs(1), done)
        .await
        .is_err()
    {
        tracing::warn!("the access log writer did not finish within the grace period");
    }
}

/// When the response headers are ready: takes the status, then records at the end of the
/// response body (or now, for a response without one).
pub fn finish(observer: &Arc<Observer>, mut facts: Box<RequestFacts>, reply: Reply) -> Reply {
    let Reply { response, fields } = reply;
    facts.status = response.status().as_u16();
    if facts.protocol == Protocol::Grpc {
        facts.grpc_status = response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u8>().ok())
            .filter(|&code| code <= 16);
    }
    if !observer.records_anything() {
        return Reply { response, fields };
    }
    if response.body().is_end_stream() {
        observer.record(facts, 0);
        return Reply { response, fields };
    }
    let (parts, inner) = response.into_parts();
    let body = ObservedBody {
        inner,
        facts: Some(facts),
        observer: observer.clone(),
        bytes_sent: 0,
    };
    Reply {
        response: Response::from_parts(parts, body.boxed()),
        fields,
    }
}

/// The response body on its way out, counting bytes; records the request when it ends.
struct ObservedBody {
    inner: Body,
    facts: Option<Box<RequestFacts>>,
    observer: Arc<Observer>,
    bytes_sent: u64,
}

impl ObservedBody {
    fn done(&mut self, flag: Option<Flags>) {
        if let Some(mut facts) = self.facts.take() {
            if let Some(flag) = flag {
                facts.flags.set(flag);
            }
            self.observer.record(facts, self.bytes_sent);
        }
    }
}

impl hyper::body::Body for ObservedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes_sent += data.len() as u64;
                }
                if this.inner.is_end_stream() {
                    this.done(None);
                }
            }
            Poll::Ready(Some(Err(_))) => this.done(Some(Flags::UR)),
            Poll::Ready(None) => this.done(None),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ObservedBody {
    fn drop(&mut self) {
        // Dropped before its end: the client went away (or the connection closed).
        let flag = (!self.inner.is_end_stream()).then_some(Flags::DC);
        self.done(flag);
    }
}

/// A streamed request body, counting the bytes read from the client into the facts.
pub fn count_request_body(body: RequestBody, facts: &mut RequestFacts) -> Body {
    let counter = Arc::new(AtomicU64::new(0));
    facts.request_body_counter = Some(counter.clone());
    body.map_frame(move |frame| {
        if let Some(data) = frame.data_ref() {
            counter.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        frame
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use http::header::HeaderValue;

    use super::*;

    #[test]
    fn flags_render_like_envoy() {
        let mut flags = Flags::default();
        assert_eq!(flags.to_string(), "-");
        flags.set(Flags::URX);
        flags.set(Flags::UF);
        assert_eq!(flags.to_string(), "UF,URX");
        flags.set(Flags::DC);
        assert_eq!(Flags::from_bits(flags.bits()), flags);
        assert_eq!(flags.to_string(), "UF,URX,DC");
    }

    #[test]
    fn log_fields_keep_present_and_absent_fields_apart() {
        let mut req = http::Request::builder()
            .uri("/a/b?c=d")
            .header("host", "reviews:9080")
            .header("x-request-id", "id-1")
            .body(())
            .unwrap();
        req.headers_mut().insert(
            "user-agent",
            HeaderValue::from_bytes(b"agent \xff").unwrap(),
        );
        let peer = SocketAddr::from(([127, 0, 0, 1], 5));
        let (parts, ()) = req.into_parts();
        let fields = LogFields::capture_parts(&parts.uri, &parts.headers.into(), peer);
        assert_eq!(fields.path(), Some("/a/b?c=d"));
        assert_eq!(fields.authority(), Some("reviews:9080"));
        assert_eq!(fields.user_agent(), Some("agent \u{fffd}"));
        assert_eq!(fields.forwarded_for(), None);
        assert_eq!(fields.request_id(), Some("id-1"));
    }

    #[test]
    fn request_ids_are_uuid_v4() {
        let new_id = || crate::headers::request_id(rng::next_u64(), rng::next_u64());
        let id = new_id();
        let id = std::str::from_utf8(&id).unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert!(matches!(id.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
        for (i, b) in id.bytes().enumerate() {
            if [8, 13, 18, 23].contains(&i) {
                assert_eq!(b, b'-', "{id}");
            } else {
                assert!(b.is_ascii_hexdigit() && !b.is_ascii_uppercase(), "{id}");
            }
        }
        assert_ne!(id.as_bytes(), new_id());
        // Every digit comes from the random words, in order.
        let fixed = crate::headers::request_id(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
        assert_eq!(
            std::str::from_utf8(&fixed).unwrap(),
            "01234567-89ab-4def-bedc-ba9876543210"
        );
    }
}
