//! Golden artifacts: a table written by format version 1 must keep loading and deciding the
//! same way, and today's writer must still produce it byte for byte (or the version is bumped).
//!
//! Regenerate after a deliberate layout change (with a version bump, keeping the old file):
//! `MESH_TABLE_BLESS=1 cargo test -p mesh-table --test golden`.

mod support;

use mesh_table::spec::{HeaderMatchSpec, MatchSpec, TableSpec};
use mesh_table::{AlignedBytes, Table, encode, format::FORMAT_VERSION};
use support::*;

const GOLDEN_V1: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/v1.bin");

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

#[test]
fn version_1_golden_still_loads_and_decides() {
    let encoded = encode(&golden_spec()).unwrap();
    if std::env::var_os("MESH_TABLE_BLESS").is_some() {
        std::fs::write(GOLDEN_V1, &encoded).unwrap();
    }
    let golden = AlignedBytes::new(&std::fs::read(GOLDEN_V1).expect("golden file exists"));
    let table = Table::load(&golden).expect("the v1 golden artifact loads");
    assert_eq!(table.version(), 1);
    check_decisions(&table);
    if FORMAT_VERSION == 1 {
        assert!(
            encoded == golden.as_bytes(),
            "the writer's output changed while FORMAT_VERSION is still 1: bump the version and add a new golden file"
        );
    }
}
