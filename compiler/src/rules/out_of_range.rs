//! `MESH0103` `out-of-range`: a number outside the range the field allows.
//!
//! The check lives in the stage that can see the problem; this file is the rule's identity
//! and its documentation, the single source for `meshc rule MESH0103`.

use super::Rule;
use crate::diagnostic::Severity;

pub static RULE: Rule = Rule {
    code: "MESH0103",
    name: "out-of-range",
    severity: Severity::Error,
    summary: "a number outside the range the field allows",
    doc: r#"## What it does
Reports a number below the minimum or above the maximum of its field: a port outside
1..65535, a percentage outside 0..100, a list shorter than required.

## Why is this bad
The API server refuses such an object, so the change never ships; meshc says so before the
merge rather than during the rollout.

## Example
```yaml
destination:
  host: reviews
  port:
    number: 70000
```

## Use instead
```yaml
destination:
  host: reviews
  port:
    number: 9080
```

## References
- https://istio.io/latest/docs/reference/config/networking/virtual-service/#PortSelector
"#,
};
