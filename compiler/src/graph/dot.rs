//! Graphviz DOT output of `meshc graph` (`dot -Tsvg` renders it).

use std::fmt::Write as _;

use super::{Edge, EdgeStyle, Graph, NodeKind};

/// A DOT string literal: quotes and backslashes escaped, lines joined with `\n`.
fn quoted(lines: &[String]) -> String {
    let escaped: Vec<String> = lines
        .iter()
        .map(|l| {
            l.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace(['\n', '\r'], " ")
        })
        .collect();
    format!("\"{}\"", escaped.join("\\n"))
}

fn node_line(graph: &Graph, id: usize, indent: &str) -> String {
    let node = &graph.nodes[id];
    let shape = match node.kind {
        NodeKind::Service => {
            "shape=box, style=\"rounded,filled,bold\", fillcolor=\"#dbeafe\", color=\"#1e3a8a\""
        }
        NodeKind::Subset => "shape=ellipse, style=filled, fillcolor=\"#f1f5f9\"",
        NodeKind::Terminal => "shape=note, style=filled, fillcolor=\"#fef9c3\"",
    };
    format!(
        "{indent}n{id} [label={}, {shape}];\n",
        quoted(std::slice::from_ref(&node.label))
    )
}

fn edge_line(e: &Edge) -> String {
    let mut attrs = vec![format!("label={}", quoted(&e.lines))];
    match e.style {
        EdgeStyle::Normal => {}
        EdgeStyle::Fault => {
            attrs.push("color=\"#dc2626\", fontcolor=\"#dc2626\", style=dashed".to_owned())
        }
        EdgeStyle::Mirror => attrs.push("color=\"#6b7280\", style=dotted".to_owned()),
    }
    if e.retries {
        attrs.push("penwidth=2.5".to_owned());
    }
    format!("  n{} -> n{} [{}];\n", e.from, e.to, attrs.join(", "))
}

pub(super) fn render(graph: &Graph) -> String {
    let mut out = String::from(
        "// meshc graph: services, their subsets and the routes between them.\n\
         // Red dashed edges inject faults; bold edges retry beyond Istio's default.\n\
         digraph mesh {\n\
         \x20 graph [rankdir=LR, fontname=\"Helvetica\", fontsize=11, nodesep=0.35, ranksep=1.6];\n\
         \x20 node [fontname=\"Helvetica\", fontsize=11];\n\
         \x20 edge [fontname=\"Helvetica\", fontsize=9, color=\"#334155\"];\n",
    );
    for (idx, group) in graph.groups.iter().enumerate() {
        let _ = writeln!(out, "  subgraph cluster_{idx} {{");
        let _ = writeln!(
            out,
            "    label={}; labeljust=l; style=\"rounded,dashed\"; color=\"#94a3b8\";",
            quoted(std::slice::from_ref(&group.label))
        );
        for &id in &group.nodes {
            out.push_str(&node_line(graph, id, "    "));
        }
        out.push_str("  }\n");
    }
    for &id in &graph.loose {
        out.push_str(&node_line(graph, id, "  "));
    }
    for e in &graph.edges {
        out.push_str(&edge_line(e));
    }
    out.push_str("}\n");
    out
}
