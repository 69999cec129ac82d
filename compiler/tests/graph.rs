//! `meshc graph`: the Bookinfo picture as DOT and Mermaid (snapshots), checked structurally
//! (every edge joins declared nodes, shares and markings are where the policy puts them),
//! escaping of hostile text, and determinism.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn meshc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshc"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("meshc runs")
}

fn graph(dir: &Path, args: &[&str]) -> String {
    let out = meshc(dir, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A DOT edge: (from, to, attributes).
fn dot_edges(dot: &str) -> Vec<(String, String, String)> {
    dot.lines()
        .filter_map(|l| {
            let (ends, attrs) = l.trim().split_once(" [")?;
            let (from, to) = ends.split_once(" -> ")?;
            Some((from.to_owned(), to.to_owned(), attrs.to_owned()))
        })
        .collect()
}

/// DOT node declarations: id -> label.
fn dot_nodes(dot: &str) -> Vec<(String, String)> {
    dot.lines()
        .filter_map(|l| {
            let l = l.trim();
            let (id, rest) = l.split_once(" [label=\"")?;
            if id.contains(' ') {
                return None;
            }
            let label = rest.split_once('"')?.0;
            Some((id.to_owned(), label.to_owned()))
        })
        .collect()
}

#[test]
fn bookinfo_dot() {
    let root = repo_root();
    let dot = graph(&root, &["graph", "policies/bookinfo", "--format", "dot"]);
    insta::with_settings!({ snapshot_path => "snapshots/graph", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("bookinfo-dot", dot);
    });

    assert!(dot.starts_with("// meshc graph"));
    assert!(dot.contains("digraph mesh {"));
    assert!(dot.trim_end().ends_with('}'));
    let nodes = dot_nodes(&dot);
    let ids: BTreeSet<&str> = nodes.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), nodes.len(), "node ids are unique");
    let edges = dot_edges(&dot);
    for (from, to, _) in &edges {
        assert!(
            ids.contains(from.as_str()) && ids.contains(to.as_str()),
            "{from} -> {to}"
        );
    }
    let label_of = |id: &str| nodes.iter().find(|(n, _)| n == id).unwrap().1.clone();
    // The A/B test: two edges from reviews, 50% each, to v2 and v3.
    let ab: Vec<_> = edges
        .iter()
        .filter(|(_, _, attrs)| attrs.contains("signed-in-ab-test"))
        .collect();
    assert_eq!(ab.len(), 2);
    for (from, _, attrs) in &ab {
        assert_eq!(label_of(from), "reviews");
        assert!(attrs.contains("end-user~/.+/\\n50%"), "{attrs}");
    }
    let targets: BTreeSet<String> = ab.iter().map(|(_, to, _)| label_of(to)).collect();
    assert_eq!(targets, BTreeSet::from(["v2".to_owned(), "v3".to_owned()]));
    // Faults are red and dashed with the fault in the label; plain edges are not.
    let delay = edges.iter().find(|e| e.2.contains("jason-delay")).unwrap();
    assert!(
        delay.2.contains("delay 7s (100%)")
            && delay.2.contains("style=dashed")
            && delay.2.contains("#dc2626")
    );
    let abort = edges.iter().find(|e| e.2.contains("tester-abort")).unwrap();
    assert!(abort.2.contains("abort HTTP 500 (50%)") && abort.2.contains("style=dashed"));
    // Retries set by the policy are bold and labelled; Istio's default is left out.
    let retried = edges
        .iter()
        .find(|e| label_of(&e.0) == "ratings" && e.2.contains("default"))
        .unwrap();
    assert!(
        retried
            .2
            .contains("retries 3 (2s each) on 5xx,connect-failure"),
        "{}",
        retried.2
    );
    assert!(retried.2.contains("timeout 10s") && retried.2.contains("penwidth"));
    let plain = edges
        .iter()
        .find(|e| e.2.starts_with("label=\"jason\\n"))
        .unwrap();
    assert!(
        !plain.2.contains("retries")
            && !plain.2.contains("penwidth")
            && !plain.2.contains("dashed")
    );
}

