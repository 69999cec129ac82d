//! mesh-proxy following a Kubernetes ConfigMap volume: the table file is laid out the way
//! the kubelet's atomic writer does it, and updated the way it updates it.
//!
//! The kubelet writes a ConfigMap volume as a timestamped directory holding the files
//! (`..2026_11_26_00_00_00.123456789/routes.mtbl`), a `..data` symlink to that directory,
//! and one symlink per key (`routes.mtbl -> ..data/routes.mtbl`). An update writes a new
//! timestamped directory, points a new `..data_tmp` symlink at it, renames `..data_tmp` over
//! `..data` (the atomic step), then removes the old directory. The proxy is given
//! `--table <volume>/routes.mtbl` and must serve the new table after each swap, and keep the
//! old one serving when the new one is corrupt.

use std::net::SocketAddr;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

const KEY: &str = "routes.mtbl";

/// A loopback upstream that answers 200 with its name.
async fn named_upstream(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |_req: Request<Incoming>| async move {
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(
                            name,
                        ))))
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// Compiles a policy where `reviews` goes to the subset `subset` (v1 and v2 are upstreams).
fn compile(dir: &Path, v1: SocketAddr, v2: SocketAddr, subset: &str) -> Vec<u8> {
    let repo = dir.join(format!("policy-{subset}"));
    std::fs::create_dir_all(&repo).expect("policy dir");
    let policy = format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: reviews
spec:
  hosts:
  - reviews.default.svc.cluster.local
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - number: 9080
    name: http
    protocol: HTTP
  endpoints:
  - address: 127.0.0.1
    ports:
      http: {}
    labels:
      version: v1
  - address: 127.0.0.1
    ports:
      http: {}
    labels:
      version: v2
---
apiVersion: networking.istio.io/v1
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
  - route:
    - destination:
        host: reviews
        subset: {subset}
",
        v1.port(),
        v2.port()
    );
    std::fs::write(repo.join("reviews.yaml"), policy).expect("write policy");
    let checked = meshc::check::check_paths(&[repo], &meshc::check::Settings::default())
        .expect("the policy reads");
    assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
    meshc::compile::build(&checked).expect("the policy compiles")
}

/// A ConfigMap volume directory, written as the kubelet's atomic writer writes it.
struct Volume {
    dir: PathBuf,
    generation: u32,
}

impl Volume {
    /// The first payload: timestamped directory, `..data`, and the key's symlink.
    fn create(dir: PathBuf, table: &[u8]) -> Volume {
        std::fs::create_dir_all(&dir).expect("volume dir");
        let mut volume = Volume { dir, generation: 0 };
        let payload = volume.write_payload(table);
        symlink(&payload, volume.dir.join("..data")).expect("..data link");
        symlink(format!("..data/{KEY}"), volume.dir.join(KEY)).expect("key link");
        volume
    }

    fn write_payload(&mut self, table: &[u8]) -> String {
        self.generation += 1;
        let name = format!(
            "..2026_11_26_00_{:02}_00.{}",
            self.generation,
            123_456_789 + self.generation
        );
        let payload = self.dir.join(&name);
        std::fs::create_dir(&payload).expect("payload dir");
        std::fs::write(payload.join(KEY), table).expect("payload file");
        name
    }

    /// An update: new payload directory, `..data_tmp` renamed over `..data`, old directory
    /// removed.
    fn update(&mut self, table: &[u8]) {
        let old = std::fs::read_link(self.dir.join("..data")).expect("..data is a link");
        let payload = self.write_payload(table);
        let tmp = self.dir.join("..data_tmp");
        symlink(&payload, &tmp).expect("..data_tmp link");
        std::fs::rename(&tmp, self.dir.join("..data")).expect("swap ..data");
        std::fs::remove_dir_all(self.dir.join(old)).expect("remove the old payload");
    }

    fn table_path(&self) -> PathBuf {
        self.dir.join(KEY)
    }
}

type TestClient = Client<HttpConnector, Empty<Bytes>>;

async fn get(client: &TestClient, addr: SocketAddr, host: &str, path: &str) -> (u16, String) {
    let request = Request::builder()
        .uri(format!("http://{addr}{path}"))
        .header("host", host)
        .body(Empty::new())
        .expect("request");
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .expect("an answer within 10 s")
        .expect("the request goes through");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Polls until `done` holds, for at most 10 s (the proxy polls its file every 100 ms here).
async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_follows_kubelet_swaps_of_a_config_map_volume() {
    let v1 = named_upstream("reviews-v1").await;
    let v2 = named_upstream("reviews-v2").await;
    let work = tempfile::tempdir().expect("temp dir");
    let table_v1 = compile(work.path(), v1, v2, "v1");
    let table_v2 = compile(work.path(), v1, v2, "v2");
    assert_ne!(table_v1, table_v2);

    let mut volume = Volume::create(work.path().join("volume"), &table_v1);
    let mut config = mesh_proxy::Config::new(volume.table_path());
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.admin = "127.0.0.1:0".parse().expect("addr");
    config.poll_interval = Duration::from_millis(100);
    config.grace = Duration::from_secs(2);
    let proxy = mesh_proxy::start(config).await.expect("the proxy starts");
    let client: TestClient = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let listen = proxy.listen_addr;
    assert_eq!(
        get(&client, listen, "reviews", "/").await,
        (200, "reviews-v1".to_owned())
    );

    // The kubelet delivers the new ConfigMap content.
    volume.update(&table_v2);
    wait_for("the v2 table to serve", async || {
        get(&client, listen, "reviews", "/").await.1 == "reviews-v2"
    })
    .await;
    assert_eq!(proxy.shared.reloads_ok.load(Ordering::Relaxed), 1);
    assert_eq!(proxy.shared.reloads_failed.load(Ordering::Relaxed), 0);
    // Once switched, every request goes to the new table.
    for _ in 0..20 {
        assert_eq!(
            get(&client, listen, "reviews", "/").await,
            (200, "reviews-v2".to_owned())
        );
    }

    // A corrupt update (a flipped byte: the checksum fails) is refused; v2 keeps serving.
    let mut corrupt = table_v2.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0x5a;
    volume.update(&corrupt);
    wait_for("the corrupt table to be refused", async || {
        proxy.shared.reloads_failed.load(Ordering::Relaxed) >= 1
    })
    .await;
    for _ in 0..20 {
        assert_eq!(
            get(&client, listen, "reviews", "/").await,
            (200, "reviews-v2".to_owned())
        );
    }
    assert_eq!(proxy.shared.reloads_ok.load(Ordering::Relaxed), 1);
    let (ready, _) = get(&client, proxy.admin_addr, "admin", "/healthz/ready").await;
    assert_eq!(ready, 200);

    // A good update after the bad one (a rollback, say) is taken again.
    volume.update(&table_v1);
    wait_for("the v1 table to serve again", async || {
        get(&client, listen, "reviews", "/").await.1 == "reviews-v1"
    })
    .await;
    assert_eq!(proxy.shared.reloads_ok.load(Ordering::Relaxed), 2);
    let (_, table) = get(&client, proxy.admin_addr, "admin", "/table").await;
    assert!(table.contains("\"reloads_ok\":2"), "{table}");
    assert!(table.contains("\"reloads_failed\":1"), "{table}");
    // Only the newest payload directory is left, as with the kubelet.
    let payloads = std::fs::read_dir(&volume.dir)
        .expect("volume")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("..2026"))
        .count();
    assert_eq!(payloads, 1);
    proxy.shutdown().await;
}
