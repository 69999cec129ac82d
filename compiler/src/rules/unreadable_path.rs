//! `MESH0005` `unreadable-path`: a file or directory under a given path cannot be read.
//!
//! The check lives in the stage that can see the problem; this file is the rule's identity
//! and its documentation, the single source for `meshc rule MESH0005`.

use super::Rule;
use crate::diagnostic::Severity;

pub static RULE: Rule = Rule {
    code: "MESH0005",
    name: "unreadable-path",
    severity: Severity::Error,
    summary: "a file or directory under a given path cannot be read",
    doc: r#"## What it does
Reports a file or directory found while walking a policy directory that cannot be read:
permission denied, a broken symbolic link, or a symbolic link that loops back to a
directory already being walked.

## Why is this bad
A policy file that cannot be read is a policy that is not checked. meshc reports it rather
than skipping it silently, and never follows a link loop forever.

## Example
```text
policies/loop -> policies
```

## Use instead
Remove the link, or point it at a directory outside the walked tree.
"#,
};
