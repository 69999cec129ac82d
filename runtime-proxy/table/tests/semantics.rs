//! One test per semantic point of host selection and Istio first-match route selection.

mod support;

use mesh_table::Table;
use mesh_table::spec::{MatchSpec, StringMatchSpec};
use support::*;

/// Encodes, loads and returns where each request lands.
fn check(spec: &mesh_table::spec::TableSpec, cases: &[(Req, Option<(u32, u32)>)]) {
    let bytes = artifact(spec);
    let table = Table::load(&bytes).expect("loads");
    // The owned form (what the proxy keeps in an ArcSwap) must answer exactly as the borrowed one.
    let owned = Table::load_owned(&bytes).expect("loads owned");
    let oracle = mesh_table::oracle::Oracle::new(spec).expect("oracle");
    for (req, expected) in cases {
        assert_eq!(pick(&table, req), *expected, "table, request {req:?}");
        assert_eq!(pick(&owned, req), *expected, "owned table, request {req:?}");
        let o = oracle.decide(&req.view(), 0);
        let from_oracle = o.route.map(|r| (o.virtual_host.unwrap() as u32, r as u32));
        assert_eq!(from_oracle, *expected, "oracle, request {req:?}");
    }
}

#[test]
fn exact_domain_beats_longest_wildcard_beats_star() {
    let s = spec(
        vec![
            vhost(
                "exact",
                &["a.example.com", "a.example.com:8080"],
                vec![route(0, 0)],
            ),
            vhost("wild", &["*.example.com"], vec![route(0, 0)]),
            vhost("wilder", &["*.b.example.com"], vec![route(0, 0)]),
            vhost("any", &["*"], vec![route(0, 0)]),
        ],
        1,
    );
    check(
        &s,
        &[
            (Req::new("a.example.com", "/"), Some((0, 0))),
            (Req::new("A.Example.COM:8080", "/"), Some((0, 0))),
            (Req::new("x.example.com", "/"), Some((1, 0))),
            (Req::new("x.y.example.com", "/"), Some((1, 0))),
            (Req::new("x.b.example.com", "/"), Some((2, 0))),
            (Req::new("b.example.com", "/"), Some((1, 0))),
            // `*.example.com` needs at least one character before the suffix.
            (Req::new("example.com", "/"), Some((3, 0))),
            (Req::new("other.org", "/"), Some((3, 0))),
        ],
    );
}

#[test]
fn no_virtual_host_without_star() {
    let s = spec(vec![vhost("exact", &["a.com"], vec![route(0, 0)])], 1);
    let bytes = artifact(&s);
    let table = Table::load(&bytes).unwrap();
    assert!(matches!(
        table.decide(&Req::new("b.com", "/").view(), 0),
        mesh_table::Decision::NoVirtualHost
    ));
}

#[test]
fn virtual_hosts_on_disjoint_ports_share_a_domain() {
    let mut on_80 = vhost("p80", &["svc"], vec![route(0, 0)]);
    on_80.ports = vec![80];
    let mut on_90 = vhost("p90", &["svc"], vec![route(0, 0)]);
    on_90.ports = vec![90, 91];
    let any = vhost("fallback", &["*"], vec![route(0, 0)]);
    let s = spec(vec![on_80, on_90, any], 1);
    check(
        &s,
        &[
            (Req::new("svc", "/").port(80), Some((0, 0))),
            (Req::new("svc:91", "/").port(91), Some((1, 0))),
            (Req::new("svc", "/").port(70), Some((2, 0))),
            (Req::new("svc", "/"), Some((2, 0))),
        ],
    );
}

#[test]
fn first_match_wins_across_index_kinds() {
    // Route 0 is a regex, route 1 an exact path, route 2 a prefix, route 3 a header.
    let routes = vec![
        with_match(route(0, 0), uri(regex("/api/v[0-9]+/items"))),
        with_match(route(1, 0), uri(exact("/api/v1/items"))),
        with_match(route(2, 0), uri(prefix("/api/"))),
        with_match(
            route(3, 0),
            MatchSpec {
                headers: vec![header("x-user", exact("bob"))],
                ..MatchSpec::default()
            },
        ),
        route(4, 0),
    ];
    let s = spec(vec![vhost("h", &["h"], routes)], 1);
    check(
        &s,
        &[
            (Req::new("h", "/api/v1/items"), Some((0, 0))),
            (Req::new("h", "/api/v1/items/"), Some((0, 2))),
            (
                Req::new("h", "/api/vx/items").header("x-user", "bob"),
                Some((0, 2)),
            ),
            (
                Req::new("h", "/other").header("X-User", "bob"),
                Some((0, 3)),
            ),
            (
                Req::new("h", "/other").header("x-user", "Bob"),
                Some((0, 4)),
            ),
        ],
    );
}

