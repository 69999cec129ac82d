//! The split (endpoint) and upstream phases: circuit breaking, the retry loop with per-try and
//! route timeouts, header operations and rewrites, mirrors, and the response's way back.
//!
//! Retries are decided on errors and on status/headers only, before any of the response body
//! is forwarded, so a body that started streaming is never retried. Request bodies up to
//! [`REPLAY_LIMIT`] with a known length are buffered and replayed; others stream and get one
//! try.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::{InvalidUri, PathAndQuery};
use http::{Method, Request, Response, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Body as _;
use mesh_table::{ClusterView, DestinationView, RouteDecision, RouteView};
use tokio::time::Instant;

use crate::downstream;
use crate::error::{ErrorKind, ProxyError, retriable_status};
use crate::fields::RequestFields;
use crate::h1::{self, RequestFraming};
use crate::headers;
use crate::lb::{self, PickInput, TryOutcome};
use crate::observe::{self, Flags, RequestFacts};
use crate::pool::{Outgoing, PooledBody};
use crate::proxy::{Body, Proxy, Reply, full, local_reply};
use crate::rng;
use crate::state::{ClusterState, Loaded};

/// Request bodies up to this size are buffered so that retries can replay them.
pub const REPLAY_LIMIT: usize = 64 * 1024;
/// Istio's default retry backoff base.
const DEFAULT_BACKOFF_MS: u32 = 25;
/// Mirrors are fire-and-forget, but not forever.
const MIRROR_TIMEOUT: Duration = Duration::from_secs(10);

/// What the route phase decided for a forwarded request.
pub struct Forward<'a, 't> {
    pub loaded: &'a Loaded,
    pub decision: &'a RouteDecision<'t>,
    pub destination: DestinationView<'t>,
    pub cluster: ClusterView<'t>,
    pub authority: &'a str,
    pub method: Method,
    pub uri: Uri,
    pub fields: RequestFields,
    pub peer: std::net::SocketAddr,
    pub random: u64,
}

/// Counts a request in flight in its cluster for as long as it lives.
struct InFlight<'a>(&'a AtomicU32);

