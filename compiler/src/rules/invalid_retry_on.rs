//! `MESH0306` `invalid-retry-on`: an unknown `retryOn` condition, or stray spaces or empty
//! items in the list.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::suggest::did_you_mean;
use crate::typecheck::{Ir, retry_on};

pub static RULE: Rule = Rule {
    code: "MESH0306",
    name: "invalid-retry-on",
    severity: Severity::Error,
    summary: "a `retryOn` item is not a retry condition Istio accepts",
    doc: r#"## What it does
Splits `retries.retryOn` on `,` as Istio does and checks each item: an Envoy HTTP condition
(`5xx`, `gateway-error`, `reset`, `reset-before-request`, `connect-failure`,
`retriable-4xx`, `refused-stream`, `retriable-status-codes`, `retriable-headers`,
`envoy-ratelimited`, `http3-post-connect-failure`), a gRPC status (`cancelled`,
`deadline-exceeded`, `internal`, `resource-exhausted`, `unavailable`), or an HTTP status
code Go's `net/http` knows (`503`, `418`; not `306`, `509`, `600`). Items with spaces around
them and empty items (`5xx, reset`, `5xx,,reset`) are reported too, with the list as Istio
would accept it.

## Why is this bad
Istio rejects the VirtualService: "%q is not a valid retryOn policy". Its validator does not
trim items, so `"5xx, reset"` fails on `" reset"` although the converter would trim it.

## Example
```yaml
retries:
  attempts: 3
  retryOn: 5xx, gateway-eror
```

## Use instead
```yaml
  retryOn: 5xx,gateway-error
```

## References
- Istio webhook `ValidateHTTPRetry` (AGT:966), RT4; `supportedRetryOnPolicies` (AGT:940)
- https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/router_filter#x-envoy-retry-on
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        let Some(retry_on) = route.retries.as_ref().and_then(|r| r.retry_on.as_ref()) else {
            continue;
        };
        let mut unclean = false;
        for item in &retry_on.items {
            let token = item.text.trim();
            if !item.is_clean() {
                unclean = true;
            }
            if token.is_empty() {
                continue;
            }
            if item.condition.is_none() {
                let help = match did_you_mean(token, retry_on::NAMES.into_iter()) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None if token.parse::<i64>().is_ok() => {
                        "numeric items must be HTTP status codes Go knows, such as 503".to_owned()
                    }
                    None => format!("known conditions: {}", retry_on::NAMES.join(", ")),
                };
                diagnostics.push(
                    vs.meta
                        .diag(
                            &RULE,
                            retry_on.span,
                            format!("`{token}` is not a valid `retryOn` condition"),
                        )
                        .with_help(help),
                );
            }
        }
        if unclean {
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        retry_on.span,
                        format!(
                            "`retryOn` `{}` has spaces around an item or an empty item: Istio splits on `,` without trimming and rejects it",
                            retry_on.raw
                        ),
                    )
                    .with_help(format!("write `retryOn: {}`", retry_on.fixed())),
            );
        }
    }
}
