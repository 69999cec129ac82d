//! The bodies of meshc's fuzz targets, one function per target, shared by the libFuzzer
//! binaries in `fuzz_targets/` and by the regression test `tests/fuzz_regressions.rs` of the
//! main workspace (which includes this file with `#[path]`), so that a committed input is
//! replayed through exactly the code that found it.
//!
//! Every function takes the raw fuzzer input and panics on a finding; anything else (a
//! policy with errors, an artifact that does not load) is an ordinary outcome.

use std::sync::LazyLock;

use arbitrary::{Arbitrary, Unstructured};
use mesh_table::format::{CHECKSUM_OFFSET, HEADER_LEN};
use mesh_table::hash::file_checksum;
use mesh_table::oracle::Oracle;
use mesh_table::spec::TableSpec;
use mesh_table::{
    ActionDecision, AlignedBytes, ConditionField, ConditionTest, Decision, HeaderList, HeaderOp,
    LoadError, OriginMatch, RequestView, Table,
};
use meshc::check::{Settings, check_sources};

// ---------------------------------------------------------------------------------------
// yaml_front_end

/// Arbitrary bytes as one policy file: the whole front end, then, for a policy without
/// errors, the compiler's artifact must load (a table the compiler writes must be readable)
/// and execute.
pub fn yaml_front_end(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let checked = check_sources([("f.yaml", text)], &Settings::default());
    if checked.has_errors() {
        return;
    }
    // `Encode` errors (a regex too large for a DFA, a count over a limit) are refusals, not
    // bugs; an artifact that is written must load.
    let Ok(bytes) = meshc::compile::build(&checked) else {
        return;
    };
    let aligned = AlignedBytes::new(&bytes);
    match Table::load(&aligned) {
        Ok(table) => exercise_table(&table),
        Err(e) => panic!("meshc wrote an artifact that does not load: {e}"),
    }
}

// ---------------------------------------------------------------------------------------
// table_loader

/// Arbitrary bytes as an artifact, loaded twice: as given (header and checksum checks), and
/// with the declared length and checksum recomputed (a crafted file, so structural
/// validation is what must refuse it). Whatever loads must support every view and decide.
/// Returns both load outcomes for the regression test.
pub fn table_loader(data: &[u8]) -> [Result<(), LoadError>; 2] {
    let raw = load_and_exercise(data);
    let mut crafted = data.to_vec();
    if crafted.len() >= HEADER_LEN {
        let body = (crafted.len() - HEADER_LEN) as u64;
        crafted[56..64].copy_from_slice(&body.to_le_bytes());
        let sum = file_checksum(&crafted);
        crafted[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 8].copy_from_slice(&sum.to_le_bytes());
    }
    let fixed = load_and_exercise(&crafted);
    [raw, fixed]
}

fn load_and_exercise(bytes: &[u8]) -> Result<(), LoadError> {
    let aligned = AlignedBytes::new(bytes);
    let loaded = Table::load(&aligned);
    // The proxy loads with the same checks, then builds its per-cluster state (endpoint
    // addresses, balancer, outlier detection) from the views: it must take what loads.
    let proxy = mesh_proxy::Loaded::from_bytes(bytes);
    // (Messages may differ: some name the address of a misaligned slice.)
    assert_eq!(
        loaded.is_ok(),
        proxy.is_ok(),
        "the proxy's loader and the table's disagree: {:?} / {:?}",
        loaded.as_ref().err(),
        proxy.as_ref().err()
    );
    exercise_table(&loaded?);
    Ok(())
}

/// At most this many `decide` calls per table, so a large crafted table stays fast.
const MAX_DECISIONS: usize = 64;

/// A request built from a table's own values: authority, path, headers, query.
type TableRequest = (String, String, Vec<(String, String)>, Option<String>);

