//! The service registry: every host the repo declares (Kubernetes Services and ServiceEntry
//! hosts), with its ports and the labelled endpoints that back it. Lookups are by FQDN;
//! ServiceEntry wildcard hosts are indexed by suffix so that a lookup costs O(labels).

use std::collections::{BTreeMap, HashMap};

use super::host;
use super::service::{Service, ServiceEntry, WorkloadEntry};
use crate::resource::Kind;

#[derive(Clone, Debug, PartialEq)]
pub struct DeclaredPort {
    pub number: u16,
    pub name: Option<String>,
    pub protocol: Option<String>,
}

/// One endpoint that backs a host: its labels (for subsets) and address.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointInfo {
    pub address: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub ports: BTreeMap<String, u16>,
}

#[derive(Clone, Debug, Default)]
pub struct HostInfo {
    /// Ports merged from every declaration, in number order.
    pub ports: Vec<DeclaredPort>,
    /// Endpoints declared in the repo (ServiceEntry endpoints, WorkloadEntries selected by
    /// a ServiceEntry `workloadSelector` or a Service `selector`).
    pub endpoints: Vec<EndpointInfo>,
    /// Which resources declare the host: (kind, index in the IR list of that kind).
    pub declared_by: Vec<(Kind, usize)>,
    /// Whether some declaration gives no ports (an `ExternalName` Service, an SE without
    /// ports): port checks are skipped then.
    pub ports_unknown: bool,
}

#[derive(Debug, Default)]
pub struct Registry {
    hosts: BTreeMap<String, HostInfo>,
    /// `*.suffix` ServiceEntry hosts, by `.suffix`.
    wildcards: HashMap<String, HostInfo>,
    /// Partial (`*foo.com`) and bare `*` wildcards: few, scanned.
    partial: Vec<(String, HostInfo)>,
}

impl Registry {
    pub(super) fn build(
        services: &[Service],
        service_entries: &[ServiceEntry],
        workload_entries: &[WorkloadEntry],
    ) -> Registry {
        // WorkloadEntries by (namespace, label key, label value), for selectors.
        let mut by_label: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
        for (i, we) in workload_entries.iter().enumerate() {
            for (k, v) in &we.endpoint.labels {
                by_label
                    .entry((&we.meta.namespace, k, v))
                    .or_default()
                    .push(i);
            }
        }
        let selected = |ns: &str, selector: &BTreeMap<String, String>| -> Vec<EndpointInfo> {
            let Some((k, v)) = selector.iter().next() else {
                return Vec::new();
            };
            by_label
                .get(&(ns, k.as_str(), v.as_str()))
                .into_iter()
                .flatten()
                .map(|&i| &workload_entries[i].endpoint)
                .filter(|e| selector.iter().all(|(k, v)| e.labels.get(k) == Some(v)))
                .map(|e| EndpointInfo {
                    address: e.address.clone(),
                    labels: e.labels.clone(),
                    ports: e.ports.clone(),
                })
                .collect()
        };

        let mut registry = Registry::default();
        for (i, svc) in services.iter().enumerate() {
            let info = HostInfo {
                ports: svc
                    .ports
                    .iter()
                    .map(|p| DeclaredPort {
                        number: p.port,
                        name: p.name.clone(),
                        protocol: p.app_protocol.clone().or(p.protocol.clone()),
                    })
                    .collect(),
                endpoints: selected(&svc.meta.namespace, &svc.selector),
                declared_by: vec![(Kind::Service, i)],
                ports_unknown: svc.ports.is_empty()
                    || svc.service_type.as_deref() == Some("ExternalName"),
            };
            registry.add(&svc.host, info);
        }
        for (i, se) in service_entries.iter().enumerate() {
            let mut endpoints: Vec<EndpointInfo> = se
                .endpoints
                .iter()
                .map(|e| EndpointInfo {
                    address: e.address.clone(),
                    labels: e.labels.clone(),
                    ports: e.ports.clone(),
                })
                .collect();
            if let Some(selector) = &se.workload_selector {
                endpoints.extend(selected(&se.meta.namespace, selector));
            }
            let info = HostInfo {
                ports: se
                    .ports
                    .iter()
                    .map(|p| DeclaredPort {
                        number: p.number,
                        name: Some(p.name.clone()),
                        protocol: p.protocol.clone(),
                    })
                    .collect(),
                endpoints,
                declared_by: vec![(Kind::ServiceEntry, i)],
                ports_unknown: se.ports.is_empty(),
            };
            for h in &se.hosts {
                registry.add(&h.fqdn, info.clone());
            }
        }
        registry
    }

    fn add(&mut self, fqdn: &str, info: HostInfo) {
        let slot = if let Some(suffix) = fqdn.strip_prefix("*.") {
            self.wildcards.entry(format!(".{suffix}")).or_default()
        } else if host::is_wildcard(fqdn) {
            match self.partial.iter().position(|(h, _)| h == fqdn) {
                Some(i) => &mut self.partial[i].1,
                None => {
                    self.partial.push((fqdn.to_owned(), HostInfo::default()));
                    &mut self.partial.last_mut().expect("just pushed").1
                }
            }
        } else {
            self.hosts.entry(fqdn.to_owned()).or_default()
        };
        slot.merge(info);
    }

    /// The declaration of a destination host: an exact host, else the most specific
    /// wildcard ServiceEntry host that covers it.
    pub fn lookup(&self, fqdn: &str) -> Option<&HostInfo> {
        if let Some(info) = self.hosts.get(fqdn) {
            return Some(info);
        }
        // `a.b.foo.com` is covered by `*.b.foo.com`, `*.foo.com`, `*.com`; a wildcard
        // destination `*.b.foo.com` by `*.foo.com` and by itself.
        let name = fqdn.strip_prefix('*').unwrap_or(fqdn);
        let mut at = 0;
        while let Some(dot) = name[at..].find('.') {
            let suffix = &name[at + dot..];
            if let Some(info) = self.wildcards.get(suffix)
                && host::covers(&format!("*{suffix}"), fqdn)
            {
                return Some(info);
            }
            at += dot + 1;
        }
        self.partial
            .iter()
            .find(|(pattern, _)| host::covers(pattern, fqdn))
            .map(|(_, info)| info)
    }

    /// Every exact host, in name order.
    pub fn hosts(&self) -> impl Iterator<Item = (&str, &HostInfo)> {
        self.hosts.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl HostInfo {
    fn merge(&mut self, other: HostInfo) {
        for port in other.ports {
            if !self.ports.iter().any(|p| p.number == port.number) {
                self.ports.push(port);
            }
        }
        self.ports.sort_by_key(|p| p.number);
        self.endpoints.extend(other.endpoints);
        self.declared_by.extend(other.declared_by);
        self.ports_unknown |= other.ports_unknown;
    }
}
