//! `MESH0405` `non-idempotent-retry`: POST/PATCH requests retried after the upstream may have
//! processed them.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::regex::Matcher;
use crate::typecheck::{Ir, RetryCondition, StringMatch};

pub static RULE: Rule = Rule {
    code: "MESH0405",
    name: "non-idempotent-retry",
    severity: Severity::Warning,
    summary: "a rule for non-idempotent methods retries after the upstream may have processed the request",
    doc: r#"## What it does
Reports a rule whose every match restricts `method` to `POST` or `PATCH` (exact, or a regex
such as `POST|PATCH`) and whose `retries` (with `attempts` above 0) retry on `5xx`,
`gateway-error`, `reset`, or a 5xx status code.

## Why is this bad
These conditions fire after the upstream received the request, and possibly acted on it: a
payment or an order can be applied twice. Retrying on `connect-failure`, `refused-stream`
or `reset-before-request` is safe, because the request never reached the application.

## Example
```yaml
- match:
  - method: {exact: POST}
    uri: {prefix: /orders}
  retries:
    attempts: 3
    retryOn: 5xx
```

## Use instead
```yaml
  retries:
    attempts: 3
    retryOn: connect-failure,refused-stream,reset-before-request
```
or make the endpoint idempotent (idempotency keys) and suppress the rule for it.

## References
- RFC 9110 section 9.2.2 (idempotent methods); Envoy `x-envoy-retry-on` (`reset-before-request`)
"#,
};

const UNSAFE_METHODS: [&str; 2] = ["POST", "PATCH"];

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        let Some(retries) = &route.retries else {
            continue;
        };
        let Some(retry_on) = &retries.retry_on else {
            continue;
        };
        if retries.attempts() <= 0 || route.matches.is_empty() {
            continue;
        }
        let mut methods: Vec<String> = Vec::new();
        let only_unsafe = route.matches.iter().all(|m| {
            let Some(method) = &m.method else {
                return false;
            };
            let listed = match &method.matcher {
                StringMatch::Exact(x) => Some(vec![x.clone()]),
                StringMatch::Regex(r) => Matcher::new(r).and_then(|m| m.exact_strings()),
                StringMatch::Prefix(_) => None,
            };
            match listed {
                Some(list)
                    if !list.is_empty()
                        && list.iter().all(|x| UNSAFE_METHODS.contains(&x.as_str())) =>
                {
                    methods.extend(list);
                    true
                }
                _ => false,
            }
        });
        if !only_unsafe {
            continue;
        }
        let risky: Vec<&str> = retry_on
            .items
            .iter()
            .filter(|i| match i.condition {
                Some(
                    RetryCondition::FiveXx | RetryCondition::GatewayError | RetryCondition::Reset,
                ) => true,
                Some(RetryCondition::Status(code)) => (500..=599).contains(&code),
                _ => false,
            })
            .map(|i| i.text.trim())
            .collect();
        if risky.is_empty() {
            continue;
        }
        methods.sort();
        methods.dedup();
        diagnostics.push(
            vs.meta
                .diag(
                    &RULE,
                    retry_on.span,
                    format!(
                        "rule {} retries `{}` requests on `{}`: the upstream may already have processed them",
                        route.label(),
                        methods.join("`/`"),
                        risky.join("`, `")
                    ),
                )
                .with_help("retry non-idempotent requests only on `connect-failure,refused-stream,reset-before-request`"),
        );
    }
}
