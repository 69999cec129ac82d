//! `MESH0102` `invalid-type`: a value of the wrong type.
//!
//! The check lives in the stage that can see the problem; this file is the rule's identity
//! and its documentation, the single source for `meshc rule MESH0102`.

use super::Rule;
use crate::diagnostic::Severity;

pub static RULE: Rule = Rule {
    code: "MESH0102",
    name: "invalid-type",
    severity: Severity::Error,
    summary: "a value of the wrong type",
    doc: r#"## What it does
Reports a value whose type is not the one the field takes: a string where a number is
expected, a bare number where a duration string is expected, a mapping where a list is
expected.

## Why is this bad
The API server refuses the object, or a tool that converts it guesses. `timeout: 7` is not
seven seconds: Istio wants the string `7s`.

## Example
```yaml
timeout: 7
```

## Use instead
```yaml
timeout: 7s
```

## References
- https://istio.io/latest/docs/reference/config/networking/virtual-service/
"#,
};
