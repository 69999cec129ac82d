//! The artifact layout: header, section table and every record type, described as data.
//!
//! Only this module, the writer (`build`) and the reader (`read`) know the layout. Every record
//! is a fixed number of little-endian `u32` fields; the schema below says, field by field, what
//! each one refers to, and the loader checks every field against it once. Wider or narrower
//! values (u16 ports, u64 hashes) are stored in u32 fields: it wastes a few bytes and keeps one
//! reader and one validator for all records.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "MESHTBL\0"
//!      8     4  endianness mark 0x01020304 (LE on disk)
//!     12     4  format version
//!     16     4  flags (0)
//!     20     4  section count
//!     24    32  content hash of the compiler input
//!     56     8  payload length (bytes after the header)
//!     64     8  checksum64 over the whole file with this field skipped
//!     72    24  reserved (zero)
//!     96     …  section table: count × {kind u32, record size u32, offset u64, length u64,
//!               record count u64}, then sections, each at an 8-aligned offset
//! ```
//!
//! Version 2 (written today) differs from version 1 (still read) in two ways:
//!
//! - A route record keeps only the rule's identity (virtual host, VirtualService, name, rule
//!   index) and a reference to a record of `Policies`, which holds what the route does
//!   (action, destinations, fault, timeout, retries, header operations, rewrite, mirrors,
//!   CORS). The writer interns policies and the ranges they point to by content, so routes
//!   that behave the same share one policy; an empty range is written as (0, 0). In version 1
//!   those policy fields follow the identity inside the route record, in the same order
//!   ([`route_v1`]), and there is no `Policies` section.
//! - Hash tables (`HostSlots`, `KeySlots`) have any number of slots sized for their load
//!   ([`slot_count`]: at most 0.6 full, at least one slot and at least one empty slot); a
//!   key's home slot is [`home_slot`] (multiply-shift of the hash) and probing is linear with
//!   wrap-around, keys placed Robin Hood style (along a run, each key is at most one slot
//!   further from its home than the one before), so a lookup stops at an empty slot or at the
//!   first key closer to its home than the probe is to its own. In version 1 the slot count is
//!   a power of two, the home slot is the hash's low bits and only an empty slot ends a probe.

/// `MESHTBL\0`: identifies the file kind.
pub const MAGIC: [u8; 8] = *b"MESHTBL\0";
/// Written little-endian; reads as 0x04030201 on a reader that got the byte order wrong.
pub const ENDIAN_MARK: u32 = 0x0102_0304;
/// Bump on any layout change. The reader also loads every version from
/// [`OLDEST_READABLE_VERSION`] on.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format version the reader still loads.
pub const OLDEST_READABLE_VERSION: u32 = 1;
pub const HEADER_LEN: usize = 96;
pub const CHECKSUM_OFFSET: usize = 64;
pub const SECTION_ENTRY_LEN: usize = 32;
/// Sections start at multiples of this, relative to the start of the buffer.
pub const SECTION_ALIGN: usize = 8;
/// "No value" in optional u32 fields.
pub const NONE: u32 = u32::MAX;
/// The checksum seed; any constant works, this one spells the format.
pub const CHECKSUM_SEED: u64 = 0x4d45_5348_5442_4c01;

/// Section kinds, in the order the writer lays them out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum Section {
    Root = 1,
    Bytes,
    Strings,
    Blobs,
    StrList,
    PortList,
    LengthList,
    CodeList,
    VirtualHosts,
    VhostList,
    HostSlots,
    Routes,
    Entries,
    EntryList,
    Conditions,
    Dimensions,
    KeySlots,
    RegexKeys,
    Dfas,
    DfaBytes,
    Destinations,
    HeaderOps,
    Mirrors,
    Cors,
    StringMatches,
    Clusters,
    Endpoints,
    Labels,
    /// Version 2 on. Numbered after the version 1 kinds, laid out after `Routes`.
    Policies,
}

impl Section {
    /// Every section of the current version, in layout order.
    pub const ALL: [Section; 29] = [
        Section::Root,
        Section::Bytes,
        Section::Strings,
        Section::Blobs,
        Section::StrList,
        Section::PortList,
        Section::LengthList,
        Section::CodeList,
        Section::VirtualHosts,
        Section::VhostList,
        Section::HostSlots,
        Section::Routes,
        Section::Policies,
        Section::Entries,
        Section::EntryList,
        Section::Conditions,
        Section::Dimensions,
        Section::KeySlots,
        Section::RegexKeys,
        Section::Dfas,
        Section::DfaBytes,
        Section::Destinations,
        Section::HeaderOps,
        Section::Mirrors,
        Section::Cors,
        Section::StringMatches,
        Section::Clusters,
        Section::Endpoints,
        Section::Labels,
    ];

