//! The typed VirtualService: hosts resolved, HTTP rules with typed matches, destinations,
//! faults, retries and durations, each with the span of the YAML it came from.

use std::collections::BTreeMap;

use super::read::{self, Cx};
use super::retry_on::{self, RetryOn};
use super::{Dur, Host, Meta, Percent, Spanned, host};
use crate::parse::{Node, Value};
use crate::source::Span;

#[derive(Debug)]
pub struct VirtualService {
    pub meta: Meta,
    pub hosts: Vec<Host>,
    pub gateways: Vec<Spanned<String>>,
    pub export_to: Vec<Spanned<String>>,
    pub http: Vec<HttpRoute>,
}

impl VirtualService {
    /// Whether the rules apply to sidecars: no `gateways`, or `mesh` among them.
    pub fn is_mesh_bound(&self) -> bool {
        self.gateways.is_empty() || self.gateways.iter().any(|g| g.value == "mesh")
    }

    /// A delegate VirtualService has no hosts; a root's `delegate` refers to it.
    pub fn is_delegate(&self) -> bool {
        self.hosts.is_empty()
    }
}

/// One `http[]` rule.
#[derive(Debug)]
pub struct HttpRoute {
    pub index: usize,
    /// The start of the rule's mapping (its first key).
    pub span: Span,
    pub name: Option<Spanned<String>>,
    pub matches: Vec<HttpMatch>,
    /// The `match` key, when present.
    pub match_key: Option<Span>,
    pub route: Vec<RouteDestination>,
    pub route_key: Option<Span>,
    pub redirect: Option<Box<Redirect>>,
    pub direct_response: Option<Box<DirectResponse>>,
    pub delegate: Option<Box<Delegate>>,
    pub rewrite: Option<Box<Rewrite>>,
    pub timeout: Option<Dur>,
    pub retries: Option<Box<Retries>>,
    pub fault: Option<Box<Fault>>,
    /// `mirror` with its `mirrorPercentage` (or deprecated `mirrorPercent`).
    pub mirror: Option<Mirror>,
    pub mirrors: Vec<Mirror>,
    pub mirrors_key: Option<Span>,
    pub cors: Option<Box<Cors>>,
    pub headers: Box<HeaderOps>,
    /// The deprecated `mirrorPercent` (or `mirror_percent`) key, when written (MR2).
    pub mirror_percent_key: Option<Span>,
}

impl HttpRoute {
    /// How messages name the rule: `` `name` `` or `#index` (Istio's form, 0-based).
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("`{}`", name.value),
            None => format!("#{}", self.index),
        }
    }

    /// Where to point at the rule as a whole: its name, else its first key.
    pub fn anchor(&self) -> Span {
        self.name.as_ref().map_or(self.span, |n| n.span)
    }

    /// Every destination the rule sends (`"destination"`) or copies (`"mirror"`) traffic to.
    pub fn destinations(&self) -> impl Iterator<Item = (&'static str, &Destination)> {
        self.route
            .iter()
            .map(|r| ("destination", &r.destination))
            .chain(self.mirror.iter().map(|m| ("mirror", &m.destination)))
            .chain(self.mirrors.iter().map(|m| ("mirror", &m.destination)))
    }
}

/// Istio `StringMatch`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StringMatch {
    Exact(String),
    Prefix(String),
    /// RE2 syntax, matched against the whole value.
    Regex(String),
}

impl StringMatch {
    pub fn text(&self) -> &str {
        match self {
            StringMatch::Exact(s) | StringMatch::Prefix(s) | StringMatch::Regex(s) => s,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            StringMatch::Exact(_) => "exact",
            StringMatch::Prefix(_) => "prefix",
            StringMatch::Regex(_) => "regex",
        }
    }
}

/// A string match with where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct MatchValue {
    pub matcher: StringMatch,
    /// The `exact`/`prefix`/`regex` value scalar.
    pub span: Span,
}

/// A header, query-parameter or withoutHeaders condition.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HeaderMatch {
    /// `{}` or `regex: "*"`: the header is present, with any value.
    Present,
    Match(StringMatch),
}