#[test]
fn bookinfo_mermaid() {
    let root = repo_root();
    let mermaid = graph(
        &root,
        &["graph", "policies/bookinfo", "--format", "mermaid"],
    );
    insta::with_settings!({ snapshot_path => "snapshots/graph", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("bookinfo-mermaid", mermaid);
    });
    check_mermaid_syntax(&mermaid);
    assert!(mermaid.contains("-->|\"signed-in-ab-test<br/>end-user~/.+/<br/>50%\"|"));
    // The two fault edges are styled red.
    let fault_style = mermaid
        .lines()
        .find(|l| l.contains("stroke:#dc2626"))
        .expect("a link style for faults");
    let links = mermaid
        .lines()
        .filter(|l| l.contains("|\""))
        .collect::<Vec<_>>();
    let styled: Vec<usize> = fault_style
        .trim()
        .trim_start_matches("linkStyle ")
        .split_once(' ')
        .unwrap()
        .0
        .split(',')
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(styled.len(), 2);
    for idx in styled {
        assert!(
            links[idx].contains("delay") || links[idx].contains("abort"),
            "{}",
            links[idx]
        );
    }
}

/// The subset of Mermaid flowchart syntax the renderer writes: every line is one of these
/// forms, subgraphs are balanced, and quoted strings hold no raw quote.
fn check_mermaid_syntax(text: &str) {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("flowchart LR"));
    let mut depth = 0;
    let mut declared = BTreeSet::new();
    for line in lines {
        let l = line.trim();
        let quoted_ok = |s: &str| {
            let inner = s.strip_prefix('"').and_then(|s| s.strip_suffix('"'));
            inner.is_some_and(|i| !i.contains('"'))
        };
        if let Some(rest) = l.strip_prefix("subgraph ") {
            let (id, label) = rest.split_once('[').unwrap();
            assert!(id.starts_with('s') && id[1..].parse::<u32>().is_ok(), "{l}");
            assert!(quoted_ok(label.strip_suffix(']').unwrap()), "{l}");
            depth += 1;
        } else if l == "end" {
            depth -= 1;
            assert!(depth >= 0);
        } else if l.starts_with("classDef ")
            || l.starts_with("class ")
            || l.starts_with("linkStyle ")
        {
        } else {
            let id_end = l.find(|c: char| !c.is_ascii_alphanumeric()).unwrap();
            let (id, rest) = l.split_at(id_end);
            assert!(id.starts_with('n') && id[1..].parse::<u32>().is_ok(), "{l}");
            if let Some(rest) = rest.strip_prefix(' ') {
                // An edge: `nA -->|"..."| nB`.
                let (arrow, rest) = rest.split_once('|').unwrap();
                assert!(["-->", "==>", "-.->"].contains(&arrow), "{l}");
                let (label, to) = rest.rsplit_once("| ").unwrap();
                assert!(quoted_ok(label), "{l}");
                assert!(declared.contains(id) && declared.contains(to), "{l}");
            } else {
                // A node: `nA["..."]`, `nA(["..."])` or `nA>"..."]`.
                let label = rest
                    .strip_prefix("([")
                    .and_then(|s| s.strip_suffix("])"))
                    .or_else(|| rest.strip_prefix('[').and_then(|s| s.strip_suffix(']')))
                    .or_else(|| rest.strip_prefix('>').and_then(|s| s.strip_suffix(']')))
                    .unwrap_or_else(|| panic!("node shape: {l}"));
                assert!(quoted_ok(label), "{l}");
                declared.insert(id.to_owned());
            }
        }
    }
    assert_eq!(depth, 0);
}

#[test]
fn text_from_the_policy_is_escaped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("vs.yaml"),
        r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: api
