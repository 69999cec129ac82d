//! Reliability end to end: mesh-proxy (in process, ephemeral ports) against corrupt tables,
//! failing upstreams, hostile clients (slowloris, oversized heads, request smuggling, HTTP/2
//! rapid reset), many connections at once and a storm of table swaps. RELIABILITY.md says
//! what each test shows and what it does not cover.
//!
//! Upstreams are real loopback servers started by the test: hyper servers where the upstream
//! answers normally, raw sockets where it misbehaves (resets, partial bodies) or where the
//! test must see the exact bytes the proxy sent. Every loop is bounded by count and time, and
//! each test stops the proxy it started.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_e2e::{service_entry, write_atomically};
use mesh_table::format::{CHECKSUM_OFFSET, HEADER_LEN, SECTION_ENTRY_LEN, Section};
use mesh_table::hash::file_checksum;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------------------
// Upstreams

/// How a test upstream answers.
#[derive(Clone, Copy)]
enum Behaviour {
    /// 200 with its name as the body.
    Named(&'static str),
    /// 200 with its name, after a delay in milliseconds.
    Slow(&'static str, u64),
    /// Reads the request head, then resets the connection (RST) without answering.
    ResetBeforeHeaders,
    /// Sends 200 headers promising 1,000 bytes, 10 bytes of body, then resets.
    ResetMidBody,
    /// Parses every request on the connection itself and records exactly what arrived.
    Recorder,
}

/// What a recorder upstream received: one entry per request it parsed.
#[derive(Clone, Debug)]
struct Received {
    head: String,
    body: Vec<u8>,
}

struct Upstream {
    addr: SocketAddr,
    hits: Arc<AtomicU64>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Upstream {
    fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

async fn spawn_upstream(behaviour: Behaviour) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("upstream address");
    let hits = Arc::new(AtomicU64::new(0));
    let received = Arc::new(Mutex::new(Vec::new()));
    let (counter, log) = (hits.clone(), received.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (counter, log) = (counter.clone(), log.clone());
            tokio::spawn(async move {
                match behaviour {
                    Behaviour::Named(name) => serve_named(stream, counter, name, 0).await,
                    Behaviour::Slow(name, ms) => serve_named(stream, counter, name, ms).await,
                    Behaviour::ResetBeforeHeaders => {
                        let mut conn = Buffered::new(stream, UPSTREAM_PATIENCE);
                        if read_head(&mut conn).await.is_some() {
                            counter.fetch_add(1, Ordering::SeqCst);
                        }
                        // Closing with SO_LINGER 0 sends RST instead of FIN.
                        let _ = conn.stream.set_zero_linger();
                    }
                    Behaviour::ResetMidBody => {
                        let mut conn = Buffered::new(stream, UPSTREAM_PATIENCE);
                        if read_head(&mut conn).await.is_some() {
                            counter.fetch_add(1, Ordering::SeqCst);
                            let partial =
                                b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789";
                            let _ = conn.stream.write_all(partial).await;
                            let _ = conn.stream.flush().await;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            let _ = conn.stream.set_zero_linger();
                        }
                    }
                    Behaviour::Recorder => record(stream, counter, log).await,
                }
            });
        }
    });
    Upstream {
        addr,
        hits,
        received,
    }
}

async fn serve_named(stream: TcpStream, counter: Arc<AtomicU64>, name: &'static str, delay: u64) {
    let service = hyper::service::service_fn(move |_req: Request<Incoming>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(name))))
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// How long a raw upstream waits for the proxy's next bytes.
const UPSTREAM_PATIENCE: Duration = Duration::from_secs(2);
/// How long a raw client waits for the proxy's next bytes.
const CLIENT_PATIENCE: Duration = Duration::from_secs(10);

/// A socket (owned or borrowed) with a read buffer, for parsing raw HTTP/1.1 by hand.
struct Buffered<S> {
    stream: S,
    buf: Vec<u8>,
    patience: Duration,
}

impl<S: AsyncRead + Unpin> Buffered<S> {
    fn new(stream: S, patience: Duration) -> Buffered<S> {
        Buffered {
            stream,
            buf: Vec::new(),
            patience,
        }
    }

    /// Reads more bytes; false at end of stream, on error, or after `patience` of silence.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match tokio::time::timeout(self.patience, self.stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            _ => false,
        }
    }

    /// Takes bytes up to and including `delimiter`, reading as needed (at most 1 MiB).
    async fn take_until(&mut self, delimiter: &[u8]) -> Option<Vec<u8>> {
        loop {
            if let Some(at) = find(&self.buf, delimiter) {
                return Some(self.buf.drain(..at + delimiter.len()).collect());
            }
            if self.buf.len() > 1 << 20 || !self.fill().await {
                return None;
            }
        }
    }

    async fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill().await {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn read_head<S: AsyncRead + Unpin>(stream: &mut Buffered<S>) -> Option<String> {
    let head = stream.take_until(b"\r\n\r\n").await?;
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// Header values named `name` (case-insensitive) in a raw head.
fn head_values<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

/// The recorder: a strict HTTP/1.1 parser of its own, so the test sees the framing the proxy
/// actually sent (hyper would normalise a conflicting head before the test could see it).
async fn record(stream: TcpStream, counter: Arc<AtomicU64>, log: Arc<Mutex<Vec<Received>>>) {
    let mut conn = Buffered::new(stream, UPSTREAM_PATIENCE);
    while let Some(head) = read_head(&mut conn).await {
        counter.fetch_add(1, Ordering::SeqCst);
        let lengths = head_values(&head, "content-length");
        let chunked = head_values(&head, "transfer-encoding")
            .iter()
            .any(|v| v.to_ascii_lowercase().contains("chunked"));
        let mut body = Vec::new();
        if chunked {
            loop {
                let Some(size_line) = conn.take_until(b"\r\n").await else {
                    break;
                };
                let size_text = String::from_utf8_lossy(&size_line);
                let size_text = size_text.trim().split(';').next().unwrap_or("");
                let Ok(size) = usize::from_str_radix(size_text, 16) else {
                    break;
                };
                if size == 0 {
                    let _ = conn.take_until(b"\r\n").await;
                    break;
                }
                let Some(data) = conn.take(size + 2).await else {
                    break;
                };
                body.extend_from_slice(&data[..size]);
            }
        } else if let Some(n) = lengths.first().and_then(|v| v.parse::<usize>().ok()) {
            body = conn.take(n).await.unwrap_or_default();
        }
        if let Ok(mut log) = log.lock() {
            log.push(Received {
                head: head.clone(),
                body,
            });
        }
        if conn
            .stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nrecorded")
            .await
            .is_err()
        {
            return;
        }
    }
}

/// A loopback port with nothing listening: connections to it are refused.
/// A port that refuses connections for as long as the returned socket lives: bound, never
/// listening, so no other test's listener can take the port meanwhile (a port freed by
/// dropping a listener can be handed to the next `bind(0)` and come alive).
fn closed_port() -> (SocketAddr, tokio::net::TcpSocket) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("address"))
        .expect("bind");
    let addr = socket.local_addr().expect("address");
    (addr, socket)
}

// ---------------------------------------------------------------------------------------
// Policies, tables and the proxy

/// [`service_entry`] with the endpoints' versions numbered `v1`, `v2`, ...
fn numbered_service_entry(name: &str, endpoints: &[SocketAddr]) -> String {
    let versions: Vec<String> = (1..=endpoints.len()).map(|i| format!("v{i}")).collect();
    let pairs: Vec<(&str, SocketAddr)> = versions
        .iter()
        .map(String::as_str)
        .zip(endpoints.iter().copied())
        .collect();
    service_entry(name, &pairs)
}

/// A VirtualService for `host` with one rule named `default` (`extra` is YAML at the rule's
/// indentation: retries, timeout).
fn virtual_service(host: &str, extra: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: {host}\nspec:\n  hosts:\n  - {host}\n  http:\n  - name: default\n{extra}    route:\n    - destination:\n        host: {host}\n---\n"
    )
}

fn compile(policy: &str) -> Vec<u8> {
    let checked = meshc::check::check_sources([("policy.yaml", policy)], &Default::default());
    assert!(
        !checked.has_errors(),
        "the test policy has errors: {:#?}",
        checked.diagnostics
    );
    meshc::compile::build(&checked).expect("the test policy compiles")
}

