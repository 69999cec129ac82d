//! `MESH0204` `missing-port`: a destination without a port, on a service with several.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0204",
    name: "missing-port",
    severity: Severity::Error,
    summary: "a destination gives no port while its service exposes several",
    doc: r#"## What it does
Reports a route or mirror destination without `port` whose host is declared with more than
one port.

## Why is this bad
Istio cannot tell which port the route is for; `istioctl analyze` rejects the
VirtualService and the route may be applied to the wrong port.

## Example
```yaml
# the api Service exposes 8080 (http) and 8443 (https)
route:
- destination:
    host: api
```

## Use instead
```yaml
route:
- destination:
    host: api
    port:
      number: 8080
```

## References
- `istioctl analyze` IST0112 VirtualServiceDestinationPortSelectorRequired
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        for (what, dest) in route.destinations() {
            if dest.port.is_some() {
                continue;
            }
            let Some(info) = ir.registry.lookup(&dest.host.fqdn) else {
                continue;
            };
            if info.ports_unknown || info.ports.len() < 2 {
                continue;
            }
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        dest.host.span,
                        format!(
                            "{what} {} gives no port, and the service exposes several ({})",
                            dest.host.describe(),
                            super::unknown_port::port_list(info)
                        ),
                    )
                    .with_help(format!(
                        "add `port: {{number: {}}}` (or another of its ports) to the destination",
                        info.ports[0].number
                    )),
            );
        }
    }
}
