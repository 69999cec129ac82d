//! `MESH0321` `duplicate-match`: a match entry equal to an earlier one.
//!
//! Reported by the shadowing analysis in `shadowed_rule.rs`, which compares every match
//! entry with the earlier ones once; this file is the rule's identity and documentation.

use super::Rule;
use crate::diagnostic::Severity;

pub static RULE: Rule = Rule {
    code: "MESH0321",
    name: "duplicate-match",
    severity: Severity::Warning,
    summary: "a match entry repeats an earlier one and is never used",
    doc: r#"## What it does
Reports a `match[]` entry that is the same as an earlier entry (of an earlier rule, or of
the same rule), compared without its `name`, when the rule still has other entries that can
apply (a rule all of whose entries are covered is `shadowed-rule`).

## Why is this bad
The first rule with a matching entry wins: the repeated entry never applies. It usually
means a copied rule whose condition was not edited.

## Example
```yaml
- match:
  - headers: {end-user: {exact: jason}}
  route: [{destination: {host: reviews, subset: v2}}]
- match:
  - headers: {end-user: {exact: jason}}
  - headers: {end-user: {exact: kim}}
  route: [{destination: {host: reviews, subset: v3}}]
```

## Use instead
Remove the repeated entry, or change its condition.

## References
- Istio webhook `genMatchHTTPRoutes` (VAL), V13: "virtualService rule %v match %v is not
  used (duplicate/overlapping match in rule %v)"; `istioctl analyze` IST0131
  VirtualServiceIneffectiveMatch
"#,
};
