//! `MESH0106` `missing-field`: a required field is missing.
//!
//! The check lives in the stage that can see the problem; this file is the rule's identity
//! and its documentation, the single source for `meshc rule MESH0106`.

use super::Rule;
use crate::diagnostic::Severity;

pub static RULE: Rule = Rule {
    code: "MESH0106",
    name: "missing-field",
    severity: Severity::Error,
    summary: "a required field is missing",
    doc: r#"## What it does
Reports a mapping that lacks a field its kind requires, such as `host` in a destination or
`name` in a subset.

## Why is this bad
The API server refuses the object.

## Example
```yaml
route:
- destination:
    subset: v1
```

## Use instead
```yaml
route:
- destination:
    host: reviews
    subset: v1
```

## References
- https://istio.io/latest/docs/reference/config/networking/virtual-service/#Destination
"#,
};
