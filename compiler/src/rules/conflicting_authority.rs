//! `MESH0329` `conflicting-authority`: the authority is set in more than one place (HD7).

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::source::Span;
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0329",
    name: "conflicting-authority",
    severity: Severity::Error,
    summary: "an HTTP rule sets the authority more than once",
    doc: r#"## What it does
Reports an `http` rule that sets the request authority in more than one of:
`rewrite.authority`, and `headers.request.set` or `headers.request.add` of `host` or
`:authority` (any case). Header operations on a single destination (`route[].headers`) are
not counted, as in Istio.

## Why is this bad
Istio rejects the VirtualService: "authority header cannot be set multiple times: have %q,
attempting to set %q". Only one value can reach the upstream.

## Example
```yaml
rewrite:
  authority: reviews.internal
headers:
  request:
    set:
      host: reviews.example.com
```

## Use instead
```yaml
rewrite:
  authority: reviews.internal
```

## References
- Istio webhook `validateAuthorityRewrite` (VSV), HD7
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        let mut places: Vec<(Span, String, &str)> = Vec::new();
        if let Some(a) = route
            .rewrite
            .as_ref()
            .and_then(|r| r.authority_value.as_ref())
            .filter(|a| !a.value.is_empty())
        {
            places.push((a.span, a.value.clone(), "rewrite.authority"));
        }
        let request = &route.headers.request;
        for (pairs, op) in [(&request.set, "set"), (&request.add, "add")] {
            for (name, value) in pairs {
                if name.value.eq_ignore_ascii_case("host")
                    || name.value.eq_ignore_ascii_case(":authority")
                {
                    places.push((name.span, value.value.clone(), op));
                }
            }
        }
        let Some((first_span, first_value, first_place)) = places.first() else {
            continue;
        };
        for (span, value, place) in places.iter().skip(1) {
            let place = if *place == "rewrite.authority" {
                "`rewrite.authority`".to_owned()
            } else {
                format!("`headers.request.{place}`")
            };
            let first = if *first_place == "rewrite.authority" {
                "`rewrite.authority`".to_owned()
            } else {
                format!("`headers.request.{first_place}`")
            };
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        *span,
                        format!(
                            "rule {} sets the authority twice: {place} sets `{value}` after {first} set `{first_value}`",
                            route.label()
                        ),
                    )
                    .with_label(vs.meta.file, *first_span, "the authority is first set here")
                    .with_help("set the authority in one place only, preferably `rewrite.authority`"),
            );
        }
    }
}
