//! `MESH0330` `jwt-claim-route-in-mesh`: routing on JWT claims in a VirtualService bound to
//! sidecars (V5).

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0330",
    name: "jwt-claim-route-in-mesh",
    severity: Severity::Error,
    summary: "a mesh-bound VirtualService matches on JWT claims, which only gateways support",
    doc: r#"## What it does
Reports a `match[].headers` or `withoutHeaders` key of the form `@request.auth.claims.…`
(or `@request.auth.claims[…]`) in a VirtualService that applies to sidecars: one without
`gateways`, or with `mesh` among them.

## Why is this bad
Istio rejects the VirtualService: "JWT claim based routing (key: %s) is only supported for
gateway, found no gateways: %v". Claims are available for routing only on a gateway that
validates the token with a RequestAuthentication.

## Example
```yaml
spec:
  hosts:
  - reviews
  http:
  - match:
    - headers:
        "@request.auth.claims.group":
          exact: admin
```

## Use instead
```yaml
spec:
  hosts:
  - reviews.example.com
  gateways:
  - istio-system/public
  http:
  - match:
    - headers:
        "@request.auth.claims.group":
          exact: admin
```

## References
- Istio webhook `ValidateVirtualService` (VAL), V5
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        if !vs.is_mesh_bound() {
            continue;
        }
        for m in &route.matches {
            for h in m.headers.iter().chain(&m.without_headers) {
                // Header names are lower case in the IR; Istio matches the prefix in any case.
                if h.name.starts_with("@request.auth.claims") {
                    diagnostics.push(
                        vs.meta
                            .diag(
                                &RULE,
                                h.name_span,
                                format!(
                                    "JWT claim routing (`{}`) is supported only on gateways, and this VirtualService applies to sidecars",
                                    h.name
                                ),
                            )
                            .with_help("bind the VirtualService to gateways (without `mesh`), or match on a header the client sends"),
                    );
                }
            }
        }
    }
}
