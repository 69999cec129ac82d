//! `MESH0320` `unreachable-rule`: a rule without `match` before the last rule.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0320",
    name: "unreachable-rule",
    severity: Severity::Warning,
    summary: "a rule without `match` comes before other rules, which are never used",
    doc: r#"## What it does
Reports an `http` rule without `match` (it matches every request) that is not the last
rule; the rules after it are labelled. Rules whose every match is covered by earlier rules
are `shadowed-rule`.

## Why is this bad
Istio evaluates rules in order and the first match wins: nothing after a catch-all rule is
ever used. Istio warns "virtualService rule %v not used (only the last rule can have no
matches)".

## Example
```yaml
http:
- route:
  - destination: {host: reviews, subset: v1}
- match:
  - headers: {end-user: {exact: jason}}
  route:
  - destination: {host: reviews, subset: v2}
```

## Use instead
Put the catch-all rule last.

## References
- Istio webhook `analyzeUnreachableHTTPRules` (VAL), V12; `istioctl analyze` IST0130
  VirtualServiceUnreachableRule
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for vs in &ir.virtual_services {
        let Some(catch_all) = vs.http.iter().position(|r| r.matches.is_empty()) else {
            continue;
        };
        let later = &vs.http[catch_all + 1..];
        if later.is_empty() {
            continue;
        }
        let rule = &vs.http[catch_all];
        let mut d = vs
            .meta
            .diag(
                &RULE,
                rule.anchor(),
                format!(
                    "rule {} has no `match` and is not the last rule: the {} after it {} never used",
                    rule.label(),
                    if later.len() == 1 { "rule".to_owned() } else { format!("{} rules", later.len()) },
                    if later.len() == 1 { "is" } else { "are" },
                ),
            )
            .with_help("move the rule without `match` to the end of `http`, or give it a `match`");
        for r in later.iter().take(3) {
            d = d.with_label(
                vs.meta.file,
                r.anchor(),
                format!("rule {} is never used", r.label()),
            );
        }
        diagnostics.push(d);
    }
}
