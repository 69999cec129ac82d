//! `MESH0322` `invalid-redirect`: a redirect Istio rejects (R1-R5).

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::{Ir, StringMatch};

pub static RULE: Rule = Rule {
    code: "MESH0322",
    name: "invalid-redirect",
    severity: Severity::Error,
    summary: "a redirect sets conflicting fields, nothing to redirect to, or a bad code or scheme",
    doc: r#"## What it does
Reports a `redirect` that:
- sets both `uri` and `prefixRewrite`;
- sets `prefixRewrite` in a rule with a `uri` match that is not a `prefix` match;
- sets none of `uri`, `prefixRewrite`, `authority`, `port`, `derivePort` and `scheme`;
- has a `redirectCode` that is not a 3xx status;
- has a `scheme` other than `http` or `https`.

Istio reports only the first of these problems; meshc reports them all. (A `port` outside
1..65535 is `out-of-range`; a 3xx code Envoy does not send is `unsupported-redirect-code`.)

## Why is this bad
Istio rejects the VirtualService: "redirect may only specify one of uri or prefix_rewrite",
"redirect prefix_rewrite requires all URI matches to use prefix match type", "redirect must
specify URI, authority, scheme, or port", "%d is not a valid redirect code, must be 3xx",
"invalid redirect scheme, must be \"http\" or \"https\"".

## Example
```yaml
- match:
  - uri:
      exact: /old
  redirect:
    prefixRewrite: /new
    redirectCode: 200
```

## Use instead
```yaml
- match:
  - uri:
      exact: /old
  redirect:
    uri: /new
    redirectCode: 301
```

## References
- Istio webhook `validateHTTPRedirect` (VAL), R1-R5
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        let Some(redirect) = &route.redirect else {
            continue;
        };
        let set = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
        let uri = redirect.uri_value.as_ref().filter(|u| !u.value.is_empty());
        let prefix = redirect
            .prefix_rewrite
            .as_ref()
            .filter(|p| !p.value.is_empty());
        // Istio: R1.
        if let (Some(uri), Some(prefix)) = (uri, prefix) {
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        prefix.span,
                        format!(
                            "redirect of rule {} sets both `uri` and `prefixRewrite`",
                            route.label()
                        ),
                    )
                    .with_label(vs.meta.file, uri.span, "`uri` is set here")
                    .with_help("keep `uri` to replace the whole path, or `prefixRewrite` to replace the matched prefix"),
            );
        }
        // Istio: R2, prefixRewrite needs every uri match to be a prefix match.
        if let Some(prefix) = prefix {
            let other = route.matches.iter().find_map(|m| {
                m.uri
                    .as_ref()
                    .filter(|u| !matches!(u.matcher, StringMatch::Prefix(_)))
            });
            if let Some(other) = other {
                diagnostics.push(
                    vs.meta
                        .diag(
                            &RULE,
                            prefix.span,
                            format!(
                                "redirect `prefixRewrite` of rule {} needs every `uri` match to be a `prefix` match",
                                route.label()
                            ),
                        )
                        .with_label(
                            vs.meta.file,
                            other.span,
                            format!("this is a `{}` match", other.matcher.kind()),
                        )
                        .with_help("use `redirect.uri` for exact and regex matches, or match the path by `prefix`"),
                );
            }
        }
        // Istio: R3.
        if uri.is_none()
            && prefix.is_none()
            && !set(&redirect.authority)
            && redirect.port.is_none()
            && redirect.derive_port.is_none()
            && !set(&redirect.scheme)
        {
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        redirect.span,
                        format!("redirect of rule {} has nothing to redirect to", route.label()),
                    )
                    .with_help("set at least one of `uri`, `prefixRewrite`, `authority`, `scheme`, `port` or `derivePort`"),
            );
        }
        // Istio: R4, 0 is the default (301).
        if let Some(code) = &redirect.code
            && code.value != 0
            && !(300..=399).contains(&code.value)
        {
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        code.span,
                        format!("redirect code {} is not a 3xx status", code.value),
                    )
                    .with_help("use 301, 302, 303, 307 or 308"),
            );
        }
        // Istio: R5.
        if let Some(scheme) = &redirect.scheme_value
            && !matches!(scheme.value.as_str(), "" | "http" | "https")
        {
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        scheme.span,
                        format!(
                            "redirect scheme `{}` is neither `http` nor `https`",
                            scheme.value
                        ),
                    )
                    .with_help("use `http` or `https` (lower case)"),
            );
        }
    }
}
