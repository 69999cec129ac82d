//! Upstream HTTP/1.1 connections, kept alive and reused per endpoint, and the exchange of one
//! request and response on them (the protocol's bytes are `h1.rs`'s).
//!
//! One map from an endpoint's authority (`ip:port`) to its idle connections, shared by every
//! worker and kept across table reloads, so a reload does not cost a reconnect. A try takes
//! the most recently used idle connection (last in, first out keeps few connections warm), or
//! opens one. The exchange runs in the request's own task: the request goes out in one write
//! when its body is buffered, the response head is parsed from what one read brought, and the
//! body streams from the same buffer. The body hands the connection back when its last byte
//! has been read, or when it is dropped early with the rest already buffered (a 503 that a
//! retry replaces); otherwise the connection is closed (HTTP/1.1 cannot skip a body).
//!
//! An idle connection is checked before reuse: when the upstream has closed it, the event
//! loop has marked it readable, and a non-blocking read (no system call when it is not
//! marked) tells. A request that a reused connection could not deliver (closed before any
//! byte of a response) is sent again on another connection when its method is idempotent
//! and it was written whole from one buffer, as Go's client does; any other failure is the
//! try's.
//!
//! This replaces hyper's client connection, which cost a task, a channel and a second
//! parse of the head per request: about a fifth of the proxy's user-space instructions.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::pin::{Pin, pin};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Frame, SizeHint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::fields::RequestFields;
use crate::h1::{self, BodyFraming, Decoded, RequestFraming};
use crate::metrics::ConnectionCounters;
use crate::proxy::{Body, BodyError};

/// An idle connection older than this is closed rather than reused.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle connections kept per endpoint; more are closed when they come back.
pub const MAX_IDLE_PER_ENDPOINT: usize = 256;
/// Endpoints known to the pool before a new one makes it forget those with no idle
/// connection (endpoints come and go with table reloads).
const PRUNE_AT: usize = 1024;
/// How long opening a connection may take before the try fails as a connect failure.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Reads ask for at least this much room.
const READ_SIZE: usize = 8 * 1024;

/// Why a try got no response head.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be opened (refused, unreachable, timed out, name not resolved).
    Connect(io::Error),
    /// The connection failed or closed, or the upstream sent something other than an
    /// HTTP/1.1 response, before a whole response head came.
    Upstream(io::Error),
    /// The client's request body failed while it was being sent.
    Body(BodyError),
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
    /// Set by a sweep that found no idle connection, cleared when one comes back: an
    /// endpoint found so by two sweeps in a row is forgotten.
    unused: bool,
}

struct IdleConnection {
    connection: Box<Connection>,
    since: Instant,
}

/// One upstream connection, counted as active until dropped.
pub struct Connection {
    stream: TcpStream,
    /// Bytes read from the upstream and not used yet.
    read: BytesMut,
    counters: Arc<ConnectionCounters>,
}

impl Connection {
    fn new(stream: TcpStream, counters: Arc<ConnectionCounters>) -> Connection {
        counters.opened.fetch_add(1, Ordering::Relaxed);
        counters.active.fetch_add(1, Ordering::Relaxed);
        Connection {
            stream,
            read: BytesMut::with_capacity(READ_SIZE),
            counters,
        }
    }

