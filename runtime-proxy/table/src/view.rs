//! Borrowed views of a loaded table: virtual hosts, routes, clusters and their parts.
//!
//! Views are a table reference plus an index; every accessor reads the record on demand and
//! never allocates, so `meshc inspect` and the proxy's hot path use the same types.

use crate::format::{
    NONE, Section, abort_kind, action_kind, cluster, cond, cors, dest, endpoint, entry, field,
    header_op, header_op_kind, label, mirror, op, policy, route, string_match, vhost,
};
use crate::read::{Rec, Table};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u32);
    };
}

id_type!(
    /// Index of a virtual host, in spec order.
    VirtualHostId
);
id_type!(
    /// Index of a route across the whole table (virtual hosts' routes are consecutive).
    RouteId
);
id_type!(
    /// Index of a cluster, in spec order.
    ClusterId
);

fn range_views<'t, V>(
    table: &'t Table<'t>,
    range: std::ops::Range<u32>,
    make: impl Fn(&'t Table<'t>, u32) -> V + 't,
) -> impl ExactSizeIterator<Item = V> + 't {
    range.map(move |id| make(table, id))
}

#[derive(Clone, Copy)]
pub struct VirtualHostView<'t> {
    pub(crate) table: &'t Table<'t>,
    pub(crate) id: u32,
}

impl<'t> VirtualHostView<'t> {
    fn rec(&self) -> Rec<'t> {
        self.table.rec(Section::VirtualHosts, self.id)
    }
    pub fn id(&self) -> VirtualHostId {
        VirtualHostId(self.id)
    }
    pub fn name(&self) -> &'t str {
        self.table.str(self.rec().get(vhost::NAME))
    }
    pub fn domains(&self) -> impl ExactSizeIterator<Item = &'t str> + 't {
        let table = self.table;
        self.rec()
            .range(vhost::DOMAINS)
            .map(move |i| table.str(table.item(Section::StrList, i)))
    }
    pub fn ports(&self) -> impl ExactSizeIterator<Item = u16> + 't {
        let table = self.table;
        self.rec()
            .range(vhost::PORTS)
            .map(move |i| table.item(Section::PortList, i) as u16)
    }
    pub fn routes(&self) -> impl ExactSizeIterator<Item = RouteView<'t>> + 't {
        range_views(self.table, self.rec().range(vhost::ROUTES), |table, id| {
            RouteView { table, id }
        })
    }
}

impl std::fmt::Debug for VirtualHostView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualHost")
            .field("id", &self.id)
            .field("name", &self.name())
            .finish()
    }
}

#[derive(Clone, Copy)]
pub struct RouteView<'t> {
    pub(crate) table: &'t Table<'t>,
    pub(crate) id: u32,
}

/// What a route does with a request, as configured.
#[derive(Clone, Copy, Debug)]
pub enum ActionView<'t> {
    Route,
    Redirect(RedirectView<'t>),
    DirectResponse { status: u16, body: &'t [u8] },
}

#[derive(Clone, Copy, Debug)]
pub struct RedirectView<'t> {
    pub uri: Option<&'t str>,
    pub authority: Option<&'t str>,
    pub port: Option<u16>,
    pub scheme: Option<&'t str>,
    pub code: u16,
    pub derive_port_from_request: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abort<'t> {
    HttpStatus(u16),
    GrpcStatus(&'t str),
}

/// The configured fault, with chances in parts per million (divide by 10 000 for percent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultView<'t> {
    pub delay: Option<(u32, u32)>,
    pub abort: Option<(Abort<'t>, u32)>,
}

#[derive(Clone, Copy, Debug)]
pub struct RetryView<'t> {
    pub attempts: u32,
    pub per_try_timeout_ms: Option<u32>,
    pub backoff_ms: Option<u32>,
    /// Bits of `format::retry_on::TOKENS`.
    pub retry_on_bits: u32,
    /// The tokens as written, comma-separated.
    pub retry_on: &'t str,
    pub(crate) table: &'t Table<'t>,
    pub(crate) codes: (u32, u32),
}

