//! Lower: the typed IR -> the routing table's input model (`mesh_table::spec::TableSpec`).
//!
//! Istio's semantics are decided here, once: short host names become the domains a sidecar
//! answers to, destinations become clusters (host, subset, port) with their endpoints and the
//! DestinationRule's traffic policy, missing retry policies get Istio's default, percentages
//! and durations get their runtime units. The table crate's writer lays the result out
//! (`emit`); nothing here knows the binary layout.

use std::collections::BTreeMap;

use mesh_table::spec::{
    AbortKind as TableAbort, ActionSpec, ClusterSpec, ConnectionPoolSpec, CorsSpec, EndpointSpec,
    FaultSpec, HeaderMatchSpec, HeaderOpsSpec, LbSpec, MatchSpec, MirrorSpec, OutlierSpec,
    RedirectSpec, ResolutionSpec, RetrySpec, RewriteSpec, RouteSpec, StringMatchSpec, TableSpec,
    VirtualHostSpec, WeightedDestSpec,
};

use crate::typecheck::{
    AbortKind, ConnectionPool, Destination, DestinationRule, HeaderMatch, HeaderOpSet, HttpMatch,
    HttpRoute, Ir, KeyedMatch, LoadBalancer, OutlierDetection, StringMatch, TrafficPolicy,
    VirtualService,
};

/// Istio's retry policy for a route that sets none (`pilot/pkg/networking/core/route/retry`):
/// two retries on connection failures and refused streams, and the gRPC `unavailable` and
/// `cancelled` statuses.
const DEFAULT_RETRY_ON: [&str; 4] = [
    "connect-failure",
    "refused-stream",
    "unavailable",
    "cancelled",
];
const DEFAULT_RETRY_ATTEMPTS: u32 = 2;

/// Lowers a checked repository. `content_hash` identifies the input (see `build`).
pub fn lower(ir: &Ir, content_hash: [u8; 32]) -> TableSpec {
    let mut clusters = Clusters::new(ir);
    // Sidecars apply VirtualServices bound to the mesh; gateway-only ones configure gateways.
    let mut services: Vec<&VirtualService> = ir
        .virtual_services
        .iter()
        .filter(|vs| vs.is_mesh_bound() && !vs.is_delegate())
        .collect();
    services
        .sort_by(|a, b| (&a.meta.namespace, &a.meta.name).cmp(&(&b.meta.namespace, &b.meta.name)));

    // Every domain a VirtualService answers to: its hosts as resolved, plus the short forms a
    // client in the same namespace uses (`reviews`, `reviews.default`, `reviews.default.svc`).
    // A short form claimed by two VirtualServices (two namespaces) is left out: the FQDN
    // still works.
    let mut claims: BTreeMap<String, usize> = BTreeMap::new();
    for vs in &services {
        for host in &vs.hosts {
            for domain in short_forms(&host.fqdn) {
                *claims.entry(domain).or_default() += 1;
            }
        }
    }
    let mut virtual_hosts = Vec::new();
    for vs in services {
        let mut domains: Vec<String> = Vec::new();
        for host in &vs.hosts {
            domains.push(host.fqdn.clone());
            domains.extend(short_forms(&host.fqdn).filter(|d| claims.get(d) == Some(&1)));
        }
        domains.sort();
        domains.dedup();
        let vs_name = format!("{}/{}", vs.meta.namespace, vs.meta.name);
        let routes = vs
            .http
            .iter()
            .filter(|r| r.delegate.is_none())
            .map(|r| lower_route(&vs_name, r, &mut clusters))
            .collect();
        virtual_hosts.push(VirtualHostSpec {
            name: vs_name,
            domains,
            ports: Vec::new(),
            routes,
        });
    }
    TableSpec {
        content_hash,
        virtual_hosts,
        clusters: clusters.into_specs(),
    }
}

/// `reviews.default.svc.cluster.local` -> `reviews`, `reviews.default`, `reviews.default.svc`.
fn short_forms(fqdn: &str) -> impl Iterator<Item = String> + '_ {
    let base = fqdn.strip_suffix(".svc.cluster.local");
    base.into_iter().flat_map(|base| {
        let name = base.split('.').next().unwrap_or(base);
        let with_svc = format!("{base}.svc");
        [name.to_owned(), base.to_owned(), with_svc]
    })
}

