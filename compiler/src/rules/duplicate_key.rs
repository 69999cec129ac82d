//! `MESH0002` `duplicate-key`: a mapping has the same key twice.
//!
//! The check lives in the stage that can see the problem; this file is the rule's identity
//! and its documentation, the single source for `meshc rule MESH0002`.

use super::Rule;
use crate::diagnostic::Severity;

pub static RULE: Rule = Rule {
    code: "MESH0002",
    name: "duplicate-key",
    severity: Severity::Error,
    summary: "a mapping has the same key twice",
    doc: r#"## What it does
Reports a mapping in which one key appears twice.

## Why is this bad
YAML forbids duplicate keys, but many tools accept them and keep either the first or the
last value. `kubectl` keeps the last one, so a reviewer reading the first one sees a policy
that is not the one applied.

## Example
```yaml
route:
- destination:
    host: reviews
    subset: v1
    subset: v2
```

## Use instead
```yaml
route:
- destination:
    host: reviews
    subset: v2
```

## References
- YAML 1.2 specification, section 3.2.1.1 (mapping keys are unique)
"#,
};