/// Reads every view of a loaded table and decides a few requests built from its own
/// domains and match values (so they reach the indexes, not just the 404 path).
pub fn exercise_table(table: &Table<'_>) {
    let info = table.info();
    std::hint::black_box((&info, table.version(), table.content_hash()));
    let mut requests: Vec<TableRequest> = Vec::new();
    for vh in table.virtual_hosts() {
        let _ = (vh.id(), vh.name(), format!("{vh:?}"));
        let ports: Vec<u16> = vh.ports().collect();
        let domains: Vec<&str> = vh.domains().collect();
        let authority = domains
            .first()
            .map(|d| d.replace('*', "x"))
            .unwrap_or_default();
        std::hint::black_box(&ports);
        for r in vh.routes() {
            let _ = (
                r.id(),
                r.vs_name(),
                r.rule_index(),
                r.name(),
                r.index_in_host(),
            );
            let _ = (r.virtual_host().name(), format!("{r:?}"));
            let _ = (r.action(), r.fault(), r.timeout_ms(), r.total_weight());
            if let Some(retry) = r.retry() {
                let _ = retry.retriable_status_codes().count();
                let _ = (retry.retries_on("5xx"), retry.retry_on);
            }
            let _ = r.rewrite();
            walk_ops(r.request_headers());
            walk_ops(r.response_headers());
            for d in r.destinations() {
                let _ = (d.weight(), d.port(), d.index_in_route(&r), format!("{d:?}"));
                let _ = d.cluster().name();
                walk_ops(d.request_headers());
                walk_ops(d.response_headers());
            }
            for m in r.mirrors() {
                let _ = (m.index, m.per_million, m.cluster.name());
            }
            if let Some(cors) = r.cors() {
                for origin in cors.allow_origins() {
                    let _ = match origin {
                        OriginMatch::Exact(s) | OriginMatch::Prefix(s) | OriginMatch::Regex(s) => {
                            s.len()
                        }
                    };
                }
                let _ = (cors.allow_methods().count(), cors.allow_headers().count());
                let _ = (cors.expose_headers().count(), cors.max_age_s());
                let _ = cors.allow_credentials();
            }
            for m in r.matches() {
                let mut path = "/".to_owned();
                let mut headers = Vec::new();
                let mut query = None;
                for c in m.conditions() {
                    let value = match c.test {
                        ConditionTest::Exact(v) | ConditionTest::Prefix(v) => v.to_owned(),
                        ConditionTest::Regex(v) => {
                            v.chars().filter(char::is_ascii_alphanumeric).collect()
                        }
                        ConditionTest::Present | ConditionTest::Port(_) => String::new(),
                    };
                    match c.field {
                        ConditionField::Path => path = value,
                        ConditionField::Header(name) => headers.push((name.to_owned(), value)),
                        ConditionField::QueryParam(name) => query = Some(format!("{name}={value}")),
                        _ => {}
                    }
                }
                if requests.len() < MAX_DECISIONS {
                    requests.push((authority.clone(), path, headers, query));
                }
            }
        }
        if requests.len() < MAX_DECISIONS {
            requests.push((authority, "/".to_owned(), Vec::new(), None));
        }
    }
    for c in table.clusters() {
        let _ = (
            c.id(),
            c.name(),
            c.host(),
            c.subset(),
            c.port(),
            format!("{c:?}"),
        );
        let _ = (c.labels().count(), c.resolution(), c.load_balancer());
        let _ = (c.connection_pool(), c.outlier_detection());
        for e in c.endpoints() {
            let _ = (e.address(), e.port(), e.weight(), e.labels().count());
        }
        let _ = table.cluster(c.id()).map(|c| c.name());
    }
    requests.push((
        "unknown.invalid".to_owned(),
        "/".to_owned(),
        Vec::new(),
        None,
    ));
    for (i, (authority, path, headers, query)) in requests.iter().enumerate() {
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let list = HeaderList(&pairs);
        let req = RequestView {
            authority,
            port: Some(80),
            method: "GET",
            path,
            query: query.as_deref(),
            scheme: "http",
            headers: &list,
        };
        touch_decision(&table.decide(&req, (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)));
    }
}

fn walk_ops<'t>(ops: impl Iterator<Item = HeaderOp<'t>>) {
    for op in ops {
        let _ = match op {
            HeaderOp::Set(n, v) | HeaderOp::Add(n, v) => n.len() + v.len(),
            HeaderOp::Remove(n) => n.len(),
        };
    }
}

fn touch_decision(decision: &Decision<'_>) {
    match decision {
        Decision::NoVirtualHost => {}
        Decision::NoRoute { virtual_host } => {
            let _ = virtual_host.name();
        }
        Decision::Route(d) => {
            let _ = (
                d.virtual_host.name(),
                d.route.name(),
                d.fault,
                d.mirrors().count(),
            );
            if let ActionDecision::Forward {
                destination,
                cluster,
            } = d.action
            {
                let _ = (
                    destination.weight(),
                    cluster.name(),
                    cluster.endpoints().count(),
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// executor

/// The policy the executor target decides against (several hosts, every match kind,
/// splits, faults, mirrors, a redirect and a direct response).
pub const EXECUTOR_POLICY: &str = include_str!("../policy/executor.yaml");

/// The fixed table and the linear oracle over the same spec, built once per process.
pub struct Fixture {
    pub spec: &'static TableSpec,
    pub table: Table<'static>,
    pub oracle: Oracle<'static>,
}

pub static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let checked = check_sources([("executor.yaml", EXECUTOR_POLICY)], &Settings::default());
    assert!(
        !checked.has_errors(),
        "the executor fuzz policy must check cleanly: {:#?}",
        checked.diagnostics
    );
    let spec: &'static TableSpec = Box::leak(Box::new(
        meshc::compile::table_spec(&checked).expect("table spec"),
    ));
    let bytes: &'static AlignedBytes = Box::leak(Box::new(AlignedBytes::new(
        &mesh_table::encode(spec).expect("encode"),
    )));
    let table = Table::load(bytes).expect("the fixture table loads");
    let oracle = Oracle::new(spec).expect("oracle");
    Fixture {
        spec,
        table,
        oracle,
    }
});

