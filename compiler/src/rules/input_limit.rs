//! `MESH0004` `input-limit`: the input is over a size, depth or alias limit.
//!
//! The check lives in the stage that can see the problem; this file is the rule's identity
//! and its documentation, the single source for `meshc rule MESH0004`.

use super::Rule;
use crate::diagnostic::Severity;

pub static RULE: Rule = Rule {
    code: "MESH0004",
    name: "input-limit",
    severity: Severity::Error,
    summary: "the input is over a size, depth or alias limit",
    doc: r#"## What it does
Reports a file that is larger than `limits.max-file-bytes` (64 MiB by default), holds more
than 100,000 documents, nests deeper than 64 levels, or expands YAML aliases past the alias
budget (a "billion laughs" alias bomb).

## Why is this bad
meshc runs in every pipeline and must finish in bounded time and memory whatever it is
given. No real policy comes near these limits; a file that does is a mistake or an attack.

## Example
```yaml
a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
# ... and so on: each level multiplies the size by nine
```

## Use instead
Split very large generated files; do not use aliases to build large structures.

## References
- https://en.wikipedia.org/wiki/Billion_laughs_attack
"#,
};
