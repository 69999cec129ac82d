//! `MESH0001` `yaml-syntax`: the file is not valid YAML.
//!
//! The check lives in the stage that can see the problem; this file is the rule's identity
//! and its documentation, the single source for `meshc rule MESH0001`.

use super::Rule;
use crate::diagnostic::Severity;

pub static RULE: Rule = Rule {
    code: "MESH0001",
    name: "yaml-syntax",
    severity: Severity::Error,
    summary: "the file is not valid YAML",
    doc: r#"## What it does
Reports a file that a YAML parser cannot read: bad indentation, an unclosed quote or
bracket, a tab used for indentation, a character YAML forbids (such as NUL).

## Why is this bad
Nothing in the file can be checked or compiled, and `kubectl apply` would refuse it too.
The error points at the first place where the parser gave up.

## Example
```yaml
spec:
  hosts: [reviews
```

## Use instead
```yaml
spec:
  hosts: [reviews]
```

## References
- YAML 1.2 specification, https://yaml.org/spec/1.2.2/
"#,
};
