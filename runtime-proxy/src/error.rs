//! Proxy errors: which side failed and whether a retry may help; the retry loop asks them.

use std::fmt;

use mesh_table::RetryView;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Downstream,
    Upstream,
    Internal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The TCP connection to the endpoint could not be made.
    ConnectFailure,
    /// The upstream closed or reset the connection before answering.
    Reset,
    /// One try took longer than `perTryTimeout`.
    PerTryTimeout,
    /// The route timeout elapsed.
    RouteTimeout,
    /// The client's request body could not be read.
    DownstreamBody,
    /// An upstream request could not be formed (a table or proxy bug).
    BadUpstreamRequest,
}

#[derive(Debug)]
pub struct ProxyError {
    pub kind: ErrorKind,
    pub detail: String,
}

impl ProxyError {
    pub fn new(kind: ErrorKind, detail: impl fmt::Display) -> ProxyError {
        ProxyError {
            kind,
            detail: detail.to_string(),
        }
    }

    /// An error of the upstream connection pool: connect failures, resets, closes and broken
    /// responses, and request bodies that failed on the client's side.
    pub fn from_send(error: &crate::pool::SendError) -> ProxyError {
        match error {
            crate::pool::SendError::Connect(e) => ProxyError {
                kind: ErrorKind::ConnectFailure,
                detail: format!("error trying to connect: {e}"),
            },
            crate::pool::SendError::Upstream(e) => ProxyError {
                kind: ErrorKind::Reset,
                detail: e.to_string(),
            },
            crate::pool::SendError::Body(e) => ProxyError {
                kind: ErrorKind::DownstreamBody,
                detail: format!("the request body failed: {e}"),
            },
        }
    }

    pub fn side(&self) -> Side {
        match self.kind {
            ErrorKind::ConnectFailure
            | ErrorKind::Reset
            | ErrorKind::PerTryTimeout
            | ErrorKind::RouteTimeout => Side::Upstream,
            ErrorKind::DownstreamBody => Side::Downstream,
            ErrorKind::BadUpstreamRequest => Side::Internal,
        }
    }

    /// Whether another try could succeed at all (policy aside).
    pub fn retry_may_help(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::ConnectFailure | ErrorKind::Reset | ErrorKind::PerTryTimeout
        )
    }

    /// Whether the route's retry policy asks for a retry after this error. Envoy: `5xx` and
    /// `gateway-error` cover connect failures, resets and per-try timeouts too.
    pub fn retriable_under(&self, retry: &RetryView<'_>) -> bool {
        if !self.retry_may_help() {
            return false;
        }
        let broad = retry.retries_on("5xx") || retry.retries_on("gateway-error");
        broad
            || match self.kind {
                ErrorKind::ConnectFailure => {
                    retry.retries_on("connect-failure") || retry.retries_on("reset-before-request")
                }
                ErrorKind::Reset => retry.retries_on("reset") || retry.retries_on("refused-stream"),
                _ => false,
            }
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = match self.side() {
            Side::Downstream => "downstream",
            Side::Upstream => "upstream",
            Side::Internal => "internal",
        };
        let retry = if self.retry_may_help() {
            "a retry may help"
        } else {
            "a retry will not help"
        };
        write!(
            f,
            "{side} error ({:?}): {} ({retry})",
            self.kind, self.detail
        )
    }
}

impl std::error::Error for ProxyError {}

/// Whether a response status asks for a retry under the policy.
pub fn retriable_status(retry: &RetryView<'_>, status: u16, grpc_status: Option<&str>) -> bool {
    (retry.retries_on("5xx") && status >= 500)
        || (retry.retries_on("gateway-error") && matches!(status, 502..=504))
        || (retry.retries_on("retriable-4xx") && status == 409)
        || retry.retriable_status_codes().any(|code| code == status)
        || grpc_status.is_some_and(|code| {
            let token = match code {
                "1" => "cancelled",
                "4" => "deadline-exceeded",
                "8" => "resource-exhausted",
                "13" => "internal",
                "14" => "unavailable",
                _ => return false,
            };
            retry.retries_on(token)
        })
}
