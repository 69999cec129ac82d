//! `MESH0302` `invalid-weight`: a negative weight, or weights that sum to 0.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0302",
    name: "invalid-weight",
    severity: Severity::Error,
    summary: "a route weight is negative, or the weights of several destinations sum to 0",
    doc: r#"## What it does
Reports a `route[].weight` below 0, and a route with more than one destination whose
weights add up to 0 (a missing weight counts as 0).

## Why is this bad
Istio rejects the VirtualService: "weight %d < 0", "total destination weight = 0". With
every weight 0 no destination can take the traffic.

## Example
```yaml
route:
- destination: {host: reviews, subset: v1}
  weight: 0
- destination: {host: reviews, subset: v2}
```

## Use instead
```yaml
route:
- destination: {host: reviews, subset: v1}
  weight: 90
- destination: {host: reviews, subset: v2}
  weight: 10
```

## References
- Istio webhook `validateHTTPRouteDestinations` (VAL), RD4 and RD5
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        let mut total: i64 = 0;
        for dest in &route.route {
            let Some(w) = &dest.weight else { continue };
            if w.value < 0 {
                diagnostics.push(
                    vs.meta
                        .diag(&RULE, w.span, format!("weight {} is negative", w.value))
                        .with_help("weights are relative shares: use 0 or more"),
                );
            }
            total = total.saturating_add(w.value);
        }
        if route.route.len() > 1 && total == 0 {
            let span = route.route_key.unwrap_or(route.span);
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        span,
                        format!(
                            "the weights of the {} destinations of rule {} sum to 0",
                            route.route.len(),
                            route.label()
                        ),
                    )
                    .with_help("give the destinations that should take traffic a weight above 0 (a missing weight is 0)"),
            );
        }
    }
}
