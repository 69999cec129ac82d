//! `MESH0319` `duplicate-subset`: two subsets of one DestinationRule share a name.

use std::collections::HashMap;

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0319",
    name: "duplicate-subset",
    severity: Severity::Error,
    summary: "two subsets of a DestinationRule have the same name",
    doc: r#"## What it does
Reports a subset whose name is used by an earlier subset of the same DestinationRule.

## Why is this bad
Istio rejects the DestinationRule: "duplicate subset names: %s". Routes to the name could
mean either label set.

## Example
```yaml
subsets:
- name: v1
  labels: {version: v1}
- name: v1
  labels: {version: v2}
```

## Use instead
```yaml
- name: v2
  labels: {version: v2}
```

## References
- Istio webhook `ValidateDestinationRule` (VAL), DR-3
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for dr in &ir.destination_rules {
        let mut seen = HashMap::new();
        for subset in &dr.subsets {
            if let Some(first) = seen.insert(subset.name.value.as_str(), subset.name.span) {
                diagnostics.push(
                    dr.meta
                        .diag(
                            &RULE,
                            subset.name.span,
                            format!("subset `{}` is defined twice", subset.name.value),
                        )
                        .with_label(dr.meta.file, first, "first defined here")
                        .with_help("rename one of the subsets, or merge them"),
                );
                seen.insert(subset.name.value.as_str(), first);
            }
        }
    }
}