    /// Whether an idle connection can still be used: the upstream has neither closed it nor
    /// sent anything unasked. No system call unless the event loop saw it become readable.
    fn is_usable(&self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.try_read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Reads what the upstream sent next into the buffer; `Ok(0)` is its close.
    async fn read_more(&mut self) -> io::Result<usize> {
        read_into(&mut self.stream, &mut self.read).await
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.counters.active.fetch_sub(1, Ordering::Relaxed);
    }
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

    /// The endpoint's key and its freshest idle connection younger than the idle timeout,
    /// if any (not yet checked for use).
    fn checkout(&self, authority: &str) -> (Arc<str>, Option<Box<Connection>>) {
        let mut map = self.lock();
        let Some(endpoint) = map.get_mut(authority) else {
            if map.len() >= PRUNE_AT {
                map.retain(|_, endpoint| {
                    endpoint.idle.retain(|c| c.since.elapsed() < IDLE_TIMEOUT);
                    !endpoint.idle.is_empty()
                });
            }
            let key: Arc<str> = Arc::from(authority);
            let endpoint = Endpoint {
                key: key.clone(),
                idle: Vec::new(),
                unused: false,
            };
            map.insert(key.clone(), endpoint);
            return (key, None);
        };
        while let Some(idle) = endpoint.idle.pop() {
            if idle.since.elapsed() < IDLE_TIMEOUT {
                return (endpoint.key.clone(), Some(idle.connection));
            }
        }
        (endpoint.key.clone(), None)
    }

    fn give_back(&self, key: &str, connection: Box<Connection>) {
        let mut map = self.lock();
        let Some(endpoint) = map.get_mut(key) else {
            return;
        };
        endpoint.unused = false;
        // The oldest come first: those past the idle timeout go now (one clock read serves
        // for them and for the returning connection).
        let now = Instant::now();
        let expired = endpoint
            .idle
            .iter()
            .take_while(|c| now.duration_since(c.since) >= IDLE_TIMEOUT)
            .count();
        endpoint.idle.drain(..expired);
        if endpoint.idle.len() >= MAX_IDLE_PER_ENDPOINT {
            // The oldest goes: it is the likeliest to have been closed by the upstream.
            endpoint.idle.remove(0);
        }
        endpoint.idle.push(IdleConnection {
            connection,
            since: now,
        });
    }
}

/// A request ready to go upstream: its head encoded (`h1::encode_request_head`), with the
/// framing its body follows.
pub struct Outgoing<'a> {
    pub method: &'a Method,
    pub head: &'a [u8],
    pub framing: RequestFraming,
}

/// How one exchange failed.
enum Failure {
    /// Not a byte of a response came: on a reused connection, the upstream may have closed
    /// it before the request arrived.
    Unanswered(io::Error),
    Other(SendError),
}

/// Whether a request may be sent again after a connection failed with no answer: the
/// upstream may have acted on it (RFC 9110, 9.2.2).
fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// The next non-empty piece of a body (trailers are dropped: HTTP/1.1 upstreams are sent
/// none), or `None` at its end.
async fn next_data(body: &mut Body) -> Result<Option<Bytes>, SendError> {
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(SendError::Body)?;
        if let Ok(data) = frame.into_data()
            && !data.is_empty()
        {
            return Ok(Some(data));
        }
    }
    Ok(None)
}

/// How often idle connections are looked over: those the upstream closed (their sockets
/// would wait in CLOSE_WAIT) or past the idle timeout are closed, and endpoints that got no
/// connection back between two sweeps are forgotten, so that endpoints gone with a reload do
/// not keep connections or memory.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

