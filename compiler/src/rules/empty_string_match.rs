//! `MESH0315` `empty-string-match`: an empty `prefix` or `regex` where Istio rejects it.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::{Ir, StringMatch};

pub static RULE: Rule = Rule {
    code: "MESH0315",
    name: "empty-string-match",
    severity: Severity::Error,
    summary: "a string match has an empty `prefix` or `regex` where Istio rejects it",
    doc: r#"## What it does
Reports `regex: ""` in any string match, `prefix: ""` in `headers`, `withoutHeaders`,
`queryParams`, `scheme`, `method` and `authority` (it is allowed for `uri`), and any empty
value in `corsPolicy.allowOrigins`, including an entry with no `exact`, `prefix` or `regex`
at all (`{}`).

## Why is this bad
Istio rejects the VirtualService ("prefix string match should not be empty", "regex string
match should not be empty"). To match any value of a header, write `{}`.

## Example
```yaml
headers:
  x-canary:
    prefix: ""
```

## Use instead
```yaml
headers:
  x-canary: {}
```

## References
- Istio webhook `validateStringMatch` (VAL), M3 and M4; `validateCORSPolicy` C1
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        super::invalid_regex::each_string_match(route, |place, matcher, span| {
            if !matcher.text().is_empty() {
                return;
            }
            let cors = place == "corsPolicy.allowOrigins";
            let rejected = match matcher {
                StringMatch::Regex(_) => true,
                StringMatch::Prefix(_) => place != "uri",
                StringMatch::Exact(_) => cors,
            };
            if !rejected {
                return;
            }
            let help = if cors {
                "give the origin to allow, e.g. `exact: https://example.com`".to_owned()
            } else if place == "uri" {
                "use `prefix: /` to match every path".to_owned()
            } else {
                format!(
                    "write `{{}}` to match any value, or give the {} to match",
                    matcher.kind()
                )
            };
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        span,
                        format!("`{place}` has an empty `{}` match", matcher.kind()),
                    )
                    .with_help(help),
            );
        });
        // Istio: C1, an origin with no match type is "'' is not a valid match type".
        for span in route.cors.iter().flat_map(|c| &c.empty_allow_origins) {
            diagnostics.push(
                vs.meta
                    .diag(
                        &RULE,
                        *span,
                        "`corsPolicy.allowOrigins` entry has no `exact`, `prefix` or `regex`",
                    )
                    .with_help("give the origin to allow, e.g. `exact: https://example.com`"),
            );
        }
    }
}