#[test]
fn later_alternatives_of_an_earlier_route_win() {
    let r0 = RouteSpecExt::matches(route(0, 0), vec![uri(exact("/a")), uri(prefix("/b"))]);
    let r1 = with_match(route(1, 0), uri(prefix("/")));
    let s = spec(vec![vhost("h", &["h"], vec![r0, r1])], 1);
    check(
        &s,
        &[
            (Req::new("h", "/a"), Some((0, 0))),
            (Req::new("h", "/bcd"), Some((0, 0))),
            (Req::new("h", "/c"), Some((0, 1))),
        ],
    );
}

trait RouteSpecExt {
    fn matches(self, m: Vec<MatchSpec>) -> Self;
}
impl RouteSpecExt for mesh_table::spec::RouteSpec {
    fn matches(mut self, m: Vec<MatchSpec>) -> Self {
        self.matches = m;
        self
    }
}

#[test]
fn nested_prefixes_keep_route_order() {
    let routes = vec![
        with_match(route(0, 0), uri(prefix("/a/b/c"))),
        with_match(route(1, 0), uri(prefix("/a"))),
        with_match(route(2, 0), uri(prefix("/a/b"))),
    ];
    let s = spec(vec![vhost("h", &["h"], routes)], 1);
    check(
        &s,
        &[
            (Req::new("h", "/a/b/c/d"), Some((0, 0))),
            (Req::new("h", "/a/b/x"), Some((0, 1))),
            (Req::new("h", "/a"), Some((0, 1))),
            (Req::new("h", "/"), None),
        ],
    );
}

#[test]
fn ignore_uri_case_applies_to_exact_and_prefix_only() {
    let ci = |m: StringMatchSpec| MatchSpec {
        uri: Some(m),
        ignore_uri_case: true,
        ..MatchSpec::default()
    };
    let routes = vec![
        with_match(route(0, 0), ci(exact("/Exact"))),
        with_match(route(1, 0), ci(prefix("/PRE/"))),
        with_match(route(2, 0), ci(regex("/re/[a-z]+"))),
    ];
    let s = spec(vec![vhost("h", &["h"], routes)], 1);
    check(
        &s,
        &[
            (Req::new("h", "/exact"), Some((0, 0))),
            (Req::new("h", "/EXACT"), Some((0, 0))),
            (Req::new("h", "/pre/x"), Some((0, 1))),
            (Req::new("h", "/Pre/X"), Some((0, 1))),
            (Req::new("h", "/re/abc"), Some((0, 2))),
            (Req::new("h", "/RE/abc"), None),
        ],
    );
}

#[test]
fn regexes_must_match_the_whole_value() {
    let routes = vec![
        with_match(route(0, 0), uri(regex("/a"))),
        with_match(route(1, 0), uri(regex("/a|/ab"))),
        with_match(route(2, 0), uri(regex(r"\pL+"))),
    ];
    let s = spec(vec![vhost("h", &["h"], routes)], 1);
    check(
        &s,
        &[
            (Req::new("h", "/a"), Some((0, 0))),
            (Req::new("h", "/ab"), Some((0, 1))),
            (Req::new("h", "/abc"), None),
            (Req::new("h", "x/a"), None),
            (Req::new("h", "héllo"), Some((0, 2))),
        ],
    );
}