impl Shared {
    fn sweep(&self) {
        let mut map = self.lock();
        map.retain(|_, endpoint| {
            endpoint
                .idle
                .retain(|c| c.since.elapsed() < IDLE_TIMEOUT && c.connection.is_usable());
            // An endpoint whose connections are all busy has none idle either, but it gets
            // one back before the next sweep.
            if !endpoint.idle.is_empty() {
                return true;
            }
            let keep = !endpoint.unused;
            endpoint.unused = true;
            keep
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
        let shared = Arc::new(Shared {
            idle: Mutex::new(IdleMap::default()),
            counters,
        });
        // The sweep ends with the pool (it holds only a weak reference).
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let pool = Arc::downgrade(&shared);
            runtime.spawn(async move {
                let mut every = tokio::time::interval(SWEEP_EVERY);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                every.tick().await;
                loop {
                    every.tick().await;
                    let Some(shared) = pool.upgrade() else { return };
                    shared.sweep();
                }
            });
        }
        Pool { shared }
    }

    /// Sends `request` (origin-form URI; `Host`, when it has none, is `authority`) to `authority` and returns the response
    /// head; the body returns the connection to the pool when it ends.
    pub async fn send(
        &self,
        authority: &str,
        request: Request<Body>,
    ) -> Result<Response<PooledBody>, SendError> {
        let (parts, body) = request.into_parts();
        let framing = RequestFraming::of(&body);
        let path = h1::origin_form(&parts.uri);
        let fields = RequestFields::from(parts.headers);
        let host = fields.get_str("host").unwrap_or(authority);
        let mut head = Vec::with_capacity(512);
        h1::encode_request_head(
            &mut head,
            &parts.method,
            path.as_str(),
            &fields,
            framing,
            host,
        );
        let outgoing = Outgoing {
            method: &parts.method,
            head: &head,
            framing,
        };
        self.send_head(authority, &outgoing, body).await
    }

    /// Sends a request whose head is already encoded (a retry sends the same bytes again) and
    /// returns the response head; `body` must be framed as `outgoing.framing` says.
    pub async fn send_head(
        &self,
        authority: &str,
        outgoing: &Outgoing<'_>,
        mut body: Body,
    ) -> Result<Response<PooledBody>, SendError> {
        let framing = outgoing.framing;
        // Bytes of a body of declared length still to come.
        let mut remaining = match framing {
            RequestFraming::Length(n) => Some(n),
            _ => None,
        };
        // The body's first piece goes out with the head: one write for a buffered body.
        let mut rest = None;
        let mut joined = Vec::new();
        let message: &[u8] = if framing == RequestFraming::Empty {
            outgoing.head
        } else {
            let first = next_data(&mut body).await?;
            joined.reserve(outgoing.head.len() + first.as_ref().map_or(0, Bytes::len) + 32);
            joined.extend_from_slice(outgoing.head);
            if let Some(data) = first {
                count_against(&mut remaining, data.len())?;
                h1::encode_data(&mut joined, &data, framing);
            }
            if body.is_end_stream() {
                count_end(remaining)?;
                h1::encode_end(&mut joined, framing);
            } else {
                rest = Some(body);
            }
            &joined
        };
        let method = outgoing.method;
        let resendable = rest.is_none() && idempotent(method);
        loop {
            let (key, idle) = self.shared.checkout(authority);
            let (mut connection, reused) = match idle {
                Some(connection) if connection.is_usable() => (connection, true),
                Some(_closed) => continue,
                None => (self.connect(authority).await?, false),
            };
            let sending = rest.take().map(|body| (body, remaining));
            match exchange(&mut connection, message, sending, framing, method).await {
                Ok(head) => return Ok(PooledBody::response(head, connection, &self.shared, key)),
                Err(Failure::Unanswered(error)) if reused && resendable => {
                    tracing::debug!(%error, authority, "a reused connection was closed; sending again");
                }
                Err(Failure::Unanswered(error)) => return Err(SendError::Upstream(error)),
                Err(Failure::Other(error)) => return Err(error),
            }
        }
    }

    async fn connect(&self, authority: &str) -> Result<Box<Connection>, SendError> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(authority))
            .await
            .map_err(|_| {
                SendError::Connect(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no connection within {} s", CONNECT_TIMEOUT.as_secs()),
                ))
            })?
            .map_err(SendError::Connect)?;
        let _ = stream.set_nodelay(true);
        Ok(Box::new(Connection::new(
            stream,
            self.shared.counters.clone(),
        )))
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

