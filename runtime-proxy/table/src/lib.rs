//! The meshc routing-table artifact: owned spec, writer, checked zero-copy reader and executor.
//!
//! Data flow: the compiler fills a [`spec::TableSpec`], [`encode`] (feature `build`) lays it
//! out as bytes, the proxy maps the bytes and calls [`Table::load`] once per reload, then
//! [`Table::decide`] per request. Nothing here does I/O.
//!
//! Route selection keeps Istio's first-match order but does not scan routes: every match
//! alternative is indexed under one of its conditions (hash table for exact values, hashed
//! prefix lengths for prefixes, one multi-pattern DFA per host and field for regexes), and the
//! executor verifies only the candidates those indexes return, lowest order first.

pub mod format;
pub mod hash;
pub mod spec;

mod exec;
mod read;
mod view;

#[cfg(feature = "build")]
mod build;
#[cfg(feature = "build")]
pub mod oracle;
#[cfg(feature = "build")]
mod pattern;

#[cfg(feature = "build")]
pub use build::{EncodeError, EncodeOptions, encode, encode_with};
pub use exec::{
    ActionDecision, Decision, FaultDecision, HeaderList, Headers, RequestView, RouteDecision,
};
pub use read::{AlignedBytes, LoadError, SectionInfo, Table, TableInfo};
pub use view::{
    Abort, ActionView, ClusterId, ClusterView, ConditionField, ConditionTest, ConditionView,
    ConnectionPool, CorsView, DestinationView, EndpointView, FaultView, HeaderOp, LoadBalancer,
    MatchView, MirrorView, OriginMatch, OutlierDetection, RedirectView, Resolution, RetryView,
    RewriteView, RouteId, RouteView, VirtualHostId, VirtualHostView,
};