impl<'t> RetryView<'t> {
    /// Status codes that are retriable (from numeric `retryOn` tokens).
    pub fn retriable_status_codes(&self) -> impl ExactSizeIterator<Item = u16> + 't {
        let table = self.table;
        (self.codes.0..self.codes.1).map(move |i| table.item(Section::CodeList, i) as u16)
    }
    pub fn retries_on(&self, token: &str) -> bool {
        crate::format::retry_on::bit(token).is_some_and(|bit| self.retry_on_bits & bit != 0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RewriteView<'t> {
    pub uri: Option<&'t str>,
    pub authority: Option<&'t str>,
    /// (regex, substitution); the proxy compiles the regex with a capturing engine.
    pub uri_regex: Option<(&'t str, &'t str)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderOp<'t> {
    Set(&'t str, &'t str),
    Add(&'t str, &'t str),
    Remove(&'t str),
}

fn header_ops<'t>(
    table: &'t Table<'t>,
    range: std::ops::Range<u32>,
) -> impl ExactSizeIterator<Item = HeaderOp<'t>> + 't {
    range.map(move |i| {
        let rec = table.rec(Section::HeaderOps, i);
        let name = table.str(rec.get(header_op::NAME));
        let value = table.opt_str(rec.get(header_op::VALUE)).unwrap_or("");
        match rec.get(header_op::KIND) {
            header_op_kind::SET => HeaderOp::Set(name, value),
            header_op_kind::ADD => HeaderOp::Add(name, value),
            _ => HeaderOp::Remove(name),
        }
    })
}

fn opt_u32(value: u32) -> Option<u32> {
    (value != NONE).then_some(value)
}

impl<'t> RouteView<'t> {
    fn rec(&self) -> Rec<'t> {
        self.table.rec(Section::Routes, self.id)
    }
    /// What the route does (shared by routes that behave the same).
    fn policy(&self) -> Rec<'t> {
        self.table.policy(self.id)
    }
    pub fn id(&self) -> RouteId {
        RouteId(self.id)
    }
    pub fn virtual_host(&self) -> VirtualHostView<'t> {
        VirtualHostView {
            table: self.table,
            id: self.rec().get(route::VHOST),
        }
    }
    /// Position of the route in its virtual host's list (the spec's route index).
    pub fn index_in_host(&self) -> u32 {
        let start = self
            .table
            .rec(Section::VirtualHosts, self.rec().get(route::VHOST))
            .get(vhost::ROUTES);
        self.id.saturating_sub(start)
    }
    pub fn vs_name(&self) -> &'t str {
        self.table.str(self.rec().get(route::VS_NAME))
    }
    pub fn rule_index(&self) -> u32 {
        self.rec().get(route::RULE_INDEX)
    }
    pub fn name(&self) -> Option<&'t str> {
        self.table.opt_str(self.rec().get(route::NAME))
    }
    pub fn action(&self) -> ActionView<'t> {
        let rec = self.policy();
        match rec.get(policy::ACTION) {
            action_kind::REDIRECT => ActionView::Redirect(RedirectView {
                uri: self.table.opt_str(rec.get(policy::REDIRECT_URI)),
                authority: self.table.opt_str(rec.get(policy::REDIRECT_AUTHORITY)),
                port: opt_u32(rec.get(policy::REDIRECT_PORT)).map(|p| p as u16),
                scheme: self.table.opt_str(rec.get(policy::REDIRECT_SCHEME)),
                code: rec.get(policy::STATUS) as u16,
                derive_port_from_request: rec.get(policy::REDIRECT_DERIVE_PORT) != 0,
            }),
            action_kind::DIRECT_RESPONSE => ActionView::DirectResponse {
                status: rec.get(policy::STATUS) as u16,
                body: self.table.blob(rec.get(policy::DIRECT_BODY)),
            },
            _ => ActionView::Route,
        }
    }
    /// Weighted destinations (empty unless the action is `Route`).
    pub fn destinations(&self) -> impl ExactSizeIterator<Item = DestinationView<'t>> + 't {
        range_views(
            self.table,
            self.policy().range(policy::DESTS),
            |table, id| DestinationView { table, id },
        )
    }
    pub fn total_weight(&self) -> u32 {
        self.policy().get(policy::TOTAL_WEIGHT)
    }
    pub fn fault(&self) -> Option<FaultView<'t>> {
        let rec = self.policy();
        let delay =
            opt_u32(rec.get(policy::DELAY_MS)).map(|ms| (ms, rec.get(policy::DELAY_PER_MILLION)));
        let abort = match rec.get(policy::ABORT_KIND) {
            abort_kind::HTTP => Some(Abort::HttpStatus(rec.get(policy::ABORT_HTTP_STATUS) as u16)),
            abort_kind::GRPC => Some(Abort::GrpcStatus(
                self.table.str(rec.get(policy::ABORT_GRPC_STATUS)),
            )),
            _ => None,
        }
        .map(|abort| (abort, rec.get(policy::ABORT_PER_MILLION)));
        (delay.is_some() || abort.is_some()).then_some(FaultView { delay, abort })
    }
    pub fn timeout_ms(&self) -> Option<u32> {
        opt_u32(self.policy().get(policy::TIMEOUT_MS))
    }
    pub fn retry(&self) -> Option<RetryView<'t>> {
        let rec = self.policy();
        (rec.get(policy::RETRY_PRESENT) != 0).then(|| RetryView {
            attempts: rec.get(policy::RETRY_ATTEMPTS),
            per_try_timeout_ms: opt_u32(rec.get(policy::RETRY_PER_TRY_TIMEOUT_MS)),
            backoff_ms: opt_u32(rec.get(policy::RETRY_BACKOFF_MS)),
            retry_on_bits: rec.get(policy::RETRY_ON_BITS),
            retry_on: self
                .table
                .opt_str(rec.get(policy::RETRY_ON_TEXT))
                .unwrap_or(""),
            table: self.table,
            codes: {
                let codes = rec.range(policy::RETRY_CODES);
                (codes.start, codes.end)
            },
        })
    }
    pub fn request_headers(&self) -> impl ExactSizeIterator<Item = HeaderOp<'t>> + 't {
        header_ops(self.table, self.policy().range(policy::REQUEST_OPS))
    }
    pub fn response_headers(&self) -> impl ExactSizeIterator<Item = HeaderOp<'t>> + 't {
        header_ops(self.table, self.policy().range(policy::RESPONSE_OPS))
    }
    pub fn rewrite(&self) -> Option<RewriteView<'t>> {
        let rec = self.policy();
        let t = self.table;
        (rec.get(policy::REWRITE_PRESENT) != 0).then(|| RewriteView {
            uri: t.opt_str(rec.get(policy::REWRITE_URI)),
            authority: t.opt_str(rec.get(policy::REWRITE_AUTHORITY)),
            uri_regex: t
                .opt_str(rec.get(policy::REWRITE_REGEX))
                .zip(t.opt_str(rec.get(policy::REWRITE_REGEX_SUBSTITUTION))),
        })
    }
    /// Every configured mirror (see `RouteDecision::mirrors` for those firing on a request).
    pub fn mirrors(&self) -> impl ExactSizeIterator<Item = MirrorView<'t>> + 't {
        let policy = self.policy();
        let start = policy.get(policy::MIRRORS);
        range_views(
            self.table,
            policy.range(policy::MIRRORS),
            move |table, id| {
                let rec = table.rec(Section::Mirrors, id);
                MirrorView {
                    index: id - start,
                    cluster: ClusterView {
                        table,
                        id: rec.get(mirror::CLUSTER),
                    },
                    per_million: rec.get(mirror::PER_MILLION),
                }
            },
        )
    }
    pub fn cors(&self) -> Option<CorsView<'t>> {
        opt_u32(self.policy().get(policy::CORS)).map(|id| CorsView {
            table: self.table,
            id,
        })
    }
    /// The match alternatives (OR), each a list of conditions (AND); empty for a catch-all
    /// route means one alternative with no conditions.
    pub fn matches(&self) -> impl Iterator<Item = MatchView<'t>> + 't {
        let table = self.table;
        let vh = table.rec(Section::VirtualHosts, self.rec().get(route::VHOST));
        let id = self.id;
        vh.range(vhost::ENTRIES)
            .filter(move |&e| table.rec(Section::Entries, e).get(entry::ROUTE) == id)
            .map(move |e| MatchView { table, id: e })
    }
}

