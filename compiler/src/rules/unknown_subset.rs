//! `MESH0202` `unknown-subset`: a destination names a subset no DestinationRule defines.

use std::collections::HashMap;

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::suggest::did_you_mean;
use crate::typecheck::{DestinationRule, Ir, host};

pub static RULE: Rule = Rule {
    code: "MESH0202",
    name: "unknown-subset",
    severity: Severity::Error,
    summary: "a destination names a subset that no DestinationRule defines for its host",
    doc: r#"## What it does
Reports a route or mirror destination whose `subset` is not defined by any DestinationRule
for that host (hosts compared after resolving short names; a DestinationRule with a
wildcard host counts for the hosts it covers).

## Why is this bad
Istio builds no cluster for an undefined subset: requests routed to it fail with 503
(`NR`), often only for the share of traffic that a weighted split sends there.

## Example
```yaml
route:
- destination:
    host: reviews
    subset: v4      # the DestinationRule for reviews defines v1, v2, v3
```

## Use instead
Route to a defined subset, or add the subset (with its labels) to the DestinationRule.

## References
- `istioctl analyze` IST0101 ReferencedResourceNotFound, reference `host+subset in
  destinationrule` (`virtualservice.DestinationRuleAnalyzer`)
"#,
};

/// DestinationRules by resolved host; wildcard hosts kept apart.
pub(crate) struct RulesByHost<'a> {
    exact: HashMap<&'a str, Vec<&'a DestinationRule>>,
    wildcard: Vec<&'a DestinationRule>,
}

impl<'a> RulesByHost<'a> {
    pub(crate) fn new(ir: &'a Ir) -> Self {
        let mut index = RulesByHost {
            exact: HashMap::new(),
            wildcard: Vec::new(),
        };
        for dr in &ir.destination_rules {
            let Some(h) = &dr.host else { continue };
            if host::is_wildcard(&h.fqdn) {
                index.wildcard.push(dr);
            } else {
                index.exact.entry(&h.fqdn).or_default().push(dr);
            }
        }
        index
    }

    /// The DestinationRules that apply to `fqdn`, exact ones first.
    pub(crate) fn for_host(&self, fqdn: &str) -> Vec<&'a DestinationRule> {
        let mut found: Vec<&DestinationRule> = self.exact.get(fqdn).cloned().unwrap_or_default();
        found.extend(self.wildcard.iter().copied().filter(|dr| {
            dr.host
                .as_ref()
                .is_some_and(|h| host::covers(&h.fqdn, fqdn))
        }));
        found
    }
}

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    let by_host = RulesByHost::new(ir);
    for (vs, route) in ir.http_routes() {
        for (what, dest) in route.destinations() {
            let Some(subset) = &dest.subset else { continue };
            let rules = by_host.for_host(&dest.host.fqdn);
            if rules
                .iter()
                .any(|dr| dr.subsets.iter().any(|s| s.name.value == subset.value))
            {
                continue;
            }
            let mut d = vs.meta.diag(
                &RULE,
                subset.span,
                format!(
                    "{what} subset `{}` of {} is not defined by any DestinationRule",
                    subset.value,
                    dest.host.describe()
                ),
            );
            if rules.is_empty() {
                d = d.with_help(format!(
                    "add a DestinationRule for `{}` that defines subset `{}`",
                    dest.host.fqdn, subset.value
                ));
            } else {
                let names: Vec<&str> = rules
                    .iter()
                    .flat_map(|dr| dr.subsets.iter().map(|s| s.name.value.as_str()))
                    .collect();
                d = d.with_help(match did_you_mean(&subset.value, names.iter().copied()) {
                    _ if names.is_empty() => {
                        "the DestinationRule for this host defines no subsets: add one".to_owned()
                    }
                    Some(best) if names.len() == 1 || subset.value.len() > 3 => {
                        format!("did you mean `{best}`?")
                    }
                    _ => format!("defined subsets: `{}`", names.join("`, `")),
                });
                if let Some(h) = &rules[0].host {
                    d = d.with_label(
                        rules[0].meta.file,
                        h.span,
                        "the DestinationRule for this host",
                    );
                }
            }
            diagnostics.push(d);
        }
    }
}
