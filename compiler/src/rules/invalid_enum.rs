//! `MESH0104` `invalid-enum`: a value that is not one of the field's allowed values.
//!
//! The check lives in the stage that can see the problem; this file is the rule's identity
//! and its documentation, the single source for `meshc rule MESH0104`.

use super::Rule;
use crate::diagnostic::Severity;

pub static RULE: Rule = Rule {
    code: "MESH0104",
    name: "invalid-enum",
    severity: Severity::Error,
    summary: "a value that is not one of the field's allowed values",
    doc: r#"## What it does
Reports a value outside the fixed set its field accepts, such as a load balancer name or a
ServiceEntry resolution, and suggests the closest allowed value.

## Why is this bad
The API server refuses the object; a misspelled enum never reaches the proxies.

## Example
```yaml
loadBalancer:
  simple: ROUND_ROBBIN
```

## Use instead
```yaml
loadBalancer:
  simple: ROUND_ROBIN
```

## References
- https://istio.io/latest/docs/reference/config/networking/destination-rule/#LoadBalancerSettings-SimpleLB
"#,
};
