//! Upstream HTTP/1.1 connections, kept alive and reused per endpoint.
//!
//! One map from an endpoint's authority (`ip:port`) to its idle connections, shared by every
//! worker and kept across table reloads, so a reload does not cost a reconnect. A try takes
//! the most recently used idle connection that is still open (last in, first out keeps few
//! connections warm), or opens one; the response body hands the connection back when its
//! last byte has been read. A request that an idle connection could not even start, because
//! the upstream closed it meanwhile, goes to another connection, as Envoy and hyper's own
//! pool do. A response dropped before its end (a 503 that a retry replaces) gives its
//! connection back once hyper has drained the rest, which it does when the rest is already
//! buffered; otherwise the connection is closed (HTTP/1.1 cannot skip the rest of a body).
//!
//! This replaces a general-purpose client whose per-request pool bookkeeping (a SipHash of
//! scheme and authority, a checkout future, a task to return the connection) cost about a
//! sixth of the proxy's user-space instructions per request.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::metrics::ConnectionCounters;
use crate::proxy::Body;

/// An idle connection older than this is closed rather than reused.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle connections kept per endpoint; more are closed when they come back.
pub const MAX_IDLE_PER_ENDPOINT: usize = 256;
/// Endpoints known to the pool before a new one makes it forget those with no open idle
/// connection (endpoints come and go with table reloads).
const PRUNE_AT: usize = 1024;
/// How long opening a connection may take before the try fails as a connect failure.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a try got no response head.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be opened (refused, unreachable, timed out, name not resolved).
    Connect(std::io::Error),
    /// The connection failed or closed during the exchange, or the request body failed.
    Http(hyper::Error),
}

/// Authorities are short and come from the table, not from clients: the proxy's FNV-1a
/// (`rng::hash_bytes`) rather than SipHash.
#[derive(Default)]
struct AuthorityHasher(u64);

impl Hasher for AuthorityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = self.0.rotate_left(5) ^ crate::rng::hash_bytes(bytes);
    }
}

type IdleMap = HashMap<Arc<str>, Endpoint, BuildHasherDefault<AuthorityHasher>>;

/// One endpoint's idle connections, with its key (handed to response bodies).
struct Endpoint {
    key: Arc<str>,
    idle: Vec<IdleConnection>,
}

struct IdleConnection {
    sender: SendRequest<Body>,
    since: Instant,
}

struct Shared {
    idle: Mutex<IdleMap>,
    counters: Arc<ConnectionCounters>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, IdleMap> {
        // A panic while the lock was held leaves a map that is still consistent.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The endpoint's key and its freshest open idle connection, if any.
    fn checkout(&self, authority: &str) -> (Arc<str>, Option<SendRequest<Body>>) {
        let mut map = self.lock();
        let Some(endpoint) = map.get_mut(authority) else {
            if map.len() >= PRUNE_AT {
                map.retain(|_, endpoint| {
                    endpoint.idle.retain(|c| !c.sender.is_closed());
                    !endpoint.idle.is_empty()
                });
            }
            let key: Arc<str> = Arc::from(authority);
            let endpoint = Endpoint {
                key: key.clone(),
                idle: Vec::new(),
            };
            map.insert(key.clone(), endpoint);
            return (key, None);
        };
        while let Some(connection) = endpoint.idle.pop() {
            if !connection.sender.is_closed() && connection.since.elapsed() < IDLE_TIMEOUT {
                return (endpoint.key.clone(), Some(connection.sender));
            }
        }
        (endpoint.key.clone(), None)
    }

    fn give_back(&self, key: &str, sender: SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let mut map = self.lock();
        let Some(endpoint) = map.get_mut(key) else {
            return;
        };
        if endpoint.idle.len() >= MAX_IDLE_PER_ENDPOINT {
            // The oldest goes: it is the likeliest to have been closed by the upstream.
            endpoint.idle.remove(0);
        }
        endpoint.idle.push(IdleConnection {
            sender,
            since: Instant::now(),
        });
    }
}

/// The upstream connection pool of one proxy.
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

impl Pool {
    pub fn new(counters: Arc<ConnectionCounters>) -> Pool {
        Pool {
            shared: Arc::new(Shared {
                idle: Mutex::new(IdleMap::default()),
                counters,
            }),
        }
    }

