//! The writer: lays a `TableSpec` out as artifact bytes, building the dispatch indexes.
//!
//! Output depends only on the spec: lists are emitted in spec order, interned ids are assigned
//! in first-use order, and hash maps are only used for lookups, never iterated into output.
//!
//! What a route does is written as an interned policy (`format::policy`): the policy and the
//! ranges it points to (destinations, header operations, retry codes, mirrors, CORS and its
//! lists, blobs) are written once per distinct content, so the route records of a hundred
//! thousand rules with one behaviour share one policy. Entry lists, whose positions carry
//! meaning, are written as they come.

mod dispatch;
mod writer;

use std::collections::HashMap;
use std::fmt;

use crate::format::{
    self, NONE, Section, action_kind, cluster, cors, dest, endpoint, header_op, header_op_kind,
    key_kind, label, mirror, policy, root, route, string_match,
};
use crate::hash::{KeyHasher, percent_to_per_million};
use crate::spec::{
    AbortKind, ActionSpec, ClusterSpec, CorsSpec, HeaderOpsSpec, LbSpec, ResolutionSpec, RetrySpec,
    RouteSpec, StringMatchSpec, TableSpec,
};
use writer::{SlotItem, Writer};

/// Limits for the writer. The defaults suit tables of up to about a hundred thousand simple
/// regex routes per virtual host.
#[derive(Clone, Debug)]
pub struct EncodeOptions {
    /// Largest serialized DFA for one (virtual host, field), in bytes.
    pub dfa_size_limit: usize,
    /// Largest working memory while building one DFA, in bytes.
    pub determinize_size_limit: usize,
}

impl Default for EncodeOptions {
    fn default() -> EncodeOptions {
        EncodeOptions {
            dfa_size_limit: 256 << 20,
            determinize_size_limit: 512 << 20,
        }
    }
}