impl std::fmt::Debug for RouteView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("id", &self.id)
            .field("vs_name", &self.vs_name())
            .field("rule_index", &self.rule_index())
            .field("name", &self.name())
            .finish()
    }
}

/// One match alternative of a route.
#[derive(Clone, Copy, Debug)]
pub struct MatchView<'t> {
    table: &'t Table<'t>,
    id: u32,
}

/// Which request value a condition reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionField<'t> {
    Path,
    Method,
    Scheme,
    Authority,
    Header(&'t str),
    QueryParam(&'t str),
    Port,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionTest<'t> {
    Exact(&'t str),
    Prefix(&'t str),
    Regex(&'t str),
    Present,
    Port(u16),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConditionView<'t> {
    pub field: ConditionField<'t>,
    pub test: ConditionTest<'t>,
    /// `withoutHeaders`: the condition holds when the test fails or the value is absent.
    pub negated: bool,
    pub ignore_case: bool,
}

impl<'t> MatchView<'t> {
    pub fn conditions(&self) -> impl ExactSizeIterator<Item = ConditionView<'t>> + 't {
        let table = self.table;
        table
            .rec(Section::Entries, self.id)
            .range(entry::CONDS)
            .map(move |c| {
                let rec = table.rec(Section::Conditions, c);
                let name = table.opt_str(rec.get(cond::NAME)).unwrap_or("");
                let value = table.opt_str(rec.get(cond::VALUE)).unwrap_or("");
                let field = match rec.get(cond::FIELD) {
                    field::PATH => ConditionField::Path,
                    field::METHOD => ConditionField::Method,
                    field::SCHEME => ConditionField::Scheme,
                    field::AUTHORITY => ConditionField::Authority,
                    field::HEADER => ConditionField::Header(name),
                    field::QUERY => ConditionField::QueryParam(name),
                    _ => ConditionField::Port,
                };
                let test = match rec.get(cond::OP) {
                    op::EXACT => ConditionTest::Exact(value),
                    op::PREFIX => ConditionTest::Prefix(value),
                    op::REGEX => ConditionTest::Regex(value),
                    op::PRESENT => ConditionTest::Present,
                    _ => ConditionTest::Port(rec.get(cond::PATTERN) as u16),
                };
                let flags = rec.get(cond::FLAGS);
                ConditionView {
                    field,
                    test,
                    negated: flags & crate::format::COND_NEGATED != 0,
                    ignore_case: flags & crate::format::COND_IGNORE_CASE != 0,
                }
            })
    }
}

#[derive(Clone, Copy)]
pub struct DestinationView<'t> {
    pub(crate) table: &'t Table<'t>,
    pub(crate) id: u32,
}

impl<'t> DestinationView<'t> {
    fn rec(&self) -> Rec<'t> {
        self.table.rec(Section::Destinations, self.id)
    }
    pub fn cluster(&self) -> ClusterView<'t> {
        ClusterView {
            table: self.table,
            id: self.rec().get(dest::CLUSTER),
        }
    }
    pub fn weight(&self) -> u32 {
        self.rec().get(dest::WEIGHT)
    }
    pub fn port(&self) -> Option<u16> {
        opt_u32(self.rec().get(dest::PORT)).map(|p| p as u16)
    }
    pub fn request_headers(&self) -> impl ExactSizeIterator<Item = HeaderOp<'t>> + 't {
        header_ops(self.table, self.rec().range(dest::REQUEST_OPS))
    }
    pub fn response_headers(&self) -> impl ExactSizeIterator<Item = HeaderOp<'t>> + 't {
        header_ops(self.table, self.rec().range(dest::RESPONSE_OPS))
    }
    /// Index among its route's destinations.
    pub fn index_in_route(&self, route: &RouteView<'_>) -> u32 {
        self.id.saturating_sub(route.policy().get(policy::DESTS))
    }
}

impl std::fmt::Debug for DestinationView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("cluster", &self.cluster().name())
            .field("weight", &self.weight())
            .field("port", &self.port())
            .finish()
    }
}

