//! The normalized model of traffic behaviour that `meshc diff` compares and `meshc graph`
//! draws.
//!
//! It is read from a loaded table, never from YAML: a policy directory is compiled in memory
//! and loaded through the proxy's checked reader, exactly like an artifact, so both sides of
//! a diff are read by the same code. Only what changes behaviour is kept, normalized so that
//! equal behaviour gives an equal model: weights become shares (50/50 and 1/1 are the same
//! split), destinations, match conditions and retry conditions are sorted, and duplicate
//! destinations are merged. Route order is kept: Istio takes the first route that matches.

use mesh_table::{
    Abort, ActionView, ClusterView, ConditionField, ConditionTest, ConditionView, HeaderOp,
    LoadBalancer, OriginMatch, Resolution, RouteView, Table,
};
use serde_json::{Value, json};

/// Istio's retry policy for a route that sets none (the compiler fills it in, see
/// `lower.rs`); it is on almost every route, so summaries and the graph leave it out.
const ISTIO_DEFAULT_RETRY_ON: [&str; 4] = [
    "cancelled",
    "connect-failure",
    "refused-stream",
    "unavailable",
];
const ISTIO_DEFAULT_RETRY_ATTEMPTS: u32 = 2;

/// Everything a table does with traffic.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// In table order (VirtualServices sorted by namespace and name).
    pub hosts: Vec<Host>,
    /// Sorted by name.
    pub clusters: Vec<Cluster>,
}

/// A virtual host: the domains one VirtualService answers to and its ordered routes.
#[derive(Clone, Debug, PartialEq)]
pub struct Host {
    /// `namespace/name` of the VirtualService; the host's identity in a diff.
    pub name: String,
    /// Sorted.
    pub domains: Vec<String>,
    pub ports: Vec<u16>,
    /// First-match order.
    pub routes: Vec<Route>,
}

/// One `http` rule as the table holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub vs_name: String,
    /// Index of the rule in its VirtualService's `http` list.
    pub rule_index: u32,
    pub name: Option<String>,
    /// Alternatives (OR) of conditions (AND), each rendered (`end-user=jason`) and sorted.
    /// One empty alternative means every request.
    pub matches: Vec<Vec<String>>,
    pub action: Action,
    pub delay: Option<Delay>,
    pub abort: Option<AbortFault>,
    pub timeout_ms: Option<u32>,
    pub retries: Option<Retries>,
    pub request_headers: Vec<String>,
    pub response_headers: Vec<String>,
    pub rewrite: Option<Rewrite>,
    pub mirrors: Vec<Mirror>,
    pub cors: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Weighted destinations, sorted by target.
    Forward(Vec<Split>),
    Redirect(Redirect),
    Respond {
        status: u16,
        body: Vec<u8>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    pub code: u16,
    pub scheme: Option<String>,
    pub authority: Option<String>,
    pub port: Option<u16>,
    pub derive_port_from_request: bool,
    pub uri: Option<String>,
}

