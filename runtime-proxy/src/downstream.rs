//! The server side of HTTP/1.1 for downstream connections. One task per connection reads a
//! request head (`h1::parse_request_head`), runs the service, writes the response, and goes
//! on to the next request on the connection (keep-alive and pipelining). HTTP/2 (h2c) is
//! hyper's; `listener.rs` tells the two apart by the connection's first bytes.
//!
//! Request bodies: one already in the read buffer (a short POST arrives with its head) goes to
//! the service whole, without a copy. A longer one streams: this task reads it and passes it
//! on through a channel while the service runs. A response that is ready before the request
//! body has been read to its end closes the connection after it, since the rest of the body
//! would have to be read to find the next request.
//!
//! What hyper's server did and this keeps: 400 for a malformed head and 431 for one over the
//! limits, each on a closing connection; `100 Continue` for a client that waits for it; the
//! service's future dropped (the request cancelled) when the client closes the connection
//! while it waits; `Date` on every response; `connection: close` when the connection will
//! close, and a body of unknown length chunked (HTTP/1.1) or ended by the close (HTTP/1.0).

use std::cell::RefCell;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, StatusCode, Uri, Version};
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::sync::mpsc;

use crate::fields::RequestFields;
use crate::h1::{
    self, BadRequest, BodyFraming, ConnectionField, Decoded, RequestHead, ResponseFraming,
};
use crate::listener::Limits;
use crate::proxy::{BodyError, Reply};

/// The read buffer grows by this much when it runs low.
const READ_CHUNK: usize = 8 * 1024;
/// A response's bytes are written once this many have been encoded.
const WRITE_AT: usize = 64 * 1024;

/// What the listener's idle watch and shutdown know about one connection.
#[derive(Default)]
pub struct Activity {
    /// Set by every read or write that moved bytes; cleared by the idle watch.
    pub moved: AtomicBool,
    /// Set once the connection delivered a request.
    pub requested: AtomicBool,
    /// Request heads read so far (HTTP/1).
    pub heads: AtomicU32,
    /// Part of a request head has arrived, not all of it (HTTP/1).
    pub in_head: AtomicBool,
    /// Between a request head and the end of its response (HTTP/1).
    pub busy: AtomicBool,
    /// The connection closes after the response in flight (shutdown, or the idle watch).
    pub closing: AtomicBool,
}

/// A request as the service gets it, from an HTTP/1.1 head or from hyper (HTTP/2).
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub fields: RequestFields,
    pub body: RequestBody,
}

impl From<http::Request<RequestBody>> for Request {
    fn from(request: http::Request<RequestBody>) -> Request {
        let (parts, body) = request.into_parts();
        Request {
            method: parts.method,
            uri: parts.uri,
            version: parts.version,
            fields: parts.headers.into(),
            body,
        }
    }
}

/// A request body, as the service reads it.
pub enum RequestBody {
    /// The whole body (taken by the first poll), or none.
    Full(Option<Bytes>),
    /// Read by the connection's task; `remaining` is what is still to come when the length
    /// is known.
    Streamed {
        rx: mpsc::Receiver<Result<Bytes, BodyError>>,
        remaining: Option<u64>,
        ended: bool,
    },
    /// An HTTP/2 request's body, read by hyper.
    Hyper(Incoming),
}

impl hyper::body::Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            RequestBody::Full(bytes) => Poll::Ready(
                bytes
                    .take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
            RequestBody::Streamed {
                rx,
                remaining,
                ended,
            } => {
                if *ended {
                    return Poll::Ready(None);
                }
                match ready!(rx.poll_recv(cx)) {
                    Some(Ok(data)) => {
                        if let Some(rest) = remaining {
                            *rest = rest.saturating_sub(data.len() as u64);
                        }
                        Poll::Ready(Some(Ok(Frame::data(data))))
                    }
                    Some(Err(error)) => {
                        *ended = true;
                        Poll::Ready(Some(Err(error)))
                    }
                    None => {
                        *ended = true;
                        Poll::Ready(None)
                    }
                }
            }
            RequestBody::Hyper(body) => Pin::new(body).poll_frame(cx).map_err(BodyError::from),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Full(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
            RequestBody::Streamed {
                remaining, ended, ..
            } => *ended || *remaining == Some(0),
            RequestBody::Hyper(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            RequestBody::Streamed {
                remaining: Some(n),
                ended: false,
                ..
            } => SizeHint::with_exact(*n),
            RequestBody::Streamed { ended: true, .. } => SizeHint::with_exact(0),
            RequestBody::Streamed { .. } => SizeHint::default(),
            RequestBody::Hyper(body) => body.size_hint(),
        }
    }
}

