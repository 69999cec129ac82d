//! The listener phase: accept downstream connections within the limits in [`Limits`], serve
//! each one on its own task, and drain them on shutdown. A connection that opens with the
//! HTTP/2 preface is h2c and hyper serves it; any other is HTTP/1, served by `downstream.rs`.
//!
//! What bounds a connection:
//! - at most `max_connections` are served at once; the accept loop waits for a free slot, so
//!   further clients wait in the kernel's accept queue instead of costing memory here;
//! - a connection must deliver its first request within `header_read_timeout` (this covers
//!   slow HTTP/2 prefaces and clients that connect and say nothing), and an HTTP/1 request
//!   head, once begun, must be finished within it;
//! - after that, a connection on which no byte moves either way for `idle_timeout` is closed;
//! - request heads over `max_header_bytes` or `max_headers` get 431; HTTP/2 advertises the
//!   same header list size and answers 431 too, caps concurrent streams, and sends GOAWAY
//!   when a client resets more than `h2_max_pending_accept_reset_streams` streams before they
//!   are served (the "rapid reset" attack).
//!
//! A panic inside one connection's task (there should be none) ends that connection only:
//! tokio catches it at the task boundary, and the release profile keeps `panic = "unwind"`.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot, watch};

use crate::downstream::{self, Activity, RequestBody};
use crate::proxy::Reply;

/// Limits on downstream connections; see the module documentation for what each one bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once (per listener); more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Time allowed for the first request, and for every HTTP/1 request head.
    pub header_read_timeout: Duration,
    /// A connection with no byte moving either way for this long is closed.
    pub idle_timeout: Duration,
    /// Largest request head (request line and headers), in bytes; larger ones get 431.
    pub max_header_bytes: usize,
    /// Most header fields in an HTTP/1 request head; more get 431.
    pub max_headers: usize,
    /// Concurrent streams per HTTP/2 connection.
    pub h2_max_concurrent_streams: u32,
    /// Streams a client may reset before they are served; past that, the connection gets
    /// GOAWAY.
    pub h2_max_pending_accept_reset_streams: usize,
}

impl Default for Limits {
    /// 32,768 connections, 30 s header timeout (hyper's default), 300 s idle (Envoy's stream
    /// idle timeout), 64 KiB and 100 headers (about Envoy's 60 KiB and 100), 100 streams,
    /// 20 early resets (the h2 crate's default).
    fn default() -> Limits {
        Limits {
            max_connections: 32_768,
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            h2_max_concurrent_streams: 100,
            h2_max_pending_accept_reset_streams: 20,
        }
    }
}

impl Limits {
    /// The command-line flags that set limits, for the binary's usage text.
    pub const FLAGS: &'static str = "[--max-connections N] [--header-read-timeout-ms MS] \
[--idle-timeout-ms MS] [--max-header-bytes N] [--max-headers N] [--h2-max-streams N] \
[--h2-max-early-resets N]";

    /// Whether `flag` is one of [`Limits::FLAGS`].
    pub fn is_flag(flag: &str) -> bool {
        matches!(
            flag,
            "--max-connections"
                | "--header-read-timeout-ms"
                | "--idle-timeout-ms"
                | "--max-header-bytes"
                | "--max-headers"
                | "--h2-max-streams"
                | "--h2-max-early-resets"
        )
    }

    /// Sets the limit that a command-line flag names to a positive number.
    pub fn set_flag(&mut self, flag: &str, value: &str) -> Result<(), String> {
        let n = value
            .parse::<u64>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{flag} needs a positive number, not `{value}`"))?;
        let as_usize = usize::try_from(n).unwrap_or(usize::MAX);
        match flag {
            "--max-connections" => self.max_connections = as_usize,
            "--header-read-timeout-ms" => self.header_read_timeout = Duration::from_millis(n),
            "--idle-timeout-ms" => self.idle_timeout = Duration::from_millis(n),
            "--max-header-bytes" => self.max_header_bytes = as_usize,
            "--max-headers" => self.max_headers = as_usize,
            "--h2-max-streams" => {
                self.h2_max_concurrent_streams = u32::try_from(n).unwrap_or(u32::MAX)
            }
            "--h2-max-early-resets" => self.h2_max_pending_accept_reset_streams = as_usize,
            _ => return Err(format!("`{flag}` is not a limit")),
        }
        Ok(())
    }

    /// The HTTP/2 server builder for these limits.
    fn http2(&self) -> http2::Builder<TokioExecutor> {
        let mut builder = http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .max_concurrent_streams(self.h2_max_concurrent_streams)
            .max_pending_accept_reset_streams(self.h2_max_pending_accept_reset_streams)
            .max_header_list_size(u32::try_from(self.max_header_bytes).unwrap_or(u32::MAX));
        builder
    }
}

