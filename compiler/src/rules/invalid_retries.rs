//! `MESH0305` `invalid-retries`: negative attempts, or a retry policy with `attempts: 0`.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0305",
    name: "invalid-retries",
    severity: Severity::Error,
    summary: "retry attempts are negative, or retries are disabled while other retry fields are set",
    doc: r#"## What it does
Reports `retries.attempts` below 0, and `attempts: 0` (retries disabled) together with
`perTryTimeout`, `retryOn` or `retryRemoteLocalities` (even `false`), which Istio rejects.

## Why is this bad
Istio rejects the VirtualService: "attempts cannot be negative", "http retry policy
configured when attempts are set to 0 (disabled)". The fields suggest retries that never
happen.

## Example
```yaml
retries:
  attempts: 0
  perTryTimeout: 2s
```

## Use instead
```yaml
retries:
  attempts: 3
  perTryTimeout: 2s
```
or `retries: {attempts: 0}` alone to disable retries.

## References
- Istio webhook `ValidateHTTPRetry` (AGT:966), RT1 and RT2
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        let Some(retries) = &route.retries else {
            continue;
        };
        let Some(attempts) = &retries.attempts else {
            continue;
        };
        if attempts.value < 0 {
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        attempts.span,
                        format!("retry attempts are negative ({})", attempts.value),
                    )
                    .with_help(
                        "use 0 to disable retries, or the number of retries after the first try",
                    ),
            );
        } else if attempts.value == 0 {
            let mut others = Vec::new();
            if retries.per_try_timeout_key.is_some() {
                others.push("`perTryTimeout`");
            }
            if retries.retry_on.is_some() {
                others.push("`retryOn`");
            }
            if retries.retry_remote_localities.is_some() {
                others.push("`retryRemoteLocalities`");
            }
            if others.is_empty() {
                continue;
            }
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        attempts.span,
                        format!(
                            "retries are disabled (`attempts: 0`) but {} is set",
                            others.join(" and ")
                        ),
                    )
                    .with_help("set `attempts` above 0, or remove the other retry fields"),
            );
        }
    }
}
