//! `MESH0316` `conflicting-actions`: a rule sets actions that exclude each other.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::source::Span;
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0316",
    name: "conflicting-actions",
    severity: Severity::Error,
    summary: "an HTTP rule sets actions that exclude each other",
    doc: r#"## What it does
Reports an `http` rule that combines:
- `redirect` with `route`, `fault`, `rewrite` or `directResponse`;
- `directResponse` with `route`, `fault` or `rewrite`;
- `mirror` with `mirrors`;
- `delegate` with `route` or `redirect` (a root rule hands the request to the delegate);
- `delegate` inside a delegate VirtualService (one without `hosts`).

## Why is this bad
Istio rejects the VirtualService ("HTTP route cannot contain both route and redirect", ...):
a request gets one answer, so only one action can apply.

## Example
```yaml
- route:
  - destination: {host: reviews}
  redirect:
    uri: /v2/reviews
```

## Use instead
Keep one action per rule, and match the other case in a rule of its own.

## References
- Istio webhook `validateHTTPRouteConflict` (VSV), H1-H10 and H12
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        let mut pairs: Vec<(Span, &str, Span, &str)> = Vec::new();
        let route_key = route.route_key.filter(|_| !route.route.is_empty());
        let fault = route.fault.as_ref().map(|f| f.span);
        let rewrite = route.rewrite.as_ref().map(|r| r.span);
        if let Some(delegate) = &route.delegate {
            if vs.is_delegate() {
                pairs.push((
                    delegate.span,
                    "delegate",
                    delegate.span,
                    "a delegate VirtualService",
                ));
            }
            if let Some(r) = &route.redirect {
                pairs.push((r.span, "redirect", delegate.span, "delegate"));
            }
            if let Some(r) = route_key {
                pairs.push((r, "route", delegate.span, "delegate"));
            }
        } else if let Some(redirect) = &route.redirect {
            for (other, name) in [
                (route_key, "route"),
                (fault, "fault"),
                (rewrite, "rewrite"),
                (
                    route.direct_response.as_ref().map(|d| d.span),
                    "directResponse",
                ),
            ] {
                if let Some(span) = other {
                    pairs.push((span, name, redirect.span, "redirect"));
                }
            }
        } else if let Some(direct) = &route.direct_response {
            for (other, name) in [(route_key, "route"), (fault, "fault"), (rewrite, "rewrite")] {
                if let Some(span) = other {
                    pairs.push((span, name, direct.span, "directResponse"));
                }
            }
        }
        if let (Some(mirror), Some(mirrors)) = (&route.mirror, route.mirrors_key) {
            pairs.push((mirrors, "mirrors", mirror.span, "mirror"));
        }
        for (span, name, other_span, other) in pairs {
            let (message, help) = if other == "a delegate VirtualService" {
                (
                    format!(
                        "rule {} of a delegate VirtualService sets `delegate`: delegation is one level deep",
                        route.label()
                    ),
                    "route the request here, or delegate from the root VirtualService".to_owned(),
                )
            } else {
                (
                    format!("rule {} sets both `{other}` and `{name}`", route.label()),
                    format!(
                        "keep one of `{other}` and `{name}`; match the other case in a rule of its own"
                    ),
                )
            };
            let mut d = vs.meta.diag(&RULE, span, message).with_help(help);
            if other_span != span {
                d = d.with_label(vs.meta.file, other_span, format!("`{other}` is set here"));
            }
            diagnostics.push(d);
        }
    }
}
