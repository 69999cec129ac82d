//! `MESH0334` `legacy-gateway-name`: a gateway named in the legacy `name.namespace` form (G1).

use super::Rule;
use super::invalid_gateway_name::gateway_names;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0334",
    name: "legacy-gateway-name",
    severity: Severity::Warning,
    summary: "a gateway is named `name.namespace` instead of `namespace/name`",
    doc: r#"## What it does
Reports a name in `gateways` or `match[].gateways` that has no `/` but has a `.`: the
legacy `name.namespace` form.

## Why is this bad
Istio accepts it with a warning: "using legacy gatewayName format %q; prefer the
<namespace>/<name> format: %q". It also stops checking the remaining gateway names after
it, so mistakes later in the list go unnoticed until the route does not apply.

## Example
```yaml
gateways:
- ingress.istio-system
```

## Use instead
```yaml
gateways:
- istio-system/ingress
```

## References
- Istio webhook `validateGatewayNames` (VAL), G1
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for vs in &ir.virtual_services {
        for name in gateway_names(vs) {
            if name.value.contains('/') {
                continue;
            }
            let mut parts = name.value.split('.');
            let (Some(gw), Some(ns)) = (parts.next(), parts.next()) else {
                continue;
            };
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        name.span,
                        format!(
                            "gateway `{}` uses the legacy `name.namespace` form",
                            name.value
                        ),
                    )
                    .with_help(format!("write `{ns}/{gw}`")),
            );
        }
    }
}
