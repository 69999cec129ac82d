//! `MESH0203` `unknown-port`: a destination port that the declared service does not expose.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::{HostInfo, Ir};

pub static RULE: Rule = Rule {
    code: "MESH0203",
    name: "unknown-port",
    severity: Severity::Error,
    summary: "a destination port is not a port of the declared service",
    doc: r#"## What it does
Reports a route or mirror destination whose `port.number` is not among the ports of the
`Service` or `ServiceEntry` that declares the host. Hosts declared nowhere are left to
`unknown-host`.

## Why is this bad
Istio names clusters by host and port (`outbound|9081||reviews...`); there is no cluster
for a port the service does not have, and requests fail with 503.

## Example
```yaml
# the reviews Service exposes 9080
route:
- destination:
    host: reviews
    port:
      number: 9081
```

## Use instead
```yaml
    port:
      number: 9080
```

## References
- `istioctl analyze` IST0101 ReferencedResourceNotFound, reference `host:port`
  (`virtualservice.DestinationHostAnalyzer`)
"#,
};

pub(crate) fn port_list(info: &HostInfo) -> String {
    info.ports
        .iter()
        .map(|p| p.number.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        for (what, dest) in route.destinations() {
            let Some(port) = &dest.port else { continue };
            let Some(info) = ir.registry.lookup(&dest.host.fqdn) else {
                continue;
            };
            if info.ports_unknown || info.ports.iter().any(|p| p.number == port.value) {
                continue;
            }
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        port.span,
                        format!(
                            "{what} port {} is not a port of {}",
                            port.value,
                            dest.host.describe()
                        ),
                    )
                    .with_help(format!("its ports: {}", port_list(info))),
            );
        }
    }
}
