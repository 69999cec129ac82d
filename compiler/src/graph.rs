//! `meshc graph`: the mesh as a picture, in Graphviz DOT or a Mermaid flowchart.
//!
//! Drawn from the same model as `meshc diff` (a loaded table): one box per service host, with
//! the VirtualService that answers for it as a node and the subsets its routes send to as
//! nodes inside; one edge per (route, destination), labelled with the route, a short form of
//! its match and the share of traffic (`50%`). Faults turn an edge red and dashed and add the
//! delay or abort to the label; retries other than Istio's default make it bold, with the
//! policy in the label; mirrors are dotted edges. Output is deterministic: services sorted by
//! host, subsets by name, edges in first-match order.

mod dot;
mod mermaid;

use std::collections::BTreeMap;

use crate::diff::model::{
    Action, Host, Model, Route, Target, duration, matches_text, per_million, percent, short_host,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Dot,
    Mermaid,
}

/// Renders the graph of a model.
pub fn render(model: &Model, format: Format) -> String {
    let graph = Graph::of(model);
    match format {
        Format::Dot => dot::render(&graph),
        Format::Mermaid => mermaid::render(&graph),
    }
}

/// Node ids are indexes into `Graph::nodes`.
type NodeId = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NodeKind {
    /// A VirtualService: where a host's routes start.
    Service,
    /// A destination: a subset of a service, or all of its endpoints.
    Subset,
    /// A redirect or a direct response.
    Terminal,
}

#[derive(Clone, Debug)]
struct Node {
    kind: NodeKind,
    label: String,
}

/// A service host and the nodes drawn inside its box.
#[derive(Clone, Debug)]
struct Group {
    label: String,
    nodes: Vec<NodeId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EdgeStyle {
    Normal,
    /// A fault (delay or abort) on the route.
    Fault,
    Mirror,
}

#[derive(Clone, Debug)]
struct Edge {
    from: NodeId,
    to: NodeId,
    lines: Vec<String>,
    style: EdgeStyle,
    /// Retries other than Istio's default.
    retries: bool,
}

#[derive(Clone, Debug, Default)]
struct Graph {
    nodes: Vec<Node>,
    groups: Vec<Group>,
    /// Nodes outside every group (terminals, hosts that are not Kubernetes services).
    loose: Vec<NodeId>,
    edges: Vec<Edge>,
}

/// Labels longer than this are cut (the diff shows them in full).
const MAX_LINE: usize = 48;

fn cut(text: &str) -> String {
    if text.chars().count() <= MAX_LINE {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(MAX_LINE - 3).collect();
        cut.push_str("...");
        cut
    }
}

/// The namespace to leave out of host names: the one every Kubernetes service host shares,
/// if there is one.
fn common_namespace(model: &Model) -> String {
    let mut namespaces: Vec<String> = Vec::new();
    let mut note = |host: &str| {
        if let Some(base) = host.strip_suffix(".svc.cluster.local") {
            let ns = base.split_once('.').map_or("", |(_, ns)| ns);
            if !namespaces.iter().any(|n| n == ns) {
                namespaces.push(ns.to_owned());
            }
        }
    };
    for h in &model.hosts {
        for d in h.primary_domains() {
            note(d);
        }
        for r in &h.routes {
            for t in targets(r) {
                note(&t.host);
            }
        }
    }
    match namespaces.as_slice() {
        [one] => one.clone(),
        _ => String::new(),
    }
}

fn targets(route: &Route) -> Vec<&Target> {
    let mut out: Vec<&Target> = match &route.action {
        Action::Forward(splits) => splits.iter().map(|s| &s.target).collect(),
        _ => Vec::new(),
    };
    out.extend(route.mirrors.iter().map(|m| &m.target));
    out
}

/// The destination node's key: host, subset, port (the cluster name says the same, but a
/// destination port overrides the cluster's).
type TargetKey = (String, Option<String>, Option<u16>);

fn target_key(t: &Target) -> TargetKey {
    (t.host.clone(), t.subset.clone(), t.port)
}

impl Graph {
    fn of(model: &Model) -> Graph {
        let ns = common_namespace(model);
        let mut graph = Graph::default();

        // Service boxes: every destination host and every host a VirtualService answers for.
        let mut boxes: BTreeMap<String, (Option<usize>, Vec<TargetKey>)> = BTreeMap::new();
        for (idx, h) in model.hosts.iter().enumerate() {
            if let Some(first) = h.primary_domains().first() {
                let entry = boxes.entry((*first).to_owned()).or_default();
                if entry.0.is_none() {
                    entry.0 = Some(idx);
                }
            }
            for r in &h.routes {
                for t in targets(r) {
                    boxes
                        .entry(t.host.clone())
                        .or_default()
                        .1
                        .push(target_key(t));
                }
            }
        }
        let mut service_node: Vec<Option<NodeId>> = vec![None; model.hosts.len()];
        let mut target_node: BTreeMap<TargetKey, NodeId> = BTreeMap::new();
        for (host, (vs, mut keys)) in boxes {
            keys.sort();
            keys.dedup();
            let mut group = Group {
                label: short_host(&host, &ns),
                nodes: Vec::new(),
            };
            if let Some(idx) = vs {
                let id = graph.node(NodeKind::Service, service_label(&model.hosts[idx], &ns));
                service_node[idx] = Some(id);
                group.nodes.push(id);
            }
            for key in &keys {
                let mut label = key.1.clone().unwrap_or_else(|| "all endpoints".to_owned());
                // The port only when the subset is reached on several.
                let several_ports = keys.iter().any(|k| k.1 == key.1 && k.2 != key.2);
                if let (true, Some(port)) = (several_ports, key.2) {
                    label.push_str(&format!(" :{port}"));
                }
                let id = graph.node(NodeKind::Subset, label);
                group.nodes.push(id);
                target_node.insert(key.clone(), id);
            }
            graph.groups.push(group);
        }
        // A VirtualService without hosts of its own (none in practice) still gets a node.
        for (idx, h) in model.hosts.iter().enumerate() {
            if service_node[idx].is_none() {
                let id = graph.node(NodeKind::Service, service_label(h, &ns));
                graph.loose.push(id);
                service_node[idx] = Some(id);
            }
        }

        for (idx, h) in model.hosts.iter().enumerate() {
            let Some(from) = service_node[idx] else {
                continue;
            };
            for r in &h.routes {
                graph.route_edges(from, r, &target_node);
            }
        }
        graph
    }