struct Proxy {
    running: mesh_proxy::Running,
    access_log: PathBuf,
    _dir: tempfile::TempDir,
    table_path: PathBuf,
}

impl Proxy {
    /// Starts mesh-proxy on `table` with the given limits, an access log in a temp file and
    /// the file watcher's poll slowed down (tests reload with `Running::reload`).
    async fn start(table: &[u8], limits: mesh_proxy::Limits) -> Proxy {
        let dir = tempfile::tempdir().expect("temp dir");
        let table_path = dir.path().join("table.mtbl");
        write_atomically(&table_path, table);
        let access_log = dir.path().join("access.log");
        let mut config = mesh_proxy::Config::new(&table_path);
        config.listen = "127.0.0.1:0".parse().expect("addr");
        config.admin = "127.0.0.1:0".parse().expect("addr");
        config.poll_interval = Duration::from_secs(3600);
        config.grace = Duration::from_secs(2);
        config.limits = limits;
        config.observe.access_log = mesh_proxy::AccessLogTarget::File(access_log.clone());
        let running = mesh_proxy::start(config).await.expect("the proxy starts");
        Proxy {
            running,
            access_log,
            _dir: dir,
            table_path,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.running.listen_addr
    }

    /// The access log entry of the request that carried `x-request-id: id` (the log is
    /// written off the request path, so this waits for it, up to 10 s).
    async fn log_entry(&self, id: &str) -> Value {
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.access_log).unwrap_or_default();
            if let Some(entry) = text
                .lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .find(|entry| entry["x_request_id"] == id)
            {
                return entry;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no access log entry for {id} in:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        self.running.shutdown().await;
    }
}

type TestClient = Client<HttpConnector, Empty<Bytes>>;

fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

struct Answer {
    status: u16,
    /// The body, or the error that cut it.
    body: Result<String, String>,
}

async fn get(client: &TestClient, addr: SocketAddr, host: &str, id: &str) -> Answer {
    let request = Request::builder()
        .uri(format!("http://{addr}/"))
        .header("host", host)
        .header("x-request-id", id)
        .body(Empty::new())
        .expect("request");
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .expect("the proxy answers within 10 s")
        .expect("the request goes through");
    let status = response.status().as_u16();
    let body =
        match tokio::time::timeout(Duration::from_secs(10), response.into_body().collect()).await {
            Ok(Ok(body)) => Ok(String::from_utf8_lossy(&body.to_bytes()).into_owned()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("body timed out".to_owned()),
        };
    Answer { status, body }
}

/// Resident memory of this process (proxy, upstreams and clients together), in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Waits (bounded) until `done` holds.
async fn eventually(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Writes `request` on a fresh connection and reads until the proxy closes it or 10 s pass.
async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let _ = stream.write_all(request).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => response.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&response).into_owned()
}

/// Reads one response (head and `content-length` body) from a raw connection.
async fn read_response(stream: &mut TcpStream) -> Option<String> {
    let mut conn = Buffered::new(stream, CLIENT_PATIENCE);
    let head = conn.take_until(b"\r\n\r\n").await?;
    let head = String::from_utf8_lossy(&head).into_owned();
    let length = head_values(&head, "content-length")
        .first()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let body = conn.take(length).await?;
    Some(format!("{head}{}", String::from_utf8_lossy(&body)))
}

/// Whether the peer closed the connection within `within` (reading and discarding).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut chunk = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

// ---------------------------------------------------------------------------------------
// Corrupt tables

fn section_entry(bytes: &[u8], kind: Section) -> usize {
    (0..Section::ALL.len())
        .map(|i| HEADER_LEN + i * SECTION_ENTRY_LEN)
        .find(|&at| bytes[at..at + 4] == (kind as u32).to_le_bytes())
        .expect("section present")
}

fn with_checksum(mut bytes: Vec<u8>) -> Vec<u8> {
    let sum = file_checksum(&bytes);
    bytes[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 8].copy_from_slice(&sum.to_le_bytes());
    bytes
}

/// Each kind of corrupt artifact, with a fragment of the error it must be refused with.
fn corruptions(good: &[u8]) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let routes = section_entry(good, Section::Routes);
    let mut cases = vec![
        ("empty", Vec::new(), "truncated header"),
        ("truncated header", good[..50].to_vec(), "truncated header"),
        (
            "truncated payload",
            good[..good.len() / 2].to_vec(),
            "length mismatch",
        ),
        (
            "trailing bytes",
            [good, b"junk".as_slice()].concat(),
            "length mismatch",
        ),
        (
            "not a table",
            b"apiVersion: networking.istio.io/v1\nkind: VirtualService\n".repeat(4),
            "not a mesh table",
        ),
    ];
    let mut flipped = good.to_vec();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x10;
    cases.push(("bit flip", flipped, "checksum mismatch"));
    let mut version = good.to_vec();
    version[12..16].copy_from_slice(&99u32.to_le_bytes());
    cases.push(("wrong version", version, "unsupported format version 99"));
    let mut magic = good.to_vec();
    magic[..8].copy_from_slice(b"NOTATBL\0");
    cases.push(("wrong magic", magic, "not a mesh table"));
    let mut endian = good.to_vec();
    endian[8..12].copy_from_slice(&0x0102_0304u32.to_be_bytes());
    cases.push(("wrong endianness", endian, "endian"));
    // Crafted files with a valid checksum: only structural validation can refuse them.
    let mut huge = good.to_vec();
    huge[routes + 24..routes + 32].copy_from_slice(&u64::MAX.to_le_bytes());
    cases.push(("huge record count", with_checksum(huge), "routes"));
    let mut long = good.to_vec();
    long[routes + 16..routes + 24].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    cases.push(("huge section length", with_checksum(long), "routes"));
    let mut misaligned = good.to_vec();
    let offset = u64::from_le_bytes(misaligned[routes + 8..routes + 16].try_into().expect("8"));
    misaligned[routes + 8..routes + 16].copy_from_slice(&(offset + 4).to_le_bytes());
    cases.push(("misaligned section", with_checksum(misaligned), "routes"));
    cases
}

fn reviews_policy(upstreams: &[SocketAddr; 3], default_subset: &str) -> String {
    let mut policy = numbered_service_entry("reviews", upstreams);
    policy.push_str(&format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: reviews\nspec:\n  host: reviews\n  subsets:\n  - name: v1\n    labels:\n      version: v1\n  - name: v2\n    labels:\n      version: v2\n  - name: v3\n    labels:\n      version: v3\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\nspec:\n  hosts:\n  - reviews\n  http:\n  - name: default\n    route:\n    - destination:\n        host: reviews\n        subset: {default_subset}\n"
    ));
    policy
}

