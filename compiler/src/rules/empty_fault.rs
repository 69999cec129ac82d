//! `MESH0310` `empty-fault`: a fault with neither a delay nor an abort.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0310",
    name: "empty-fault",
    severity: Severity::Error,
    summary: "a fault has neither `delay` nor `abort`",
    doc: r#"## What it does
Reports a `fault` that sets neither `delay` nor `abort`.

## Why is this bad
Istio rejects it: "HTTP fault injection must have an abort and/or a delay".

## Example
```yaml
fault: {}
```

## Use instead
```yaml
fault:
  delay:
    fixedDelay: 2s
    percentage: {value: 10}
```
or remove `fault`.

## References
- Istio webhook `validateHTTPFaultInjection` (VAL), F1
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        let Some(fault) = &route.fault else { continue };
        if fault.delay.is_none() && fault.abort.is_none() {
            diagnostics.push(
                vs.meta
                    .diag(&RULE, fault.span, "fault has neither `delay` nor `abort`")
                    .with_help("add a `delay` or an `abort`, or remove `fault`"),
            );
        }
    }
}
