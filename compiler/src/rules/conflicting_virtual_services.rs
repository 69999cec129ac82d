//! `MESH0207` `conflicting-virtual-services`: several mesh VirtualServices claim one host.

use std::collections::BTreeMap;

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::{Host, Ir, VirtualService};

pub static RULE: Rule = Rule {
    code: "MESH0207",
    name: "conflicting-virtual-services",
    severity: Severity::Error,
    summary: "several VirtualServices bound to the mesh define the same host",
    doc: r#"## What it does
Reports a host (after resolving short names) listed by more than one VirtualService that
applies to sidecars (no `gateways`, or `mesh` among them), when their `exportTo` scopes
overlap. Each VirtualService after the first is reported, with the first one labelled.
Gateway-bound VirtualServices are merged by Istio and not reported.

## Why is this bad
Sidecars take the routes of one of them only, and which one is undefined: rules appear to
work or not depending on creation order.

## Example
```yaml
# reviews-a.yaml
spec: {hosts: [reviews], http: [{route: [{destination: {host: reviews, subset: v1}}]}]}
# reviews-b.yaml
spec: {hosts: [reviews], http: [{route: [{destination: {host: reviews, subset: v2}}]}]}
```

## Use instead
Merge the rules into one VirtualService per host.

## References
- `istioctl analyze` IST0109 ConflictingMeshGatewayVirtualServiceHosts
  (`virtualservice.ConflictingMeshGatewayHostsAnalyzer`): "The VirtualServices %s associated
  with mesh gateway define the same host %s which can lead to undefined behavior"
"#,
};

/// The namespaces a VirtualService is visible in: `None` for all.
fn scope(vs: &VirtualService) -> Option<Vec<&str>> {
    if vs.export_to.is_empty() || vs.export_to.iter().any(|e| e.value == "*") {
        return None;
    }
    Some(
        vs.export_to
            .iter()
            .map(|e| {
                if e.value == "." {
                    vs.meta.namespace.as_str()
                } else {
                    e.value.as_str()
                }
            })
            .collect(),
    )
}

fn overlap(a: &Option<Vec<&str>>, b: &Option<Vec<&str>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.iter().any(|n| b.contains(n)),
        _ => true,
    }
}

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    let mut by_host: BTreeMap<&str, Vec<(&VirtualService, &Host)>> = BTreeMap::new();
    for vs in ir.virtual_services.iter().filter(|vs| vs.is_mesh_bound()) {
        for h in &vs.hosts {
            let claims = by_host.entry(&h.fqdn).or_default();
            // A host listed twice in one VirtualService is `overlapping-hosts`.
            if !claims.iter().any(|(other, _)| std::ptr::eq(*other, vs)) {
                claims.push((vs, h));
            }
        }
    }
    for (fqdn, claims) in by_host {
        for (i, (vs, h)) in claims.iter().enumerate().skip(1) {
            let my_scope = scope(vs);
            let Some((first, first_host)) = claims[..i]
                .iter()
                .find(|(other, _)| overlap(&scope(other), &my_scope))
            else {
                continue;
            };
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        h.span,
                        format!(
                            "host `{fqdn}` is also defined by `{}`: sidecars apply the rules of only one of them, which one is undefined",
                            first.meta.id
                        ),
                    )
                    .with_label(first.meta.file, first_host.span, "first defined here")
                    .with_help("merge the rules into a single VirtualService for this host"),
            );
        }
    }
}
