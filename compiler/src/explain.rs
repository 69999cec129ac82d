//! Explain: what a compiled table holds (`meshc inspect`) and what it does with one request
//! (`meshc route`), computed by the executor the proxy runs.

use std::fmt::Write as _;

use mesh_table::{
    Abort, ActionView, Decision, HeaderList, LoadBalancer, RequestView, Resolution, RouteView,
    Table,
};
use serde_json::{Value, json};

use crate::sha256::hex;

/// The request `meshc route` asks about.
#[derive(Clone, Debug, Default)]
pub struct RouteQuery {
    pub host: String,
    pub port: Option<u16>,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

/// The decision as the json contract states it.
pub fn route_json(table: &Table<'_>, query: &RouteQuery) -> Value {
    let (path, query_string) = match query.path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (query.path.as_str(), None),
    };
    let pairs: Vec<(&str, &str)> = query
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let headers = HeaderList(&pairs);
    let request = RequestView {
        authority: &query.host,
        port: query.port,
        method: &query.method,
        path,
        query: query_string,
        scheme: "http",
        headers: &headers,
    };
    let decision = table.decide(&request, 0);
    let Decision::Route(decided) = decision else {
        return json!({
            "matched": false,
            "virtual_service": match decision { Decision::NoRoute { virtual_host } => json!(virtual_host.name()), _ => Value::Null },
            "rule": Value::Null,
            "rule_name": Value::Null,
            "action": Value::Null,
            "destinations": [],
            "fault": Value::Null,
            "retries": Value::Null,
            "timeout_ms": Value::Null,
        });
    };
    route_view_json(&decided.route)
}

fn route_view_json(route: &RouteView<'_>) -> Value {
    let action = match route.action() {
        ActionView::Route => "route",
        ActionView::Redirect(_) => "redirect",
        ActionView::DirectResponse { .. } => "direct_response",
    };
    let destinations: Vec<Value> = route
        .destinations()
        .map(|d| {
            let cluster = d.cluster();
            json!({
                "host": cluster.host(),
                "subset": cluster.subset(),
                "port": d.port().or(cluster.port()),
                "weight": if route.destinations().len() == 1 { 100 } else { d.weight() },
            })
        })
        .collect();
    let fault = route.fault().map(|f| {
        json!({
            "delay_ms": f.delay.map(|(ms, _)| ms),
            "delay_percent": f.delay.map(|(_, ppm)| f64::from(ppm) / 10_000.0),
            "abort_status": f.abort.and_then(|(a, _)| match a { Abort::HttpStatus(s) => Some(s), Abort::GrpcStatus(_) => None }),
            "abort_percent": f.abort.map(|(_, ppm)| f64::from(ppm) / 10_000.0),
        })
    });
    let retries = route.retry().map(|r| {
        json!({
            "attempts": r.attempts,
            "per_try_timeout_ms": r.per_try_timeout_ms,
            "retry_on": r.retry_on.split(',').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
        })
    });
    json!({
        "matched": true,
        "virtual_service": route.vs_name(),
        "rule": route.rule_index(),
        "rule_name": route.name(),
        "action": action,
        "destinations": destinations,
        "fault": fault,
        "retries": retries,
        "timeout_ms": route.timeout_ms(),
    })
}

