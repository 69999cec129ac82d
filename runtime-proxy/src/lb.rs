//! The split phase's second half: picking an endpoint of the chosen cluster by its load
//! balancer, and outlier detection (ejecting endpoints after consecutive errors).
//!
//! The weighted destination itself was chosen by the table's executor. Endpoint weights are
//! not used yet (every endpoint counts once), and consistent hashing is a modulo over healthy
//! endpoints rather than a ring (a membership change moves more keys than Envoy's ring).

use std::net::IpAddr;
use std::sync::atomic::Ordering;

use mesh_table::LoadBalancer;

use crate::fields::RequestFields;
use crate::rng;
use crate::state::{ClusterState, EndpointState, now_ms};

/// What a load balancer may look at.
pub struct PickInput<'r> {
    pub random: u64,
    pub headers: &'r RequestFields,
    pub client_ip: IpAddr,
    pub query: Option<&'r str>,
}

/// The index of the endpoint to use, or `None` when no endpoint is healthy (`UH`).
pub fn pick_endpoint(
    cluster: &ClusterState,
    lb: LoadBalancer<'_>,
    input: &PickInput<'_>,
) -> Option<usize> {
    let now = cluster.health_clock();
    let n_healthy = cluster
        .endpoints
        .iter()
        .filter(|e| e.is_healthy(now))
        .count();
    if n_healthy == 0 {
        return None;
    }
    let nth_healthy = |k: usize| {
        cluster
            .endpoints
            .iter()
            .enumerate()
            .filter(|(_, e)| e.is_healthy(now))
            .nth(k % n_healthy)
            .map(|(i, _)| i)
    };
    match lb {
        LoadBalancer::RoundRobin => nth_healthy(cluster.next.fetch_add(1, Ordering::Relaxed)),
        LoadBalancer::Random => nth_healthy(input.random as usize),
        LoadBalancer::LeastRequest => {
            // Power of two choices over in-flight counts.
            let a = nth_healthy(input.random as usize)?;
            let b = nth_healthy((input.random >> 32) as usize)?;
            let load = |i: usize| {
                cluster
                    .endpoints
                    .get(i)
                    .map_or(u32::MAX, |e| e.in_flight.load(Ordering::Relaxed))
            };
            Some(if load(b) < load(a) { b } else { a })
        }
        LoadBalancer::ConsistentHash {
            header,
            cookie,
            source_ip,
            query_param,
        } => {
            let key = hash_key(input, header, cookie, source_ip, query_param);
            nth_healthy(key.unwrap_or(input.random) as usize)
        }
    }
}

fn hash_key(
    input: &PickInput<'_>,
    header: Option<&str>,
    cookie: Option<&str>,
    source_ip: bool,
    query_param: Option<&str>,
) -> Option<u64> {
    if let Some(name) = header {
        let value = input.headers.get(name)?;
        return Some(rng::hash_bytes(value));
    }
    if let Some(name) = cookie {
        let value = input
            .headers
            .get_all("cookie")
            .filter_map(|v| std::str::from_utf8(v).ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                (k == name).then_some(v)
            })?;
        return Some(rng::hash_bytes(value.as_bytes()));
    }
    if source_ip {
        return Some(match input.client_ip {
            IpAddr::V4(ip) => rng::hash_bytes(&ip.octets()),
            IpAddr::V6(ip) => rng::hash_bytes(&ip.octets()),
        });
    }
    if let Some(name) = query_param {
        let value = input.query?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })?;
        return Some(rng::hash_bytes(value.as_bytes()));
    }
    None
}

/// How one try against an endpoint ended, for outlier detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryOutcome {
    Status(u16),
    /// Connect failure, reset or per-try timeout: counted as a gateway error.
    LocalFailure,
}

/// Records a try's outcome and ejects the endpoint when a consecutive-error threshold is hit,
/// for base ejection time × times ejected, unless that would exceed max ejection percent.
/// Returns whether this outcome ejected the endpoint.
pub fn record_outcome(cluster: &ClusterState, endpoint_idx: usize, outcome: TryOutcome) -> bool {
    let Some(endpoint) = cluster.endpoints.get(endpoint_idx) else {
        return false;
    };
    let (is_5xx, is_gateway) = match outcome {
        TryOutcome::Status(code) => (code >= 500, matches!(code, 502..=504)),
        TryOutcome::LocalFailure => (true, true),
    };
    if !is_5xx {
        endpoint.consecutive_5xx.store(0, Ordering::Relaxed);
        endpoint.consecutive_gateway.store(0, Ordering::Relaxed);
        return false;
    }
    let n_5xx = endpoint.consecutive_5xx.fetch_add(1, Ordering::Relaxed) + 1;
    let n_gateway = if is_gateway {
        endpoint.consecutive_gateway.fetch_add(1, Ordering::Relaxed) + 1
    } else {
        endpoint.consecutive_gateway.store(0, Ordering::Relaxed);
        0
    };
    let Some(outlier) = cluster.outlier else {
        return false;
    };
    let tripped = outlier.consecutive_5xx.is_some_and(|t| t > 0 && n_5xx >= t)
        || outlier
            .consecutive_gateway_errors
            .is_some_and(|t| t > 0 && n_gateway >= t);
    tripped
        && eject(
            cluster,
            endpoint,
            outlier.base_ejection_ms,
            outlier.max_ejection_percent,
        )
}