fn lower_route(vs_name: &str, route: &HttpRoute, clusters: &mut Clusters<'_>) -> RouteSpec {
    let action = if let Some(redirect) = &route.redirect {
        ActionSpec::Redirect(RedirectSpec {
            uri: redirect.uri.clone(),
            authority: redirect.authority.clone(),
            port: redirect.port,
            scheme: redirect.scheme.clone(),
            code: redirect
                .code
                .as_ref()
                .and_then(|c| u16::try_from(c.value).ok())
                .unwrap_or(301),
            derive_port_from_request: redirect.derive_port.as_deref() == Some("FROM_REQUEST_PORT"),
        })
    } else if let Some(direct) = &route.direct_response {
        ActionSpec::DirectResponse {
            status: direct
                .status
                .as_ref()
                .and_then(|s| u16::try_from(s.value).ok())
                .unwrap_or(200),
            body: direct.body.clone().unwrap_or_default(),
        }
    } else {
        // Istio: with one destination its weight is ignored (it takes everything); with
        // several, weight-0 destinations get nothing and the rest share weight/sum.
        let single = route.route.len() == 1;
        let destinations = route
            .route
            .iter()
            .filter_map(|d| {
                let weight = if single {
                    100
                } else {
                    d.weight.as_ref().map_or(0, |w| w.value.max(0))
                };
                if weight == 0 {
                    return None;
                }
                Some(WeightedDestSpec {
                    cluster: clusters.id(&d.destination),
                    weight: u32::try_from(weight).unwrap_or(u32::MAX),
                    port: d.destination.port.as_ref().map(|p| p.value),
                    request_headers: header_ops(&d.headers.request),
                    response_headers: header_ops(&d.headers.response),
                })
            })
            .collect();
        ActionSpec::Route(destinations)
    };
    let mut spec = RouteSpec::new(vs_name, route.index as u32, action);
    spec.name = route.name.as_ref().map(|n| n.value.clone());
    spec.matches = route
        .matches
        .iter()
        .filter(|m| applies_to_sidecars(m))
        .map(lower_match)
        .collect();
    // Every match entry was a selector for other proxies: the rule applies to none here.
    if !route.matches.is_empty() && spec.matches.is_empty() {
        spec.matches.push(MatchSpec {
            port: Some(0),
            ..MatchSpec::default()
        });
    }
    spec.fault = route.fault.as_ref().map(|f| FaultSpec {
        // Istio: a fault without a percentage never fires.
        delay: f.delay.as_ref().and_then(|d| {
            Some((
                ms(d.fixed.as_ref()?.ms),
                d.effective_percent().unwrap_or(0.0),
            ))
        }),
        abort: f.abort.as_ref().and_then(|a| {
            let kind = match &a.kind.as_ref()?.value {
                AbortKind::HttpStatus(s) => TableAbort::HttpStatus(u16::try_from(*s).ok()?),
                AbortKind::GrpcStatus(s) => TableAbort::GrpcStatus(s.clone()),
                AbortKind::Http2Error(_) => return None,
            };
            Some((kind, a.percentage.map_or(0.0, |p| p.value)))
        }),
    });
    spec.timeout_ms = route.timeout.as_ref().map(|t| ms(t.ms));
    spec.retries = match &route.retries {
        Some(r) if r.attempts() > 0 => Some(RetrySpec {
            attempts: u32::try_from(r.attempts()).unwrap_or(u32::MAX),
            per_try_timeout_ms: r.per_try_timeout.as_ref().map(|t| ms(t.ms)),
            retry_on: r
                .retry_on
                .as_ref()
                .map(|on| {
                    on.items
                        .iter()
                        .filter(|i| i.condition.is_some())
                        .map(|i| i.text.trim().to_owned())
                        .collect()
                })
                .unwrap_or_else(|| DEFAULT_RETRY_ON.iter().map(|s| (*s).to_owned()).collect()),
            backoff_ms: r.backoff.as_ref().map(|b| ms(b.ms)),
        }),
        // `attempts: 0` turns retries off.
        Some(_) => None,
        None => Some(RetrySpec {
            attempts: DEFAULT_RETRY_ATTEMPTS,
            per_try_timeout_ms: None,
            retry_on: DEFAULT_RETRY_ON.iter().map(|s| (*s).to_owned()).collect(),
            backoff_ms: None,
        }),
    };
    spec.request_headers = header_ops(&route.headers.request);
    spec.response_headers = header_ops(&route.headers.response);
    spec.rewrite = route.rewrite.as_ref().map(|r| RewriteSpec {
        uri: r.uri.clone(),
        authority: r.authority.clone(),
        uri_regex: r
            .uri_regex
            .as_ref()
            .map(|(m, to)| (m.matcher.text().to_owned(), to.clone())),
    });
    spec.mirrors = route
        .mirror
        .iter()
        .chain(&route.mirrors)
        .map(|m| MirrorSpec {
            cluster: clusters.id(&m.destination),
            percent: m.effective_percent(),
        })
        .collect();
    spec.cors = route.cors.as_ref().map(|c| CorsSpec {
        allow_origins: c
            .allow_origins
            .iter()
            .map(|o| string_match(&o.matcher))
            .collect(),
        allow_methods: c.allow_methods.iter().map(|m| m.value.clone()).collect(),
        allow_headers: c.allow_headers.iter().map(|h| h.value.clone()).collect(),
        expose_headers: c.expose_headers.iter().map(|h| h.value.clone()).collect(),
        max_age_s: c.max_age.as_ref().map(|d| ms(d.ms / 1000)),
        allow_credentials: c.allow_credentials,
    });
    spec
}

