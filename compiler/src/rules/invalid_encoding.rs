//! `MESH0003` `invalid-encoding`: the file is not UTF-8 text.
//!
//! The check lives in the stage that can see the problem; this file is the rule's identity
//! and its documentation, the single source for `meshc rule MESH0003`.

use super::Rule;
use crate::diagnostic::Severity;

pub static RULE: Rule = Rule {
    code: "MESH0003",
    name: "invalid-encoding",
    severity: Severity::Error,
    summary: "the file is not UTF-8 text",
    doc: r#"## What it does
Reports a file whose bytes are not valid UTF-8, or that contains a NUL byte.

## Why is this bad
YAML is text in a Unicode encoding; Kubernetes reads manifests as UTF-8. A file in another
encoding, or a binary file with a `.yaml` name, cannot be a policy.

## Example
A file saved as Latin-1 with `héllo` in a comment.

## Use instead
Save the file as UTF-8.

## References
- YAML 1.2 specification, section 5.2 (character encodings)
"#,
};
