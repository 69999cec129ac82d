//! The demo's Bookinfo services: one small HTTP server per endpoint of the compiled table,
//! each answering with its service name and version, so that every answer says which
//! destination the proxy chose.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mesh_table::spec::TableSpec;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A path every service answers with 404, to show that a 4xx is not retried.
pub const MISSING_PATH: &str = "/missing";

/// One running demo service.
pub struct Service {
    pub app: String,
    pub version: String,
    /// Where the policy puts it.
    pub declared: SocketAddr,
    /// Where it listens: the declared address, unless that port was taken.
    pub bound: SocketAddr,
    pub behaviour: Arc<Behaviour>,
    task: JoinHandle<()>,
}

/// What a service does with a request; shared with the demo, which counts and flips it.
#[derive(Default)]
pub struct Behaviour {
    /// Requests received, whatever the answer.
    pub hits: AtomicU64,
    /// When set, every other request (by arrival order) gets a 503.
    pub flaky: AtomicBool,
}

impl Service {
    pub fn label(&self) -> String {
        format!("{} {}", self.app, self.version)
    }
}

/// The demo's services; dropping them stops their listeners.
pub struct Services(pub Vec<Service>);

impl Services {
    pub fn find(&self, app: &str, version: &str) -> Option<&Service> {
        self.0.iter().find(|s| s.app == app && s.version == version)
    }

    pub fn stop(self) {
        for service in self.0 {
            service.task.abort();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a service for every distinct endpoint of the table's clusters, on the endpoint's
/// own loopback port when it is free and on a free port otherwise; in that case the spec's
/// endpoints are pointed at the new port. Returns an error for a non-loopback endpoint.
pub async fn start_for(spec: &mut TableSpec) -> Result<Services, String> {
    // Distinct endpoints, in a stable order, with the labels that name them.
    let mut endpoints: BTreeMap<SocketAddr, (String, String)> = BTreeMap::new();
    for cluster in &spec.clusters {
        for endpoint in &cluster.endpoints {
            let ip = endpoint.address.parse::<std::net::IpAddr>().map_err(|_| {
                format!(
                    "endpoint `{}` of {} is not an IP address; the demo serves loopback endpoints only",
                    endpoint.address, cluster.name
                )
            })?;
            if !ip.is_loopback() {
                return Err(format!(
                    "endpoint {ip} of {} is not a loopback address; the demo serves loopback endpoints only",
                    cluster.name
                ));
            }
            let label = |key: &str| {
                endpoint
                    .labels
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
            };
            let app = label("app").unwrap_or_else(|| short_host(&cluster.host).to_owned());
            let version = label("version").unwrap_or_else(|| "-".to_owned());
            endpoints
                .entry(SocketAddr::new(ip, endpoint.port))
                .or_insert((app, version));
        }
    }
    let mut services = Vec::with_capacity(endpoints.len());
    for (declared, (app, version)) in endpoints {
        let listener = match TcpListener::bind(declared).await {
            Ok(listener) => listener,
            Err(_) => TcpListener::bind(SocketAddr::new(declared.ip(), 0))
                .await
                .map_err(|e| {
                    format!(
                        "cannot listen on {} for {app} {version}: {e}",
                        declared.ip()
                    )
                })?,
        };
        let bound = listener
            .local_addr()
            .map_err(|e| format!("cannot read the address of {app} {version}: {e}"))?;
        let behaviour = Arc::new(Behaviour::default());
        let body = Bytes::from(format!("{app} {version}\n"));
        let task = tokio::spawn(serve(listener, body, behaviour.clone()));
        services.push(Service {
            app,
            version,
            declared,
            bound,
            behaviour,
            task,
        });
    }
    for cluster in &mut spec.clusters {
        for endpoint in &mut cluster.endpoints {
            let moved = services.iter().find(|s| {
                s.declared.port() == endpoint.port
                    && s.declared.ip().to_string() == endpoint.address
                    && s.bound != s.declared
            });
            if let Some(service) = moved {
                endpoint.port = service.bound.port();
            }
        }
    }
    Ok(Services(services))
}

fn short_host(host: &str) -> &str {
    host.split('.').next().unwrap_or(host)
}

async fn serve(listener: TcpListener, body: Bytes, behaviour: Arc<Behaviour>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let body = body.clone();
        let behaviour = behaviour.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let answer = answer(&request, &body, &behaviour);
                async move { Ok::<_, Infallible>(answer) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(
    request: &Request<Incoming>,
    body: &Bytes,
    behaviour: &Behaviour,
) -> Response<Full<Bytes>> {
    let hit = behaviour.hits.fetch_add(1, Ordering::Relaxed);
    let (status, body) = if request.uri().path().ends_with(MISSING_PATH) {
        (StatusCode::NOT_FOUND, Bytes::from_static(b"not found\n"))
    } else if behaviour.flaky.load(Ordering::Relaxed) && hit % 2 == 1 {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Bytes::from_static(b"unavailable\n"),
        )
    } else {
        (StatusCode::OK, body.clone())
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}