fn eject(cluster: &ClusterState, endpoint: &EndpointState, base_ms: u32, max_percent: u32) -> bool {
    let now = now_ms();
    if !endpoint.is_healthy(now) {
        return false;
    }
    let ejected = cluster
        .endpoints
        .iter()
        .filter(|e| !e.is_healthy(now))
        .count();
    // Istio: never eject more than maxEjectionPercent of the endpoints.
    if (ejected + 1) * 100 > cluster.endpoints.len() * max_percent as usize {
        return false;
    }
    let times = endpoint.times_ejected.fetch_add(1, Ordering::Relaxed) + 1;
    let until = now + u64::from(base_ms) * u64::from(times);
    endpoint.ejected_until_ms.store(until, Ordering::Relaxed);
    endpoint.consecutive_5xx.store(0, Ordering::Relaxed);
    endpoint.consecutive_gateway.store(0, Ordering::Relaxed);
    tracing::info!(endpoint = %endpoint.authority, until_ms = until, "outlier ejected");
    true
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;
    use mesh_table::OutlierDetection;

    use super::*;

    fn input(headers: &RequestFields, random: u64) -> PickInput<'_> {
        PickInput {
            random,
            headers,
            client_ip: IpAddr::from([10, 0, 0, 1]),
            query: Some("a=1&user=bob"),
        }
    }

    fn outlier(consecutive_5xx: u32, max_ejection_percent: u32) -> OutlierDetection {
        OutlierDetection {
            consecutive_5xx: Some(consecutive_5xx),
            consecutive_gateway_errors: None,
            interval_ms: 10_000,
            base_ejection_ms: 30_000,
            max_ejection_percent,
            min_health_percent: 0,
        }
    }

    #[test]
    fn round_robin_cycles_and_skips_ejected_endpoints() {
        let cluster = ClusterState::for_test(3, Some(outlier(1, 100)));
        let headers = RequestFields::default();
        let picks: Vec<_> = (0..6)
            .map(|_| pick_endpoint(&cluster, LoadBalancer::RoundRobin, &input(&headers, 0)))
            .collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2].map(Some));
        record_outcome(&cluster, 1, TryOutcome::Status(503));
        for _ in 0..6 {
            let pick = pick_endpoint(&cluster, LoadBalancer::RoundRobin, &input(&headers, 0));
            assert_ne!(pick, Some(1));
        }
    }

    #[test]
    fn ejection_respects_max_ejection_percent_and_success_resets() {
        let cluster = ClusterState::for_test(2, Some(outlier(2, 50)));
        record_outcome(&cluster, 0, TryOutcome::Status(500));
        record_outcome(&cluster, 0, TryOutcome::Status(200));
        record_outcome(&cluster, 0, TryOutcome::Status(500));
        assert!(
            cluster.endpoints[0].is_healthy(now_ms()),
            "a success resets the count"
        );
        record_outcome(&cluster, 0, TryOutcome::LocalFailure);
        assert!(!cluster.endpoints[0].is_healthy(now_ms()));
        record_outcome(&cluster, 1, TryOutcome::Status(500));
        record_outcome(&cluster, 1, TryOutcome::Status(500));
        assert!(
            cluster.endpoints[1].is_healthy(now_ms()),
            "50% of two endpoints is one endpoint"
        );
        assert_eq!(
            pick_endpoint(
                &cluster,
                LoadBalancer::Random,
                &input(&RequestFields::default(), 7)
            ),
            Some(1)
        );
    }

    #[test]
    fn no_healthy_endpoint_gives_none() {
        let cluster = ClusterState::for_test(1, Some(outlier(1, 100)));
        record_outcome(&cluster, 0, TryOutcome::Status(502));
        assert_eq!(
            pick_endpoint(
                &cluster,
                LoadBalancer::RoundRobin,
                &input(&RequestFields::default(), 0)
            ),
            None
        );
    }

    #[test]
    fn consistent_hash_is_stable_per_key() {
        let cluster = ClusterState::for_test(5, None);
        let by_header = LoadBalancer::ConsistentHash {
            header: Some("x-user"),
            cookie: None,
            source_ip: false,
            query_param: None,
        };
        let by_cookie = LoadBalancer::ConsistentHash {
            header: None,
            cookie: Some("session"),
            source_ip: false,
            query_param: None,
        };
        let by_query = LoadBalancer::ConsistentHash {
            header: None,
            cookie: None,
            source_ip: false,
            query_param: Some("user"),
        };
        let mut headers = HeaderMap::new();
        headers.insert("x-user", "alice".parse().unwrap());
        headers.insert("cookie", "a=b; session=xyz".parse().unwrap());
        let headers = RequestFields::from(headers);
        for lb in [by_header, by_cookie, by_query] {
            let first = pick_endpoint(&cluster, lb, &input(&headers, 1));
            for random in 2..20 {
                assert_eq!(pick_endpoint(&cluster, lb, &input(&headers, random)), first);
            }
        }
    }

    #[test]
    fn least_request_prefers_the_idle_endpoint() {
        let cluster = ClusterState::for_test(2, None);
        cluster.endpoints[0].in_flight.store(10, Ordering::Relaxed);
        let headers = RequestFields::default();
        // Random 1 and 0 in the two halves: the two choices are endpoints 1 and 0.
        let random = 1;
        assert_eq!(
            pick_endpoint(
                &cluster,
                LoadBalancer::LeastRequest,
                &input(&headers, random)
            ),
            Some(1)
        );
    }
}