/// Writes the request (`message`, then the rest of a streamed body) and reads the response
/// head, skipping interim (1xx) responses. A streamed body is sent while the response is
/// watched for: an upstream may answer early (a 413, a 401) and stop reading, and then the
/// answer is the response, the rest of the body is not sent, and the connection is not
/// reused (its request was never finished).
async fn exchange(
    connection: &mut Connection,
    message: &[u8],
    rest: Option<(Body, Option<u64>)>,
    framing: RequestFraming,
    method: &Method,
) -> Result<h1::ResponseHead, Failure> {
    connection
        .stream
        .write_all(message)
        .await
        .map_err(Failure::Unanswered)?;
    let Some((body, remaining)) = rest else {
        return read_head(&mut connection.stream, &mut connection.read, method).await;
    };
    let (mut reader, mut writer) = connection.stream.split();
    let sending = send_rest(&mut writer, body, framing, remaining);
    let reading = read_head(&mut reader, &mut connection.read, method);
    tokio::pin!(sending, reading);
    tokio::select! {
        biased;
        head = &mut reading => {
            // Answered before the whole body went out.
            let mut head = head?;
            head.keep_alive = false;
            Ok(head)
        }
        sent = &mut sending => match sent {
            Ok(()) => reading.await,
            // The upstream stopped reading and closed: it may have answered first.
            Err(SendError::Upstream(error)) => match reading.await {
                Ok(mut head) => {
                    head.keep_alive = false;
                    Ok(head)
                }
                Err(_) => Err(Failure::Other(SendError::Upstream(error))),
            },
            Err(error) => Err(Failure::Other(error)),
        }
    }
}

/// Sends the rest of a streamed request body, framed. `remaining`: the bytes a body of
/// declared length still owes; what does not match is refused rather than sent (the upstream
/// would read extra bytes as the next request).
async fn send_rest(
    writer: &mut tokio::net::tcp::WriteHalf<'_>,
    mut body: Body,
    framing: RequestFraming,
    mut remaining: Option<u64>,
) -> Result<(), SendError> {
    let mut piece = Vec::new();
    while let Some(data) = next_data(&mut body).await? {
        count_against(&mut remaining, data.len())?;
        piece.clear();
        h1::encode_data(&mut piece, &data, framing);
        writer
            .write_all(&piece)
            .await
            .map_err(SendError::Upstream)?;
    }
    count_end(remaining)?;
    piece.clear();
    h1::encode_end(&mut piece, framing);
    if !piece.is_empty() {
        writer
            .write_all(&piece)
            .await
            .map_err(SendError::Upstream)?;
    }
    Ok(())
}

/// Counts a piece of a body of declared length against what it still owes.
fn count_against(remaining: &mut Option<u64>, len: usize) -> Result<(), SendError> {
    if let Some(left) = remaining {
        let len = len as u64;
        if len > *left {
            return Err(SendError::Body(
                "the request body is longer than its Content-Length".into(),
            ));
        }
        *left -= len;
    }
    Ok(())
}

/// At the end of a body of declared length: all of it must have come.
fn count_end(remaining: Option<u64>) -> Result<(), SendError> {
    if remaining.is_some_and(|left| left > 0) {
        return Err(SendError::Body(
            "the request body is shorter than its Content-Length".into(),
        ));
    }
    Ok(())
}

/// Reads what `reader` has next into `buf`, with room for at least a quarter of `READ_SIZE`;
/// `Ok(0)` is the upstream's close.
async fn read_into<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
) -> io::Result<usize> {
    if buf.capacity() - buf.len() < READ_SIZE / 4 {
        buf.reserve(READ_SIZE);
    }
    reader.read_buf(buf).await
}

/// Reads a response head from `reader` into `buf`, skipping interim (1xx) responses.
async fn read_head<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    method: &Method,
) -> Result<h1::ResponseHead, Failure> {
    let mut answered = !buf.is_empty();
    loop {
        if !buf.is_empty() {
            match h1::parse_response_head(buf, method) {
                Ok(Some(head))
                    if head.status.is_informational()
                        && head.status != http::StatusCode::SWITCHING_PROTOCOLS =>
                {
                    continue;
                }
                Ok(Some(head)) => return Ok(head),
                Ok(None) => {}
                Err(e) => return Err(Failure::Other(SendError::Upstream(e))),
            }
        }
        match read_into(reader, buf).await {
            Ok(0) if answered => {
                return Err(Failure::Other(SendError::Upstream(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the upstream closed the connection in the middle of the response head",
                ))));
            }
            Ok(0) => {
                return Err(Failure::Unanswered(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the upstream closed the connection without a response",
                )));
            }
            Ok(_) => answered = true,
            Err(e) if answered => return Err(Failure::Other(SendError::Upstream(e))),
            Err(e) => return Err(Failure::Unanswered(e)),
        }
    }
}

