//! `MESH0318` `overlapping-hosts`: two hosts of one VirtualService overlap.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::{Ir, host};

pub static RULE: Rule = Rule {
    code: "MESH0318",
    name: "overlapping-hosts",
    severity: Severity::Error,
    summary: "two hosts of one VirtualService are the same or overlap",
    doc: r#"## What it does
Reports a host of a VirtualService that equals or overlaps an earlier one (after resolving
short names: `reviews` and `reviews.default.svc.cluster.local` are the same host), wildcards
included: `*.example.com` overlaps `api.example.com` and `*.com`.

## Why is this bad
Istio rejects the VirtualService: "duplicate hosts in virtual service: %s & %s".

## Example
```yaml
hosts:
- "*.example.com"
- api.example.com
```

## Use instead
```yaml
hosts:
- "*.example.com"
```

## References
- Istio webhook `ValidateVirtualService` (VAL), V8; `pkg/config/host/name.go` `Matches`
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for vs in &ir.virtual_services {
        for (i, h) in vs.hosts.iter().enumerate() {
            let Some(earlier) = vs.hosts[..i]
                .iter()
                .find(|e| host::overlaps(&e.fqdn, &h.fqdn))
            else {
                continue;
            };
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        h.span,
                        format!(
                            "host {} overlaps host {} of the same VirtualService",
                            h.describe(),
                            earlier.describe()
                        ),
                    )
                    .with_label(vs.meta.file, earlier.span, "overlapping host")
                    .with_help("keep one of them"),
            );
        }
    }
}
