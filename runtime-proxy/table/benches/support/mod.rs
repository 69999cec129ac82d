//! Synthetic tables for benchmarks: N routes keyed by exact header, path prefix or path regex,
//! each followed by a catch-all route.

use mesh_table::spec::{
    ActionSpec, ClusterSpec, HeaderMatchSpec, MatchSpec, RouteSpec, StringMatchSpec, TableSpec,
    VirtualHostSpec, WeightedDestSpec,
};

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    ExactHeader,
    PrefixPath,
    RegexPath,
}

fn forward(rule_index: u32) -> RouteSpec {
    RouteSpec::new(
        "bench/vs",
        rule_index,
        ActionSpec::Route(vec![WeightedDestSpec {
            cluster: 0,
            weight: 100,
            ..Default::default()
        }]),
    )
}

pub fn table_spec(kind: Kind, n: usize) -> TableSpec {
    let mut routes: Vec<RouteSpec> = (0..n)
        .map(|i| {
            let mut r = forward(i as u32);
            let m = match kind {
                Kind::ExactHeader => MatchSpec {
                    headers: vec![(
                        "x-user".to_owned(),
                        HeaderMatchSpec::Match(StringMatchSpec::Exact(format!("user-{i}"))),
                    )],
                    ..MatchSpec::default()
                },
                Kind::PrefixPath => MatchSpec {
                    uri: Some(StringMatchSpec::Prefix(format!("/svc-{i}/"))),
                    ..MatchSpec::default()
                },
                Kind::RegexPath => MatchSpec {
                    uri: Some(StringMatchSpec::Regex(format!("/api/v[0-9]+/svc-{i}/.*"))),
                    ..MatchSpec::default()
                },
            };
            r.matches.push(m);
            r
        })
        .collect();
    routes.push(forward(n as u32));
    TableSpec {
        content_hash: [0; 32],
        virtual_hosts: vec![VirtualHostSpec {
            name: "bench/host".to_owned(),
            domains: vec!["bench.example.com".to_owned()],
            ports: Vec::new(),
            routes,
        }],
        clusters: vec![ClusterSpec {
            name: "c".to_owned(),
            host: "c".to_owned(),
            ..ClusterSpec::default()
        }],
    }
}

/// (path, x-user header) of a request that hits route `i` (or nothing, for `None`).
pub fn request_for(kind: Kind, i: Option<usize>) -> (String, String) {
    let i = i.map_or_else(|| "none".to_owned(), |i| i.to_string());
    match kind {
        Kind::ExactHeader => ("/".to_owned(), format!("user-{i}")),
        Kind::PrefixPath => (format!("/svc-{i}/items/42"), String::new()),
        Kind::RegexPath => (format!("/api/v2/svc-{i}/items/42"), String::new()),
    }
}