/// Raises the soft limit on open files to the hard limit, so that `max_connections` (plus the
/// upstream connections) fit; the soft limit is often 1,024. Warns when even the hard limit is
/// too low for `max_connections`. Returns the soft limit in force.
pub fn raise_open_file_limit(limits: &Limits) -> Option<u64> {
    let soft = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(error) => {
            tracing::warn!(%error, "cannot raise the open file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    };
    // One descriptor per downstream connection, and room for upstream connections.
    let wanted = u64::try_from(limits.max_connections)
        .unwrap_or(u64::MAX)
        .saturating_add(1024);
    if let Some(soft) = soft.filter(|&soft| soft < wanted) {
        tracing::warn!(
            open_file_limit = soft,
            max_connections = limits.max_connections,
            "the open file limit is below what --max-connections needs; accepts will fail first"
        );
    }
    soft
}

/// Accepts connections until shutdown, then stops accepting and gives the connections in
/// flight up to `grace` to finish.
pub async fn serve_listener<F, Fut>(
    listener: TcpListener,
    service: F,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
    limits: Limits,
) where
    F: Fn(downstream::Request, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Reply, Infallible>> + Send + 'static,
{
    let h2 = limits.http2();
    let max_connections = limits
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        // A slot first: at the limit, the accept queue holds new clients.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = stopping(&mut shutdown) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(%error, "downstream accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopping(&mut shutdown) => break,
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let mut shutdown = shutdown.clone();
        let limits = limits.clone();
        let h2 = h2.clone();
        tokio::spawn(async move {
            let activity = Arc::new(Activity::default());
            // The idle watch and the shutdown signal wait in a task of their own and ring
            // once, so every wake-up of the connection (two per proxied request) polls one
            // flag rather than a timer and a watch channel as well.
            let (ring, mut rung) = oneshot::channel::<()>();
            let watcher = {
                let activity = activity.clone();
                let limits = limits.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = idle(&activity, &limits) => {
                            tracing::debug!(%peer, "closing an idle or slow downstream connection");
                        }
                        () = stopping(&mut shutdown) => {}
                    }
                    let _ = ring.send(());
                })
            };
            let connection = Connection {
                peer,
                limits: &limits,
                activity: &activity,
                grace,
            };
            // Counted: each poll of a connection is work to the busy poller (`busy_poll.rs`).
            crate::busy_poll::counted(connection.serve(stream, service, &h2, &mut rung)).await;
            watcher.abort();
            drop(slot);
        });
    }
    drop(listener);
    // Every connection task holds a slot until it ends: all slots back means all drained.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(grace + Duration::from_millis(100), slots.acquire_many(all));
    if drained.await.is_err() {
        tracing::warn!("grace period over with requests still in flight");
    }
}

/// The HTTP/2 connection preface (RFC 9113 §3.4): a client that starts with it speaks h2c.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The first read's buffer; the HTTP/1 server grows it as it needs.
const FIRST_READ: usize = 8 * 1024;

/// One downstream connection's task.
struct Connection<'a> {
    peer: SocketAddr,
    limits: &'a Limits,
    activity: &'a Arc<Activity>,
    grace: Duration,
}

