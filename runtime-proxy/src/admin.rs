//! The admin listener: liveness and readiness probes, Prometheus metrics, and a JSON summary
//! of the loaded table.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::UNIX_EPOCH;

use http::{Method, header};

use crate::downstream::Request;
use crate::observe::Observer;
use crate::proxy::{Reply, local_response};
use crate::reload::hex;
use crate::state::Shared;

pub async fn handle(
    shared: Arc<Shared>,
    observer: Arc<Observer>,
    req: Request,
) -> Result<Reply, Infallible> {
    if req.method != Method::GET && req.method != Method::HEAD {
        return Ok(local_response(405, "method not allowed\n").into());
    }
    let response = match req.uri.path() {
        "/healthz/live" => local_response(200, "live\n"),
        // The proxy only starts serving once a table validated, and a later bad table never
        // replaces a good one, so a running proxy always has a table.
        "/healthz/ready" => local_response(200, "ready\n"),
        "/metrics" => match observer.metrics() {
            Some(metrics) => {
                let (text, content_type) = metrics.render();
                let mut response = local_response(200, text);
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static(content_type),
                );
                response
            }
            None => local_response(404, "metrics are off (--metrics off)\n"),
        },
        "/table" => {
            let mut response = local_response(200, table_json(&shared));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            response
        }
        _ => local_response(404, "not found\n"),
    };
    Ok(response.into())
}

/// Facts about the current table; every value is a number or hex, so no escaping is needed.
pub fn table_json(shared: &Shared) -> String {
    let loaded = shared.current.load();
    let info = loaded.table.info();
    let loaded_at_ms = loaded
        .loaded_at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!(
        concat!(
            "{{\"format_version\":{},\"content_hash\":\"{}\",\"loaded_at_unix_ms\":{},",
            "\"size_bytes\":{},\"reloads_ok\":{},\"reloads_failed\":{},",
            "\"virtual_hosts\":{},\"routes\":{},\"clusters\":{}}}\n"
        ),
        info.version,
        hex(&info.content_hash),
        loaded_at_ms,
        loaded.size,
        shared.reloads_ok.load(Ordering::Relaxed),
        shared.reloads_failed.load(Ordering::Relaxed),
        loaded.table.virtual_hosts().len(),
        loaded
            .table
            .virtual_hosts()
            .map(|v| v.routes().len())
            .sum::<usize>(),
        loaded.table.clusters().len(),
    )
}
