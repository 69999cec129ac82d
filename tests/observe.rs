//! End to end: what mesh-proxy shows about its traffic. Istio metrics scraped by a real
//! Prometheus server (and checked by `promtool`), the JSON access log, W3C and B3 trace
//! propagation with OTLP/HTTP export to a collector the test starts, and the health probes.
//!
//! Prometheus and promtool come from the Debian `prometheus` package that `tests/setup.sh`
//! installs; without them the tests fail and say so. Every wait polls with a deadline.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_e2e::service_entry;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Notify;

// ---------------------------------------------------------------------------------------
// Upstreams, policy, proxy
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
enum Behaviour {
    /// 200 with its name as the body.
    Named(&'static str),
    /// 500 on odd hits, 200 on even ones.
    FailEveryOther,
    /// Always 500.
    Fail,
    /// 200 with the request's headers as a JSON object (first value of each).
    Echo,
    /// Waits until the gate opens, then 200.
    Gate(Arc<Notify>),
}

struct Upstream {
    addr: SocketAddr,
}

async fn spawn_upstream(behaviour: Behaviour) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("upstream address");
    let hits = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let hits = hits.clone();
            let behaviour = behaviour.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let hit = hits.fetch_add(1, Ordering::SeqCst) + 1;
                    let behaviour = behaviour.clone();
                    let headers: serde_json::Map<String, Value> = req
                        .headers()
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.as_str().to_owned(),
                                Value::from(v.to_str().unwrap_or("?")),
                            )
                        })
                        .collect();
                    async move {
                        // Read the request body so its bytes count as received.
                        let _ = req.into_body().collect().await;
                        let (status, body) = match behaviour {
                            Behaviour::Named(name) => (200, name.to_owned()),
                            Behaviour::FailEveryOther if hit % 2 == 1 => (500, "failed".into()),
                            Behaviour::FailEveryOther => (200, "ok".into()),
                            Behaviour::Fail => (500, "failed".into()),
                            Behaviour::Echo => (200, Value::Object(headers).to_string()),
                            Behaviour::Gate(gate) => {
                                gate.notified().await;
                                (200, "opened".into())
                            }
                        };
                        let mut response = Response::new(Full::new(Bytes::from(body)));
                        *response.status_mut() = StatusCode::from_u16(status).expect("status");
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Upstream { addr }
}

const RULES: &str = r#"apiVersion: networking.istio.io/v1
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
  - name: default
    route:
    - destination:
        host: reviews
        subset: DEFAULT_SUBSET
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - name: flaky
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
  name: echo
spec:
  hosts:
  - echo
  http:
  - name: echo
    route:
    - destination:
        host: echo
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: aborts
spec:
  hosts:
  - aborts
  http:
  - name: abort-all
    fault:
      abort:
        percentage:
          value: 100.0
        httpStatus: 503
    route:
    - destination:
        host: aborts
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: outlier
spec:
  host: outlier
  trafficPolicy:
    outlierDetection:
      consecutive5xxErrors: 1
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
kind: VirtualService
metadata:
  name: gate
spec:
  hosts:
  - gate
  http:
  - name: gate
    route:
    - destination:
        host: gate
"#;

/// Upstreams, a compiled table, and the gate's handle.
struct World {
    upstreams: BTreeMap<&'static str, Upstream>,
    gate: Arc<Notify>,
    dir: tempfile::TempDir,
    table_path: PathBuf,
}

