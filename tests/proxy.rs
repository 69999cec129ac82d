//! End to end: a policy repo written by the test -> meshc -> artifact -> mesh-proxy (in
//! process, ephemeral ports) -> real loopback upstreams started by the test.
//!
//! Every loop is bounded by count and time; each test stops the proxy it started, and the
//! upstreams end with the test's runtime.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_e2e::{service_entry, write_atomically};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How a test upstream answers.
#[derive(Clone, Copy)]
enum Behaviour {
    /// 200 with its name as the body.
    Named(&'static str),
    /// 500 on odd hits, 200 on even ones.
    FailEveryOther,
    NotFound,
    /// Never answers.
    Hang,
    /// Always 500.
    Fail,
    /// 200 with the request's headers as `name: value` lines, sorted.
    Echo,
}

struct Upstream {
    addr: SocketAddr,
    hits: Arc<AtomicU64>,
    last_host: Arc<std::sync::Mutex<String>>,
}

async fn spawn_upstream(behaviour: Behaviour) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("upstream address");
    let hits = Arc::new(AtomicU64::new(0));
    let last_host = Arc::new(std::sync::Mutex::new(String::new()));
    let counter = hits.clone();
    let host_seen = last_host.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counter = counter.clone();
            let host_seen = host_seen.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let hit = counter.fetch_add(1, Ordering::SeqCst) + 1;
                    if let Ok(mut last) = host_seen.lock() {
                        req.headers()
                            .get("host")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .clone_into(&mut last);
                    }
                    let mut echoed: Vec<String> = req
                        .headers()
                        .iter()
                        .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?")))
                        .collect();
                    echoed.push(format!(
                        ":path: {}",
                        req.uri().path_and_query().map_or("/", |p| p.as_str())
                    ));
                    echoed.sort();
                    async move {
                        let (status, body) = answer(behaviour, hit, echoed.join("\n")).await;
                        let mut response =
                            Response::new(http_body_util::Full::new(Bytes::from(body)));
                        *response.status_mut() = StatusCode::from_u16(status).expect("status");
                        response.headers_mut().insert(
                            "x-served-by",
                            hyper::header::HeaderValue::from_static("test upstream"),
                        );
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Upstream {
        addr,
        hits,
        last_host,
    }
}

async fn answer(behaviour: Behaviour, hit: u64, echoed: String) -> (u16, String) {
    match behaviour {
        Behaviour::Named(name) => (200, name.to_owned()),
        Behaviour::FailEveryOther if hit % 2 == 1 => (500, "flaky: failed".to_owned()),
        Behaviour::FailEveryOther => (200, "flaky: ok".to_owned()),
        Behaviour::NotFound => (404, "not here".to_owned()),
        Behaviour::Fail => (500, "failed".to_owned()),
        Behaviour::Echo => (200, echoed),
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            (200, "too late".to_owned())
        }
    }
}

const REVIEWS_RULES: &str = r#"apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
  - name: v3
    labels:
      version: v3
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - name: jason
    match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination:
        host: reviews
        subset: v2
  - name: signed-in-ab-test
    match:
    - headers:
        end-user:
          regex: ".+"
    route:
    - destination:
        host: reviews
        subset: v2
      weight: 50
    - destination:
        host: reviews
        subset: v3
      weight: 50
  - name: default
    route:
    - destination:
        host: reviews
        subset: DEFAULT_SUBSET
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: slow
spec:
  hosts:
  - slow
  http:
  - name: jason-delay
    match:
    - headers:
        end-user:
          exact: jason
    fault:
      delay:
        percentage:
          value: 100.0
        fixedDelay: 200ms
    route:
    - destination:
        host: slow
  - name: default
    route:
    - destination:
        host: slow
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: aborts
spec:
  hosts:
  - aborts
  http:
  - name: abort-30
    fault:
      abort:
        percentage:
          value: 30.0
        httpStatus: 503
    route:
    - destination:
        host: aborts
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - name: default
    retries:
      attempts: 3
      retryOn: 5xx
    route:
    - destination:
        host: ratings
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: missing
spec:
  hosts:
  - missing
  http:
  - name: default
    retries:
      attempts: 3
      retryOn: 5xx,connect-failure
    route:
    - destination:
        host: missing
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: hang
spec:
  hosts:
  - hang
  http:
  - name: default
    timeout: 300ms
    route:
    - destination:
        host: hang
"#;

