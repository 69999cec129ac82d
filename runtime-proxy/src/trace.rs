//! Trace context: W3C `traceparent`/`tracestate` and B3 (single `b3` header and multi
//! `X-B3-*` headers) in, the proxy's own span out, and OTLP/HTTP JSON export of finished
//! spans, batched by a background task.
//!
//! The proxy's span keeps the incoming trace id (a new one when none came in), gets a new span
//! id, and has the incoming span as its parent; the upstream request carries the proxy's span
//! as its parent. `tracestate` is forwarded unchanged.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::fields::{ProxyField, RequestFields};
use crate::headers::write_hex;
use crate::rng;

/// Which propagation formats the request came with; the upstream request gets the same ones
/// (plus `traceparent`, always).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Formats(u8);

impl Formats {
    pub const W3C: Formats = Formats(1);
    pub const B3_SINGLE: Formats = Formats(2);
    pub const B3_MULTI: Formats = Formats(4);

    pub fn contains(self, other: Formats) -> bool {
        self.0 & other.0 == other.0
    }

    fn add(&mut self, other: Formats) {
        self.0 |= other.0;
    }
}

/// The proxy's span for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: u128,
    /// The proxy's span id (new for every request).
    pub span_id: u64,
    /// The caller's span, when the request carried one.
    pub parent_span_id: Option<u64>,
    pub sampled: bool,
    /// The incoming format used a 64-bit trace id (B3 allows it); B3 headers keep that width.
    pub short_trace_id: bool,
    pub formats: Formats,
}

/// A sampling rate as a threshold on a uniform u64 draw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampler {
    threshold: u64,
    always: bool,
}

impl Sampler {
    /// `percent` in 0..=100 (clamped).
    pub fn from_percent(percent: f64) -> Sampler {
        let fraction = (percent / 100.0).clamp(0.0, 1.0);
        Sampler {
            threshold: (fraction * u64::MAX as f64) as u64,
            always: fraction >= 1.0,
        }
    }

    fn sample(self, draw: u64) -> bool {
        self.always || draw < self.threshold
    }
}

fn header<'f>(fields: &'f RequestFields, name: &str) -> Option<&'f str> {
    fields.get_str(name).map(str::trim)
}

fn hex_u64(s: &str) -> Option<u64> {
    if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok().filter(|&v| v != 0)
}

/// A B3 trace id: 16 or 32 hex digits. Returns the id and whether it was 64-bit.
fn hex_trace_id(s: &str) -> Option<(u128, bool)> {
    if !(s.len() == 16 || s.len() == 32) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let id = u128::from_str_radix(s, 16).ok().filter(|&v| v != 0)?;
    Some((id, s.len() == 16))
}

/// What one incoming header set said: the caller's ids and sampling decision.
#[derive(Default)]
struct Incoming {
    ids: Option<(u128, u64, bool)>,
    sampled: Option<bool>,
}

/// W3C Trace Context §3.2: `version-traceid-parentid-flags`; version `ff` is invalid, and a
/// later version may append fields after the four we read.
fn parse_traceparent(value: &str) -> Option<Incoming> {
    let bytes = value.as_bytes();
    if bytes.len() < 55 || (bytes.len() > 55 && bytes[55] != b'-') {
        return None;
    }
    let (version, rest) = value.split_at(2);
    if version == "ff" || !version.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    if version == "00" && bytes.len() != 55 {
        return None;
    }
    let mut parts = rest[1..55 - 2].split('-');
    let trace = parts.next()?;
    let span = parts.next()?;
    let flags = parts.next()?;
    if trace.len() != 32 || !trace.bytes().all(|b| b.is_ascii_hexdigit()) || flags.len() != 2 {
        return None;
    }
    let trace_id = u128::from_str_radix(trace, 16).ok().filter(|&v| v != 0)?;
    let span_id = hex_u64(span)?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(Incoming {
        ids: Some((trace_id, span_id, false)),
        sampled: Some(flags & 1 == 1),
    })
}

