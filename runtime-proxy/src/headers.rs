//! Header work at the edges: the table's `Headers` view over hyper's map, hop-by-hop removal,
//! forwarding headers, the route's and destination's header operations, and CORS.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use mesh_table::{CorsView, HeaderOp, OriginMatch};

/// The table's view of request headers, borrowing hyper's map (no copy per request). A
/// repeated header gives its first value; a value that is not visible ASCII is absent.
pub struct HeaderMapView<'h>(pub &'h HeaderMap);

impl mesh_table::Headers for HeaderMapView<'_> {
    fn get(&self, lowercase_name: &str) -> Option<&str> {
        self.0.get(lowercase_name)?.to_str().ok()
    }
}

/// RFC 9110 §7.6.1: Connection, the headers it names, and the classic hop-by-hop list.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

/// Appends the client to `x-forwarded-for`, sets `x-forwarded-proto` when absent, and adds an
/// `x-request-id` when the client sent none.
pub fn add_forwarding(headers: &mut HeaderMap, client_ip: IpAddr, scheme: &str, random: u64) {
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(existing) => format!("{existing}, {client_ip}"),
        None => client_ip.to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&xff) {
        headers.insert("x-forwarded-for", value);
    }
    if !headers.contains_key("x-forwarded-proto")
        && let Ok(value) = HeaderValue::from_str(scheme)
    {
        headers.insert("x-forwarded-proto", value);
    }
    if !headers.contains_key("x-request-id") {
        let hi = crate::rng::next_u64();
        let id = format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xfff,
            0x8000 | ((random >> 48) & 0x3fff),
            random & 0xffff_ffff_ffff
        );
        if let Ok(value) = HeaderValue::from_str(&id) {
            headers.insert("x-request-id", value);
        }
    }
}

/// Applies Istio header operations in order: `set` replaces, `add` appends, `remove` drops.
/// The compiler validated names and values; one that still does not parse is skipped.
pub fn apply_ops<'t>(headers: &mut HeaderMap, ops: impl Iterator<Item = HeaderOp<'t>>) {
    for op in ops {
        match op {
            HeaderOp::Set(name, value) | HeaderOp::Add(name, value) => {
                let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(value),
                ) else {
                    continue;
                };
                if matches!(op, HeaderOp::Set(..)) {
                    headers.insert(name, value);
                } else {
                    headers.append(name, value);
                }
            }
            HeaderOp::Remove(name) => {
                if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
                    headers.remove(name);
                }
            }
        }
    }
}

/// Whether the CORS policy allows `origin`. Regex origins are not evaluated yet (the proxy has
/// no capturing regex engine), so they never match.
pub fn origin_allowed(cors: &CorsView<'_>, origin: &str) -> bool {
    cors.allow_origins().any(|m| match m {
        OriginMatch::Exact(value) => value == "*" || value == origin,
        OriginMatch::Prefix(value) => origin.starts_with(value),
        OriginMatch::Regex(_) => false,
    })
}

fn join<'t>(items: impl Iterator<Item = &'t str>) -> String {
    items.collect::<Vec<_>>().join(",")
}

/// The headers of a CORS preflight answer for an allowed origin.
pub fn preflight_headers(cors: &CorsView<'_>, origin: &str, headers: &mut HeaderMap) {
    let mut put = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    put("access-control-allow-origin", origin.to_owned());
    let methods = join(cors.allow_methods());
    if !methods.is_empty() {
        put("access-control-allow-methods", methods);
    }
    let allow = join(cors.allow_headers());
    if !allow.is_empty() {
        put("access-control-allow-headers", allow);
    }
    if let Some(max_age) = cors.max_age_s() {
        put("access-control-max-age", max_age.to_string());
    }
    if cors.allow_credentials() == Some(true) {
        put("access-control-allow-credentials", "true".to_owned());
    }
}

/// CORS headers on an ordinary response to an allowed origin.
pub fn cors_response_headers(cors: &CorsView<'_>, origin: &str, headers: &mut HeaderMap) {
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert("access-control-allow-origin", value);
    }
    let expose = join(cors.expose_headers());
    if !expose.is_empty()
        && let Ok(value) = HeaderValue::from_str(&expose)
    {
        headers.insert("access-control-expose-headers", value);
    }
    if cors.allow_credentials() == Some(true) {
        headers.insert(
            "access-control-allow-credentials",
            HeaderValue::from_static("true"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_removed() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "x-private, keep-alive"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-sum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("x-kept", "yes"),
        ] {
            headers.insert(name, value.parse().unwrap());
        }
        strip_hop_by_hop(&mut headers);
        let names: Vec<_> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-kept"]);
    }

    #[test]
    fn forwarding_headers_append_and_keep_a_request_id() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "10.0.0.1".parse().unwrap());
        headers.insert("x-request-id", "abc".parse().unwrap());
        add_forwarding(&mut headers, IpAddr::from([127, 0, 0, 1]), "http", 5);
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["x-request-id"], "abc");
        let mut fresh = HeaderMap::new();
        add_forwarding(&mut fresh, IpAddr::from([127, 0, 0, 1]), "http", 5);
        assert_eq!(fresh["x-request-id"].len(), 36);
    }

    #[test]
    fn header_operations_set_add_remove() {
        let mut headers = HeaderMap::new();
        headers.insert("x-a", "old".parse().unwrap());
        headers.insert("x-gone", "1".parse().unwrap());
        apply_ops(
            &mut headers,
            [
                HeaderOp::Set("x-a", "new"),
                HeaderOp::Add("x-b", "1"),
                HeaderOp::Add("x-b", "2"),
                HeaderOp::Remove("x-gone"),
                HeaderOp::Set("bad name", "skipped"),
            ]
            .into_iter(),
        );
        assert_eq!(headers["x-a"], "new");
        assert_eq!(headers.get_all("x-b").iter().count(), 2);
        assert!(!headers.contains_key("x-gone"));
        assert_eq!(headers.len(), 3);
    }
}