impl<'a> InFlight<'a> {
    fn acquire(counter: &'a AtomicU32, max: u32) -> Option<InFlight<'a>> {
        let before = counter.fetch_add(1, Ordering::AcqRel);
        if before >= max {
            counter.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(InFlight(counter))
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The request body: buffered (replayable) or streamed (one try).
enum RequestBody {
    Replay(Bytes),
    Stream(Option<Body>),
}

impl RequestBody {
    fn framing(&self) -> RequestFraming {
        match self {
            RequestBody::Replay(bytes) if bytes.is_empty() => RequestFraming::Empty,
            RequestBody::Replay(bytes) => RequestFraming::Length(bytes.len() as u64),
            RequestBody::Stream(Some(body)) => RequestFraming::of(body),
            RequestBody::Stream(None) => RequestFraming::Empty,
        }
    }

    fn for_try(&mut self) -> Body {
        match self {
            RequestBody::Replay(bytes) => full(bytes.clone()),
            RequestBody::Stream(stream) => match stream.take() {
                Some(body) => body,
                None => Empty::new().map_err(|never| match never {}).boxed(),
            },
        }
    }
}

/// The path and query sent upstream, after a `rewrite.uri`. Istio replaces the matched prefix
/// when the route matched on a path prefix, and the whole path otherwise. `uriRegexRewrite`
/// is not applied yet (it needs a capturing regex engine the proxy does not carry).
fn rewritten_path(route: &RouteView<'_>, uri: &Uri) -> Result<PathAndQuery, InvalidUri> {
    let Some(replacement) = route.rewrite().and_then(|rewrite| rewrite.uri) else {
        // No rewrite: the client's path and query as they came (a reference to its bytes).
        return Ok(h1::origin_form(uri));
    };
    let path = uri.path();
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let matched_prefix = route.matches().find_map(|m| {
        m.conditions().find_map(|c| match (c.field, c.test) {
            (mesh_table::ConditionField::Path, mesh_table::ConditionTest::Prefix(prefix))
                if !c.negated && path.starts_with(prefix) =>
            {
                Some(prefix.len())
            }
            _ => None,
        })
    });
    let rewritten = match matched_prefix {
        Some(len) => format!("{replacement}{}{query}", &path[len..]),
        None => format!("{replacement}{query}"),
    };
    PathAndQuery::try_from(rewritten)
}

/// The upstream phase for one forwarded request.
pub async fn forward(
    proxy: &Proxy,
    request: Forward<'_, '_>,
    body: downstream::RequestBody,
    facts: &mut RequestFacts,
) -> Reply {
    let Forward {
        loaded,
        decision,
        destination,
        cluster,
        authority,
        method,
        uri,
        mut fields,
        peer,
        random,
    } = request;
    let Some(state) = loaded.cluster(cluster.id()) else {
        return local_reply(500, "internal error: the cluster has no runtime state\n");
    };
    let route = decision.route;
    let timeout_ms = route.timeout_ms().filter(|&ms| ms > 0);
    // The clock is read only for what needs it: the route timeout, or the access log's
    // upstream time (a read costs about 35 ns; most routes have neither).
    let started = (timeout_ms.is_some() || facts.log.is_some()).then(Instant::now);
    let deadline = timeout_ms
        .zip(started)
        .map(|(ms, started)| started + Duration::from_millis(u64::from(ms)));

    let scheme = uri.scheme_str().unwrap_or("http");
    fields.strip_hop_by_hop();
    headers::add_forwarding(&mut fields, peer.ip(), scheme);
    facts.trace.inject(&mut fields);
    let (route_ops, destination_ops) = (route.request_headers(), destination.request_headers());
    if route_ops.len() + destination_ops.len() > 0 {
        // Operations act on a header map; the client's lines are parsed into one for them.
        let map = fields.map_mut();
        headers::apply_ops(map, route_ops);
        headers::apply_ops(map, destination_ops);
    }
    // `Host` is written from this, whatever the fields say.
    let upstream_authority = route
        .rewrite()
        .and_then(|r| r.authority)
        .unwrap_or(authority);
    let path_and_query = match rewritten_path(&route, &uri) {
        Ok(path_and_query) => path_and_query,
        Err(e) => {
            facts.flags.set(Flags::UR);
            let error = ProxyError::new(ErrorKind::BadUpstreamRequest, e);
            return local_reply(503, format!("{error}\n"));
        }
    };

    for mirror in decision.mirrors() {
        spawn_mirror(
            proxy,
            loaded,
            mirror.cluster,
            (&method, &uri, &fields),
            upstream_authority,
            &path_and_query,
            random,
        );
    }

    let Some(_in_flight) = InFlight::acquire(&state.in_flight, state.max_in_flight) else {
        facts.flags.set(Flags::UO);
        return local_reply(
            503,
            "upstream overflow: the cluster's connection pool is full\n",
        );
    };

    let exact_len = body.size_hint().exact();
    let mut request_body = if body.is_end_stream() {
        RequestBody::Replay(Bytes::new())
    } else if exact_len.is_some_and(|n| n <= REPLAY_LIMIT as u64) {
        let collect = Limited::new(body, REPLAY_LIMIT).collect();
        let collected = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, collect).await {
                Ok(result) => result,
                Err(_) => {
                    facts.flags.set(Flags::UT);
                    return local_reply(504, "upstream request timeout");
                }
            },
            None => collect.await,
        };
        match collected {
            Ok(collected) => {
                let bytes = collected.to_bytes();
                facts.bytes_received = bytes.len() as u64;
                RequestBody::Replay(bytes)
            }
            Err(e) => {
                facts.flags.set(Flags::DPE);
                let error = ProxyError::new(ErrorKind::DownstreamBody, e);
                return local_reply(400, format!("{error}\n"));
            }
        }
    } else {
        RequestBody::Stream(Some(observe::count_request_body(body, facts)))
    };

    let retry = route.retry();
    let replayable = matches!(request_body, RequestBody::Replay(_));
    let tries = if replayable {
        1 + retry.map_or(0, |r| r.attempts)
    } else {
        1
    };
    let per_try = retry
        .and_then(|r| r.per_try_timeout_ms)
        .filter(|&ms| ms > 0)
        .map(|ms| Duration::from_millis(u64::from(ms)));
    let backoff_base = retry
        .and_then(|r| r.backoff_ms)
        .filter(|&ms| ms > 0)
        .unwrap_or(DEFAULT_BACKOFF_MS);
    let lb = cluster.load_balancer();
    // The head is encoded once; every try sends the same bytes.
    let mut head = Vec::with_capacity(256 + fields.wire_len());
    let framing = request_body.framing();
    h1::encode_request_head(
        &mut head,
        &method,
        path_and_query.as_str(),
        &fields,
        framing,
        upstream_authority,
    );
    let outgoing = Outgoing {
        method: &method,
        head: &head,
        framing,
    };

    let mut attempt = 0;
    loop {
        attempt += 1;
        facts.attempts = attempt;
        let pick_input = PickInput {
            random,
            headers: &fields,
            client_ip: peer.ip(),
            query: uri.query(),
        };
        let Some(endpoint_idx) = lb::pick_endpoint(state, lb, &pick_input) else {
            facts.flags.set(Flags::UH);
            return local_reply(503, "no healthy upstream");
        };
        facts.endpoint = Some(endpoint_idx);
        let result = try_once(
            proxy,
            state,
            endpoint_idx,
            &outgoing,
            request_body.for_try(),
            per_try,
            deadline,
        )
        .await;
        if facts.log.is_some()
            && let Some(started) = started
        {
            facts.upstream_time = Some(started.elapsed());
        }
        let more_tries = attempt < tries && deadline.is_none_or(|d| Instant::now() < d);
        match result {
            Ok(response) => {
                let status = response.status().as_u16();
                if lb::record_outcome(state, endpoint_idx, TryOutcome::Status(status)) {
                    facts.ejections += 1;
                }
                let grpc_status = response
                    .headers()
                    .get(headers::names::GRPC_STATUS)
                    .and_then(|v| v.to_str().ok());
                let wants_retry = retry.is_some_and(|r| retriable_status(&r, status, grpc_status));
                if wants_retry && more_tries {
                    // The body was not forwarded; dropping it closes or reuses the connection.
                    drop(response);
                    if !backoff(attempt, backoff_base, deadline).await {
                        facts.flags.set(Flags::UT);
                        return local_reply(504, "upstream request timeout");
                    }
                    continue;
                }
                if wants_retry && attempt > 1 {
                    facts.flags.set(Flags::URX);
                }
                return respond(response, &route, &destination);
            }
            Err(error) => {
                // A request body that failed on the client's side says nothing about the
                // endpoint.
                if error.kind != ErrorKind::DownstreamBody
                    && lb::record_outcome(state, endpoint_idx, TryOutcome::LocalFailure)
                {
                    facts.ejections += 1;
                }
                tracing::debug!(%error, attempt, "upstream try failed");
                if error.kind == ErrorKind::RouteTimeout {
                    facts.flags.set(Flags::UT);
                    return local_reply(504, "upstream request timeout");
                }
                if more_tries && retry.is_some_and(|r| error.retriable_under(&r)) {
                    if !backoff(attempt, backoff_base, deadline).await {
                        facts.flags.set(Flags::UT);
                        return local_reply(504, "upstream request timeout");
                    }
                    continue;
                }
                if attempt > 1 {
                    facts.flags.set(Flags::URX);
                }
                return match error.kind {
                    ErrorKind::PerTryTimeout => {
                        facts.flags.set(Flags::UT);
                        local_reply(504, "upstream request timeout")
                    }
                    ErrorKind::ConnectFailure => {
                        facts.flags.set(Flags::UF);
                        local_reply(503, format!("{error}\n"))
                    }
                    ErrorKind::DownstreamBody => {
                        facts.flags.set(Flags::DPE);
                        local_reply(400, format!("{error}\n"))
                    }
                    _ => {
                        facts.flags.set(Flags::UR);
                        local_reply(503, format!("{error}\n"))
                    }
                };
            }
        }
    }
}

/// Sleeps before the next try: full jitter over base × 2^(tries so far), capped at 10 × base.
/// Returns false when the route deadline leaves no time for another try.
async fn backoff(attempt: u32, base_ms: u32, deadline: Option<Instant>) -> bool {
    let base = u64::from(base_ms);
    let cap = base
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(16))
        .min(base * 10);
    let delay = Duration::from_millis(rng::next_u64() % (cap + 1));
    let wake = Instant::now() + delay;
    if deadline.is_some_and(|d| wake >= d) {
        return false;
    }
    tokio::time::sleep_until(wake).await;
    true
}

/// One try against one endpoint, bounded by the per-try timeout and the route deadline.
async fn try_once(
    proxy: &Proxy,
    state: &ClusterState,
    endpoint_idx: usize,
    outgoing: &Outgoing<'_>,
    body: Body,
    per_try: Option<Duration>,
    deadline: Option<Instant>,
) -> Result<Response<PooledBody>, ProxyError> {
    let Some(endpoint) = state.endpoints.get(endpoint_idx) else {
        return Err(ProxyError::new(
            ErrorKind::BadUpstreamRequest,
            "endpoint index out of range",
        ));
    };
    let try_deadline = per_try.map(|t| Instant::now() + t);
    let limit = match (try_deadline, deadline) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    // Counted while the try runs, and uncounted however it ends (a client gone drops it).
    let _counted = EndpointTry::start(&endpoint.in_flight);
    // Origin-form, HTTP/1.1 whatever the client spoke; `Host` carries the authority.
    let sent = proxy.pool.send_head(&endpoint.authority, outgoing, body);
    match limit {
        Some(limit) => match tokio::time::timeout_at(limit, sent).await {
            Ok(result) => result.map_err(|e| ProxyError::from_send(&e)),
            Err(_) => {
                let kind = if deadline.is_some_and(|d| limit >= d) {
                    ErrorKind::RouteTimeout
                } else {
                    ErrorKind::PerTryTimeout
                };
                Err(ProxyError::new(kind, "no response headers in time"))
            }
        },
        None => sent.await.map_err(|e| ProxyError::from_send(&e)),
    }
}

/// One try in flight to an endpoint, for least-request balancing; uncounted when dropped.
struct EndpointTry<'a>(&'a std::sync::atomic::AtomicU32);

