//! `MESH0335` `invalid-export-to`: an `exportTo` list Istio rejects (X1-X6).

use std::collections::HashSet;

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::{Ir, Meta, Spanned, host};

pub static RULE: Rule = Rule {
    code: "MESH0335",
    name: "invalid-export-to",
    severity: Severity::Error,
    summary: "an `exportTo` list has a bad entry, a duplicate, or mixes `*` or `~` with others",
    doc: r#"## What it does
Checks `exportTo` in VirtualServices, DestinationRules and ServiceEntries. Each entry must
be `.` (this namespace), `*` (every namespace) or a namespace name (a DNS label); `~` (no
one) is allowed in ServiceEntries only. It reports:
- an entry that is none of these, or `~` outside a ServiceEntry;
- a duplicate entry, including `.` together with the resource's own namespace;
- `*` together with other entries;
- `~` together with other entries.

## Why is this bad
Istio rejects the resource: "only .,*, or a valid DNS 1123 label is allowed as exportTo
entry", "exportTo ~ (none) is not allowed for Istio configuration objects", "duplicate
entries in exportTo for entry %s", "duplicate entries in exportTo: . and current namespace
%s", "cannot have both public (*) and non-public exportTo values for a resource", "cannot
export service entry to no one (~) and someone".

## Example
```yaml
metadata:
  namespace: bookinfo
spec:
  exportTo:
  - "."
  - bookinfo
  - "*"
```

## Use instead
```yaml
spec:
  exportTo:
  - "*"
```

## References
- Istio webhook `validateExportTo` (VAL), X1-X6; `pkg/config/visibility/visibility.go`
"#,
};

fn check_list(
    meta: &Meta,
    entries: &[Spanned<String>],
    service_entry: bool,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut report = |span, message: String, help: &str| {
        diagnostics.push(meta.diag(&RULE, span, message).with_help(help));
    };
    for entry in entries {
        let e = entry.value.as_str();
        // Istio: `.` stands for the own namespace when looking for duplicates.
        let key = if e == "." { meta.namespace.as_str() } else { e };
        if !seen.insert(key) {
            let message =
                if key != e || (e == meta.namespace && entries.iter().any(|o| o.value == ".")) {
                    format!(
                        "`exportTo` lists both `.` and the own namespace `{}`",
                        meta.namespace
                    )
                } else {
                    format!("`exportTo` lists `{e}` twice")
                };
            report(entry.span, message, "remove the duplicate entry");
        } else if e == "~" && !service_entry {
            report(
                entry.span,
                "`exportTo` entry `~` (no one) is allowed in ServiceEntries only".to_owned(),
                "use `.` to keep the resource in its own namespace",
            );
        } else if !matches!(e, "." | "*" | "~") && !host::is_dns1123_label(e) {
            report(
                entry.span,
                format!("`exportTo` entry `{e}` is not `.`, `*` or a namespace name"),
                "use `.` (this namespace), `*` (all namespaces) or a namespace name",
            );
        }
    }
    if entries.len() > 1 {
        for entry in entries {
            if entry.value == "*" {
                report(
                    entry.span,
                    "`exportTo` lists `*` with other entries".to_owned(),
                    "`*` already exports to every namespace: keep `*` alone, or list the namespaces",
                );
            } else if entry.value == "~" && service_entry {
                report(
                    entry.span,
                    "`exportTo` lists `~` (no one) with other entries".to_owned(),
                    "keep `~` alone to hide the ServiceEntry, or list the namespaces",
                );
            }
        }
    }
}

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for vs in &ir.virtual_services {
        check_list(&vs.meta, &vs.export_to, false, diagnostics);
    }
    for dr in &ir.destination_rules {
        check_list(&dr.meta, &dr.export_to, false, diagnostics);
    }
    for se in &ir.service_entries {
        check_list(&se.meta, &se.export_to, true, diagnostics);
    }
}
