//! `MESH0314` `invalid-regex`: a regex RE2 rejects, or one longer than Istio allows.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::source::Span;
use crate::typecheck::regex::{self, Re2Error};
use crate::typecheck::{HeaderMatch, HttpRoute, Ir, StringMatch};

pub static RULE: Rule = Rule {
    code: "MESH0314",
    name: "invalid-regex",
    severity: Severity::Error,
    summary: "a regex is not valid RE2, or is longer than 1024 bytes",
    doc: r#"## What it does
Checks every `regex` (in `uri`, `scheme`, `method`, `authority`, `headers`, `withoutHeaders`,
`queryParams`, `corsPolicy.allowOrigins` and `rewrite.uriRegexRewrite.match`) against RE2
syntax, which Envoy runs and Istio validates with Go's `regexp`. Constructs that Rust or
PCRE accept but RE2 does not are rejected: look-around (`(?=`, `(?!`, `(?<=`, `(?<!`),
backreferences (`\1`, `(?P=name)`), possessive quantifiers and atomic groups (`a*+`,
`(?>...)`), `\Z`, `\C`, `\<`/`\>`, the `x`, `u` and `R` flags, nested classes and class set
operations (`[a&&b]`), and counted repetition above 1000 (`a{1001}`). Patterns longer than
1024 bytes are rejected too (Istio's stand-in for Envoy's program-size limit). Empty regexes
are `empty-string-match`. `withoutHeaders: {x: {regex: "*"}}` means "present" and is not a
regex.

meshc rejects octal escapes such as `\012`, which Go accepts.

## Why is this bad
Istio rejects the VirtualService ("%s; Istio uses RE2 style regex-based match", "regex is
too large, max length allowed is 1024"); Envoy would refuse the route.

## Example
```yaml
uri:
  regex: "/api/(?!internal).*"
```

## Use instead
Match the allowed paths positively, or put a rule for `/api/internal` first:
```yaml
- match: [{uri: {prefix: /api/internal}}]
  directResponse: {status: 404}
- match: [{uri: {prefix: /api/}}]
  route: [...]
```

## References
- Istio webhook `validateStringMatchRegexp` (VAL), M5 and M6
- https://github.com/google/re2/wiki/Syntax
"#,
};

/// Calls `f(where, matcher, span)` for every string match of a rule.
pub(crate) fn each_string_match(route: &HttpRoute, mut f: impl FnMut(&str, &StringMatch, Span)) {
    for m in &route.matches {
        for (place, value) in [
            ("uri", &m.uri),
            ("scheme", &m.scheme),
            ("method", &m.method),
            ("authority", &m.authority),
        ] {
            if let Some(v) = value {
                f(place, &v.matcher, v.span);
            }
        }
        for (place, list) in [
            ("headers", &m.headers),
            ("withoutHeaders", &m.without_headers),
            ("queryParams", &m.query_params),
        ] {
            for k in list {
                if let HeaderMatch::Match(matcher) = &k.matcher {
                    f(place, matcher, k.span);
                }
            }
        }
    }
    if let Some(cors) = &route.cors {
        for origin in &cors.allow_origins {
            f("corsPolicy.allowOrigins", &origin.matcher, origin.span);
        }
    }
    if let Some((m, _)) = route.rewrite.as_ref().and_then(|r| r.uri_regex.as_ref()) {
        f("rewrite.uriRegexRewrite.match", &m.matcher, m.span);
    }
}

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        each_string_match(route, |place, matcher, span| {
            let StringMatch::Regex(pattern) = matcher else {
                return;
            };
            let (message, help) = match regex::check_re2(pattern) {
                Ok(()) | Err(Re2Error::Empty) => return,
                Err(Re2Error::TooLong(n)) => (
                    format!("`{place}` regex is {n} bytes long, over Istio's limit of 1024"),
                    "shorten the pattern, or split the match into several rules".to_owned(),
                ),
                Err(Re2Error::Invalid(why)) => (
                    format!("`{place}` regex is not valid RE2: {why}"),
                    "Envoy runs RE2 (https://github.com/google/re2/wiki/Syntax): rewrite the pattern without this construct".to_owned(),
                ),
            };
            diagnostics.push(vs.meta.diag(&RULE, span, message).with_help(help));
        });
    }
}
