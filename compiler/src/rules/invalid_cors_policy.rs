//! `MESH0327` `invalid-cors-policy`: a CORS method Istio does not know, or a `maxAge` that is
//! not whole seconds (C3, C5).

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::suggest::did_you_mean;
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0327",
    name: "invalid-cors-policy",
    severity: Severity::Error,
    summary: "a CORS policy has an unknown method or a `maxAge` that is not whole seconds",
    doc: r#"## What it does
Reports, in `corsPolicy`:
- an `allowMethods` entry that is not one of `GET`, `HEAD`, `POST`, `PUT`, `PATCH`,
  `DELETE`, `CONNECT`, `OPTIONS`, `TRACE` or `*` (case-sensitive: `get` is rejected);
- a `maxAge` that is not a whole number of seconds.

Empty `allowOrigins` entries are `empty-string-match`; header names in `allowHeaders` and
`exposeHeaders` are `invalid-header-name`.

## Why is this bad
Istio rejects the VirtualService ("%q is not a supported HTTP method", "max_age duration is
accurate only to seconds precision"): `Access-Control-Max-Age` is a number of seconds.

## Example
```yaml
corsPolicy:
  allowMethods:
  - get
  maxAge: 1500ms
```

## Use instead
```yaml
corsPolicy:
  allowMethods:
  - GET
  maxAge: 2s
```

## References
- Istio webhook `validateCORSPolicy` (VAL), C3 and C5
"#,
};

const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*",
];

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        let Some(cors) = &route.cors else { continue };
        for method in &cors.allow_methods {
            if METHODS.contains(&method.value.as_str()) {
                continue;
            }
            let upper = method.value.to_ascii_uppercase();
            let help = if METHODS.contains(&upper.as_str()) {
                format!("methods are case-sensitive: write `{upper}`")
            } else if let Some(best) = did_you_mean(&method.value, METHODS.into_iter()) {
                format!("did you mean `{best}`?")
            } else {
                "use GET, HEAD, POST, PUT, PATCH, DELETE, CONNECT, OPTIONS, TRACE or `*`".to_owned()
            };
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        method.span,
                        format!("`{}` is not a supported HTTP method", method.value),
                    )
                    .with_help(help),
            );
        }
        if let Some(max_age) = &cors.max_age
            && max_age.ms % 1000 != 0
        {
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        max_age.span,
                        format!(
                            "`maxAge` is {}ms, not a whole number of seconds",
                            max_age.ms
                        ),
                    )
                    .with_help(format!(
                        "round it to whole seconds, e.g. `{}s`",
                        max_age.ms / 1000 + 1
                    )),
            );
        }
    }
}