impl Connection<'_> {
    /// Tells HTTP/2 from HTTP/1 by the first bytes, serves the connection, and on the ring
    /// (idle or shutdown) closes it: at once when no request is in flight, otherwise after
    /// the response in flight (HTTP/1) or with GOAWAY (HTTP/2), within the grace period.
    async fn serve<F, Fut>(
        self,
        mut stream: TcpStream,
        service: F,
        h2: &http2::Builder<TokioExecutor>,
        rung: &mut oneshot::Receiver<()>,
    ) where
        F: Fn(downstream::Request, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Reply, Infallible>> + Send + 'static,
    {
        let Connection {
            peer,
            limits,
            activity,
            grace,
        } = self;
        // The read buffer is made once the client has sent something: a connection that
        // waits costs no buffer.
        tokio::select! {
            biased;
            _ = &mut *rung => return,
            ready = stream.readable() => if ready.is_err() {
                return;
            },
        }
        let mut buf = BytesMut::with_capacity(FIRST_READ);
        let is_h2 = loop {
            let n = buf.len().min(H2_PREFACE.len());
            if buf[..n] != H2_PREFACE[..n] {
                break false;
            }
            if n == H2_PREFACE.len() {
                break true;
            }
            tokio::select! {
                biased;
                _ = &mut *rung => return,
                read = stream.read_buf(&mut buf) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(_) => activity.moved.store(true, Ordering::Relaxed),
                },
            }
        };
        if !is_h2 {
            let mut http1 = pin!(downstream::serve(
                stream, buf, peer, &service, limits, activity
            ));
            tokio::select! {
                biased;
                () = http1.as_mut() => return,
                _ = &mut *rung => {}
            }
            if !activity.busy.load(Ordering::Relaxed) {
                return;
            }
            activity.closing.store(true, Ordering::Relaxed);
            if tokio::time::timeout(grace, http1).await.is_err() {
                tracing::debug!(%peer, "downstream connection cut at the end of the grace period");
            }
            return;
        }
        let io = TokioIo::new(Watched {
            prefix: buf,
            stream,
            activity: activity.clone(),
        });
        let seen = activity.clone();
        let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
            seen.requested.store(true, Ordering::Relaxed);
            let reply = service(req.map(RequestBody::Hyper).into(), peer);
            async move { reply.await.map(Reply::into_response) }
        });
        let mut http2 = pin!(h2.serve_connection(io, svc));
        tokio::select! {
            biased;
            result = http2.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "downstream connection ended with an error");
                }
                return;
            }
            _ = &mut *rung => {}
        }
        http2.as_mut().graceful_shutdown();
        if tokio::time::timeout(grace, http2).await.is_err() {
            tracing::debug!(%peer, "downstream connection cut at the end of the grace period");
        }
    }
}

/// Returns once shutdown starts (or the proxy's handle is gone).
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|&stop| stop).await;
}

/// Returns when the connection should be closed: no request within the header timeout, an
/// HTTP/1 request head begun and not finished within it, or no byte moving for the idle
/// timeout. Checks a few times per period, so it costs one timer per connection, not one per
/// read or per request.
async fn idle(activity: &Activity, limits: &Limits) {
    tokio::time::sleep(limits.header_read_timeout).await;
    if !activity.requested.load(Ordering::Relaxed) {
        return;
    }
    let tick =
        (limits.idle_timeout.min(limits.header_read_timeout) / 4).max(Duration::from_millis(10));
    let mut quiet = Duration::ZERO;
    let mut in_head_for = Duration::ZERO;
    let mut heads = activity.heads.load(Ordering::Relaxed);
    activity.moved.store(false, Ordering::Relaxed);
    loop {
        tokio::time::sleep(tick).await;
        if activity.moved.swap(false, Ordering::Relaxed) {
            quiet = Duration::ZERO;
        } else {
            quiet += tick;
            if quiet >= limits.idle_timeout {
                return;
            }
        }
        let heads_now = activity.heads.load(Ordering::Relaxed);
        if activity.in_head.load(Ordering::Relaxed) && heads_now == heads {
            in_head_for += tick;
            if in_head_for >= limits.header_read_timeout {
                return;
            }
        } else {
            in_head_for = Duration::ZERO;
        }
        heads = heads_now;
    }
}

/// A downstream socket that notes when bytes move, and first gives what was read before
/// the protocol was known.
struct Watched {
    prefix: BytesMut,
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl Watched {
    fn moved<T>(&self, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if matches!(poll, Poll::Ready(Ok(_))) {
            self.activity.moved.store(true, Ordering::Relaxed);
        }
        poll
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        let poll = Pin::new(&mut self.stream).poll_read(cx, buf);
        self.moved(poll)
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.moved(poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.moved(poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_flags_parse_and_refuse_bad_values() {
        let mut limits = Limits::default();
        assert_eq!(limits.set_flag("--max-connections", "20000"), Ok(()));
        assert_eq!(limits.max_connections, 20_000);
        assert_eq!(limits.set_flag("--header-read-timeout-ms", "1500"), Ok(()));
        assert_eq!(limits.header_read_timeout, Duration::from_millis(1500));
        assert!(limits.set_flag("--max-headers", "0").is_err());
        assert!(limits.set_flag("--h2-max-streams", "many").is_err());
        assert!(limits.set_flag("--table", "x").is_err());
        assert_eq!(limits.max_headers, 100, "a refused value changes nothing");
        for flag in Limits::FLAGS
            .split(['[', ']', ' '])
            .filter(|f| f.starts_with("--"))
        {
            assert!(Limits::is_flag(flag), "{flag}");
            assert_eq!(limits.set_flag(flag, "7"), Ok(()), "{flag}");
        }
        assert!(!Limits::is_flag("--table"));
    }
}