#[derive(Clone, Copy, Debug)]
pub struct MirrorView<'t> {
    /// Position in the route's mirror list.
    pub index: u32,
    pub cluster: ClusterView<'t>,
    pub per_million: u32,
}

#[derive(Clone, Copy, Debug)]
pub struct CorsView<'t> {
    table: &'t Table<'t>,
    id: u32,
}

/// A configured CORS origin test (the proxy evaluates these, regexes with its own engine).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OriginMatch<'t> {
    Exact(&'t str),
    Prefix(&'t str),
    Regex(&'t str),
}

impl<'t> CorsView<'t> {
    fn rec(&self) -> Rec<'t> {
        self.table.rec(Section::Cors, self.id)
    }
    fn strs(&self, field: usize) -> impl ExactSizeIterator<Item = &'t str> + 't {
        let table = self.table;
        self.rec()
            .range(field)
            .map(move |i| table.str(table.item(Section::StrList, i)))
    }
    pub fn allow_origins(&self) -> impl ExactSizeIterator<Item = OriginMatch<'t>> + 't {
        let table = self.table;
        self.rec().range(cors::ORIGINS).map(move |i| {
            let rec = table.rec(Section::StringMatches, i);
            let value = table.str(rec.get(string_match::VALUE));
            match rec.get(string_match::OP) {
                op::EXACT => OriginMatch::Exact(value),
                op::PREFIX => OriginMatch::Prefix(value),
                _ => OriginMatch::Regex(value),
            }
        })
    }
    pub fn allow_methods(&self) -> impl ExactSizeIterator<Item = &'t str> + 't {
        self.strs(cors::METHODS)
    }
    pub fn allow_headers(&self) -> impl ExactSizeIterator<Item = &'t str> + 't {
        self.strs(cors::HEADERS)
    }
    pub fn expose_headers(&self) -> impl ExactSizeIterator<Item = &'t str> + 't {
        self.strs(cors::EXPOSE)
    }
    pub fn max_age_s(&self) -> Option<u32> {
        opt_u32(self.rec().get(cors::MAX_AGE_S))
    }
    pub fn allow_credentials(&self) -> Option<bool> {
        match self.rec().get(cors::CREDENTIALS) {
            1 => Some(false),
            2 => Some(true),
            _ => None,
        }
    }
}

#[derive(Clone, Copy)]
pub struct ClusterView<'t> {
    pub(crate) table: &'t Table<'t>,
    pub(crate) id: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    Static,
    Dns,
    RuntimeLookup,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadBalancer<'t> {
    RoundRobin,
    LeastRequest,
    Random,
    ConsistentHash {
        header: Option<&'t str>,
        cookie: Option<&'t str>,
        source_ip: bool,
        query_param: Option<&'t str>,
    },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionPool {
    pub max_connections: Option<u32>,
    pub connect_timeout_ms: Option<u32>,
    pub http1_max_pending: Option<u32>,
    pub http2_max_requests: Option<u32>,
    pub max_requests_per_connection: Option<u32>,
    pub max_retries: Option<u32>,
    pub idle_timeout_ms: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutlierDetection {
    pub consecutive_5xx: Option<u32>,
    pub consecutive_gateway_errors: Option<u32>,
    pub interval_ms: u32,
    pub base_ejection_ms: u32,
    pub max_ejection_percent: u32,
    pub min_health_percent: u32,
}

#[derive(Clone, Copy, Debug)]
pub struct EndpointView<'t> {
    table: &'t Table<'t>,
    id: u32,
}

fn labels<'t>(
    table: &'t Table<'t>,
    range: std::ops::Range<u32>,
) -> impl ExactSizeIterator<Item = (&'t str, &'t str)> + 't {
    range.map(move |i| {
        let rec = table.rec(Section::Labels, i);
        (
            table.str(rec.get(label::KEY)),
            table.str(rec.get(label::VALUE)),
        )
    })
}

