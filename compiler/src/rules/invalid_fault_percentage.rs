//! `MESH0307` `invalid-fault-percentage`: a fault percentage Envoy cannot represent.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::{Ir, Percent};

pub static RULE: Rule = Rule {
    code: "MESH0307",
    name: "invalid-fault-percentage",
    severity: Severity::Error,
    summary: "a fault percentage is neither 0 nor in [0.0001, 100]",
    doc: r#"## What it does
Reports a `fault.delay.percentage.value` or `fault.abort.percentage.value` that is neither
0 nor between 0.0001 and 100. (Values outside 0..100 are also reported by the schema.)

## Why is this bad
Envoy counts fault percentages per million; Istio rejects values it would round to 0:
"percentage %v is neither 0.0, nor in range [0.0001, 100.0]".

## Example
```yaml
fault:
  abort:
    httpStatus: 503
    percentage:
      value: 0.00001
```

## Use instead
```yaml
    percentage:
      value: 0.0001
```

## References
- Istio webhook `validatePercentage` (VAL), F2
"#,
};

fn bad(p: &Percent) -> bool {
    p.value != 0.0 && !(0.0001..=100.0).contains(&p.value)
}

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        let Some(fault) = &route.fault else { continue };
        let percentages = [
            fault.delay.as_ref().and_then(|d| d.percentage),
            fault.abort.as_ref().and_then(|a| a.percentage),
        ];
        for p in percentages.into_iter().flatten().filter(bad) {
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        p.span,
                        format!(
                            "fault percentage {} is neither 0 nor in [0.0001, 100]",
                            p.value
                        ),
                    )
                    .with_help("use 0 to disable the fault, or a value from 0.0001 to 100"),
            );
        }
    }
}
