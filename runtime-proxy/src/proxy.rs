//! One request's path: route -> fault -> action (redirect, direct response or forward) ->
//! split and upstream (see `upstream.rs`) -> observe. Each phase is one function.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use mesh_table::{Abort, ActionDecision, Decision, RedirectView, RequestView, RouteDecision};

use crate::downstream::Request;
use crate::fields::RequestFields;
use crate::h1::RawFields;
use crate::headers;
use crate::observe::{self, Flags, Observer, RequestFacts};
use crate::pool::Pool;
use crate::rng;
use crate::state::{Loaded, Shared};
use crate::upstream;

/// Every body the proxy sends: upstream bodies stream through, local ones are full.
pub type Body = BoxBody<Bytes, BodyError>;

/// Why a body could not be read to its end (the client's or the upstream's connection
/// failed, or its framing was broken).
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// What every connection's service shares.
pub struct Proxy {
    pub shared: Arc<Shared>,
    pub pool: Pool,
    pub observer: Arc<Observer>,
}

/// The service function: runs the phases, then the observe hook (which records when the
/// response body has been sent).
pub async fn handle(
    proxy: Arc<Proxy>,
    mut req: Request,
    peer: SocketAddr,
) -> Result<Reply, Infallible> {
    // The request keeps this Arc (table and cluster state) to the end, whatever reloads do.
    let loaded = proxy.shared.current.load_full();
    let mut facts = proxy.observer.begin(loaded.clone(), &mut req, peer);
    let response = route(&proxy, &loaded, req, peer, &mut facts).await;
    Ok(observe::finish(&proxy.observer, facts, response))
}

/// What the service answers: the response, and the upstream's header fields that were
/// passed on without being parsed (see `h1::RawFields`), written after the response's own.
pub struct Reply {
    pub response: Response<Body>,
    pub fields: Option<RawFields>,
}

impl From<Response<Body>> for Reply {
    fn from(response: Response<Body>) -> Reply {
        Reply {
            response,
            fields: None,
        }
    }
}

impl Reply {
    /// The response's header map with every field in it: the fields passed on unparsed
    /// are parsed into it first.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        if let Some(fields) = self.fields.take() {
            fields.add_to(self.response.headers_mut());
        }
        self.response.headers_mut()
    }

    /// The whole response in one `http::Response`, for a client that needs a header map
    /// (HTTP/2).
    pub fn into_response(mut self) -> Response<Body> {
        self.headers_mut();
        self.response
    }
}

/// A reply made by the proxy itself.
pub fn local_reply(status: u16, body: impl Into<Bytes>) -> Reply {
    local_response(status, body).into()
}

/// A response made by the proxy itself.
pub fn local_response(status: u16, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body.into()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    response
}

pub fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// The authority the request is for: absolute-form and HTTP/2 carry it in the URI, origin-form
/// HTTP/1.1 in `Host`.
fn authority_of(uri: &Uri, fields: &RequestFields) -> Option<String> {
    if let Some(authority) = uri.authority() {
        return Some(authority.as_str().to_owned());
    }
    fields.get_str("host").map(str::to_owned)
}

/// `host:port` -> (`host`, port); brackets stay on IPv6 literals.
pub fn split_host_port(authority: &str) -> (&str, Option<u16>) {
    match authority.rsplit_once(':') {
        Some((host, _)) if !host.ends_with(']') && host.contains(':') => (authority, None),
        Some((host, port)) => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (authority, None),
        },
        None => (authority, None),
    }
}

