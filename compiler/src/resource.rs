//! Documents -> resources: recognise kind, API version, namespace and name; skip other kinds.

use std::collections::BTreeMap;

use crate::diagnostic::Diagnostic;
use crate::parse::{Document, Node};
use crate::rules;
use crate::source::{FileId, Span};

/// The annotation that lists rule codes or names to suppress for one resource.
pub const SUPPRESS_ANNOTATION: &str = "meshc.dev/suppress";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    VirtualService,
    DestinationRule,
    ServiceEntry,
    WorkloadEntry,
    /// A Kubernetes `Service`: declares a host and its ports.
    Service,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::VirtualService => "VirtualService",
            Kind::DestinationRule => "DestinationRule",
            Kind::ServiceEntry => "ServiceEntry",
            Kind::WorkloadEntry => "WorkloadEntry",
            Kind::Service => "Service",
        }
    }

    pub const ALL: [Kind; 5] = [
        Kind::VirtualService,
        Kind::DestinationRule,
        Kind::ServiceEntry,
        Kind::WorkloadEntry,
        Kind::Service,
    ];

    fn from_kind(kind: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    fn accepts_api_version(self, api_version: &str) -> bool {
        match self {
            Kind::Service => api_version == "v1",
            _ => matches!(
                api_version,
                "networking.istio.io/v1"
                    | "networking.istio.io/v1beta1"
                    | "networking.istio.io/v1alpha3"
            ),
        }
    }

    fn api_group(self) -> &'static str {
        match self {
            Kind::Service => "",
            _ => "networking.istio.io",
        }
    }
}

/// One recognised policy object.
#[derive(Debug)]
pub struct Resource {
    pub kind: Kind,
    pub api_version: String,
    pub namespace: String,
    pub name: String,
    pub file: FileId,
    pub root: Node,
    pub name_span: Span,
    /// Codes or names listed in the suppression annotation.
    pub suppress: Vec<String>,
}

impl Resource {
    /// `Kind namespace/name`, as diagnostics print it.
    pub fn id(&self) -> String {
        format!("{} {}/{}", self.kind.as_str(), self.namespace, self.name)
    }

    pub fn spec(&self) -> Option<&Node> {
        self.root.get("spec")
    }
}

/// What a repository holds after resource recognition.
#[derive(Debug, Default)]
pub struct Resources {
    pub items: Vec<Resource>,
    /// Documents of other kinds (Deployment, Gateway, ...), counted and otherwise ignored.
    pub skipped: usize,
}

/// Recognises the resources among `documents`. `default_namespace` applies when
/// `metadata.namespace` is absent.
pub fn collect(
    documents: Vec<Document>,
    default_namespace: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Resources {
    let mut out = Resources::default();
    for doc in documents {
        recognise(
            doc.file,
            doc.root,
            default_namespace,
            &mut out,
            diagnostics,
            0,
        );
    }
    report_duplicates(&out.items, diagnostics);
    out
}

fn recognise(
    file: FileId,
    root: Node,
    default_namespace: &str,
    out: &mut Resources,
    diagnostics: &mut Vec<Diagnostic>,
    depth: usize,
) {
    let Some(_) = root.as_map() else {
        diagnostics.push(
            Diagnostic::new(
                &rules::INVALID_RESOURCE,
                file,
                root.span,
                format!("document is a {}, not a resource", root.type_name()),
            )
            .with_help(
                "each YAML document must be a mapping with `apiVersion`, `kind` and `metadata`",
            ),
        );
        return;
    };
    let kind_node = root.get("kind");
    let api_node = root.get("apiVersion");
    let (Some(kind), Some(api_version)) = (
        kind_node.and_then(Node::as_str),
        api_node.and_then(Node::as_str),
    ) else {
        let missing: Vec<&str> = [("apiVersion", api_node), ("kind", kind_node)]
            .into_iter()
            .filter(|(_, n)| n.and_then(Node::as_str).is_none())
            .map(|(k, _)| k)
            .collect();
        diagnostics.push(
            Diagnostic::new(
                &rules::INVALID_RESOURCE,
                file,
                root.span,
                format!("document has no string `{}`", missing.join("` or `")),
            )
            .with_help(
                "each YAML document must be a mapping with `apiVersion`, `kind` and `metadata`",
            ),
        );
        return;
    };
    // A `v1` `List` wraps resources in `items` (what `kubectl get -o yaml` writes).
    if kind == "List" && api_version == "v1" && depth == 0 {
        if let Some(items) = root.get("items").and_then(Node::as_seq) {
            for item in items.iter().cloned() {
                recognise(file, item, default_namespace, out, diagnostics, depth + 1);
            }
        }
        return;
    }
    let Some(kind) = Kind::from_kind(kind) else {
        out.skipped += 1;
        return;
    };
    if !kind.accepts_api_version(api_version) {
        // A different group with one of our kind names (say a CRD of another project) is
        // not ours; a known group with an unknown version is a mistake.
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        if group != kind.api_group() && !group.contains("istio") {
            out.skipped += 1;
            return;
        }
        let span = api_node.map_or(root.span, |n| n.span);
        let expected = match kind {
            Kind::Service => "`v1`".to_owned(),
            _ => "`networking.istio.io/v1` (or `v1beta1`, `v1alpha3`)".to_owned(),
        };
        diagnostics.push(
            Diagnostic::new(
                &rules::UNSUPPORTED_API_VERSION,
                file,
                span,
                format!(
                    "`{}` is not a known API version for `{}`",
                    api_version,
                    kind.as_str()
                ),
            )
            .with_help(format!("use {expected}")),
        );
        return;
    }
    let metadata = root.get("metadata");
    let name_node = metadata.and_then(|m| m.get("name"));
    let Some(name) = name_node.and_then(Node::as_str) else {
        let span = metadata.map_or(root.span, |m| m.span);
        diagnostics.push(
            Diagnostic::new(
                &rules::INVALID_RESOURCE,
                file,
                span,
                format!("`{}` has no string `metadata.name`", kind.as_str()),
            )
            .with_help("give the resource a name under `metadata.name`"),
        );
        return;
    };
    let namespace = metadata
        .and_then(|m| m.get("namespace"))
        .and_then(Node::as_str)
        .unwrap_or(default_namespace)
        .to_owned();
    let suppress = metadata
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(SUPPRESS_ANNOTATION))
        .and_then(Node::as_str)
        .map(|s| {
            s.split(',')
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let name_span = name_node.map_or(root.span, |n| n.span);
    out.items.push(Resource {
        kind,
        api_version: api_version.to_owned(),
        namespace,
        name: name.to_owned(),
        file,
        name_span,
        suppress,
        root,
    });
}

fn report_duplicates(items: &[Resource], diagnostics: &mut Vec<Diagnostic>) {
    let mut first: BTreeMap<(Kind, &str, &str), &Resource> = BTreeMap::new();
    for r in items {
        match first.get(&(r.kind, r.namespace.as_str(), r.name.as_str())) {
            Some(earlier) => diagnostics.push(
                Diagnostic::new(
                    &rules::DUPLICATE_RESOURCE,
                    r.file,
                    r.name_span,
                    format!("`{}` is defined twice", r.id()),
                )
                .with_label(earlier.file, earlier.name_span, "first defined here")
                .with_help("Kubernetes keeps one object per kind, namespace and name: rename one or merge them")
                .with_resource(r.id()),
            ),
            None => {
                first.insert((r.kind, &r.namespace, &r.name), r);
            }
        }
    }
}