/// A response body read from its connection, which goes back to the pool once the body has
/// been read to its end.
pub struct PooledBody {
    connection: Option<Box<Connection>>,
    framing: BodyFraming,
    keep_alive: bool,
    home: Option<(Arc<Shared>, Arc<str>)>,
    /// The response's fields that were not parsed into its header map.
    fields: Option<h1::RawFields>,
}

impl PooledBody {
    fn response(
        head: h1::ResponseHead,
        connection: Box<Connection>,
        shared: &Arc<Shared>,
        key: Arc<str>,
    ) -> Response<PooledBody> {
        let mut body = PooledBody {
            connection: Some(connection),
            framing: head.framing,
            keep_alive: head.keep_alive,
            home: Some((shared.clone(), key)),
            fields: head.fields,
        };
        if body.framing.is_done() {
            body.finish();
        }
        let mut response = Response::new(body);
        *response.status_mut() = head.status;
        *response.version_mut() = head.version;
        *response.headers_mut() = head.headers;
        response
    }

    /// The response's fields that were not parsed into its header map, to be passed on with
    /// it (see `h1::RawFields`).
    pub fn take_fields(&mut self) -> Option<h1::RawFields> {
        self.fields.take()
    }

    /// The body has been read: the connection goes back when it can carry another request
    /// (nothing unasked-for follows the body).
    fn finish(&mut self) {
        self.framing = BodyFraming::Length(0);
        if let (Some(connection), Some((shared, key))) = (self.connection.take(), self.home.take())
            && self.keep_alive
            && connection.read.is_empty()
        {
            shared.give_back(&key, connection);
        }
    }

    fn fail(&mut self, error: io::Error) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.connection = None;
        Poll::Ready(Some(Err(Box::new(error))))
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // Dropped before its end (a response a retry replaces, a client gone): the rest is
        // skipped when it is all in the buffer already, and the connection closed otherwise.
        while let Some(connection) = self.connection.as_mut() {
            match self.framing.decode(&mut connection.read, false) {
                Ok(Decoded::Data(_)) => {}
                Ok(Decoded::End) => self.finish(),
                Ok(Decoded::NeedMore) | Err(_) => self.connection = None,
            }
        }
    }
}