impl<'a> EndpointTry<'a> {
    fn start(counter: &'a std::sync::atomic::AtomicU32) -> EndpointTry<'a> {
        counter.fetch_add(1, Ordering::Relaxed);
        EndpointTry(counter)
    }
}

impl Drop for EndpointTry<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The response's way back: hop-by-hop headers out, the response header operations in.
fn respond(
    response: Response<PooledBody>,
    route: &RouteView<'_>,
    destination: &DestinationView<'_>,
) -> Reply {
    let (mut parts, mut body) = response.into_parts();
    // The fields passed on unparsed hold no hop-by-hop field; they are parsed only for a
    // header operation to act on.
    let mut fields = body.take_fields();
    let route_ops = route.response_headers();
    let destination_ops = destination.response_headers();
    if route_ops.len() + destination_ops.len() > 0
        && let Some(fields) = fields.take()
    {
        fields.add_to(&mut parts.headers);
    }
    headers::strip_hop_by_hop(&mut parts.headers);
    headers::apply_ops(&mut parts.headers, route_ops);
    headers::apply_ops(&mut parts.headers, destination_ops);
    Reply {
        response: Response::from_parts(parts, body.boxed()),
        fields,
    }
}

/// Sends a body-less copy to the mirror cluster, with `-shadow` appended to the authority's
/// host (as Envoy does), and forgets it.
fn spawn_mirror(
    proxy: &Proxy,
    loaded: &Loaded,
    cluster: ClusterView<'_>,
    (method, uri, fields): (&Method, &Uri, &RequestFields),
    authority: &str,
    path_and_query: &PathAndQuery,
    random: u64,
) {
    let Some(state) = loaded.cluster(cluster.id()) else {
        return;
    };
    let input = PickInput {
        random,
        headers: fields,
        client_ip: std::net::IpAddr::from([127, 0, 0, 1]),
        query: uri.query(),
    };
    let Some(endpoint) = lb::pick_endpoint(state, cluster.load_balancer(), &input)
        .and_then(|i| state.endpoints.get(i))
    else {
        return;
    };
    let mirror_uri = Uri::from(path_and_query.clone());
    let (host, port) = crate::proxy::split_host_port(authority);
    let shadow = match port {
        Some(port) => format!("{host}-shadow:{port}"),
        None => format!("{host}-shadow"),
    };
    let mut request = Request::new(Empty::new().map_err(|never| match never {}).boxed());
    *request.method_mut() = method.clone();
    *request.uri_mut() = mirror_uri;
    *request.headers_mut() = fields.to_map();
    request.headers_mut().remove(header::CONTENT_LENGTH);
    if let Ok(value) = HeaderValue::from_str(&shadow) {
        request.headers_mut().insert(header::HOST, value);
    }
    let pool = proxy.pool.clone();
    let authority = endpoint.authority.clone();
    tokio::spawn(async move {
        // The whole exchange, body included, within the timeout: a mirror that streams
        // forever must not hold a task and a connection.
        let exchange = async {
            let response = pool.send(&authority, request).await?;
            // Read the body so the connection goes back to the pool.
            let _ = response.into_body().collect().await;
            Ok::<(), crate::pool::SendError>(())
        };
        match tokio::time::timeout(MIRROR_TIMEOUT, exchange).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %ProxyError::from_send(&e), "mirror failed"),
            Err(_) => tracing::debug!("mirror timed out"),
        }
    });
}