impl<'t> EndpointView<'t> {
    fn rec(&self) -> Rec<'t> {
        self.table.rec(Section::Endpoints, self.id)
    }
    pub fn address(&self) -> &'t str {
        self.table.str(self.rec().get(endpoint::ADDRESS))
    }
    pub fn port(&self) -> u16 {
        self.rec().get(endpoint::PORT) as u16
    }
    pub fn weight(&self) -> u32 {
        self.rec().get(endpoint::WEIGHT)
    }
    pub fn labels(&self) -> impl ExactSizeIterator<Item = (&'t str, &'t str)> + 't {
        labels(self.table, self.rec().range(endpoint::LABELS))
    }
}

impl<'t> ClusterView<'t> {
    fn rec(&self) -> Rec<'t> {
        self.table.rec(Section::Clusters, self.id)
    }
    pub fn id(&self) -> ClusterId {
        ClusterId(self.id)
    }
    pub fn name(&self) -> &'t str {
        self.table.str(self.rec().get(cluster::NAME))
    }
    pub fn host(&self) -> &'t str {
        self.table.str(self.rec().get(cluster::HOST))
    }
    pub fn subset(&self) -> Option<&'t str> {
        self.table.opt_str(self.rec().get(cluster::SUBSET))
    }
    pub fn port(&self) -> Option<u16> {
        opt_u32(self.rec().get(cluster::PORT)).map(|p| p as u16)
    }
    pub fn labels(&self) -> impl ExactSizeIterator<Item = (&'t str, &'t str)> + 't {
        labels(self.table, self.rec().range(cluster::LABELS))
    }
    pub fn endpoints(&self) -> impl ExactSizeIterator<Item = EndpointView<'t>> + 't {
        range_views(
            self.table,
            self.rec().range(cluster::ENDPOINTS),
            |table, id| EndpointView { table, id },
        )
    }
    pub fn resolution(&self) -> Resolution {
        match self.rec().get(cluster::RESOLUTION) {
            0 => Resolution::Static,
            1 => Resolution::Dns,
            _ => Resolution::RuntimeLookup,
        }
    }
    pub fn load_balancer(&self) -> LoadBalancer<'t> {
        let rec = self.rec();
        match rec.get(cluster::LB) {
            0 => LoadBalancer::RoundRobin,
            1 => LoadBalancer::LeastRequest,
            2 => LoadBalancer::Random,
            _ => LoadBalancer::ConsistentHash {
                header: self.table.opt_str(rec.get(cluster::HASH_HEADER)),
                cookie: self.table.opt_str(rec.get(cluster::HASH_COOKIE)),
                source_ip: rec.get(cluster::HASH_SOURCE_IP) != 0,
                query_param: self.table.opt_str(rec.get(cluster::HASH_QUERY)),
            },
        }
    }
    pub fn connection_pool(&self) -> ConnectionPool {
        let rec = self.rec();
        ConnectionPool {
            max_connections: opt_u32(rec.get(cluster::MAX_CONNECTIONS)),
            connect_timeout_ms: opt_u32(rec.get(cluster::CONNECT_TIMEOUT_MS)),
            http1_max_pending: opt_u32(rec.get(cluster::HTTP1_MAX_PENDING)),
            http2_max_requests: opt_u32(rec.get(cluster::HTTP2_MAX_REQUESTS)),
            max_requests_per_connection: opt_u32(rec.get(cluster::MAX_REQUESTS_PER_CONNECTION)),
            max_retries: opt_u32(rec.get(cluster::MAX_RETRIES)),
            idle_timeout_ms: opt_u32(rec.get(cluster::IDLE_TIMEOUT_MS)),
        }
    }
    pub fn outlier_detection(&self) -> Option<OutlierDetection> {
        let rec = self.rec();
        (rec.get(cluster::OUTLIER_PRESENT) != 0).then(|| OutlierDetection {
            consecutive_5xx: opt_u32(rec.get(cluster::CONSECUTIVE_5XX)),
            consecutive_gateway_errors: opt_u32(rec.get(cluster::CONSECUTIVE_GATEWAY_ERRORS)),
            interval_ms: rec.get(cluster::INTERVAL_MS),
            base_ejection_ms: rec.get(cluster::BASE_EJECTION_MS),
            max_ejection_percent: rec.get(cluster::MAX_EJECTION_PERCENT),
            min_health_percent: rec.get(cluster::MIN_HEALTH_PERCENT),
        })
    }
}

