//! `MESH0312` `invalid-header-name`: a header name Istio rejects in a match or a header
//! operation.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::{HeaderOps, Ir, Meta, Spanned};

pub static RULE: Rule = Rule {
    code: "MESH0312",
    name: "invalid-header-name",
    severity: Severity::Error,
    summary: "a header name in a match or a header operation is not valid",
    doc: r#"## What it does
Checks header names:
- in `match[].headers` and `withoutHeaders`: an RFC 7230 token (letters, digits and
  ``!#$%&'*+-.^_`|~``), a pseudo-header (`:method`, `:scheme`, `:authority`, `:path`,
  `:status`) or a JWT claim (`@request.auth.claims.a.b`, `@request.auth.claims[a][b]`);
- in `headers.request.set/add`: not empty, no `:` prefix except `:authority`;
- in `headers.request.remove` and `headers.response.*`: not empty, no `:` prefix, not `host`;
- in `corsPolicy.allowHeaders` / `exposeHeaders`: `*` or an RFC 7230 token.

## Why is this bad
Istio rejects the VirtualService ("header name %s is not a valid header name", "invalid
header %q: header cannot have \":\" prefix", "invalid header %q: cannot set Host header").

## Example
```yaml
match:
- headers:
    "end user":
      exact: jason
```

## Use instead
```yaml
    end-user:
      exact: jason
```

## References
- Istio webhook `ValidateHTTPHeaderNameOrJwtClaimRoute` (VAL), M2; `validateHeaders` HD1-HD4;
  `validateCORSPolicy` C4
"#,
};

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_jwt_claim(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["@request.auth.claims.", "@request.auth.claims["]
        .iter()
        .any(|p| lower.starts_with(p) && lower.len() > p.len())
}

const PSEUDO: [&str; 5] = [":method", ":scheme", ":authority", ":path", ":status"];

fn match_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("header name is empty".to_owned());
    }
    if is_token(name) || PSEUDO.contains(&name) || is_jwt_claim(name) {
        return None;
    }
    Some(format!("`{name}` is not a valid header name"))
}

fn op_problems(ops: &HeaderOps, meta: &Meta, diagnostics: &mut Vec<Diagnostic>) {
    let mut report = |name: &Spanned<String>, message: String, help: &str| {
        diagnostics.push(meta.diag(&RULE, name.span, message).with_help(help));
    };
    let request_set = ops
        .request
        .set
        .iter()
        .chain(&ops.request.add)
        .map(|(n, _)| n);
    for name in request_set {
        if name.value.is_empty() {
            report(
                name,
                "header name is empty".to_owned(),
                "give the header a name",
            );
        } else if name.value.starts_with(':') && !name.value.eq_ignore_ascii_case(":authority") {
            report(
                name,
                format!(
                    "request header `{}` cannot be set: names with a `:` prefix are pseudo-headers",
                    name.value
                ),
                "only `:authority` can be set this way; use `rewrite` for the path",
            );
        }
    }
    let others = ops
        .request
        .remove
        .iter()
        .chain(
            ops.response
                .set
                .iter()
                .chain(&ops.response.add)
                .map(|(n, _)| n),
        )
        .chain(&ops.response.remove);
    for name in others {
        if name.value.is_empty() {
            report(
                name,
                "header name is empty".to_owned(),
                "give the header a name",
            );
        } else if name.value.starts_with(':') {
            report(
                name,
                format!(
                    "header `{}` cannot be changed: names with a `:` prefix are pseudo-headers",
                    name.value
                ),
                "remove this operation",
            );
        } else if name.value.eq_ignore_ascii_case("host") {
            report(
                name,
                format!(
                    "header `{}` cannot be changed here: Istio does not let responses or removals touch `host`",
                    name.value
                ),
                "set the authority with `rewrite.authority` or `headers.request.set`",
            );
        }
    }
}

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        for m in &route.matches {
            for h in m.headers.iter().chain(&m.without_headers) {
                if let Some(message) = match_name_problem(&h.name) {
                    diagnostics.push(
                        vs.meta
                            .diag(&RULE, h.name_span, message)
                            .with_help("header names are RFC 7230 tokens: letters, digits and !#$%&'*+-.^_`|~, no spaces"),
                    );
                }
            }
        }
        op_problems(&route.headers, &vs.meta, diagnostics);
        for dest in &route.route {
            op_problems(&dest.headers, &vs.meta, diagnostics);
        }
        if let Some(cors) = &route.cors {
            for name in cors.allow_headers.iter().chain(&cors.expose_headers) {
                if name.value != "*" && !is_token(&name.value) {
                    diagnostics.push(
                        vs.meta
                            .diag(
                                &RULE,
                                name.span,
                                format!("`{}` is not a valid header name", name.value),
                            )
                            .with_help("use `*` or an RFC 7230 token"),
                    );
                }
            }
        }
    }
}
