//! The three forms of `meshc diff`: human (terminal), json (tools) and markdown (a
//! pull-request comment).

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use super::{Change, Counts, Diff, HostDiff, RouteDiff, Status};
use crate::diff::model::Route;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
    Markdown,
}

/// Renders a diff; `old` and `new` name the sides (paths, or `REV:path`).
pub fn render(format: OutputFormat, diff: &Diff, old: &str, new: &str) -> String {
    match format {
        OutputFormat::Human => human(diff, old, new),
        OutputFormat::Json => {
            let mut text = serde_json::to_string_pretty(&to_json(diff, old, new))
                .unwrap_or_else(|_| "{}".to_owned());
            text.push('\n');
            text
        }
        OutputFormat::Markdown => markdown(diff, old, new),
    }
}

/// `routes: 1 added, 2 changed; clusters: 1 added`.
pub fn summary_line(counts: &Counts) -> String {
    let groups = [
        (
            "hosts",
            [
                ("added", counts.hosts_added),
                ("removed", counts.hosts_removed),
                ("changed", counts.hosts_changed),
                ("moved", 0),
            ],
        ),
        (
            "routes",
            [
                ("added", counts.routes_added),
                ("removed", counts.routes_removed),
                ("changed", counts.routes_changed),
                ("moved", counts.routes_moved),
            ],
        ),
        (
            "clusters",
            [
                ("added", counts.clusters_added),
                ("removed", counts.clusters_removed),
                ("changed", counts.clusters_changed),
                ("moved", 0),
            ],
        ),
    ];
    let parts: Vec<String> = groups
        .iter()
        .filter_map(|(what, items)| {
            let items: Vec<String> = items
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(verb, n)| format!("{n} {verb}"))
                .collect();
            (!items.is_empty()).then(|| format!("{what}: {}", items.join(", ")))
        })
        .collect();
    parts.join("; ")
}

fn position(p: Option<usize>) -> String {
    p.map_or_else(String::new, |p| (p + 1).to_string())
}

fn host_heading(h: &HostDiff) -> String {
    format!("{} (VirtualService {})", h.title, h.name)
}

fn route_summary(r: &RouteDiff) -> String {
    r.new
        .as_ref()
        .or(r.old.as_ref())
        .map(Route::summary)
        .unwrap_or_default()
}

fn human(diff: &Diff, old: &str, new: &str) -> String {
    let mut out = String::new();
    if diff.is_empty() {
        let _ = writeln!(out, "{old} -> {new}: no change in traffic behaviour");
        return out;
    }
    let _ = writeln!(out, "{old} -> {new}");
    for h in &diff.hosts {
        let _ = writeln!(
            out,
            "\n{} {}: {}",
            h.status.marker(),
            host_heading(h),
            h.status.as_str()
        );
        for c in &h.changes {
            let _ = writeln!(out, "    {}: {} -> {}", c.field, c.old.text, c.new.text);
        }
        for r in &h.routes {
            match r.status {
                Status::Added => {
                    let _ = writeln!(
                        out,
                        "  + {} at position {}: {}",
                        r.label,
                        position(r.new_position),
                        route_summary(r)
                    );
                }
                Status::Removed => {
                    let _ = writeln!(
                        out,
                        "  - {} at position {}: {}",
                        r.label,
                        position(r.old_position),
                        route_summary(r)
                    );
                }
                Status::Changed | Status::Moved => {
                    let _ = writeln!(out, "  {} {}", r.status.marker(), r.label);
                    for c in &r.changes {
                        let _ =
                            writeln!(out, "      {}: {} -> {}", c.field, c.old.text, c.new.text);
                    }
                    if r.moved {
                        let _ = writeln!(
                            out,
                            "      order: position {} -> {} (first match wins)",
                            position(r.old_position),
                            position(r.new_position)
                        );
                    }
                }
            }
        }
    }
    if !diff.clusters.is_empty() {
        let _ = writeln!(out, "\nclusters:");
        for c in &diff.clusters {
            match c.status {
                Status::Added | Status::Removed => {
                    let _ = writeln!(out, "  {} {}: {}", c.status.marker(), c.name, c.summary);
                }
                Status::Changed | Status::Moved => {
                    let _ = writeln!(out, "  ~ {}", c.name);
                    for ch in &c.changes {
                        let _ = writeln!(
                            out,
                            "      {}: {} -> {}",
                            ch.field, ch.old.text, ch.new.text
                        );
                    }
                }
            }
        }
    }
    let _ = writeln!(out, "\n{}", summary_line(&diff.counts()));
    out
}

