//! `MESH0332` `mesh-wildcard-host`: host `*` on a VirtualService bound to sidecars (V7).

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0332",
    name: "mesh-wildcard-host",
    severity: Severity::Error,
    summary: "a VirtualService bound to sidecars has host `*`",
    doc: r#"## What it does
Reports the host `*` in a VirtualService that applies to sidecars: one without `gateways`,
or with `mesh` among them.

## Why is this bad
Istio rejects the VirtualService: "wildcard host * is not allowed for virtual services bound
to the mesh gateway". On a sidecar, `*` would capture the traffic to every service.

## Example
```yaml
spec:
  hosts:
  - "*"
  http:
  - route:
    - destination:
        host: productpage
```

## Use instead
Bind it to a gateway, or name the hosts:
```yaml
spec:
  hosts:
  - "*"
  gateways:
  - bookinfo-gateway
```

## References
- Istio webhook `ValidateVirtualService` (VAL), V7
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for vs in &ir.virtual_services {
        if !vs.is_mesh_bound() {
            continue;
        }
        for h in vs.hosts.iter().filter(|h| h.written == "*") {
            let help = if vs.gateways.is_empty() {
                "bind the VirtualService to a gateway with `gateways`, or name the hosts"
            } else {
                "remove `mesh` from `gateways`, or name the hosts"
            };
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        h.span,
                        "host `*` is not allowed on a VirtualService that applies to sidecars (`mesh`)",
                    )
                    .with_help(help),
            );
        }
    }
}
