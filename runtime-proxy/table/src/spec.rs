//! The owned input model that the compiler fills in and `encode` lays out (plain data, no I/O).
//!
//! Everything here is ordered data (`Vec`, never a hash map) so that the same spec always
//! encodes to the same bytes. Names and values are stored as the compiler normalised them:
//! domains and header names lower case, percentages as written in the policy.

/// The whole routing table: virtual hosts (domain → ordered routes) and the clusters routes
/// send to. `content_hash` identifies the compiler input and is copied into the header.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableSpec {
    pub content_hash: [u8; 32],
    pub virtual_hosts: Vec<VirtualHostSpec>,
    pub clusters: Vec<ClusterSpec>,
}

/// A set of domains that share one ordered route list (Envoy's virtual host).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VirtualHostSpec {
    /// `namespace/vs-name`, or a merged name chosen by the compiler; shown by `meshc inspect`.
    pub name: String,
    /// Lower-case exact names (`reviews.default.svc.cluster.local`, `127.0.0.1`), suffix
    /// wildcards (`*.example.com`) or `*`. A domain may appear in several virtual hosts only
    /// when their port sets are disjoint.
    pub domains: Vec<String>,
    /// Ports this host listens on; empty means any port.
    pub ports: Vec<u16>,
    /// Istio order: the first route with a matching entry wins.
    pub routes: Vec<RouteSpec>,
}

/// One Istio `http` rule of a VirtualService.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteSpec {
    pub name: Option<String>,
    /// `namespace/name` of the VirtualService the rule came from.
    pub vs_name: String,
    /// Index of the rule inside that VirtualService's `http` list.
    pub rule_index: u32,
    /// Alternatives (OR); each entry is a conjunction. Empty means "match everything".
    pub matches: Vec<MatchSpec>,
    pub action: ActionSpec,
    pub fault: Option<FaultSpec>,
    pub timeout_ms: Option<u32>,
    pub retries: Option<RetrySpec>,
    pub request_headers: HeaderOpsSpec,
    pub response_headers: HeaderOpsSpec,
    pub rewrite: Option<RewriteSpec>,
    pub mirrors: Vec<MirrorSpec>,
    pub cors: Option<CorsSpec>,
}

impl RouteSpec {
    /// A route with no matches, no policies and the given action; tests and the compiler fill
    /// in the rest field by field.
    pub fn new(vs_name: impl Into<String>, rule_index: u32, action: ActionSpec) -> RouteSpec {
        RouteSpec {
            name: None,
            vs_name: vs_name.into(),
            rule_index,
            matches: Vec::new(),
            action,
            fault: None,
            timeout_ms: None,
            retries: None,
            request_headers: HeaderOpsSpec::default(),
            response_headers: HeaderOpsSpec::default(),
            rewrite: None,
            mirrors: Vec::new(),
            cors: None,
        }
    }
}

/// One `HTTPMatchRequest`: every condition given must hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MatchSpec {
    pub uri: Option<StringMatchSpec>,
    /// Istio: applies to `exact` and `prefix` URI matches only (ASCII case folding).
    pub ignore_uri_case: bool,
    pub scheme: Option<StringMatchSpec>,
    pub method: Option<StringMatchSpec>,
    pub authority: Option<StringMatchSpec>,
    /// Lower-case header names; values are matched case-sensitively.
    pub headers: Vec<(String, HeaderMatchSpec)>,
    /// Istio `withoutHeaders`: holds when the header is absent or does not match.
    pub without_headers: Vec<(String, HeaderMatchSpec)>,
    pub query_params: Vec<(String, HeaderMatchSpec)>,
    pub port: Option<u16>,
}

/// Istio `StringMatch`. `Regex` is a full match (Envoy `safe_regex`), RE2-like syntax.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StringMatchSpec {
    Exact(String),
    Prefix(String),
    Regex(String),
}

