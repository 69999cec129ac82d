//! `MESH0007` `unsupported-api-version`: a known kind with an API version meshc does not know.
//!
//! The check lives in the stage that can see the problem; this file is the rule's identity
//! and its documentation, the single source for `meshc rule MESH0007`.

use super::Rule;
use crate::diagnostic::Severity;

pub static RULE: Rule = Rule {
    code: "MESH0007",
    name: "unsupported-api-version",
    severity: Severity::Error,
    summary: "a known kind with an API version meshc does not know",
    doc: r#"## What it does
Reports a `VirtualService`, `DestinationRule`, `ServiceEntry` or `WorkloadEntry` whose
`apiVersion` is not `networking.istio.io/v1`, `v1beta1` or `v1alpha3`, and a `Service`
whose `apiVersion` is not `v1`.

## Why is this bad
The cluster would refuse the object (no such version is served), or, with a typo in the
group, treat it as an unrelated custom resource that routes nothing.

## Example
```yaml
apiVersion: networking.istio.io/v2
kind: VirtualService
```

## Use instead
```yaml
apiVersion: networking.istio.io/v1
kind: VirtualService
```

## References
- https://istio.io/latest/docs/reference/config/networking/virtual-service/
"#,
};
