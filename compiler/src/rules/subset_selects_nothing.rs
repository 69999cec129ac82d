//! `MESH0205` `subset-selects-nothing`: a DestinationRule subset whose labels select none of
//! the endpoints the repo declares for its host.

use std::collections::BTreeSet;

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0205",
    name: "subset-selects-nothing",
    severity: Severity::Error,
    summary: "a subset's labels select none of the declared endpoints of its host",
    doc: r#"## What it does
Reports a DestinationRule subset whose `labels` match no endpoint of the host, when the repo
declares that host's endpoints: `ServiceEntry` endpoints, or `WorkloadEntry`s selected by a
ServiceEntry `workloadSelector` or a `Service` selector. A host whose endpoints live only in
the cluster (pods) is not checked.

## Why is this bad
The subset's cluster has no endpoints: every request routed to it fails with 503 (`UH`).

## Example
```yaml
subsets:
- name: v3
  labels:
    version: v3    # endpoints are labelled version=v1 and version=v2
```

## Use instead
Fix the labels, or declare the endpoints the subset is meant to select.

## References
- `istioctl analyze` IST0173 DestinationRuleSubsetNotSelectPods
  (`destinationrule.SubsetSelectPodAnalyzer`)
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for dr in &ir.destination_rules {
        let Some(h) = &dr.host else { continue };
        let Some(info) = ir.registry.lookup(&h.fqdn) else {
            continue;
        };
        if info.endpoints.is_empty() {
            continue;
        }
        for subset in &dr.subsets {
            let selects = info.endpoints.iter().any(|e| {
                subset
                    .labels
                    .iter()
                    .all(|(k, v)| e.labels.get(k) == Some(v))
            });
            if selects {
                continue;
            }
            let wanted: Vec<String> = subset
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let seen: BTreeSet<String> = info
                .endpoints
                .iter()
                .flat_map(|e| {
                    e.labels
                        .iter()
                        .filter(|(k, _)| subset.labels.contains_key(*k))
                        .map(|(k, v)| format!("{k}={v}"))
                })
                .collect();
            let help = if seen.is_empty() {
                "no endpoint of this host has these label keys: fix the labels or label the endpoints".to_owned()
            } else {
                format!(
                    "the endpoints are labelled `{}`",
                    seen.into_iter().collect::<Vec<_>>().join("`, `")
                )
            };
            diagnostics.push(
                dr.meta
                    .diag(
                        &RULE,
                        subset.labels_span,
                        format!(
                            "subset `{}` selects no endpoint of {}: none is labelled `{}`",
                            subset.name.value,
                            h.describe(),
                            wanted.join(", ")
                        ),
                    )
                    .with_help(help),
            );
        }
    }
}