    /// Sends `request` (origin-form URI, `Host` set) to `authority` and returns the response
    /// head; the body returns the connection to the pool when it ends.
    pub async fn send(
        &self,
        authority: &str,
        mut request: Request<Body>,
    ) -> Result<Response<PooledBody>, SendError> {
        loop {
            let (key, idle) = self.shared.checkout(authority);
            let Some(mut sender) = idle else {
                let mut sender = self.connect(authority).await?;
                let response = sender
                    .send_request(request)
                    .await
                    .map_err(SendError::Http)?;
                return Ok(self.wrap(key, sender, response));
            };
            if !sender.is_ready() && sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.wrap(key, sender, response)),
                Err(mut error) => match error.take_message() {
                    // Not a byte was written: the connection was closed under us.
                    Some(unsent) => request = unsent,
                    None => return Err(SendError::Http(error.into_error())),
                },
            }
        }
    }

    async fn connect(&self, authority: &str) -> Result<SendRequest<Body>, SendError> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(authority))
            .await
            .map_err(|_| {
                SendError::Connect(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {} s", CONNECT_TIMEOUT.as_secs()),
                ))
            })?
            .map_err(SendError::Connect)?;
        let _ = stream.set_nodelay(true);
        let io = CountedStream::new(stream, self.shared.counters.clone());
        let (sender, connection) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(SendError::Http)?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "upstream connection ended");
            }
        });
        Ok(sender)
    }

    fn wrap(
        &self,
        key: Arc<str>,
        sender: SendRequest<Body>,
        response: Response<Incoming>,
    ) -> Response<PooledBody> {
        let (parts, body) = response.into_parts();
        let mut body = PooledBody {
            body,
            back: Some((self.shared.clone(), key, sender)),
        };
        if body.body.is_end_stream() {
            body.give_back();
        }
        Response::from_parts(parts, body)
    }

    /// Endpoints the pool knows.
    #[cfg(test)]
    pub fn endpoints(&self) -> usize {
        self.shared.lock().len()
    }

    /// Idle connections of one endpoint.
    #[cfg(test)]
    pub fn idle_connections(&self, authority: &str) -> usize {
        self.shared
            .lock()
            .get(authority)
            .map_or(0, |endpoint| endpoint.idle.len())
    }
}

/// A response body that returns its connection to the pool once it has been read to the end.
pub struct PooledBody {
    body: Incoming,
    back: Option<(Arc<Shared>, Arc<str>, SendRequest<Body>)>,
}

impl PooledBody {
    fn give_back(&mut self) {
        if let Some((shared, key, sender)) = self.back.take() {
            shared.give_back(&key, sender);
        }
    }
}

/// How long a connection whose response was dropped before its end may take to become
/// ready again before it is closed instead.
const DRAIN_WAIT: Duration = Duration::from_secs(1);

impl Drop for PooledBody {
    fn drop(&mut self) {
        // Dropped before its end (a response that a retry replaces, a client gone): hyper
        // drains a body it already holds, as a short error page usually is, and closes the
        // connection otherwise. A short wait tells which; a connection that can take another
        // request goes back to the pool.
        let Some((shared, key, mut sender)) = self.back.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            if let Ok(Ok(())) = tokio::time::timeout(DRAIN_WAIT, sender.ready()).await {
                shared.give_back(&key, sender);
            }
        });
    }
}

