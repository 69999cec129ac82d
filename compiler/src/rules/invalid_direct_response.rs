//! `MESH0324` `invalid-direct-response`: a direct response with a status outside 200..599 or
//! a body over 1 MiB (DR1, DR3).

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0324",
    name: "invalid-direct-response",
    severity: Severity::Error,
    summary: "a direct response has a status outside 200..599 or a body over 1 MiB",
    doc: r#"## What it does
Reports a `directResponse.status` outside 200..599 and a `directResponse.body` (string, or
bytes once decoded) larger than 1 MiB.

meshc rejects `status: 600`, which Istio's webhook lets through although its own message
says "not in range 200-599": 600 is not an HTTP status. (`invalid-abort-status` does the
same for fault aborts.)

## Why is this bad
Istio rejects the VirtualService ("HTTP status %d is not in range 200-599", "large
direct_responses may impact control plane performance, must be less than 1MB"): every
proxy receives the body with its configuration.

## Example
```yaml
directResponse:
  status: 100
```

## Use instead
```yaml
directResponse:
  status: 204
```

## References
- Istio webhook `validateHTTPDirectResponse` (VAL), DR1 and DR3
"#,
};

/// Istio: bodies over 1 MiB are rejected.
pub(crate) const MAX_BODY: usize = 1 << 20;

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        let Some(direct) = &route.direct_response else {
            continue;
        };
        if let Some(status) = &direct.status
            && !(200..=599).contains(&status.value)
        {
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        status.span,
                        format!(
                            "direct response status {} is not in range 200-599",
                            status.value
                        ),
                    )
                    .with_help("use an HTTP status from 200 to 599, such as 200 or 404"),
            );
        }
        if let Some(body) = &direct.body
            && body.len() > MAX_BODY
        {
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        direct.body_key.unwrap_or(direct.span),
                        format!(
                            "direct response body is {} bytes, over Istio's limit of 1 MiB",
                            body.len()
                        ),
                    )
                    .with_help("serve large bodies from a service; keep direct responses short"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::check::{Settings, check_sources};

    fn codes_for_body(len: usize) -> Vec<&'static str> {
        let text = format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: r\nspec:\n  hosts:\n  - r.example.com\n  http:\n  - directResponse:\n      status: 200\n      body:\n        string: \"{}\"\n",
            "x".repeat(len)
        );
        let checked = check_sources([("a.yaml", text.as_str())], &Settings::default());
        checked.diagnostics.iter().map(|d| d.rule.code).collect()
    }

    #[test]
    fn body_limits() {
        assert!(!codes_for_body(100 << 10).contains(&"MESH0325"));
        assert!(codes_for_body((100 << 10) + 1).contains(&"MESH0325"));
        assert!(!codes_for_body(1 << 20).contains(&"MESH0324"));
        let over = codes_for_body((1 << 20) + 1);
        assert!(over.contains(&"MESH0324"));
        assert!(!over.contains(&"MESH0325"));
    }
}