/// B3 single header: `{traceid}-{spanid}[-{sampling}[-{parentspanid}]]`, or the sampling
/// state alone (`0`, `1`, `d`).
fn parse_b3_single(value: &str) -> Option<Incoming> {
    let sampling = |s: &str| match s {
        "1" | "d" => Some(true),
        "0" => Some(false),
        _ => None,
    };
    let mut parts = value.split('-');
    let first = parts.next()?;
    let Some(second) = parts.next() else {
        return Some(Incoming {
            ids: None,
            sampled: Some(sampling(first)?),
        });
    };
    let (trace_id, short) = hex_trace_id(first)?;
    let span_id = hex_u64(second)?;
    let sampled = match parts.next() {
        Some(s) => Some(sampling(s)?),
        None => None,
    };
    Some(Incoming {
        ids: Some((trace_id, span_id, short)),
        sampled,
    })
}

/// B3 multi headers: `X-B3-TraceId`, `X-B3-SpanId`, `X-B3-Sampled`, `X-B3-Flags`.
fn parse_b3_multi(headers: &RequestFields) -> Option<Incoming> {
    let trace = header(headers, "x-b3-traceid");
    let span = header(headers, "x-b3-spanid");
    let sampled = match header(headers, "x-b3-sampled") {
        Some("1") | Some("true") => Some(true),
        Some("0") | Some("false") => Some(false),
        _ => None,
    };
    let debug = header(headers, "x-b3-flags") == Some("1");
    let sampled = if debug { Some(true) } else { sampled };
    let ids = match (trace, span) {
        (Some(trace), Some(span)) => {
            let (trace_id, short) = hex_trace_id(trace)?;
            Some((trace_id, hex_u64(span)?, short))
        }
        _ => None,
    };
    if ids.is_none() && sampled.is_none() {
        return None;
    }
    Some(Incoming { ids, sampled })
}

fn new_span_id() -> u64 {
    loop {
        let id = rng::next_u64();
        if id != 0 {
            return id;
        }
    }
}

impl TraceContext {
    /// The proxy's span for a request with these headers. The first valid context wins, in
    /// the order `traceparent`, `b3`, `X-B3-*`; a sampling decision that came in is kept,
    /// otherwise `sampler` decides.
    pub fn start(headers: &RequestFields, sampler: Sampler) -> TraceContext {
        let mut formats = Formats::default();
        let mut chosen: Option<Incoming> = None;
        let mut take = |incoming: Option<Incoming>, format: Formats| {
            let Some(incoming) = incoming else {
                return;
            };
            formats.add(format);
            match &mut chosen {
                None => chosen = Some(incoming),
                // A sampling-only header does not override ids found earlier, but the first
                // header with ids fills in a context that had only a decision.
                Some(c) if c.ids.is_none() && incoming.ids.is_some() => {
                    c.ids = incoming.ids;
                    c.sampled = c.sampled.or(incoming.sampled);
                }
                Some(_) => {}
            }
        };
        // Most requests carry no trace headers: known when their head was parsed.
        let traced = headers.traced();
        if traced {
            take(
                header(headers, "traceparent").and_then(parse_traceparent),
                Formats::W3C,
            );
            take(
                header(headers, "b3").and_then(parse_b3_single),
                Formats::B3_SINGLE,
            );
            take(parse_b3_multi(headers), Formats::B3_MULTI);
        }
        let chosen = chosen.unwrap_or_default();
        let (trace_id, parent_span_id, short_trace_id) = match chosen.ids {
            Some((trace, span, short)) => (trace, Some(span), short),
            None => {
                let trace = (u128::from(new_span_id()) << 64) | u128::from(rng::next_u64());
                (trace, None, false)
            }
        };
        let sampled = chosen
            .sampled
            .unwrap_or_else(|| sampler.sample(rng::next_u64()));
        TraceContext {
            trace_id,
            span_id: new_span_id(),
            parent_span_id,
            sampled,
            short_trace_id,
            formats,
        }
    }

    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    pub fn span_id_hex(&self) -> String {
        format!("{:016x}", self.span_id)
    }