/// A markdown table cell holding a value as code: pipes escaped, newlines as `<br>`.
fn cell(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    let text = text.replace('|', "\\|").replace('\n', "<br>");
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

/// A markdown table cell holding prose that may contain code spans already.
fn prose(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', "<br>")
}

fn markdown(diff: &Diff, old: &str, new: &str) -> String {
    let mut out = String::from("### meshc diff: traffic changes\n\n");
    if diff.is_empty() {
        let _ = writeln!(
            out,
            "{} → {}: no change in traffic behaviour.",
            cell(old),
            cell(new)
        );
        return out;
    }
    let _ = writeln!(
        out,
        "{} → {}: {}",
        cell(old),
        cell(new),
        summary_line(&diff.counts())
    );
    for h in &diff.hosts {
        let _ = writeln!(
            out,
            "\n#### {} {} (VirtualService {}){}\n",
            h.status.marker(),
            cell(&h.title),
            cell(&h.name),
            match h.status {
                Status::Added => ": added",
                Status::Removed => ": removed",
                _ => "",
            }
        );
        let _ = writeln!(
            out,
            "| | route | change | before | after |\n|---|---|---|---|---|"
        );
        for c in &h.changes {
            let _ = writeln!(
                out,
                "| ~ | (host) | {} | {} | {} |",
                c.field,
                cell(&c.old.text),
                cell(&c.new.text)
            );
        }
        for r in &h.routes {
            let label = prose(&r.label);
            match r.status {
                Status::Added => {
                    let _ = writeln!(
                        out,
                        "| + | {label} | added at position {} | | {} |",
                        position(r.new_position),
                        cell(&route_summary(r))
                    );
                }
                Status::Removed => {
                    let _ = writeln!(
                        out,
                        "| - | {label} | removed from position {} | {} | |",
                        position(r.old_position),
                        cell(&route_summary(r))
                    );
                }
                Status::Changed | Status::Moved => {
                    for c in &r.changes {
                        let _ = writeln!(
                            out,
                            "| ~ | {label} | {} | {} | {} |",
                            c.field,
                            cell(&c.old.text),
                            cell(&c.new.text)
                        );
                    }
                    if r.moved {
                        let _ = writeln!(
                            out,
                            "| > | {label} | order (first match wins) | position {} | position {} |",
                            position(r.old_position),
                            position(r.new_position)
                        );
                    }
                }
            }
        }
    }
    if !diff.clusters.is_empty() {
        let _ = writeln!(
            out,
            "\n#### Clusters\n\n| | cluster | change | before | after |\n|---|---|---|---|---|"
        );
        for c in &diff.clusters {
            match c.status {
                Status::Added => {
                    let _ = writeln!(
                        out,
                        "| + | {} | added | | {} |",
                        cell(&c.name),
                        cell(&c.summary)
                    );
                }
                Status::Removed => {
                    let _ = writeln!(
                        out,
                        "| - | {} | removed | {} | |",
                        cell(&c.name),
                        cell(&c.summary)
                    );
                }
                Status::Changed | Status::Moved => {
                    for ch in &c.changes {
                        let _ = writeln!(
                            out,
                            "| ~ | {} | {} | {} | {} |",
                            cell(&c.name),
                            ch.field,
                            cell(&ch.old.text),
                            cell(&ch.new.text)
                        );
                    }
                }
            }
        }
    }
    out
}

fn change_json(c: &Change) -> Value {
    json!({
        "field": c.field,
        "old": c.old.value,
        "new": c.new.value,
        "old_text": c.old.text,
        "new_text": c.new.text,
    })
}

/// Every aspect of a route as one object (`{"match": ..., "weights": ...}`).
fn route_json(route: &Route) -> Value {
    let mut map = Map::new();
    for a in route.aspects() {
        map.insert(a.field.replace(' ', "_"), a.value);
    }
    Value::Object(map)
}

fn to_json(diff: &Diff, old: &str, new: &str) -> Value {
    let hosts: Vec<Value> = diff
        .hosts
        .iter()
        .map(|h| {
            let routes: Vec<Value> = h
                .routes
                .iter()
                .map(|r| {
                    let route = r.new.as_ref().or(r.old.as_ref());
                    let full = matches!(r.status, Status::Added | Status::Removed);
                    json!({
                        "route": route.and_then(|r| r.name.clone()),
                        "rule": route.map(|r| r.rule_index),
                        "label": r.label,
                        "status": r.status.as_str(),
                        "old_position": r.old_position.map(|p| p + 1),
                        "new_position": r.new_position.map(|p| p + 1),
                        "moved": r.moved,
                        "changes": r.changes.iter().map(change_json).collect::<Vec<_>>(),
                        "summary": if full { json!(route_summary(r)) } else { Value::Null },
                        "old": if full { r.old.as_ref().map_or(Value::Null, route_json) } else { Value::Null },
                        "new": if full { r.new.as_ref().map_or(Value::Null, route_json) } else { Value::Null },
                    })
                })
                .collect();
            json!({
                "name": h.name,
                "host": h.title,
                "status": h.status.as_str(),
                "changes": h.changes.iter().map(change_json).collect::<Vec<_>>(),
                "routes": routes,
            })
        })
        .collect();
    let clusters: Vec<Value> = diff
        .clusters
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "status": c.status.as_str(),
                "summary": if c.summary.is_empty() { Value::Null } else { json!(c.summary) },
                "changes": c.changes.iter().map(change_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    let c = diff.counts();
    json!({
        "equal": diff.is_empty(),
        "old": old,
        "new": new,
        "hosts": hosts,
        "clusters": clusters,
        "summary": {
            "hosts_added": c.hosts_added,
            "hosts_removed": c.hosts_removed,
            "hosts_changed": c.hosts_changed,
            "routes_added": c.routes_added,
            "routes_removed": c.routes_removed,
            "routes_changed": c.routes_changed,
            "routes_moved": c.routes_moved,
            "clusters_added": c.clusters_added,
            "clusters_removed": c.clusters_removed,
            "clusters_changed": c.clusters_changed,
        },
    })
}