/// Serves HTTP/1.1 requests on `stream` until the client closes it, a response says close,
/// or the connection is refused. `buf` holds what has been read already.
pub async fn serve<F, Fut>(
    mut stream: TcpStream,
    mut buf: BytesMut,
    peer: SocketAddr,
    service: &F,
    limits: &Limits,
    activity: &Activity,
) where
    F: Fn(Request, SocketAddr) -> Fut,
    Fut: Future<Output = Result<Reply, Infallible>>,
{
    let (mut rd, mut wr) = stream.split();
    let mut out = Vec::with_capacity(1024);
    let mut heads: u32 = 0;
    loop {
        // The head, from what is buffered and then from the socket.
        let head = loop {
            if !buf.is_empty() {
                match h1::parse_request_head(&mut buf, limits.max_header_bytes, limits.max_headers)
                {
                    Ok(Some(head)) => break head,
                    Ok(None) => activity.in_head.store(true, Ordering::Relaxed),
                    Err(refused) => {
                        refuse(&mut wr, &mut out, &refused, activity).await;
                        return;
                    }
                }
            }
            if !read_more(&mut rd, &mut buf, activity).await {
                return;
            }
        };
        if head.method == Method::CONNECT {
            // A tunnel is not a request to route; the bytes after it are not HTTP.
            let refused = BadRequest {
                status: 501,
                reason: "CONNECT is not supported",
            };
            refuse(&mut wr, &mut out, &refused, activity).await;
            return;
        }
        heads = heads.wrapping_add(1);
        activity.heads.store(heads, Ordering::Relaxed);
        activity.in_head.store(false, Ordering::Relaxed);
        activity.requested.store(true, Ordering::Relaxed);
        activity.busy.store(true, Ordering::Relaxed);

        let RequestHead {
            method,
            uri,
            version,
            fields,
            framing,
            keep_alive,
            expect_continue,
        } = head;
        let is_head = method == Method::HEAD;
        let http10 = version == Version::HTTP_10;
        let (body, feeder) = match framing {
            BodyFraming::Length(0) => (RequestBody::Full(None), None),
            BodyFraming::Length(n) if buf.len() as u64 >= n => {
                let whole = buf.split_to(n as usize).freeze();
                (RequestBody::Full(Some(whole)), None)
            }
            framing => {
                let (tx, rx) = mpsc::channel(1);
                let body = RequestBody::Streamed {
                    rx,
                    remaining: framing.remaining(),
                    ended: false,
                };
                (body, Some((framing, tx)))
            }
        };
        if feeder.is_some()
            && expect_continue
            && write(&mut wr, b"HTTP/1.1 100 Continue\r\n\r\n", activity)
                .await
                .is_err()
        {
            return;
        }
        let request = Request {
            method,
            uri,
            version,
            fields,
            body,
        };

        // The service's future is large (the whole request path); on the heap it costs a
        // connection memory only while a request is in flight, as hyper's server does. It is
        // written into an uninitialised box: `Box::pin(future)` built it on the stack first
        // and copied all 4.3 KB, where only the arguments (about 330 bytes) hold anything
        // before the first poll (BENCHMARKS.md, "the service future's box").
        let mut main = Box::into_pin(Box::write(Box::new_uninit(), service(request, peer)));
        let (written, body_read) = match feeder {
            Some((framing, tx)) => {
                let mut feeder = pin!(feed(&mut rd, &mut buf, framing, tx, activity));
                let mut fed = None;
                let Ok(response) = alongside(main, feeder.as_mut(), &mut fed).await;
                // A body still being read at this point closes the connection after the
                // response, and the response says so.
                let keep_alive =
                    keep_alive && fed == Some(true) && !activity.closing.load(Ordering::Relaxed);
                let written = alongside(
                    write_response(
                        &mut wr, &mut out, response, is_head, http10, keep_alive, activity,
                    ),
                    feeder.as_mut(),
                    &mut fed,
                )
                .await;
                (written, fed == Some(true))
            }
            None => {
                // No body to read: watch for the client closing while the service runs.
                let response = until_closed(main.as_mut(), &mut rd, &mut buf, activity).await;
                let Some(Ok(response)) = response else {
                    return;
                };
                let keep_alive = keep_alive && !activity.closing.load(Ordering::Relaxed);
                let written = write_response(
                    &mut wr, &mut out, response, is_head, http10, keep_alive, activity,
                )
                .await;
                (written, true)
            }
        };
        activity.busy.store(false, Ordering::Relaxed);
        if out.capacity() > 2 * WRITE_AT {
            // A long body's frames made it grow; an idle connection keeps a small one.
            out = Vec::with_capacity(1024);
        }
        match written {
            Ok(true) if body_read && !activity.closing.load(Ordering::Relaxed) => {}
            Ok(_) => {
                let _ = wr.shutdown().await;
                return;
            }
            Err(error) => {
                tracing::debug!(%error, "downstream response not written");
                return;
            }
        }
    }
}

