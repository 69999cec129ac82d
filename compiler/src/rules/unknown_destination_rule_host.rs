//! `MESH0206` `unknown-destination-rule-host`: a DestinationRule for a host declared nowhere.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::{Ir, host};

pub static RULE: Rule = Rule {
    code: "MESH0206",
    name: "unknown-destination-rule-host",
    severity: Severity::Warning,
    summary: "a DestinationRule's host is declared nowhere in the repo",
    doc: r#"## What it does
Reports a DestinationRule whose `host` (resolved in its namespace) is not a `Service` or
`ServiceEntry` host of the repo. Wildcard hosts are not checked.

## Why is this bad
The policy applies to nothing: a typo in the host silently drops the subsets, load
balancing and connection limits it was meant to set. Routes to its subsets then fail.

## Example
```yaml
kind: DestinationRule
spec:
  host: ratngs
```

## Use instead
```yaml
spec:
  host: ratings
```

## References
- `istioctl analyze` IST0174 UnknownDestinationRuleHost (`destinationrule.SubsetSelectPodAnalyzer`)
"#,
};

pub fn check(ir: &Ir, settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    let _ = settings;
    for dr in &ir.destination_rules {
        let Some(h) = &dr.host else { continue };
        if h.fqdn.is_empty() || host::is_wildcard(&h.fqdn) || ir.registry.lookup(&h.fqdn).is_some()
        {
            continue;
        }
        diagnostics.push(
            dr.meta
                .diag(
                    &RULE,
                    h.span,
                    format!(
                        "DestinationRule host {} is declared nowhere in the repo",
                        h.describe()
                    ),
                )
                .with_help(format!(
                    "declare `{}` with a `Service` or a `ServiceEntry`, or fix the host",
                    h.fqdn
                )),
        );
    }
}
