//! `MESH0331` `invalid-host`: a VirtualService host or a destination host that is not a
//! valid domain name (DN1-DN5, DS1).

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::{Ir, host};

pub static RULE: Rule = Rule {
    code: "MESH0331",
    name: "invalid-host",
    severity: Severity::Error,
    summary: "a VirtualService or destination host is not a valid domain name",
    doc: r#"## What it does
Checks the VirtualService `hosts` and every destination host (`route[].destination`,
`mirror`, `mirrors[].destination`) as Istio's `ValidateWildcardDomain` does:
- not empty, at most 255 characters;
- the first label is `*`, or a DNS label optionally preceded by `*` or `*-` (`*.foo.com`,
  `*foo.com`, `*-foo.com`); a wildcard anywhere else is rejected;
- the other labels are DNS labels: 1 to 63 letters, digits and `-`, not starting or ending
  with `-` (upper case is accepted); one trailing dot is allowed;
- the top-level domain is not all digits.

A VirtualService host that is an IP address is accepted. A destination host may not be `*`
and, as in Istio, is not exempt when it is an IP address (`10.0.0.1` has an all-numeric
top-level domain): route to a ServiceEntry host instead. A `*` host on a VirtualService
bound to sidecars is `mesh-wildcard-host`.

## Why is this bad
Istio rejects the VirtualService: "domain name %q invalid (label %q invalid)", "domain name
%q invalid (top level domain %q cannot be all-numeric)", "domain name %q too long (max 255)",
"empty domain name not allowed", "invalid destination host *".

## Example
```yaml
hosts:
- reviews_v2.example.com
http:
- route:
  - destination:
      host: "*"
```

## Use instead
```yaml
hosts:
- reviews-v2.example.com
http:
- route:
  - destination:
      host: reviews
```

## References
- Istio webhook `ValidateVirtualService` (VAL), V6; `validateDestination` DS1, DS2;
  `ValidateWildcardDomain` (AGT), DN1-DN5
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for vs in &ir.virtual_services {
        for h in &vs.hosts {
            // Istio: a host that fails the domain rules but is an IP address is accepted.
            if h.written.parse::<std::net::IpAddr>().is_ok() {
                continue;
            }
            if let Some(why) = host::domain_problem(&h.written) {
                diagnostics.push(
                    vs.meta
                        .diag(
                            &RULE,
                            h.span,
                            format!("host `{}` is not a valid domain name: {why}", h.written),
                        )
                        .with_help("use a DNS name (letters, digits, `-` and `.`), a `*.` wildcard prefix, or an IP address"),
                );
            }
        }
        for route in &vs.http {
            for (what, dest) in route.destinations() {
                let written = &dest.host.written;
                let (message, help) = if written == "*" {
                    (
                        format!("{what} host `*` is not a service"),
                        "name the service to send traffic to".to_owned(),
                    )
                } else if let Some(why) = host::domain_problem(written) {
                    (
                        format!("{what} host `{written}` is not a valid domain name: {why}"),
                        "use a service name or a ServiceEntry host (letters, digits, `-` and `.`)"
                            .to_owned(),
                    )
                } else {
                    continue;
                };
                diagnostics.push(vs.meta.diag(&RULE, dest.host.span, message).with_help(help));
            }
        }
    }
}