/// A header or query-parameter condition: present at all, or its value matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderMatchSpec {
    Present,
    Match(StringMatchSpec),
}

#[derive(Clone, Debug, PartialEq)]
pub enum ActionSpec {
    /// Weighted destinations; a single destination may have weight 0 (meaning 100).
    Route(Vec<WeightedDestSpec>),
    Redirect(RedirectSpec),
    DirectResponse {
        status: u16,
        body: Vec<u8>,
    },
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct WeightedDestSpec {
    /// Index into `TableSpec::clusters`.
    pub cluster: u32,
    pub weight: u32,
    pub port: Option<u16>,
    pub request_headers: HeaderOpsSpec,
    pub response_headers: HeaderOpsSpec,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RedirectSpec {
    pub uri: Option<String>,
    pub authority: Option<String>,
    pub port: Option<u16>,
    pub scheme: Option<String>,
    /// HTTP status, 301 when the policy gives none (the compiler fills it in).
    pub code: u16,
    pub derive_port_from_request: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultSpec {
    /// Fixed delay in milliseconds and the percentage of requests it applies to.
    pub delay: Option<(u32, f64)>,
    pub abort: Option<(AbortKind, f64)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AbortKind {
    HttpStatus(u16),
    GrpcStatus(String),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetrySpec {
    pub attempts: u32,
    pub per_try_timeout_ms: Option<u32>,
    /// Tokens as written in the policy (`5xx`, `connect-failure`, `503`).
    pub retry_on: Vec<String>,
    pub backoff_ms: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderOpsSpec {
    pub set: Vec<(String, String)>,
    pub add: Vec<(String, String)>,
    pub remove: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RewriteSpec {
    pub uri: Option<String>,
    pub authority: Option<String>,
    /// Istio `uriRegexRewrite`: (match, rewrite). The proxy compiles it with a capturing
    /// engine at load time; the table only carries the text.
    pub uri_regex: Option<(String, String)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MirrorSpec {
    pub cluster: u32,
    pub percent: f64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct CorsSpec {
    pub allow_origins: Vec<StringMatchSpec>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age_s: Option<u32>,
    pub allow_credentials: Option<bool>,
}

/// An upstream: a service host, optionally narrowed to a DestinationRule subset and port.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterSpec {
    /// Envoy-style name, e.g. `outbound|9080|v2|reviews.default.svc.cluster.local`; used as a
    /// metric label.
    pub name: String,
    pub host: String,
    pub subset: Option<String>,
    pub port: Option<u16>,
    pub labels: Vec<(String, String)>,
    pub endpoints: Vec<EndpointSpec>,
    pub resolution: ResolutionSpec,
    pub lb: LbSpec,
    pub connection_pool: ConnectionPoolSpec,
    pub outlier: Option<OutlierSpec>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointSpec {
    /// An IP address or a DNS name.
    pub address: String,
    pub port: u16,
    pub weight: u32,
    pub labels: Vec<(String, String)>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResolutionSpec {
    #[default]
    Static,
    Dns,
    /// The host is not known to the repo: the proxy resolves it when it starts.
    RuntimeLookup,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum LbSpec {
    #[default]
    RoundRobin,
    LeastRequest,
    Random,
    ConsistentHash {
        header: Option<String>,
        cookie: Option<String>,
        source_ip: bool,
        query_param: Option<String>,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionPoolSpec {
    pub max_connections: Option<u32>,
    pub connect_timeout_ms: Option<u32>,
    pub http1_max_pending: Option<u32>,
    pub http2_max_requests: Option<u32>,
    pub max_requests_per_connection: Option<u32>,
    pub max_retries: Option<u32>,
    pub idle_timeout_ms: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutlierSpec {
    pub consecutive_5xx: Option<u32>,
    pub consecutive_gateway_errors: Option<u32>,
    pub interval_ms: u32,
    pub base_ejection_ms: u32,
    pub max_ejection_percent: u32,
    pub min_health_percent: u32,
}
