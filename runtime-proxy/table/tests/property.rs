//! Property test: for random specs and requests, the indexed table decides exactly what the
//! linear oracle decides (virtual host, route, destination, fault and mirror firing).
//!
//! Specs and requests are drawn from small vocabularies so that requests often hit, nearly hit
//! (case, prefix, extra segment) or tie between several routes. A hand-rolled xorshift keeps
//! the test deterministic and dependency-free; the failing seed is printed on mismatch.

mod support;

use mesh_table::oracle::Oracle;
use mesh_table::spec::{
    AbortKind, ActionSpec, FaultSpec, HeaderMatchSpec, MatchSpec, MirrorSpec, RouteSpec,
    StringMatchSpec, TableSpec, VirtualHostSpec, WeightedDestSpec,
};
use mesh_table::{ActionDecision, Decision, Table};
use support::{OwnedHeaders, Req, artifact};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const DOMAINS: &[&str] = &[
    "a.com",
    "b.a.com",
    "*.a.com",
    "*.b.a.com",
    "*",
    "c.org",
    "*c.org",
    "10.0.0.1",
];
const AUTHORITIES: &[&str] = &[
    "a.com",
    "A.Com:80",
    "x.a.com",
    "y.b.a.com",
    "b.a.com",
    "c.org",
    "xc.org",
    "zzz",
    "10.0.0.1:8080",
    "a.com:",
];
const PATHS: &[&str] = &[
    "/",
    "",
    "/a",
    "/a/",
    "/a/c",
    "/b/c",
    "/api",
    "/api/v1",
    "/api/v12/items",
    "/API/V1",
    "/x/yz",
    "/x/",
    "/ab",
];
const PATH_REGEXES: &[&str] = &[
    "/api/v[0-9]+",
    "/a.*",
    "/(a|b)/c",
    "/x/[a-z]+",
    ".*",
    "/API.*",
    "/api/v[0-9]+/.*",
];
const HEADERS: &[&str] = &["x-user", "x-env", "x-b"];
const VALUES: &[&str] = &["u1", "u2", "prod", "dev", "", "Prod", "u12"];
const VALUE_REGEXES: &[&str] = &["u[0-9]", "prod|dev", ".*", "u[0-9]+"];
const METHODS: &[&str] = &["GET", "POST", "get"];
const QUERY_NAMES: &[&str] = &["q", "v"];

fn string_match(rng: &mut Rng, values: &[&str], regexes: &[&str]) -> StringMatchSpec {
    match rng.below(3) {
        0 => StringMatchSpec::Exact(rng.pick(values).to_owned()),
        1 => {
            let v = rng.pick(values);
            let cut = rng.below(v.len() + 1);
            StringMatchSpec::Prefix(v[..cut].to_owned())
        }
        _ => StringMatchSpec::Regex(rng.pick(regexes).to_owned()),
    }
}

fn header_match(rng: &mut Rng) -> (String, HeaderMatchSpec) {
    let name = rng.pick(HEADERS).to_owned();
    if rng.chance(20) {
        (name, HeaderMatchSpec::Present)
    } else {
        (
            name,
            HeaderMatchSpec::Match(string_match(rng, VALUES, VALUE_REGEXES)),
        )
    }
}

fn match_spec(rng: &mut Rng) -> MatchSpec {
    let mut m = MatchSpec::default();
    if rng.chance(70) {
        m.uri = Some(string_match(rng, PATHS, PATH_REGEXES));
        m.ignore_uri_case = rng.chance(20);
    }
    if rng.chance(15) {
        m.method = Some(string_match(rng, METHODS, &["GET|POST", "P.*"]));
    }
    if rng.chance(5) {
        m.scheme = Some(StringMatchSpec::Exact(
            rng.pick(&["http", "https"]).to_owned(),
        ));
    }
    if rng.chance(5) {
        m.authority = Some(string_match(
            rng,
            AUTHORITIES,
            &["a\\.com.*", "[a-z]+\\.a\\.com"],
        ));
    }
    for _ in 0..rng.below(3) {
        m.headers.push(header_match(rng));
    }
    if rng.chance(15) {
        m.without_headers.push(header_match(rng));
    }
    if rng.chance(15) {
        let name = rng.pick(QUERY_NAMES).to_owned();
        let hm = if rng.chance(30) {
            HeaderMatchSpec::Present
        } else {
            HeaderMatchSpec::Match(string_match(rng, VALUES, VALUE_REGEXES))
        };
        m.query_params.push((name, hm));
    }
    if rng.chance(8) {
        m.port = Some([80, 8080][rng.below(2)]);
    }
    m
}

fn route_spec(rng: &mut Rng, rule_index: u32, n_clusters: u32) -> RouteSpec {
    let action = match rng.below(10) {
        0 => ActionSpec::DirectResponse {
            status: 503,
            body: b"down".to_vec(),
        },
        _ => ActionSpec::Route(
            (0..1 + rng.below(3))
                .map(|_| WeightedDestSpec {
                    cluster: rng.below(n_clusters as usize) as u32,
                    weight: [0, 1, 10, 50, 90][rng.below(5)],
                    ..WeightedDestSpec::default()
                })
                .collect(),
        ),
    };
    let mut r = RouteSpec::new("ns/vs", rule_index, action);
    let n_matches = if rng.chance(15) { 0 } else { 1 + rng.below(3) };
    r.matches = (0..n_matches).map(|_| match_spec(rng)).collect();
    if rng.chance(30) {
        r.fault = Some(FaultSpec {
            delay: rng
                .chance(50)
                .then(|| (100, [0.0, 10.0, 50.0, 100.0][rng.below(4)])),
            abort: rng
                .chance(50)
                .then(|| (AbortKind::HttpStatus(503), [0.0, 33.3, 100.0][rng.below(3)])),
        });
    }
    for _ in 0..rng.below(3) {
        r.mirrors.push(MirrorSpec {
            cluster: 0,
            percent: [0.0, 25.0, 100.0][rng.below(3)],
        });
    }
    r
}