/// Where traffic goes: a service host, optionally narrowed to a subset and a port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    pub host: String,
    pub subset: Option<String>,
    pub port: Option<u16>,
    /// The cluster's name (`outbound|9080|v1|reviews.default.svc.cluster.local`).
    pub cluster: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub target: Target,
    /// The weight divided by the greatest common divisor of the route's weights, so that equal
    /// splits compare equal however they are written.
    pub parts: u64,
    /// Share of the route's traffic, 0 to 100.
    pub percent: f64,
    pub request_headers: Vec<String>,
    pub response_headers: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delay {
    pub ms: u32,
    /// Chance in parts per million.
    pub per_million: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbortFault {
    /// `HTTP 500` or `gRPC UNAVAILABLE`.
    pub kind: String,
    pub per_million: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retries {
    pub attempts: u32,
    pub per_try_timeout_ms: Option<u32>,
    pub backoff_ms: Option<u32>,
    /// Sorted, without duplicates.
    pub retry_on: Vec<String>,
}

impl Retries {
    /// Istio's policy for a route that sets none.
    pub fn is_istio_default(&self) -> bool {
        self.attempts == ISTIO_DEFAULT_RETRY_ATTEMPTS
            && self.per_try_timeout_ms.is_none()
            && self.backoff_ms.is_none()
            && self
                .retry_on
                .iter()
                .map(String::as_str)
                .eq(ISTIO_DEFAULT_RETRY_ON)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rewrite {
    pub uri: Option<String>,
    pub authority: Option<String>,
    pub uri_regex: Option<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    pub target: Target,
    pub per_million: u32,
}

/// A cluster, with its settings rendered as short `key=value` texts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    pub name: String,
    pub host: String,
    pub subset: Option<String>,
    pub labels: Vec<String>,
    /// `address:port` with the weight and labels when set; sorted.
    pub endpoints: Vec<String>,
    pub resolution: &'static str,
    pub load_balancer: String,
    pub connection_pool: Vec<String>,
    pub outlier_detection: Option<Vec<String>>,
}

/// One compared aspect of a route, host or cluster: its text for people and its value for
/// tools. Two aspects are equal when their values are.
#[derive(Clone, Debug, PartialEq)]
pub struct Aspect {
    pub field: &'static str,
    pub text: String,
    pub value: Value,
}

fn aspect(field: &'static str, text: String, value: Value) -> Aspect {
    Aspect { field, text, value }
}

/// Reads the model out of a loaded table.
pub fn read(table: &Table<'_>) -> Model {
    let hosts = table
        .virtual_hosts()
        .map(|vh| {
            let mut domains: Vec<String> = vh.domains().map(str::to_owned).collect();
            domains.sort();
            let mut ports: Vec<u16> = vh.ports().collect();
            ports.sort_unstable();
            Host {
                name: vh.name().to_owned(),
                domains,
                ports,
                routes: vh.routes().map(|r| read_route(&r)).collect(),
            }
        })
        .collect();
    let mut clusters: Vec<Cluster> = table.clusters().map(|c| read_cluster(&c)).collect();
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    Model { hosts, clusters }
}

fn target(cluster: &ClusterView<'_>, port: Option<u16>) -> Target {
    Target {
        host: cluster.host().to_owned(),
        subset: cluster.subset().map(str::to_owned),
        port: port.or(cluster.port()),
        cluster: cluster.name().to_owned(),
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn read_route(route: &RouteView<'_>) -> Route {
    let action = match route.action() {
        ActionView::Route => {
            let mut splits: Vec<Split> = Vec::new();
            for d in route.destinations() {
                let split = Split {
                    target: target(&d.cluster(), d.port()),
                    parts: u64::from(d.weight()),
                    percent: 0.0,
                    request_headers: header_ops(d.request_headers()),
                    response_headers: header_ops(d.response_headers()),
                };
                // Two entries for one destination with the same headers are one share.
                match splits.iter_mut().find(|s| {
                    s.target == split.target
                        && s.request_headers == split.request_headers
                        && s.response_headers == split.response_headers
                }) {
                    Some(existing) => existing.parts += split.parts,
                    None => splits.push(split),
                }
            }
            splits.sort_by(|a, b| {
                (&a.target, &a.request_headers, &a.response_headers).cmp(&(
                    &b.target,
                    &b.request_headers,
                    &b.response_headers,
                ))
            });
            let total: u64 = splits.iter().map(|s| s.parts).sum();
            let divisor = splits.iter().fold(0, |g, s| gcd(g, s.parts)).max(1);
            for s in &mut splits {
                s.percent = if total == 0 {
                    0.0
                } else {
                    s.parts as f64 * 100.0 / total as f64
                };
                s.parts /= divisor;
            }
            Action::Forward(splits)
        }
        ActionView::Redirect(r) => Action::Redirect(Redirect {
            code: r.code,
            scheme: r.scheme.map(str::to_owned),
            authority: r.authority.map(str::to_owned),
            port: r.port,
            derive_port_from_request: r.derive_port_from_request,
            uri: r.uri.map(str::to_owned),
        }),
        ActionView::DirectResponse { status, body } => Action::Respond {
            status,
            body: body.to_vec(),
        },
    };
    let mut matches: Vec<Vec<String>> = route
        .matches()
        .map(|m| {
            let mut conds: Vec<String> = m.conditions().map(|c| condition(&c)).collect();
            conds.sort();
            conds.dedup();
            conds
        })
        .collect();
    matches.sort();
    matches.dedup();
    if matches.is_empty() {
        matches.push(Vec::new());
    }
    let fault = route.fault();
    let retries = route.retry().map(|r| {
        let mut retry_on: Vec<String> = r
            .retry_on
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        retry_on.sort();
        retry_on.dedup();
        Retries {
            attempts: r.attempts,
            per_try_timeout_ms: r.per_try_timeout_ms,
            backoff_ms: r.backoff_ms,
            retry_on,
        }
    });
    let mut mirrors: Vec<Mirror> = route
        .mirrors()
        .map(|m| Mirror {
            target: target(&m.cluster, None),
            per_million: m.per_million,
        })
        .collect();
    mirrors.sort_by(|a, b| (&a.target, a.per_million).cmp(&(&b.target, b.per_million)));
    Route {
        vs_name: route.vs_name().to_owned(),
        rule_index: route.rule_index(),
        name: route.name().map(str::to_owned),
        matches,
        action,
        delay: fault
            .and_then(|f| f.delay)
            .map(|(ms, per_million)| Delay { ms, per_million }),
        abort: fault
            .and_then(|f| f.abort)
            .map(|(kind, per_million)| AbortFault {
                kind: match kind {
                    Abort::HttpStatus(status) => format!("HTTP {status}"),
                    Abort::GrpcStatus(status) => format!("gRPC {status}"),
                },
                per_million,
            }),
        timeout_ms: route.timeout_ms(),
        retries,
        request_headers: header_ops(route.request_headers()),
        response_headers: header_ops(route.response_headers()),
        rewrite: route.rewrite().map(|r| Rewrite {
            uri: r.uri.map(str::to_owned),
            authority: r.authority.map(str::to_owned),
            uri_regex: r.uri_regex.map(|(m, s)| (m.to_owned(), s.to_owned())),
        }),
        mirrors,
        cors: route.cors().map(|c| {
            let mut parts = Vec::new();
            let origins: Vec<String> = c
                .allow_origins()
                .map(|o| match o {
                    OriginMatch::Exact(v) => v.to_owned(),
                    OriginMatch::Prefix(v) => format!("{v}*"),
                    OriginMatch::Regex(v) => format!("/{v}/"),
                })
                .collect();
            for (key, values) in [
                ("origins", origins),
                ("methods", c.allow_methods().map(str::to_owned).collect()),
                ("headers", c.allow_headers().map(str::to_owned).collect()),
                ("expose", c.expose_headers().map(str::to_owned).collect()),
            ] {
                if !values.is_empty() {
                    parts.push(format!("{key}={}", values.join(",")));
                }
            }
            if let Some(s) = c.max_age_s() {
                parts.push(format!("max-age={s}s"));
            }
            if let Some(b) = c.allow_credentials() {
                parts.push(format!("credentials={b}"));
            }
            parts
        }),
    }
}

/// Header operations in table order (a later `set` of the same header wins, so order is kept).
fn header_ops<'t>(ops: impl Iterator<Item = HeaderOp<'t>>) -> Vec<String> {
    ops.map(|op| match op {
        HeaderOp::Set(name, value) => format!("set {name}={value}"),
        HeaderOp::Add(name, value) => format!("add {name}={value}"),
        HeaderOp::Remove(name) => format!("remove {name}"),
    })
    .collect()
}

/// One match condition in a short form: `end-user=jason`, `uri^=/api/` (prefix),
/// `end-user~/.+/` (regex), `end-user present`, `not x-canary=1`.
pub fn condition(c: &ConditionView<'_>) -> String {
    let field = match c.field {
        ConditionField::Path => "uri".to_owned(),
        ConditionField::Method => "method".to_owned(),
        ConditionField::Scheme => "scheme".to_owned(),
        ConditionField::Authority => "authority".to_owned(),
        ConditionField::Header(name) => name.to_owned(),
        ConditionField::QueryParam(name) => format!("query {name}"),
        ConditionField::Port => "port".to_owned(),
    };
    let test = match c.test {
        ConditionTest::Exact(v) => format!("{field}={v}"),
        ConditionTest::Prefix(v) => format!("{field}^={v}"),
        ConditionTest::Regex(v) => format!("{field}~/{v}/"),
        ConditionTest::Present => format!("{field} present"),
        // The compiler's marker for a rule whose matches all select gateways.
        ConditionTest::Port(0) => "gateways only (never on sidecars)".to_owned(),
        ConditionTest::Port(p) => format!("{field}={p}"),
    };
    let test = if c.ignore_case {
        format!("{test} (any case)")
    } else {
        test
    };
    if c.negated {
        format!("not {test}")
    } else {
        test
    }
}

fn read_cluster(c: &ClusterView<'_>) -> Cluster {
    let labels = |pairs: &mut dyn Iterator<Item = (&str, &str)>| -> Vec<String> {
        let mut v: Vec<String> = pairs.map(|(k, v)| format!("{k}={v}")).collect();
        v.sort();
        v
    };
    let mut endpoints: Vec<String> = c
        .endpoints()
        .map(|e| {
            let mut text = format!("{}:{}", e.address(), e.port());
            if e.weight() > 1 {
                text.push_str(&format!(" weight={}", e.weight()));
            }
            let l = labels(&mut e.labels());
            if !l.is_empty() {
                text.push_str(&format!(" {{{}}}", l.join(",")));
            }
            text
        })
        .collect();
    endpoints.sort();
    let load_balancer = match c.load_balancer() {
        LoadBalancer::RoundRobin => "round robin".to_owned(),
        LoadBalancer::LeastRequest => "least request".to_owned(),
        LoadBalancer::Random => "random".to_owned(),
        LoadBalancer::ConsistentHash {
            header,
            cookie,
            source_ip,
            query_param,
        } => {
            let key = header
                .map(|h| format!("header {h}"))
                .or(cookie.map(|k| format!("cookie {k}")))
                .or(query_param.map(|q| format!("query {q}")))
                .or(source_ip.then(|| "source ip".to_owned()))
                .unwrap_or_default();
            format!("consistent hash on {key}")
        }
    };
    let pool = c.connection_pool();
    let mut connection_pool = Vec::new();
    for (key, value) in [
        ("maxConnections", pool.max_connections),
        ("connectTimeout", pool.connect_timeout_ms),
        ("http1MaxPendingRequests", pool.http1_max_pending),
        ("http2MaxRequests", pool.http2_max_requests),
        ("maxRequestsPerConnection", pool.max_requests_per_connection),
        ("maxRetries", pool.max_retries),
        ("idleTimeout", pool.idle_timeout_ms),
    ] {
        if let Some(v) = value {
            let v = if key.ends_with("Timeout") {
                duration(v)
            } else {
                v.to_string()
            };
            connection_pool.push(format!("{key}={v}"));
        }
    }
    let outlier_detection = c.outlier_detection().map(|o| {
        let mut v = Vec::new();
        if let Some(n) = o.consecutive_5xx {
            v.push(format!("consecutive5xxErrors={n}"));
        }
        if let Some(n) = o.consecutive_gateway_errors {
            v.push(format!("consecutiveGatewayErrors={n}"));
        }
        v.push(format!("interval={}", duration(o.interval_ms)));
        v.push(format!("baseEjectionTime={}", duration(o.base_ejection_ms)));
        v.push(format!("maxEjectionPercent={}", o.max_ejection_percent));
        v.push(format!("minHealthPercent={}", o.min_health_percent));
        v
    });
    Cluster {
        name: c.name().to_owned(),
        host: c.host().to_owned(),
        subset: c.subset().map(str::to_owned),
        labels: labels(&mut c.labels()),
        endpoints,
        resolution: match c.resolution() {
            Resolution::Static => "static",
            Resolution::Dns => "dns",
            Resolution::RuntimeLookup => "resolved at start",
        },
        load_balancer,
        connection_pool,
        outlier_detection,
    }
}

/// `7000` -> `7s`, `1500` -> `1.5s`, `250` -> `250ms`, `120000` -> `2m`.
pub fn duration(ms: u32) -> String {
    if ms >= 60_000 && ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms >= 1000 {
        format!("{}s", trim_decimal(f64::from(ms) / 1000.0, 3))
    } else {
        format!("{ms}ms")
    }
}

/// Parts per million as a percentage: `500000` -> `50%`.
pub fn per_million(ppm: u32) -> String {
    format!("{}%", trim_decimal(f64::from(ppm) / 10_000.0, 4))
}

/// A share of traffic: `50%`, `33.33%`.
pub fn percent(value: f64) -> String {
    format!("{}%", trim_decimal(value, 2))
}

fn trim_decimal(value: f64, places: usize) -> String {
    let text = format!("{value:.places$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// The namespace part of a `namespace/name`.
pub fn namespace_of(vs_name: &str) -> &str {
    vs_name.split_once('/').map_or("", |(ns, _)| ns)
}

/// A service host as people write it: `reviews` for `reviews.<namespace>.svc.cluster.local`
/// seen from `namespace`, `reviews.other` from elsewhere, anything else unchanged.
pub fn short_host(host: &str, namespace: &str) -> String {
    match host.strip_suffix(".svc.cluster.local") {
        Some(base) => match base.split_once('.') {
            Some((name, ns)) if ns == namespace => name.to_owned(),
            _ => base.to_owned(),
        },
        None => host.to_owned(),
    }
}

impl Host {
    pub fn namespace(&self) -> &str {
        namespace_of(&self.name)
    }

    /// The hosts the VirtualService names, without the short forms the compiler adds for each
    /// (`reviews`, `reviews.default`, `reviews.default.svc` of the FQDN).
    pub fn primary_domains(&self) -> Vec<&str> {
        self.domains
            .iter()
            .filter(|d| {
                !self
                    .domains
                    .iter()
                    .any(|other| other.len() > d.len() && other.starts_with(&format!("{d}.")))
            })
            .map(String::as_str)
            .collect()
    }

    /// `reviews`, or `a.example.com, b.example.com`.
    pub fn title(&self) -> String {
        let ns = self.namespace();
        let names: Vec<String> = self
            .primary_domains()
            .into_iter()
            .map(|d| short_host(d, ns))
            .collect();
        if names.is_empty() {
            self.name.clone()
        } else {
            names.join(", ")
        }
    }

    pub fn aspects(&self) -> Vec<Aspect> {
        vec![
            aspect("domains", self.domains.join(", "), json!(self.domains)),
            aspect(
                "ports",
                if self.ports.is_empty() {
                    "any".to_owned()
                } else {
                    join(self.ports.iter())
                },
                json!(self.ports),
            ),
        ]
    }
}

fn join<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

impl Target {
    /// (`reviews`, `v1`), the host with its port when `with_port`.
    pub fn text(&self, namespace: &str, with_port: bool) -> (String, String) {
        let mut host = short_host(&self.host, namespace);
        if let (true, Some(p)) = (with_port, self.port) {
            host.push_str(&format!(":{p}"));
        }
        (host, self.subset.clone().unwrap_or_default())
    }

    fn json(&self) -> Value {
        json!({"host": self.host, "subset": self.subset, "port": self.port})
    }
}

/// Whether a target's port must be shown to tell it from the others (the cluster names a
/// port for every service with one, which says nothing when there is one).
pub fn port_matters(target: &Target, others: &[&Target]) -> bool {
    others
        .iter()
        .any(|o| o.host == target.host && o.subset == target.subset && o.port != target.port)
}

/// `reviews: v2 50%, v3 50%`; destinations grouped by host.
pub fn splits_text(splits: &[Split], namespace: &str) -> String {
    let all: Vec<&Target> = splits.iter().map(|s| &s.target).collect();
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for s in splits {
        let (host, subset) = s.target.text(namespace, port_matters(&s.target, &all));
        let mut item = if subset.is_empty() {
            percent(s.percent)
        } else {
            format!("{subset} {}", percent(s.percent))
        };
        let headers: Vec<&String> = s
            .request_headers
            .iter()
            .chain(&s.response_headers)
            .collect();
        if !headers.is_empty() {
            item.push_str(&format!(
                " ({})",
                headers
                    .iter()
                    .map(|h| h.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        match groups.last_mut() {
            Some((h, items)) if *h == host => items.push(item),
            _ => groups.push((host, vec![item])),
        }
    }
    groups
        .into_iter()
        .map(|(host, items)| format!("{host}: {}", items.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The match in a short form: `end-user=jason`, `a=1 and b=2 or c=3`, or `any request`.
pub fn matches_text(matches: &[Vec<String>]) -> String {
    if matches.iter().any(Vec::is_empty) {
        return "any request".to_owned();
    }
    matches
        .iter()
        .map(|alt| alt.join(" and "))
        .collect::<Vec<_>>()
        .join(" or ")
}

impl Route {
    /// `` `jason` (rule 0) `` or `rule 2`.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("`{name}` (rule {})", self.rule_index),
            None => format!("rule {}", self.rule_index),
        }
    }

    fn namespace(&self) -> &str {
        namespace_of(&self.vs_name)
    }

    pub fn action_text(&self) -> String {
        match &self.action {
            Action::Forward(splits) => splits_text(splits, self.namespace()),
            Action::Redirect(r) => {
                let mut to = String::new();
                if let Some(s) = &r.scheme {
                    to.push_str(&format!("{s}://"));
                }
                if let Some(a) = &r.authority {
                    to.push_str(a);
                }
                if let Some(p) = r.port {
                    to.push_str(&format!(":{p}"));
                } else if r.derive_port_from_request {
                    to.push_str(":<request port>");
                }
                to.push_str(r.uri.as_deref().unwrap_or("<same path>"));
                format!("redirect {} to {to}", r.code)
            }
            Action::Respond { status, body } => {
                if body.is_empty() {
                    format!("respond {status}")
                } else {
                    format!("respond {status} with a {}-byte body", body.len())
                }
            }
        }
    }

    pub fn delay_text(&self) -> String {
        self.delay.map_or("none".to_owned(), |d| {
            format!("{} for {}", duration(d.ms), per_million(d.per_million))
        })
    }

    pub fn abort_text(&self) -> String {
        self.abort.as_ref().map_or("none".to_owned(), |a| {
            format!("{} for {}", a.kind, per_million(a.per_million))
        })
    }

    pub fn retries_text(&self) -> String {
        match &self.retries {
            None => "off".to_owned(),
            Some(r) => {
                let mut text = format!("{} attempts", r.attempts);
                if let Some(ms) = r.per_try_timeout_ms {
                    text.push_str(&format!(", {} per try", duration(ms)));
                }
                if let Some(ms) = r.backoff_ms {
                    text.push_str(&format!(", backoff {}", duration(ms)));
                }
                text.push_str(&format!(" on {}", r.retry_on.join(",")));
                if r.is_istio_default() {
                    text.push_str(" (Istio default)");
                }
                text
            }
        }
    }

    /// Every compared aspect, in the order they are reported.
    pub fn aspects(&self) -> Vec<Aspect> {
        let ns = self.namespace();
        let mut out = vec![aspect(
            "match",
            matches_text(&self.matches),
            json!(self.matches),
        )];
        out.push(match &self.action {
            Action::Forward(splits) => aspect(
                "weights",
                splits_text(splits, ns),
                Value::Array(
                    splits
                        .iter()
                        .map(|s| {
                            let mut v = s.target.json();
                            v["percent"] = json!(s.percent);
                            v["parts"] = json!(s.parts);
                            if !s.request_headers.is_empty() || !s.response_headers.is_empty() {
                                v["request_headers"] = json!(s.request_headers);
                                v["response_headers"] = json!(s.response_headers);
                            }
                            v
                        })
                        .collect(),
                ),
            ),
            Action::Redirect(r) => aspect(
                "redirect",
                self.action_text(),
                json!({"code": r.code, "scheme": r.scheme, "authority": r.authority,
                    "port": r.port, "derive_port_from_request": r.derive_port_from_request,
                    "uri": r.uri}),
            ),
            Action::Respond { status, body } => aspect(
                "direct response",
                self.action_text(),
                json!({"status": status, "body": String::from_utf8_lossy(body)}),
            ),
        });
        out.push(aspect(
            "fault delay",
            self.delay_text(),
            self.delay.map_or(
                Value::Null,
                |d| json!({"delay_ms": d.ms, "percent": f64::from(d.per_million) / 10_000.0}),
            ),
        ));
        out.push(aspect(
            "fault abort",
            self.abort_text(),
            self.abort.as_ref().map_or(
                Value::Null,
                |a| json!({"abort": a.kind, "percent": f64::from(a.per_million) / 10_000.0}),
            ),
        ));
        out.push(aspect(
            "timeout",
            self.timeout_ms.map_or("none".to_owned(), duration),
            json!(self.timeout_ms),
        ));
        out.push(aspect(
            "retries",
            self.retries_text(),
            self.retries.as_ref().map_or(Value::Null, |r| {
                json!({"attempts": r.attempts, "per_try_timeout_ms": r.per_try_timeout_ms,
                    "backoff_ms": r.backoff_ms, "retry_on": r.retry_on})
            }),
        ));
        for (field, ops) in [
            ("request headers", &self.request_headers),
            ("response headers", &self.response_headers),
        ] {
            out.push(aspect(field, list_text(ops), json!(ops)));
        }
        out.push(aspect(
            "rewrite",
            self.rewrite.as_ref().map_or("none".to_owned(), |r| {
                let mut parts = Vec::new();
                if let Some(u) = &r.uri {
                    parts.push(format!("uri {u}"));
                }
                if let Some((m, s)) = &r.uri_regex {
                    parts.push(format!("uri /{m}/ -> {s}"));
                }
                if let Some(a) = &r.authority {
                    parts.push(format!("authority {a}"));
                }
                parts.join(", ")
            }),
            self.rewrite.as_ref().map_or(Value::Null, |r| {
                json!({"uri": r.uri, "authority": r.authority,
                    "uri_regex": r.uri_regex.as_ref().map(|(m, s)| json!([m, s]))})
            }),
        ));
        out.push(aspect(
            "mirrors",
            if self.mirrors.is_empty() {
                "none".to_owned()
            } else {
                self.mirrors
                    .iter()
                    .map(|m| {
                        let all: Vec<&Target> = self.mirrors.iter().map(|m| &m.target).collect();
                        let (host, subset) = m.target.text(ns, port_matters(&m.target, &all));
                        let subset = if subset.is_empty() {
                            String::new()
                        } else {
                            format!(" {subset}")
                        };
                        format!("{host}{subset} {}", per_million(m.per_million))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            Value::Array(
                self.mirrors
                    .iter()
                    .map(|m| {
                        let mut v = m.target.json();
                        v["percent"] = json!(f64::from(m.per_million) / 10_000.0);
                        v
                    })
                    .collect(),
            ),
        ));
        out.push(aspect(
            "cors",
            self.cors
                .as_ref()
                .map_or("none".to_owned(), |c| c.join(" ")),
            json!(self.cors),
        ));
        out
    }

    /// One line for an added or removed route: the match, the action and what is set.
    pub fn summary(&self) -> String {
        let mut text = format!("{} -> {}", matches_text(&self.matches), self.action_text());
        if self.delay.is_some() {
            text.push_str(&format!("; delay {}", self.delay_text()));
        }
        if self.abort.is_some() {
            text.push_str(&format!("; abort {}", self.abort_text()));
        }
        if let Some(ms) = self.timeout_ms {
            text.push_str(&format!("; timeout {}", duration(ms)));
        }
        match &self.retries {
            Some(r) if r.is_istio_default() => {}
            _ => text.push_str(&format!("; retries {}", self.retries_text())),
        }
        text
    }
}

fn list_text(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join("; ")
    }
}

impl Cluster {
    pub fn aspects(&self) -> Vec<Aspect> {
        vec![
            aspect("labels", list_text(&self.labels), json!(self.labels)),
            aspect(
                "endpoints",
                list_text(&self.endpoints),
                json!(self.endpoints),
            ),
            aspect(
                "resolution",
                self.resolution.to_owned(),
                json!(self.resolution),
            ),
            aspect(
                "load balancer",
                self.load_balancer.clone(),
                json!(self.load_balancer),
            ),
            aspect(
                "connection pool",
                list_text(&self.connection_pool),
                json!(self.connection_pool),
            ),
            aspect(
                "outlier detection",
                self.outlier_detection
                    .as_ref()
                    .map_or("none".to_owned(), |o| o.join(", ")),
                json!(self.outlier_detection),
            ),
        ]
    }

    /// One line for an added or removed cluster.
    pub fn summary(&self) -> String {
        format!(
            "{} endpoint{}, {}",
            self.endpoints.len(),
            if self.endpoints.len() == 1 { "" } else { "s" },
            self.load_balancer
        )
    }
}
