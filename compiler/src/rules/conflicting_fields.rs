//! `MESH0105` `conflicting-fields`: two fields that exclude each other are both set.
//!
//! The check lives in the stage that can see the problem; this file is the rule's identity
//! and its documentation, the single source for `meshc rule MESH0105`.

use super::Rule;
use crate::diagnostic::Severity;

pub static RULE: Rule = Rule {
    code: "MESH0105",
    name: "conflicting-fields",
    severity: Severity::Error,
    summary: "two fields that exclude each other are both set",
    doc: r#"## What it does
Reports two fields of a `oneof` set together, such as `exact` and `prefix` in one string
match, or `httpStatus` and `grpcStatus` in one abort.

## Why is this bad
Only one of them can take effect. Istio's CRD schema rejects the object.

## Example
```yaml
uri:
  exact: /ratings
  prefix: /ratings/
```

## Use instead
```yaml
uri:
  prefix: /ratings
```

## References
- https://istio.io/latest/docs/reference/config/networking/virtual-service/#StringMatch
"#,
};
