//! `MESH0403` `delay-exceeds-timeout`: an injected delay as long as the route timeout.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0403",
    name: "delay-exceeds-timeout",
    severity: Severity::Warning,
    summary: "a fault delay is not shorter than the rule's timeout",
    doc: r#"## What it does
Reports a rule whose `fault.delay.fixedDelay` (with a percentage above 0) is at least its
`timeout`.

## Why is this bad
The delay eats the whole request budget: with the timeout counted from when the request
arrives, every delayed request times out, so the test measures the timeout and not how
callers cope with a slow service. Istio's documentation also warns that timeouts and
retries are not enabled on a route with client-side faults: then the `timeout` written
here does nothing. Either way the rule does not do what it says.

## Example
```yaml
- fault:
    delay: {fixedDelay: 7s, percentage: {value: 100}}
  timeout: 3s
  route: [{destination: {host: ratings}}]
```

## Use instead
Inject a delay shorter than the timeout, or put the timeout on the calling service's
route (as Istio's request-timeouts task does).

## References
- Istio `HTTPRoute.fault`: "timeouts or retries will not be enabled when faults are enabled
  on the client side"
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        let (Some(timeout), Some(delay)) = (
            &route.timeout,
            route.fault.as_ref().and_then(|f| f.delay.as_ref()),
        ) else {
            continue;
        };
        let Some(fixed) = &delay.fixed else { continue };
        if !delay.effective_percent().is_some_and(|p| p > 0.0) || fixed.ms < timeout.ms {
            continue;
        }
        diagnostics.push(
            vs.meta
                .diag(
                    &RULE,
                    fixed.span,
                    format!(
                        "fault delay of {} is not shorter than the rule's timeout of {}: every delayed request times out",
                        fixed.display(),
                        timeout.display()
                    ),
                )
                .with_label(vs.meta.file, timeout.span, "timeout")
                .with_help("make the delay shorter than the timeout, or set the timeout on the caller's route"),
        );
    }
}
