//! Typecheck: resources -> a typed IR with resolved hosts, parsed durations, percents, status
//! codes and retry conditions, plus a registry of the hosts the repo declares.
//!
//! Construction is lenient: a field of the wrong type is skipped (the schema stage reported
//! it), so that one run reports every problem. The only diagnostics raised here are about
//! values that cannot be represented at all (durations that are not whole milliseconds >= 1ms,
//! Istio D1/D2); every other check is a rule over this IR (`rules/`).

mod destination_rule;
pub mod duration;
pub mod host;
mod read;
pub mod regex;
mod registry;
pub mod retry_on;
mod service;
mod virtual_service;

use crate::check::Settings;
use crate::diagnostic::Diagnostic;
use crate::resource::{Kind, Resource, Resources};
use crate::source::{FileId, Span};

pub use destination_rule::{
    ConnectionPool, ConsistentHash, DestinationRule, LoadBalancer, OutlierDetection,
    PortTrafficPolicy, Subset, TrafficPolicy,
};
pub use duration::Dur;
pub use registry::{DeclaredPort, EndpointInfo, HostInfo, Registry};
pub use retry_on::{GrpcCode, RetryCondition, RetryOn, RetryOnItem};
pub use service::{Endpoint, SePort, Service, ServiceEntry, ServicePort, WorkloadEntry};
pub use virtual_service::{
    Abort, AbortKind, Cors, Delay, Delegate, Destination, DirectResponse, Fault, HeaderMatch,
    HeaderOpSet, HeaderOps, HttpMatch, HttpRoute, KeyedMatch, MatchValue, Mirror, Redirect,
    RegexRewriteBlock, Retries, Rewrite, RouteDestination, StringMatch, VirtualService,
};

/// A value and the span of the YAML it was read from.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }
}

/// A percentage as written (`percentage.value`), 0..100 once the schema passed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Percent {
    pub value: f64,
    /// The `value` scalar, or the `percentage` key when the value is missing.
    pub span: Span,
}

/// Where a resource came from, for diagnostics.
#[derive(Clone, Debug, PartialEq)]
pub struct Meta {
    pub file: FileId,
    pub namespace: String,
    pub name: String,
    pub name_span: Span,
    /// `Kind namespace/name`, as diagnostics print it.
    pub id: String,
    /// `metadata.annotations` with string values.
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl Meta {
    fn of(resource: &Resource) -> Meta {
        Meta {
            file: resource.file,
            namespace: resource.namespace.clone(),
            name: resource.name.clone(),
            name_span: resource.name_span,
            id: resource.id(),
            annotations: resource
                .root
                .get("metadata")
                .map(|m| read::string_map(m, "annotations"))
                .unwrap_or_default(),
        }
    }

    /// A diagnostic about this resource.
    pub fn diag(
        &self,
        rule: &'static crate::rules::Rule,
        span: Span,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::new(rule, self.file, span, message).with_resource(self.id.clone())
    }
}

/// A host as written and as resolved: lower case, short names expanded to
/// `name.namespace.svc.cluster.local`.
#[derive(Clone, Debug, PartialEq)]
pub struct Host {
    pub written: String,
    pub fqdn: String,
    pub span: Span,
}

impl Host {
    /// The host for messages: as written, with its resolved name when they differ.
    pub fn describe(&self) -> String {
        if self.written.eq_ignore_ascii_case(&self.fqdn) {
            format!("`{}`", self.written)
        } else {
            format!("`{}` (`{}`)", self.written, self.fqdn)
        }
    }
}

/// The typed IR of a whole repository, in input order.
#[derive(Debug, Default)]
pub struct Ir {
    pub virtual_services: Vec<VirtualService>,
    pub destination_rules: Vec<DestinationRule>,
    pub service_entries: Vec<ServiceEntry>,
    pub workload_entries: Vec<WorkloadEntry>,
    pub services: Vec<Service>,
    /// Every host the repo declares (Services and ServiceEntries), with ports and endpoints.
    pub registry: Registry,
}

impl Ir {
    /// Every HTTP rule with its VirtualService, in input order.
    pub fn http_routes(&self) -> impl Iterator<Item = (&VirtualService, &HttpRoute)> {
        self.virtual_services
            .iter()
            .flat_map(|vs| vs.http.iter().map(move |r| (vs, r)))
    }
}

/// Builds the IR. Reports durations Istio rejects (D1/D2) and drops them from the IR.
/// Resources are read on as many threads as there are cores; the IR keeps input order.
pub fn typecheck(
    resources: &Resources,
    settings: &Settings,
    diagnostics: &mut Vec<Diagnostic>,
) -> Ir {
    let _ = settings;
    let items = &resources.items;
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len().div_ceil(256).max(1));
    let chunk = items.len().div_ceil(workers).max(1);
    let parts: Vec<(Ir, Vec<Diagnostic>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || build_part(part)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut ir = Ir::default();
    for (part, diags) in parts {
        ir.virtual_services.extend(part.virtual_services);
        ir.destination_rules.extend(part.destination_rules);
        ir.service_entries.extend(part.service_entries);
        ir.workload_entries.extend(part.workload_entries);
        ir.services.extend(part.services);
        diagnostics.extend(diags);
    }
    ir.registry = Registry::build(&ir.services, &ir.service_entries, &ir.workload_entries);
    ir
}

fn build_part(items: &[Resource]) -> (Ir, Vec<Diagnostic>) {
    let mut ir = Ir::default();
    let mut diagnostics = Vec::new();
    for resource in items {
        let Some(spec) = resource.spec() else {
            // A missing spec was reported by the schema.
            continue;
        };
        let meta = Meta::of(resource);
        let mut cx = read::Cx::new(&meta, &mut diagnostics);
        match resource.kind {
            Kind::VirtualService => {
                ir.virtual_services
                    .push(virtual_service::build(meta.clone(), spec, &mut cx))
            }
            Kind::DestinationRule => {
                ir.destination_rules
                    .push(destination_rule::build(meta.clone(), spec, &mut cx))
            }
            Kind::ServiceEntry => {
                ir.service_entries
                    .push(service::build_service_entry(meta.clone(), spec, &mut cx))
            }
            Kind::WorkloadEntry => {
                ir.workload_entries
                    .push(service::build_workload_entry(meta.clone(), spec, &mut cx))
            }
            Kind::Service => ir
                .services
                .push(service::build_service(meta.clone(), spec, &mut cx)),
        }
    }
    (ir, diagnostics)
}