impl World {
    async fn new() -> World {
        let gate = Arc::new(Notify::new());
        let mut upstreams = BTreeMap::new();
        for (name, behaviour) in [
            ("reviews-v1", Behaviour::Named("reviews-v1")),
            ("reviews-v2", Behaviour::Named("reviews-v2")),
            ("ratings", Behaviour::FailEveryOther),
            ("echo", Behaviour::Echo),
            ("bad", Behaviour::Fail),
            ("gate", Behaviour::Gate(gate.clone())),
        ] {
            upstreams.insert(name, spawn_upstream(behaviour).await);
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let table_path = dir.path().join("table.mtbl");
        let world = World {
            upstreams,
            gate,
            dir,
            table_path,
        };
        world.publish("v1");
        world
    }

    fn addr(&self, name: &str) -> SocketAddr {
        self.upstreams[name].addr
    }

    /// Compiles the policy (the default reviews subset as given) and renames it into place.
    fn publish(&self, default_subset: &str) {
        let repo = self.dir.path().join(format!("policy-{default_subset}"));
        std::fs::create_dir_all(&repo).expect("policy dir");
        let mut services = service_entry(
            "reviews",
            &[
                ("v1", self.addr("reviews-v1")),
                ("v2", self.addr("reviews-v2")),
            ],
        );
        for (name, target) in [
            ("ratings", "ratings"),
            ("echo", "echo"),
            ("aborts", "echo"),
            ("gate", "gate"),
        ] {
            services.push_str(&service_entry(name, &[("v1", self.addr(target))]));
        }
        services.push_str(&service_entry(
            "outlier",
            &[("good", self.addr("reviews-v1")), ("bad", self.addr("bad"))],
        ));
        std::fs::write(repo.join("services.yaml"), services).expect("write services");
        std::fs::write(
            repo.join("rules.yaml"),
            RULES.replace("DEFAULT_SUBSET", default_subset),
        )
        .expect("write rules");
        let checked = meshc::check::check_paths(&[repo], &meshc::check::Settings::default())
            .expect("the policy repo reads");
        assert!(
            !checked.has_errors(),
            "the test policy has errors: {:#?}",
            checked.diagnostics
        );
        let bytes = meshc::compile::build(&checked).expect("the test policy compiles");
        let tmp = self.table_path.with_extension("tmp");
        std::fs::write(&tmp, bytes).expect("write temp table");
        std::fs::rename(&tmp, &self.table_path).expect("rename table");
    }

    fn config(&self) -> mesh_proxy::Config {
        let mut config = mesh_proxy::Config::new(&self.table_path);
        config.listen = "127.0.0.1:0".parse().expect("addr");
        config.admin = "127.0.0.1:0".parse().expect("addr");
        config.poll_interval = Duration::from_secs(3600);
        config.grace = Duration::from_secs(2);
        config.observe.workload_name = "productpage-v1".to_owned();
        config.observe.workload_namespace = "default".to_owned();
        config
    }
}

async fn start(config: mesh_proxy::Config) -> mesh_proxy::Running {
    mesh_proxy::start(config).await.expect("the proxy starts")
}

// ---------------------------------------------------------------------------------------
// HTTP helpers
// ---------------------------------------------------------------------------------------

type TestClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

struct Answer {
    status: u16,
    headers: hyper::HeaderMap,
    body: String,
}

async fn send(
    client: &TestClient,
    method: &str,
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("host", host);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .expect("an answer within 10 s")
        .expect("the request goes through");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn get(
    client: &TestClient,
    addr: SocketAddr,
    host: &str,
    headers: &[(&str, &str)],
) -> Answer {
    send(client, "GET", addr, host, "/", headers, "").await
}

async fn admin(client: &TestClient, proxy: &mesh_proxy::Running, path: &str) -> Answer {
    send(client, "GET", proxy.admin_addr, "admin", path, &[], "").await
}

/// Polls `probe` every 100 ms until it returns `Some`, or fails after `limit` with `what`.
async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Prometheus text helpers
// ---------------------------------------------------------------------------------------

/// The labels of one sample line (`name{a="x",b="y"} value`), unescaped enough for the
/// values this test uses (no quotes or backslashes in them).
fn parse_sample(line: &str) -> Option<(&str, BTreeMap<&str, &str>, f64)> {
    let (head, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let Some((name, labels)) = head.split_once('{') else {
        return Some((head, BTreeMap::new(), value));
    };
    let labels = labels.strip_suffix('}')?;
    let mut map = BTreeMap::new();
    for pair in labels.split("\",") {
        let (k, v) = pair.split_once("=\"")?;
        map.insert(k, v.trim_end_matches('"'));
    }
    Some((name, map, value))
}

/// The sum of the samples of `name` whose labels include all of `want`.
fn sum(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(parse_sample)
        .filter(|(n, labels, _)| *n == name && want.iter().all(|(k, v)| labels.get(k) == Some(v)))
        .map(|(_, _, v)| v)
        .sum()
}

fn count_series(text: &str, name: &str, want: &[(&str, &str)]) -> usize {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(parse_sample)
        .filter(|(n, labels, _)| *n == name && want.iter().all(|(k, v)| labels.get(k) == Some(v)))
        .count()
}

// ---------------------------------------------------------------------------------------
// Prometheus and promtool
// ---------------------------------------------------------------------------------------

fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    match found {
        Some(path) => path,
        None => panic!(
            "`{name}` is not installed: run `bash tests/setup.sh` (it installs the Debian \
             `prometheus` package, which has prometheus and promtool)"
        ),
    }
}

/// A Prometheus server this test started; killed by PID when dropped.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn start_prometheus(target: SocketAddr) -> Prometheus {
    let binary = tool("prometheus");
    let dir = tempfile::tempdir().expect("prometheus dir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: mesh-proxy\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .expect("write prometheus.yml");
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--log.level=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("prometheus starts");
    Prometheus {
        child,
        addr,
        _dir: dir,
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs an instant query; `None` while Prometheus is not up yet.
async fn query(client: &TestClient, prometheus: &Prometheus, promql: &str) -> Option<Value> {
    let path = format!("/api/v1/query?query={}", url_encode(promql));
    let request = Request::get(format!("http://{}{path}", prometheus.addr))
        .body(Full::new(Bytes::new()))
        .ok()?;
    let response = tokio::time::timeout(Duration::from_secs(5), client.request(request))
        .await
        .ok()?
        .ok()?;
    let body = response.into_body().collect().await.ok()?.to_bytes();
    let value: Value = serde_json::from_slice(&body).ok()?;
    (value["status"] == "success").then_some(value)
}

/// (panel title, PromQL) for every query in `observability/grafana-dashboard.json`.
fn dashboard_queries() -> Vec<(String, String)> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../observability/grafana-dashboard.json");
    let text = std::fs::read_to_string(&path).expect("the dashboard ships in the repo");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("?").to_owned();
            queries.push((title, target["expr"].as_str().expect("expr").to_owned()));
        }
    }
    assert!(queries.len() >= 10, "the dashboard has its panels");
    queries
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_request_counts_per_destination_version() {
    let world = World::new().await;
    let proxy = start(world.config()).await;
    let prometheus = start_prometheus(proxy.admin_addr);
    let client = client();
    for _ in 0..7 {
        let a = get(
            &client,
            proxy.listen_addr,
            "reviews",
            &[("end-user", "jason")],
        )
        .await;
        assert_eq!((a.status, a.body.as_str()), (200, "reviews-v2"));
    }
    for _ in 0..5 {
        let a = get(&client, proxy.listen_addr, "reviews", &[]).await;
        assert_eq!((a.status, a.body.as_str()), (200, "reviews-v1"));
    }
    let promql = "sum by (destination_version) (istio_requests_total{destination_service=\"reviews.default.svc.cluster.local\",reporter=\"source\",source_workload=\"productpage-v1\",response_code=\"200\"})";
    let counts = eventually(
        Duration::from_secs(90),
        "Prometheus reports 5 requests to v1 and 7 to v2",
        || async {
            let value = query(&client, &prometheus, promql).await?;
            let mut counts = BTreeMap::new();
            for sample in value["data"]["result"].as_array()? {
                let version = sample["metric"]["destination_version"].as_str()?.to_owned();
                let count: f64 = sample["value"][1].as_str()?.parse().ok()?;
                counts.insert(version, count);
            }
            let want = BTreeMap::from([("v1".to_owned(), 5.0), ("v2".to_owned(), 7.0)]);
            (counts == want).then_some(counts)
        },
    )
    .await;
    assert_eq!(counts.len(), 2);

    // The histogram's count agrees, per version, through the same server.
    let histogram = "sum by (destination_version) (istio_request_duration_milliseconds_count{destination_service_name=\"reviews\"})";
    let value = query(&client, &prometheus, histogram)
        .await
        .expect("the histogram query answers");
    let mut seen = BTreeMap::new();
    for sample in value["data"]["result"].as_array().expect("a vector") {
        seen.insert(
            sample["metric"]["destination_version"]
                .as_str()
                .expect("version")
                .to_owned(),
            sample["value"][1].as_str().expect("value").to_owned(),
        );
    }
    assert_eq!(
        seen,
        BTreeMap::from([
            ("v1".to_owned(), "5".to_owned()),
            ("v2".to_owned(), "7".to_owned())
        ])
    );

    // Every query of the shipped Grafana dashboard parses and runs on this server, and the
    // traffic panels find the series (a rate needs two scrapes, hence the wait).
    for (title, expr) in dashboard_queries() {
        let promql = expr
            .replace("$__rate_interval", "1m")
            .replace("$reporter", "source")
            .replace("$service", ".*")
            .replace("$workload", ".*")
            .replace("$instance", ".*");
        let value = query(&client, &prometheus, &promql)
            .await
            .unwrap_or_else(|| panic!("dashboard panel `{title}`: `{promql}` fails"));
        assert!(value["data"]["result"].is_array(), "{title}: {value}");
        if promql.contains("istio_requests_total") {
            eventually(
                Duration::from_secs(30),
                &format!("dashboard panel `{title}` finds series: `{promql}`"),
                || async {
                    let value = query(&client, &prometheus, &promql).await?;
                    (!value["data"]["result"].as_array()?.is_empty()).then_some(())
                },
            )
            .await;
        }
    }
    drop(prometheus);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_carry_istio_labels_from_the_table() {
    let world = World::new().await;
    let proxy = start(world.config()).await;
    let client = client();
    let addr = proxy.listen_addr;
    for _ in 0..3 {
        assert_eq!(get(&client, addr, "reviews", &[]).await.status, 200);
    }
    // Two flaky requests: each fails once and succeeds on its retry.
    for _ in 0..2 {
        assert_eq!(get(&client, addr, "ratings", &[]).await.status, 200);
    }
    assert_eq!(get(&client, addr, "aborts", &[]).await.status, 503);
    // Hosts the table does not know, each a different raw string: one `unknown` series.
    for i in 0..20 {
        let host = format!("stranger-{i}.example");
        assert_eq!(get(&client, addr, &host, &[]).await.status, 404);
    }
    // One of the two outlier endpoints always fails: one ejection.
    for _ in 0..2 {
        let _ = get(&client, addr, "outlier", &[]).await;
    }
    let body = "x".repeat(1500);
    let posted = send(&client, "POST", addr, "echo", "/submit", &[], &body).await;
    assert_eq!(posted.status, 200);

    let text = eventually(Duration::from_secs(10), "in-flight back to 0", || async {
        let text = admin(&client, &proxy, "/metrics").await.body;
        (sum(&text, "mesh_proxy_requests_in_flight", &[]) == 0.0).then_some(text)
    })
    .await;

    let promtool = tool("promtool");
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    {
        use std::io::Write;
        let mut stdin = check.stdin.take().expect("promtool stdin");
        stdin.write_all(text.as_bytes()).expect("feed promtool");
    }
    let output = check.wait_with_output().expect("promtool finishes");
    // promtool exits 1 when the text does not parse and 3 when it parses but a lint fires.
    // The one lint it raises is about Istio's own name, which dashboards depend on:
    // `istio_request_duration_milliseconds` is not in base units (seconds).
    let complaints = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let istio_unit_lint =
        "istio_request_duration_milliseconds use base unit \"seconds\" instead of \"milliseconds\"";
    let other_complaints: Vec<&str> = complaints
        .lines()
        .filter(|l| !l.trim().is_empty() && l.trim() != istio_unit_lint)
        .collect();
    assert!(
        matches!(output.status.code(), Some(0) | Some(3)) && other_complaints.is_empty(),
        "promtool check metrics: {:?}\n{complaints}\n--- metrics ---\n{text}",
        output.status.code()
    );

    // Every metric the dashboard uses is one the proxy exports.
    for (title, expr) in dashboard_queries() {
        for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if !(word.starts_with("istio_") || word.starts_with("mesh_proxy_")) {
                continue;
            }
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&format!("{word}{{"))
                        || l.starts_with(&format!("{word} "))),
                "dashboard panel `{title}` uses `{word}`, which /metrics does not have"
            );
        }
    }

    let reviews_v1 = [
        ("reporter", "source"),
        ("source_workload", "productpage-v1"),
        ("source_workload_namespace", "default"),
        ("destination_service", "reviews.default.svc.cluster.local"),
        ("destination_service_name", "reviews"),
        ("destination_service_namespace", "default"),
        ("destination_version", "v1"),
        ("destination_app", "reviews"),
        ("response_code", "200"),
        ("response_flags", "-"),
        ("request_protocol", "http"),
    ];
    assert_eq!(sum(&text, "istio_requests_total", &reviews_v1), 3.0);
    assert_eq!(
        sum(
            &text,
            "istio_request_duration_milliseconds_count",
            &reviews_v1
        ),
        3.0
    );
    assert_eq!(
        sum(
            &text,
            "istio_response_bytes_sum",
            &[("destination_service_name", "reviews")]
        ),
        3.0 * "reviews-v1".len() as f64
    );
    let echo = [
        ("destination_service_name", "echo"),
        ("response_code", "200"),
    ];
    assert_eq!(sum(&text, "istio_request_bytes_sum", &echo), 1500.0);
    assert_eq!(
        sum(
            &text,
            "istio_request_bytes_bucket",
            &[("destination_service_name", "echo"), ("le", "1000")]
        ),
        0.0
    );
    assert_eq!(
        sum(
            &text,
            "istio_request_bytes_bucket",
            &[("destination_service_name", "echo"), ("le", "10000")]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &text,
            "istio_requests_total",
            &[
                ("destination_service_name", "aborts"),
                ("response_code", "503"),
                ("response_flags", "FI")
            ]
        ),
        1.0
    );
    // 20 different unknown hosts, one series, and none of the raw names.
    assert_eq!(
        count_series(
            &text,
            "istio_requests_total",
            &[("destination_service", "unknown"), ("response_flags", "NR")]
        ),
        1
    );
    assert_eq!(
        sum(
            &text,
            "istio_requests_total",
            &[("destination_service", "unknown"), ("response_code", "404")]
        ),
        20.0
    );
    assert!(
        !text.contains("stranger-"),
        "a raw host name became a label"
    );
    assert_eq!(
        sum(
            &text,
            "mesh_proxy_upstream_retries_total",
            &[(
                "cluster_name",
                "outbound|9080||ratings.default.svc.cluster.local"
            )]
        ),
        2.0
    );
    assert_eq!(
        sum(
            &text,
            "mesh_proxy_outlier_ejections_total",
            &[("destination_service", "outlier.default.svc.cluster.local")]
        ),
        1.0
    );
    assert!(sum(&text, "mesh_proxy_upstream_connections_opened_total", &[]) >= 1.0);
    let table: Value =
        serde_json::from_str(&admin(&client, &proxy, "/table").await.body).expect("table json");
    let hash = table["content_hash"].as_str().expect("hash");
    let version = mesh_table::format::FORMAT_VERSION.to_string();
    assert_eq!(
        sum(
            &text,
            "mesh_proxy_table_info",
            &[("content_hash", hash), ("format_version", &version)]
        ),
        1.0
    );
    assert_eq!(
        sum(&text, "mesh_proxy_table_reloads_total", &[("result", "ok")]),
        0.0
    );
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_and_requests_in_flight_show_in_the_metrics() {
    let world = World::new().await;
    let proxy = start(world.config()).await;
    let client = client();
    let addr = proxy.listen_addr;
    assert_eq!(get(&client, addr, "reviews", &[]).await.body, "reviews-v1");

    // A request held by the upstream is in flight until its body is sent.
    let held = {
        let client = client.clone();
        tokio::spawn(async move { get(&client, addr, "gate", &[]).await })
    };
    eventually(Duration::from_secs(10), "one request in flight", || async {
        let text = admin(&client, &proxy, "/metrics").await.body;
        (sum(&text, "mesh_proxy_requests_in_flight", &[]) == 1.0).then_some(())
    })
    .await;
    world.gate.notify_one();
    assert_eq!(held.await.expect("held request").body, "opened");

    // A new table: the default subset becomes v2, and counts follow the new table's names.
    let before = admin(&client, &proxy, "/table").await.body;
    world.publish("v2");
    proxy.reload();
    let text = eventually(Duration::from_secs(10), "the reload is counted", || async {
        let text = admin(&client, &proxy, "/metrics").await.body;
        (sum(&text, "mesh_proxy_table_reloads_total", &[("result", "ok")]) == 1.0).then_some(text)
    })
    .await;
    let after: Value =
        serde_json::from_str(&admin(&client, &proxy, "/table").await.body).expect("table json");
    assert_ne!(before, after.to_string());
    let hash = after["content_hash"].as_str().expect("hash");
    assert_eq!(
        sum(&text, "mesh_proxy_table_info", &[("content_hash", hash)]),
        1.0,
        "the info metric shows the new table"
    );
    assert_eq!(count_series(&text, "mesh_proxy_table_info", &[]), 1);
    assert_eq!(get(&client, addr, "reviews", &[]).await.body, "reviews-v2");
    let text = eventually(Duration::from_secs(10), "in-flight back to 0", || async {
        let text = admin(&client, &proxy, "/metrics").await.body;
        (sum(&text, "mesh_proxy_requests_in_flight", &[]) == 0.0).then_some(text)
    })
    .await;
    let reviews = |version| {
        sum(
            &text,
            "istio_requests_total",
            &[
                ("destination_service_name", "reviews"),
                ("destination_version", version),
            ],
        )
    };
    assert_eq!((reviews("v1"), reviews("v2")), (1.0, 1.0));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_off_means_no_metrics_endpoint_and_traffic_still_flows() {
    let world = World::new().await;
    let mut config = world.config();
    config.observe.metrics = false;
    let proxy = start(config).await;
    let client = client();
    assert_eq!(
        get(&client, proxy.listen_addr, "reviews", &[]).await.body,
        "reviews-v1"
    );
    assert_eq!(admin(&client, &proxy, "/metrics").await.status, 404);
    for probe in ["/healthz/live", "/healthz/ready"] {
        assert_eq!(admin(&client, &proxy, probe).await.status, 200, "{probe}");
    }
    proxy.shutdown().await;
}

fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("every access log line is one JSON object"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_writes_one_json_object_per_request() {
    let world = World::new().await;
    let log_path = world.dir.path().join("access.log");
    let mut config = world.config();
    config.observe.access_log = mesh_proxy::AccessLogTarget::File(log_path.clone());
    let proxy = start(config).await;
    let client = client();
    let addr = proxy.listen_addr;

    let given = send(
        &client,
        "GET",
        addr,
        "reviews",
        "/reviews/1?x=1",
        &[
            ("end-user", "jason"),
            ("x-request-id", "given-id-1"),
            ("user-agent", "observe-test"),
        ],
        "",
    )
    .await;
    assert_eq!(given.body, "reviews-v2");
    let echoed = send(
        &client,
        "POST",
        addr,
        "echo",
        "/submit",
        &[],
        &"y".repeat(321),
    )
    .await;
    let upstream_saw: Value = serde_json::from_str(&echoed.body).expect("echo json");
    let generated = upstream_saw["x-request-id"]
        .as_str()
        .expect("the upstream got a generated x-request-id")
        .to_owned();
    assert_eq!(generated.len(), 36);
    assert_eq!(get(&client, addr, "nowhere.example", &[]).await.status, 404);
    assert_eq!(get(&client, addr, "ratings", &[]).await.status, 200);

    let lines = eventually(Duration::from_secs(10), "four access log lines", || async {
        let lines = read_lines(&log_path);
        (lines.len() == 4).then_some(lines)
    })
    .await;
    let by_path = |path: &str| {
        lines
            .iter()
            .find(|l| l["path"] == path && l["authority"] != "nowhere.example")
            .unwrap_or_else(|| panic!("a line for {path}: {lines:#?}"))
    };

    let jason = by_path("/reviews/1?x=1");
    assert_eq!(jason["method"], "GET");
    assert_eq!(jason["protocol"], "HTTP/1.1");
    assert_eq!(jason["response_code"], 200);
    assert_eq!(jason["response_flags"], "-");
    assert_eq!(jason["bytes_sent"], "reviews-v2".len());
    assert_eq!(jason["bytes_received"], 0);
    assert_eq!(jason["x_request_id"], "given-id-1");
    assert_eq!(jason["user_agent"], "observe-test");
    assert_eq!(jason["authority"], "reviews");
    assert_eq!(jason["route_name"], "jason");
    assert_eq!(jason["virtual_service"], "default/reviews");
    assert_eq!(jason["destination_subset"], "v2");
    assert_eq!(
        jason["upstream_cluster"],
        "outbound|9080|v2|reviews.default.svc.cluster.local"
    );
    assert_eq!(jason["upstream_host"], world.addr("reviews-v2").to_string());
    assert_eq!(jason["retry_attempts"], 0);
    assert!(jason["upstream_service_time"].is_u64());
    assert!(jason["duration"].is_u64());
    let start_time = jason["start_time"].as_str().expect("start_time");
    assert!(
        start_time.len() == 24 && start_time.ends_with('Z') && start_time.as_bytes()[10] == b'T',
        "RFC 3339 UTC with milliseconds: {start_time}"
    );
    let trace_id = jason["trace_id"].as_str().expect("trace id");
    assert!(trace_id.len() == 32 && trace_id.bytes().all(|b| b.is_ascii_hexdigit()));

    let posted = by_path("/submit");
    assert_eq!(posted["method"], "POST");
    assert_eq!(posted["bytes_received"], 321);
    assert_eq!(posted["x_request_id"], generated.as_str());
    assert_eq!(posted["bytes_sent"], echoed.body.len());

    let unknown = lines
        .iter()
        .find(|l| l["authority"] == "nowhere.example")
        .expect("the unrouted request is logged");
    assert_eq!(unknown["response_code"], 404);
    assert_eq!(unknown["response_flags"], "NR");
    assert!(unknown["upstream_host"].is_null() && unknown["route_name"].is_null());
    let generated_for_404 = unknown["x_request_id"]
        .as_str()
        .expect("an id even for 404");
    assert_eq!(generated_for_404.len(), 36);

    let flaky = lines
        .iter()
        .find(|l| l["authority"] == "ratings")
        .expect("the ratings request is logged");
    assert_eq!(flaky["retry_attempts"], 1, "it failed once, then succeeded");
    assert_eq!(flaky["response_code"], 200);

    // A request just before shutdown is in the file when shutdown returns: nothing queued
    // is lost.
    assert_eq!(
        get(&client, addr, "reviews", &[("x-request-id", "last-one")])
            .await
            .status,
        200
    );
    proxy.shutdown().await;
    let lines = read_lines(&log_path);
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[4]["x_request_id"], "last-one");
}

/// A minimal OTLP/HTTP collector: records every JSON body posted to `/v1/traces`.
struct Collector {
    addr: SocketAddr,
    bodies: Arc<Mutex<Vec<Value>>>,
    content_types: Arc<Mutex<Vec<String>>>,
}

async fn spawn_collector() -> Collector {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind collector");
    let addr = listener.local_addr().expect("collector address");
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let content_types = Arc::new(Mutex::new(Vec::new()));
    let (b, c) = (bodies.clone(), content_types.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (b, c) = (b.clone(), c.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (b, c) = (b.clone(), c.clone());
                    async move {
                        let ok = req.method() == "POST" && req.uri().path() == "/v1/traces";
                        let content_type = req
                            .headers()
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        let body = req.into_body().collect().await.map(|b| b.to_bytes());
                        let status = match (ok, body) {
                            (true, Ok(body)) => match serde_json::from_slice::<Value>(&body) {
                                Ok(value) => {
                                    b.lock().expect("bodies").push(value);
                                    c.lock().expect("types").push(content_type);
                                    200
                                }
                                Err(_) => 400,
                            },
                            _ => 404,
                        };
                        let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
                        *response.status_mut() = StatusCode::from_u16(status).expect("status");
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Collector {
        addr,
        bodies,
        content_types,
    }
}

impl Collector {
    fn spans(&self) -> Vec<Value> {
        let bodies = self.bodies.lock().expect("bodies");
        let mut spans = Vec::new();
        for body in bodies.iter() {
            for resource in body["resourceSpans"].as_array().into_iter().flatten() {
                for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                    spans.extend(scope["spans"].as_array().into_iter().flatten().cloned());
                }
            }
        }
        spans
    }

    async fn span_of_trace(&self, trace_id: &str) -> Value {
        eventually(
            Duration::from_secs(15),
            &format!("a span of trace {trace_id} at the collector"),
            || async { self.spans().into_iter().find(|s| s["traceId"] == trace_id) },
        )
        .await
    }
}

fn echoed(answer: &Answer) -> Value {
    assert_eq!(answer.status, 200, "{}", answer.body);
    serde_json::from_str(&answer.body).expect("echo json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_propagate_w3c_and_b3_and_export_the_proxy_span_over_otlp() {
    let world = World::new().await;
    let collector = spawn_collector().await;
    let mut config = world.config();
    config.observe.otlp_endpoint =
        Some(mesh_proxy::traces_url(&format!("http://{}", collector.addr)).expect("collector url"));
    config.observe.trace_sampling_percent = 100.0;
    config.observe.trace_flush_interval = Duration::from_millis(100);
    let proxy = start(config).await;
    let client = client();
    let addr = proxy.listen_addr;

    // A caller that decided not to sample: propagated as not sampled, never exported.
    let unsampled_trace = "11111111111111111111111111111111";
    let seen = echoed(
        &get(
            &client,
            addr,
            "echo",
            &[(
                "traceparent",
                &format!("00-{unsampled_trace}-2222222222222222-00"),
            )],
        )
        .await,
    );
    let traceparent = seen["traceparent"].as_str().expect("traceparent upstream");
    assert!(traceparent.starts_with(&format!("00-{unsampled_trace}-")));
    assert!(traceparent.ends_with("-00"));

    // W3C: same trace, the proxy's span as the upstream's parent, tracestate untouched.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let seen = echoed(
        &get(
            &client,
            addr,
            "echo",
            &[
                ("traceparent", &format!("00-{trace}-{caller_span}-01")),
                ("tracestate", "vendor=opaque"),
            ],
        )
        .await,
    );
    let upstream_traceparent = seen["traceparent"].as_str().expect("traceparent upstream");
    let parts: Vec<&str> = upstream_traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{upstream_traceparent}");
    assert_eq!((parts[0], parts[1], parts[3]), ("00", trace, "01"));
    let proxy_span = parts[2].to_owned();
    assert_ne!(proxy_span, caller_span, "the proxy makes its own span");
    assert_eq!(seen["tracestate"], "vendor=opaque");
    let span = collector.span_of_trace(trace).await;
    assert_eq!(span["spanId"], proxy_span.as_str());
    assert_eq!(span["parentSpanId"], caller_span);
    assert_eq!(span["traceState"], "vendor=opaque");
    assert_eq!(span["name"], "echo.default.svc.cluster.local:9080/*");
    assert_eq!(span["kind"], 3);
    let status = span["attributes"]
        .as_array()
        .expect("attributes")
        .iter()
        .find(|a| a["key"] == "http.response.status_code")
        .expect("a status attribute");
    assert_eq!(status["value"]["intValue"], "200");
    let start: u64 = span["startTimeUnixNano"]
        .as_str()
        .expect("start")
        .parse()
        .expect("ns");
    let end: u64 = span["endTimeUnixNano"]
        .as_str()
        .expect("end")
        .parse()
        .expect("ns");
    assert!(start > 0 && end >= start);
    assert!(
        collector
            .content_types
            .lock()
            .expect("types")
            .iter()
            .all(|t| t == "application/json")
    );

    // B3 multi: answered with B3 multi (and traceparent), the parent being the proxy's span.
    let b3_trace = "80f198ee56343ba864fe8b2a57d3eff7";
    let b3_span = "e457b5a2e4d86bd1";
    let seen = echoed(
        &get(
            &client,
            addr,
            "echo",
            &[
                ("x-b3-traceid", b3_trace),
                ("x-b3-spanid", b3_span),
                ("x-b3-parentspanid", "05e3ac9a4f6e3b90"),
                ("x-b3-sampled", "1"),
            ],
        )
        .await,
    );
    assert_eq!(seen["x-b3-traceid"], b3_trace);
    assert_eq!(seen["x-b3-parentspanid"], b3_span);
    assert_eq!(seen["x-b3-sampled"], "1");
    let b3_proxy_span = seen["x-b3-spanid"]
        .as_str()
        .expect("x-b3-spanid")
        .to_owned();
    assert_ne!(b3_proxy_span, b3_span);
    assert_eq!(
        seen["traceparent"],
        format!("00-{b3_trace}-{b3_proxy_span}-01").as_str()
    );
    let span = collector.span_of_trace(b3_trace).await;
    assert_eq!(span["spanId"], b3_proxy_span.as_str());
    assert_eq!(span["parentSpanId"], b3_span);

    // B3 single header.
    let single_trace = "a3ce929d0e0e47364bf92f3577b34da6";
    let single_span = "1234567890abcdef";
    let seen = echoed(
        &get(
            &client,
            addr,
            "echo",
            &[("b3", &format!("{single_trace}-{single_span}-1"))],
        )
        .await,
    );
    let b3 = seen["b3"].as_str().expect("b3 upstream");
    let fields: Vec<&str> = b3.split('-').collect();
    assert_eq!(fields.len(), 4, "{b3}");
    assert_eq!(
        (fields[0], fields[2], fields[3]),
        (single_trace, "1", single_span)
    );
    let span = collector.span_of_trace(single_trace).await;
    assert_eq!(span["spanId"], fields[1]);
    assert_eq!(span["parentSpanId"], single_span);

    // No context: a new trace, sampled at 100%, a root span.
    let seen = echoed(&get(&client, addr, "echo", &[]).await);
    let fresh = seen["traceparent"].as_str().expect("traceparent upstream");
    let fresh_parts: Vec<&str> = fresh.split('-').collect();
    assert_eq!(fresh_parts.len(), 4);
    assert_eq!(fresh_parts[3], "01");
    let span = collector.span_of_trace(fresh_parts[1]).await;
    assert_eq!(span["spanId"], fresh_parts[2]);
    assert!(span.get("parentSpanId").is_none(), "a root span: {span}");

    // Spans were exported in order; the unsampled one, sent first, never was.
    assert!(
        collector
            .spans()
            .iter()
            .all(|s| s["traceId"] != unsampled_trace),
        "an unsampled trace was exported"
    );
    assert_eq!(collector.spans().len(), 4, "one span per sampled request");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_probes_answer_on_the_admin_listener() {
    let world = World::new().await;
    let proxy = start(world.config()).await;
    let client = client();
    let live = admin(&client, &proxy, "/healthz/live").await;
    let ready = admin(&client, &proxy, "/healthz/ready").await;
    assert_eq!((live.status, live.body.as_str()), (200, "live\n"));
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));
    let metrics = admin(&client, &proxy, "/metrics").await;
    assert_eq!(
        metrics
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_log_that_cannot_be_opened_stops_the_start_with_a_clear_error() {
    let world = World::new().await;
    let mut config = world.config();
    let missing_dir = world.dir.path().join("no-such-dir").join("access.log");
    config.observe.access_log = mesh_proxy::AccessLogTarget::File(missing_dir.clone());
    let error = match mesh_proxy::start(config).await {
        Ok(running) => {
            running.shutdown().await;
            panic!("the proxy started without its access log");
        }
        Err(error) => error.to_string(),
    };
    assert!(
        error.contains("access log") && error.contains(&missing_dir.display().to_string()),
        "{error}"
    );
}
