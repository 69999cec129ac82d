//! Header work at the edges: hop-by-hop removal, forwarding headers, the route's and
//! destination's header operations, and CORS.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use mesh_table::{CorsView, HeaderOp, OriginMatch};

use crate::fields::{ProxyField, RequestFields};

/// Header names the request path looks up on every request, parsed once (a lookup by `&str`
/// parses and validates the name each time).
pub mod names {
    use http::header::HeaderName;

    pub const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
    pub const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
    pub const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
}

/// Lower-case hex digits, for the values the proxy writes without `fmt`.
pub const HEX: &[u8; 16] = b"0123456789abcdef";

/// Two lower-case hex digits for each byte value.
const HEX_PAIRS: [[u8; 2]; 256] = {
    let mut pairs = [[0; 2]; 256];
    let mut i = 0;
    while i < 256 {
        pairs[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    pairs
};

/// Writes `value` as lower-case hex into all of `out`, most significant digit first (the high
/// digits that do not fit are dropped). Two digits per step.
pub fn write_hex(out: &mut [u8], value: u128) {
    let mut v = value;
    let mut pairs = out.rchunks_exact_mut(2);
    for pair in &mut pairs {
        pair.copy_from_slice(&HEX_PAIRS[(v & 0xff) as usize]);
        v >>= 8;
    }
    if let [first] = pairs.into_remainder() {
        *first = HEX[(v & 0xf) as usize];
    }
}

/// A random version 4 UUID in Envoy's `x-request-id` form, from two random words.
pub fn request_id(a: u64, b: u64) -> [u8; 36] {
    let mut id = *b"00000000-0000-4000-8000-000000000000";
    write_hex(&mut id[0..8], u128::from(a >> 32));
    write_hex(&mut id[9..13], u128::from((a >> 16) & 0xffff));
    write_hex(&mut id[15..18], u128::from(a & 0xfff));
    write_hex(&mut id[19..23], u128::from(0x8000 | ((b >> 48) & 0x3fff)));
    write_hex(&mut id[24..36], u128::from(b & 0xffff_ffff_ffff));
    id
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TE
        || name == header::TRAILER
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name == names::KEEP_ALIVE
        || name == names::PROXY_CONNECTION
}

/// RFC 9110 §7.6.1: Connection, the headers it names, and the classic hop-by-hop list.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names finds the hop-by-hop ones present (usually none, or only
    // `Connection`); only those are removed, rather than seven removals that each hash a name.
    let mut present: Vec<HeaderName> = headers
        .keys()
        .filter(|n| is_hop_by_hop(n))
        .cloned()
        .collect();
    if present.is_empty() {
        return;
    }
    for value in headers.get_all(header::CONNECTION) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for token in value.split(',').map(str::trim) {
            // The common tokens name no header (`close`) or one already on the list.
            if token.eq_ignore_ascii_case("keep-alive")
                || token.eq_ignore_ascii_case("close")
                || token.is_empty()
            {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                present.push(name);
            }
        }
    }
    for name in present {
        headers.remove(name);
    }
}

/// Decimal digits of an IPv4 address into `out`; returns the length (at most 15).
fn write_ipv4(out: &mut [u8; 15], ip: std::net::Ipv4Addr) -> usize {
    let mut len = 0;
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            out[len] = b'.';
            len += 1;
        }
        if octet >= 100 {
            out[len] = b'0' + octet / 100;
            len += 1;
        }
        if octet >= 10 {
            out[len] = b'0' + (octet / 10) % 10;
            len += 1;
        }
        out[len] = b'0' + octet % 10;
        len += 1;
    }
    len
}

/// Appends the client to `x-forwarded-for` and sets `x-forwarded-proto` when absent. (The
/// `x-request-id` a request lacked was added when it began: `Observer::begin`.)
pub fn add_forwarding(fields: &mut RequestFields, client_ip: IpAddr, scheme: &str) {
    let mut v4 = [0u8; 15];
    let ip_text;
    let ip: &[u8] = match client_ip {
        IpAddr::V4(ip) => {
            let len = write_ipv4(&mut v4, ip);
            &v4[..len]
        }
        IpAddr::V6(ip) => {
            ip_text = ip.to_string();
            ip_text.as_bytes()
        }
    };
    match fields.get_proxy(ProxyField::ForwardedFor) {
        Some(existing) => {
            let mut joined = Vec::with_capacity(existing.len() + 2 + ip.len());
            joined.extend_from_slice(existing);
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(ip);
            fields.insert(ProxyField::ForwardedFor, &joined);
        }
        None => {
            fields.insert(ProxyField::ForwardedFor, ip);
        }
    }
    if fields.get_proxy(ProxyField::ForwardedProto).is_none() {
        fields.insert(ProxyField::ForwardedProto, scheme.as_bytes());
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
    fn a_lone_connection_header_goes_and_the_rest_stays() {
        for connection in ["keep-alive", "close", "Keep-Alive, , x-gone"] {
            let mut headers = HeaderMap::new();
            headers.insert("connection", connection.parse().unwrap());
            headers.insert("x-gone", "1".parse().unwrap());
            headers.insert("content-length", "2".parse().unwrap());
            strip_hop_by_hop(&mut headers);
            let mut names: Vec<_> = headers.keys().map(|k| k.as_str()).collect();
            names.sort_unstable();
            let expected: &[&str] = if connection.contains("x-gone") {
                &["content-length"]
            } else {
                &["content-length", "x-gone"]
            };
            assert_eq!(names, expected, "{connection}");
        }
        // Nothing hop-by-hop: nothing changes.
        let mut headers = HeaderMap::new();
        headers.insert("x-a", "1".parse().unwrap());
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
    }

    #[test]
    fn forwarding_headers_append_and_keep_the_clients() {
        let client = "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\n\r\n";
        let mut map = HeaderMap::new();
        map.insert("x-forwarded-for", "10.0.0.1".parse().unwrap());
        map.insert("x-forwarded-proto", "https".parse().unwrap());
        for mut fields in [
            RequestFields::from(map),
            crate::fields::tests::lines(client),
        ] {
            add_forwarding(&mut fields, IpAddr::from([127, 0, 0, 1]), "http");
            assert_eq!(
                fields.get_str("x-forwarded-for"),
                Some("10.0.0.1, 127.0.0.1")
            );
            assert_eq!(fields.get_str("x-forwarded-proto"), Some("https"));
            assert_eq!(fields.get_all("x-forwarded-for").count(), 1);
        }
        for mut fresh in [
            RequestFields::default(),
            crate::fields::tests::lines("GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        ] {
            add_forwarding(&mut fresh, IpAddr::from([127, 0, 0, 1]), "http");
            assert_eq!(fresh.get_str("x-forwarded-for"), Some("127.0.0.1"));
            assert_eq!(fresh.get_str("x-forwarded-proto"), Some("http"));
        }
    }

    #[test]
    fn hex_fills_its_slice_from_the_right() {
        for (len, value, expected) in [
            (32, u128::MAX, "ffffffffffffffffffffffffffffffff"),
            (16, 0x00f0_67aa_0ba9_02b7, "00f067aa0ba902b7"),
            (3, 0xabc, "abc"),
            (3, 0x1abc, "abc"),
            (1, 0xf, "f"),
            (5, 0x12, "00012"),
            (0, 7, ""),
        ] {
            let mut out = vec![b'?'; len];
            write_hex(&mut out, value);
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
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