/// `match.gateways` that name only gateways (not `mesh`) select gateway proxies, not
/// sidecars. `sourceLabels` and `sourceNamespace` select client workloads, which a table
/// shared by every client cannot know: such matches are kept for all clients.
fn applies_to_sidecars(m: &HttpMatch) -> bool {
    m.gateways.is_empty() || m.gateways.iter().any(|g| g == "mesh")
}

fn lower_match(m: &HttpMatch) -> MatchSpec {
    MatchSpec {
        uri: m.uri.as_ref().map(|v| string_match(&v.matcher)),
        ignore_uri_case: m.ignore_uri_case,
        scheme: m.scheme.as_ref().map(|v| string_match(&v.matcher)),
        method: m.method.as_ref().map(|v| string_match(&v.matcher)),
        authority: m.authority.as_ref().map(|v| string_match(&v.matcher)),
        headers: keyed(&m.headers, true),
        without_headers: keyed(&m.without_headers, true),
        query_params: keyed(&m.query_params, false),
        port: m.port,
    }
}

fn keyed(list: &[KeyedMatch], lowercase: bool) -> Vec<(String, HeaderMatchSpec)> {
    list.iter()
        .map(|k| {
            let name = if lowercase {
                k.name.to_ascii_lowercase()
            } else {
                k.name.clone()
            };
            let matcher = match &k.matcher {
                HeaderMatch::Present => HeaderMatchSpec::Present,
                HeaderMatch::Match(m) => HeaderMatchSpec::Match(string_match(m)),
            };
            (name, matcher)
        })
        .collect()
}

fn string_match(m: &StringMatch) -> StringMatchSpec {
    match m {
        StringMatch::Exact(s) => StringMatchSpec::Exact(s.clone()),
        StringMatch::Prefix(s) => StringMatchSpec::Prefix(s.clone()),
        StringMatch::Regex(s) => StringMatchSpec::Regex(s.clone()),
    }
}

fn header_ops(set: &HeaderOpSet) -> HeaderOpsSpec {
    HeaderOpsSpec {
        set: set
            .set
            .iter()
            .map(|(k, v)| (k.value.clone(), v.value.clone()))
            .collect(),
        add: set
            .add
            .iter()
            .map(|(k, v)| (k.value.clone(), v.value.clone()))
            .collect(),
        remove: set.remove.iter().map(|k| k.value.clone()).collect(),
    }
}

fn ms(ms: u64) -> u32 {
    u32::try_from(ms).unwrap_or(u32::MAX)
}

