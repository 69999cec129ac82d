//! A small in-memory Kubernetes API server for `meshc deploy`'s tests: ConfigMaps in
//! namespaces over plain HTTP on loopback, answering the way kube-apiserver does.
//!
//! No real kube-apiserver can be installed on the machines these tests run on, so the tests
//! point a kubeconfig at this server instead. It implements what `meshc deploy` uses: GET,
//! LIST (equality label selectors), POST, PUT, DELETE and server-side apply (`PATCH` with
//! `application/apply-patch+yaml`, `fieldManager`, `force`, field ownership and conflicts)
//! of ConfigMaps; a resourceVersion counter; `immutable` enforcement; the 1 MiB data limit;
//! `Status` errors with the real codes (400, 404, 405, 409, 415, 422); `/version`, `/api` and
//! `/api/v1` discovery. Every request is recorded (method, path, query, content type,
//! authorization, body) for the tests to assert on.
//!
//! What it leaves out: watch, protobuf, YAML bodies (JSON, which is YAML, is read),
//! `managedFields` in responses, other kinds, authentication (the Authorization header is
//! only recorded), and admission.

pub mod store;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// For tests that encode or decode `binaryData` as the server does.
pub use base64;
pub use store::{ApiError, Field, FieldValue, MAX_CONFIG_MAP_BYTES, Stored};
use store::{Store, parse_config_map, parse_selector};

/// kube-apiserver refuses request bodies over 3 MiB.
const MAX_REQUEST_BYTES: usize = 3 * 1024 * 1024;

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Query parameters, percent-decoded, in the order sent.
    pub query: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
}

impl RecordedRequest {
    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

struct State {
    store: Store,
    requests: Vec<RecordedRequest>,
}

/// A running fake API server; stops when dropped.
pub struct FakeApiServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeApiServer {
    /// Starts a server on an ephemeral loopback port with the namespaces `default` and
    /// `kube-system`.
    pub fn start() -> std::io::Result<FakeApiServer> {
        FakeApiServer::with_namespaces(&["default", "kube-system"])
    }

