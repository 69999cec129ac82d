//! The listener phase: accept downstream connections (HTTP/1.1 or h2c) within the limits in
//! [`Limits`], serve each one on its own task, and drain them on shutdown.
//!
//! What bounds a connection:
//! - at most `max_connections` are served at once; the accept loop waits for a free slot, so
//!   further clients wait in the kernel's accept queue instead of costing memory here;
//! - a connection must deliver its first request within `header_read_timeout` (this covers
//!   slow HTTP/2 prefaces and clients that connect and say nothing), and HTTP/1 must deliver
//!   every request head within it (hyper's own timer; it also bounds an idle keep-alive);
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::proxy::Body;

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
    /// HTTP/1 cannot go below 8,192.
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

/// hyper's limit on HTTP/1 request header fields when none is set.
const HYPER_MAX_HEADERS: usize = 100;

/// The smallest read buffer hyper's HTTP/1 accepts.
const MIN_HTTP1_BUFFER: usize = 8192;

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

    /// The server builder for these limits.
    fn builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        let mut http1 = builder.http1();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .max_buf_size(self.max_header_bytes.max(MIN_HTTP1_BUFFER))
            // A response head and a short body in one buffer and one write: fewer
            // instructions than queueing both for a vectored write (a long body is copied
            // once more in user space, as Envoy's buffers do).
            .writev(false);
        // hyper's own limit is the default's 100, kept in a fixed array; setting any limit,
        // even 100, makes it fill a vector of that many slots for every request head.
        if self.max_headers != HYPER_MAX_HEADERS {
            http1.max_headers(self.max_headers);
        }
        builder
            .http2()
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
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Body>, Infallible>> + Send + 'static,
{
    let builder = limits.builder();
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
        let activity = Arc::new(Activity::default());
        let io = TokioIo::new(Watched {
            stream,
            activity: activity.clone(),
        });
        let service = service.clone();
        let seen = activity.clone();
        let svc = hyper::service::service_fn(move |req| {
            seen.requested.store(true, Ordering::Relaxed);
            service(req, peer)
        });
        let connection = builder.serve_connection(io, svc).into_owned();
        let shutdown = shutdown.clone();
        let limits = limits.clone();
        tokio::spawn(async move {
            let mut connection = pin!(connection);
            // The idle watch and the shutdown signal wait in a task of their own and ring
            // once, so every wake-up of the connection (two per proxied request) polls one
            // flag rather than a timer and a watch channel as well.
            let (ring, mut rung) = tokio::sync::oneshot::channel::<()>();
            let watcher = tokio::spawn(async move {
                let mut shutdown = shutdown;
                tokio::select! {
                    () = idle(&activity, &limits) => {
                        tracing::debug!(%peer, "closing an idle or slow downstream connection");
                    }
                    () = stopping(&mut shutdown) => {}
                }
                let _ = ring.send(());
            });
            tokio::select! {
                biased;
                result = connection.as_mut() => {
                    watcher.abort();
                    if let Err(error) = result {
                        tracing::debug!(%error, "downstream connection ended with an error");
                    }
                    drop(slot);
                    return;
                }
                _ = &mut rung => {}
            }
            // HTTP/2 gets GOAWAY, HTTP/1 closes after the response in flight.
            connection.as_mut().graceful_shutdown();
            if tokio::time::timeout(grace, connection).await.is_err() {
                tracing::debug!(%peer, "downstream connection cut at the end of the grace period");
            }
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

/// Returns once shutdown starts (or the proxy's handle is gone).
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|&stop| stop).await;
}

/// What the idle watch knows about one connection.
#[derive(Default)]
struct Activity {
    /// Set by every read or write that moved bytes; cleared by the idle watch.
    moved: AtomicBool,
    /// Set once the connection delivered a request.
    requested: AtomicBool,
}

/// Returns when the connection should be closed: no request within the header timeout, or no
/// byte moving for the idle timeout. Checks a few times per idle period, so it costs one timer
/// per connection, not one per read.
async fn idle(activity: &Activity, limits: &Limits) {
    tokio::time::sleep(limits.header_read_timeout).await;
    if !activity.requested.load(Ordering::Relaxed) {
        return;
    }
    let tick = (limits.idle_timeout / 4).max(Duration::from_millis(10));
    let mut quiet = Duration::ZERO;
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
    }
}

/// A downstream socket that notes when bytes move.
struct Watched {
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