/// Clusters by (host, subset, port), numbered in first-use order and then renumbered in
/// name order, so that the table does not depend on the order rules were written in.
struct Clusters<'ir> {
    ir: &'ir Ir,
    /// The first DestinationRule for each host, in input order.
    rules_by_host: BTreeMap<&'ir str, &'ir DestinationRule>,
    by_key: BTreeMap<(String, Option<String>, Option<u16>), u32>,
    specs: Vec<ClusterSpec>,
}

impl<'ir> Clusters<'ir> {
    fn new(ir: &'ir Ir) -> Self {
        let mut rules_by_host = BTreeMap::new();
        for dr in &ir.destination_rules {
            if let Some(host) = &dr.host {
                rules_by_host.entry(host.fqdn.as_str()).or_insert(dr);
            }
        }
        Clusters {
            ir,
            rules_by_host,
            by_key: BTreeMap::new(),
            specs: Vec::new(),
        }
    }

    fn id(&mut self, d: &Destination) -> u32 {
        let subset = d.subset.as_ref().map(|s| s.value.clone());
        let host_info = self.ir.registry.lookup(&d.host.fqdn);
        // A port is part of the cluster only when it picks one of several; with one
        // declared port, `reviews` and `reviews:9080` are the same upstream.
        let port =
            d.port.as_ref().map(|p| p.value).or_else(|| {
                host_info.and_then(|h| (h.ports.len() == 1).then(|| h.ports[0].number))
            });
        let key = (d.host.fqdn.clone(), subset, port);
        if let Some(id) = self.by_key.get(&key) {
            return *id;
        }
        let spec = self.build(&key.0, key.1.as_deref(), key.2);
        let id = self.specs.len() as u32;
        self.specs.push(spec);
        self.by_key.insert(key, id);
        id
    }