spec:
  hosts:
  - api
  http:
  - name: 'odd "name" | <b>#1</b> & \x'
    match:
    - headers:
        x-weird:
          exact: 'a"b|c#d<e>\f'
    route:
    - destination:
        host: api
  - redirect:
      uri: /moved
---
apiVersion: v1
kind: Service
metadata:
  name: api
spec:
  ports:
  - name: http
    port: 8080
"#,
    )
    .unwrap();
    let mermaid = graph(dir.path(), &["graph", ".", "--format", "mermaid"]);
    check_mermaid_syntax(&mermaid);
    assert!(
        mermaid.contains("odd #34;name#34; #124; #60;b#62;#35;1#60;/b#62; #38; \\x"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("x-weird=a#34;b#124;c#35;d#60;e#62;\\f"),
        "{mermaid}"
    );
    // The redirect gets its own node.
    assert!(
        mermaid.contains(">\"redirect 301 to /moved\"]"),
        "{mermaid}"
    );

    let dot = graph(dir.path(), &["graph", "."]);
    assert!(dot.contains(r#"odd \"name\" | <b>#1</b> & \\x"#), "{dot}");
    assert!(dot.contains(r#"x-weird=a\"b|c#d<e>\\f"#), "{dot}");
    // Every quote inside a DOT string is escaped: each line's strings are closed.
    for line in dot.lines() {
        let mut in_string = false;
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match (in_string, c) {
                (true, '\\') => {
                    chars.next();
                }
                (_, '"') => in_string = !in_string,
                _ => {}
            }
        }
        assert!(!in_string, "{line}");
    }
}

#[test]
fn output_is_deterministic_and_the_same_for_the_artifact() {
    let root = repo_root();
    let dir = tempfile::tempdir().unwrap();
    // The Bookinfo files under other names and in one directory level deeper.
    let copy = dir.path().join("copy/nested");
    std::fs::create_dir_all(&copy).unwrap();
    for (i, entry) in std::fs::read_dir(root.join("policies/bookinfo"))
        .unwrap()
        .enumerate()
    {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(format!("z{}-{i}.yaml", 9 - i))).unwrap();
    }
    let artifact = dir.path().join("bookinfo.mtbl");
    let out = meshc(
        &root,
        &[
            "build",
            "policies/bookinfo",
            "-o",
            artifact.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    for format in ["dot", "mermaid"] {
        let first = graph(&root, &["graph", "policies/bookinfo", "--format", format]);
        let again = graph(&root, &["graph", "policies/bookinfo", "--format", format]);
        let renamed = graph(dir.path(), &["graph", "copy", "--format", format]);
        let from_artifact = graph(dir.path(), &["graph", "bookinfo.mtbl", "--format", format]);
        assert_eq!(first, again);
        assert_eq!(first, renamed);
        assert_eq!(first, from_artifact);
    }
}

#[test]
fn a_policy_with_errors_draws_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("vs.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: a\nspec:\n  hosts: [a]\n  http:\n  - retires: {attempts: 3}\n    route: [{destination: {host: a}}]\n",
    )
    .unwrap();
    let out = meshc(dir.path(), &["graph", "."]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("retires"));
    let out = meshc(dir.path(), &["graph", "missing"]);
    assert_eq!(out.status.code(), Some(2));
}

/// The README's picture is rendered from `docs/bookinfo-graph.dot`; it must be what `meshc graph`
/// draws today.
#[test]
fn the_documented_bookinfo_graph_is_current() {
    let root = repo_root();
    let dot = graph(&root, &["graph", "policies/bookinfo"]);
    let committed = std::fs::read_to_string(root.join("docs/bookinfo-graph.dot")).unwrap();
    assert!(
        committed == dot,
        "docs/bookinfo-graph.dot is out of date; regenerate it and the picture with\n  \
         meshc graph policies/bookinfo > docs/bookinfo-graph.dot\n  \
         dot -Tsvg docs/bookinfo-graph.dot -o docs/bookinfo-graph.svg"
    );
}