/// The route phase: pick the route, then hand over to CORS, fault and the action.
async fn route(
    proxy: &Proxy,
    loaded: &Loaded,
    req: Request,
    peer: SocketAddr,
    facts: &mut RequestFacts,
) -> Reply {
    let Request {
        method,
        uri,
        fields,
        body,
        ..
    } = req;
    let authority = authority_of(&uri, &fields);
    let Some(authority) = authority.as_deref() else {
        facts.flags.set(Flags::NR);
        return local_reply(400, "downstream error: the request has no authority\n");
    };
    let random = rng::next_u64();
    let decision = {
        let view = RequestView {
            authority,
            port: split_host_port(authority).1,
            method: method.as_str(),
            path: uri.path(),
            query: uri.query(),
            scheme: uri.scheme_str().unwrap_or("http"),
            headers: &fields,
        };
        loaded.table.decide(&view, random)
    };
    let decision = match decision {
        Decision::Route(decision) => decision,
        Decision::NoVirtualHost | Decision::NoRoute { .. } => {
            facts.flags.set(Flags::NR);
            return local_reply(404, "");
        }
    };
    facts.route = Some(decision.route.id());

    let cors = decision.route.cors();
    let origin = cors
        .and_then(|_| fields.get_str("origin"))
        .map(str::to_owned);
    if let (Some(cors), Some(origin)) = (cors, origin.as_deref())
        && method == Method::OPTIONS
        && fields.contains("access-control-request-method")
    {
        let mut response = local_response(200, "");
        if headers::origin_allowed(&cors, origin) {
            headers::preflight_headers(&cors, origin, response.headers_mut());
        }
        return response.into();
    }

    if let ActionDecision::Forward { cluster, .. } = &decision.action {
        // Known before the fault phase, so aborted and delayed requests count for it.
        facts.cluster = Some(cluster.id());
    }
    if let Some(response) = fault(&decision, facts).await {
        return response.into();
    }

    let mut response = match decision.action {
        ActionDecision::Redirect(redirect_view) => redirect(&redirect_view, authority, &uri).into(),
        ActionDecision::DirectResponse { status, body } => {
            local_reply(status, Bytes::copy_from_slice(body))
        }
        ActionDecision::Forward {
            destination,
            cluster,
        } => {
            let request = upstream::Forward {
                loaded,
                decision: &decision,
                destination,
                cluster,
                authority,
                method,
                uri,
                fields,
                peer,
                random,
            };
            upstream::forward(proxy, request, body, facts).await
        }
    };
    if let (Some(cors), Some(origin)) = (cors, origin.as_deref())
        && headers::origin_allowed(&cors, origin)
    {
        headers::cors_response_headers(&cors, origin, response.headers_mut());
    }
    response
}

/// The fault phase: the delay first, then the abort (Istio applies both when both fire).
async fn fault(decision: &RouteDecision<'_>, facts: &mut RequestFacts) -> Option<Response<Body>> {
    if let Some(ms) = decision.fault.delay_ms {
        facts.flags.set(Flags::DI);
        tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
    }
    match decision.fault.abort? {
        Abort::HttpStatus(status) => {
            facts.flags.set(Flags::FI);
            Some(local_response(status, "fault filter abort"))
        }
        Abort::GrpcStatus(code) => {
            // gRPC carries errors in a 200 response's grpc-status header.
            facts.flags.set(Flags::FI);
            let mut response = local_response(200, "");
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            if let Ok(value) = HeaderValue::from_str(code) {
                headers.insert("grpc-status", value);
            }
            Some(response)
        }
    }
}

/// The redirect action: `Location` from the request with the configured parts replaced.
fn redirect(redirect_view: &RedirectView<'_>, authority: &str, uri: &Uri) -> Response<Body> {
    let scheme = redirect_view
        .scheme
        .unwrap_or_else(|| uri.scheme_str().unwrap_or("http"));
    let (request_host, request_port) = split_host_port(authority);
    let host = redirect_view.authority.unwrap_or(request_host);
    // Istio derivePort FROM_REQUEST_PORT keeps the request's port; without it, a rewritten
    // authority drops the port and an unchanged one keeps it.
    let port = redirect_view.port.or(
        if redirect_view.derive_port_from_request || redirect_view.authority.is_none() {
            request_port
        } else {
            None
        },
    );
    let client_path;
    let path = match redirect_view.uri {
        Some(path) => path,
        None => {
            client_path = crate::h1::origin_form(uri);
            client_path.as_str()
        }
    };
    let location = match port {
        Some(port) => format!("{scheme}://{host}:{port}{path}"),
        None => format!("{scheme}://{host}{path}"),
    };
    let code = if redirect_view.code == 0 {
        301
    } else {
        redirect_view.code
    };
    let mut response = local_response(code, "");
    match HeaderValue::from_str(&location) {
        Ok(value) => {
            response.headers_mut().insert(header::LOCATION, value);
            response
        }
        Err(_) => local_response(
            500,
            "internal error: the redirect location is not a valid header\n",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::split_host_port;

    #[test]
    fn authorities_split_into_host_and_port() {
        assert_eq!(split_host_port("reviews"), ("reviews", None));
        assert_eq!(split_host_port("reviews:9080"), ("reviews", Some(9080)));
        assert_eq!(split_host_port("[::1]:80"), ("[::1]", Some(80)));
        assert_eq!(split_host_port("[::1]"), ("[::1]", None));
        assert_eq!(split_host_port("::1"), ("::1", None));
        assert_eq!(split_host_port("a:b"), ("a:b", None));
    }
}