/// Header operations, mirrors, CORS, redirect, direct response, connection pool limits,
/// outlier detection and load balancers.
const EXTRA_RULES: &str = r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: rewrite
spec:
  hosts:
  - rewrite
  http:
  - name: api
    match:
    - uri:
        prefix: /api
    rewrite:
      uri: /v2
      authority: internal
    route:
    - destination:
        host: rewrite
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: hangretry
spec:
  hosts:
  - hangretry
  http:
  - name: per-try
    timeout: 2s
    retries:
      attempts: 2
      perTryTimeout: 100ms
      retryOn: 5xx
    route:
    - destination:
        host: hangretry
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: echo
spec:
  hosts:
  - echo
  http:
  - name: echo
    headers:
      request:
        set:
          x-added: "yes"
        remove:
        - x-secret
      response:
        set:
          x-resp: "1"
    corsPolicy:
      allowOrigins:
      - exact: https://ok.example
      allowMethods:
      - GET
      - POST
      maxAge: 60s
    mirror:
      host: shadow
    mirrorPercentage:
      value: 100.0
    route:
    - destination:
        host: echo
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: moved
spec:
  hosts:
  - moved
  http:
  - name: moved
    redirect:
      uri: /new
      authority: other.example
      redirectCode: 302
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: fixed
spec:
  hosts:
  - fixed
  http:
  - name: fixed
    directResponse:
      status: 418
      body:
        string: short and stout
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: pool
spec:
  host: pool
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: 1
      http:
        http1MaxPendingRequests: 1
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: pool
spec:
  hosts:
  - pool
  http:
  - name: pool
    timeout: 500ms
    route:
    - destination:
        host: pool
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: outlier
spec:
  host: outlier
  trafficPolicy:
    outlierDetection:
      consecutive5xxErrors: 2
      interval: 1s
      baseEjectionTime: 30s
      maxEjectionPercent: 50
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: outlier
spec:
  hosts:
  - outlier
  http:
  - name: outlier
    retries:
      attempts: 0
    route:
    - destination:
        host: outlier
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: sticky
spec:
  host: sticky
  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpHeaderName: x-user
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: leastreq
spec:
  host: leastreq
  trafficPolicy:
    loadBalancer:
      simple: LEAST_REQUEST
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: random
spec:
  host: random
  trafficPolicy:
    loadBalancer:
      simple: RANDOM
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: sticky
spec:
  hosts:
  - sticky
  http:
  - route:
    - destination:
        host: sticky
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: leastreq
spec:
  hosts:
  - leastreq
  http:
  - route:
    - destination:
        host: leastreq
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: random
spec:
  hosts:
  - random
  http:
  - route:
    - destination:
        host: random
"#;

/// The upstreams and the compiled tables of one test.
struct World {
    upstreams: BTreeMap<&'static str, Upstream>,
    dir: tempfile::TempDir,
    table_path: PathBuf,
}