impl hyper::body::Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.give_back(),
            // A broken body means a broken connection: never reuse it.
            Poll::Ready(Some(Err(_))) => self.back = None,
            Poll::Ready(Some(Ok(_))) if self.body.is_end_stream() => self.give_back(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// An upstream connection that is counted as active until dropped.
pub struct CountedStream {
    stream: TokioIo<TcpStream>,
    counters: Arc<ConnectionCounters>,
}

impl CountedStream {
    fn new(stream: TcpStream, counters: Arc<ConnectionCounters>) -> CountedStream {
        counters.opened.fetch_add(1, Ordering::Relaxed);
        counters.active.fetch_add(1, Ordering::Relaxed);
        CountedStream {
            stream: TokioIo::new(stream),
            counters,
        }
    }
}

impl Drop for CountedStream {
    fn drop(&mut self) {
        self.counters.active.fetch_sub(1, Ordering::Relaxed);
    }
}

impl hyper::rt::Read for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Empty};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn get(path: &str) -> Request<Body> {
        let mut request = Request::new(Empty::new().map_err(|never| match never {}).boxed());
        *request.uri_mut() = path.parse().unwrap();
        request
            .headers_mut()
            .insert(http::header::HOST, "upstream".parse().unwrap());
        request
    }

    /// An upstream that answers `answers` requests per connection with `200 ok`, then closes
    /// the connection; it counts connections.
    async fn upstream(answers: usize) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        upstream_answering(answers, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await
    }

    /// An upstream that writes `response` to each of `answers` requests per connection.
    async fn upstream_answering(
        answers: usize,
        response: &'static [u8],
    ) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut pending = Vec::new();
                    let mut answered = 0;
                    while answered < answers {
                        let Ok(n) = socket.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        pending.extend_from_slice(&buf[..n]);
                        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                            pending.drain(..end + 4);
                            let _ = socket.write_all(response).await;
                            answered += 1;
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    async fn body_of(response: Response<PooledBody>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_body_has_been_read() {
        let (addr, accepted) = upstream(usize::MAX).await;
        let pool = Pool::new(Arc::new(ConnectionCounters::default()));
        for _ in 0..5 {
            let response = pool.send(&addr, get("/")).await.unwrap();
            assert_eq!(body_of(response).await, "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(pool.idle_connections(&addr), 1);
    }

    #[tokio::test]
    async fn a_response_dropped_with_its_short_body_buffered_returns_its_connection() {
        // What a retry does with a 503: drop it unread.
        let (addr, accepted) = upstream(usize::MAX).await;
        let pool = Pool::new(Arc::new(ConnectionCounters::default()));
        let response = pool.send(&addr, get("/")).await.unwrap();
        drop(response);
        for _ in 0..100 {
            if pool.idle_connections(&addr) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(pool.idle_connections(&addr), 1);
        let response = pool.send(&addr, get("/")).await.unwrap();
        assert_eq!(body_of(response).await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_response_dropped_in_the_middle_of_its_body_closes_its_connection() {
        // 10 of 100,000 promised bytes, then nothing: the rest can never be skipped.
        let (addr, accepted) = upstream_answering(
            usize::MAX,
            b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n0123456789",
        )
        .await;
        let pool = Pool::new(Arc::new(ConnectionCounters::default()));
        let response = pool.send(&addr, get("/")).await.unwrap();
        drop(response);
        tokio::time::sleep(DRAIN_WAIT + Duration::from_millis(200)).await;
        assert_eq!(pool.idle_connections(&addr), 0);
        let _second = pool.send(&addr, get("/")).await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_is_not_used_again() {
        // One answer per connection, then the upstream closes it.
        let (addr, accepted) = upstream(1).await;
        let counters = Arc::new(ConnectionCounters::default());
        let pool = Pool::new(counters.clone());
        for _ in 0..3 {
            let response = pool.send(&addr, get("/")).await.unwrap();
            assert_eq!(body_of(response).await, "ok");
            // Let the connection task see the close.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
        assert_eq!(counters.opened.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn endpoints_without_idle_connections_are_forgotten() {
        let (addr, _) = upstream(usize::MAX).await;
        let pool = Pool::new(Arc::new(ConnectionCounters::default()));
        let response = pool.send(&addr, get("/")).await.unwrap();
        assert_eq!(body_of(response).await, "ok");
        // Endpoints that were tried and never connected (as after many reloads).
        let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = dead.local_addr().unwrap().port();
        drop(dead);
        for i in 0..PRUNE_AT + 10 {
            let _ = pool
                .shared
                .checkout(&format!("127.0.0.{}:{port}", 2 + i % 200));
            let _ = pool.shared.checkout(&format!("[::1]:{}", 1 + i));
        }
        assert!(pool.endpoints() < PRUNE_AT + 10, "{}", pool.endpoints());
        // The endpoint with an idle connection is kept, and its connection reused.
        assert_eq!(pool.idle_connections(&addr), 1);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let pool = Pool::new(Arc::new(ConnectionCounters::default()));
        match pool.send(&addr, get("/")).await {
            Err(SendError::Connect(e)) => {
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused)
            }
            Err(other) => panic!("expected a connect error, got {other:?}"),
            Ok(_) => panic!("expected a connect error, got a response"),
        }
    }
}