impl std::fmt::Debug for ClusterView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("id", &self.id)
            .field("name", &self.name())
            .finish()
    }
}

impl<'a> Table<'a> {
    pub fn virtual_hosts(&self) -> impl ExactSizeIterator<Item = VirtualHostView<'_>> + '_ {
        let table: &Table<'_> = self;
        (0..self.count(Section::VirtualHosts)).map(move |id| VirtualHostView { table, id })
    }
    pub fn clusters(&self) -> impl ExactSizeIterator<Item = ClusterView<'_>> + '_ {
        let table: &Table<'_> = self;
        (0..self.count(Section::Clusters)).map(move |id| ClusterView { table, id })
    }
    pub fn route(&self, id: RouteId) -> Option<RouteView<'_>> {
        (id.0 < self.count(Section::Routes)).then_some(RouteView {
            table: self,
            id: id.0,
        })
    }
    pub fn cluster(&self, id: ClusterId) -> Option<ClusterView<'_>> {
        (id.0 < self.count(Section::Clusters)).then_some(ClusterView {
            table: self,
            id: id.0,
        })
    }
    pub fn virtual_host(&self, id: VirtualHostId) -> Option<VirtualHostView<'_>> {
        (id.0 < self.count(Section::VirtualHosts)).then_some(VirtualHostView {
            table: self,
            id: id.0,
        })
    }
}
