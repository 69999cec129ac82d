//! `MESH0201` `unknown-host`: a route or mirror destination host declared nowhere in the repo.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0201",
    name: "unknown-host",
    severity: Severity::Warning,
    summary: "a destination host is declared nowhere in the repo",
    doc: r#"## What it does
Reports a `route[].destination.host`, `mirror.host` or `mirrors[].destination.host` that no
Kubernetes `Service` and no `ServiceEntry` host (wildcards included) in the repo declares.
Short names are resolved in the VirtualService's namespace (`reviews` in `default` is
`reviews.default.svc.cluster.local`).

The rule is a warning by default, because a repo checked offline often routes to services
declared elsewhere (in the cluster, by Helm charts). With `strict-hosts = true` under
`[lint]` in `meshc.toml`, or `--strict-hosts`, it is an error.

## Why is this bad
A destination Istio cannot find gets no cluster: requests routed there fail with 503
(`NR`/`UH`), and mirrored traffic is dropped.

## Example
```yaml
route:
- destination:
    host: reveiws
```

## Use instead
```yaml
route:
- destination:
    host: reviews
```
and declare the host (a `Service` or a `ServiceEntry`) in the repo.

## References
- `istioctl analyze` IST0101 ReferencedResourceNotFound (`virtualservice.DestinationHostAnalyzer`)
"#,
};

pub fn check(ir: &Ir, settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    let severity = if settings.strict_hosts() {
        Severity::Error
    } else {
        Severity::Warning
    };
    let known: Vec<&str> = ir.registry.hosts().map(|(h, _)| h).collect();
    for (vs, route) in ir.http_routes() {
        for (what, dest) in route.destinations() {
            if dest.host.fqdn.is_empty() || ir.registry.lookup(&dest.host.fqdn).is_some() {
                continue;
            }
            // Suggestions compare against every host: only affordable for small repos.
            let suggestion = (known.len() <= 2000)
                .then(|| crate::suggest::did_you_mean(&dest.host.fqdn, known.iter().copied()))
                .flatten();
            let help = match suggestion {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "declare `{}` with a `Service` or a `ServiceEntry`, or fix the name",
                    dest.host.fqdn
                ),
            };
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        dest.host.span,
                        format!(
                            "{what} host {} is declared nowhere in the repo",
                            dest.host.describe()
                        ),
                    )
                    .with_help(help)
                    .with_severity(severity),
            );
        }
    }
}
