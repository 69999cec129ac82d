//! Round trips (spec → bytes → views), determinism, encode errors, splits and fault draws.

mod support;

use mesh_table::spec::{
    AbortKind, ActionSpec, ClusterSpec, ConnectionPoolSpec, CorsSpec, EndpointSpec, FaultSpec,
    HeaderOpsSpec, LbSpec, MirrorSpec, OutlierSpec, RedirectSpec, ResolutionSpec, RetrySpec,
    RewriteSpec, RouteSpec, TableSpec, WeightedDestSpec,
};
use mesh_table::{
    Abort, ActionDecision, ActionView, ConditionField, ConditionTest, EncodeError, HeaderOp,
    LoadBalancer, OriginMatch, Resolution, Table, encode,
};
use support::*;

fn rich_spec() -> TableSpec {
    let mut forward = RouteSpec::new(
        "shop/reviews",
        2,
        ActionSpec::Route(vec![
            WeightedDestSpec {
                cluster: 0,
                weight: 90,
                ..Default::default()
            },
            WeightedDestSpec {
                cluster: 1,
                weight: 10,
                port: Some(9080),
                request_headers: HeaderOpsSpec {
                    set: vec![("x-canary".into(), "1".into())],
                    ..Default::default()
                },
                ..Default::default()
            },
        ]),
    );
    forward.name = Some("canary".into());
    forward.matches = vec![header_match_spec()];
    forward.fault = Some(FaultSpec {
        delay: Some((250, 12.5)),
        abort: Some((AbortKind::GrpcStatus("UNAVAILABLE".into()), 1.0)),
    });
    forward.timeout_ms = Some(1500);
    forward.retries = Some(RetrySpec {
        attempts: 3,
        per_try_timeout_ms: Some(500),
        retry_on: vec![
            "5xx".into(),
            "connect-failure".into(),
            "503".into(),
            "429".into(),
        ],
        backoff_ms: None,
    });
    forward.request_headers = HeaderOpsSpec {
        set: vec![("X-Env".into(), "prod".into())],
        add: vec![("x-trace".into(), "on".into())],
        remove: vec!["x-debug".into()],
    };
    forward.rewrite = Some(RewriteSpec {
        uri: Some("/v2".into()),
        authority: None,
        uri_regex: Some(("^/old/(.*)".into(), "/new/\\1".into())),
    });
    forward.mirrors = vec![MirrorSpec {
        cluster: 1,
        percent: 5.0,
    }];
    forward.cors = Some(CorsSpec {
        allow_origins: vec![exact("https://a.com"), regex("https://.*\\.b\\.com")],
        allow_methods: vec!["GET".into()],
        allow_headers: vec!["x-a".into()],
        expose_headers: vec![],
        max_age_s: Some(60),
        allow_credentials: Some(true),
    });
    let redirect = with_match(
        RouteSpec::new(
            "shop/reviews",
            3,
            ActionSpec::Redirect(RedirectSpec {
                uri: Some("/new".into()),
                authority: Some("b.com".into()),
                port: Some(8443),
                scheme: Some("https".into()),
                code: 308,
                derive_port_from_request: false,
            }),
        ),
        uri(exact("/old")),
    );
    let direct = RouteSpec::new(
        "shop/reviews",
        4,
        ActionSpec::DirectResponse {
            status: 418,
            body: vec![0, 159, 146, 150],
        },
    );
    let clusters = vec![
        ClusterSpec {
            name: "outbound|9080|v1|reviews.shop.svc.cluster.local".into(),
            host: "reviews.shop.svc.cluster.local".into(),
            subset: Some("v1".into()),
            port: Some(9080),
            labels: vec![("version".into(), "v1".into())],
            endpoints: vec![EndpointSpec {
                address: "10.0.0.1".into(),
                port: 9080,
                weight: 1,
                labels: vec![("zone".into(), "a".into())],
            }],
            resolution: ResolutionSpec::Static,
            lb: LbSpec::ConsistentHash {
                header: Some("x-user".into()),
                cookie: None,
                source_ip: false,
                query_param: None,
            },
            connection_pool: ConnectionPoolSpec {
                max_connections: Some(100),
                ..Default::default()
            },
            outlier: Some(OutlierSpec {
                consecutive_5xx: Some(5),
                consecutive_gateway_errors: None,
                interval_ms: 10_000,
                base_ejection_ms: 30_000,
                max_ejection_percent: 10,
                min_health_percent: 50,
            }),
        },
        ClusterSpec {
            resolution: ResolutionSpec::RuntimeLookup,
            ..cluster("external")
        },
    ];
    let mut vh = vhost(
        "shop/reviews",
        &["reviews.shop.svc.cluster.local", "reviews"],
        vec![forward, redirect, direct],
    );
    vh.ports = vec![9080];
    TableSpec {
        content_hash: [3; 32],
        virtual_hosts: vec![vh],
        clusters,
    }
}

