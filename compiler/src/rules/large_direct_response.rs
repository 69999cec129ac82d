//! `MESH0325` `large-direct-response`: a direct response body over 100 KiB (DR2).

use super::Rule;
use super::invalid_direct_response::MAX_BODY;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0325",
    name: "large-direct-response",
    severity: Severity::Warning,
    summary: "a direct response body is over 100 KiB",
    doc: r#"## What it does
Reports a `directResponse.body` (string, or bytes once decoded) larger than 100 KiB and at
most 1 MiB (larger bodies are `invalid-direct-response`).

## Why is this bad
The body is part of the route configuration that the control plane sends to every proxy
on every change. Istio accepts the VirtualService with a warning: "large direct_responses
may impact control plane performance".

## Example
```yaml
directResponse:
  status: 200
  body:
    string: "<a 200 KiB HTML page>"
```

## Use instead
Serve the page from a service, and route to it.

## References
- Istio webhook `validateHTTPDirectResponse` (VAL), DR2
"#,
};

const WARN_BODY: usize = 100 << 10;

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        let Some(direct) = &route.direct_response else {
            continue;
        };
        let Some(body) = &direct.body else { continue };
        if body.len() > WARN_BODY && body.len() <= MAX_BODY {
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        direct.body_key.unwrap_or(direct.span),
                        format!(
                            "direct response body is {} bytes, over 100 KiB: every proxy receives it with its configuration",
                            body.len()
                        ),
                    )
                    .with_help("serve large bodies from a service; keep direct responses short"),
            );
        }
    }
}