/// The decision for people.
pub fn route_human(json: &Value) -> String {
    let mut out = String::new();
    if json["matched"] != true {
        match json["virtual_service"].as_str() {
            Some(vs) => {
                let _ = writeln!(
                    out,
                    "no route: `{vs}` has no rule that matches this request (404 NR)"
                );
            }
            None => {
                let _ = writeln!(out, "no route: no VirtualService claims this host (404 NR)");
            }
        }
        return out;
    }
    let rule = match json["rule_name"].as_str() {
        Some(name) => format!("rule {} `{name}`", json["rule"]),
        None => format!("rule {}", json["rule"]),
    };
    let _ = writeln!(
        out,
        "matched {} of VirtualService {}",
        rule,
        json["virtual_service"].as_str().unwrap_or("")
    );
    let _ = writeln!(out, "action: {}", json["action"].as_str().unwrap_or(""));
    for d in json["destinations"].as_array().into_iter().flatten() {
        let subset = d["subset"]
            .as_str()
            .map(|s| format!(" subset {s}"))
            .unwrap_or_default();
        let port = d["port"]
            .as_u64()
            .map(|p| format!(" port {p}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  -> {}{subset}{port}  weight {}",
            d["host"].as_str().unwrap_or(""),
            d["weight"]
        );
    }
    if let Some(f) = json["fault"].as_object() {
        if let (Some(ms), Some(p)) = (f["delay_ms"].as_u64(), f["delay_percent"].as_f64()) {
            let _ = writeln!(out, "fault: delay {ms} ms for {p}% of requests");
        }
        if let (Some(s), Some(p)) = (f["abort_status"].as_u64(), f["abort_percent"].as_f64()) {
            let _ = writeln!(out, "fault: abort with HTTP {s} for {p}% of requests");
        }
    }
    match json["timeout_ms"].as_u64() {
        Some(ms) => {
            let _ = writeln!(out, "timeout: {ms} ms");
        }
        None => {
            let _ = writeln!(out, "timeout: none");
        }
    }
    if let Some(r) = json["retries"].as_object() {
        let per_try = r["per_try_timeout_ms"]
            .as_u64()
            .map(|ms| format!(", {ms} ms per try"))
            .unwrap_or_default();
        let on: Vec<&str> = strs(&r["retry_on"]);
        let _ = writeln!(
            out,
            "retries: {} on {}{per_try}",
            r["attempts"],
            on.join(",")
        );
    }
    out
}

/// What `meshc inspect` prints as json.
pub fn inspect_json(table: &Table<'_>) -> Value {
    let info = table.info();
    let sections: Vec<Value> = info
        .sections
        .iter()
        .map(|(name, s)| json!({"name": name, "offset": s.offset, "length": s.length, "records": s.count}))
        .collect();
    let hosts: Vec<Value> = table
        .virtual_hosts()
        .map(|vh| {
            json!({
                "name": vh.name(),
                "domains": vh.domains().collect::<Vec<_>>(),
                "routes": vh.routes().map(|r| route_view_json(&r)).collect::<Vec<_>>(),
            })
        })
        .collect();
    let clusters: Vec<Value> = table
        .clusters()
        .map(|c| {
            json!({
                "name": c.name(),
                "host": c.host(),
                "subset": c.subset(),
                "port": c.port(),
                "resolution": match c.resolution() { Resolution::Static => "static", Resolution::Dns => "dns", _ => "runtime" },
                "load_balancer": match c.load_balancer() { LoadBalancer::RoundRobin => "round_robin", LoadBalancer::LeastRequest => "least_request", LoadBalancer::Random => "random", _ => "consistent_hash" },
                "endpoints": c.endpoints().map(|e| format!("{}:{}", e.address(), e.port())).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "format_version": info.version,
        "size": info.total_len,
        "content_hash": hex(&info.content_hash),
        "checksum": format!("{:016x}", info.checksum),
        "sections": sections,
        "virtual_hosts": hosts,
        "clusters": clusters,
    })
}

pub fn inspect_human(json: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "meshc routing table, format version {}",
        json["format_version"]
    );
    let _ = writeln!(out, "size:         {} bytes", json["size"]);
    let _ = writeln!(
        out,
        "content hash: sha256:{}",
        json["content_hash"].as_str().unwrap_or("")
    );
    let _ = writeln!(
        out,
        "checksum:     {}",
        json["checksum"].as_str().unwrap_or("")
    );
    let _ = writeln!(out, "\nsections:");
    for s in json["sections"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  {:<20} {:>10} bytes {:>8} records  at {}",
            s["name"].as_str().unwrap_or(""),
            s["length"],
            s["records"],
            s["offset"]
        );
    }
    let _ = writeln!(out, "\nvirtual hosts:");
    for vh in json["virtual_hosts"].as_array().into_iter().flatten() {
        let domains: Vec<&str> = strs(&vh["domains"]);
        let _ = writeln!(
            out,
            "  {}  ({})",
            vh["name"].as_str().unwrap_or(""),
            domains.join(", ")
        );
        for r in vh["routes"].as_array().into_iter().flatten() {
            let name = r["rule_name"]
                .as_str()
                .map(|n| format!(" `{n}`"))
                .unwrap_or_default();
            let dests: Vec<String> = r["destinations"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    format!(
                        "{}{} {}",
                        d["host"].as_str().unwrap_or(""),
                        d["subset"]
                            .as_str()
                            .map(|s| format!("/{s}"))
                            .unwrap_or_default(),
                        d["weight"]
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "    rule {}{name}: {} -> {}",
                r["rule"],
                r["action"].as_str().unwrap_or(""),
                dests.join(", ")
            );
        }
    }
    let _ = writeln!(out, "\nclusters:");
    for c in json["clusters"].as_array().into_iter().flatten() {
        let eps: Vec<&str> = strs(&c["endpoints"]);
        let _ = writeln!(
            out,
            "  {}  {} {}  [{}]",
            c["name"].as_str().unwrap_or(""),
            c["resolution"].as_str().unwrap_or(""),
            c["load_balancer"].as_str().unwrap_or(""),
            eps.join(", ")
        );
    }
    out
}

/// The strings of a json array (nothing when it is not one).
fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}
