//! Golden artifacts: tables written by every format version must keep loading and deciding
//! the same way, and today's writer must still produce the current version's file byte for
//! byte (or the version is bumped).
//!
//! Regenerate the current version's file after a deliberate change (old versions' files are
//! never rewritten): `MESH_TABLE_BLESS=1 cargo test -p mesh-table --test golden`. After a
//! version bump, add a constant and a test for the new file first.

mod support;

use mesh_table::spec::{HeaderMatchSpec, MatchSpec, TableSpec};
use mesh_table::{AlignedBytes, Table, encode, format::FORMAT_VERSION};
use support::*;

const GOLDEN_V1: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/v1.bin");
const GOLDEN_V2: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/v2.bin");

fn golden_spec() -> TableSpec {
    let routes = vec![
        with_match(
            route(0, 1),
            MatchSpec {
                headers: vec![header("end-user", exact("jason"))],
                ..MatchSpec::default()
            },
        ),
        with_match(route(1, 0), uri(regex("/api/v[0-9]+/.*"))),
        with_match(
            route(2, 1),
            MatchSpec {
                uri: Some(prefix("/static/")),
                query_params: vec![("v".to_owned(), HeaderMatchSpec::Present)],
                ..MatchSpec::default()
            },
        ),
        route(3, 0),
    ];
    spec(
        vec![vhost(
            "bookinfo/reviews",
            &["reviews", "*.reviews.svc"],
            routes,
        )],
        2,
    )
}

fn check_decisions(table: &Table<'_>) {
    assert_eq!(
        pick(table, &Req::new("reviews", "/").header("end-user", "jason")),
        Some((0, 0))
    );
    assert_eq!(
        pick(table, &Req::new("a.reviews.svc", "/api/v2/x")),
        Some((0, 1))
    );
    assert_eq!(
        pick(table, &Req::new("reviews", "/static/a.css").query("v=1")),
        Some((0, 2))
    );
    assert_eq!(
        pick(table, &Req::new("reviews", "/static/a.css")),
        Some((0, 3))
    );
    assert_eq!(pick(table, &Req::new("ratings", "/")), None);
}

/// Everything a route's views say, as text, to compare tables of different versions.
fn describe(table: &Table<'_>) -> Vec<String> {
    let mut lines = Vec::new();
    for vh in table.virtual_hosts() {
        lines.push(format!(
            "{} {:?} {:?}",
            vh.name(),
            vh.domains().collect::<Vec<_>>(),
            vh.ports().collect::<Vec<_>>()
        ));
        for r in vh.routes() {
            let conditions: Vec<_> = r
                .matches()
                .map(|m| m.conditions().collect::<Vec<_>>())
                .collect();
            let destinations: Vec<_> = r
                .destinations()
                .map(|d| {
                    (
                        d.cluster().name(),
                        d.weight(),
                        d.port(),
                        d.index_in_route(&r),
                    )
                })
                .collect();
            let retry = r.retry().map(|retry| {
                (
                    retry.attempts,
                    retry.per_try_timeout_ms,
                    retry.retry_on,
                    retry.retriable_status_codes().collect::<Vec<_>>(),
                )
            });
            lines.push(format!(
                "{} {} {:?} {:?} {conditions:?} {destinations:?} total {} {:?} {:?} {retry:?} {:?} {:?} {:?} {} {}",
                r.vs_name(),
                r.rule_index(),
                r.name(),
                r.action(),
                r.total_weight(),
                r.fault(),
                r.timeout_ms(),
                r.request_headers().collect::<Vec<_>>(),
                r.response_headers().collect::<Vec<_>>(),
                r.rewrite(),
                r.mirrors().count(),
                r.cors().is_some(),
            ));
        }
    }
    for c in table.clusters() {
        lines.push(format!("{} {} {:?}", c.name(), c.host(), c.load_balancer()));
    }
    lines
}

fn load_golden(path: &str) -> AlignedBytes {
    AlignedBytes::new(&std::fs::read(path).expect("golden file exists"))
}

/// The golden file of the current version: the writer must produce it byte for byte (or the
/// version is bumped and a new file added). `MESH_TABLE_BLESS` rewrites it.
fn check_current(path: &str, version: u32) -> AlignedBytes {
    let encoded = encode(&golden_spec()).unwrap();
    if FORMAT_VERSION == version && std::env::var_os("MESH_TABLE_BLESS").is_some() {
        std::fs::write(path, &encoded).unwrap();
    }
    let golden = load_golden(path);
    if FORMAT_VERSION == version {
        assert!(
            encoded == golden.as_bytes(),
            "the writer's output changed while FORMAT_VERSION is still {version}: bump the version and add a new golden file"
        );
    }
    golden
}

#[test]
fn version_1_golden_still_loads_and_decides() {
    let golden = load_golden(GOLDEN_V1);
    let table = Table::load(&golden).expect("the v1 golden artifact loads");
    assert_eq!(table.version(), 1);
    check_decisions(&table);
    let sections: Vec<&str> = table
        .info()
        .sections
        .iter()
        .map(|(name, _)| *name)
        .collect();
    assert_eq!(sections.len(), 28);
    assert!(!sections.contains(&"route policies"), "{sections:?}");
}

#[test]
fn version_2_golden_loads_decides_and_is_what_the_writer_writes() {
    let golden = check_current(GOLDEN_V2, 2);
    let table = Table::load(&golden).expect("the v2 golden artifact loads");
    assert_eq!(table.version(), 2);
    check_decisions(&table);
    let count = |name: &str| section_count(&table, name);
    // Four routes, two behaviours (to c1 and to c0): two policies, two destination records.
    assert_eq!(count("routes"), Some(4));
    assert_eq!(count("route policies"), Some(2));
    assert_eq!(count("destinations"), Some(2));
    // Two keys each (an exact header, a prefix; two domains), at most 0.6 full: ceil(2 / 0.6).
    assert_eq!(count("key hash table"), Some(4));
    assert_eq!(count("host hash table"), Some(4));
}

/// Both versions say the same about every route, through the same views.
#[test]
fn versions_1_and_2_read_the_same() {
    let v1 = load_golden(GOLDEN_V1);
    let v2 = load_golden(GOLDEN_V2);
    let v1 = Table::load(&v1).expect("v1 loads");
    let v2 = Table::load(&v2).expect("v2 loads");
    assert_eq!(describe(&v1), describe(&v2));
    assert!(v2.bytes().len() < v1.bytes().len());
}