    fn b3_trace_id(&self) -> String {
        if self.short_trace_id {
            format!("{:016x}", self.trace_id as u64)
        } else {
            format!("{:032x}", self.trace_id)
        }
    }

    /// Sets the upstream request's trace headers: `traceparent` always, `b3` and `X-B3-*`
    /// when the request came with them; the parent in each is the proxy's span.
    pub fn inject(&self, headers: &mut RequestFields) {
        let mut traceparent = *b"00-00000000000000000000000000000000-0000000000000000-00";
        write_hex(&mut traceparent[3..35], self.trace_id);
        write_hex(&mut traceparent[36..52], u128::from(self.span_id));
        if self.sampled {
            traceparent[54] = b'1';
        }
        headers.insert(ProxyField::Traceparent, &traceparent);
        let sampled = if self.sampled { "1" } else { "0" };
        if self.formats.contains(Formats::B3_SINGLE) {
            let mut b3 = format!("{}-{:016x}-{sampled}", self.b3_trace_id(), self.span_id);
            if let Some(parent) = self.parent_span_id {
                let _ = write!(b3, "-{parent:016x}");
            }
            put(headers, ProxyField::B3, &b3);
        }
        if self.formats.contains(Formats::B3_MULTI) {
            put(headers, ProxyField::B3TraceId, &self.b3_trace_id());
            put(
                headers,
                ProxyField::B3SpanId,
                &format!("{:016x}", self.span_id),
            );
            match self.parent_span_id {
                Some(parent) => put(
                    headers,
                    ProxyField::B3ParentSpanId,
                    &format!("{parent:016x}"),
                ),
                None => headers.remove(ProxyField::B3ParentSpanId),
            }
            put(headers, ProxyField::B3Sampled, sampled);
        }
    }
}

fn put(headers: &mut RequestFields, field: ProxyField, value: &str) {
    headers.insert(field, value.as_bytes());
}

/// An attribute value of a finished span.
#[derive(Clone, Debug)]
pub enum AttributeValue {
    Str(String),
    Int(i64),
}

/// A finished span, ready for export.
#[derive(Debug)]
pub struct SpanRecord {
    pub context: TraceContext,
    pub trace_state: Option<String>,
    pub name: String,
    /// OTLP SpanKind: 2 server (inbound), 3 client (outbound).
    pub kind: u8,
    pub start_unix_ns: u64,
    pub end_unix_ns: u64,
    pub error: bool,
    pub attributes: Vec<(&'static str, AttributeValue)>,
}

/// How spans leave the proxy.
#[derive(Clone, Debug)]
pub struct ExportConfig {
    /// `http://host:port[/path]`; the path defaults to `/v1/traces`.
    pub endpoint: Uri,
    pub service_name: String,
    pub flush_interval: Duration,
    pub max_batch: usize,
    pub queue: usize,
}

/// The collector URL to post to: `/v1/traces` when the address has no path.
pub fn traces_url(endpoint: &str) -> Result<Uri, String> {
    let uri: Uri = endpoint
        .parse()
        .map_err(|e| format!("`{endpoint}` is not a URL: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "`{endpoint}`: only http:// collectors are supported"
        ));
    }
    let Some(authority) = uri.authority() else {
        return Err(format!("`{endpoint}` has no host"));
    };
    let path = match uri.path() {
        "" | "/" => "/v1/traces",
        path => path,
    };
    format!("http://{authority}{path}")
        .parse()
        .map_err(|e| format!("`{endpoint}`: {e}"))
}

/// Counters the exporter keeps (read by the metrics endpoint).
#[derive(Debug, Default)]
pub struct ExportCounters {
    pub exported: AtomicU64,
    pub dropped: AtomicU64,
    pub failed_batches: AtomicU64,
}

