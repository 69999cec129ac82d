//! Property test of the whole compiler: random policy repos (YAML) are checked, lowered and
//! compiled, and for random requests the compiled table's executor must pick the same
//! VirtualService rule and the same weighted destinations as a plain linear interpreter of
//! the type checker's IR with Istio's semantics (first match wins; matches OR, conditions
//! AND; short hosts; single destination takes everything; weight 0 gets nothing).

use mesh_table::{Decision, HeaderList, RequestView, Table};
use meshc::check::{self, Settings};
use meshc::compile;
use meshc::typecheck::regex::Matcher;
use meshc::typecheck::{HeaderMatch, HttpMatch, Ir, StringMatch};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const SERVICES: [(&str, &str); 4] = [
    ("svc-a", "default"),
    ("svc-b", "default"),
    ("svc-c", "team"),
    ("svc-d", "team"),
];

fn string_match(rng: &mut Rng, exact: &[&str], prefix: &[&str], regex: &[&str]) -> String {
    match rng.below(3) {
        0 => format!("exact: \"{}\"", rng.pick(exact)),
        1 => format!("prefix: \"{}\"", rng.pick(prefix)),
        _ => format!("regex: '{}'", rng.pick(regex)),
    }
}

/// One random `match` entry as YAML lines (indented for `    - `).
fn match_entry(rng: &mut Rng) -> String {
    let mut lines = Vec::new();
    if rng.chance(50) {
        let m = string_match(
            rng,
            &["/health", "/api/v1/x", "/"],
            &["/api", "/api/v1", "/static", ""],
            &["/api/v[0-9]+/.*", "/static/.*\\.css", ".*"],
        );
        lines.push(format!("uri: {{{m}}}"));
    }
    if rng.chance(40) {
        let value = match rng.below(4) {
            0 => "{exact: alice}".to_owned(),
            1 => "{prefix: admin-}".to_owned(),
            2 => "{regex: '(alice|bob)'}".to_owned(),
            _ => "{}".to_owned(),
        };
        lines.push(format!("headers: {{x-user: {value}}}"));
    }
    if rng.chance(20) {
        lines.push("withoutHeaders: {x-env: {exact: canary}}".to_owned());
    }
    if rng.chance(25) {
        let m = string_match(rng, &["POST", "GET"], &["P", "G"], &["(PUT|POST)"]);
        lines.push(format!("method: {{{m}}}"));
    }
    if rng.chance(15) {
        let value = if rng.chance(50) {
            "{exact: \"1\"}"
        } else {
            "{}"
        };
        lines.push(format!("queryParams: {{debug: {value}}}"));
    }
    if lines.is_empty() {
        lines.push("uri: {prefix: /api}".to_owned());
    }
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        out.push_str(if i == 0 { "    - " } else { "      " });
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn random_repo(rng: &mut Rng) -> String {
    let mut text = String::new();
    for (name, ns) in SERVICES {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  ports:\n  - {{name: http, port: 80}}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  host: {name}\n  subsets:\n  - {{name: v1, labels: {{version: v1}}}}\n  - {{name: v2, labels: {{version: v2}}}}\n  - {{name: v3, labels: {{version: v3}}}}\n"
        ));
        if rng.chance(15) {
            continue; // a host without a VirtualService
        }
        text.push_str(&format!(
            "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  hosts: [{name}]\n  http:\n"
        ));
        let n_rules = 1 + rng.below(6);
        for r in 0..n_rules {
            text.push_str(&format!("  - name: r{r}\n"));
            let last = r + 1 == n_rules;
            if !(last && rng.chance(50)) {
                text.push_str("    match:\n");
                for _ in 0..1 + rng.below(2) {
                    text.push_str(&match_entry(rng));
                }
            }
            text.push_str("    route:\n");
            let n_dest = 1 + rng.below(3);
            for d in 0..n_dest {
                let subset = ["v1", "v2", "v3"][(d + rng.below(3)) % 3];
                text.push_str(&format!(
                    "    - destination: {{host: {name}, subset: {subset}}}\n"
                ));
                if n_dest > 1 {
                    // At least one positive weight, so the total is never 0.
                    let w = if d == 0 {
                        1 + rng.below(4)
                    } else {
                        rng.below(4)
                    };
                    text.push_str(&format!("      weight: {w}\n"));
                }
            }
        }
    }
    text
}

struct Request {
    authority: String,
    method: &'static str,
    path: &'static str,
    query: Option<&'static str>,
    headers: Vec<(&'static str, &'static str)>,
}

fn random_request(rng: &mut Rng) -> Request {
    let (name, ns) = SERVICES[rng.below(SERVICES.len())];
    let authority = match rng.below(6) {
        0 => name.to_owned(),
        1 => format!("{name}.{ns}"),
        2 => format!("{name}.{ns}.svc.cluster.local"),
        3 => format!("{name}:80"),
        4 => format!("{}.{ns}.SVC.cluster.local:80", name.to_uppercase()),
        _ => "unknown.example.com".to_owned(),
    };
    let mut headers = Vec::new();
    if rng.chance(60) {
        headers.push((
            "x-user",
            ["alice", "bob", "admin-1", "carol", ""][rng.below(5)],
        ));
    }
    if rng.chance(30) {
        headers.push(("x-env", ["canary", "prod"][rng.below(2)]));
    }
    Request {
        authority,
        method: ["GET", "POST", "PUT"][rng.below(3)],
        path: [
            "/",
            "/health",
            "/api",
            "/api/v1/x",
            "/api/v2/y",
            "/static/a.css",
            "/static/b.js",
            "/other",
        ][rng.below(8)],
        query: [None, Some("debug=1"), Some("debug=0"), Some("a=b&debug")][rng.below(4)],
        headers,
    }
}