#[test]
fn header_conditions() {
    let m = |headers| MatchSpec {
        headers,
        ..MatchSpec::default()
    };
    let routes = vec![
        with_match(
            route(0, 0),
            m(vec![
                header("x-a", exact("1")),
                header("x-b", prefix("pre")),
            ]),
        ),
        with_match(route(1, 0), m(vec![header("x-c", regex("v[0-9]"))])),
        with_match(route(2, 0), m(vec![present("x-d")])),
        with_match(
            route(3, 0),
            MatchSpec {
                without_headers: vec![present("x-e")],
                uri: Some(prefix("/w")),
                ..MatchSpec::default()
            },
        ),
        with_match(
            route(4, 0),
            MatchSpec {
                without_headers: vec![header("x-f", exact("no"))],
                uri: Some(prefix("/f")),
                ..MatchSpec::default()
            },
        ),
    ];
    let s = spec(vec![vhost("h", &["h"], routes)], 1);
    check(
        &s,
        &[
            (
                Req::new("h", "/")
                    .header("x-a", "1")
                    .header("x-b", "prefix"),
                Some((0, 0)),
            ),
            (
                Req::new("h", "/")
                    .header("x-a", "1")
                    .header("x-b", "Prefix"),
                None,
            ),
            (Req::new("h", "/").header("x-a", "1"), None),
            (Req::new("h", "/").header("X-C", "v7"), Some((0, 1))),
            (Req::new("h", "/").header("x-c", "v77"), None),
            (Req::new("h", "/").header("x-d", ""), Some((0, 2))),
            (Req::new("h", "/w"), Some((0, 3))),
            (Req::new("h", "/w").header("x-e", "1"), None),
            (Req::new("h", "/f"), Some((0, 4))),
            (Req::new("h", "/f").header("x-f", "yes"), Some((0, 4))),
            (Req::new("h", "/f").header("x-f", "no"), None),
        ],
    );
}

#[test]
fn query_method_scheme_authority_and_port_conditions() {
    let routes = vec![
        with_match(
            route(0, 0),
            MatchSpec {
                query_params: vec![header("v", exact("2"))],
                ..MatchSpec::default()
            },
        ),
        with_match(
            route(1, 0),
            MatchSpec {
                query_params: vec![present("debug")],
                ..MatchSpec::default()
            },
        ),
        with_match(
            route(2, 0),
            MatchSpec {
                method: Some(exact("POST")),
                ..MatchSpec::default()
            },
        ),
        with_match(
            route(3, 0),
            MatchSpec {
                scheme: Some(exact("https")),
                ..MatchSpec::default()
            },
        ),
        with_match(
            route(4, 0),
            MatchSpec {
                authority: Some(prefix("h:9")),
                ..MatchSpec::default()
            },
        ),
        with_match(
            route(5, 0),
            MatchSpec {
                port: Some(8443),
                ..MatchSpec::default()
            },
        ),
    ];
    let s = spec(vec![vhost("h", &["h"], routes)], 1);
    let mut https = Req::new("h", "/");
    https.scheme = "https".to_owned();
    check(
        &s,
        &[
            (Req::new("h", "/").query("v=2"), Some((0, 0))),
            (Req::new("h", "/").query("v=3&v=2"), None),
            (Req::new("h", "/").query("a=1&debug"), Some((0, 1))),
            (Req::new("h", "/").method("POST"), Some((0, 2))),
            (Req::new("h", "/").method("post"), None),
            (https, Some((0, 3))),
            (Req::new("h:9090", "/"), Some((0, 4))),
            (Req::new("h", "/").port(8443), Some((0, 5))),
            (Req::new("h", "/").port(8080), None),
        ],
    );
}

#[test]
fn catch_all_and_empty_match_entries() {
    let routes = vec![
        with_match(route(0, 0), uri(exact("/x"))),
        with_match(route(1, 0), MatchSpec::default()),
        with_match(route(2, 0), uri(exact("/y"))),
    ];
    let s = spec(vec![vhost("h", &["h"], routes)], 1);
    check(
        &s,
        &[
            (Req::new("h", "/x"), Some((0, 0))),
            (Req::new("h", "/y"), Some((0, 1))),
        ],
    );
}

#[test]
fn empty_prefix_matches_everything() {
    let routes = vec![
        with_match(route(0, 0), uri(exact("/x"))),
        with_match(route(1, 0), uri(prefix(""))),
    ];
    let s = spec(vec![vhost("h", &["h"], routes)], 1);
    check(
        &s,
        &[
            (Req::new("h", "/x"), Some((0, 0))),
            (Req::new("h", "anything"), Some((0, 1))),
        ],
    );
}

#[test]
fn owned_table_is_shareable_across_threads() {
    fn assert_shareable<T: Send + Sync + 'static>(_: &T) {}
    let s = spec(vec![vhost("exact", &["a.com"], vec![route(0, 0)])], 1);
    let bytes = artifact(&s);
    let owned = std::sync::Arc::new(Table::load_owned(&bytes).unwrap());
    assert_shareable(&owned);
    let from_thread = {
        let owned = owned.clone();
        std::thread::spawn(move || pick(&owned, &Req::new("a.com", "/")))
            .join()
            .unwrap()
    };
    assert_eq!(from_thread, Some((0, 0)));
    assert_eq!(owned.info(), Table::load(&bytes).unwrap().info());
}