    /// The sections of a format version, in layout order (`None` for an unknown version).
    pub fn all_in(version: u32) -> Option<&'static [Section]> {
        match version {
            1 => Some(&V1_SECTIONS),
            FORMAT_VERSION => Some(&Section::ALL),
            _ => None,
        }
    }

    pub fn from_u32(kind: u32) -> Option<Section> {
        Section::ALL
            .iter()
            .copied()
            .find(|section| *section as u32 == kind)
    }

    pub fn name(self) -> &'static str {
        match self {
            Section::Root => "root",
            Section::Bytes => "bytes",
            Section::Strings => "strings",
            Section::Blobs => "blobs",
            Section::StrList => "string lists",
            Section::PortList => "port lists",
            Section::LengthList => "length lists",
            Section::CodeList => "status code lists",
            Section::VirtualHosts => "virtual hosts",
            Section::VhostList => "virtual host lists",
            Section::HostSlots => "host hash table",
            Section::Routes => "routes",
            Section::Policies => "route policies",
            Section::Entries => "match entries",
            Section::EntryList => "match entry lists",
            Section::Conditions => "conditions",
            Section::Dimensions => "dimensions",
            Section::KeySlots => "key hash table",
            Section::RegexKeys => "regex keys",
            Section::Dfas => "dfas",
            Section::DfaBytes => "dfa bytes",
            Section::Destinations => "destinations",
            Section::HeaderOps => "header operations",
            Section::Mirrors => "mirrors",
            Section::Cors => "cors policies",
            Section::StringMatches => "string matches",
            Section::Clusters => "clusters",
            Section::Endpoints => "endpoints",
            Section::Labels => "labels",
        }
    }

    /// The field schema of a record section in a given format version (only `Routes`
    /// changed), `None` for raw byte sections.
    pub fn schema_in(self, version: u32) -> Option<&'static [FieldKind]> {
        if version == 1 && self == Section::Routes {
            return Some(route_v1::FIELDS);
        }
        self.schema()
    }

    /// Bytes per record in a given format version: 4 per field, 1 for raw sections.
    #[inline]
    pub fn record_size_in(self, version: u32) -> usize {
        self.schema_in(version).map_or(1, |fields| fields.len() * 4)
    }

    /// The field schema of a record section in the current version, `None` for raw byte
    /// sections.
    pub fn schema(self) -> Option<&'static [FieldKind]> {
        Some(match self {
            Section::Bytes | Section::DfaBytes => return None,
            Section::Root => root::FIELDS,
            Section::Strings => span::FIELDS_BYTES,
            Section::Blobs => span::FIELDS_BYTES,
            Section::StrList => &[FieldKind::Str],
            Section::PortList => &[FieldKind::Max(u16::MAX as u32)],
            Section::LengthList => &[FieldKind::Plain],
            Section::CodeList => &[FieldKind::Max(999)],
            Section::VirtualHosts => vhost::FIELDS,
            Section::VhostList => &[FieldKind::Ref(Section::VirtualHosts)],
            Section::HostSlots => slot::FIELDS_HOST,
            Section::Routes => route::FIELDS,
            Section::Policies => policy::FIELDS,
            Section::Entries => entry::FIELDS,
            Section::EntryList => &[FieldKind::Ref(Section::Entries)],
            Section::Conditions => cond::FIELDS,
            Section::Dimensions => dim::FIELDS,
            Section::KeySlots => slot::FIELDS_KEY,
            Section::RegexKeys => regex_key::FIELDS,
            Section::Dfas => dfa::FIELDS,
            Section::Destinations => dest::FIELDS,
            Section::HeaderOps => header_op::FIELDS,
            Section::Mirrors => mirror::FIELDS,
            Section::Cors => cors::FIELDS,
            Section::StringMatches => string_match::FIELDS,
            Section::Clusters => cluster::FIELDS,
            Section::Endpoints => endpoint::FIELDS,
            Section::Labels => label::FIELDS,
        })
    }

    /// Bytes per record in the current version: 4 per field, 1 for raw sections.
    pub fn record_size(self) -> usize {
        self.schema().map_or(1, |fields| fields.len() * 4)
    }
}