fn header_match_spec() -> mesh_table::spec::MatchSpec {
    mesh_table::spec::MatchSpec {
        headers: vec![header("end-user", exact("jason"))],
        ..Default::default()
    }
}

#[test]
fn views_return_what_the_spec_said() {
    let bytes = artifact(&rich_spec());
    let table = Table::load(&bytes).unwrap();
    assert_eq!(table.info().content_hash, [3; 32]);
    assert_eq!(table.info().version, mesh_table::format::FORMAT_VERSION);
    let vh = table.virtual_hosts().next().unwrap();
    assert_eq!(vh.name(), "shop/reviews");
    assert_eq!(
        vh.domains().collect::<Vec<_>>(),
        ["reviews.shop.svc.cluster.local", "reviews"]
    );
    assert_eq!(vh.ports().collect::<Vec<_>>(), [9080]);
    let routes: Vec<_> = vh.routes().collect();
    let r = routes[0];
    assert_eq!(
        (r.vs_name(), r.rule_index(), r.name()),
        ("shop/reviews", 2, Some("canary"))
    );
    let conds: Vec<_> = r
        .matches()
        .flat_map(|m| m.conditions().collect::<Vec<_>>())
        .collect();
    assert_eq!(conds.len(), 1);
    assert_eq!(conds[0].field, ConditionField::Header("end-user"));
    assert_eq!(conds[0].test, ConditionTest::Exact("jason"));
    let fault = r.fault().unwrap();
    assert_eq!(fault.delay, Some((250, 125_000)));
    assert_eq!(
        fault.abort,
        Some((Abort::GrpcStatus("UNAVAILABLE"), 10_000))
    );
    assert_eq!(r.timeout_ms(), Some(1500));
    let retry = r.retry().unwrap();
    assert_eq!(
        (retry.attempts, retry.per_try_timeout_ms, retry.backoff_ms),
        (3, Some(500), None)
    );
    assert!(retry.retries_on("5xx") && retry.retries_on("connect-failure"));
    assert!(retry.retries_on("retriable-status-codes") && !retry.retries_on("reset"));
    assert_eq!(
        retry.retriable_status_codes().collect::<Vec<_>>(),
        [503, 429]
    );
    assert_eq!(retry.retry_on, "5xx,connect-failure,503,429");
    assert_eq!(
        r.request_headers().collect::<Vec<_>>(),
        [
            HeaderOp::Set("x-env", "prod"),
            HeaderOp::Add("x-trace", "on"),
            HeaderOp::Remove("x-debug")
        ]
    );
    let rewrite = r.rewrite().unwrap();
    assert_eq!(rewrite.uri, Some("/v2"));
    assert_eq!(rewrite.uri_regex, Some(("^/old/(.*)", "/new/\\1")));
    let cors = r.cors().unwrap();
    assert_eq!(
        cors.allow_origins().collect::<Vec<_>>(),
        [
            OriginMatch::Exact("https://a.com"),
            OriginMatch::Regex("https://.*\\.b\\.com")
        ]
    );
    assert_eq!(
        (cors.max_age_s(), cors.allow_credentials()),
        (Some(60), Some(true))
    );
    let dests: Vec<_> = r.destinations().collect();
    assert_eq!(
        (dests[0].weight(), dests[1].weight(), dests[1].port()),
        (90, 10, Some(9080))
    );
    assert_eq!(
        dests[1].request_headers().next(),
        Some(HeaderOp::Set("x-canary", "1"))
    );
    assert_eq!(r.mirrors().next().unwrap().cluster.name(), "external");

    match routes[1].action() {
        ActionView::Redirect(redirect) => {
            assert_eq!(
                (redirect.uri, redirect.authority, redirect.port),
                (Some("/new"), Some("b.com"), Some(8443))
            );
            assert_eq!((redirect.scheme, redirect.code), (Some("https"), 308));
        }
        other => panic!("expected a redirect, got {other:?}"),
    }
    match routes[2].action() {
        ActionView::DirectResponse { status, body } => {
            assert_eq!((status, body), (418, &[0, 159, 146, 150][..]))
        }
        other => panic!("expected a direct response, got {other:?}"),
    }
    let c = table.clusters().next().unwrap();
    assert_eq!(
        (c.host(), c.subset(), c.port()),
        ("reviews.shop.svc.cluster.local", Some("v1"), Some(9080))
    );
    assert_eq!(c.labels().collect::<Vec<_>>(), [("version", "v1")]);
    let e = c.endpoints().next().unwrap();
    assert_eq!((e.address(), e.port(), e.weight()), ("10.0.0.1", 9080, 1));
    assert_eq!(c.resolution(), Resolution::Static);
    assert!(matches!(
        c.load_balancer(),
        LoadBalancer::ConsistentHash {
            header: Some("x-user"),
            ..
        }
    ));
    assert_eq!(c.connection_pool().max_connections, Some(100));
    assert_eq!(c.outlier_detection().unwrap().consecutive_5xx, Some(5));
    assert_eq!(
        table.clusters().nth(1).unwrap().resolution(),
        Resolution::RuntimeLookup
    );
}

