//! `MESH0308` `invalid-abort-status`: an abort with an HTTP status outside 200..599, an unknown
//! gRPC status, or an HTTP/2 error.

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::suggest::did_you_mean;
use crate::typecheck::{AbortKind, Ir};

pub static RULE: Rule = Rule {
    code: "MESH0308",
    name: "invalid-abort-status",
    severity: Severity::Error,
    summary: "a fault abort status is not one Istio can inject",
    doc: r#"## What it does
Reports `fault.abort.httpStatus` outside 200..599, a `grpcStatus` that is not a gRPC status
name (`UNAVAILABLE`, `NOT_FOUND`, ...; numbers are not accepted), and `http2Error`, which
Istio does not support.

meshc rejects `httpStatus: 600`, which Istio's webhook lets through although its own message
says "not in range 200-599": 600 is not an HTTP status.

## Why is this bad
Istio rejects the VirtualService ("HTTP status %d is not in range 200-599", "gRPC status %q
is not supported", "HTTP/2 abort fault injection not supported yet").

## Example
```yaml
fault:
  abort:
    grpcStatus: "14"
    percentage: {value: 10}
```

## Use instead
```yaml
    grpcStatus: UNAVAILABLE
```

## References
- Istio webhook `validateHTTPFaultInjectionAbort` (VAL), F3, F4, F5; `pkg/util/grpc/codes.go`
"#,
};

const GRPC_CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    for (vs, route) in ir.http_routes() {
        let Some(kind) = route
            .fault
            .as_ref()
            .and_then(|f| f.abort.as_ref())
            .and_then(|a| a.kind.as_ref())
        else {
            continue;
        };
        let (message, help) = match &kind.value {
            AbortKind::HttpStatus(status) if !(200..=599).contains(status) => (
                format!("abort HTTP status {status} is not in range 200-599"),
                "use an HTTP status from 200 to 599, such as 503".to_owned(),
            ),
            AbortKind::GrpcStatus(code) if !GRPC_CODES.contains(&code.as_str()) => (
                format!("`{code}` is not a gRPC status name"),
                match did_you_mean(code, GRPC_CODES.into_iter()) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => {
                        "use a name such as `UNAVAILABLE` or `NOT_FOUND` (numbers are not accepted)"
                            .to_owned()
                    }
                },
            ),
            AbortKind::Http2Error(_) => (
                "Istio does not support HTTP/2 abort fault injection (`http2Error`)".to_owned(),
                "use `httpStatus` or `grpcStatus`".to_owned(),
            ),
            _ => continue,
        };
        diagnostics.push(vs.meta.diag(&RULE, kind.span, message).with_help(help));
    }
}
