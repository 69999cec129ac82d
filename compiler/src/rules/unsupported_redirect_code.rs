//! `MESH0323` `unsupported-redirect-code`: a 3xx redirect code that Envoy cannot send (R7).

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0323",
    name: "unsupported-redirect-code",
    severity: Severity::Warning,
    summary: "a 3xx redirect code other than 301, 302, 303, 307 or 308 produces no route",
    doc: r#"## What it does
Reports a `redirect.redirectCode` in 300..399 that is not 301, 302, 303, 307 or 308.

## Why is this bad
Istio's validation accepts any 3xx code, but when it builds the Envoy route it knows only
these five: for any other code it logs "Redirect Code %d is not yet supported" and the route
gets **no action at all**, so requests that match the rule are not redirected. The
VirtualService is accepted and the rule silently does nothing useful.

## Example
```yaml
redirect:
  uri: /v2
  redirectCode: 304
```

## Use instead
```yaml
redirect:
  uri: /v2
  redirectCode: 302
```

## References
- Istio `ApplyRedirect` in `pilot/pkg/networking/core/route/route.go`, R7
"#,
};

const SUPPORTED: [i64; 5] = [301, 302, 303, 307, 308];

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        let Some(code) = route.redirect.as_ref().and_then(|r| r.code.as_ref()) else {
            continue;
        };
        if (300..=399).contains(&code.value) && !SUPPORTED.contains(&code.value) {
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        code.span,
                        format!(
                            "redirect code {} is not supported by Envoy: rule {} gets no route action and does not redirect",
                            code.value,
                            route.label()
                        ),
                    )
                    .with_help("use 301, 302, 303, 307 or 308"),
            );
        }
    }
}
