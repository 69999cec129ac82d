//! `MESH0301` `invalid-duration`: a duration below 1ms or not a whole number of milliseconds.
//!
//! Typecheck reports it while reading durations (it cannot represent them); this file is the
//! rule's identity and documentation.

use super::Rule;
use crate::diagnostic::Severity;

pub static RULE: Rule = Rule {
    code: "MESH0301",
    name: "invalid-duration",
    severity: Severity::Error,
    summary: "a duration is below 1ms or not a whole number of milliseconds",
    doc: r#"## What it does
Reads every duration (`timeout`, `retries.perTryTimeout`, `retries.backoff`,
`fault.delay.fixedDelay`, `corsPolicy.maxAge`, and the DestinationRule durations such as
`connectTimeout`, `idleTimeout`, `interval`, `baseEjectionTime`) with Go's
`time.ParseDuration` syntax, as Istio does (`7s`, `1.5s`, `300ms`, `1h30m`, `100us`, a sign
allowed), and reports values below 1ms, negative values and values that are not a whole
number of milliseconds. `tcp.idleTimeout: 0s` is allowed (it disables the timeout).
Text that is not a Go duration at all is reported by the schema (`invalid-format`).

## Why is this bad
Istio rejects the resource: "duration must be greater than 1ms" and "only durations to ms
precision are supported".

## Example
```yaml
timeout: 500us
retries:
  perTryTimeout: 1.0005s
```

## Use instead
```yaml
timeout: 1ms
retries:
  perTryTimeout: 1001ms
```

## References
- Istio webhook `ValidateDuration` (AGT), D1 and D2; CRD CEL rule `duration(self) >= duration('1ms')`
"#,
};
