//! `MESH0101` `unknown-field`: a field that the kind does not have.
//!
//! The check lives in the stage that can see the problem; this file is the rule's identity
//! and its documentation, the single source for `meshc rule MESH0101`.

use super::Rule;
use crate::diagnostic::Severity;

pub static RULE: Rule = Rule {
    code: "MESH0101",
    name: "unknown-field",
    severity: Severity::Error,
    summary: "a field that the kind does not have",
    doc: r#"## What it does
Reports a mapping key that the schema of the kind does not define at that place, with a
suggestion when a known field has a close name (`retires` -> `retries`).

## Why is this bad
Istio's control plane ignores unknown fields and the Kubernetes API server prunes them
silently, so a typo turns a policy off without any error: `retires:` means no retries at all.

## Example
```yaml
http:
- retires:
    attempts: 3
```

## Use instead
```yaml
http:
- retries:
    attempts: 3
```

## References
- https://istio.io/latest/docs/reference/config/networking/virtual-service/
"#,
};
