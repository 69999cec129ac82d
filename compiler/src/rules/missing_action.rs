//! `MESH0317` `missing-action`: a rule with no route, redirect, direct response or delegate.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0317",
    name: "missing-action",
    severity: Severity::Error,
    summary: "an HTTP rule has no `route`, `redirect`, `directResponse` or `delegate`",
    doc: r#"## What it does
Reports an `http` rule that says what to match but not what to do with the request.

## Why is this bad
Istio rejects the VirtualService: "HTTP route, redirect or direct_response is required".

## Example
```yaml
- match:
  - uri: {prefix: /reviews}
  timeout: 5s
```

## Use instead
```yaml
- match:
  - uri: {prefix: /reviews}
  timeout: 5s
  route:
  - destination: {host: reviews}
```

## References
- Istio webhook `validateHTTPRouteConflict` (VSV), H11
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        if route.route_key.is_some()
            || route.redirect.is_some()
            || route.direct_response.is_some()
            || route.delegate.is_some()
        {
            continue;
        }
        diagnostics.push(
            vs.meta
                .diag(
                    &RULE,
                    route.anchor(),
                    format!(
                        "rule {} has no `route`, `redirect` or `directResponse`",
                        route.label()
                    ),
                )
                .with_help("add a `route` with a destination, a `redirect` or a `directResponse`"),
        );
    }
}