#[test]
fn identical_specs_encode_to_identical_bytes() {
    let a = encode(&rich_spec()).unwrap();
    let b = encode(&rich_spec()).unwrap();
    assert_eq!(a, b);
    let mut other = rich_spec();
    other.content_hash = [4; 32];
    assert_ne!(encode(&other).unwrap(), a);
}

/// The rich spec's routes, each first repeated three times under other names and matches:
/// same behaviour, other identity (the originals come last, after their copies, since the
/// last one matches every request).
fn repeated_spec() -> TableSpec {
    let mut spec = rich_spec();
    let originals = std::mem::take(&mut spec.virtual_hosts[0].routes);
    for copy in 0..3u32 {
        for (i, original) in originals.iter().enumerate() {
            let mut r = original.clone();
            r.rule_index = 10 * (copy + 1) + i as u32;
            r.name = Some(format!("copy-{copy}-{i}"));
            r.matches = vec![uri(exact(&format!("/copy/{copy}/{i}")))];
            spec.virtual_hosts[0].routes.push(r);
        }
    }
    spec.virtual_hosts[0].routes.extend(originals);
    spec
}

#[test]
fn routes_that_behave_the_same_share_one_policy_and_its_lists() {
    use mesh_table::format::{Section, policy, route};
    let spec = repeated_spec();
    let bytes = encode(&spec).unwrap();
    assert_eq!(bytes, encode(&spec).unwrap(), "deterministic");
    let table = Table::load_owned(&bytes).unwrap();
    let count = |name: &str| section_count(&table, name).unwrap();
    assert_eq!(count("routes"), 12);
    // Forward, redirect, direct response: written once each, with what they point to.
    assert_eq!(count("route policies"), 3);
    assert_eq!(count("destinations"), 2);
    // The destination's `x-canary`, then the route's set, add and remove.
    assert_eq!(count("header operations"), 4);
    assert_eq!(count("mirrors"), 1);
    assert_eq!(count("cors policies"), 1);
    assert_eq!(count("string matches"), 2);
    assert_eq!(count("status code lists"), 2);
    assert_eq!(count("blobs"), 1);
    // Policies get ids in first-use order; every copy of a route has its original's policy.
    for r in 0..12 {
        assert_eq!(
            raw_field(&bytes, Section::Routes, r, route::POLICY),
            (r % 3) as u32
        );
    }
    // Empty ranges are (0, 0): the redirect has no destinations, mirrors, operations or codes.
    for (field, len) in [
        (policy::DESTS, policy::DESTS_LEN),
        (policy::MIRRORS, policy::MIRRORS_LEN),
        (policy::REQUEST_OPS, policy::REQUEST_OPS_LEN),
        (policy::RESPONSE_OPS, policy::RESPONSE_OPS_LEN),
        (policy::RETRY_CODES, policy::RETRY_CODES_LEN),
    ] {
        assert_eq!(raw_field(&bytes, Section::Policies, 1, field), 0);
        assert_eq!(raw_field(&bytes, Section::Policies, 1, len), 0);
    }
    // Every copy reads like its original, and the requests still reach the right copy.
    let vh = table.virtual_hosts().next().unwrap();
    let routes: Vec<_> = vh.routes().collect();
    let behaviour = |r: &mesh_table::RouteView<'_>| {
        format!(
            "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {} {:?}",
            r.action(),
            r.destinations()
                .map(|d| (d.cluster().name(), d.weight(), d.index_in_route(r)))
                .collect::<Vec<_>>(),
            r.fault(),
            r.timeout_ms(),
            r.retry().map(|retry| (
                retry.retry_on,
                retry.retriable_status_codes().collect::<Vec<_>>()
            )),
            r.request_headers().collect::<Vec<_>>(),
            r.destinations()
                .map(|d| d.request_headers().collect::<Vec<_>>())
                .collect::<Vec<_>>(),
            r.rewrite(),
            r.mirrors().count(),
            r.cors().map(|c| c.allow_origins().collect::<Vec<_>>()),
        )
    };
    for (i, r) in routes.iter().enumerate() {
        assert_eq!(behaviour(r), behaviour(&routes[i % 3]), "route {i}");
    }
    for copy in 0..3 {
        for i in 0..3 {
            let req = Req::new("reviews:9080", &format!("/copy/{copy}/{i}")).port(9080);
            assert_eq!(
                pick(&table, &req),
                Some((0, 3 * copy + i)),
                "copy {copy} of route {i}"
            );
        }
    }
}