/// Reads more into `buf`; false when the client closed the connection or it failed.
async fn read_more(rd: &mut ReadHalf<'_>, buf: &mut BytesMut, activity: &Activity) -> bool {
    if buf.capacity() - buf.len() < READ_CHUNK / 2 {
        buf.reserve(READ_CHUNK);
    }
    match rd.read_buf(buf).await {
        Ok(0) | Err(_) => false,
        Ok(_) => {
            activity.moved.store(true, Ordering::Relaxed);
            true
        }
    }
}

async fn write(wr: &mut WriteHalf<'_>, bytes: &[u8], activity: &Activity) -> io::Result<()> {
    wr.write_all(bytes).await?;
    activity.moved.store(true, Ordering::Relaxed);
    Ok(())
}

/// Answers a head that cannot be served, then closes the connection.
async fn refuse(
    wr: &mut WriteHalf<'_>,
    out: &mut Vec<u8>,
    refused: &BadRequest,
    activity: &Activity,
) {
    let status = StatusCode::from_u16(refused.status).unwrap_or(StatusCode::BAD_REQUEST);
    let text = format!("downstream error: {}\n", refused.reason);
    out.clear();
    with_date(|date| {
        h1::encode_response_head(
            out,
            status,
            &HeaderMap::new(),
            None,
            ResponseFraming::Length(text.len() as u64),
            ConnectionField::Close,
            date,
        );
    });
    out.extend_from_slice(text.as_bytes());
    if write(wr, out, activity).await.is_ok() {
        let _ = wr.shutdown().await;
    }
}

/// Runs `main` while the request body is read and passed on (once `feeder` is done, its
/// result is in `fed`).
async fn alongside<T>(
    main: impl Future<Output = T>,
    mut feeder: Pin<&mut impl Future<Output = bool>>,
    fed: &mut Option<bool>,
) -> T {
    let mut main = pin!(main);
    std::future::poll_fn(|cx| {
        if fed.is_none()
            && let Poll::Ready(done) = feeder.as_mut().poll(cx)
        {
            *fed = Some(done);
        }
        main.as_mut().poll(cx)
    })
    .await
}

