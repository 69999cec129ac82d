//! Helpers shared by the integration tests: spec builders, owned requests, encode + load.

#![allow(dead_code)]

use mesh_table::spec::{
    ActionSpec, ClusterSpec, HeaderMatchSpec, MatchSpec, RouteSpec, StringMatchSpec, TableSpec,
    VirtualHostSpec, WeightedDestSpec,
};
use mesh_table::{AlignedBytes, Headers, RequestView, Table, encode};

pub fn cluster(name: &str) -> ClusterSpec {
    ClusterSpec {
        name: name.to_owned(),
        host: name.to_owned(),
        ..ClusterSpec::default()
    }
}

/// A route forwarding everything to one cluster, tagged with its rule index.
pub fn route(rule_index: u32, cluster: u32) -> RouteSpec {
    RouteSpec::new(
        "default/vs",
        rule_index,
        ActionSpec::Route(vec![WeightedDestSpec {
            cluster,
            weight: 100,
            ..Default::default()
        }]),
    )
}

pub fn with_match(mut r: RouteSpec, m: MatchSpec) -> RouteSpec {
    r.matches.push(m);
    r
}

pub fn vhost(name: &str, domains: &[&str], routes: Vec<RouteSpec>) -> VirtualHostSpec {
    VirtualHostSpec {
        name: name.to_owned(),
        domains: domains.iter().map(|d| (*d).to_owned()).collect(),
        ports: Vec::new(),
        routes,
    }
}

pub fn spec(virtual_hosts: Vec<VirtualHostSpec>, n_clusters: usize) -> TableSpec {
    TableSpec {
        content_hash: [7; 32],
        virtual_hosts,
        clusters: (0..n_clusters).map(|i| cluster(&format!("c{i}"))).collect(),
    }
}

pub fn exact(v: &str) -> StringMatchSpec {
    StringMatchSpec::Exact(v.to_owned())
}
pub fn prefix(v: &str) -> StringMatchSpec {
    StringMatchSpec::Prefix(v.to_owned())
}
pub fn regex(v: &str) -> StringMatchSpec {
    StringMatchSpec::Regex(v.to_owned())
}
pub fn header(name: &str, m: StringMatchSpec) -> (String, HeaderMatchSpec) {
    (name.to_owned(), HeaderMatchSpec::Match(m))
}
pub fn present(name: &str) -> (String, HeaderMatchSpec) {
    (name.to_owned(), HeaderMatchSpec::Present)
}
pub fn uri(m: StringMatchSpec) -> MatchSpec {
    MatchSpec {
        uri: Some(m),
        ..MatchSpec::default()
    }
}

/// Owned headers for tests; names compare case-insensitively like HTTP.
#[derive(Clone, Debug, Default)]
pub struct OwnedHeaders(pub Vec<(String, String)>);

impl Headers for OwnedHeaders {
    fn get(&self, lowercase_name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(lowercase_name))
            .map(|(_, v)| v.as_bytes())
    }
}

/// An owned request that lends out a `RequestView`.
#[derive(Clone, Debug)]
pub struct Req {
    pub authority: String,
    pub port: Option<u16>,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub scheme: String,
    pub headers: OwnedHeaders,
}

impl Req {
    pub fn new(authority: &str, path: &str) -> Req {
        Req {
            authority: authority.to_owned(),
            port: None,
            method: "GET".to_owned(),
            path: path.to_owned(),
            query: None,
            scheme: "http".to_owned(),
            headers: OwnedHeaders::default(),
        }
    }
    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.0.push((name.to_owned(), value.to_owned()));
        self
    }
    pub fn method(mut self, method: &str) -> Req {
        self.method = method.to_owned();
        self
    }
    pub fn query(mut self, query: &str) -> Req {
        self.query = Some(query.to_owned());
        self
    }
    pub fn port(mut self, port: u16) -> Req {
        self.port = Some(port);
        self
    }
    pub fn view(&self) -> RequestView<'_> {
        RequestView {
            authority: &self.authority,
            port: self.port,
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            scheme: &self.scheme,
            headers: &self.headers,
        }
    }
}

/// Encodes a spec into an aligned buffer (panics on encode errors: tests build valid specs).
pub fn artifact(spec: &TableSpec) -> AlignedBytes {
    AlignedBytes::new(&encode(spec).expect("spec encodes"))
}

/// The (virtual host index, route index) a request lands on, if any.
pub fn pick(table: &Table<'_>, req: &Req) -> Option<(u32, u32)> {
    table
        .decide(&req.view(), 0)
        .route()
        .map(|d| (d.virtual_host.id().0, d.route.index_in_host()))
}

/// The (offset, record count) of a section, read from an artifact's section table.
pub fn section_at(bytes: &[u8], kind: mesh_table::format::Section) -> (usize, usize) {
    use mesh_table::format::{HEADER_LEN, SECTION_ENTRY_LEN};
    let n_sections = u32::from_le_bytes(bytes[20..24].try_into().unwrap()) as usize;
    let at = (0..n_sections)
        .map(|i| HEADER_LEN + i * SECTION_ENTRY_LEN)
        .find(|&at| bytes[at..at + 4] == (kind as u32).to_le_bytes())
        .expect("section present");
    let offset = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap());
    let count = u64::from_le_bytes(bytes[at + 24..at + 32].try_into().unwrap());
    (offset as usize, count as usize)
}

/// Field `field` of record `record` of a record section, from the raw bytes.
pub fn raw_field(
    bytes: &[u8],
    kind: mesh_table::format::Section,
    record: usize,
    field: usize,
) -> u32 {
    let (offset, _) = section_at(bytes, kind);
    let at = offset + record * kind.record_size() + field * 4;
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// Records in the section `meshc inspect` calls `name` (`None` when the table has no such
/// section).
pub fn section_count(table: &Table<'_>, name: &str) -> Option<u32> {
    table
        .info()
        .sections
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| s.count)
}