/// The hot path's side of the exporter: a bounded queue; a full queue drops the span.
pub struct SpanSink {
    tx: mpsc::Sender<SpanRecord>,
    pub counters: Arc<ExportCounters>,
}

impl SpanSink {
    pub fn submit(&self, span: SpanRecord) {
        if self.tx.try_send(span).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Starts the exporter task on the current runtime. It posts a batch when `max_batch` spans
/// are queued or every `flush_interval`, and after shutdown drains the queue for at most
/// `grace` before the last post.
pub fn spawn_exporter(
    config: ExportConfig,
    counters: Arc<ExportCounters>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) -> (SpanSink, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel(config.queue.max(1));
    let sink = SpanSink {
        tx,
        counters: counters.clone(),
    };
    let task = tokio::spawn(async move {
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        let mut batch: Vec<SpanRecord> = Vec::new();
        let mut ticker = tokio::time::interval(config.flush_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stop_at: Option<tokio::time::Instant> = None;
        loop {
            let until_stop = async {
                match stop_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                span = rx.recv() => match span {
                    Some(span) => {
                        batch.push(span);
                        if batch.len() >= config.max_batch {
                            post(&client, &config, &counters, &mut batch).await;
                        }
                    }
                    None => break,
                },
                _ = ticker.tick() => {
                    if !batch.is_empty() {
                        post(&client, &config, &counters, &mut batch).await;
                    }
                }
                changed = shutdown.changed(), if stop_at.is_none() => {
                    let _ = changed;
                    stop_at = Some(tokio::time::Instant::now() + grace);
                }
                _ = until_stop => break,
            }
        }
        while let Ok(span) = rx.try_recv() {
            batch.push(span);
        }
        if !batch.is_empty() {
            post(&client, &config, &counters, &mut batch).await;
        }
    });
    (sink, task)
}

async fn post(
    client: &Client<HttpConnector, Full<Bytes>>,
    config: &ExportConfig,
    counters: &ExportCounters,
    batch: &mut Vec<SpanRecord>,
) {
    let n = batch.len() as u64;
    let body = otlp_json(&config.service_name, batch);
    batch.clear();
    let request = Request::post(config.endpoint.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)));
    let Ok(request) = request else {
        counters.failed_batches.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let sent = tokio::time::timeout(Duration::from_secs(10), client.request(request)).await;
    match sent {
        Ok(Ok(response)) if response.status().is_success() => {
            let _ = response.into_body().collect().await;
            counters.exported.fetch_add(n, Ordering::Relaxed);
        }
        Ok(Ok(response)) => {
            tracing::debug!(status = %response.status(), "span export refused by the collector");
            counters.failed_batches.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Err(error)) => {
            tracing::debug!(%error, "span export failed");
            counters.failed_batches.fetch_add(1, Ordering::Relaxed);
        }
        Err(_) => {
            tracing::debug!("span export timed out");
            counters.failed_batches.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn attribute(key: &str, value: &AttributeValue) -> Value {
    let value = match value {
        AttributeValue::Str(s) => json!({ "stringValue": s }),
        // OTLP JSON: 64-bit integers are strings (protobuf JSON mapping).
        AttributeValue::Int(i) => json!({ "intValue": i.to_string() }),
    };
    json!({ "key": key, "value": value })
}

/// The OTLP/HTTP JSON body (`ExportTraceServiceRequest`) for a batch. Ids are hex strings,
/// as the OTLP JSON encoding specifies.
pub fn otlp_json(service_name: &str, spans: &[SpanRecord]) -> Vec<u8> {
    let spans: Vec<Value> = spans
        .iter()
        .map(|span| {
            let mut object = json!({
                "traceId": span.context.trace_id_hex(),
                "spanId": span.context.span_id_hex(),
                "name": span.name,
                "kind": span.kind,
                "startTimeUnixNano": span.start_unix_ns.to_string(),
                "endTimeUnixNano": span.end_unix_ns.to_string(),
                "attributes": span.attributes.iter().map(|(k, v)| attribute(k, v)).collect::<Vec<_>>(),
                // STATUS_CODE_ERROR = 2, STATUS_CODE_UNSET = 0.
                "status": { "code": if span.error { 2 } else { 0 } },
            });
            if let Some(parent) = span.context.parent_span_id {
                object["parentSpanId"] = json!(format!("{parent:016x}"));
            }
            if let Some(state) = &span.trace_state {
                object["traceState"] = json!(state);
            }
            object
        })
        .collect();
    let body = json!({
        "resourceSpans": [{
            "resource": { "attributes": [attribute("service.name", &AttributeValue::Str(service_name.to_owned()))] },
            "scopeSpans": [{
                "scope": { "name": "mesh-proxy", "version": env!("CARGO_PKG_VERSION") },
                "spans": spans,
            }],
        }],
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> RequestFields {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, http::HeaderValue::from_str(value).unwrap());
        }
        map.into()
    }

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_keeps_the_trace_and_parents_the_proxy_span() {
        let ctx = TraceContext::start(&headers(&[("traceparent", TP)]), Sampler::from_percent(0.0));
        assert_eq!(ctx.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.parent_span_id, Some(0x00f0_67aa_0ba9_02b7));
        assert_ne!(ctx.span_id, 0x00f0_67aa_0ba9_02b7);
        assert!(ctx.sampled, "the caller's sampled flag wins over a 0% rate");
        let mut out = headers(&[("traceparent", TP), ("tracestate", "congo=t61rcWkgMzE")]);
        ctx.inject(&mut out);
        assert_eq!(
            out.get_str("traceparent").unwrap(),
            format!(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-{:016x}-01",
                ctx.span_id
            )
        );
        assert_eq!(out.get_str("tracestate"), Some("congo=t61rcWkgMzE"));
        assert!(!out.contains("b3") && !out.contains("x-b3-traceid"));
    }

    #[test]
    fn invalid_traceparents_start_a_new_trace() {
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "garbage",
        ] {
            let ctx = TraceContext::start(
                &headers(&[("traceparent", bad)]),
                Sampler::from_percent(100.0),
            );
            assert_eq!(ctx.parent_span_id, None, "{bad}");
            assert_ne!(
                ctx.trace_id_hex(),
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "{bad}"
            );
            assert!(ctx.sampled);
        }
        // A later version may append fields.
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-what";
        let ctx = TraceContext::start(
            &headers(&[("traceparent", later)]),
            Sampler::from_percent(100.0),
        );
        assert_eq!(ctx.parent_span_id, Some(0x00f0_67aa_0ba9_02b7));
        assert!(!ctx.sampled);
    }

    #[test]
    fn b3_single_and_multi_are_answered_in_kind() {
        let single = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90";
        let ctx = TraceContext::start(&headers(&[("b3", single)]), Sampler::from_percent(0.0));
        assert_eq!(ctx.trace_id_hex(), "80f198ee56343ba864fe8b2a57d3eff7");
        assert_eq!(ctx.parent_span_id, Some(0xe457_b5a2_e4d8_6bd1));
        assert!(ctx.sampled);
        let mut out = RequestFields::default();
        ctx.inject(&mut out);
        assert_eq!(
            out.get_str("b3").unwrap(),
            format!(
                "80f198ee56343ba864fe8b2a57d3eff7-{:016x}-1-e457b5a2e4d86bd1",
                ctx.span_id
            )
        );
        assert!(out.contains("traceparent"));

        // As a map (HTTP/2) and as the lines of an HTTP/1.1 head, names in any case.
        let multi = || {
            headers(&[
                ("x-b3-traceid", "a3ce929d0e0e4736"),
                ("x-b3-spanid", "00f067aa0ba902b7"),
                ("x-b3-parentspanid", "1111111111111111"),
                ("x-b3-sampled", "0"),
            ])
        };
        let lines = || {
            crate::fields::tests::lines(
                "GET / HTTP/1.1\r\nHost: a\r\nX-B3-TraceId: a3ce929d0e0e4736\r\n\
                 X-B3-SpanId: 00f067aa0ba902b7\r\nX-B3-ParentSpanId: 1111111111111111\r\n\
                 X-B3-Sampled: 0\r\n\r\n",
            )
        };
        for (incoming, mut out) in [(multi(), multi()), (lines(), lines())] {
            let ctx = TraceContext::start(&incoming, Sampler::from_percent(100.0));
            assert!(ctx.short_trace_id && !ctx.sampled);
            ctx.inject(&mut out);
            assert_eq!(out.get_str("x-b3-traceid"), Some("a3ce929d0e0e4736"));
            assert_eq!(
                out.get_str("x-b3-spanid").unwrap(),
                format!("{:016x}", ctx.span_id)
            );
            assert_eq!(out.get_str("x-b3-parentspanid"), Some("00f067aa0ba902b7"));
            assert_eq!(out.get_all("x-b3-parentspanid").count(), 1);
            assert_eq!(out.get_str("x-b3-sampled"), Some("0"));
            assert_eq!(
                out.get_str("traceparent").unwrap(),
                format!(
                    "00-0000000000000000a3ce929d0e0e4736-{:016x}-00",
                    ctx.span_id
                )
            );
        }
    }

    #[test]
    fn a_sampling_only_b3_header_decides_a_new_trace() {
        let ctx = TraceContext::start(&headers(&[("b3", "0")]), Sampler::from_percent(100.0));
        assert!(!ctx.sampled);
        assert_eq!(ctx.parent_span_id, None);
        let ctx = TraceContext::start(&headers(&[("x-b3-flags", "1")]), Sampler::from_percent(0.0));
        assert!(ctx.sampled, "debug means sampled");
    }

    #[test]
    fn no_context_means_a_new_trace_sampled_by_rate() {
        let none = RequestFields::default();
        let a = TraceContext::start(&none, Sampler::from_percent(100.0));
        let b = TraceContext::start(&none, Sampler::from_percent(0.0));
        assert!(a.sampled && !b.sampled);
        assert_ne!(a.trace_id, b.trace_id);
        assert_eq!(a.parent_span_id, None);
        let mut out = RequestFields::default();
        a.inject(&mut out);
        assert_eq!(
            out.to_map().len(),
            1,
            "only traceparent for a trace the proxy started"
        );
    }

    #[test]
    fn collector_urls_default_to_v1_traces() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318").unwrap().to_string(),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/custom")
                .unwrap()
                .to_string(),
            "http://collector:4318/custom"
        );
        assert!(traces_url("https://collector:4318").is_err());
        assert!(traces_url("not a url").is_err());
    }

    #[test]
    fn otlp_json_has_hex_ids_and_parent() {
        let ctx = TraceContext::start(&headers(&[("traceparent", TP)]), Sampler::from_percent(0.0));
        let span = SpanRecord {
            context: ctx,
            trace_state: Some("a=b".into()),
            name: "reviews.default.svc.cluster.local:9080/*".into(),
            kind: 3,
            start_unix_ns: 1,
            end_unix_ns: 2,
            error: false,
            attributes: vec![("http.response.status_code", AttributeValue::Int(200))],
        };
        let body: Value = serde_json::from_slice(&otlp_json("svc", &[span])).unwrap();
        let span = &body["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(span["parentSpanId"], "00f067aa0ba902b7");
        assert_eq!(span["traceState"], "a=b");
        assert_eq!(span["attributes"][0]["value"]["intValue"], "200");
        assert_eq!(
            body["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"],
            "svc"
        );
    }
}
