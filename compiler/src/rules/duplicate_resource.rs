//! `MESH0008` `duplicate-resource`: the same kind, namespace and name is defined twice.
//!
//! The check lives in the stage that can see the problem; this file is the rule's identity
//! and its documentation, the single source for `meshc rule MESH0008`.

use super::Rule;
use crate::diagnostic::Severity;

pub static RULE: Rule = Rule {
    code: "MESH0008",
    name: "duplicate-resource",
    severity: Severity::Error,
    summary: "the same kind, namespace and name is defined twice",
    doc: r#"## What it does
Reports a resource whose kind, namespace and name are those of an earlier resource in the
repo. Both places are shown.

## Why is this bad
Kubernetes keeps one object per kind, namespace and name: the second `kubectl apply` silently
replaces the first. Which policy ends up live depends on the order files are applied in.

## Example
```yaml
# vs-a.yaml
kind: VirtualService
metadata: {name: reviews}
# vs-b.yaml
kind: VirtualService
metadata: {name: reviews}
```

## Use instead
Rename one of them, or merge their rules into one resource.
"#,
};
