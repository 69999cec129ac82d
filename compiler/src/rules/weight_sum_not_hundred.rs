//! `MESH0304` `weight-sum-not-hundred`: the weights of a route do not sum to 100.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0304",
    name: "weight-sum-not-hundred",
    severity: Severity::Warning,
    summary: "the weights of a route's destinations do not sum to 100",
    doc: r#"## What it does
Reports a route with several destinations whose weights sum to something other than 100
(and above 0). The help says the share each destination really gets.

## Why is this bad
Istio accepts any sum and sends each destination weight/sum of the traffic. Weights are
almost always written as percentages, so a sum of 110 or 90 is usually an edit that forgot
the other destination: `90` and `20` give 82% and 18%, not 90% and 20%.

## Example
```yaml
route:
- destination: {host: reviews, subset: v1}
  weight: 90
- destination: {host: reviews, subset: v2}
  weight: 20
```

## Use instead
```yaml
  weight: 80
...
  weight: 20
```

## References
- Istio webhook: no sum check (RD6; `TestValidateRouteDestination` accepts 550+500)
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        if route.route.len() < 2
            || route
                .route
                .iter()
                .any(|d| d.weight.as_ref().is_some_and(|w| w.value < 0))
        {
            continue;
        }
        let weights: Vec<i64> = route
            .route
            .iter()
            .map(|d| d.weight.as_ref().map_or(0, |w| w.value))
            .collect();
        let total: i64 = weights.iter().sum();
        if total == 100 || total <= 0 {
            continue;
        }
        let shares: Vec<String> = route
            .route
            .iter()
            .zip(&weights)
            .filter(|(_, w)| **w > 0)
            .map(|(d, w)| {
                let share = *w as f64 * 100.0 / total as f64;
                let name = match &d.destination.subset {
                    Some(s) => format!("{}/{}", d.destination.host.written, s.value),
                    None => d.destination.host.written.clone(),
                };
                format!("`{name}` {}%", format_share(share))
            })
            .collect();
        let span = route.route_key.unwrap_or(route.span);
        diagnostics.push(
            vs.meta
                .diag(
                    &RULE,
                    span,
                    format!(
                        "the weights of rule {} sum to {total}, not 100",
                        route.label()
                    ),
                )
                .with_help(format!(
                    "traffic is split by weight/sum: {}; make the weights add up to 100",
                    shares.join(", ")
                )),
        );
    }
}

fn format_share(share: f64) -> String {
    let rounded = (share * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{}", rounded as i64)
    } else {
        format!("{rounded:.1}")
    }
}