async fn reviews_upstreams() -> ([Upstream; 3], [SocketAddr; 3]) {
    let v1 = spawn_upstream(Behaviour::Named("reviews-v1")).await;
    let v2 = spawn_upstream(Behaviour::Named("reviews-v2")).await;
    let v3 = spawn_upstream(Behaviour::Named("reviews-v3")).await;
    let addrs = [v1.addr, v2.addr, v3.addr];
    ([v1, v2, v3], addrs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_tables_are_refused_at_start_and_on_reload_while_the_old_one_serves() {
    let (_upstreams, addrs) = reviews_upstreams().await;
    let good = compile(&reviews_policy(&addrs, "v1"));
    let cases = corruptions(&good);
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, bytes, expected) in &cases {
        let path = dir.path().join("start.mtbl");
        std::fs::write(&path, bytes).expect("write");
        let error = mesh_proxy::start(mesh_proxy::Config::new(&path))
            .await
            .err()
            .unwrap_or_else(|| panic!("{name}: the proxy started on a corrupt table"));
        let message = error.to_string();
        assert!(
            message.contains("is invalid") && message.contains(expected),
            "{name}: {message}"
        );
    }

    let proxy = Proxy::start(&good, mesh_proxy::Limits::default()).await;
    let client = client();
    for (name, bytes, _) in &cases {
        let shared = proxy.running.shared.clone();
        let before = shared.reloads_failed.load(Ordering::SeqCst);
        write_atomically(&proxy.table_path, bytes);
        proxy.running.reload();
        // `>`, not `== before + 1`: the file watcher may notice the new file and refuse it
        // before the explicit reload refuses it again.
        eventually(name, Duration::from_secs(10), || {
            shared.reloads_failed.load(Ordering::SeqCst) > before
        })
        .await;
        let answer = get(&client, proxy.addr(), "reviews", name).await;
        assert_eq!(
            (answer.status, answer.body),
            (200, Ok("reviews-v1".to_owned())),
            "after {name}"
        );
    }
    let shared = proxy.running.shared.clone();
    assert_eq!(shared.reloads_ok.load(Ordering::SeqCst), 0);
    // The watcher still works after every refusal: a valid table goes in.
    write_atomically(&proxy.table_path, &compile(&reviews_policy(&addrs, "v3")));
    proxy.running.reload();
    eventually("the valid table", Duration::from_secs(10), || {
        shared.reloads_ok.load(Ordering::SeqCst) >= 1
    })
    .await;
    let answer = get(&client, proxy.addr(), "reviews", "after-all").await;
    assert_eq!(answer.body, Ok("reviews-v3".to_owned()));
    assert!(shared.reloads_failed.load(Ordering::SeqCst) >= cases.len() as u64);
    proxy.stop().await;
}

// ---------------------------------------------------------------------------------------
// Reload storm

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_table_swaps_under_load_fail_no_request() {
    const SWAPS: u64 = 1000;
    let (_upstreams, addrs) = reviews_upstreams().await;
    let table_v1 = compile(&reviews_policy(&addrs, "v1"));
    let table_v3 = compile(&reviews_policy(&addrs, "v3"));
    let proxy = Proxy::start(&table_v1, mesh_proxy::Limits::default()).await;
    let addr = proxy.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let mut loaders = Vec::new();
    for _ in 0..4 {
        let client = client();
        let stop = stop.clone();
        loaders.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            let started = Instant::now();
            // Bounded by time whatever the swapper does.
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(120) {
                let request = Request::builder()
                    .uri(format!("http://{addr}/"))
                    .header("host", "reviews")
                    .body(Empty::new())
                    .expect("request");
                let answer = match client.request(request).await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        match response.into_body().collect().await {
                            Ok(body) => (
                                status,
                                String::from_utf8_lossy(&body.to_bytes()).into_owned(),
                            ),
                            Err(e) => (status, format!("body error: {e}")),
                        }
                    }
                    Err(e) => (0, format!("request error: {e}")),
                };
                answers.push(answer);
            }
            answers
        }));
    }
    let shared = proxy.running.shared.clone();
    for swap in 1..=SWAPS {
        let bytes = if swap % 2 == 1 { &table_v3 } else { &table_v1 };
        write_atomically(&proxy.table_path, bytes);
        proxy.running.reload();
        // `>=`: the file watcher may see the new file and reload it before the explicit
        // reload does it again, so one swap can count twice.
        eventually("the swap", Duration::from_secs(10), || {
            shared.reloads_ok.load(Ordering::SeqCst) >= swap
        })
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for loader in loaders {
        all.extend(loader.await.expect("load task"));
    }
    let failed: Vec<_> = all
        .iter()
        .filter(|(status, body)| *status != 200 || (body != "reviews-v1" && body != "reviews-v3"))
        .collect();
    let v1 = all.iter().filter(|(_, b)| b == "reviews-v1").count();
    let v3 = all.iter().filter(|(_, b)| b == "reviews-v3").count();
    eprintln!(
        "reload storm: {SWAPS} swaps, {} requests ({v1} from the v1 table, {v3} from the v3 table), {} failed",
        all.len(),
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "{} of {} failed: {:?}",
        failed.len(),
        all.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(all.len() as u64 >= SWAPS, "only {} requests", all.len());
    assert!(v1 > 0 && v3 > 0, "both tables served: v1 {v1}, v3 {v3}");
    assert!(shared.reloads_ok.load(Ordering::SeqCst) >= SWAPS);
    assert_eq!(shared.reloads_failed.load(Ordering::SeqCst), 0);
    proxy.stop().await;
}

// ---------------------------------------------------------------------------------------
// Upstream faults

/// One world of failing upstreams: every host's policy and what its endpoints do.
struct Faults {
    proxy: Proxy,
    reset: Upstream,
    mid_body: Upstream,
    slow_try: Upstream,
    fast: Upstream,
    half_alive: [Upstream; 2],
    /// Holds the dead endpoints' ports.
    _dead: Vec<tokio::net::TcpSocket>,
}

async fn faults() -> Faults {
    let reset = spawn_upstream(Behaviour::ResetBeforeHeaders).await;
    let mid_body = spawn_upstream(Behaviour::ResetMidBody).await;
    let slow = spawn_upstream(Behaviour::Slow("slow", 300)).await;
    let slow_try = spawn_upstream(Behaviour::Slow("too-slow", 2000)).await;
    let fast = spawn_upstream(Behaviour::Named("fast")).await;
    let half_alive = [
        spawn_upstream(Behaviour::Named("alive-1")).await,
        spawn_upstream(Behaviour::Named("alive-2")).await,
    ];
    let hang = spawn_upstream(Behaviour::Slow("hang", 3_600_000)).await;
    let (dead, dead_sockets): (Vec<SocketAddr>, Vec<_>) =
        [closed_port(), closed_port()].into_iter().unzip();

    let mut policy = String::new();
    policy.push_str(&numbered_service_entry("refused", &[dead[0]]));
    policy.push_str(&numbered_service_entry("refusednoretry", &[dead[0]]));
    policy.push_str(&numbered_service_entry("reset", &[reset.addr]));
    policy.push_str(&numbered_service_entry("midbody", &[mid_body.addr]));
    policy.push_str(&numbered_service_entry("slow", &[slow.addr]));
    policy.push_str(&numbered_service_entry(
        "slowtry",
        &[slow_try.addr, fast.addr],
    ));
    policy.push_str(&numbered_service_entry("hang", &[hang.addr]));
    policy.push_str(&numbered_service_entry(
        "half",
        &[dead[0], half_alive[0].addr, dead[1], half_alive[1].addr],
    ));
    policy.push_str(&numbered_service_entry("alldead", &dead));
    let retry = |attempts: u32, on: &str| {
        format!("    retries:\n      attempts: {attempts}\n      retryOn: {on}\n")
    };
    policy.push_str(&virtual_service("refused", &retry(2, "connect-failure")));
    policy.push_str(&virtual_service(
        "refusednoretry",
        "    retries:\n      attempts: 0\n",
    ));
    policy.push_str(&virtual_service("reset", &retry(2, "reset")));
    policy.push_str(&virtual_service("midbody", &retry(2, "5xx,reset")));
    policy.push_str(&virtual_service("slow", "    timeout: 5s\n"));
    policy.push_str(&virtual_service(
        "slowtry",
        "    timeout: 5s\n    retries:\n      attempts: 2\n      perTryTimeout: 200ms\n      retryOn: 5xx\n",
    ));
    policy.push_str(&virtual_service(
        "hang",
        "    timeout: 300ms\n    retries:\n      attempts: 0\n",
    ));
    policy.push_str(&virtual_service("half", &retry(3, "connect-failure")));
    policy.push_str(&virtual_service(
        "alldead",
        "    retries:\n      attempts: 0\n",
    ));
    for (host, max_percent) in [("half", 50), ("alldead", 100)] {
        policy.push_str(&format!(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: {host}\nspec:\n  host: {host}\n  trafficPolicy:\n    outlierDetection:\n      consecutiveGatewayErrors: 1\n      interval: 1s\n      baseEjectionTime: 60s\n      maxEjectionPercent: {max_percent}\n---\n"
        ));
    }
    let proxy = Proxy::start(&compile(&policy), mesh_proxy::Limits::default()).await;
    Faults {
        proxy,
        reset,
        mid_body,
        slow_try,
        fast,
        half_alive,
        _dead: dead_sockets,
    }
}

/// Sends one request to `host` and returns the answer with its access log entry.
async fn faulted(faults: &Faults, client: &TestClient, host: &str, id: &str) -> (Answer, Value) {
    let answer = get(client, faults.proxy.addr(), host, id).await;
    let entry = faults.proxy.log_entry(id).await;
    (answer, entry)
}

fn flags(entry: &Value) -> &str {
    entry["response_flags"].as_str().unwrap_or("?")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_retried_then_answered_503_uf() {
    let faults = faults().await;
    let client = client();
    let (answer, entry) = faulted(&faults, &client, "refused", "refused-1").await;
    assert_eq!(answer.status, 503);
    let body = answer.body.expect("a body");
    assert!(body.contains("ConnectFailure"), "{body}");
    assert_eq!(flags(&entry), "UF,URX", "{entry}");
    assert_eq!(entry["retry_attempts"], 2, "{entry}");

    let (answer, entry) = faulted(&faults, &client, "refusednoretry", "refused-2").await;
    assert_eq!(answer.status, 503);
    assert_eq!(flags(&entry), "UF", "{entry}");
    assert_eq!(entry["retry_attempts"], 0, "{entry}");
    faults.proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_are_retried_before_headers_and_never_after() {
    let faults = faults().await;
    let client = client();
    let (answer, entry) = faulted(&faults, &client, "reset", "reset-1").await;
    assert_eq!(answer.status, 503);
    assert_eq!(flags(&entry), "URX,UR", "{entry}");
    assert_eq!(faults.reset.hits(), 3, "one try and two retries on `reset`");

    // Headers came, then the connection was reset: the client sees the 200 and a cut body;
    // the proxy does not retry a response it has started to forward.
    let answer = get(&client, faults.proxy.addr(), "midbody", "midbody-1").await;
    assert_eq!(answer.status, 200);
    assert!(answer.body.is_err(), "the cut body must not look complete");
    eventually("the mid-body reset", Duration::from_secs(5), || {
        faults.mid_body.hits() >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        faults.mid_body.hits(),
        1,
        "a started response is not retried"
    );
    // The proxy still serves.
    let (answer, _) = faulted(&faults, &client, "slow", "after-reset").await;
    assert_eq!((answer.status, answer.body), (200, Ok("slow".to_owned())));
    faults.proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_hanging_upstreams_meet_their_timeouts() {
    let faults = faults().await;
    let client = client();
    // Slow but within the route timeout: served, no flag.
    let (answer, entry) = faulted(&faults, &client, "slow", "slow-1").await;
    assert_eq!((answer.status, answer.body), (200, Ok("slow".to_owned())));
    assert_eq!(flags(&entry), "-", "{entry}");
    // Hanging: 504 UT at the route timeout.
    let (answer, entry) = faulted(&faults, &client, "hang", "hang-1").await;
    assert_eq!(answer.status, 504);
    assert_eq!(flags(&entry), "UT", "{entry}");
    // One endpoint too slow for the per-try timeout: its tries time out and are retried on
    // the other endpoint, so every request succeeds.
    for i in 0..6 {
        let id = format!("slowtry-{i}");
        let (answer, entry) = faulted(&faults, &client, "slowtry", &id).await;
        assert_eq!(
            (answer.status, answer.body),
            (200, Ok("fast".to_owned())),
            "{entry}"
        );
        assert_eq!(flags(&entry), "-", "{entry}");
    }
    assert!(
        faults.slow_try.hits() >= 1,
        "round robin reached the slow endpoint"
    );
    assert_eq!(faults.fast.hits(), 6);
    faults.proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_endpoints_are_ejected_and_retried_around() {
    let faults = faults().await;
    let client = client();
    let mut retries = Vec::new();
    for i in 0..40 {
        let id = format!("half-{i}");
        let (answer, entry) = faulted(&faults, &client, "half", &id).await;
        assert_eq!(answer.status, 200, "{entry}");
        assert_eq!(flags(&entry), "-", "{entry}");
        retries.push(entry["retry_attempts"].as_u64().unwrap_or(99));
    }
    // Each dead endpoint fails once, is ejected for 60 s, and costs one retry. Round robin
    // goes over the endpoints in address order, so where the dead ones fall depends on the
    // ports they got; either way both have been met within the first six requests.
    assert_eq!(retries.iter().sum::<u64>(), 2, "{retries:?}");
    assert!(retries[6..].iter().all(|&r| r == 0), "{retries:?}");
    let alive: u64 = faults.half_alive.iter().map(Upstream::hits).sum();
    assert_eq!(alive, 40);
    assert!(
        faults.half_alive.iter().all(|u| u.hits() >= 15),
        "both alive endpoints share the load"
    );

    // When every endpoint is ejected: 503 UH without trying anything.
    let mut seen = Vec::new();
    for i in 0..4 {
        let id = format!("alldead-{i}");
        let (answer, entry) = faulted(&faults, &client, "alldead", &id).await;
        assert_eq!(answer.status, 503);
        seen.push(flags(&entry).to_owned());
    }
    assert_eq!(seen, ["UF", "UF", "UH", "UH"]);
    faults.proxy.stop().await;
}

// ---------------------------------------------------------------------------------------
// Hostile clients

fn test_limits() -> mesh_proxy::Limits {
    mesh_proxy::Limits {
        header_read_timeout: Duration::from_millis(400),
        idle_timeout: Duration::from_millis(800),
        ..mesh_proxy::Limits::default()
    }
}

/// Starts a request head and adds one header line every 100 ms, never finishing it, until
/// the proxy closes the connection or `within` passes.
async fn drip_head(stream: &mut TcpStream, within: Duration) {
    let _ = stream
        .write_all(b"GET / HTTP/1.1\r\nHost: reviews\r\n")
        .await;
    let dripping = async {
        loop {
            if stream.write_all(b"x-drip: 1\r\n").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let _ = tokio::time::timeout(within, dripping).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_and_silent_clients_are_cut_while_others_are_served() {
    let (upstreams, addrs) = reviews_upstreams().await;
    let proxy = Proxy::start(&compile(&reviews_policy(&addrs, "v1")), test_limits()).await;
    let addr = proxy.addr();
    let started = Instant::now();
    let mut attackers = Vec::new();
    for i in 0..60 {
        attackers.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            match i % 3 {
                // A request head, one header line every 100 ms, never finished.
                0 => {
                    drip_head(&mut stream, Duration::from_secs(10)).await;
                    closed_within(&mut stream, Duration::from_secs(1)).await
                }
                // Connects and says nothing.
                1 => closed_within(&mut stream, Duration::from_secs(10)).await,
                // Half an HTTP/2 preface.
                _ => {
                    let _ = stream.write_all(b"PRI * HTTP/2.0\r\n").await;
                    closed_within(&mut stream, Duration::from_secs(10)).await
                }
            }
        }));
    }
    // Meanwhile, ordinary clients are served.
    let client = client();
    for i in 0..20 {
        let answer = get(&client, addr, "reviews", &format!("ordinary-{i}")).await;
        assert_eq!(answer.status, 200);
    }
    for attacker in attackers {
        assert!(
            attacker.await.expect("attacker task"),
            "a slow client was not cut"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(10));

    // An idle HTTP/1.1 keep-alive connection is closed too, after its one request.
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: reviews\r\n\r\n")
        .await
        .expect("write");
    let response = read_response(&mut stream).await.expect("a response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(closed_within(&mut stream, Duration::from_secs(10)).await);
    assert!(upstreams[0].hits() >= 21);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_gets_goaway() {
    let (_upstreams, addrs) = reviews_upstreams().await;
    let proxy = Proxy::start(&compile(&reviews_policy(&addrs, "v1")), test_limits()).await;
    let tcp = TcpStream::connect(proxy.addr()).await.expect("connect");
    let (mut h2, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    let connection = tokio::spawn(connection);
    h2 = h2.ready().await.expect("ready");
    let request = Request::builder()
        .uri("http://reviews/")
        .body(())
        .expect("request");
    let (response, _) = h2.send_request(request, true).expect("send");
    let response = response.await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    drop(response);
    // Nothing more is sent: the proxy says GOAWAY (no error) after its idle timeout, and the
    // client's connection ends cleanly rather than with a reset or an I/O error.
    let ended = tokio::time::timeout(Duration::from_secs(10), connection)
        .await
        .expect("the idle HTTP/2 connection was closed")
        .expect("connection task");
    assert!(ended.is_ok(), "{ended:?}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_get_431() {
    let (upstreams, addrs) = reviews_upstreams().await;
    let proxy = Proxy::start(
        &compile(&reviews_policy(&addrs, "v1")),
        mesh_proxy::Limits::default(),
    )
    .await;
    let addr = proxy.addr();
    let big = format!(
        "GET / HTTP/1.1\r\nHost: reviews\r\nx-big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let response = raw_exchange(addr, big.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 431"), "{response:.200}");
    let mut many = String::from("GET / HTTP/1.1\r\nHost: reviews\r\n");
    for i in 0..150 {
        many.push_str(&format!("x-h{i}: {i}\r\n"));
    }
    many.push_str("\r\n");
    let response = raw_exchange(addr, many.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 431"), "{response:.200}");
    // Just under the limit still goes through.
    let fits = format!(
        "GET / HTTP/1.1\r\nHost: reviews\r\nConnection: close\r\nx-big: {}\r\n\r\n",
        "a".repeat(60 * 1024)
    );
    let response = raw_exchange(addr, fits.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response:.200}");
    assert_eq!(
        upstreams[0].hits(),
        1,
        "only the request that fits was forwarded"
    );

    // HTTP/2: the same limit as SETTINGS_MAX_HEADER_LIST_SIZE, answered with 431.
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (mut h2, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(connection);
    h2 = h2.ready().await.expect("ready");
    let request = Request::builder()
        .uri("http://reviews/")
        .header("x-big", "a".repeat(100 * 1024))
        .body(())
        .expect("request");
    let (response, _) = h2.send_request(request, true).expect("send");
    let status = tokio::time::timeout(Duration::from_secs(10), response)
        .await
        .expect("answered in time")
        .map(|r| r.status().as_u16());
    assert_eq!(status.as_ref().ok(), Some(&431), "{status:?}");
    assert_eq!(upstreams[0].hits(), 1);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_attempts_never_reach_the_upstream() {
    let recorder = spawn_upstream(Behaviour::Recorder).await;
    let mut policy = numbered_service_entry("echo", &[recorder.addr]);
    policy.push_str(&virtual_service(
        "echo",
        "    retries:\n      attempts: 0\n",
    ));
    let proxy = Proxy::start(&compile(&policy), mesh_proxy::Limits::default()).await;
    let addr = proxy.addr();
    let smuggled = "GET /smuggled HTTP/1.1\r\nHost: echo\r\n\r\n";
    // (name, request bytes, whether the proxy may forward it per RFC 9112)
    let cases: Vec<(&str, String, bool)> = vec![
        (
            "CL.TE: Content-Length, then chunked",
            format!(
                "POST /cl-te HTTP/1.1\r\nHost: echo\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}",
                5 + smuggled.len()
            ),
            true,
        ),
        (
            "TE.CL: chunked, then Content-Length",
            format!(
                "POST /te-cl HTTP/1.1\r\nHost: echo\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n{:x}\r\n{smuggled}\r\n0\r\n\r\n",
                smuggled.len()
            ),
            true,
        ),
        (
            "conflicting Content-Length",
            format!(
                "POST /dup-cl HTTP/1.1\r\nHost: echo\r\nContent-Length: 0\r\nContent-Length: {}\r\n\r\n{smuggled}",
                smuggled.len()
            ),
            false,
        ),
        (
            "chunked, identity",
            format!(
                "POST /te-identity HTTP/1.1\r\nHost: echo\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n{smuggled}"
            ),
            false,
        ),
        (
            "identity only",
            format!(
                "POST /identity HTTP/1.1\r\nHost: echo\r\nTransfer-Encoding: identity\r\nContent-Length: 0\r\n\r\n{smuggled}"
            ),
            false,
        ),
        (
            "obfuscated name (space before colon)",
            format!(
                "POST /te-space HTTP/1.1\r\nHost: echo\r\nTransfer-Encoding : chunked\r\nContent-Length: 0\r\n\r\n{smuggled}"
            ),
            false,
        ),
        (
            "obfuscated value",
            format!(
                "POST /xchunked HTTP/1.1\r\nHost: echo\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n{smuggled}"
            ),
            false,
        ),
        (
            "HTTP/1.0 with Transfer-Encoding",
            format!(
                "POST /http10 HTTP/1.0\r\nHost: echo\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}"
            ),
            false,
        ),
        (
            "signed Content-Length",
            format!(
                "POST /plus HTTP/1.1\r\nHost: echo\r\nContent-Length: +{}\r\n\r\n{smuggled}",
                smuggled.len()
            ),
            false,
        ),
        (
            "chunk size overflow",
            format!(
                "POST /overflow HTTP/1.1\r\nHost: echo\r\nx-request-id: overflow\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\n{smuggled}"
            ),
            false,
        ),
    ];
    for (name, request, forwardable) in &cases {
        let response = raw_exchange(addr, request.as_bytes()).await;
        let status_line = response.lines().next().unwrap_or("");
        if *forwardable {
            assert!(
                status_line.starts_with("HTTP/1.1 200"),
                "{name}: {response}"
            );
            // RFC 9112 §6.1: the connection closes after such a request.
            assert_eq!(
                response.matches("HTTP/1.1 ").count(),
                1,
                "{name}: one response, then close: {response}"
            );
        } else {
            assert!(
                status_line.starts_with("HTTP/1.1 400"),
                "{name}: {response}"
            );
        }
    }
    // The proxy still serves, and the upstream saw only well-framed requests.
    let answer = get(&client(), addr, "echo", "after-smuggling").await;
    assert_eq!(answer.status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A chunk size that overflows is only found while the body streams, after the head went
    // upstream: the upstream may see that head with no body, then the connection closes.
    let (overflow, received): (Vec<_>, Vec<_>) = recorder
        .received()
        .into_iter()
        .partition(|r| r.head.starts_with("POST /overflow "));
    assert!(overflow.iter().all(|r| r.body.is_empty()), "{overflow:#?}");
    // It is the client's fault, and logged as such (downstream protocol error).
    let entry = proxy.log_entry("overflow").await;
    assert_eq!(
        (entry["response_code"].as_u64(), flags(&entry)),
        (Some(400), "DPE"),
        "{entry}"
    );
    let paths: Vec<String> = received
        .iter()
        .map(|r| r.head.split(' ').nth(1).unwrap_or("").to_owned())
        .collect();
    assert_eq!(paths, ["/cl-te", "/te-cl", "/"], "{received:#?}");
    for request in &received {
        let lengths = head_values(&request.head, "content-length");
        let encodings = head_values(&request.head, "transfer-encoding");
        assert!(
            lengths.is_empty() || encodings.is_empty(),
            "both framings forwarded: {}",
            request.head
        );
        assert!(lengths.len() <= 1, "{}", request.head);
    }
    assert!(
        received[0].body.is_empty(),
        "CL.TE: the chunked body was empty"
    );
    assert_eq!(
        received[1].body,
        smuggled.as_bytes(),
        "TE.CL: the chunk is body data, not a request"
    );
    proxy.stop().await;
}

/// HTTP/2 frame types and codes the rapid-reset client writes and reads (RFC 9113 §6).
const H2_HEADERS: u8 = 0x1;
const H2_RST_STREAM: u8 = 0x3;
const H2_SETTINGS: u8 = 0x4;
const H2_GOAWAY: u8 = 0x7;
const H2_CANCEL: u32 = 0x8;
const H2_ENHANCE_YOUR_CALM: u32 = 0xb;

fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len())
        .expect("small frame")
        .to_be_bytes();
    let mut frame = vec![len[1], len[2], len[3], kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// Reads the server's frames until GOAWAY (its error code) or the end of the connection.
async fn h2_goaway_code(mut reader: tokio::net::tcp::OwnedReadHalf) -> Option<u32> {
    let mut conn = Buffered::new(&mut reader, CLIENT_PATIENCE);
    loop {
        let head = conn.take(9).await?;
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let payload = conn.take(len).await?;
        if head[3] == H2_GOAWAY && payload.len() >= 8 {
            return Some(u32::from_be_bytes(payload[4..8].try_into().ok()?));
        }
    }
}

/// The rapid-reset attack (CVE-2023-44487), written frame by frame so that HEADERS and
/// RST_STREAM pairs arrive together, as an attacker sends them.
async fn rapid_reset(addr: SocketAddr, pairs: u32) -> (u32, Option<u32>) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (reader, mut writer) = stream.into_split();
    let goaway = tokio::spawn(h2_goaway_code(reader));
    let mut start = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    start.extend(h2_frame(H2_SETTINGS, 0, 0, &[]));
    let _ = writer.write_all(&start).await;
    // GET http://slow/ in HPACK: indexed :method GET, :scheme http, :path /, and :authority
    // as a literal with an indexed name.
    let block = [0x82, 0x86, 0x84, 0x01, 0x04, b's', b'l', b'o', b'w'];
    let mut sent = 0;
    'attack: for batch in 0..pairs / 50 {
        let mut bytes = Vec::new();
        for i in 0..50 {
            let id = (batch * 50 + i) * 2 + 1;
            bytes.extend(h2_frame(H2_HEADERS, 0x5, id, &block));
            bytes.extend(h2_frame(H2_RST_STREAM, 0, id, &H2_CANCEL.to_be_bytes()));
        }
        if writer.write_all(&bytes).await.is_err() {
            break 'attack;
        }
        sent += 50;
    }
    let code = tokio::time::timeout(Duration::from_secs(10), goaway)
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
    (sent, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_rapid_reset_gets_goaway_and_the_proxy_stays_up() {
    let slow = spawn_upstream(Behaviour::Slow("slow", 200)).await;
    let mut policy = numbered_service_entry("slow", &[slow.addr]);
    policy.push_str(&virtual_service("slow", ""));
    let proxy = Proxy::start(&compile(&policy), mesh_proxy::Limits::default()).await;
    let addr = proxy.addr();
    let rss_before = rss_kib();
    let mut total = 0;
    for _ in 0..5 {
        let (sent, code) = rapid_reset(addr, 10_000).await;
        total += sent;
        assert_eq!(
            code,
            Some(H2_ENHANCE_YOUR_CALM),
            "after {sent} HEADERS+RST_STREAM pairs"
        );
    }
    let reached_upstream = slow.hits();
    // Still serving, and memory did not follow the attack.
    let answer = get(&client(), addr, "slow", "after-rapid-reset").await;
    assert_eq!((answer.status, answer.body), (200, Ok("slow".to_owned())));
    let grown = rss_kib().saturating_sub(rss_before);
    eprintln!(
        "rapid reset: 5 connections, {total} HEADERS+RST_STREAM pairs written before the socket closed, {reached_upstream} of them reached the upstream; RSS grew {grown} KiB"
    );
    assert!(grown < 64 * 1024, "RSS grew {grown} KiB");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_concurrent_connections_are_all_answered() {
    const CONNECTIONS: usize = 2000;
    let (upstreams, addrs) = reviews_upstreams().await;
    let proxy = Proxy::start(
        &compile(&reviews_policy(&addrs, "v1")),
        mesh_proxy::Limits::default(),
    )
    .await;
    let addr = proxy.addr();
    let rss_before = rss_kib();
    // Open them all first: every connection is held open at the same time.
    let mut streams = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        streams.push(TcpStream::connect(addr).await.expect("connect"));
    }
    let mut tasks = Vec::with_capacity(CONNECTIONS);
    for mut stream in streams {
        tasks.push(tokio::spawn(async move {
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: reviews\r\n\r\n")
                .await
                .ok()?;
            let response = read_response(&mut stream).await?;
            Some((response, stream))
        }));
    }
    let mut answered = 0;
    let mut open = Vec::with_capacity(CONNECTIONS);
    for task in tasks {
        if let Some((response, stream)) = task.await.expect("client task")
            && response.starts_with("HTTP/1.1 200")
            && response.ends_with("reviews-v1")
        {
            answered += 1;
            open.push(stream);
        }
    }
    let rss_peak = rss_kib();
    let grown = rss_peak.saturating_sub(rss_before);
    eprintln!(
        "{CONNECTIONS} concurrent connections: {answered} answered; RSS (proxy, upstreams and clients) {rss_before} -> {rss_peak} KiB"
    );
    assert_eq!(answered, CONNECTIONS);
    assert_eq!(upstreams[0].hits(), CONNECTIONS as u64);
    assert!(grown < 256 * 1024, "RSS grew {grown} KiB");
    drop(open);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_connection_limit_clients_wait_for_a_free_slot() {
    let (_upstreams, addrs) = reviews_upstreams().await;
    let limits = mesh_proxy::Limits {
        max_connections: 20,
        ..mesh_proxy::Limits::default()
    };
    let proxy = Proxy::start(&compile(&reviews_policy(&addrs, "v1")), limits).await;
    let addr = proxy.addr();
    let mut held = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: reviews\r\n\r\n")
            .await
            .expect("write");
        let response = read_response(&mut stream).await.expect("answered");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        held.push(stream);
    }
    // The 21st connection is accepted by the kernel but not served while all slots are held.
    let mut waiting = TcpStream::connect(addr).await.expect("connect");
    waiting
        .write_all(b"GET / HTTP/1.1\r\nHost: reviews\r\n\r\n")
        .await
        .expect("write");
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), waiting.peek(&mut byte)).await;
    assert!(early.is_err(), "served beyond the connection limit");
    // One slot frees up: the waiting client is served.
    drop(held.pop());
    let response = read_response(&mut waiting).await.expect("answered");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // The admin listener has its own slots.
    let admin = get(&client(), proxy.running.admin_addr, "admin", "admin-1").await;
    assert_ne!(admin.status, 0);
    drop(held);
    proxy.stop().await;
}

#[test]
fn the_admin_listener_is_on_loopback_by_default() {
    let config = mesh_proxy::Config::new("table.mtbl");
    assert!(config.admin.ip().is_loopback(), "{}", config.admin);
    assert!(config.listen.ip().is_loopback(), "{}", config.listen);
    let limits = config.limits;
    assert!(limits.max_connections >= 10_000, "{limits:?}");
}

#[test]
fn the_release_profile_unwinds_so_a_panicking_task_stays_contained() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
            .expect("workspace manifest");
    assert!(
        !manifest.contains("panic = \"abort\"") && !manifest.contains("panic=\"abort\""),
        "panic = \"abort\" would turn one connection's panic into the whole proxy's exit"
    );
}

// ---------------------------------------------------------------------------------------
// Downstream HTTP/1: the proxy's own server side

/// Reads one response from `conn`: its head, and its body by `content-length`, by chunks, or
/// (with neither) to the close; none for a response to HEAD. Returns (head, body).
async fn next_response<S: AsyncRead + Unpin>(
    conn: &mut Buffered<S>,
    to_head: bool,
) -> Option<(String, String)> {
    let head = read_head(conn).await?;
    let lengths = head_values(&head, "content-length");
    let chunked = !head_values(&head, "transfer-encoding").is_empty();
    let bodiless = to_head
        || head.starts_with("HTTP/1.1 1")
        || head.contains(" 204 ")
        || head.contains(" 304 ");
    let body = if bodiless {
        Vec::new()
    } else if chunked {
        let mut body = Vec::new();
        loop {
            let line = conn.take_until(b"\r\n").await?;
            let size = usize::from_str_radix(String::from_utf8_lossy(&line).trim(), 16).ok()?;
            if size == 0 {
                conn.take_until(b"\r\n").await?;
                break body;
            }
            let data = conn.take(size + 2).await?;
            body.extend_from_slice(&data[..size]);
        }
    } else if let Some(n) = lengths.first().and_then(|v| v.parse().ok()) {
        conn.take(n).await?
    } else {
        while conn.fill().await {}
        std::mem::take(&mut conn.buf)
    };
    Some((head, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_pipelining_bodies_expect_continue_and_http10() {
    let recorder = spawn_upstream(Behaviour::Recorder).await;
    let mut policy = numbered_service_entry("echo", &[recorder.addr]);
    policy.push_str(&virtual_service("echo", ""));
    let proxy = Proxy::start(&compile(&policy), mesh_proxy::Limits::default()).await;
    let stream = TcpStream::connect(proxy.addr()).await.expect("connect");
    let (reader, mut writer) = stream.into_split();
    let mut conn = Buffered::new(reader, CLIENT_PATIENCE);

    // Three requests in one write, the middle one HEAD: three responses, in order.
    writer
        .write_all(
            b"GET /one HTTP/1.1\r\nHost: echo\r\n\r\nHEAD /two HTTP/1.1\r\nHost: echo\r\n\r\n\
              GET /three HTTP/1.1\r\nHost: echo\r\n\r\n",
        )
        .await
        .expect("write");
    for (to_head, expected_body) in [(false, "recorded"), (true, ""), (false, "recorded")] {
        let (head, body) = next_response(&mut conn, to_head)
            .await
            .expect("a pipelined response");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(head_values(&head, "date").len(), 1, "{head}");
        assert_eq!(head_values(&head, "content-length"), ["8"], "{head}");
        assert_eq!(body, expected_body);
    }

    // A body far larger than one read streams through, in pieces, on the same connection.
    let big: String = (0..200_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    writer
        .write_all(
            format!(
                "POST /big HTTP/1.1\r\nHost: echo\r\nContent-Length: {}\r\n\r\n",
                big.len()
            )
            .as_bytes(),
        )
        .await
        .expect("write");
    for piece in big.as_bytes().chunks(30_000) {
        writer.write_all(piece).await.expect("write");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (head, _) = next_response(&mut conn, false)
        .await
        .expect("the POST's response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    // A chunked body whose chunk lines are split across writes.
    for piece in [
        "POST /chunked HTTP/1.1\r\nHost: echo\r\nTransfer-Encoding: chunked\r\n\r\n",
        "5\r",
        "\nhello\r\n",
        "6;ext=1\r\n world\r\n0\r\n",
        "\r\n",
    ] {
        writer.write_all(piece.as_bytes()).await.expect("write");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (head, _) = next_response(&mut conn, false)
        .await
        .expect("the chunked POST's response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    // Expect: 100-continue: the proxy says continue before the body is sent.
    writer
        .write_all(b"PUT /continue HTTP/1.1\r\nHost: echo\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        .await
        .expect("write");
    let interim = read_head(&mut conn).await.expect("an interim response");
    assert_eq!(interim, "HTTP/1.1 100 Continue\r\n\r\n");
    writer.write_all(b"body").await.expect("write");
    let (head, _) = next_response(&mut conn, false)
        .await
        .expect("the final response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    // Still the same connection: one more request, then the client says close.
    writer
        .write_all(b"GET /last HTTP/1.1\r\nHost: echo\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let (head, _) = next_response(&mut conn, false)
        .await
        .expect("the last response");
    assert_eq!(head_values(&head, "connection"), ["close"], "{head}");
    assert!(
        !conn.fill().await,
        "the proxy closes after `Connection: close`"
    );

    let received = recorder.received();
    let paths: Vec<&str> = received
        .iter()
        .map(|r| r.head.split(' ').nth(1).unwrap_or(""))
        .collect();
    assert_eq!(
        paths,
        [
            "/one",
            "/two",
            "/three",
            "/big",
            "/chunked",
            "/continue",
            "/last"
        ]
    );
    assert_eq!(received[3].body, big.as_bytes());
    assert_eq!(received[4].body, b"hello world");
    assert_eq!(received[5].body, b"body");
    // The proxy answered the expectation itself: it does not go upstream.
    assert!(
        head_values(&received[5].head, "expect").is_empty(),
        "{}",
        received[5].head
    );

    // CONNECT asks for a tunnel, which the proxy does not open.
    let response = raw_exchange(
        proxy.addr(),
        b"CONNECT echo:443 HTTP/1.1\r\nHost: echo:443\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 501"), "{response}");

    // HTTP/1.0: closed after the response unless the client asks to keep it alive.
    let response = raw_exchange(proxy.addr(), b"GET /ten HTTP/1.0\r\nHost: echo\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.ends_with("recorded"),
        "closed after the response: {response}"
    );
    let stream = TcpStream::connect(proxy.addr()).await.expect("connect");
    let (reader, mut writer) = stream.into_split();
    let mut conn = Buffered::new(reader, CLIENT_PATIENCE);
    for _ in 0..2 {
        writer
            .write_all(b"GET /ten-kept HTTP/1.0\r\nHost: echo\r\nConnection: keep-alive\r\n\r\n")
            .await
            .expect("write");
        let (head, body) = next_response(&mut conn, false)
            .await
            .expect("a kept-alive response");
        assert_eq!(head_values(&head, "connection"), ["keep-alive"], "{head}");
        assert_eq!(body, "recorded");
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_second_head_is_cut_and_a_client_that_leaves_cancels_its_request() {
    // An upstream that reads a request head, never answers, and notes when the proxy closes
    // the connection.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let upstream = listener.local_addr().expect("addr");
    let (closed_tx, mut closed_rx) = tokio::sync::mpsc::unbounded_channel::<Duration>();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let closed_tx = closed_tx.clone();
            tokio::spawn(async move {
                let mut conn = Buffered::new(stream, Duration::from_secs(30));
                if read_head(&mut conn).await.is_some() {
                    let asked = Instant::now();
                    while conn.fill().await {}
                    let _ = closed_tx.send(asked.elapsed());
                }
            });
        }
    });
    let (named, addrs) = reviews_upstreams().await;
    let mut policy = reviews_policy(&addrs, "v1");
    policy.push_str("---\n");
    policy.push_str(&numbered_service_entry("hang", &[upstream]));
    policy.push_str(&virtual_service("hang", "    timeout: 20s\n"));
    let proxy = Proxy::start(&compile(&policy), test_limits()).await;

    // The client sends its request and goes away: the proxy drops the upstream exchange.
    let mut stream = TcpStream::connect(proxy.addr()).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: hang\r\n\r\n")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(stream);
    let held = tokio::time::timeout(Duration::from_secs(10), closed_rx.recv())
        .await
        .expect("the upstream connection was closed")
        .expect("upstream task");
    assert!(
        held < Duration::from_secs(5),
        "held {held:?} after the client left"
    );

    // One request served, then the next head drips: closed within the header timeout
    // (400 ms here), well before the idle timeout would matter.
    let mut stream = TcpStream::connect(proxy.addr()).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: reviews\r\n\r\n")
        .await
        .expect("write");
    let response = read_response(&mut stream).await.expect("a response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let started = Instant::now();
    drip_head(&mut stream, Duration::from_secs(5)).await;
    assert!(closed_within(&mut stream, Duration::from_secs(1)).await);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(named[0].hits(), 1);
    proxy.stop().await;
}

/// A small deterministic generator for the mangled-request test (xorshift64*).
struct Mangler(u64);

impl Mangler {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// `base` with one to four random edits: a byte replaced, a token that matters to HTTP/1.1
    /// framing inserted, a range deleted or repeated, or the end cut off.
    fn mangle(&mut self, base: &[u8]) -> Vec<u8> {
        const TOKENS: &[&[u8]] = &[
            b"\r\n",
            b"\n",
            b"\r",
            b" ",
            b":",
            b"\0",
            b"\r\n\r\n",
            b"Content-Length: 3\r\n",
            b"Content-Length: 99999999999999999999\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"Transfer-Encoding: gzip\r\n",
            b"0\r\n\r\n",
            b"ffffffffffffffff\r\n",
            b"Host: echo\r\n",
            b"Connection: close\r\n",
            b"Expect: 100-continue\r\n",
            b"GET / HTTP/1.1\r\nHost: echo\r\n\r\n",
            b"HTTP/1.0",
            b"\xff\xfe",
        ];
        let mut wire = base.to_vec();
        for _ in 0..1 + self.below(4) {
            let at = self.below(wire.len() + 1);
            match self.below(5) {
                0 if at < wire.len() => wire[at] = self.next() as u8,
                1 => {
                    let token = TOKENS[self.below(TOKENS.len())];
                    wire.splice(at..at, token.iter().copied());
                }
                2 => {
                    let end = (at + 1 + self.below(8)).min(wire.len());
                    wire.drain(at..end);
                }
                3 => {
                    let end = (at + 1 + self.below(16)).min(wire.len());
                    let copy = wire[at..end].to_vec();
                    wire.splice(at..at, copy);
                }
                _ => wire.truncate(at),
            }
        }
        wire
    }
}

/// What a client that sent mangled bytes read back: the status of each whole response, or
/// why the bytes were not a sequence of whole HTTP/1.x responses ending at the close.
async fn whole_responses<S: AsyncRead + Unpin>(conn: &mut Buffered<S>) -> Result<Vec<u16>, String> {
    let mut statuses = Vec::new();
    loop {
        let Some(head) = read_head(conn).await else {
            return if conn.buf.is_empty() {
                Ok(statuses)
            } else {
                Err(format!(
                    "bytes that are not a response head: {:?}",
                    String::from_utf8_lossy(&conn.buf)
                ))
            };
        };
        let status = head
            .strip_prefix("HTTP/1.1 ")
            .or_else(|| head.strip_prefix("HTTP/1.0 "))
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| format!("not a status line: {head:?}"))?;
        statuses.push(status);
        let lengths = head_values(&head, "content-length");
        let chunked = !head_values(&head, "transfer-encoding").is_empty();
        if (100..200).contains(&status) || status == 204 || status == 304 {
            continue;
        }
        if chunked {
            loop {
                let line = conn.take_until(b"\r\n").await.ok_or("a chunk cut short")?;
                let size = usize::from_str_radix(String::from_utf8_lossy(&line).trim(), 16)
                    .map_err(|_| format!("not a chunk size: {line:?}"))?;
                if size == 0 {
                    conn.take_until(b"\r\n")
                        .await
                        .ok_or("the last chunk cut short")?;
                    break;
                }
                conn.take(size + 2).await.ok_or("a chunk cut short")?;
            }
        } else if let Some(length) = lengths.first() {
            let length: usize = length
                .parse()
                .map_err(|_| format!("bad content-length in {head:?}"))?;
            conn.take(length)
                .await
                .ok_or_else(|| format!("a body cut short after {head:?}"))?;
        } else {
            // Delimited by the close: whatever comes is its body.
            while conn.fill().await {}
            conn.buf.clear();
        }
    }
}

/// Whether a request head as the upstream received it is well formed: a request line of
/// method, target and HTTP/1.1, and field lines of a token name and a value without control
/// characters, each line ended by CRLF.
fn well_formed_upstream_head(head: &str) -> bool {
    let Some(fields) = head.strip_suffix("\r\n\r\n") else {
        return false;
    };
    let mut lines = fields.split("\r\n");
    let request_line: Vec<&str> = lines.next().unwrap_or("").split(' ').collect();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    request_line.len() == 3
        && token(request_line[0])
        && !request_line[1].is_empty()
        && request_line[1]
            .bytes()
            .all(|b| b.is_ascii_graphic() || b >= 0x80)
        && request_line[2] == "HTTP/1.1"
        && lines.all(|line| {
            line.split_once(':').is_some_and(|(name, value)| {
                token(name) && value.bytes().all(|b| b == b'\t' || b >= b' ' && b != 0x7f)
            })
        })
}

/// Limits for the mangled-request test: timeouts long enough that they never close its
/// connections.
fn mangling_limits() -> mesh_proxy::Limits {
    mesh_proxy::Limits {
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(10),
        ..mesh_proxy::Limits::default()
    }
}

/// Writes `wire` to the proxy in `pieces`, half-closes, and reads what comes back until the
/// proxy closes the connection (at most 5 s).
async fn mangled_exchange(
    addr: SocketAddr,
    wire: Vec<u8>,
    pieces: Vec<usize>,
) -> (Vec<u8>, Result<Vec<u16>, String>) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (reader, mut writer) = stream.into_split();
    let mut at = 0;
    for piece in pieces {
        if writer.write_all(&wire[at..at + piece]).await.is_err() {
            break;
        }
        at += piece;
    }
    // Half-close: the proxy sees the end of the client's bytes, and has to answer what it can
    // and close, not wait for more.
    let _ = writer.shutdown().await;
    // The proxy's timeouts are 10 s here (`mangling_limits`): a close within 5 s is the proxy
    // acting on the end of the client's bytes, not a timeout. (A silence of 8 s would end the
    // reads as if closed, so the 5 s bound comes first.)
    let mut conn = Buffered::new(reader, Duration::from_secs(8));
    let outcome = tokio::time::timeout(Duration::from_secs(5), whole_responses(&mut conn))
        .await
        .unwrap_or_else(|_| Err("no close within 5 s of the client's end".to_owned()));
    (wire, outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mangled_requests_get_whole_answers_then_a_close_and_the_proxy_stays_up() {
    let recorder = spawn_upstream(Behaviour::Recorder).await;
    let mut policy = numbered_service_entry("echo", &[recorder.addr]);
    policy.push_str(&virtual_service(
        "echo",
        "    retries:\n      attempts: 0\n",
    ));
    let proxy = Proxy::start(&compile(&policy), mangling_limits()).await;
    let addr = proxy.addr();
    // No HEAD: its response's length would not tell where the next response starts.
    let bases: &[&[u8]] = &[
        b"GET /a?b=c HTTP/1.1\r\nHost: echo\r\nX-A: 1\r\nX-B: 2\r\n\r\n",
        b"POST /post HTTP/1.1\r\nHost: echo\r\nContent-Length: 5\r\n\r\nhello",
        b"PUT /chunked HTTP/1.1\r\nHost: echo\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer-A: 1\r\n\r\n",
        b"GET /one HTTP/1.1\r\nHost: echo\r\n\r\nGET /two HTTP/1.1\r\nHost: echo\r\n\r\nDELETE /three HTTP/1.1\r\nHost: echo\r\nContent-Length: 1\r\n\r\nx",
        b"GET /ten HTTP/1.0\r\nHost: echo\r\nConnection: keep-alive\r\n\r\nGET /ten-again HTTP/1.0\r\nHost: echo\r\n\r\n",
        b"POST /continue HTTP/1.1\r\nHost: echo\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
        b"GET http://echo/absolute?q HTTP/1.1\r\nHost: other\r\nConnection: keep-alive, x-hop\r\nx-hop: 1\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: echo\r\n\r\n",
    ];
    const CONNECTIONS: usize = 2_000;
    const AT_ONCE: usize = 16;
    let mut mangler = Mangler(0x9e37_79b9_7f4a_7c15);
    let inputs: Vec<(Vec<u8>, Vec<usize>)> = (0..CONNECTIONS)
        .map(|i| {
            let base = bases[i % bases.len()];
            // Every eighth input goes as it is: the control that the bases are served.
            let wire = if i % 8 == 7 {
                base.to_vec()
            } else {
                mangler.mangle(base)
            };
            // Written in pieces of 1 to 48 bytes, as a slow or odd client may.
            let mut pieces = Vec::new();
            let mut left = wire.len();
            while left > 0 {
                let piece = (1 + mangler.below(48)).min(left);
                pieces.push(piece);
                left -= piece;
            }
            (wire, pieces)
        })
        .collect();
    let started = Instant::now();
    let mut statuses: std::collections::BTreeMap<u16, usize> = Default::default();
    for batch in inputs.chunks(AT_ONCE) {
        let clients: Vec<_> = batch
            .iter()
            .cloned()
            .map(|(wire, pieces)| tokio::spawn(mangled_exchange(addr, wire, pieces)))
            .collect();
        for client in clients {
            let (wire, outcome) = client.await.expect("client task");
            match outcome {
                Ok(codes) => {
                    for code in codes {
                        *statuses.entry(code).or_default() += 1;
                    }
                }
                Err(why) => panic!(
                    "{why}\nfor the client bytes {:?}",
                    String::from_utf8_lossy(&wire)
                ),
            }
        }
    }
    let elapsed = started.elapsed();
    // The unmangled inputs were answered (200 from the upstream), and the mangled ones met
    // the proxy's refusals. A gateway error would mean the proxy broke a request on its way
    // to an upstream that answers everything it can parse.
    assert!(
        statuses.get(&200).copied().unwrap_or(0) >= CONNECTIONS / 8,
        "{statuses:?}"
    );
    assert!(statuses.get(&400).copied().unwrap_or(0) > 0, "{statuses:?}");
    assert!(
        statuses.keys().all(|code| matches!(
            code,
            100 | 200 | 400 | 404 | 411 | 413 | 414 | 431 | 501 | 505
        )),
        "{statuses:?}"
    );
    // The proxy still serves, and what it sent upstream was well formed, every time.
    let answer = get(&client(), addr, "echo", "after-mangling").await;
    assert_eq!(
        (answer.status, answer.body.as_deref()),
        (200, Ok("recorded"))
    );
    let received = recorder.received();
    assert!(received.len() >= CONNECTIONS / 8, "{}", received.len());
    for request in &received {
        assert!(
            well_formed_upstream_head(&request.head),
            "{:?}",
            request.head
        );
    }
    eprintln!(
        "{CONNECTIONS} mangled connections in {elapsed:?}: statuses {statuses:?}, {} requests upstream",
        received.len()
    );
    proxy.stop().await;
}
