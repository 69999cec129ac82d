//! `MESH0313` `invalid-header-value`: a header value with control characters.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::{HeaderOps, Ir, Meta};

pub static RULE: Rule = Rule {
    code: "MESH0313",
    name: "invalid-header-value",
    severity: Severity::Error,
    summary: "a header value to set or add contains control characters",
    doc: r#"## What it does
Reports a value in `headers.request/response.set/add` that contains a control character
(0x00-0x08, 0x0A-0x1F or 0x7F; a tab is allowed).

## Why is this bad
Istio rejects the VirtualService ("header value configuration %s is invalid"); a line break
in a header value would split the header.

## Example
```yaml
headers:
  response:
    set:
      x-note: "line one\nline two"
```

## Use instead
```yaml
      x-note: "line one; line two"
```

## References
- Istio webhook `ValidateHTTPHeaderValue` (VAL), HD5
"#,
};

fn bad(value: &str) -> bool {
    value
        .bytes()
        .any(|b| matches!(b, 0x00..=0x08 | 0x0A..=0x1F | 0x7F))
}

fn check_ops(ops: &HeaderOps, meta: &Meta, diagnostics: &mut Vec<Diagnostic>) {
    let all = [&ops.request, &ops.response]
        .into_iter()
        .flat_map(|set| set.set.iter().chain(&set.add));
    for (name, value) in all {
        if bad(&value.value) {
            diagnostics.push(
                meta.diag(
                    &RULE,
                    value.span,
                    format!(
                        "the value of header `{}` contains a control character",
                        name.value
                    ),
                )
                .with_help("remove line breaks and other control characters from the value"),
            );
        }
    }
}

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        check_ops(&route.headers, &vs.meta, diagnostics);
        for dest in &route.route {
            check_ops(&dest.headers, &vs.meta, diagnostics);
        }
    }
}
