//! `MESH0309` `fault-never-fires`: a delay or abort without a percentage.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0309",
    name: "fault-never-fires",
    severity: Severity::Warning,
    summary: "a fault delay or abort has no percentage, so it is never injected",
    doc: r#"## What it does
Reports a `fault.delay` or `fault.abort` without `percentage` (and, for a delay, without the
deprecated `percent`).

## Why is this bad
Istio: "If left unspecified, no request will be delayed/aborted". The fault is configured
but applies to 0% of requests; it looks active in review and does nothing.

## Example
```yaml
fault:
  abort:
    httpStatus: 503
```

## Use instead
```yaml
fault:
  abort:
    httpStatus: 503
    percentage:
      value: 100
```

## References
- Istio `HTTPFaultInjection.Abort.percentage` / `Delay.percentage` (the proto documentation);
  Envoy receives a numerator of 0
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        let Some(fault) = &route.fault else { continue };
        if let Some(delay) = &fault.delay
            && delay.effective_percent().is_none()
        {
            {
                diagnostics.push(
                    vs.meta
                        .diag(
                            &RULE,
                            delay.span,
                            "fault delay has no `percentage`: Istio delays no request",
                        )
                        .with_help(
                            "add `percentage: {value: 100}` (or the share of requests to delay)",
                        ),
                );
            }
        }
        if let Some(abort) = &fault.abort
            && abort.percentage.is_none()
        {
            {
                diagnostics.push(
                    vs.meta
                        .diag(
                            &RULE,
                            abort.span,
                            "fault abort has no `percentage`: Istio aborts no request",
                        )
                        .with_help(
                            "add `percentage: {value: 100}` (or the share of requests to abort)",
                        ),
                );
            }
        }
    }
}