impl World {
    async fn new() -> World {
        let mut upstreams = BTreeMap::new();
        for (name, behaviour) in [
            ("reviews-v1", Behaviour::Named("reviews-v1")),
            ("reviews-v2", Behaviour::Named("reviews-v2")),
            ("reviews-v3", Behaviour::Named("reviews-v3")),
            ("slow", Behaviour::Named("slow")),
            ("aborts", Behaviour::Named("aborts")),
            ("ratings", Behaviour::FailEveryOther),
            ("missing", Behaviour::NotFound),
            ("hang", Behaviour::Hang),
            ("echo", Behaviour::Echo),
            ("shadow", Behaviour::Echo),
            ("bad", Behaviour::Fail),
        ] {
            upstreams.insert(name, spawn_upstream(behaviour).await);
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let table_path = dir.path().join("table.mtbl");
        let world = World {
            upstreams,
            dir,
            table_path,
        };
        let bytes = world.compile("v1");
        write_atomically(&world.table_path, &bytes);
        world
    }

    fn addr(&self, name: &str) -> SocketAddr {
        self.upstreams[name].addr
    }

    fn hits(&self, name: &str) -> u64 {
        self.upstreams[name].hits.load(Ordering::SeqCst)
    }

    /// Writes the policy repo (default reviews subset as given) and compiles it with meshc.
    fn compile(&self, default_subset: &str) -> Vec<u8> {
        let repo = self.dir.path().join(format!("policy-{default_subset}"));
        std::fs::create_dir_all(&repo).expect("policy dir");
        let mut services = service_entry(
            "reviews",
            &[
                ("v1", self.addr("reviews-v1")),
                ("v2", self.addr("reviews-v2")),
                ("v3", self.addr("reviews-v3")),
            ],
        );
        for name in [
            "slow", "aborts", "ratings", "missing", "hang", "echo", "shadow",
        ] {
            services.push_str(&service_entry(name, &[("v1", self.addr(name))]));
        }
        for (name, target) in [
            ("moved", "echo"),
            ("fixed", "echo"),
            ("pool", "hang"),
            ("rewrite", "echo"),
            ("hangretry", "hang"),
        ] {
            services.push_str(&service_entry(name, &[("v1", self.addr(target))]));
        }
        services.push_str(&service_entry(
            "outlier",
            &[("good", self.addr("reviews-v1")), ("bad", self.addr("bad"))],
        ));
        let three = [
            ("v1", self.addr("reviews-v1")),
            ("v2", self.addr("reviews-v2")),
            ("v3", self.addr("reviews-v3")),
        ];
        for name in ["sticky", "leastreq", "random"] {
            services.push_str(&service_entry(name, &three));
        }
        std::fs::write(repo.join("services.yaml"), services).expect("write services");
        std::fs::write(
            repo.join("rules.yaml"),
            REVIEWS_RULES.replace("DEFAULT_SUBSET", default_subset),
        )
        .expect("write rules");
        std::fs::write(repo.join("extras.yaml"), EXTRA_RULES).expect("write extras");
        let checked = meshc::check::check_paths(&[repo], &meshc::check::Settings::default())
            .expect("the policy repo reads");
        assert!(
            !checked.has_errors(),
            "the test policy has errors: {:#?}",
            checked.diagnostics
        );
        meshc::compile::build(&checked).expect("the test policy compiles")
    }

    async fn start_proxy(&self) -> mesh_proxy::Running {
        let mut config = mesh_proxy::Config::new(&self.table_path);
        config.listen = "127.0.0.1:0".parse().expect("addr");
        config.admin = "127.0.0.1:0".parse().expect("addr");
        config.poll_interval = Duration::from_millis(100);
        config.grace = Duration::from_secs(2);
        mesh_proxy::start(config).await.expect("the proxy starts")
    }
}

type TestClient = Client<HttpConnector, Empty<Bytes>>;

fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

struct Answer {
    status: u16,
    headers: hyper::HeaderMap,
    body: String,
    elapsed: Duration,
}

async fn get(
    client: &TestClient,
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    send(client, "GET", addr, host, path, headers).await
}

async fn send(
    client: &TestClient,
    method: &str,
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("host", host);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(Empty::new()).expect("request");
    let started = Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .expect("the proxy answers within 10 s")
        .expect("the request goes through");
    let status = response.status().as_u16();
    let response_headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Answer {
        status,
        headers: response_headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// Sends `n` requests from `tasks` concurrent tasks and returns every answer's (status, body).
async fn many(
    client: &TestClient,
    addr: SocketAddr,
    host: &'static str,
    headers: &'static [(&'static str, &'static str)],
    n: usize,
    tasks: usize,
) -> Vec<(u16, String)> {
    let mut handles = Vec::new();
    for t in 0..tasks {
        let client = client.clone();
        let count = n / tasks + usize::from(t < n % tasks);
        handles.push(tokio::spawn(async move {
            let mut answers = Vec::with_capacity(count);
            for _ in 0..count {
                let a = get(&client, addr, host, "/", headers).await;
                answers.push((a.status, a.body));
            }
            answers
        }));
    }
    let mut all = Vec::with_capacity(n);
    for handle in handles {
        all.extend(handle.await.expect("request task"));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_match_routes_jason_to_v2_every_time() {
    let world = World::new().await;
    let proxy = world.start_proxy().await;
    let client = client();
    for answer in many(
        &client,
        proxy.listen_addr,
        "reviews",
        &[("end-user", "jason")],
        200,
        4,
    )
    .await
    {
        assert_eq!(answer, (200, "reviews-v2".to_owned()));
    }
    let anonymous = get(&client, proxy.listen_addr, "reviews", "/", &[]).await;
    assert_eq!(
        (anonymous.status, anonymous.body.as_str()),
        (200, "reviews-v1")
    );
    let with_port = get(
        &client,
        proxy.listen_addr,
        "reviews.default.svc.cluster.local:9080",
        "/",
        &[],
    )
    .await;
    assert_eq!(
        (with_port.status, with_port.body.as_str()),
        (200, "reviews-v1")
    );
    let unknown = get(&client, proxy.listen_addr, "nobody.example", "/", &[]).await;
    assert_eq!(unknown.status, 404, "no virtual host -> 404 NR");

    // The upstream's fields reach the client whatever it speaks: as they arrived on
    // HTTP/1.1, parsed into HTTP/2 fields on h2c.
    let http1 = get(
        &client,
        proxy.listen_addr,
        "reviews",
        "/",
        &[("end-user", "jason")],
    )
    .await;
    let tcp = tokio::net::TcpStream::connect(proxy.listen_addr)
        .await
        .expect("connect");
    let (mut h2, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("h2c handshake");
    tokio::spawn(connection);
    let request = Request::builder()
        .uri("http://reviews/")
        .header("end-user", "jason")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let response = h2.send_request(request).await.expect("h2c response");
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    let http2 = Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: String::from_utf8_lossy(
            &response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes(),
        )
        .into_owned(),
        elapsed: Duration::ZERO,
    };
    for (answer, version) in [(http1, "HTTP/1.1"), (http2, "h2c")] {
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (200, "reviews-v2"),
            "{version}"
        );
        assert_eq!(
            header(&answer, "x-served-by"),
            Some("test upstream"),
            "{version}"
        );
        assert_eq!(
            answer.headers.get_all("date").iter().count(),
            1,
            "{version}"
        );
        assert_eq!(header(&answer, "content-length"), Some("10"), "{version}");
    }
    proxy.shutdown().await;
}

/// CPU time of this thread so far, from /proc (user plus system, in USER_HZ ticks of 10 ms).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("/proc/thread-self/stat");
    // The fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..]
        .split(' ')
        .collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_millis(ticks * 10)
}

/// `mesh-proxy --workers 1` busy-polls before its worker sleeps (`busy_poll.rs`). On such a
/// runtime the proxy serves as on any other, its spinner catches work that would have found
/// the worker asleep, and once the traffic stops it stops spinning.
#[test]
fn busy_polling_worker_serves_catches_work_and_rests_when_idle() {
    // Upstreams and clients on threads of their own; the proxy alone on this thread, the
    // busy-polling runtime's worker, as the binary runs it.
    let others = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the other runtime");
    let world = others.block_on(World::new());
    // A longest window of 1 ms, so that wake-ups on a busy test machine still fall inside it.
    let runtime = mesh_proxy::busy_poll::runtime(Duration::from_millis(1)).expect("runtime");
    let pause = |time| runtime.block_on(async move { tokio::time::sleep(time).await });
    let proxy = runtime.block_on(world.start_proxy());
    let addr = proxy.listen_addr;
    let load = others.spawn(async move {
        let client = client();
        many(&client, addr, "reviews", &[("end-user", "jason")], 2_000, 8).await
    });
    let answers = runtime.block_on(load).expect("the load finishes");
    assert_eq!(answers.len(), 2_000);
    assert!(
        answers
            .iter()
            .all(|answer| *answer == (200, "reviews-v2".to_owned())),
        "every request as jason reaches reviews v2"
    );
    // Let the last connection polls after the load run before counting.
    pause(Duration::from_millis(200));
    let busy = mesh_proxy::busy_poll::stats().expect("this thread busy-polls");
    assert!(
        busy.spins > 0 && busy.caught > 0,
        "the spinner spun and caught work under load: {busy:?}"
    );
    // The worker serves /metrics too, with the spinner's counts.
    let admin = proxy.admin_addr;
    let metrics = others.spawn(async move {
        get(&client(), admin, "localhost", "/metrics", &[])
            .await
            .body
    });
    let metrics = runtime.block_on(metrics).expect("/metrics answers");
    let saved = metrics
        .lines()
        .find_map(|line| line.strip_prefix("mesh_proxy_busy_poll_wakeups_saved_total "))
        .and_then(|value| value.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no wake-ups saved in /metrics:\n{metrics}"));
    assert!(saved >= busy.caught, "{saved} wake-ups saved, {busy:?}");
    assert!(
        metrics.contains("\nmesh_proxy_busy_poll_idle_seconds_total "),
        "/metrics has the busy polling's cost"
    );

    // Idle for a second: the worker wakes only for timers (the table's identity every 100 ms,
    // connection watches), each long sleep halves the window, and the spinner stops. A spinner
    // that did not wait for the worker to wake between spins would poll for its whole budget,
    // a quarter of the time: 250 ms.
    pause(Duration::from_millis(200));
    let rested = mesh_proxy::busy_poll::stats().expect("this thread busy-polls");
    let before = thread_cpu();
    pause(Duration::from_secs(1));
    let idle_cpu = thread_cpu() - before;
    assert!(
        idle_cpu <= Duration::from_millis(100),
        "an idle busy-polling worker used {idle_cpu:?} of CPU in one second"
    );
    let after = mesh_proxy::busy_poll::stats().expect("this thread busy-polls");
    // The window closes: over the second, polling that found nothing adds up to little (about
    // 0.3 ms here). A spinner that ignored its window would poll until each budget ran out.
    let polled = after.idle - rested.idle;
    assert!(
        polled <= Duration::from_millis(10),
        "an idle busy-polling worker polled for {polled:?} in one second"
    );
    assert_eq!(
        after.caught, rested.caught,
        "no traffic, nothing to catch: {after:?}"
    );
    runtime.block_on(proxy.shutdown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_split_holds_within_tolerance() {
    let world = World::new().await;
    let proxy = world.start_proxy().await;
    let client = client();
    let answers = many(
        &client,
        proxy.listen_addr,
        "reviews",
        &[("end-user", "someone")],
        2000,
        8,
    )
    .await;
    let v2 = answers
        .iter()
        .filter(|(s, b)| *s == 200 && b == "reviews-v2")
        .count();
    let v3 = answers
        .iter()
        .filter(|(s, b)| *s == 200 && b == "reviews-v3")
        .count();
    assert_eq!(v2 + v3, 2000, "every request reaches v2 or v3");
    assert!(
        (900..=1100).contains(&v2),
        "v2 got {v2} of 2000, v3 got {v3}"
    );
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_fires_for_jason_only() {
    let world = World::new().await;
    let proxy = world.start_proxy().await;
    let client = client();
    for _ in 0..3 {
        let jason = get(
            &client,
            proxy.listen_addr,
            "slow",
            "/",
            &[("end-user", "jason")],
        )
        .await;
        assert_eq!(jason.status, 200);
        assert!(
            jason.elapsed >= Duration::from_millis(200),
            "jason waited {:?}",
            jason.elapsed
        );
        assert!(
            jason.elapsed < Duration::from_millis(1500),
            "jason waited {:?}",
            jason.elapsed
        );
        let other = get(
            &client,
            proxy.listen_addr,
            "slow",
            "/",
            &[("end-user", "mary")],
        )
        .await;
        assert_eq!(other.status, 200);
        assert!(
            other.elapsed < Duration::from_millis(150),
            "mary waited {:?}",
            other.elapsed
        );
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_fires_at_its_percentage() {
    let world = World::new().await;
    let proxy = world.start_proxy().await;
    let client = client();
    let answers = many(&client, proxy.listen_addr, "aborts", &[], 2000, 8).await;
    let aborted = answers.iter().filter(|(s, _)| *s == 503).count();
    let served = answers
        .iter()
        .filter(|(s, b)| *s == 200 && b == "aborts")
        .count();
    assert_eq!(aborted + served, 2000);
    // 30% ± 4%.
    assert!((520..=680).contains(&aborted), "{aborted} of 2000 aborted");
    assert_eq!(
        world.hits("aborts"),
        served as u64,
        "aborted requests never reach the upstream"
    );
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_turn_a_flaky_upstream_into_success_but_never_retry_404() {
    let world = World::new().await;
    let proxy = world.start_proxy().await;
    let client = client();
    for i in 0..50 {
        let answer = get(&client, proxy.listen_addr, "ratings", "/", &[]).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (200, "flaky: ok"),
            "request {i}"
        );
    }
    assert_eq!(
        world.hits("ratings"),
        100,
        "one failed try and one retry per request"
    );
    for _ in 0..20 {
        let answer = get(&client, proxy.listen_addr, "missing", "/", &[]).await;
        assert_eq!(answer.status, 404);
    }
    assert_eq!(world.hits("missing"), 20, "a 404 is not retried");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_upstream_gives_504_at_the_route_timeout() {
    let world = World::new().await;
    let proxy = world.start_proxy().await;
    let client = client();
    let answer = get(&client, proxy.listen_addr, "hang", "/", &[]).await;
    assert_eq!(answer.status, 504);
    assert!(
        answer.elapsed >= Duration::from_millis(290),
        "{:?}",
        answer.elapsed
    );
    assert!(
        answer.elapsed <= Duration::from_millis(1500),
        "{:?}",
        answer.elapsed
    );
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_swap_under_load_fails_no_request() {
    let world = World::new().await;
    let table_v1 = std::fs::read(&world.table_path).expect("table");
    let table_v3 = world.compile("v3");
    let proxy = world.start_proxy().await;
    let client = client();
    let addr = proxy.listen_addr;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut loaders = Vec::new();
    for _ in 0..4 {
        let client = client.clone();
        let stop = stop.clone();
        loaders.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            let started = Instant::now();
            // Bounded by count and by time, whatever the swapper does.
            while !stop.load(Ordering::Relaxed)
                && answers.len() < 5000
                && started.elapsed() < Duration::from_secs(20)
            {
                let a = get(&client, addr, "reviews", "/", &[]).await;
                answers.push((a.status, a.body));
            }
            answers
        }));
    }
    for i in 0..10 {
        let bytes = if i % 2 == 0 { &table_v3 } else { &table_v1 };
        write_atomically(&world.table_path, bytes);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for loader in loaders {
        all.extend(loader.await.expect("load task"));
    }
    assert!(all.len() >= 100, "only {} requests were sent", all.len());
    let failed: Vec<_> = all
        .iter()
        .filter(|(s, _)| !(200..300).contains(s))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed: {:?}",
        failed.len(),
        all.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(
        all.iter().any(|(_, b)| b == "reviews-v1") && all.iter().any(|(_, b)| b == "reviews-v3")
    );
    assert!(proxy.shared.reloads_ok.load(Ordering::Relaxed) >= 5);
    assert_eq!(proxy.shared.reloads_failed.load(Ordering::Relaxed), 0);
    proxy.shutdown().await;
}

async fn admin_get(client: &TestClient, proxy: &mesh_proxy::Running, path: &str) -> Answer {
    get(client, proxy.admin_addr, "admin", path, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_table_is_refused_and_the_old_one_keeps_serving() {
    let world = World::new().await;
    let proxy = world.start_proxy().await;
    let client = client();
    let mut corrupt = std::fs::read(&world.table_path).expect("table");
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    write_atomically(&world.table_path, &corrupt);
    let started = Instant::now();
    while proxy.shared.reloads_failed.load(Ordering::Relaxed) == 0
        && started.elapsed() < Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Give the watcher a few more polls: the same bad file must be counted once.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let table = admin_get(&client, &proxy, "/table").await;
    assert_eq!(table.status, 200);
    assert!(
        table.body.contains("\"reloads_failed\":1"),
        "{}",
        table.body
    );
    assert!(table.body.contains("\"reloads_ok\":0"), "{}", table.body);
    let answer = get(
        &client,
        proxy.listen_addr,
        "reviews",
        "/",
        &[("end-user", "jason")],
    )
    .await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "reviews-v2"));
    assert_eq!(
        admin_get(&client, &proxy, "/healthz/ready").await.status,
        200
    );
    proxy.shutdown().await;
}

/// Sends raw bytes to the proxy on a new connection and reads until it closes.
async fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
        .await
        .expect("answer in time")
        .expect("read");
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_form_routes_by_its_authority() {
    let world = World::new().await;
    let proxy = world.start_proxy().await;
    // RFC 9112 §3.2.2: with an absolute-form target, Host is ignored.
    let response = raw_exchange(
        proxy.listen_addr,
        b"GET http://reviews:9080/x HTTP/1.1\r\nHost: nobody.example\r\nend-user: jason\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("reviews-v2"), "{response}");

    // An empty path goes upstream as `/` (RFC 9112 §3.2.1): `http://echo?q=1` becomes
    // `/?q=1`, not `?q=1`, which the upstream would refuse (found by the request_wire fuzz
    // target).
    let response = raw_exchange(
        proxy.listen_addr,
        b"GET http://echo?q=1 HTTP/1.1\r\nHost: echo\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\n:path: /?q=1\n"), "{response}");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_answer() {
    let world = World::new().await;
    let proxy = world.start_proxy().await;
    let client = client();
    assert_eq!(
        admin_get(&client, &proxy, "/healthz/live").await.status,
        200
    );
    assert_eq!(
        admin_get(&client, &proxy, "/healthz/ready").await.status,
        200
    );
    assert_eq!(admin_get(&client, &proxy, "/nothing").await.status, 404);
    let table = admin_get(&client, &proxy, "/table").await;
    assert_eq!(table.status, 200);
    for key in [
        "\"format_version\":",
        "\"content_hash\":\"",
        "\"loaded_at_unix_ms\":",
        "\"size_bytes\":",
        "\"reloads_ok\":0",
        "\"reloads_failed\":0",
        "\"virtual_hosts\":",
        "\"routes\":",
        "\"clusters\":",
    ] {
        assert!(
            table.body.contains(key),
            "{key} missing from {}",
            table.body
        );
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_refuses_a_missing_or_corrupt_table() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.mtbl");
    let err = mesh_proxy::start(mesh_proxy::Config::new(&missing))
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("cannot read table"), "{err}");
    let corrupt = dir.path().join("corrupt.mtbl");
    std::fs::write(&corrupt, b"not a table at all, not even close").expect("write");
    let err = mesh_proxy::start(mesh_proxy::Config::new(&corrupt))
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("is invalid"), "{err}");
}

fn header<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
    answer.headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_header_operations_and_mirror() {
    let world = World::new().await;
    let proxy = world.start_proxy().await;
    let client = client();
    let answer = get(
        &client,
        proxy.listen_addr,
        "echo",
        "/hello?x=1",
        &[
            ("x-secret", "s3cret"),
            ("connection", "x-hop"),
            ("x-hop", "1"),
            ("x-forwarded-for", "10.1.2.3"),
        ],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let seen: Vec<&str> = answer.body.lines().collect();
    assert!(seen.contains(&"x-added: yes"), "{seen:?}");
    assert!(
        seen.contains(&"x-forwarded-for: 10.1.2.3, 127.0.0.1"),
        "{seen:?}"
    );
    assert!(seen.contains(&"x-forwarded-proto: http"), "{seen:?}");
    assert!(
        seen.iter().any(|l| l.starts_with("x-request-id: ")),
        "{seen:?}"
    );
    assert!(seen.contains(&"host: echo"), "{seen:?}");
    for gone in ["x-secret", "x-hop", "connection: x-hop"] {
        assert!(
            !seen.iter().any(|l| l.starts_with(gone)),
            "{gone} forwarded: {seen:?}"
        );
    }
    assert_eq!(header(&answer, "x-resp"), Some("1"));
    // The upstream's own fields stay beside the ones the route adds.
    assert_eq!(header(&answer, "x-served-by"), Some("test upstream"));
    // The mirror is fire-and-forget: wait (bounded) for the shadow to see it.
    let started = Instant::now();
    while world.hits("shadow") == 0 && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(world.hits("shadow"), 1);
    let shadow_host = world.upstreams["shadow"]
        .last_host
        .lock()
        .map(|h| h.clone())
        .unwrap_or_default();
    assert_eq!(shadow_host, "echo-shadow");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_redirect_and_direct_response() {
    let world = World::new().await;
    let proxy = world.start_proxy().await;
    let client = client();
    let preflight = [
        ("origin", "https://ok.example"),
        ("access-control-request-method", "POST"),
    ];
    let ok = send(
        &client,
        "OPTIONS",
        proxy.listen_addr,
        "echo",
        "/",
        &preflight,
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(
        header(&ok, "access-control-allow-origin"),
        Some("https://ok.example")
    );
    assert_eq!(
        header(&ok, "access-control-allow-methods"),
        Some("GET,POST")
    );
    assert_eq!(header(&ok, "access-control-max-age"), Some("60"));
    assert_eq!(
        world.hits("echo"),
        0,
        "a preflight is answered by the proxy"
    );
    let refused = [
        ("origin", "https://bad.example"),
        ("access-control-request-method", "POST"),
    ];
    let bad = send(&client, "OPTIONS", proxy.listen_addr, "echo", "/", &refused).await;
    assert_eq!(header(&bad, "access-control-allow-origin"), None);
    let simple = get(
        &client,
        proxy.listen_addr,
        "echo",
        "/",
        &[("origin", "https://ok.example")],
    )
    .await;
    assert_eq!(
        header(&simple, "access-control-allow-origin"),
        Some("https://ok.example")
    );

    let moved = get(&client, proxy.listen_addr, "moved", "/old", &[]).await;
    assert_eq!(moved.status, 302);
    assert_eq!(header(&moved, "location"), Some("http://other.example/new"));
    let fixed = get(&client, proxy.listen_addr, "fixed", "/", &[]).await;
    assert_eq!(
        (fixed.status, fixed.body.as_str()),
        (418, "short and stout")
    );
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_pool_limit_answers_503_when_full() {
    let world = World::new().await;
    let proxy = world.start_proxy().await;
    let client = client();
    let addr = proxy.listen_addr;
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            get(&client, addr, "pool", "/", &[]).await
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        let answer = task.await.expect("task");
        if answer.status == 503 {
            assert!(
                answer.elapsed < Duration::from_millis(400),
                "overflow answers at once"
            );
        }
        statuses.push(answer.status);
    }
    statuses.sort_unstable();
    // maxConnections 1 + http1MaxPendingRequests 1: two wait for the hanging upstream and
    // time out, the third overflows.
    assert_eq!(statuses, vec![503, 504, 504]);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outlier_detection_ejects_a_failing_endpoint() {
    let world = World::new().await;
    let proxy = world.start_proxy().await;
    let client = client();
    let mut failures = 0;
    for _ in 0..30 {
        if get(&client, proxy.listen_addr, "outlier", "/", &[])
            .await
            .status
            != 200
        {
            failures += 1;
        }
    }
    // Round robin alternates; the bad endpoint fails twice, then sits out 30 s.
    assert_eq!(failures, 2);
    assert_eq!(world.hits("bad"), 2);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_balancers_spread_or_stick() {
    let world = World::new().await;
    let proxy = world.start_proxy().await;
    let client = client();
    let mut chosen = std::collections::BTreeSet::new();
    for user in 0..10 {
        let user = format!("user-{user}");
        let first = get(
            &client,
            proxy.listen_addr,
            "sticky",
            "/",
            &[("x-user", &user)],
        )
        .await
        .body;
        for _ in 0..5 {
            let again = get(
                &client,
                proxy.listen_addr,
                "sticky",
                "/",
                &[("x-user", &user)],
            )
            .await
            .body;
            assert_eq!(again, first, "consistent hash keeps {user} on one endpoint");
        }
        chosen.insert(first);
    }
    assert!(chosen.len() >= 2, "ten users all hashed to {chosen:?}");
    for host in ["leastreq", "random"] {
        let answers = many(&client, proxy.listen_addr, host, &[], 60, 3).await;
        let distinct: std::collections::BTreeSet<_> =
            answers.iter().map(|(_, b)| b.clone()).collect();
        assert!(answers.iter().all(|(s, _)| *s == 200));
        assert!(distinct.len() >= 2, "{host} used only {distinct:?}");
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_requests() {
    let world = World::new().await;
    let proxy = world.start_proxy().await;
    let client = client();
    let addr = proxy.listen_addr;
    // jason's requests to `slow` are delayed 200 ms: shut down while one is in flight.
    let in_flight =
        tokio::spawn(
            async move { get(&client, addr, "slow", "/", &[("end-user", "jason")]).await },
        );
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    proxy.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "drained within the grace period"
    );
    let answer = in_flight.await.expect("request task");
    assert_eq!((answer.status, answer.body.as_str()), (200, "slow"));
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(refused.is_err(), "the listener is closed after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrite_replaces_the_matched_prefix_and_the_authority() {
    let world = World::new().await;
    let proxy = world.start_proxy().await;
    let client = client();
    let answer = get(&client, proxy.listen_addr, "rewrite", "/api/users?x=1", &[]).await;
    assert_eq!(answer.status, 200);
    let seen: Vec<&str> = answer.body.lines().collect();
    assert!(seen.contains(&":path: /v2/users?x=1"), "{seen:?}");
    assert!(seen.contains(&"host: internal"), "{seen:?}");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_try_timeouts_are_retried_within_the_route_timeout() {
    let world = World::new().await;
    let proxy = world.start_proxy().await;
    let client = client();
    let answer = get(&client, proxy.listen_addr, "hangretry", "/", &[]).await;
    assert_eq!(answer.status, 504);
    // Three tries of 100 ms plus two backoffs of at most 25 and 50 ms.
    assert!(
        answer.elapsed >= Duration::from_millis(290),
        "{:?}",
        answer.elapsed
    );
    assert!(
        answer.elapsed < Duration::from_millis(1500),
        "{:?}",
        answer.elapsed
    );
    assert_eq!(world.hits("hang"), 3, "one try and two retries");
    proxy.shutdown().await;
}
