//! `MESH0404` `retries-exceed-timeout`: per-try timeouts and attempts that do not fit in the
//! route timeout.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0404",
    name: "retries-exceed-timeout",
    severity: Severity::Warning,
    summary: "the retry policy does not fit in the rule's timeout",
    doc: r#"## What it does
Compares `retries` with the rule's `timeout` (the budget for the whole request, retries
included):
- `perTryTimeout` longer than `timeout`: the per-try limit never applies;
- `attempts` more than the retries that can start before the timeout when tries time out:
  with tries cut at `perTryTimeout`, try k starts at k × perTryTimeout, so only
  ceil(timeout / perTryTimeout) tries can start. The message says how many retries fit.
Backoff between tries is not counted (it only makes fewer tries fit).

## Why is this bad
The configuration promises more resilience than it delivers: when an upstream hangs, the
route timeout ends the request before the configured retries run.

## Example
```yaml
timeout: 5s
retries:
  attempts: 5
  perTryTimeout: 2s    # tries start at 0s, 2s, 4s: only 2 retries fit
```

## Use instead
```yaml
timeout: 12s
retries:
  attempts: 5
  perTryTimeout: 2s
```
or fewer attempts, or a shorter `perTryTimeout`.

## References
- Istio `HTTPRetry.perTryTimeout`, `HTTPRoute.timeout`; Envoy `x-envoy-upstream-rq-per-try-timeout-ms`
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        let (Some(timeout), Some(retries)) = (&route.timeout, &route.retries) else {
            continue;
        };
        let Some(per_try) = &retries.per_try_timeout else {
            continue;
        };
        let attempts = retries.attempts();
        if attempts <= 0 || per_try.ms == 0 {
            continue;
        }
        if per_try.ms > timeout.ms {
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        per_try.span,
                        format!(
                            "`perTryTimeout` of {} is longer than the rule's timeout of {}: the first try is cut off by the timeout, and no retry can start",
                            per_try.display(),
                            timeout.display()
                        ),
                    )
                    .with_label(vs.meta.file, timeout.span, "timeout")
                    .with_help("make `perTryTimeout` a fraction of `timeout` (timeout / (attempts + 1))"),
            );
            continue;
        }
        let tries_that_start = timeout.ms.div_ceil(per_try.ms) as i64;
        let retries_that_fit = tries_that_start - 1;
        if attempts > retries_that_fit {
            let span = retries.attempts.as_ref().map_or(retries.span, |a| a.span);
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        span,
                        format!(
                            "{attempts} retries of {} each do not fit in the rule's timeout of {}: when tries time out, only {retries_that_fit} {} can start",
                            per_try.display(),
                            timeout.display(),
                            if retries_that_fit == 1 { "retry" } else { "retries" }
                        ),
                    )
                    .with_label(vs.meta.file, timeout.span, "timeout")
                    .with_help(format!(
                        "raise `timeout` to at least {} or lower `attempts` to {retries_that_fit}",
                        crate::typecheck::duration::format_ms(i128::from(per_try.ms) * i128::from(attempts + 1))
                    )),
            );
        }
    }
}