    fn build(&self, host: &str, subset: Option<&str>, port: Option<u16>) -> ClusterSpec {
        let rule = self.rules_by_host.get(host).copied();
        let subset_def = rule.and_then(|dr| {
            dr.subsets
                .iter()
                .find(|s| Some(s.name.value.as_str()) == subset)
        });
        let labels: Vec<(String, String)> = subset_def
            .map(|s| {
                s.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        // The subset's policy overrides the rule's, field by field (Istio merges them so).
        let policy = merge_policy(
            rule.and_then(|dr| dr.traffic_policy.as_ref()),
            subset_def.and_then(|s| s.traffic_policy.as_ref()),
        );
        let info = self.ir.registry.lookup(host);
        let declared_port = info.and_then(|i| i.ports.iter().find(|p| Some(p.number) == port));
        let resolution = self.resolution(host);
        let mut endpoints: Vec<EndpointSpec> = match (info, resolution) {
            (Some(info), ResolutionSpec::Static | ResolutionSpec::Dns) => info
                .endpoints
                .iter()
                .filter(|e| labels.iter().all(|(k, v)| e.labels.get(k) == Some(v)))
                .filter_map(|e| {
                    // An endpoint maps the service's port name to its own port; otherwise it
                    // listens on the service port.
                    let endpoint_port = declared_port
                        .and_then(|p| p.name.as_ref())
                        .and_then(|name| e.ports.get(name).copied())
                        .or(port)?;
                    Some(EndpointSpec {
                        address: e.address.clone().unwrap_or_else(|| host.to_owned()),
                        port: endpoint_port,
                        weight: 1,
                        labels: e
                            .labels
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    })
                })
                .collect(),
            _ => Vec::new(),
        };
        // A DNS host without endpoints resolves its own name.
        if endpoints.is_empty()
            && resolution == ResolutionSpec::Dns
            && let Some(p) = port
        {
            endpoints.push(EndpointSpec {
                address: host.to_owned(),
                port: p,
                weight: 1,
                labels: Vec::new(),
            });
        }
        endpoints.sort_by(|a, b| (&a.address, a.port).cmp(&(&b.address, b.port)));
        ClusterSpec {
            name: format!(
                "outbound|{}|{}|{}",
                port.map(|p| p.to_string()).unwrap_or_default(),
                subset.unwrap_or(""),
                host
            ),
            host: host.to_owned(),
            subset: subset.map(str::to_owned),
            port,
            labels,
            endpoints,
            resolution,
            lb: lb(policy.load_balancer.as_ref()),
            connection_pool: pool(policy.connection_pool.as_ref()),
            outlier: policy.outlier_detection.as_ref().map(outlier),
        }
    }

    /// How the proxy finds a host's endpoints: listed in the table (STATIC ServiceEntries,
    /// WorkloadEntries, Services with selected WorkloadEntries), by DNS (DNS ServiceEntries),
    /// or looked up at run time (hosts the repo does not declare).
    fn resolution(&self, host: &str) -> ResolutionSpec {
        let Some(info) = self.ir.registry.lookup(host) else {
            return ResolutionSpec::RuntimeLookup;
        };
        let dns = info.declared_by.iter().any(|(kind, i)| {
            *kind == crate::resource::Kind::ServiceEntry
                && self
                    .ir
                    .service_entries
                    .get(*i)
                    .is_some_and(|se| se.resolution.starts_with("DNS"))
        });
        if dns {
            ResolutionSpec::Dns
        } else if info.endpoints.is_empty() {
            ResolutionSpec::RuntimeLookup
        } else {
            ResolutionSpec::Static
        }
    }

    /// The clusters in name order, with every reference in the routes renumbered.
    fn into_specs(self) -> Vec<ClusterSpec> {
        self.specs
    }
}

fn merge_policy(base: Option<&TrafficPolicy>, over: Option<&TrafficPolicy>) -> TrafficPolicy {
    let mut merged = base.cloned().unwrap_or_default();
    if let Some(over) = over {
        if over.load_balancer.is_some() {
            merged.load_balancer = over.load_balancer.clone();
        }
        if over.connection_pool.is_some() {
            merged.connection_pool = over.connection_pool.clone();
        }
        if over.outlier_detection.is_some() {
            merged.outlier_detection = over.outlier_detection.clone();
        }
    }
    merged
}

fn lb(lb: Option<&LoadBalancer>) -> LbSpec {
    match lb {
        Some(LoadBalancer::Simple(s)) => match s.as_str() {
            "LEAST_REQUEST" | "LEAST_CONN" => LbSpec::LeastRequest,
            "RANDOM" => LbSpec::Random,
            _ => LbSpec::RoundRobin,
        },
        Some(LoadBalancer::ConsistentHash(h)) => LbSpec::ConsistentHash {
            header: h.header.clone(),
            cookie: h.cookie.clone(),
            source_ip: h.source_ip,
            query_param: h.query_param.clone(),
        },
        None => LbSpec::RoundRobin,
    }
}

fn pool(p: Option<&ConnectionPool>) -> ConnectionPoolSpec {
    let Some(p) = p else {
        return ConnectionPoolSpec::default();
    };
    let n = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok());
    ConnectionPoolSpec {
        max_connections: n(p.max_connections),
        connect_timeout_ms: p.connect_timeout.as_ref().map(|d| ms(d.ms)),
        http1_max_pending: n(p.http1_max_pending_requests),
        http2_max_requests: n(p.http2_max_requests),
        max_requests_per_connection: n(p.max_requests_per_connection),
        max_retries: n(p.max_retries),
        idle_timeout_ms: p.http_idle_timeout.as_ref().map(|d| ms(d.ms)),
    }
}

/// Envoy's defaults where Istio leaves them unset: 10 s interval, 30 s base ejection, 10%
/// maximum ejection.
fn outlier(o: &OutlierDetection) -> OutlierSpec {
    let n = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok());
    OutlierSpec {
        consecutive_5xx: n(o.consecutive_5xx_errors),
        consecutive_gateway_errors: n(o.consecutive_gateway_errors),
        interval_ms: o.interval.as_ref().map_or(10_000, |d| ms(d.ms)),
        base_ejection_ms: o.base_ejection_time.as_ref().map_or(30_000, |d| ms(d.ms)),
        max_ejection_percent: n(o.max_ejection_percent).unwrap_or(10),
        min_health_percent: n(o.min_health_percent).unwrap_or(0),
    }
}