fn table_spec(rng: &mut Rng) -> TableSpec {
    let n_clusters = 1 + rng.below(4) as u32;
    let mut domains: Vec<&str> = DOMAINS.to_vec();
    let mut virtual_hosts = Vec::new();
    for v in 0..1 + rng.below(4) {
        let mut mine = Vec::new();
        for _ in 0..1 + rng.below(3) {
            if domains.is_empty() {
                break;
            }
            let d = domains.remove(rng.below(domains.len()));
            mine.push(d.to_owned());
        }
        let n_routes = rng.below(12);
        virtual_hosts.push(VirtualHostSpec {
            name: format!("ns/vh{v}"),
            domains: mine,
            ports: Vec::new(),
            routes: (0..n_routes)
                .map(|i| route_spec(rng, i as u32, n_clusters))
                .collect(),
        });
    }
    // Sometimes the same domain again, on disjoint ports.
    if rng.chance(30) {
        let first = virtual_hosts[0].clone();
        virtual_hosts[0].ports = vec![80];
        let mut twin = first;
        twin.name = "ns/twin".to_owned();
        twin.ports = vec![8080];
        twin.routes = (0..rng.below(6))
            .map(|i| route_spec(rng, i as u32, n_clusters))
            .collect();
        virtual_hosts.push(twin);
    }
    TableSpec {
        content_hash: [1; 32],
        virtual_hosts,
        clusters: (0..n_clusters)
            .map(|i| support::cluster(&format!("c{i}")))
            .collect(),
    }
}

fn request(rng: &mut Rng) -> Req {
    let mut req = Req::new(rng.pick(AUTHORITIES), rng.pick(PATHS));
    req.method = rng.pick(METHODS).to_owned();
    req.scheme = rng.pick(&["http", "https"]).to_owned();
    req.port = [None, Some(80), Some(8080)][rng.below(3)];
    let mut headers = Vec::new();
    for _ in 0..rng.below(4) {
        let name = rng.pick(HEADERS);
        let name = if rng.chance(20) {
            name.to_ascii_uppercase()
        } else {
            name.to_owned()
        };
        headers.push((name, rng.pick(VALUES).to_owned()));
    }
    req.headers = OwnedHeaders(headers);
    if rng.chance(40) {
        let parts: Vec<String> = (0..1 + rng.below(3))
            .map(|_| {
                let name = rng.pick(QUERY_NAMES);
                if rng.chance(20) {
                    name.to_owned()
                } else {
                    format!("{name}={}", rng.pick(VALUES))
                }
            })
            .collect();
        req.query = Some(parts.join("&"));
    }
    req
}

#[test]
fn table_agrees_with_oracle_on_random_specs() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut matched = 0;
    let mut total = 0;
    for case in 0..400 {
        let seed = rng.next();
        let mut case_rng = Rng(seed | 1);
        let spec = table_spec(&mut case_rng);
        let bytes = artifact(&spec);
        let table =
            Table::load(&bytes).unwrap_or_else(|e| panic!("case {case} seed {seed:#x}: {e}"));
        let oracle = Oracle::new(&spec).expect("oracle compiles");
        for _ in 0..150 {
            let req = request(&mut case_rng);
            let random = case_rng.next();
            let expected = oracle.decide(&req.view(), random);
            let got = table.decide(&req.view(), random);
            let context = || format!("case {case} seed {seed:#x} request {req:?}\nspec {spec:#?}");
            total += 1;
            match got {
                Decision::NoVirtualHost => {
                    assert_eq!(expected.virtual_host, None, "{}", context());
                }
                Decision::NoRoute { virtual_host } => {
                    assert_eq!(
                        expected.virtual_host,
                        Some(virtual_host.id().0 as usize),
                        "{}",
                        context()
                    );
                    assert_eq!(expected.route, None, "{}", context());
                }
                Decision::Route(d) => {
                    matched += 1;
                    assert_eq!(
                        expected.virtual_host,
                        Some(d.virtual_host.id().0 as usize),
                        "{}",
                        context()
                    );
                    assert_eq!(
                        expected.route,
                        Some(d.route.index_in_host() as usize),
                        "{}",
                        context()
                    );
                    let destination = match d.action {
                        ActionDecision::Forward { destination, .. } => {
                            Some(destination.index_in_route(&d.route) as usize)
                        }
                        _ => None,
                    };
                    assert_eq!(expected.destination, destination, "{}", context());
                    assert_eq!(
                        expected.delay_fires,
                        d.fault.delay_ms.is_some(),
                        "{}",
                        context()
                    );
                    assert_eq!(
                        expected.abort_fires,
                        d.fault.abort.is_some(),
                        "{}",
                        context()
                    );
                    let fired: Vec<usize> = d.mirrors().map(|m| m.index as usize).collect();
                    assert_eq!(expected.mirrors, fired, "{}", context());
                }
            }
        }
    }
    // The generator must exercise matches, not just misses.
    assert!(
        matched * 4 > total,
        "only {matched} of {total} requests matched a route"
    );
}