/// One named condition of `headers`, `withoutHeaders` or `queryParams`.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyedMatch {
    /// Header names lower case; query parameter names as written.
    pub name: String,
    pub name_span: Span,
    pub matcher: HeaderMatch,
    /// The value scalar, or the name when the condition is `{}`.
    pub span: Span,
}

/// One `match[]` entry: every condition must hold.
#[derive(Clone, Debug)]
pub struct HttpMatch {
    pub index: usize,
    pub span: Span,
    pub name: Option<String>,
    pub uri: Option<MatchValue>,
    pub scheme: Option<MatchValue>,
    pub method: Option<MatchValue>,
    pub authority: Option<MatchValue>,
    pub headers: Vec<KeyedMatch>,
    pub without_headers: Vec<KeyedMatch>,
    pub query_params: Vec<KeyedMatch>,
    pub port: Option<u16>,
    pub ignore_uri_case: bool,
    /// Config-time selectors: which clients and gateways the match applies to.
    pub source_labels: BTreeMap<String, String>,
    pub source_namespace: Option<String>,
    pub gateways: Vec<String>,
    /// `gateways` with where each name was written.
    pub gateway_names: Vec<Spanned<String>>,
    /// The entry without its `name`, keys sorted: equal texts are duplicate matches (V13).
    pub canonical: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Destination {
    pub host: Host,
    pub subset: Option<Spanned<String>>,
    pub port: Option<Spanned<u16>>,
    /// The `destination` (or `mirror`) key.
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct RouteDestination {
    pub destination: Destination,
    /// As written; Istio reads a missing weight as 0 (100 for a single destination).
    pub weight: Option<Spanned<i64>>,
    pub headers: HeaderOps,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Redirect {
    pub span: Span,
    pub uri: Option<String>,
    pub authority: Option<String>,
    pub port: Option<u16>,
    pub derive_port: Option<String>,
    pub scheme: Option<String>,
    /// `redirectCode`; Istio's default is 301.
    pub code: Option<Spanned<i64>>,
    /// `uri` with its span.
    pub uri_value: Option<Spanned<String>>,
    /// `prefixRewrite`: replaces the matched prefix (R1, R2).
    pub prefix_rewrite: Option<Spanned<String>>,
    /// `scheme` with its span.
    pub scheme_value: Option<Spanned<String>>,
}

#[derive(Clone, Debug)]
pub struct DirectResponse {
    pub span: Span,
    pub status: Option<Spanned<i64>>,
    /// `body.string`, or `body.bytes` decoded from base64.
    pub body: Option<Vec<u8>>,
    /// The `body` key.
    pub body_key: Option<Span>,
}

#[derive(Clone, Debug)]
pub struct Delegate {
    pub span: Span,
    pub name: String,
    pub namespace: String,
}

#[derive(Clone, Debug)]
pub struct Rewrite {
    pub span: Span,
    pub uri: Option<String>,
    pub authority: Option<String>,
    /// `uriRegexRewrite`: (match, rewrite).
    pub uri_regex: Option<(MatchValue, String)>,
    /// `uri` with its span.
    pub uri_value: Option<Spanned<String>>,
    /// `authority` with its span.
    pub authority_value: Option<Spanned<String>>,
    /// The `uriRegexRewrite` block as written, even when `match` is missing (RW3).
    pub uri_regex_block: Option<RegexRewriteBlock>,
}

/// `rewrite.uriRegexRewrite` as written.
#[derive(Clone, Debug)]
pub struct RegexRewriteBlock {
    /// The `uriRegexRewrite` key.
    pub span: Span,
    pub match_regex: Option<Spanned<String>>,
    pub rewrite: Option<Spanned<String>>,
}

#[derive(Clone, Debug)]
pub struct Fault {
    pub span: Span,
    pub delay: Option<Delay>,
    pub abort: Option<Abort>,
}

#[derive(Clone, Debug)]
pub struct Delay {
    pub span: Span,
    pub fixed: Option<Dur>,
    pub exponential: bool,
    pub percentage: Option<Percent>,
    /// Deprecated integer `percent`, used only when `percentage` is absent.
    pub percent: Option<Spanned<i64>>,
}

impl Delay {
    /// The share of requests delayed; Istio: unset means 0 (never).
    pub fn effective_percent(&self) -> Option<f64> {
        self.percentage
            .map(|p| p.value)
            .or(self.percent.as_ref().map(|p| p.value as f64))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum AbortKind {
    HttpStatus(i64),
    GrpcStatus(String),
    Http2Error(String),
}

#[derive(Clone, Debug)]
pub struct Abort {
    pub span: Span,
    pub kind: Option<Spanned<AbortKind>>,
    pub percentage: Option<Percent>,
}

#[derive(Clone, Debug)]
pub struct Retries {
    pub span: Span,
    pub attempts: Option<Spanned<i64>>,
    pub per_try_timeout: Option<Dur>,
    /// The `perTryTimeout` key, set even when its value was rejected.
    pub per_try_timeout_key: Option<Span>,
    pub retry_on: Option<RetryOn>,
    pub backoff: Option<Dur>,
    pub retry_remote_localities: Option<Spanned<bool>>,
    pub retry_ignore_previous_hosts: Option<bool>,
}

impl Retries {
    /// Retries after the first try. Istio: a `retries` block without `attempts` retries
    /// nothing (only a missing block gets the default of 2).
    pub fn attempts(&self) -> i64 {
        self.attempts.as_ref().map_or(0, |a| a.value)
    }
}

#[derive(Clone, Debug)]
pub struct Mirror {
    pub destination: Destination,
    /// Istio: unset means 100%.
    pub percentage: Option<Percent>,
    pub span: Span,
}

impl Mirror {
    pub fn effective_percent(&self) -> f64 {
        self.percentage.map_or(100.0, |p| p.value)
    }
}

#[derive(Clone, Debug)]
pub struct Cors {
    pub span: Span,
    pub allow_origins: Vec<MatchValue>,
    pub allow_methods: Vec<Spanned<String>>,
    pub allow_headers: Vec<Spanned<String>>,
    pub expose_headers: Vec<Spanned<String>>,
    pub max_age: Option<Dur>,
    pub allow_credentials: Option<bool>,
    /// `allowOrigins` entries with no `exact`, `prefix` or `regex` (C1).
    pub empty_allow_origins: Vec<Span>,
}

#[derive(Clone, Debug, Default)]
pub struct HeaderOps {
    pub request: HeaderOpSet,
    pub response: HeaderOpSet,
}

/// `set`/`add` as (name, value) with the name's key span and the value's span; `remove`.
#[derive(Clone, Debug, Default)]
pub struct HeaderOpSet {
    pub set: Vec<(Spanned<String>, Spanned<String>)>,
    pub add: Vec<(Spanned<String>, Spanned<String>)>,
    pub remove: Vec<Spanned<String>>,
}

pub(super) fn build(meta: Meta, spec: &Node, cx: &mut Cx) -> VirtualService {
    let ns = meta.namespace.clone();
    let hosts = read::strings(spec, "hosts")
        .into_iter()
        .map(|h| Host {
            fqdn: host::resolve(&h.value, &ns),
            written: h.value,
            span: h.span,
        })
        .collect();
    let http = read::seq(spec, "http")
        .iter()
        .enumerate()
        .filter(|(_, n)| n.as_map().is_some())
        .map(|(i, n)| build_route(i, n, &ns, cx))
        .collect();
    VirtualService {
        gateways: read::strings(spec, "gateways"),
        export_to: read::strings(spec, "exportTo"),
        hosts,
        http,
        meta,
    }
}

fn build_route(index: usize, node: &Node, ns: &str, cx: &mut Cx) -> HttpRoute {
    let matches = read::seq(node, "match")
        .iter()
        .enumerate()
        .filter(|(_, n)| n.as_map().is_some())
        .map(|(i, n)| build_match(i, n))
        .collect();
    let route = read::seq(node, "route")
        .iter()
        .filter_map(|r| {
            let entry = r.entry("destination")?;
            Some(RouteDestination {
                destination: destination(&entry.value, entry.key_span, ns)?,
                weight: read::int(r, "weight"),
                headers: header_ops(r.get("headers")),
                span: r.span,
            })
        })
        .collect();
    let mirror = node.entry("mirror").and_then(|e| {
        let mut percentage = read::percent(node, "mirrorPercentage");
        for alias in ["mirrorPercent", "mirror_percent"] {
            if percentage.is_none() {
                percentage = read::int(node, alias).map(|p| Percent {
                    value: p.value as f64,
                    span: p.span,
                });
            }
        }
        Some(Mirror {
            destination: destination(&e.value, e.key_span, ns)?,
            percentage,
            span: e.key_span,
        })
    });
    let mirrors = read::seq(node, "mirrors")
        .iter()
        .filter_map(|m| {
            let e = m.entry("destination")?;
            Some(Mirror {
                destination: destination(&e.value, e.key_span, ns)?,
                percentage: read::percent(m, "percentage"),
                span: m.span,
            })
        })
        .collect();
    HttpRoute {
        index,
        span: node.span,
        name: read::spanned_string(node, "name"),
        matches,
        match_key: read::key_span(node, "match"),
        route,
        route_key: read::key_span(node, "route"),
        redirect: node
            .entry("redirect")
            .map(|e| Box::new(redirect(&e.value, e.key_span))),
        direct_response: node
            .entry("directResponse")
            .map(|e| Box::new(direct_response(&e.value, e.key_span))),
        delegate: node.entry("delegate").map(|e| {
            Box::new(Delegate {
                span: e.key_span,
                name: read::string(&e.value, "name")
                    .map_or("", |s| s.0)
                    .to_owned(),
                namespace: read::string(&e.value, "namespace")
                    .map_or(ns, |s| s.0)
                    .to_owned(),
            })
        }),
        rewrite: node
            .entry("rewrite")
            .map(|e| Box::new(rewrite(&e.value, e.key_span))),
        timeout: cx.duration(node, "timeout", false),
        retries: node
            .entry("retries")
            .map(|e| Box::new(retries(&e.value, e.key_span, cx))),
        fault: node
            .entry("fault")
            .map(|e| Box::new(fault(&e.value, e.key_span, cx))),
        mirror,
        mirrors,
        mirrors_key: read::key_span(node, "mirrors"),
        cors: node
            .entry("corsPolicy")
            .map(|e| Box::new(cors(&e.value, e.key_span, cx))),
        headers: Box::new(header_ops(node.get("headers"))),
        mirror_percent_key: read::key_span(node, "mirrorPercent")
            .or_else(|| read::key_span(node, "mirror_percent")),
    }
}

fn destination(node: &Node, span: Span, ns: &str) -> Option<Destination> {
    let (written, host_span) = read::string(node, "host")?;
    Some(Destination {
        host: Host {
            fqdn: host::resolve(written, ns),
            written: written.to_owned(),
            span: host_span,
        },
        subset: read::spanned_string(node, "subset"),
        port: node.get("port").and_then(|p| read::port(p, "number")),
        span,
    })
}

pub(super) fn string_match(node: &Node) -> Option<MatchValue> {
    ["exact", "prefix", "regex"].into_iter().find_map(|kind| {
        let (text, span) = read::string(node, kind)?;
        let text = text.to_owned();
        let matcher = match kind {
            "exact" => StringMatch::Exact(text),
            "prefix" => StringMatch::Prefix(text),
            _ => StringMatch::Regex(text),
        };
        Some(MatchValue { matcher, span })
    })
}

fn keyed(node: &Node, key: &str, lower_case: bool) -> Vec<KeyedMatch> {
    node.get(key)
        .and_then(Node::as_map)
        .unwrap_or(&[])
        .iter()
        .filter(|e| e.value.as_map().is_some())
        .map(|e| {
            let value = string_match(&e.value);
            let (matcher, span) = match value {
                // Istio: `{}` and `regex: "*"` mean "present with any value".
                None => (HeaderMatch::Present, e.key_span),
                Some(MatchValue {
                    matcher: StringMatch::Regex(r),
                    span,
                }) if r == "*" => (HeaderMatch::Present, span),
                Some(v) => (HeaderMatch::Match(v.matcher), v.span),
            };
            KeyedMatch {
                name: if lower_case {
                    e.key.to_ascii_lowercase()
                } else {
                    e.key.clone()
                },
                name_span: e.key_span,
                matcher,
                span,
            }
        })
        .collect()
}

fn build_match(index: usize, node: &Node) -> HttpMatch {
    let field = |key: &str| node.get(key).and_then(string_match);
    HttpMatch {
        index,
        span: node.span,
        name: read::string(node, "name").map(|s| s.0.to_owned()),
        uri: field("uri"),
        scheme: field("scheme"),
        method: field("method"),
        authority: field("authority"),
        headers: keyed(node, "headers", true),
        without_headers: keyed(node, "withoutHeaders", true),
        query_params: keyed(node, "queryParams", false),
        port: read::port(node, "port").map(|p| p.value),
        ignore_uri_case: read::boolean(node, "ignoreUriCase").unwrap_or(false),
        source_labels: read::string_map(node, "sourceLabels"),
        source_namespace: read::string(node, "sourceNamespace").map(|s| s.0.to_owned()),
        gateways: read::strings(node, "gateways")
            .into_iter()
            .map(|g| g.value)
            .collect(),
        gateway_names: read::strings(node, "gateways"),
        canonical: canonical(node, true),
    }
}

/// A stable text of a node with mapping keys sorted (and the top-level `name` dropped).
fn canonical(node: &Node, drop_name: bool) -> String {
    match &node.value {
        Value::Map(entries) => {
            let mut parts: Vec<(&str, String)> = entries
                .iter()
                .filter(|e| !(drop_name && e.key == "name"))
                .map(|e| (e.key.as_str(), canonical(&e.value, false)))
                .collect();
            parts.sort();
            let inner: Vec<String> = parts
                .into_iter()
                .map(|(k, v)| format!("{k:?}:{v}"))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Seq(items) => {
            let inner: Vec<String> = items.iter().map(|n| canonical(n, false)).collect();
            format!("[{}]", inner.join(","))
        }
        _ => node.to_json().to_string(),
    }
}

fn redirect(node: &Node, span: Span) -> Redirect {
    let text = |k: &str| read::string(node, k).map(|s| s.0.to_owned());
    Redirect {
        span,
        uri: text("uri"),
        authority: text("authority"),
        port: read::port(node, "port").map(|p| p.value),
        derive_port: text("derivePort"),
        scheme: text("scheme"),
        code: read::int(node, "redirectCode"),
        uri_value: read::spanned_string(node, "uri"),
        prefix_rewrite: read::spanned_string(node, "prefixRewrite"),
        scheme_value: read::spanned_string(node, "scheme"),
    }
}

fn direct_response(node: &Node, span: Span) -> DirectResponse {
    let body = node.get("body").and_then(|b| {
        if let Some((s, _)) = read::string(b, "string") {
            Some(s.as_bytes().to_vec())
        } else {
            read::string(b, "bytes").and_then(|(s, _)| base64_decode(s))
        }
    });
    DirectResponse {
        span,
        status: read::int(node, "status"),
        body,
        body_key: read::key_span(node, "body"),
    }
}

fn rewrite(node: &Node, span: Span) -> Rewrite {
    let uri_regex = node.get("uriRegexRewrite").and_then(|r| {
        let (m, m_span) = read::string(r, "match")?;
        let (w, _) = read::string(r, "rewrite").unwrap_or(("", Span::default()));
        Some((
            MatchValue {
                matcher: StringMatch::Regex(m.to_owned()),
                span: m_span,
            },
            w.to_owned(),
        ))
    });
    Rewrite {
        span,
        uri: read::string(node, "uri").map(|s| s.0.to_owned()),
        authority: read::string(node, "authority").map(|s| s.0.to_owned()),
        uri_regex,
        uri_value: read::spanned_string(node, "uri"),
        authority_value: read::spanned_string(node, "authority"),
        uri_regex_block: node.entry("uriRegexRewrite").map(|e| RegexRewriteBlock {
            span: e.key_span,
            match_regex: read::spanned_string(&e.value, "match"),
            rewrite: read::spanned_string(&e.value, "rewrite"),
        }),
    }
}

fn retries(node: &Node, span: Span, cx: &mut Cx) -> Retries {
    Retries {
        span,
        attempts: read::int(node, "attempts"),
        per_try_timeout: cx.duration(node, "perTryTimeout", false),
        per_try_timeout_key: read::key_span(node, "perTryTimeout"),
        retry_on: read::string(node, "retryOn").map(|(s, span)| retry_on::parse(s, span)),
        backoff: cx.duration(node, "backoff", false),
        retry_remote_localities: node
            .get("retryRemoteLocalities")
            .and_then(|n| match n.value {
                Value::Bool(b) => Some(Spanned::new(b, n.span)),
                _ => None,
            }),
        retry_ignore_previous_hosts: read::boolean(node, "retryIgnorePreviousHosts"),
    }
}

fn fault(node: &Node, span: Span, cx: &mut Cx) -> Fault {
    let delay = node.entry("delay").map(|e| Delay {
        span: e.key_span,
        fixed: cx.duration(&e.value, "fixedDelay", false),
        exponential: e.value.get("exponentialDelay").is_some(),
        percentage: read::percent(&e.value, "percentage"),
        percent: read::int(&e.value, "percent"),
    });
    let abort = node.entry("abort").map(|e| {
        let a = &e.value;
        let kind = if let Some(s) = read::int(a, "httpStatus") {
            Some(Spanned::new(AbortKind::HttpStatus(s.value), s.span))
        } else if let Some((g, span)) = read::string(a, "grpcStatus") {
            Some(Spanned::new(AbortKind::GrpcStatus(g.to_owned()), span))
        } else {
            read::string(a, "http2Error")
                .map(|(h, span)| Spanned::new(AbortKind::Http2Error(h.to_owned()), span))
        };
        Abort {
            span: e.key_span,
            kind,
            percentage: read::percent(a, "percentage"),
        }
    });
    Fault { span, delay, abort }
}

fn cors(node: &Node, span: Span, cx: &mut Cx) -> Cors {
    Cors {
        span,
        allow_origins: read::seq(node, "allowOrigins")
            .iter()
            .filter_map(string_match)
            .collect(),
        allow_methods: read::strings(node, "allowMethods"),
        allow_headers: read::strings(node, "allowHeaders"),
        expose_headers: read::strings(node, "exposeHeaders"),
        max_age: cx.duration(node, "maxAge", false),
        allow_credentials: read::boolean(node, "allowCredentials"),
        empty_allow_origins: read::seq(node, "allowOrigins")
            .iter()
            .filter(|o| o.as_map().is_some() && string_match(o).is_none())
            .map(|o| o.span)
            .collect(),
    }
}

pub(super) fn header_ops(node: Option<&Node>) -> HeaderOps {
    let set = |n: Option<&Node>| -> HeaderOpSet {
        let Some(n) = n else {
            return HeaderOpSet::default();
        };
        let pairs = |key: &str| -> Vec<(Spanned<String>, Spanned<String>)> {
            n.get(key)
                .and_then(Node::as_map)
                .unwrap_or(&[])
                .iter()
                .filter_map(|e| {
                    let v = e.value.as_str()?;
                    Some((
                        Spanned::new(e.key.clone(), e.key_span),
                        Spanned::new(v.to_owned(), e.value.span),
                    ))
                })
                .collect()
        };
        HeaderOpSet {
            set: pairs("set"),
            add: pairs("add"),
            remove: read::strings(n, "remove"),
        }
    };
    HeaderOps {
        request: set(node.and_then(|h| h.get("request"))),
        response: set(node.and_then(|h| h.get("response"))),
    }
}

/// Standard base64 (the schema checked the alphabet); `None` for a malformed text.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\r' | b'\n' | b' ' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64() {
        assert_eq!(super::base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(super::base64_decode("aGk=").unwrap(), b"hi");
    }
}
