//! `MESH0333` `invalid-gateway-name`: a gateway reference that is not `namespace/name` with
//! DNS labels, nor a valid legacy name (G1-G4).

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::{Ir, Meta, Spanned, VirtualService, host};

pub static RULE: Rule = Rule {
    code: "MESH0333",
    name: "invalid-gateway-name",
    severity: Severity::Error,
    summary: "a gateway reference is not a valid gateway name",
    doc: r#"## What it does
Checks every name in `gateways` and in `match[].gateways`:
- `namespace/name`: both parts present, each a DNS label (letters, digits and `-`, at most
  63 characters; upper case is accepted);
- a name without `/` (`mesh`, `my-gateway`, or the legacy `name.namespace`): a domain name
  without wildcards.

Istio stops at the first name without `/` and does not check the names after it; meshc
checks them all. The legacy `name.namespace` form is `legacy-gateway-name`.

## Why is this bad
Istio rejects the VirtualService: "config namespace and gateway name cannot be empty",
"invalid value for namespace: %q", "invalid value for gateway name: %q", or a domain name
error. Such a name can never refer to a Gateway.

## Example
```yaml
gateways:
- istio-system/
- Ingress_Gateway
```

## Use instead
```yaml
gateways:
- istio-system/ingress-gateway
```

## References
- Istio webhook `validateGatewayNames` (VAL), G1-G4
"#,
};

/// Why Istio rejects a gateway name, or `None`.
fn problem(name: &str) -> Option<(String, &'static str)> {
    match name.split_once('/') {
        Some((ns, gw)) if ns.is_empty() || gw.is_empty() => Some((
            format!("gateway `{name}` has an empty namespace or name"),
            "write `namespace/name`",
        )),
        Some((ns, _)) if !host::is_dns1123_label(ns) => Some((
            format!("gateway `{name}` has an invalid namespace `{ns}`"),
            "a namespace is a DNS label: letters, digits and `-`, at most 63 characters",
        )),
        Some((_, gw)) if !host::is_dns1123_label(gw) => Some((
            format!("gateway `{name}` has an invalid name `{gw}`"),
            "a gateway name is a DNS label: letters, digits and `-`, at most 63 characters",
        )),
        Some(_) => None,
        None => host::fqdn_problem(name).map(|why| {
            (
                format!("gateway `{name}` is not a valid name: {why}"),
                "write `namespace/name`, with letters, digits and `-` in each part",
            )
        }),
    }
}

fn check_names<'a>(
    meta: &Meta,
    names: impl Iterator<Item = &'a Spanned<String>>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    for name in names {
        if let Some((message, help)) = problem(&name.value) {
            diagnostics.push(meta.diag(&RULE, name.span, message).with_help(help));
        }
    }
}

/// Every gateway reference of a VirtualService: top level, then in each match.
pub(crate) fn gateway_names(vs: &VirtualService) -> impl Iterator<Item = &Spanned<String>> {
    vs.gateways.iter().chain(
        vs.http
            .iter()
            .flat_map(|r| r.matches.iter().flat_map(|m| &m.gateway_names)),
    )
}

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for vs in &ir.virtual_services {
        check_names(&vs.meta, gateway_names(vs), diagnostics);
    }
}