    fn node(&mut self, kind: NodeKind, label: String) -> NodeId {
        self.nodes.push(Node { kind, label });
        self.nodes.len() - 1
    }

    fn route_edges(&mut self, from: NodeId, r: &Route, target_node: &BTreeMap<TargetKey, NodeId>) {
        let mut head = vec![match &r.name {
            Some(name) => cut(name),
            None => format!("rule {}", r.rule_index),
        }];
        let matched = matches_text(&r.matches);
        if matched != "any request" {
            head.push(cut(&matched));
        }
        let mut tail = Vec::new();
        if let Some(d) = r.delay {
            tail.push(format!(
                "delay {} ({})",
                duration(d.ms),
                per_million(d.per_million)
            ));
        }
        if let Some(a) = &r.abort {
            tail.push(format!("abort {} ({})", a.kind, per_million(a.per_million)));
        }
        if let Some(ms) = r.timeout_ms {
            tail.push(format!("timeout {}", duration(ms)));
        }
        let retries = match &r.retries {
            Some(policy) if !policy.is_istio_default() => {
                let mut text = format!("retries {}", policy.attempts);
                if let Some(ms) = policy.per_try_timeout_ms {
                    text.push_str(&format!(" ({} each)", duration(ms)));
                }
                text.push_str(&format!(" on {}", policy.retry_on.join(",")));
                tail.push(cut(&text));
                true
            }
            // `attempts: 0` turns them off: worth seeing.
            None => {
                tail.push("no retries".to_owned());
                false
            }
            Some(_) => false,
        };
        let style = if r.delay.is_some() || r.abort.is_some() {
            EdgeStyle::Fault
        } else {
            EdgeStyle::Normal
        };
        let mut edge = |to: NodeId, middle: Option<String>| {
            let mut lines = head.clone();
            lines.extend(middle);
            lines.extend(tail.iter().cloned());
            self.edges.push(Edge {
                from,
                to,
                lines,
                style,
                retries,
            });
        };
        match &r.action {
            Action::Forward(splits) => {
                for s in splits {
                    if let Some(&to) = target_node.get(&target_key(&s.target)) {
                        edge(to, Some(percent(s.percent)));
                    }
                }
            }
            Action::Redirect(_) | Action::Respond { .. } => {
                let to = self.node(NodeKind::Terminal, cut(&r.action_text()));
                self.loose.push(to);
                let mut lines = head.clone();
                lines.extend(tail.iter().cloned());
                self.edges.push(Edge {
                    from,
                    to,
                    lines,
                    style,
                    retries,
                });
            }
        }
        for m in &r.mirrors {
            if let Some(&to) = target_node.get(&target_key(&m.target)) {
                self.edges.push(Edge {
                    from,
                    to,
                    lines: vec![
                        head[0].clone(),
                        format!("mirror {}", per_million(m.per_million)),
                    ],
                    style: EdgeStyle::Mirror,
                    retries: false,
                });
            }
        }
    }
}

fn service_label(h: &Host, ns: &str) -> String {
    let names: Vec<String> = h
        .primary_domains()
        .into_iter()
        .map(|d| short_host(d, ns))
        .collect();
    if names.is_empty() {
        h.name.clone()
    } else {
        names.join(", ")
    }
}
