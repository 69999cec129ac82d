//! `MESH0402` `shadowed-match`: a match entry covered by an earlier entry.
//!
//! Reported by the shadowing analysis in `shadowed_rule.rs`; this file is the rule's identity
//! and documentation.

use super::Rule;
use crate::diagnostic::Severity;

pub static RULE: Rule = Rule {
    code: "MESH0402",
    name: "shadowed-match",
    severity: Severity::Warning,
    summary: "a match entry is covered by an earlier, broader entry and never applies",
    doc: r#"## What it does
Reports a `match[]` entry whose requests all match an earlier entry (of an earlier rule, or
of the same rule) that is broader: a shorter `prefix`, an `exact` path under an earlier
prefix, a regex that an earlier regex or prefix includes, fewer header conditions, and so
on. It is reported when the rule still has other entries that can apply; a rule all of
whose entries are covered is `shadowed-rule`. Equal entries are `duplicate-match`.

The comparison is the one `shadowed-rule` describes; it only claims what it can prove.

## Why is this bad
The first rule with a matching entry wins, so the narrower entry never applies: its rule's
policies (route, timeout, fault) are silently not used for those requests.

## Example
```yaml
- match:
  - uri: {prefix: /api}
  route: [{destination: {host: api-v1}}]
- match:
  - uri: {prefix: /api/v2}      # every /api/v2 request matched /api already
  - uri: {prefix: /beta}
  route: [{destination: {host: api-v2}}]
```

## Use instead
Put the narrower entry in a rule before the broader one.

## References
- Istio webhook `coveredValidation` (VAL), V13a (prefix matches only); `istioctl analyze`
  IST0131 VirtualServiceIneffectiveMatch
"#,
};