impl hyper::body::Body for PooledBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        loop {
            let Some(connection) = this.connection.as_mut() else {
                return Poll::Ready(None);
            };
            match this.framing.decode(&mut connection.read, false) {
                Ok(Decoded::Data(data)) => {
                    // Learn now whether that was the end, so that the server can finish the
                    // response without another poll.
                    if let Ok(Decoded::End) = this.framing.decode(&mut connection.read, true) {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Decoded::End) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(Decoded::NeedMore) => {}
                Err(e) => return this.fail(e),
            }
            let read = ready!(pin!(connection.read_more()).poll(cx));
            match read {
                Ok(0) if this.framing == BodyFraming::UntilClose => {
                    // The close is this body's end; the connection cannot be reused.
                    this.framing = BodyFraming::Length(0);
                    this.connection = None;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    return this.fail(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the upstream closed the connection before the end of the body",
                    ));
                }
                Ok(_) => {}
                Err(e) => return this.fail(e),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.framing.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
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
            // Let the event loop see the close.
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

    /// An upstream that reads one request per connection (head, then `body_len` bytes of
    /// body, or a chunked body when `body_len` is `None`), hands its bytes to the test and
    /// answers `response`, then closes.
    async fn recording_upstream(
        response: &'static [u8],
        body_len: Option<usize>,
    ) -> (String, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (seen, requests) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = vec![0u8; 4096];
                    loop {
                        let complete = request
                            .windows(4)
                            .position(|w| w == b"\r\n\r\n")
                            .is_some_and(|end| match body_len {
                                Some(n) => request.len() >= end + 4 + n,
                                None => request.ends_with(b"0\r\n\r\n"),
                            });
                        if complete {
                            break;
                        }
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = seen.send(request);
                    let _ = socket.write_all(response).await;
                });
            }
        });
        (addr, requests)
    }

    #[tokio::test]
    async fn a_request_that_met_a_closed_connection_goes_out_again() {
        // The upstream closes each connection right after its answer; the next request may
        // find the close before or after the pool looks. Either way every GET gets through.
        let (addr, accepted) = upstream(1).await;
        let pool = Pool::new(Arc::new(ConnectionCounters::default()));
        for i in 0..20 {
            let response = pool.send(&addr, get("/")).await;
            let response = response.unwrap_or_else(|e| panic!("request {i}: {e:?}"));
            assert_eq!(body_of(response).await, "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 20);
    }

    #[tokio::test]
    async fn responses_of_every_framing_are_read_whole() {
        let cases: [(&[u8], &str, bool); 5] = [
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                "abcde",
                true,
            ),
            (b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nhi", "hi", false),
            // Read until the close: never reused.
            (b"HTTP/1.1 200 OK\r\n\r\nuntil the end", "until the end", false),
            // An interim response first.
            (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", "", true),
            (b"HTTP/1.0 200 OK\r\ncontent-length: 3\r\n\r\nold", "old", false),
        ];
        for (wire, expected, reusable) in cases {
            let (addr, _requests) = recording_upstream(wire, Some(0)).await;
            let pool = Pool::new(Arc::new(ConnectionCounters::default()));
            let response = pool.send(&addr, get("/")).await.unwrap();
            assert_eq!(body_of(response).await, expected);
            assert_eq!(
                pool.idle_connections(&addr),
                usize::from(reusable),
                "{}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[tokio::test]
    async fn a_broken_response_is_an_upstream_error() {
        for wire in [
            &b"SSH-2.0-OpenSSH_9.6\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nx",
        ] {
            let (addr, _requests) = recording_upstream(wire, Some(0)).await;
            let pool = Pool::new(Arc::new(ConnectionCounters::default()));
            match pool.send(&addr, get("/")).await {
                Err(SendError::Upstream(e)) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData)
                }
                Err(other) => panic!("expected an upstream error, got {other:?}"),
                Ok(_) => panic!("expected an upstream error, got a response"),
            }
        }
        // A body cut short is an error of the body, and the connection is not kept.
        let (addr, _requests) = recording_upstream(
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
            Some(0),
        )
        .await;
        let pool = Pool::new(Arc::new(ConnectionCounters::default()));
        let response = pool.send(&addr, get("/")).await.unwrap();
        assert!(response.into_body().collect().await.is_err());
        assert_eq!(pool.idle_connections(&addr), 0);
    }

    /// A request body for the tests: its pieces, then its end, or then nothing ever again
    /// (`stall`, a client that stops mid-upload); `declared` is the length it claims.
    struct TestBody {
        pieces: Vec<Bytes>,
        stall: bool,
        declared: Option<u64>,
    }

    impl TestBody {
        fn boxed(pieces: &[&'static str], stall: bool, declared: Option<u64>) -> Body {
            let pieces = pieces
                .iter()
                .map(|p| Bytes::from_static(p.as_bytes()))
                .collect();
            BodyExt::boxed(TestBody {
                pieces,
                stall,
                declared,
            })
        }
    }

    impl hyper::body::Body for TestBody {
        type Data = Bytes;
        type Error = BodyError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
            if !self.pieces.is_empty() {
                Poll::Ready(Some(Ok(Frame::data(self.pieces.remove(0)))))
            } else if self.stall {
                Poll::Pending
            } else {
                Poll::Ready(None)
            }
        }

        fn size_hint(&self) -> SizeHint {
            self.declared
                .map_or_else(SizeHint::default, SizeHint::with_exact)
        }
    }

    #[tokio::test]
    async fn request_bodies_go_out_with_their_framing() {
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        let (addr, mut requests) = recording_upstream(answer, None).await;
        let pool = Pool::new(Arc::new(ConnectionCounters::default()));
        let mut request = get("/upload");
        *request.method_mut() = Method::POST;
        *request.body_mut() = TestBody::boxed(&["hello, ", "world"], false, None);
        let response = pool.send(&addr, request).await.unwrap();
        assert_eq!(body_of(response).await, "ok");
        let seen = String::from_utf8(requests.recv().await.unwrap()).unwrap();
        assert!(seen.starts_with("POST /upload HTTP/1.1\r\n"), "{seen}");
        assert!(
            seen.ends_with(
                "transfer-encoding: chunked\r\n\r\n7\r\nhello, \r\n5\r\nworld\r\n0\r\n\r\n"
            ),
            "{seen}"
        );

        let (addr, mut requests) = recording_upstream(answer, Some(5)).await;
        let mut request = get("/");
        *request.method_mut() = Method::PUT;
        *request.body_mut() = crate::proxy::full(Bytes::from("12345"));
        let response = pool.send(&addr, request).await.unwrap();
        assert_eq!(body_of(response).await, "ok");
        let seen = String::from_utf8(requests.recv().await.unwrap()).unwrap();
        assert!(seen.ends_with("content-length: 5\r\n\r\n12345"), "{seen}");
    }

    #[tokio::test]
    async fn an_early_answer_ends_the_upload_and_the_connection() {
        // The upstream refuses the upload as soon as it has the head.
        let (addr, accepted) = upstream_answering(
            usize::MAX,
            b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n",
        )
        .await;
        let pool = Pool::new(Arc::new(ConnectionCounters::default()));
        let mut request = get("/upload");
        *request.method_mut() = Method::POST;
        *request.body_mut() = TestBody::boxed(&["abc"], true, None);
        let response = tokio::time::timeout(Duration::from_secs(5), pool.send(&addr, request))
            .await
            .expect("the answer came while the body was still being sent")
            .unwrap();
        assert_eq!(response.status(), http::StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body_of(response).await, "");
        // Half a request went out on that connection: it is not used again.
        assert_eq!(pool.idle_connections(&addr), 0);
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_body_that_breaks_its_length_is_not_sent() {
        let (addr, accepted) = upstream(usize::MAX).await;
        let pool = Pool::new(Arc::new(ConnectionCounters::default()));
        let send = |declared: u64, actual: &'static str| {
            let mut request = get("/");
            *request.method_mut() = Method::PUT;
            *request.body_mut() = TestBody::boxed(&[actual], false, Some(declared));
            pool.send(&addr, request)
        };
        let expect_body_error = |result: Result<Response<PooledBody>, SendError>| match result {
            Err(SendError::Body(e)) => assert!(e.to_string().contains("Content-Length"), "{e}"),
            Err(other) => panic!("expected a body error, got {other:?}"),
            Ok(_) => panic!("expected a body error, got a response"),
        };
        // Longer than declared: refused before anything goes out.
        expect_body_error(send(3, "too long").await);
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
        // Shorter: found at its end, and the connection that carried half of it is closed.
        expect_body_error(send(10, "short").await);
        assert_eq!(pool.idle_connections(&addr), 0);
    }

    #[tokio::test]
    async fn the_sweep_closes_connections_the_upstream_closed() {
        // One answer per connection, then the upstream closes it (without saying so).
        let (addr, _) =
            upstream_answering(1, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
        let counters = Arc::new(ConnectionCounters::default());
        let pool = Pool::new(counters.clone());
        let response = pool.send(&addr, get("/")).await.unwrap();
        assert_eq!(body_of(response).await, "ok");
        assert_eq!(pool.idle_connections(&addr), 1);
        tokio::time::sleep(Duration::from_millis(50)).await;
        pool.shared.sweep();
        assert_eq!(pool.idle_connections(&addr), 0);
        assert_eq!(counters.active.load(Ordering::SeqCst), 0);
        // The endpoint is kept through one sweep without connections, forgotten at the next.
        assert_eq!(pool.endpoints(), 1);
        pool.shared.sweep();
        assert_eq!(pool.endpoints(), 0);
    }
}
