//! `MESH0107` `invalid-format`: a string that does not have the form its field requires.
//!
//! The check lives in the stage that can see the problem; this file is the rule's identity
//! and its documentation, the single source for `meshc rule MESH0107`.

use super::Rule;
use crate::diagnostic::Severity;

pub static RULE: Rule = Rule {
    code: "MESH0107",
    name: "invalid-format",
    severity: Severity::Error,
    summary: "a string that does not have the form its field requires",
    doc: r#"## What it does
Reports a string that does not match the pattern of its field: a resource name that is not
a DNS-1123 name, a duration that is not a Go duration (`7s`, `1.5s`, `300ms`).

## Why is this bad
The API server or Istio's validation webhook refuses the object.

## Example
```yaml
metadata:
  name: Reviews_VS
```

## Use instead
```yaml
metadata:
  name: reviews-vs
```

## References
- https://kubernetes.io/docs/concepts/overview/working-with-objects/names/
"#,
};