/// Values that occur in `EXECUTOR_POLICY` (and near misses), so that requests often hit.
const AUTHORITIES: &[&str] = &[
    "api.example.com",
    "API.Example.com:80",
    "api.example.com:8080",
    "shop.example.com",
    "a.shop.example.com",
    "x.y.shop.example.com:443",
    "other.example.com",
    "example.com",
    ".example.com",
    "shop.example.com.",
    "[::1]:80",
    "api",
];
const PATHS: &[&str] = &[
    "/",
    "/login",
    "/LOGIN",
    "/api/v2/items",
    "/api/v2/items/42",
    "/api/v2/",
    "/users/7",
    "/USERS",
    "/Users",
    "/old/",
    "/old/page",
    "/cart",
    "/cart/1",
    "/checkout",
    "/img/a.png",
    "/img/.jpg",
    "",
];
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "post", "HEAD"];
const SCHEMES: &[&str] = &["http", "https", "HTTPS"];
const HEADER_NAMES: &[&str] = &[
    "x-version",
    "x-user",
    "x-debug",
    "x-tenant",
    "cookie",
    "accept",
    "x-present",
    "X-User",
];
const HEADER_VALUES: &[&str] = &[
    "2",
    "u-1",
    "u-",
    "U-1",
    "1",
    "t1",
    "t12",
    "tx",
    "session=abc",
    "a; session=Z9; b",
    "image/png",
    "",
    "true",
];
const QUERIES: &[&str] = &[
    "debug=true",
    "trace=0123abcd",
    "trace=0123abc",
    "debug=true&trace=x",
    "debug",
    "x=1&debug=true",
];

/// A string from a vocabulary, a vocabulary string with an arbitrary suffix, or anything.
#[derive(Arbitrary, Debug)]
pub enum Text {
    Known(u8),
    KnownWithSuffix(u8, String),
    Raw(String),
}

impl Text {
    fn resolve(&self, vocabulary: &[&str]) -> String {
        let pick = |i: &u8| vocabulary[*i as usize % vocabulary.len()];
        match self {
            Text::Known(i) => pick(i).to_owned(),
            Text::KnownWithSuffix(i, suffix) => format!("{}{suffix}", pick(i)),
            Text::Raw(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
pub struct FuzzRequest {
    pub authority: Text,
    pub port: Option<u16>,
    pub method: Text,
    pub path: Text,
    pub query: Option<Text>,
    pub scheme: Text,
    pub headers: Vec<(Text, Text)>,
    pub random: u64,
}

/// Arbitrary bytes as a request against the fixed table: `decide` must not panic and must
/// agree with the oracle on the virtual host, the route and the destination.
pub fn executor(data: &[u8]) {
    let Ok(request) = FuzzRequest::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    executor_request(&request);
}

pub fn executor_request(request: &FuzzRequest) {
    let fixture = &*FIXTURE;
    let authority = request.authority.resolve(AUTHORITIES);
    let method = request.method.resolve(METHODS);
    let path = request.path.resolve(PATHS);
    let query = request.query.as_ref().map(|q| q.resolve(QUERIES));
    let scheme = request.scheme.resolve(SCHEMES);
    let headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(n, v)| (n.resolve(HEADER_NAMES), v.resolve(HEADER_VALUES)))
        .collect();
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let list = HeaderList(&pairs);
    let req = RequestView {
        authority: &authority,
        port: request.port,
        method: &method,
        path: &path,
        query: query.as_deref(),
        scheme: &scheme,
        headers: &list,
    };
    let decision = fixture.table.decide(&req, request.random);
    touch_decision(&decision);
    let expected = fixture.oracle.decide(&req, request.random);
    let (vh, route, dest) = match &decision {
        Decision::NoVirtualHost => (None, None, None),
        Decision::NoRoute { virtual_host } => (Some(virtual_host.id().0 as usize), None, None),
        Decision::Route(d) => {
            let dest = match d.action {
                ActionDecision::Forward { destination, .. } => {
                    Some(destination.index_in_route(&d.route) as usize)
                }
                _ => None,
            };
            (
                Some(d.virtual_host.id().0 as usize),
                Some(d.route.index_in_host() as usize),
                dest,
            )
        }
    };
    assert_eq!(
        (vh, route, dest),
        (expected.virtual_host, expected.route, expected.destination),
        "table and oracle disagree (virtual host, route, destination) on \
         authority={authority:?} port={:?} method={method:?} path={path:?} query={query:?} \
         scheme={scheme:?} headers={headers:?} random={}",
        request.port,
        request.random,
    );
}

// ---------------------------------------------------------------------------------------
// request_wire, response_wire

/// A client's bytes (after one control byte) read by the proxy's HTTP/1.1 server, whole and
/// in pieces, and forwarded upstream: see `mesh_proxy::fuzzing::request_wire`.
pub fn request_wire(data: &[u8]) {
    mesh_proxy::fuzzing::request_wire(data);
}

/// An upstream's bytes (after one control byte) read by the proxy's HTTP/1.1 client, whole
/// and in pieces, and relayed to the client: see `mesh_proxy::fuzzing::response_wire`.
pub fn response_wire(data: &[u8]) {
    mesh_proxy::fuzzing::response_wire(data);
}
