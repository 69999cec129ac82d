//! `MESH0326` `invalid-rewrite`: a rewrite with conflicting or missing parts (RW1-RW3).

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::Ir;

pub static RULE: Rule = Rule {
    code: "MESH0326",
    name: "invalid-rewrite",
    severity: Severity::Error,
    summary: "a rewrite sets both `uri` and `uriRegexRewrite`, nothing, or half a regex rewrite",
    doc: r#"## What it does
Reports a `rewrite` that:
- sets both `uri` and `uriRegexRewrite`;
- sets none of `uri`, `uriRegexRewrite` and `authority`;
- has a `uriRegexRewrite` without a `match` or without a `rewrite` (empty counts as missing).

The regex in `uriRegexRewrite.match` is checked by `invalid-regex`.

## Why is this bad
Istio rejects the VirtualService: "rewrite may only contain one of URI or UriRegexRewrite",
"rewrite must specify at least one of URI, UriRegexRewrite, or authority. Only one of URI or
UriRegexRewrite may be specified", "UriRegexRewrite requires both Rewrite and Match fields
to be specified".

## Example
```yaml
rewrite:
  uri: /v2
  uriRegexRewrite:
    match: ^/v1/(.*)
    rewrite: /v2/\1
```

## Use instead
```yaml
rewrite:
  uriRegexRewrite:
    match: ^/v1/(.*)
    rewrite: /v2/\1
```

## References
- Istio webhook `validateHTTPRewrite` (VAL), RW1-RW3
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        let Some(rewrite) = &route.rewrite else {
            continue;
        };
        let uri = rewrite.uri_value.as_ref().filter(|u| !u.value.is_empty());
        let authority = rewrite
            .authority_value
            .as_ref()
            .filter(|a| !a.value.is_empty());
        let block = rewrite.uri_regex_block.as_ref();
        let label = route.label();
        if let (Some(uri), Some(block)) = (uri, block) {
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        block.span,
                        format!("rewrite of rule {label} sets both `uri` and `uriRegexRewrite`"),
                    )
                    .with_label(vs.meta.file, uri.span, "`uri` is set here")
                    .with_help("keep one of `uri` and `uriRegexRewrite`"),
            );
        }
        if uri.is_none() && block.is_none() && authority.is_none() {
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        rewrite.span,
                        format!("rewrite of rule {label} rewrites nothing"),
                    )
                    .with_help(
                        "set `uri`, `uriRegexRewrite` or `authority`, or remove the `rewrite`",
                    ),
            );
        }
        if let Some(block) = block {
            let missing: Vec<&str> = [("match", &block.match_regex), ("rewrite", &block.rewrite)]
                .into_iter()
                .filter(|(_, v)| v.as_ref().is_none_or(|v| v.value.is_empty()))
                .map(|(k, _)| k)
                .collect();
            if !missing.is_empty() {
                let what = missing
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(" and ");
                diagnostics.push(
                    vs.meta
                        .diag(
                            &RULE,
                            block.span,
                            format!("`uriRegexRewrite` of rule {label} has no {what}"),
                        )
                        .with_help("give both `match` (an RE2 regex) and `rewrite` (the replacement, e.g. `/v2/\\1`)"),
                );
            }
        }
    }
}