    pub fn with_namespaces(namespaces: &[&str]) -> std::io::Result<FakeApiServer> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let state = Arc::new(Mutex::new(State {
            store: Store::new(namespaces),
            requests: Vec::new(),
        }));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let served = state.clone();
        let thread = std::thread::Builder::new()
            .name("fake-apiserver".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    loop {
                        let accepted = tokio::select! {
                            accepted = listener.accept() => accepted,
                            _ = &mut stopped => return,
                        };
                        let Ok((stream, _)) = accepted else { continue };
                        let state = served.clone();
                        tokio::spawn(async move {
                            let service = hyper::service::service_fn(move |req| {
                                let state = state.clone();
                                async move { Ok::<_, Infallible>(handle(&state, req).await) }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                });
            })?;
        Ok(FakeApiServer {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig whose context `fake` points at this server, with a bearer token.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: {}
contexts:
- name: fake
  context:
    cluster: fake
    user: fake
    namespace: default
current-context: fake
users:
- name: fake
  user:
    token: fake-token
",
            self.url()
        )
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking handler cannot leave the store half-written: every change is one
        // assignment, so a poisoned lock still holds consistent data.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    pub fn config_map(&self, namespace: &str, name: &str) -> Option<Stored> {
        self.lock().store.get(namespace, name).ok().cloned()
    }

    /// The namespace's ConfigMaps, in name order.
    pub fn config_maps(&self, namespace: &str) -> Vec<Stored> {
        self.lock()
            .store
            .list(namespace, &[])
            .into_iter()
            .cloned()
            .collect()
    }

    pub fn resource_version(&self) -> u64 {
        self.lock().store.resource_version()
    }

    pub fn add_namespace(&self, namespace: &str) {
        self.lock().store.namespaces.insert(namespace.to_owned());
    }

    /// Creates a ConfigMap as field manager `manager` would with a POST (the request is not
    /// recorded).
    pub fn create(&self, namespace: &str, object: &Value, manager: &str) -> Result<(), ApiError> {
        let incoming = parse_config_map(object, false)?;
        self.lock()
            .store
            .create(namespace, incoming, manager)
            .map(|_| ())
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 3 <= bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn json_response(code: u16, value: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() =
        hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

async fn handle(state: &Mutex<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let header = |name: hyper::header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let body = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(_) => {
            let error = ApiError {
                code: 413,
                reason: "RequestEntityTooLarge",
                message: "the request body is too large".to_owned(),
                details: json!({}),
            };
            return json_response(error.code, &error.status());
        }
    };
    let request = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parse_query(parts.uri.query()),
        content_type: header(hyper::header::CONTENT_TYPE),
        authorization: header(hyper::header::AUTHORIZATION),
        body,
    };
    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
    state.requests.push(request.clone());
    match route(&mut state.store, &parts.method, &request) {
        Ok((code, value)) => json_response(code, &value),
        Err(error) => json_response(error.code, &error.status()),
    }
}

fn media_type(request: &RecordedRequest) -> &str {
    request
        .content_type
        .as_deref()
        .and_then(|c| c.split(';').next())
        .unwrap_or("")
        .trim()
}

fn unsupported_media(request: &RecordedRequest, expected: &str) -> ApiError {
    ApiError {
        code: 415,
        reason: "UnsupportedMediaType",
        message: format!(
            "the body of the request was in an unknown format ({}); this fake server accepts {expected}",
            request.content_type.as_deref().unwrap_or("none")
        ),
        details: json!({}),
    }
}

fn body_json(request: &RecordedRequest) -> Result<Value, ApiError> {
    serde_json::from_slice(&request.body).map_err(|e| {
        ApiError::bad_request(format!(
            "cannot read the body (this fake server reads JSON, a subset of YAML): {e}"
        ))
    })
}

fn method_not_allowed(method: &Method) -> ApiError {
    ApiError {
        code: 405,
        reason: "MethodNotAllowed",
        message: format!(
            "the server does not allow this method on the requested resource ({method})"
        ),
        details: json!({}),
    }
}

fn route(
    store: &mut Store,
    method: &Method,
    request: &RecordedRequest,
) -> Result<(u16, Value), ApiError> {
    if request.query_value("dryRun").is_some() || request.query_value("watch").is_some() {
        return Err(ApiError::bad_request(
            "dryRun and watch are not implemented by this fake server",
        ));
    }
    let segments: Vec<&str> = request
        .path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let manager = request
        .query_value("fieldManager")
        .unwrap_or("unknown")
        .to_owned();
    match (method, segments.as_slice()) {
        (&Method::GET, ["version"]) => Ok((
            200,
            json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake",
                   "platform": "linux/amd64"}),
        )),
        (&Method::GET, ["api"]) => Ok((
            200,
            json!({"kind": "APIVersions", "versions": ["v1"],
                   "serverAddressByClientCIDRs": []}),
        )),
        (&Method::GET, ["api", "v1"]) => Ok((
            200,
            json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                {"name": "configmaps", "singularName": "configmap", "namespaced": true,
                 "kind": "ConfigMap", "shortNames": ["cm"],
                 "verbs": ["create", "delete", "get", "list", "patch", "update"]},
                {"name": "namespaces", "singularName": "namespace", "namespaced": false,
                 "kind": "Namespace", "shortNames": ["ns"], "verbs": ["get", "list"]}]}),
        )),
        (&Method::GET, ["api", "v1", "namespaces", namespace]) => {
            if store.namespaces.contains(*namespace) {
                Ok((
                    200,
                    json!({"kind": "Namespace", "apiVersion": "v1",
                           "metadata": {"name": namespace}, "status": {"phase": "Active"}}),
                ))
            } else {
                Err(ApiError::not_found("namespaces", namespace))
            }
        }
        (&Method::GET, ["api", "v1", "namespaces", namespace, "configmaps"]) => {
            let selector = parse_selector(request.query_value("labelSelector").unwrap_or(""))?;
            if request
                .query_value("fieldSelector")
                .is_some_and(|f| !f.is_empty())
            {
                return Err(ApiError::bad_request(
                    "field selectors are not implemented by this fake server",
                ));
            }
            // Items of a list carry no kind or apiVersion, as the real server sends them.
            let items: Vec<Value> = store
                .list(namespace, &selector)
                .into_iter()
                .map(|s| s.to_json(false))
                .collect();
            Ok((
                200,
                json!({"kind": "ConfigMapList", "apiVersion": "v1",
                       "metadata": {"resourceVersion": store.resource_version().to_string()},
                       "items": items}),
            ))
        }
        (&Method::POST, ["api", "v1", "namespaces", namespace, "configmaps"]) => {
            if media_type(request) != "application/json" {
                return Err(unsupported_media(request, "application/json"));
            }
            let incoming = parse_config_map(&body_json(request)?, false)?;
            let stored = store.create(namespace, incoming, &manager)?;
            Ok((201, stored.to_json(true)))
        }
        (&Method::GET, ["api", "v1", "namespaces", namespace, "configmaps", name]) => {
            Ok((200, store.get(namespace, name)?.to_json(true)))
        }
        (&Method::PUT, ["api", "v1", "namespaces", namespace, "configmaps", name]) => {
            if media_type(request) != "application/json" {
                return Err(unsupported_media(request, "application/json"));
            }
            let incoming = parse_config_map(&body_json(request)?, false)?;
            Ok((
                200,
                store
                    .replace(namespace, name, incoming, &manager)?
                    .to_json(true),
            ))
        }
        (&Method::PATCH, ["api", "v1", "namespaces", namespace, "configmaps", name]) => {
            if media_type(request) != "application/apply-patch+yaml" {
                return Err(unsupported_media(
                    request,
                    "application/apply-patch+yaml (server-side apply) only",
                ));
            }
            let Some(manager) = request
                .query_value("fieldManager")
                .filter(|m| !m.is_empty())
            else {
                return Err(ApiError {
                    code: 422,
                    reason: "Invalid",
                    message: "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".to_owned(),
                    details: json!({"kind": "PatchOptions", "group": "meta.k8s.io"}),
                });
            };
            let force = match request.query_value("force") {
                None | Some("false") => false,
                Some("true") => true,
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "invalid value for force: `{other}`"
                    )));
                }
            };
            let incoming = parse_config_map(&body_json(request)?, true)?;
            let (stored, created) = store.apply(namespace, name, incoming, manager, force)?;
            Ok((if created { 201 } else { 200 }, stored.to_json(true)))
        }
        (&Method::DELETE, ["api", "v1", "namespaces", namespace, "configmaps", name]) => {
            let deleted = store.delete(namespace, name)?;
            Ok((
                200,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                       "status": "Success",
                       "details": {"name": deleted.name, "kind": "configmaps",
                                   "uid": deleted.uid}}),
            ))
        }
        (_, ["version" | "api"])
        | (_, ["api", "v1"])
        | (_, ["api", "v1", "namespaces", _])
        | (_, ["api", "v1", "namespaces", _, "configmaps"])
        | (_, ["api", "v1", "namespaces", _, "configmaps", _]) => Err(method_not_allowed(method)),
        _ => Err(ApiError {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".to_owned(),
            details: json!({}),
        }),
    }
}
