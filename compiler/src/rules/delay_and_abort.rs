//! `MESH0311` `delay-and-abort`: one fault both delays and aborts.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0311",
    name: "delay-and-abort",
    severity: Severity::Info,
    summary: "a fault both delays and aborts requests",
    doc: r#"## What it does
Points out a `fault` with both `delay` and `abort` that can fire (percentages above 0).

## Why is this bad
It is valid, and often not what was meant: both faults apply independently, the delay
first. A request picked by both is delayed and then aborted, so the caller waits for an
error. Knowing this avoids surprises when reading test results.

## Example
```yaml
fault:
  delay: {fixedDelay: 5s, percentage: {value: 100}}
  abort: {httpStatus: 503, percentage: {value: 50}}
```

## Use instead
Keep both if the combination is intended; otherwise split them into two rules (matched on
different requests) or keep one.

## References
- Istio `HTTPFaultInjection`: "Delay and abort faults are independent of one another, even
  if both are specified simultaneously"
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        let Some(fault) = &route.fault else { continue };
        let (Some(delay), Some(abort)) = (&fault.delay, &fault.abort) else {
            continue;
        };
        let fires = |p: Option<f64>| p.is_some_and(|v| v > 0.0);
        if fires(delay.effective_percent()) && fires(abort.percentage.map(|p| p.value)) {
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        fault.span,
                        "fault both delays and aborts: a request picked by both is delayed, then aborted",
                    )
                    .with_label(vs.meta.file, abort.span, "the abort applies after the delay"),
            );
        }
    }
}
