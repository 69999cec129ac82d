//! `MESH0313` `invalid-header-value`: a header value with control characters, or one that
//! Envoy's `%VAR%` header syntax rejects.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::{HeaderOps, Ir, Meta};

pub static RULE: Rule = Rule {
    code: "MESH0313",
    name: "invalid-header-value",
    severity: Severity::Error,
    summary: "a header value to set or add has control characters or a malformed `%` variable",
    doc: r#"## What it does
Reports a value in `headers.request/response.set/add` that contains a control character
(0x00-0x08, 0x0A-0x1F or 0x7F; a tab is allowed), or that Envoy's header syntax rejects.
In header values `%` starts a variable: `%HOSTNAME%`, `%REQ(x-request-id)%`,
`%UPSTREAM_METADATA(["ns", "key"])%`; a literal `%` is written `%%` (`100%%`). A lone `%`
at the end, a variable without its closing `%`, and malformed arguments are rejected.
(Variable names themselves are not checked, as in Istio.)

## Why is this bad
Istio rejects the VirtualService ("header value configuration %s is invalid"; "header value
configuration: invalid header configuration. Un-escaped %", "... Un-terminated variable
expression '%s'", "... Expecting '%' or whitespace after", ...). A line break in a header
value would split the header; Envoy would refuse a malformed variable.

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

and write `50%%` rather than `50%` for a literal percent sign.

## References
- Istio webhook `ValidateHTTPHeaderValue` (VAL), HD5; `validateHeaderValue` (HVV), HD6, a port
  of Envoy's `header_parser.cc`
"#,
};

fn bad(value: &str) -> bool {
    value
        .bytes()
        .any(|b| matches!(b, 0x00..=0x08 | 0x0A..=0x1F | 0x7F))
}

/// Why Envoy's header-value parser (Istio's port of it, HVV) rejects a value, or `None`.
fn variable_problem(value: &str) -> Option<String> {
    #[derive(PartialEq)]
    enum State {
        Literal,
        VariableName,
        ExpectArray,
        ExpectString,
        String,
        ExpectDelimiterOrEnd,
        ExpectArgsEnd,
        ExpectVariableEnd,
    }
    let bytes = value.as_bytes();
    let mut state = State::Literal;
    let mut pos = 0;
    while pos < bytes.len() {
        let ch = bytes[pos];
        let has_next = pos + 1 < bytes.len();
        match state {
            State::Literal if ch == b'%' => {
                if !has_next {
                    return Some("un-escaped `%` at the end".to_owned());
                }
                if bytes[pos + 1] == b'%' {
                    pos += 1;
                } else {
                    state = State::VariableName;
                }
            }
            State::Literal => {}
            State::VariableName => match ch {
                b'%' => state = State::Literal,
                b'(' => state = State::ExpectArray,
                _ => {}
            },
            State::ExpectArray => match ch {
                b'[' => state = State::ExpectString,
                b' ' => {}
                _ => state = State::String,
            },
            State::ExpectDelimiterOrEnd => match ch {
                b',' => state = State::ExpectString,
                b']' => state = State::ExpectArgsEnd,
                b' ' => {}
                _ => {
                    return Some(format!(
                        "expecting `,`, `]` or a space in the arguments, found `{}`",
                        ch as char
                    ));
                }
            },
            State::ExpectString => match ch {
                b'"' => state = State::String,
                b' ' => {}
                _ => {
                    return Some(format!(
                        "expecting `\"` in the arguments, found `{}`",
                        ch as char
                    ));
                }
            },
            State::String => match ch {
                b'\\' if !has_next => {
                    return Some("un-terminated backslash in a JSON string argument".to_owned());
                }
                b'\\' => pos += 1,
                b')' => state = State::ExpectVariableEnd,
                b'"' => state = State::ExpectDelimiterOrEnd,
                _ => {}
            },
            State::ExpectArgsEnd => match ch {
                b')' => state = State::ExpectVariableEnd,
                b' ' => {}
                _ => {
                    return Some(format!(
                        "expecting `)` after the arguments, found `{}`",
                        ch as char
                    ));
                }
            },
            State::ExpectVariableEnd => match ch {
                b'%' => state = State::Literal,
                b' ' => {}
                _ => {
                    return Some(format!(
                        "expecting `%` after the variable, found `{}`",
                        ch as char
                    ));
                }
            },
        }
        pos += 1;
    }
    (state != State::Literal).then(|| "un-terminated `%` variable".to_owned())
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
        } else if let Some(why) = variable_problem(&value.value) {
            diagnostics.push(
                meta.diag(
                    &RULE,
                    value.span,
                    format!("the value of header `{}` is not valid: {why}", name.value),
                )
                .with_help("write a literal `%` as `%%`; a variable is `%NAME%` or `%NAME(arg)%`"),
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

#[cfg(test)]
mod tests {
    use super::variable_problem;

    #[test]
    fn envoy_header_syntax() {
        for ok in [
            "",
            "plain",
            "100%%",
            "%HOSTNAME%",
            "%REQ(x-request-id)%",
            "a %START_TIME% b",
            r#"%UPSTREAM_METADATA(["ns", "key"])%"#,
            r#"%UPSTREAM_METADATA( [ "ns" , "key" ] )%"#,
            "%PER_REQUEST_STATE(testing)%",
        ] {
            assert_eq!(variable_problem(ok), None, "{ok}");
        }
        for bad in [
            "%",
            "before %",
            "%% infix %",
            "%VAR",
            "%%%VAR",
            "before %VAR after",
            "% ",
            "50% off",
            r#"%UPSTREAM_METADATA(["a" x])%"#,
            r#"%UPSTREAM_METADATA([x])%"#,
            r#"%UPSTREAM_METADATA(["\"#,
            r#"%UPSTREAM_METADATA(["a"] x)%"#,
            r#"%UPSTREAM_METADATA(["a"]) x%"#,
        ] {
            assert!(variable_problem(bad).is_some(), "{bad}");
        }
    }
}