/// Hash tables are sized for their load (at most 0.6 full, not the next power of two) and
/// every key is found, including the ones probing wraps around for.
#[test]
fn hash_tables_are_sized_for_their_load_and_find_every_key() {
    let n = 1000;
    let routes = (0..n)
        .map(|i| {
            with_match(
                route(i, 0),
                mesh_table::spec::MatchSpec {
                    headers: vec![header("x-user", exact(&format!("user-{i}")))],
                    ..Default::default()
                },
            )
        })
        .collect();
    let bytes = artifact(&spec(vec![vhost("ns/h", &["h"], routes)], 1));
    let table = Table::load(&bytes).unwrap();
    let slots = table
        .info()
        .sections
        .iter()
        .find(|(name, _)| *name == "key hash table")
        .map(|(_, s)| s.count);
    assert_eq!(slots, Some(1667));
    for i in 0..n {
        let req = Req::new("h", "/").header("x-user", &format!("user-{i}"));
        assert_eq!(pick(&table, &req), Some((0, i)), "user-{i}");
    }
    assert_eq!(
        pick(&table, &Req::new("h", "/").header("x-user", "nobody")),
        None
    );
}

#[test]
fn splits_follow_weights_and_faults_follow_percentages() {
    let bytes = artifact(&rich_spec());
    let table = Table::load(&bytes).unwrap();
    let req = Req::new("reviews:9080", "/")
        .port(9080)
        .header("end-user", "jason");
    let (mut canary, mut delayed, mut aborted, mut mirrored) = (0, 0, 0, 0);
    let n = 100_000u64;
    for i in 0..n {
        let random = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let d = *table.decide(&req.view(), random).route().expect("route");
        if let ActionDecision::Forward { cluster, .. } = d.action {
            canary += usize::from(cluster.name() == "external");
        }
        delayed += usize::from(d.fault.delay_ms == Some(250));
        aborted += usize::from(d.fault.abort.is_some());
        mirrored += d.mirrors().count();
    }
    let close = |count: usize, percent: f64| {
        let expected = n as f64 * percent / 100.0;
        (count as f64 - expected).abs() < expected * 0.1 + 50.0
    };
    assert!(close(canary, 10.0), "canary {canary}");
    assert!(close(delayed, 12.5), "delayed {delayed}");
    assert!(close(aborted, 1.0), "aborted {aborted}");
    assert!(close(mirrored, 5.0), "mirrored {mirrored}");
}