/// Why a spec could not be encoded. These are compiler bugs or limits, not policy lint
/// findings: the compiler is expected to have diagnosed user mistakes before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    UnknownCluster {
        route: String,
        cluster: u32,
    },
    NoDestinations {
        route: String,
    },
    WeightOverflow {
        route: String,
    },
    InvalidDomain {
        virtual_host: String,
        domain: String,
    },
    DuplicateDomain {
        domain: String,
        first: String,
        second: String,
    },
    RegexSyntax {
        virtual_host: String,
        pattern: String,
        message: String,
    },
    RegexTooBig {
        virtual_host: String,
        field: String,
        patterns: usize,
        message: String,
    },
    UnknownRetryOn {
        route: String,
        token: String,
    },
    InvalidStatus {
        route: String,
        status: u32,
    },
    TooLarge {
        what: &'static str,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::UnknownCluster { route, cluster } => {
                write!(
                    f,
                    "route `{route}` refers to cluster {cluster}, which does not exist"
                )
            }
            EncodeError::NoDestinations { route } => {
                write!(f, "route `{route}` forwards to no destination")
            }
            EncodeError::WeightOverflow { route } => {
                write!(
                    f,
                    "the weights of route `{route}` add up to more than 2^32-1"
                )
            }
            EncodeError::InvalidDomain {
                virtual_host,
                domain,
            } => write!(
                f,
                "virtual host `{virtual_host}` has domain `{domain}`: only exact names, `*.suffix` and `*` are supported"
            ),
            EncodeError::DuplicateDomain {
                domain,
                first,
                second,
            } => write!(
                f,
                "domain `{domain}` is claimed by virtual hosts `{first}` and `{second}` on overlapping ports"
            ),
            EncodeError::RegexSyntax {
                virtual_host,
                pattern,
                message,
            } => write!(
                f,
                "virtual host `{virtual_host}`: invalid regex `{pattern}`: {message}"
            ),
            EncodeError::RegexTooBig {
                virtual_host,
                field,
                patterns,
                message,
            } => write!(
                f,
                "virtual host `{virtual_host}`: the DFA for {patterns} regexes on {field} is too big ({message}); raise EncodeOptions::dfa_size_limit or use fewer or simpler regexes"
            ),
            EncodeError::UnknownRetryOn { route, token } => {
                write!(f, "route `{route}` has unknown retry condition `{token}`")
            }
            EncodeError::InvalidStatus { route, status } => {
                write!(
                    f,
                    "route `{route}` uses HTTP status {status}, outside 100..=999"
                )
            }
            EncodeError::TooLarge { what } => write!(f, "the table is too large: {what}"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Encodes a spec with the default limits.
pub fn encode(spec: &TableSpec) -> Result<Vec<u8>, EncodeError> {
    encode_with(spec, &EncodeOptions::default())
}

/// Encodes a spec into artifact bytes; identical specs give identical bytes.
pub fn encode_with(spec: &TableSpec, options: &EncodeOptions) -> Result<Vec<u8>, EncodeError> {
    let mut w = Writer::new();
    let n_clusters = u32::try_from(spec.clusters.len())
        .map_err(|_| EncodeError::TooLarge { what: "clusters" })?;
    for cluster_spec in &spec.clusters {
        write_cluster(&mut w, cluster_spec)?;
    }
    let mut key_slots = Vec::new();
    for (vhost_idx, vhost_spec) in spec.virtual_hosts.iter().enumerate() {
        let vhost_id = u32::try_from(vhost_idx).map_err(|_| EncodeError::TooLarge {
            what: "virtual hosts",
        })?;
        let mut routes = Vec::with_capacity(vhost_spec.routes.len());
        for route_spec in &vhost_spec.routes {
            routes.push(route_fields(&mut w, vhost_id, route_spec, n_clusters)?);
        }
        dispatch::write_virtual_host(
            &mut w,
            vhost_id,
            vhost_spec,
            &routes,
            options,
            &mut key_slots,
        )?;
    }
    let (host_slots, suffix_lengths) = host_keys(&mut w, spec)?;
    let suffix_lengths = w.interned_list(Section::LengthList, suffix_lengths)?;
    let mut root_fields = [0u32; root::LEN];
    root_fields[root::SUFFIX_LENGTHS] = suffix_lengths.0;
    root_fields[root::SUFFIX_LENGTHS_LEN] = suffix_lengths.1;
    w.push(Section::Root, &root_fields)?;
    w.hash_table(Section::HostSlots, &host_slots)?;
    w.hash_table(Section::KeySlots, &key_slots)?;
    w.finish(&spec.content_hash)
}

/// Classifies a domain into a host key kind and the bytes that are hashed.
fn host_key(domain: &str) -> Option<(u32, String)> {
    let domain = domain.to_ascii_lowercase();
    if domain == "*" {
        return Some((key_kind::HOST_ANY, String::new()));
    }
    if let Some(suffix) = domain.strip_prefix('*') {
        if suffix.is_empty() || suffix.contains('*') {
            return None;
        }
        return Some((key_kind::HOST_SUFFIX, suffix.to_owned()));
    }
    if domain.is_empty() || domain.contains('*') {
        return None;
    }
    Some((key_kind::HOST_EXACT, domain))
}

/// Builds the host table: each domain key lists the virtual hosts claiming it, whose port sets
/// must be disjoint (Envoy refuses duplicate domains within one route configuration).
fn host_keys(w: &mut Writer, spec: &TableSpec) -> Result<(Vec<SlotItem>, Vec<u32>), EncodeError> {
    let mut order: Vec<(u32, String)> = Vec::new();
    let mut claims: HashMap<(u32, String), Vec<usize>> = HashMap::new();
    for (vhost_idx, vhost_spec) in spec.virtual_hosts.iter().enumerate() {
        for domain in &vhost_spec.domains {
            let key = host_key(domain).ok_or_else(|| EncodeError::InvalidDomain {
                virtual_host: vhost_spec.name.clone(),
                domain: domain.clone(),
            })?;
            let vhosts = claims.entry(key.clone()).or_default();
            if vhosts.is_empty() {
                order.push(key);
            }
            if vhosts.contains(&vhost_idx) {
                continue;
            }
            for &other in vhosts.iter() {
                let other_ports = &spec.virtual_hosts[other].ports;
                let overlap = other_ports.is_empty()
                    || vhost_spec.ports.is_empty()
                    || other_ports
                        .iter()
                        .any(|port| vhost_spec.ports.contains(port));
                if overlap {
                    return Err(EncodeError::DuplicateDomain {
                        domain: domain.clone(),
                        first: spec.virtual_hosts[other].name.clone(),
                        second: vhost_spec.name.clone(),
                    });
                }
            }
            vhosts.push(vhost_idx);
        }
    }
    let mut slots = Vec::with_capacity(order.len());
    let mut suffix_lengths = std::collections::BTreeSet::new();
    for (kind, value) in order {
        let vhosts = claims
            .get(&(kind, value.clone()))
            .map_or(&[][..], Vec::as_slice);
        let list = w.interned_list(Section::VhostList, vhosts.iter().map(|&v| v as u32))?;
        if kind == key_kind::HOST_SUFFIX {
            suffix_lengths.insert(value.len() as u32);
        }
        let mut hasher = KeyHasher::new(kind, 0, NONE);
        hasher.push_bytes(value.as_bytes());
        slots.push(SlotItem {
            hash: hasher.finish(),
            tag: kind << 16,
            scope: NONE,
            key: w.str(&value)?,
            list,
        });
    }
    Ok((slots, suffix_lengths.into_iter().collect()))
}

/// A route's printable name for errors.
fn route_label(route_spec: &RouteSpec) -> String {
    match &route_spec.name {
        Some(name) => format!("{}[{}] ({name})", route_spec.vs_name, route_spec.rule_index),
        None => format!("{}[{}]", route_spec.vs_name, route_spec.rule_index),
    }
}

fn status(route_spec: &RouteSpec, status: u16) -> Result<u32, EncodeError> {
    if (100..=999).contains(&status) {
        Ok(u32::from(status))
    } else {
        Err(EncodeError::InvalidStatus {
            route: route_label(route_spec),
            status: u32::from(status),
        })
    }
}

fn opt(value: Option<u32>) -> u32 {
    value.unwrap_or(NONE)
}

/// Writes everything a route refers to and returns its record (the dispatch writer adds it).
fn route_fields(
    w: &mut Writer,
    vhost_id: u32,
    route_spec: &RouteSpec,
    n_clusters: u32,
) -> Result<[u32; route::LEN], EncodeError> {
    let mut r = [0u32; route::LEN];
    r[route::VHOST] = vhost_id;
    r[route::VS_NAME] = w.str(&route_spec.vs_name)?;
    r[route::NAME] = w.opt_str(route_spec.name.as_deref())?;
    r[route::RULE_INDEX] = route_spec.rule_index;
    r[route::POLICY] = write_policy(w, route_spec, n_clusters)?;
    Ok(r)
}

/// Writes what a route does as an interned policy record (with its interned ranges) and
/// returns the policy id: routes that behave the same get the same id.
fn write_policy(
    w: &mut Writer,
    route_spec: &RouteSpec,
    n_clusters: u32,
) -> Result<u32, EncodeError> {
    let label = || route_label(route_spec);
    let check_cluster = |cluster: u32| {
        if cluster < n_clusters {
            Ok(cluster)
        } else {
            Err(EncodeError::UnknownCluster {
                route: label(),
                cluster,
            })
        }
    };
    let mut r = [0u32; policy::LEN];
    for field in [
        policy::REDIRECT_URI,
        policy::REDIRECT_AUTHORITY,
        policy::REDIRECT_PORT,
        policy::REDIRECT_SCHEME,
        policy::DIRECT_BODY,
        policy::DELAY_MS,
        policy::ABORT_GRPC_STATUS,
        policy::TIMEOUT_MS,
        policy::RETRY_PER_TRY_TIMEOUT_MS,
        policy::RETRY_ON_TEXT,
        policy::RETRY_BACKOFF_MS,
        policy::REWRITE_URI,
        policy::REWRITE_AUTHORITY,
        policy::REWRITE_REGEX,
        policy::REWRITE_REGEX_SUBSTITUTION,
        policy::CORS,
    ] {
        r[field] = NONE;
    }
    match &route_spec.action {
        ActionSpec::Route(dests) => {
            r[policy::ACTION] = action_kind::ROUTE;
            if dests.is_empty() {
                return Err(EncodeError::NoDestinations { route: label() });
            }
            // Istio: a lone destination may omit its weight; all-zero weights split evenly.
            let all_zero = dests.iter().all(|d| d.weight == 0);
            let mut records = Vec::with_capacity(dests.len() * dest::LEN);
            let mut total: u32 = 0;
            for d in dests {
                let weight = if all_zero { 1 } else { d.weight };
                total = total
                    .checked_add(weight)
                    .ok_or_else(|| EncodeError::WeightOverflow { route: label() })?;
                let mut rec = [0u32; dest::LEN];
                rec[dest::CLUSTER] = check_cluster(d.cluster)?;
                rec[dest::WEIGHT] = weight;
                rec[dest::CUMULATIVE] = total;
                rec[dest::PORT] = opt(d.port.map(u32::from));
                (rec[dest::REQUEST_OPS], rec[dest::REQUEST_OPS_LEN]) =
                    header_ops(w, &d.request_headers)?;
                (rec[dest::RESPONSE_OPS], rec[dest::RESPONSE_OPS_LEN]) =
                    header_ops(w, &d.response_headers)?;
                records.extend_from_slice(&rec);
            }
            (r[policy::DESTS], r[policy::DESTS_LEN]) =
                w.interned_range(Section::Destinations, records)?;
            r[policy::TOTAL_WEIGHT] = total;
        }
        ActionSpec::Redirect(redirect) => {
            r[policy::ACTION] = action_kind::REDIRECT;
            r[policy::REDIRECT_URI] = w.opt_str(redirect.uri.as_deref())?;
            r[policy::REDIRECT_AUTHORITY] = w.opt_str(redirect.authority.as_deref())?;
            r[policy::REDIRECT_PORT] = opt(redirect.port.map(u32::from));
            r[policy::REDIRECT_SCHEME] = w.opt_str(redirect.scheme.as_deref())?;
            r[policy::STATUS] = status(route_spec, redirect.code)?;
            r[policy::REDIRECT_DERIVE_PORT] = u32::from(redirect.derive_port_from_request);
        }
        ActionSpec::DirectResponse { status: code, body } => {
            r[policy::ACTION] = action_kind::DIRECT_RESPONSE;
            r[policy::STATUS] = status(route_spec, *code)?;
            r[policy::DIRECT_BODY] = w.blob(body)?;
        }
    }
    if let Some(fault) = &route_spec.fault {
        if let Some((delay_ms, percent)) = fault.delay {
            r[policy::DELAY_MS] = delay_ms.min(NONE - 1);
            r[policy::DELAY_PER_MILLION] = percent_to_per_million(percent);
        }
        if let Some((kind, percent)) = &fault.abort {
            r[policy::ABORT_PER_MILLION] = percent_to_per_million(*percent);
            match kind {
                AbortKind::HttpStatus(code) => {
                    r[policy::ABORT_KIND] = format::abort_kind::HTTP;
                    r[policy::ABORT_HTTP_STATUS] = status(route_spec, *code)?;
                }
                AbortKind::GrpcStatus(grpc) => {
                    r[policy::ABORT_KIND] = format::abort_kind::GRPC;
                    r[policy::ABORT_GRPC_STATUS] = w.str(grpc)?;
                }
            }
        }
    }
    r[policy::TIMEOUT_MS] = opt(route_spec.timeout_ms);
    if let Some(retry) = &route_spec.retries {
        retry_fields(w, &mut r, retry, &label)?;
    }
    (r[policy::REQUEST_OPS], r[policy::REQUEST_OPS_LEN]) =
        header_ops(w, &route_spec.request_headers)?;
    (r[policy::RESPONSE_OPS], r[policy::RESPONSE_OPS_LEN]) =
        header_ops(w, &route_spec.response_headers)?;
    if let Some(rewrite) = &route_spec.rewrite {
        r[policy::REWRITE_PRESENT] = 1;
        r[policy::REWRITE_URI] = w.opt_str(rewrite.uri.as_deref())?;
        r[policy::REWRITE_AUTHORITY] = w.opt_str(rewrite.authority.as_deref())?;
        if let Some((pattern, substitution)) = &rewrite.uri_regex {
            r[policy::REWRITE_REGEX] = w.str(pattern)?;
            r[policy::REWRITE_REGEX_SUBSTITUTION] = w.str(substitution)?;
        }
    }
    let mut mirrors = Vec::with_capacity(route_spec.mirrors.len() * mirror::LEN);
    for m in &route_spec.mirrors {
        let mut rec = [0u32; mirror::LEN];
        rec[mirror::CLUSTER] = check_cluster(m.cluster)?;
        rec[mirror::PER_MILLION] = percent_to_per_million(m.percent);
        mirrors.extend_from_slice(&rec);
    }
    (r[policy::MIRRORS], r[policy::MIRRORS_LEN]) = w.interned_range(Section::Mirrors, mirrors)?;
    if let Some(cors_spec) = &route_spec.cors {
        r[policy::CORS] = write_cors(w, cors_spec)?;
    }
    w.intern(Section::Policies, &r)
}

fn retry_fields(
    w: &mut Writer,
    r: &mut [u32; policy::LEN],
    retry: &RetrySpec,
    label: &dyn Fn() -> String,
) -> Result<(), EncodeError> {
    r[policy::RETRY_PRESENT] = 1;
    r[policy::RETRY_ATTEMPTS] = retry.attempts;
    r[policy::RETRY_PER_TRY_TIMEOUT_MS] = opt(retry.per_try_timeout_ms);
    r[policy::RETRY_BACKOFF_MS] = opt(retry.backoff_ms);
    let mut bits = 0;
    let mut codes = Vec::new();
    for token in &retry.retry_on {
        let token = token.trim();
        if let Some(bit) = format::retry_on::bit(token) {
            bits |= bit;
        } else if let Ok(code @ 100..=999) = token.parse::<u32>() {
            // Istio: a numeric retryOn entry is a retriable status code.
            bits |= format::retry_on::RETRIABLE_STATUS_CODES;
            if !codes.contains(&code) {
                codes.push(code);
            }
        } else {
            return Err(EncodeError::UnknownRetryOn {
                route: label(),
                token: token.to_owned(),
            });
        }
    }
    r[policy::RETRY_ON_BITS] = bits;
    (r[policy::RETRY_CODES], r[policy::RETRY_CODES_LEN]) =
        w.interned_list(Section::CodeList, codes)?;
    if !retry.retry_on.is_empty() {
        r[policy::RETRY_ON_TEXT] = w.str(&retry.retry_on.join(","))?;
    }
    Ok(())
}

/// A list of header operations, interned: (start, len), (0, 0) when there are none.
fn header_ops(w: &mut Writer, ops: &HeaderOpsSpec) -> Result<(u32, u32), EncodeError> {
    let mut records = Vec::new();
    let mut push = |w: &mut Writer, kind: u32, name: &str, value: Option<&str>| {
        let mut rec = [0u32; header_op::LEN];
        rec[header_op::KIND] = kind;
        rec[header_op::NAME] = w.str(&name.to_ascii_lowercase())?;
        rec[header_op::VALUE] = w.opt_str(value)?;
        records.extend_from_slice(&rec);
        Ok::<(), EncodeError>(())
    };
    for (name, value) in &ops.set {
        push(w, header_op_kind::SET, name, Some(value))?;
    }
    for (name, value) in &ops.add {
        push(w, header_op_kind::ADD, name, Some(value))?;
    }
    for name in &ops.remove {
        push(w, header_op_kind::REMOVE, name, None)?;
    }
    w.interned_range(Section::HeaderOps, records)
}

fn string_match_op(m: &StringMatchSpec) -> (u32, &str) {
    match m {
        StringMatchSpec::Exact(v) => (format::op::EXACT, v),
        StringMatchSpec::Prefix(v) => (format::op::PREFIX, v),
        StringMatchSpec::Regex(v) => (format::op::REGEX, v),
    }
}

/// A CORS policy and its lists, interned.
fn write_cors(w: &mut Writer, cors_spec: &CorsSpec) -> Result<u32, EncodeError> {
    let mut rec = [0u32; cors::LEN];
    let mut origins = Vec::with_capacity(cors_spec.allow_origins.len() * string_match::LEN);
    for origin in &cors_spec.allow_origins {
        let (op, value) = string_match_op(origin);
        let value = w.str(value)?;
        let mut m = [0u32; string_match::LEN];
        m[string_match::OP] = op;
        m[string_match::VALUE] = value;
        origins.extend_from_slice(&m);
    }
    (rec[cors::ORIGINS], rec[cors::ORIGINS_LEN]) =
        w.interned_range(Section::StringMatches, origins)?;
    for (field, items) in [
        (cors::METHODS, &cors_spec.allow_methods),
        (cors::HEADERS, &cors_spec.allow_headers),
        (cors::EXPOSE, &cors_spec.expose_headers),
    ] {
        let ids = items
            .iter()
            .map(|s| w.str(s))
            .collect::<Result<Vec<_>, _>>()?;
        (rec[field], rec[field + 1]) = w.interned_list(Section::StrList, ids)?;
    }
    rec[cors::MAX_AGE_S] = opt(cors_spec.max_age_s);
    rec[cors::CREDENTIALS] = match cors_spec.allow_credentials {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    };
    w.intern(Section::Cors, &rec)
}

/// A label list, interned.
fn labels(w: &mut Writer, pairs: &[(String, String)]) -> Result<(u32, u32), EncodeError> {
    let mut records = Vec::with_capacity(pairs.len() * label::LEN);
    for (key, value) in pairs {
        let mut rec = [0u32; label::LEN];
        rec[label::KEY] = w.str(key)?;
        rec[label::VALUE] = w.str(value)?;
        records.extend_from_slice(&rec);
    }
    w.interned_range(Section::Labels, records)
}

fn write_cluster(w: &mut Writer, c: &ClusterSpec) -> Result<u32, EncodeError> {
    let mut rec = [NONE; cluster::LEN];
    rec[cluster::NAME] = w.str(&c.name)?;
    rec[cluster::HOST] = w.str(&c.host)?;
    rec[cluster::SUBSET] = w.opt_str(c.subset.as_deref())?;
    rec[cluster::PORT] = opt(c.port.map(u32::from));
    (rec[cluster::LABELS], rec[cluster::LABELS_LEN]) = labels(w, &c.labels)?;
    let mut endpoint_records = Vec::with_capacity(c.endpoints.len() * endpoint::LEN);
    for e in &c.endpoints {
        let mut er = [0u32; endpoint::LEN];
        er[endpoint::ADDRESS] = w.str(&e.address)?;
        er[endpoint::PORT] = u32::from(e.port);
        er[endpoint::WEIGHT] = e.weight;
        (er[endpoint::LABELS], er[endpoint::LABELS_LEN]) = labels(w, &e.labels)?;
        endpoint_records.extend_from_slice(&er);
    }
    (rec[cluster::ENDPOINTS], rec[cluster::ENDPOINTS_LEN]) =
        w.interned_range(Section::Endpoints, endpoint_records)?;
    rec[cluster::RESOLUTION] = match c.resolution {
        ResolutionSpec::Static => 0,
        ResolutionSpec::Dns => 1,
        ResolutionSpec::RuntimeLookup => 2,
    };
    rec[cluster::HASH_SOURCE_IP] = 0;
    rec[cluster::LB] = match &c.lb {
        LbSpec::RoundRobin => 0,
        LbSpec::LeastRequest => 1,
        LbSpec::Random => 2,
        LbSpec::ConsistentHash {
            header,
            cookie,
            source_ip,
            query_param,
        } => {
            rec[cluster::HASH_HEADER] = w.opt_str(header.as_deref())?;
            rec[cluster::HASH_COOKIE] = w.opt_str(cookie.as_deref())?;
            rec[cluster::HASH_SOURCE_IP] = u32::from(*source_ip);
            rec[cluster::HASH_QUERY] = w.opt_str(query_param.as_deref())?;
            3
        }
    };
    let pool = &c.connection_pool;
    rec[cluster::MAX_CONNECTIONS] = opt(pool.max_connections);
    rec[cluster::CONNECT_TIMEOUT_MS] = opt(pool.connect_timeout_ms);
    rec[cluster::HTTP1_MAX_PENDING] = opt(pool.http1_max_pending);
    rec[cluster::HTTP2_MAX_REQUESTS] = opt(pool.http2_max_requests);
    rec[cluster::MAX_REQUESTS_PER_CONNECTION] = opt(pool.max_requests_per_connection);
    rec[cluster::MAX_RETRIES] = opt(pool.max_retries);
    rec[cluster::IDLE_TIMEOUT_MS] = opt(pool.idle_timeout_ms);
    rec[cluster::OUTLIER_PRESENT] = 0;
    if let Some(o) = &c.outlier {
        rec[cluster::OUTLIER_PRESENT] = 1;
        rec[cluster::CONSECUTIVE_5XX] = opt(o.consecutive_5xx);
        rec[cluster::CONSECUTIVE_GATEWAY_ERRORS] = opt(o.consecutive_gateway_errors);
        rec[cluster::INTERVAL_MS] = o.interval_ms;
        rec[cluster::BASE_EJECTION_MS] = o.base_ejection_ms;
        rec[cluster::MAX_EJECTION_PERCENT] = o.max_ejection_percent;
        rec[cluster::MIN_HEALTH_PERCENT] = o.min_health_percent;
    }
    w.push(Section::Clusters, &rec)
}