/// What the oracle and the table must agree on: VirtualService, rule, destinations.
type Outcome = Option<(String, u32, Vec<(String, Option<String>, u32)>)>;

fn string_holds(m: &StringMatch, value: &str) -> bool {
    match m {
        StringMatch::Exact(s) => value == s,
        StringMatch::Prefix(s) => value.starts_with(s.as_str()),
        StringMatch::Regex(r) => Matcher::new(r)
            .and_then(|m| m.full_match(value))
            .expect("the test's regexes are supported"),
    }
}

fn keyed_holds(matcher: &HeaderMatch, value: Option<&str>) -> bool {
    match (matcher, value) {
        (HeaderMatch::Present, v) => v.is_some(),
        (HeaderMatch::Match(m), Some(v)) => string_holds(m, v),
        (HeaderMatch::Match(_), None) => false,
    }
}

fn query_value<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

fn entry_holds(m: &HttpMatch, req: &Request) -> bool {
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    m.uri
        .as_ref()
        .is_none_or(|u| string_holds(&u.matcher, req.path))
        && m.method
            .as_ref()
            .is_none_or(|u| string_holds(&u.matcher, req.method))
        && m.headers
            .iter()
            .all(|k| keyed_holds(&k.matcher, header(&k.name)))
        && m.without_headers
            .iter()
            .all(|k| !keyed_holds(&k.matcher, header(&k.name)))
        && m.query_params
            .iter()
            .all(|k| keyed_holds(&k.matcher, query_value(req.query, &k.name)))
}

fn oracle(ir: &Ir, req: &Request) -> Outcome {
    let host = req
        .authority
        .rsplit_once(':')
        .map_or(req.authority.as_str(), |(h, _)| h)
        .to_ascii_lowercase();
    let vs = ir.virtual_services.iter().find(|vs| {
        vs.hosts.iter().any(|h| {
            let base = h.fqdn.trim_end_matches(".svc.cluster.local");
            let name = base.split('.').next().unwrap_or(base);
            host == h.fqdn || host == base || host == name || host == format!("{base}.svc")
        })
    })?;
    for rule in &vs.http {
        if !(rule.matches.is_empty() || rule.matches.iter().any(|m| entry_holds(m, req))) {
            continue;
        }
        let single = rule.route.len() == 1;
        let destinations = rule
            .route
            .iter()
            .map(|d| {
                let w = if single {
                    100
                } else {
                    d.weight.as_ref().map_or(0, |w| w.value) as u32
                };
                (
                    d.destination.host.fqdn.clone(),
                    d.destination.subset.as_ref().map(|s| s.value.clone()),
                    w,
                )
            })
            .filter(|(_, _, w)| *w > 0)
            .collect::<Vec<_>>();
        // What is left after dropping weight 0 shares by weight; one destination takes all.
        let destinations = if destinations.len() == 1 {
            destinations
                .into_iter()
                .map(|(h, s, _)| (h, s, 100))
                .collect()
        } else {
            destinations
        };
        return Some((
            format!("{}/{}", vs.meta.namespace, vs.meta.name),
            rule.index as u32,
            destinations,
        ));
    }
    None
}

fn executor(table: &Table<'_>, req: &Request) -> Outcome {
    let headers = HeaderList(&req.headers);
    let view = RequestView {
        authority: &req.authority,
        port: Some(80),
        method: req.method,
        path: req.path,
        query: req.query,
        scheme: "http",
        headers: &headers,
    };
    let Decision::Route(d) = table.decide(&view, 7) else {
        return None;
    };
    let single = d.route.destinations().len() == 1;
    let destinations = d
        .route
        .destinations()
        .map(|dest| {
            let c = dest.cluster();
            (
                c.host().to_owned(),
                c.subset().map(str::to_owned),
                if single { 100 } else { dest.weight() },
            )
        })
        .collect();
    Some((
        d.route.vs_name().to_owned(),
        d.route.rule_index(),
        destinations,
    ))
}

#[test]
fn compiled_tables_decide_like_the_istio_oracle() {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let (mut policies, mut requests, mut matched) = (0, 0, 0);
    for _ in 0..250 {
        let yaml = random_repo(&mut rng);
        let checked = check::check_sources([("repo.yaml", yaml.as_str())], &Settings::default());
        assert!(
            !checked.has_errors(),
            "the generator wrote an invalid policy:\n{yaml}\n{:?}",
            checked
                .diagnostics
                .iter()
                .map(|d| &d.message)
                .collect::<Vec<_>>()
        );
        let bytes = compile::build(&checked).unwrap();
        let aligned = mesh_table::AlignedBytes::new(&bytes);
        let table = Table::load(aligned.as_bytes()).unwrap();
        policies += 1;
        for _ in 0..120 {
            let req = random_request(&mut rng);
            let expected = oracle(&checked.ir, &req);
            let got = executor(&table, &req);
            assert_eq!(
                got, expected,
                "request {} {}{} {:?}\npolicy:\n{yaml}",
                req.method, req.authority, req.path, req.headers
            );
            requests += 1;
            matched += usize::from(expected.is_some());
        }
    }
    // The generator must exercise both outcomes, or the test proves little.
    assert!(
        matched > requests / 4 && matched < requests,
        "{matched} of {requests} matched"
    );
    assert_eq!(policies, 250);
}