/// Runs `main` unless the client closes the connection first (then `None`: the request is
/// cancelled, as hyper's server does unless half-close is allowed). Bytes of a pipelined
/// request that arrive meanwhile are kept in `buf`, up to one read.
async fn until_closed<T>(
    mut main: Pin<&mut impl Future<Output = T>>,
    rd: &mut ReadHalf<'_>,
    buf: &mut BytesMut,
    activity: &Activity,
) -> Option<T> {
    // The first poll usually finishes a local response, or starts an upstream exchange.
    if let Poll::Ready(output) =
        std::future::poll_fn(|cx| Poll::Ready(main.as_mut().poll(cx))).await
    {
        return Some(output);
    }
    if !buf.is_empty() {
        return Some(main.await);
    }
    let mut closed = pin!(async {
        if read_more(rd, buf, activity).await {
            // A pipelined request: stop watching, keep it for later.
            std::future::pending::<()>().await;
        }
    });
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = main.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        closed.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// Reads the rest of a request body from the connection and passes it to the service.
/// Returns whether the body was read to its end (so the next request can follow).
async fn feed(
    rd: &mut ReadHalf<'_>,
    buf: &mut BytesMut,
    mut framing: BodyFraming,
    tx: mpsc::Sender<Result<Bytes, BodyError>>,
    activity: &Activity,
) -> bool {
    loop {
        match framing.decode(buf, false) {
            Ok(Decoded::Data(data)) => {
                if tx.send(Ok(data)).await.is_err() {
                    return false;
                }
            }
            Ok(Decoded::End) => return true,
            Ok(Decoded::NeedMore) => {
                if !read_more(rd, buf, activity).await {
                    let error = "the client closed the connection before the end of the body";
                    let _ = tx.send(Err(error.into())).await;
                    return false;
                }
            }
            Err(error) => {
                let _ = tx.send(Err(error.into())).await;
                return false;
            }
        }
    }
}

/// Writes a response: its head and the body's frames, gathered into as few writes as the
/// body's readiness allows. Returns whether the connection may carry another request.
async fn write_response(
    wr: &mut WriteHalf<'_>,
    out: &mut Vec<u8>,
    reply: Reply,
    is_head: bool,
    http10: bool,
    mut keep_alive: bool,
    activity: &Activity,
) -> io::Result<bool> {
    let Reply { response, fields } = reply;
    let (parts, mut body) = response.into_parts();
    let status = parts.status;
    let framing = if is_head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        ResponseFraming::Bodiless
    } else if let Some(n) = body.size_hint().exact() {
        ResponseFraming::Length(n)
    } else if http10 {
        keep_alive = false;
        ResponseFraming::UntilClose
    } else {
        ResponseFraming::Chunked
    };
    out.clear();
    with_date(|date| {
        h1::encode_response_head(
            out,
            status,
            &parts.headers,
            fields.as_ref(),
            framing,
            ConnectionField::of(keep_alive, http10),
            date,
        );
    });
    drop(parts);
    drop(fields);
    if framing == ResponseFraming::Bodiless {
        write(wr, out, activity).await?;
        return Ok(keep_alive);
    }
    let mut sent: u64 = 0;
    while !body.is_end_stream() {
        // What is ready now joins the bytes not yet written; they go out before a wait.
        let frame = match std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx)))
            .await
        {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                if !out.is_empty() {
                    write(wr, out, activity).await?;
                    out.clear();
                }
                std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            }
        };
        let data = match frame {
            None => break,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                // Trailers are not sent on HTTP/1.
                Err(_) => continue,
            },
            Some(Err(error)) => {
                // What the client has is all it gets; the close tells it the body broke.
                let _ = write(wr, out, activity).await;
                return Err(io::Error::other(error));
            }
        };
        sent += data.len() as u64;
        if let ResponseFraming::Length(n) = framing
            && sent > n
        {
            return Err(io::Error::other(
                "the response body is longer than its length",
            ));
        }
        h1::encode_response_data(out, &data, framing);
        if out.len() >= WRITE_AT {
            write(wr, out, activity).await?;
            out.clear();
        }
    }
    if let ResponseFraming::Length(n) = framing
        && sent != n
    {
        let _ = write(wr, out, activity).await;
        return Err(io::Error::other(
            "the response body is shorter than its length",
        ));
    }
    if framing == ResponseFraming::Chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    if !out.is_empty() {
        write(wr, out, activity).await?;
    }
    Ok(keep_alive && framing != ResponseFraming::UntilClose)
}

thread_local! {
    /// The `Date` value for the current second, formatted once per second per thread.
    static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

fn with_date<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != now {
            *cached = (now, imf_fixdate(now));
        }
        f(&cached.1)
    })
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 §5.6.7) for seconds since the Unix epoch.
fn imf_fixdate(secs: u64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let (year, month, day) = crate::accesslog::civil_from_days(days);
    let in_day = secs % 86_400;
    let two = |n: u64| [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8];
    let mut out = [0u8; 29];
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    out[3..5].copy_from_slice(b", ");
    out[5..7].copy_from_slice(&two(u64::from(day)));
    out[7] = b' ';
    out[8..11].copy_from_slice(MONTHS[(month as usize).clamp(1, 12) - 1]);
    out[11] = b' ';
    out[12..14].copy_from_slice(&two(year / 100));
    out[14..16].copy_from_slice(&two(year));
    out[16] = b' ';
    out[17..19].copy_from_slice(&two(in_day / 3600));
    out[19] = b':';
    out[20..22].copy_from_slice(&two(in_day / 60 % 60));
    out[22] = b':';
    out[23..25].copy_from_slice(&two(in_day % 60));
    out[25..].copy_from_slice(b" GMT");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_imf_fixdate() {
        assert_eq!(&imf_fixdate(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&imf_fixdate(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            &imf_fixdate(1_795_737_599),
            b"Thu, 26 Nov 2026 23:59:59 GMT"
        );
        assert_eq!(&imf_fixdate(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
    }
}
