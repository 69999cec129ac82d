//! `retries.retryOn`: a comma-separated list of Envoy retry conditions, gRPC status names and
//! HTTP status codes (Istio `supportedRetryOnPolicies`, AGT:940, and Go's `http.StatusText`).

use crate::source::Span;

/// A gRPC status Envoy can retry on (`x-envoy-retry-grpc-on`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GrpcCode {
    Cancelled,
    DeadlineExceeded,
    Internal,
    ResourceExhausted,
    Unavailable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RetryCondition {
    FiveXx,
    GatewayError,
    Reset,
    ResetBeforeRequest,
    ConnectFailure,
    Retriable4xx,
    RefusedStream,
    RetriableStatusCodes,
    RetriableHeaders,
    EnvoyRateLimited,
    Http3PostConnectFailure,
    Grpc(GrpcCode),
    /// A numeric item: a retriable HTTP status code.
    Status(u16),
}

/// One item of the list as written, and what it means (`None`: Istio rejects it).
#[derive(Clone, Debug, PartialEq)]
pub struct RetryOnItem {
    pub text: String,
    pub condition: Option<RetryCondition>,
}

impl RetryOnItem {
    /// Whether the item is written as Istio's validation wants it: no surrounding spaces and
    /// not empty (Istio splits on `,` without trimming).
    pub fn is_clean(&self) -> bool {
        !self.text.is_empty() && self.text.trim() == self.text
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RetryOn {
    pub raw: String,
    pub span: Span,
    pub items: Vec<RetryOnItem>,
}

impl RetryOn {
    /// The conditions Envoy would apply (Istio's converter trims items; unknown ones dropped).
    pub fn conditions(&self) -> impl Iterator<Item = RetryCondition> + '_ {
        self.items.iter().filter_map(|i| i.condition)
    }

    /// The list as Istio's webhook would accept it: items trimmed, empty ones dropped.
    pub fn fixed(&self) -> String {
        self.items
            .iter()
            .map(|i| i.text.trim())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(",")
    }
}

pub fn parse(raw: &str, span: Span) -> RetryOn {
    let items = raw
        .split(',')
        .map(|text| RetryOnItem {
            text: text.to_owned(),
            condition: condition(text.trim()),
        })
        .collect();
    RetryOn {
        raw: raw.to_owned(),
        span,
        items,
    }
}

pub fn condition(token: &str) -> Option<RetryCondition> {
    use RetryCondition::*;
    Some(match token {
        "5xx" => FiveXx,
        "gateway-error" => GatewayError,
        "reset" => Reset,
        "reset-before-request" => ResetBeforeRequest,
        "connect-failure" => ConnectFailure,
        "retriable-4xx" => Retriable4xx,
        "refused-stream" => RefusedStream,
        "retriable-status-codes" => RetriableStatusCodes,
        "retriable-headers" => RetriableHeaders,
        "envoy-ratelimited" => EnvoyRateLimited,
        "http3-post-connect-failure" => Http3PostConnectFailure,
        "cancelled" => Grpc(GrpcCode::Cancelled),
        "deadline-exceeded" => Grpc(GrpcCode::DeadlineExceeded),
        "internal" => Grpc(GrpcCode::Internal),
        "resource-exhausted" => Grpc(GrpcCode::ResourceExhausted),
        "unavailable" => Grpc(GrpcCode::Unavailable),
        _ => {
            // Go's `strconv.Atoi` accepts a sign: `+503` passes Istio's check.
            let code: i64 = token.parse().ok()?;
            let code = u16::try_from(code).ok().filter(|c| go_status_text(*c))?;
            Status(code)
        }
    })
}

/// Every token Istio accepts by name, for suggestions.
pub const NAMES: [&str; 16] = [
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "envoy-ratelimited",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// Whether Go's `net/http.StatusText` knows the code (Istio's test for numeric items).
pub fn go_status_text(code: u16) -> bool {
    matches!(code,
        100..=103 | 200..=208 | 226 | 300..=305 | 307 | 308 | 400..=418 | 421..=426 | 428
        | 429 | 431 | 451 | 500..=508 | 510 | 511)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let r = parse("5xx, reset,,503,+502,306,cancelled", Span::default());
        let conds: Vec<_> = r.items.iter().map(|i| i.condition).collect();
        assert_eq!(
            conds,
            vec![
                Some(RetryCondition::FiveXx),
                Some(RetryCondition::Reset),
                None,
                Some(RetryCondition::Status(503)),
                Some(RetryCondition::Status(502)),
                None,
                Some(RetryCondition::Grpc(GrpcCode::Cancelled)),
            ]
        );
        assert!(!r.items[1].is_clean());
        assert!(!r.items[2].is_clean());
        assert_eq!(r.fixed(), "5xx,reset,503,+502,306,cancelled");
        assert!(go_status_text(418));
        assert!(!go_status_text(509));
    }
}