#[test]
fn zero_weights_are_never_chosen_and_all_zero_splits_evenly() {
    let dests = |weights: &[u32]| {
        ActionSpec::Route(
            weights
                .iter()
                .enumerate()
                .map(|(i, &w)| WeightedDestSpec {
                    cluster: i as u32,
                    weight: w,
                    ..Default::default()
                })
                .collect(),
        )
    };
    let s = spec(
        vec![
            vhost(
                "a",
                &["a"],
                vec![RouteSpec::new("vs", 0, dests(&[0, 5, 0]))],
            ),
            vhost("b", &["b"], vec![RouteSpec::new("vs", 0, dests(&[0, 0]))]),
        ],
        3,
    );
    let bytes = artifact(&s);
    let table = Table::load(&bytes).unwrap();
    let mut seen_b = [0; 2];
    for random in 0..1000u64 {
        let pick_cluster = |host: &str| match table
            .decide(&Req::new(host, "/").view(), random)
            .route()
            .unwrap()
            .action
        {
            ActionDecision::Forward { cluster, .. } => cluster.id().0,
            _ => unreachable!(),
        };
        assert_eq!(pick_cluster("a"), 1);
        seen_b[pick_cluster("b") as usize] += 1;
    }
    assert!(seen_b[0] > 400 && seen_b[1] > 400, "{seen_b:?}");
}

#[test]
fn encode_errors_name_the_problem() {
    let unknown_cluster = spec(vec![vhost("h", &["h"], vec![route(0, 5)])], 1);
    assert!(matches!(
        encode(&unknown_cluster),
        Err(EncodeError::UnknownCluster { cluster: 5, .. })
    ));

    let dup = spec(
        vec![vhost("a", &["h"], vec![]), vhost("b", &["H"], vec![])],
        1,
    );
    let err = encode(&dup).unwrap_err();
    assert_eq!(
        err.to_string(),
        "domain `H` is claimed by virtual hosts `a` and `b` on overlapping ports"
    );

    let bad_domain = spec(vec![vhost("a", &["foo.*"], vec![])], 1);
    assert!(matches!(
        encode(&bad_domain),
        Err(EncodeError::InvalidDomain { .. })
    ));

    let bad_regex = spec(
        vec![vhost(
            "a",
            &["a"],
            vec![with_match(route(0, 0), uri(regex("(")))],
        )],
        1,
    );
    assert!(matches!(
        encode(&bad_regex),
        Err(EncodeError::RegexSyntax { .. })
    ));

    let mut retry = route(0, 0);
    retry.retries = Some(RetrySpec {
        attempts: 1,
        retry_on: vec!["sometimes".into()],
        ..Default::default()
    });
    let bad_retry = spec(vec![vhost("a", &["a"], vec![retry])], 1);
    assert!(matches!(
        encode(&bad_retry),
        Err(EncodeError::UnknownRetryOn { .. })
    ));
}

#[test]
fn oversized_regex_sets_fail_with_a_clear_error() {
    let routes = (0..200)
        .map(|i| with_match(route(i, 0), uri(regex(&format!("/(a|b)*a(a|b){{8}}/{i}")))))
        .collect();
    let s = spec(vec![vhost("h", &["h"], routes)], 1);
    let options = mesh_table::EncodeOptions {
        dfa_size_limit: 64 << 10,
        determinize_size_limit: 1 << 20,
    };
    let err = mesh_table::encode_with(&s, &options).unwrap_err();
    assert!(
        matches!(err, EncodeError::RegexTooBig { patterns: 200, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("dfa_size_limit"), "{err}");
}
