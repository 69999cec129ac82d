//! `MESH0328` `deprecated-mirror-percent`: the deprecated integer `mirrorPercent` (MR2).

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0328",
    name: "deprecated-mirror-percent",
    severity: Severity::Warning,
    summary: "`mirrorPercent` is deprecated in favour of `mirrorPercentage`",
    doc: r#"## What it does
Reports an `http` rule that sets the deprecated integer `mirrorPercent` (or its alias
`mirror_percent`). Values above 100 are `out-of-range`.

## Why is this bad
Istio accepts it with a warning: "using deprecated setting \"mirrorPercent\", use
\"mirrorPercentage\" instead". It is used only when `mirrorPercentage` is absent, and it
cannot express fractions.

## Example
```yaml
mirror:
  host: reviews-shadow
mirrorPercent: 10
```

## Use instead
```yaml
mirror:
  host: reviews-shadow
mirrorPercentage:
  value: 10
```

## References
- Istio webhook `validateHTTPRoute` (VSV), MR2
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        if let Some(span) = route.mirror_percent_key {
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        span,
                        format!("rule {} uses the deprecated `mirrorPercent`", route.label()),
                    )
                    .with_help("write `mirrorPercentage: {value: N}` instead"),
            );
        }
    }
}
