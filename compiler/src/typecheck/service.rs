//! Host declarations: ServiceEntry, WorkloadEntry and Kubernetes `Service`.

use std::collections::BTreeMap;

use super::read::{self, Cx};
use super::{Host, Meta, Spanned, host};
use crate::parse::{Node, Value};
use crate::source::Span;

#[derive(Debug)]
pub struct ServiceEntry {
    pub meta: Meta,
    pub hosts: Vec<Host>,
    pub addresses: Vec<String>,
    pub ports: Vec<SePort>,
    /// `NONE` (the default), `STATIC`, `DNS`, `DNS_ROUND_ROBIN`, `DYNAMIC_DNS`.
    pub resolution: String,
    /// `MESH_EXTERNAL` (the default) or `MESH_INTERNAL`.
    pub location: String,
    pub endpoints: Vec<Endpoint>,
    pub workload_selector: Option<BTreeMap<String, String>>,
    pub export_to: Vec<Spanned<String>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SePort {
    pub number: u16,
    pub name: String,
    pub protocol: Option<String>,
    pub target_port: Option<u16>,
    pub span: Span,
}

/// A workload address: a ServiceEntry endpoint or a WorkloadEntry's spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    pub address: Option<String>,
    /// Port name (of the service) -> port number on this endpoint.
    pub ports: BTreeMap<String, u16>,
    pub labels: BTreeMap<String, String>,
    pub weight: Option<i64>,
    pub network: Option<String>,
    pub locality: Option<String>,
    pub span: Span,
}

#[derive(Debug)]
pub struct WorkloadEntry {
    pub meta: Meta,
    pub endpoint: Endpoint,
}

/// A Kubernetes `Service`: declares `name.namespace.svc.cluster.local`.
#[derive(Debug)]
pub struct Service {
    pub meta: Meta,
    pub host: String,
    pub ports: Vec<ServicePort>,
    pub selector: BTreeMap<String, String>,
    /// `type: ExternalName` services have no ports of their own to check.
    pub service_type: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServicePort {
    pub name: Option<String>,
    pub port: u16,
    /// A number or a named container port, as written.
    pub target_port: Option<String>,
    pub protocol: Option<String>,
    pub app_protocol: Option<String>,
}

pub(super) fn build_service_entry(meta: Meta, spec: &Node, _cx: &mut Cx) -> ServiceEntry {
    let ns = meta.namespace.clone();
    let text = |k: &str| read::string(spec, k).map(|s| s.0.to_owned());
    ServiceEntry {
        hosts: read::strings(spec, "hosts")
            .into_iter()
            .map(|h| Host {
                fqdn: host::resolve(&h.value, &ns),
                written: h.value,
                span: h.span,
            })
            .collect(),
        addresses: read::strings(spec, "addresses")
            .into_iter()
            .map(|a| a.value)
            .collect(),
        ports: read::seq(spec, "ports")
            .iter()
            .filter_map(|p| {
                Some(SePort {
                    number: read::port(p, "number")?.value,
                    name: read::string(p, "name").map_or("", |s| s.0).to_owned(),
                    protocol: read::string(p, "protocol").map(|s| s.0.to_owned()),
                    target_port: read::port(p, "targetPort").map(|t| t.value),
                    span: p.span,
                })
            })
            .collect(),
        resolution: text("resolution").unwrap_or_else(|| "NONE".to_owned()),
        location: text("location").unwrap_or_else(|| "MESH_EXTERNAL".to_owned()),
        endpoints: read::seq(spec, "endpoints").iter().map(endpoint).collect(),
        workload_selector: spec
            .get("workloadSelector")
            .map(|w| read::string_map(w, "labels")),
        export_to: read::strings(spec, "exportTo"),
        meta,
    }
}

fn endpoint(node: &Node) -> Endpoint {
    let text = |k: &str| read::string(node, k).map(|s| s.0.to_owned());
    Endpoint {
        address: text("address"),
        ports: node
            .get("ports")
            .and_then(Node::as_map)
            .unwrap_or(&[])
            .iter()
            .filter_map(|e| match e.value.value {
                Value::Int(p) => Some((e.key.clone(), u16::try_from(p).ok()?)),
                _ => None,
            })
            .collect(),
        labels: read::string_map(node, "labels"),
        weight: read::int(node, "weight").map(|w| w.value),
        network: text("network"),
        locality: text("locality"),
        span: node.span,
    }
}

pub(super) fn build_workload_entry(meta: Meta, spec: &Node, _cx: &mut Cx) -> WorkloadEntry {
    WorkloadEntry {
        endpoint: endpoint(spec),
        meta,
    }
}

pub(super) fn build_service(meta: Meta, spec: &Node, _cx: &mut Cx) -> Service {
    let ports = read::seq(spec, "ports")
        .iter()
        .filter_map(|p| {
            let target_port = p.get("targetPort").and_then(|t| match &t.value {
                Value::Int(i) => Some(i.to_string()),
                Value::Str(s) => Some(s.clone()),
                _ => None,
            });
            Some(ServicePort {
                name: read::string(p, "name").map(|s| s.0.to_owned()),
                port: read::port(p, "port")?.value,
                target_port,
                protocol: read::string(p, "protocol").map(|s| s.0.to_owned()),
                app_protocol: read::string(p, "appProtocol").map(|s| s.0.to_owned()),
            })
        })
        .collect();
    Service {
        host: format!(
            "{}.{}.svc.cluster.local",
            meta.name.to_ascii_lowercase(),
            meta.namespace.to_ascii_lowercase()
        ),
        ports,
        selector: read::string_map(spec, "selector"),
        service_type: read::string(spec, "type").map(|s| s.0.to_owned()),
        meta,
    }
}
