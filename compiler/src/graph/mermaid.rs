//! Mermaid `flowchart` output of `meshc graph` (GitHub renders it in Markdown).

use std::fmt::Write as _;

use super::{EdgeStyle, Graph, NodeKind};

/// Text for a quoted Mermaid string: characters Mermaid would read as syntax or HTML become
/// entity codes (`#34;`), lines are joined with `<br/>`.
fn text(lines: &[String]) -> String {
    let escaped: Vec<String> = lines
        .iter()
        .map(|l| {
            let mut out = String::with_capacity(l.len());
            for c in l.chars() {
                match c {
                    '#' => out.push_str("#35;"),
                    '"' => out.push_str("#34;"),
                    '&' => out.push_str("#38;"),
                    '<' => out.push_str("#60;"),
                    '>' => out.push_str("#62;"),
                    '|' => out.push_str("#124;"),
                    '`' => out.push_str("#96;"),
                    '\n' | '\r' => out.push(' '),
                    c => out.push(c),
                }
            }
            out
        })
        .collect();
    format!("\"{}\"", escaped.join("<br/>"))
}

fn node(graph: &Graph, id: usize) -> String {
    let node = &graph.nodes[id];
    let label = text(std::slice::from_ref(&node.label));
    match node.kind {
        NodeKind::Service => format!("n{id}[{label}]"),
        NodeKind::Subset => format!("n{id}([{label}])"),
        NodeKind::Terminal => format!("n{id}>{label}]"),
    }
}

pub(super) fn render(graph: &Graph) -> String {
    let mut out = String::from("flowchart LR\n");
    for (idx, group) in graph.groups.iter().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph s{idx}[{}]",
            text(std::slice::from_ref(&group.label))
        );
        for &id in &group.nodes {
            let _ = writeln!(out, "    {}", node(graph, id));
        }
        out.push_str("  end\n");
    }
    for &id in &graph.loose {
        let _ = writeln!(out, "  {}", node(graph, id));
    }
    let mut fault_links = Vec::new();
    let mut retry_links = Vec::new();
    for (idx, e) in graph.edges.iter().enumerate() {
        let arrow = match (e.style, e.retries) {
            (EdgeStyle::Mirror, _) => "-.->",
            (_, true) => "==>",
            _ => "-->",
        };
        let _ = writeln!(out, "  n{} {arrow}|{}| n{}", e.from, text(&e.lines), e.to);
        if e.style == EdgeStyle::Fault {
            fault_links.push(idx.to_string());
        } else if e.retries {
            retry_links.push(idx.to_string());
        }
    }
    let services: Vec<String> = (0..graph.nodes.len())
        .filter(|&id| graph.nodes[id].kind == NodeKind::Service)
        .map(|id| format!("n{id}"))
        .collect();
    out.push_str("  classDef service fill:#dbeafe,stroke:#1e3a8a,stroke-width:2px\n");
    if !services.is_empty() {
        let _ = writeln!(out, "  class {} service", services.join(","));
    }
    if !fault_links.is_empty() {
        let _ = writeln!(
            out,
            "  linkStyle {} stroke:#dc2626,color:#dc2626,stroke-dasharray:6 4",
            fault_links.join(",")
        );
    }
    if !retry_links.is_empty() {
        let _ = writeln!(
            out,
            "  linkStyle {} stroke-width:3px",
            retry_links.join(",")
        );
    }
    out
}
