//! `MESH0006` `invalid-resource`: a document is not a Kubernetes resource.
//!
//! The check lives in the stage that can see the problem; this file is the rule's identity
//! and its documentation, the single source for `meshc rule MESH0006`.

use super::Rule;
use crate::diagnostic::Severity;

pub static RULE: Rule = Rule {
    code: "MESH0006",
    name: "invalid-resource",
    severity: Severity::Error,
    summary: "a document is not a Kubernetes resource",
    doc: r#"## What it does
Reports a YAML document that is not a mapping with `apiVersion`, `kind` and
`metadata.name` strings.

## Why is this bad
Every object in a policy repo is applied to Kubernetes, which needs these three fields to
know what the object is and what it is called.

## Example
```yaml
kind: VirtualService
spec:
  hosts: [reviews]
```

## Use instead
```yaml
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
```

## References
- https://kubernetes.io/docs/concepts/overview/working-with-objects/
"#,
};
