//! `MESH0303` `zero-weight-destination`: a destination that gets no traffic.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0303",
    name: "zero-weight-destination",
    severity: Severity::Warning,
    summary: "one of several destinations has weight 0 and gets no traffic",
    doc: r#"## What it does
Reports a destination with weight 0 (written, or missing) in a route with several
destinations whose weights do not all sum to 0 (that case is `invalid-weight`).

## Why is this bad
Istio drops weight-0 destinations: the destination gets no traffic. A missing `weight` is
the usual cause: with two destinations, `weight` must be written on both.

## Example
```yaml
route:
- destination: {host: reviews, subset: v1}
  weight: 100
- destination: {host: reviews, subset: v2}    # no weight: 0, no traffic
```

## Use instead
Give it a weight, or remove the destination if it is meant to get nothing.

## References
- Istio: weight-0 destinations are removed when there is more than one (section 6.5 of
  Istio's routing semantics; `pilot/pkg/networking/core/route`)
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        if route.route.len() < 2 {
            continue;
        }
        let total: i64 = route
            .route
            .iter()
            .filter_map(|d| d.weight.as_ref().map(|w| w.value))
            .fold(0, i64::saturating_add);
        if total <= 0 {
            continue;
        }
        for dest in &route.route {
            let (span, why) = match &dest.weight {
                Some(w) if w.value == 0 => (w.span, "has weight 0"),
                None => (dest.destination.span, "has no weight (0)"),
                Some(_) => continue,
            };
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        span,
                        format!(
                            "destination {} {why} and gets no traffic",
                            dest.destination.host.describe()
                        ),
                    )
                    .with_help("give it a weight above 0, or remove it"),
            );
        }
    }
}