/// The sections of format version 1, in layout order: today's without `Policies`.
const V1_SECTIONS: [Section; 28] = {
    let mut sections = [Section::Root; 28];
    let mut from = 0;
    let mut to = 0;
    while from < Section::ALL.len() {
        if !matches!(Section::ALL[from], Section::Policies) {
            sections[to] = Section::ALL[from];
            to += 1;
        }
        from += 1;
    }
    sections
};

/// What a u32 field holds, and so how the loader checks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// Any value.
    Plain,
    /// At most this value.
    Max(u32),
    /// `NONE` or at most this value.
    OptMax(u32),
    /// A string id (index into `Strings`).
    Str,
    /// `NONE` or a string id.
    OptStr,
    /// `NONE` or a blob id.
    OptBlob,
    /// An index into a record section.
    Ref(Section),
    /// `NONE` or an index into a record section.
    OptRef(Section),
    /// First record of a range in a section; the next field is its length.
    Start(Section),
    /// First byte of a range in a raw section; the next field is its length.
    ByteStart(Section),
    /// The length of the range started by the previous field.
    Len,
}

/// Declares one record type: a module with a constant per field index, the schema and length.
macro_rules! record {
    ($(#[$doc:meta])* $module:ident { $($(#[$fdoc:meta])* $field:ident : $kind:expr),* $(,)? }) => {
        $(#[$doc])*
        pub mod $module {
            #[allow(unused_imports)]
            use super::{FieldKind::{self, *}, Section};
            record!(@index 0usize; $([$(#[$fdoc])*] $field)*);
            pub const FIELDS: &[FieldKind] = &[$($kind),*];
            pub const LEN: usize = FIELDS.len();
        }
    };
    (@index $n:expr; [$(#[$fdoc:meta])*] $first:ident $($rest:tt)*) => {
        $(#[$fdoc])*
        pub const $first: usize = $n;
        record!(@index $n + 1usize; $($rest)*);
    };
    (@index $n:expr;) => {};
}

record!(
    /// The single record of `Root`: table-wide lookup data.
    root {
        SUFFIX_LENGTHS: Start(Section::LengthList), SUFFIX_LENGTHS_LEN: Len,
    }
);

/// `Strings` and `Blobs` records: a byte range in `Bytes` (strings are also valid UTF-8).
pub mod span {
    use super::{FieldKind, Section};
    pub const OFFSET: usize = 0;
    pub const LEN_FIELD: usize = 1;
    pub const FIELDS_BYTES: &[FieldKind] = &[FieldKind::ByteStart(Section::Bytes), FieldKind::Len];
}

record!(vhost {
    NAME: Str,
    DOMAINS: Start(Section::StrList),
    DOMAINS_LEN: Len,
    PORTS: Start(Section::PortList),
    PORTS_LEN: Len,
    ROUTES: Start(Section::Routes),
    ROUTES_LEN: Len,
    ENTRIES: Start(Section::Entries),
    ENTRIES_LEN: Len,
    DIMS: Start(Section::Dimensions),
    DIMS_LEN: Len,
    RESIDUAL: Start(Section::EntryList),
    RESIDUAL_LEN: Len,
});

/// Open-addressing hash table slots: linear probing with wrap-around from [`home_slot`]
/// (version 1: a power-of-two count, home slot from the hash's low bits).
pub mod slot {
    use super::{FieldKind, FieldKind::*, Section};
    pub const HASH_LO: usize = 0;
    pub const HASH_HI: usize = 1;
    /// `kind << 16 | dim`, 0 for an empty slot.
    pub const TAG: usize = 2;
    /// The virtual host a key belongs to, `NONE` for host keys.
    pub const SCOPE: usize = 3;
    pub const KEY: usize = 4;
    pub const LIST: usize = 5;
    pub const LIST_LEN: usize = 6;
    pub const LEN: usize = 7;
    pub const FIELDS_HOST: &[FieldKind] = &[
        Plain,
        Plain,
        Plain,
        Plain,
        OptStr,
        Start(Section::VhostList),
        Len,
    ];
    pub const FIELDS_KEY: &[FieldKind] = &[
        Plain,
        Plain,
        Plain,
        Plain,
        OptStr,
        Start(Section::EntryList),
        Len,
    ];
}

/// Key kinds in slot tags (never 0, which marks an empty slot).
pub mod key_kind {
    pub const HOST_EXACT: u32 = 1;
    pub const HOST_SUFFIX: u32 = 2;
    pub const HOST_ANY: u32 = 3;
    pub const EXACT: u32 = 4;
    pub const PREFIX: u32 = 5;
}

record!(
    /// One rule of a VirtualService: its identity, and what it does in a shared policy.
    route {
        VHOST: Ref(Section::VirtualHosts),
        VS_NAME: Str,
        NAME: OptStr,
        RULE_INDEX: Plain,
        POLICY: Ref(Section::Policies),
    }
);

record!(
    /// What a route does with a request. Interned: routes that behave the same share one.
    policy {
        ACTION: Max(2),
        DESTS: Start(Section::Destinations),
        DESTS_LEN: Len,
        TOTAL_WEIGHT: Plain,
        REDIRECT_URI: OptStr,
        REDIRECT_AUTHORITY: OptStr,
        REDIRECT_PORT: OptMax(u16::MAX as u32),
        REDIRECT_SCHEME: OptStr,
        STATUS: Max(999),
        REDIRECT_DERIVE_PORT: Max(1),
        DIRECT_BODY: OptBlob,
        DELAY_MS: OptMax(u32::MAX - 1),
        DELAY_PER_MILLION: Max(1_000_000),
        ABORT_KIND: Max(2),
        ABORT_HTTP_STATUS: Max(999),
        ABORT_GRPC_STATUS: OptStr,
        ABORT_PER_MILLION: Max(1_000_000),
        TIMEOUT_MS: Plain,
        RETRY_PRESENT: Max(1),
        RETRY_ATTEMPTS: Plain,
        RETRY_PER_TRY_TIMEOUT_MS: Plain,
        RETRY_ON_BITS: Plain,
        RETRY_CODES: Start(Section::CodeList),
        RETRY_CODES_LEN: Len,
        RETRY_ON_TEXT: OptStr,
        RETRY_BACKOFF_MS: Plain,
        REQUEST_OPS: Start(Section::HeaderOps),
        REQUEST_OPS_LEN: Len,
        RESPONSE_OPS: Start(Section::HeaderOps),
        RESPONSE_OPS_LEN: Len,
        REWRITE_PRESENT: Max(1),
        REWRITE_URI: OptStr,
        REWRITE_AUTHORITY: OptStr,
        REWRITE_REGEX: OptStr,
        REWRITE_REGEX_SUBSTITUTION: OptStr,
        MIRRORS: Start(Section::Mirrors),
        MIRRORS_LEN: Len,
        CORS: OptRef(Section::Cors),
    }
);

/// The version 1 route record: the identity fields of [`route`] (without `POLICY`), then the
/// fields of [`policy`] in the same order, so a policy field `f` is route field
/// `POLICY_BASE + f`.
pub mod route_v1 {
    use super::{FieldKind, policy, route};

    pub const POLICY_BASE: usize = route::POLICY;
    pub const LEN: usize = POLICY_BASE + policy::LEN;
    pub const FIELDS: &[FieldKind] = &{
        let mut fields = [FieldKind::Plain; LEN];
        let mut i = 0;
        while i < LEN {
            fields[i] = if i < POLICY_BASE {
                route::FIELDS[i]
            } else {
                policy::FIELDS[i - POLICY_BASE]
            };
            i += 1;
        }
        fields
    };
}

/// Values of `policy::ACTION`.
pub mod action_kind {
    pub const ROUTE: u32 = 0;
    pub const REDIRECT: u32 = 1;
    pub const DIRECT_RESPONSE: u32 = 2;
}

/// Values of `policy::ABORT_KIND`.
pub mod abort_kind {
    pub const NONE: u32 = 0;
    pub const HTTP: u32 = 1;
    pub const GRPC: u32 = 2;
}

record!(
    /// One match alternative of a route; its index orders it (lower wins).
    entry {
        ROUTE: Ref(Section::Routes),
        CONDS: Start(Section::Conditions), CONDS_LEN: Len,
    }
);

record!(cond {
    FIELD: Max(6),
    OP: Max(4),
    /// Bit 0: negated (`withoutHeaders`); bit 1: ASCII case-insensitive.
    FLAGS: Max(3),
    NAME: OptStr,
    VALUE: OptStr,
    DFA: OptRef(Section::Dfas),
    PATTERN: Plain,
});

/// Values of `cond::FIELD` and `dim::FIELD`: which request value a condition reads.
pub mod field {
    pub const PATH: u32 = 0;
    pub const METHOD: u32 = 1;
    pub const SCHEME: u32 = 2;
    pub const AUTHORITY: u32 = 3;
    pub const HEADER: u32 = 4;
    pub const QUERY: u32 = 5;
    pub const PORT: u32 = 6;
}

/// Values of `cond::OP`.
pub mod op {
    pub const EXACT: u32 = 0;
    pub const PREFIX: u32 = 1;
    pub const REGEX: u32 = 2;
    pub const PRESENT: u32 = 3;
    /// `field::PORT` only; the port is in `cond::PATTERN`.
    pub const PORT: u32 = 4;
}

pub const COND_NEGATED: u32 = 1;
pub const COND_IGNORE_CASE: u32 = 2;

record!(
    /// One indexed request value of a virtual host (a field, a header name, a case mode).
    dim {
        FIELD: Max(5),
        NAME: OptStr,
        IGNORE_CASE: Max(1),
        HAS_EXACT: Max(1),
        PREFIX_LENGTHS: Start(Section::LengthList), PREFIX_LENGTHS_LEN: Len,
        DFA: OptRef(Section::Dfas),
        REGEX_KEYS: Start(Section::RegexKeys), REGEX_KEYS_LEN: Len,
    }
);

record!(
    /// The entries keyed by one regex pattern: index = dimension's first key + pattern id.
    regex_key {
        ENTRIES: Start(Section::EntryList), ENTRIES_LEN: Len,
    }
);

record!(
    /// A serialized regex-automata dense DFA (little-endian) in `DfaBytes`.
    dfa {
        OFFSET: ByteStart(Section::DfaBytes), BYTES_LEN: Len,
        PATTERNS: Plain,
    }
);

record!(dest {
    CLUSTER: Ref(Section::Clusters),
    WEIGHT: Plain,
    /// Running total including this destination: the split picks the first with
    /// `draw % total < CUMULATIVE`.
    CUMULATIVE: Plain,
    PORT: OptMax(u16::MAX as u32),
    REQUEST_OPS: Start(Section::HeaderOps),
    REQUEST_OPS_LEN: Len,
    RESPONSE_OPS: Start(Section::HeaderOps),
    RESPONSE_OPS_LEN: Len,
});

record!(header_op {
    KIND: Max(2),
    NAME: Str,
    VALUE: OptStr,
});

/// Values of `header_op::KIND`.
pub mod header_op_kind {
    pub const SET: u32 = 0;
    pub const ADD: u32 = 1;
    pub const REMOVE: u32 = 2;
}

record!(mirror {
    CLUSTER: Ref(Section::Clusters),
    PER_MILLION: Max(1_000_000),
});

record!(cors {
    ORIGINS: Start(Section::StringMatches),
    ORIGINS_LEN: Len,
    METHODS: Start(Section::StrList),
    METHODS_LEN: Len,
    HEADERS: Start(Section::StrList),
    HEADERS_LEN: Len,
    EXPOSE: Start(Section::StrList),
    EXPOSE_LEN: Len,
    MAX_AGE_S: Plain,
    /// 0 unset, 1 false, 2 true.
    CREDENTIALS: Max(2),
});

record!(string_match {
    OP: Max(2),
    VALUE: Str,
});

record!(cluster {
    NAME: Str,
    HOST: Str,
    SUBSET: OptStr,
    PORT: OptMax(u16::MAX as u32),
    LABELS: Start(Section::Labels),
    LABELS_LEN: Len,
    ENDPOINTS: Start(Section::Endpoints),
    ENDPOINTS_LEN: Len,
    RESOLUTION: Max(2),
    LB: Max(3),
    HASH_HEADER: OptStr,
    HASH_COOKIE: OptStr,
    HASH_SOURCE_IP: Max(1),
    HASH_QUERY: OptStr,
    MAX_CONNECTIONS: Plain,
    CONNECT_TIMEOUT_MS: Plain,
    HTTP1_MAX_PENDING: Plain,
    HTTP2_MAX_REQUESTS: Plain,
    MAX_REQUESTS_PER_CONNECTION: Plain,
    MAX_RETRIES: Plain,
    IDLE_TIMEOUT_MS: Plain,
    OUTLIER_PRESENT: Max(1),
    CONSECUTIVE_5XX: Plain,
    CONSECUTIVE_GATEWAY_ERRORS: Plain,
    INTERVAL_MS: Plain,
    BASE_EJECTION_MS: Plain,
    MAX_EJECTION_PERCENT: Plain,
    MIN_HEALTH_PERCENT: Plain,
});

record!(endpoint {
    ADDRESS: Str,
    PORT: Max(u16::MAX as u32),
    WEIGHT: Plain,
    LABELS: Start(Section::Labels),
    LABELS_LEN: Len,
});

record!(label {
    KEY: Str,
    VALUE: Str,
});

/// Retry conditions (`retryOn` tokens) as bits of `policy::RETRY_ON_BITS`.
pub mod retry_on {
    pub const TOKENS: &[(&str, u32)] = &[
        ("5xx", 1 << 0),
        ("gateway-error", 1 << 1),
        ("reset", 1 << 2),
        ("connect-failure", 1 << 3),
        ("envoy-ratelimited", 1 << 4),
        ("retriable-4xx", 1 << 5),
        ("refused-stream", 1 << 6),
        ("retriable-status-codes", 1 << 7),
        ("retriable-headers", 1 << 8),
        ("http3-post-connect-failure", 1 << 9),
        ("cancelled", 1 << 10),
        ("deadline-exceeded", 1 << 11),
        ("internal", 1 << 12),
        ("resource-exhausted", 1 << 13),
        ("unavailable", 1 << 14),
        ("reset-before-request", 1 << 15),
    ];
    /// Set when numeric tokens gave a status code list (Envoy's `retriable-status-codes`).
    pub const RETRIABLE_STATUS_CODES: u32 = 1 << 7;

    pub fn bit(token: &str) -> Option<u32> {
        TOKENS
            .iter()
            .find(|(name, _)| *name == token)
            .map(|(_, bit)| *bit)
    }
}

/// The home slot of a hash in a version 2 table of `n_slots` slots: the high bits of
/// `hash × n_slots` ("fastrange"), uniform over `0..n_slots` for any count, without a
/// division.
#[inline]
pub fn home_slot(hash: u64, n_slots: u32) -> u32 {
    ((u128::from(hash) * u128::from(n_slots)) >> 64) as u32
}

/// Slots for `n_keys` keys in a version 2 hash table: at most 0.6 full (so unsuccessful
/// lookups stay short), at least one slot, and always at least one empty slot.
pub fn slot_count(n_keys: usize) -> usize {
    (n_keys * 5).div_ceil(3).max(n_keys + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_counts_leave_room_and_an_empty_slot() {
        assert_eq!(slot_count(0), 1);
        assert_eq!(slot_count(1), 2);
        assert_eq!(slot_count(3), 5);
        assert_eq!(slot_count(100_001), 166_669);
        for n in 0..20_000 {
            let slots = slot_count(n);
            assert!(slots > n, "{n}");
            assert!(
                n * 5 <= slots * 3,
                "{n} keys in {slots} slots is over 0.6 full"
            );
        }
    }

    #[test]
    fn home_slots_are_in_range_and_spread() {
        for n in [1u32, 2, 3, 5, 1667, 166_669, u32::MAX - 1] {
            for hash in [0u64, 1, u64::MAX / 3, u64::MAX - 1, u64::MAX] {
                assert!(home_slot(hash, n) < n, "{hash} in {n}");
            }
        }
        assert_eq!(home_slot(0, 10), 0);
        assert_eq!(home_slot(u64::MAX / 2 + 1, 10), 5);
        assert_eq!(home_slot(u64::MAX, 10), 9);
    }

    #[test]
    fn version_1_route_records_are_the_identity_then_the_policy() {
        assert_eq!(route_v1::LEN, 42);
        assert_eq!(
            &route_v1::FIELDS[..route_v1::POLICY_BASE],
            &route::FIELDS[..4]
        );
        assert_eq!(&route_v1::FIELDS[route_v1::POLICY_BASE..], policy::FIELDS);
        assert_eq!(Section::Routes.record_size_in(1), 168);
        assert_eq!(Section::Routes.record_size_in(2), 20);
        let v1 = Section::all_in(1).unwrap();
        assert_eq!(v1.len(), 28);
        assert!(!v1.contains(&Section::Policies));
        assert_eq!(Section::all_in(FORMAT_VERSION), Some(&Section::ALL[..]));
        assert_eq!(Section::all_in(0), None);
        assert_eq!(Section::all_in(FORMAT_VERSION + 1), None);
    }
}
