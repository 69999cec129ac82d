//! Per virtual host: match entries, their conditions, and the indexes that find candidates.
//!
//! Each match entry (one `HTTPMatchRequest` of one route, in route order) is filed under exactly
//! one key: its most selective positive condition (exact value, string prefix or regex on some
//! request field). Entries with nothing indexable go to the residual list. A request can only
//! match an entry if the request satisfies the entry's key condition, so looking up the
//! request's values in every index of the host finds every entry that can match, and the
//! lowest-numbered entry that fully verifies is Istio's first match.

use std::collections::{BTreeSet, HashMap};

use regex_automata::dfa::dense;
use regex_automata::nfa::thompson;
use regex_automata::{MatchKind, dfa::StartKind};

use super::writer::{SlotItem, Writer};
use super::{EncodeError, EncodeOptions};
use crate::format::{
    self, COND_IGNORE_CASE, COND_NEGATED, NONE, Section, cond, dim, entry, field, key_kind, op,
    regex_key, route, vhost,
};
use crate::hash::KeyHasher;
use crate::pattern;
use crate::spec::{HeaderMatchSpec, MatchSpec, StringMatchSpec, VirtualHostSpec};

/// A condition before layout.
struct CondIr {
    field: u32,
    name: Option<String>,
    op: u32,
    flags: u32,
    value: Option<String>,
    /// (regex group, pattern id) for regex conditions.
    regex: Option<(usize, u32)>,
    port: u32,
}

/// All regexes of one (field, name) in a virtual host: they share one DFA.
struct RegexGroup {
    field: u32,
    name: Option<String>,
    patterns: Vec<String>,
    ids: HashMap<String, u32>,
}

/// One indexed request value (field, name, case mode) and what is indexed under it.
struct DimIr {
    field: u32,
    name: Option<String>,
    ignore_case: bool,
    has_exact: bool,
    prefix_lengths: BTreeSet<u32>,
    regex_group: Option<usize>,
    /// Entries keyed by each pattern of `regex_group`, indexed by pattern id.
    regex_keys: Vec<Vec<u32>>,
}

struct Index {
    dims: Vec<DimIr>,
    dim_ids: HashMap<(u32, Option<String>, bool), usize>,
    /// (dim, kind, value, entries), in first-use order.
    keys: Vec<(usize, u32, String, Vec<u32>)>,
    key_ids: HashMap<(usize, u32, String), usize>,
    residual: Vec<u32>,
}

impl Index {
    fn dim(&mut self, field: u32, name: &Option<String>, ignore_case: bool) -> usize {
        let key = (field, name.clone(), ignore_case);
        if let Some(&id) = self.dim_ids.get(&key) {
            return id;
        }
        let id = self.dims.len();
        self.dims.push(DimIr {
            field,
            name: name.clone(),
            ignore_case,
            has_exact: false,
            prefix_lengths: BTreeSet::new(),
            regex_group: None,
            regex_keys: Vec::new(),
        });
        self.dim_ids.insert(key, id);
        id
    }

    fn key(&mut self, dim: usize, kind: u32, value: String, entry_id: u32) {
        let lookup = (dim, kind, value);
        if let Some(&id) = self.key_ids.get(&lookup) {
            self.keys[id].3.push(entry_id);
            return;
        }
        self.key_ids.insert(lookup.clone(), self.keys.len());
        self.keys
            .push((lookup.0, lookup.1, lookup.2, vec![entry_id]));
    }
}

fn string_cond(field: u32, name: Option<String>, m: &StringMatchSpec, ignore_case: bool) -> CondIr {
    let (op, value) = match m {
        StringMatchSpec::Exact(v) => (op::EXACT, v),
        StringMatchSpec::Prefix(v) => (op::PREFIX, v),
        StringMatchSpec::Regex(v) => (op::REGEX, v),
    };
    // Istio: ignoreUriCase applies to exact and prefix only.
    let ignore_case = ignore_case && op != op::REGEX;
    CondIr {
        field,
        name,
        op,
        flags: if ignore_case { COND_IGNORE_CASE } else { 0 },
        value: Some(if ignore_case {
            value.to_ascii_lowercase()
        } else {
            value.clone()
        }),
        regex: None,
        port: 0,
    }
}

fn header_cond(field: u32, name: &str, m: &HeaderMatchSpec, negated: bool) -> CondIr {
    let name = Some(name.to_ascii_lowercase());
    let mut c = match m {
        HeaderMatchSpec::Present => CondIr {
            field,
            name,
            op: op::PRESENT,
            flags: 0,
            value: None,
            regex: None,
            port: 0,
        },
        HeaderMatchSpec::Match(sm) => string_cond(field, name, sm, false),
    };
    if negated {
        c.flags |= COND_NEGATED;
    }
    c
}

fn conditions(m: &MatchSpec) -> Vec<CondIr> {
    let mut conds = Vec::new();
    if let Some(uri) = &m.uri {
        conds.push(string_cond(field::PATH, None, uri, m.ignore_uri_case));
    }
    if let Some(scheme) = &m.scheme {
        conds.push(string_cond(field::SCHEME, None, scheme, false));
    }
    if let Some(method) = &m.method {
        conds.push(string_cond(field::METHOD, None, method, false));
    }
    if let Some(authority) = &m.authority {
        conds.push(string_cond(field::AUTHORITY, None, authority, false));
    }
    for (name, hm) in &m.headers {
        conds.push(header_cond(field::HEADER, name, hm, false));
    }
    for (name, hm) in &m.without_headers {
        conds.push(header_cond(field::HEADER, name, hm, true));
    }
    for (name, hm) in &m.query_params {
        conds.push(header_cond(field::QUERY, name, hm, false));
    }
    if let Some(port) = m.port {
        conds.push(CondIr {
            field: field::PORT,
            name: None,
            op: op::PORT,
            flags: 0,
            value: None,
            regex: None,
            port: u32::from(port),
        });
    }
    conds
}

/// How good a condition is as an index key (lower is better), or `None` if it cannot be one.
/// Exact values on paths, headers, query parameters and authorities are nearly unique per
/// route; prefixes are next; one DFA walk finds all regex candidates; methods and schemes take
/// few values, so their lists are long.
fn key_rank(c: &CondIr) -> Option<(u32, std::cmp::Reverse<usize>)> {
    if c.flags & COND_NEGATED != 0 {
        return None;
    }
    let len = c.value.as_ref().map_or(0, String::len);
    let rank = match (c.op, c.field) {
        (op::EXACT, field::METHOD | field::SCHEME) => 3,
        (op::EXACT, _) => 0,
        (op::PREFIX, _) if len > 0 => 1,
        (op::REGEX, _) => 2,
        _ => return None,
    };
    Some((rank, std::cmp::Reverse(len)))
}

fn field_name(field_id: u32, name: &Option<String>) -> String {
    let base = match field_id {
        field::PATH => "the path",
        field::METHOD => "the method",
        field::SCHEME => "the scheme",
        field::AUTHORITY => "the authority",
        field::HEADER => "header",
        _ => "query parameter",
    };
    match name {
        Some(name) => format!("{base} `{name}`"),
        None => base.to_owned(),
    }
}

fn build_dfa(
    vhost_spec: &VirtualHostSpec,
    group: &RegexGroup,
    options: &EncodeOptions,
) -> Result<Vec<u8>, EncodeError> {
    let mut patterns = Vec::with_capacity(group.patterns.len());
    for p in &group.patterns {
        patterns.push(
            pattern::normalize(p).map_err(|message| EncodeError::RegexSyntax {
                virtual_host: vhost_spec.name.clone(),
                pattern: p.clone(),
                message,
            })?,
        );
    }
    // MatchKind::All keeps every pattern alive to the end of the input, so the state reached
    // after the end-of-input transition lists every pattern that matches the whole value.
    let config = dense::Config::new()
        .match_kind(MatchKind::All)
        .start_kind(StartKind::Anchored)
        .accelerate(false)
        .minimize(false)
        .byte_classes(true)
        .dfa_size_limit(Some(options.dfa_size_limit))
        .determinize_size_limit(Some(options.determinize_size_limit));
    let dfa = dense::Builder::new()
        .configure(config)
        .syntax(pattern::syntax_config())
        .thompson(thompson::Config::new().which_captures(thompson::WhichCaptures::None))
        .build_many(&patterns)
        .map_err(|err| EncodeError::RegexTooBig {
            virtual_host: vhost_spec.name.clone(),
            field: field_name(group.field, &group.name),
            patterns: patterns.len(),
            message: err.to_string(),
        })?;
    let (bytes, pad) = dfa.to_bytes_little_endian();
    Ok(bytes[pad..].to_vec())
}

/// A (start, len) range of records just written; (0, 0) when empty, as every empty range.
fn range(start: u32, len: usize) -> (u32, u32) {
    if len == 0 {
        (0, 0)
    } else {
        (start, len as u32)
    }
}

/// Writes a virtual host: its route records, match entries, conditions, DFAs and indexes.
/// Key slots go to `key_slots` for the table-wide hash table.
pub fn write_virtual_host(
    w: &mut Writer,
    vhost_id: u32,
    vhost_spec: &VirtualHostSpec,
    routes: &[[u32; route::LEN]],
    options: &EncodeOptions,
    key_slots: &mut Vec<SlotItem>,
) -> Result<(), EncodeError> {
    let routes_start = w.count(Section::Routes);
    let entries_start = w.count(Section::Entries);

    // Conditions of every entry, and the regex groups they use.
    let mut groups: Vec<RegexGroup> = Vec::new();
    let mut group_ids: HashMap<(u32, Option<String>), usize> = HashMap::new();
    let mut entry_conds: Vec<(u32, Vec<CondIr>)> = Vec::new();
    for (route_idx, route_spec) in vhost_spec.routes.iter().enumerate() {
        let route_id = routes_start + route_idx as u32;
        // Istio: a rule without matches matches every request.
        let alternatives: Vec<Vec<CondIr>> = if route_spec.matches.is_empty() {
            vec![Vec::new()]
        } else {
            route_spec.matches.iter().map(conditions).collect()
        };
        for mut conds in alternatives {
            for c in &mut conds {
                if c.op != op::REGEX {
                    continue;
                }
                let group_key = (c.field, c.name.clone());
                let group_id = *group_ids.entry(group_key).or_insert_with(|| {
                    groups.push(RegexGroup {
                        field: c.field,
                        name: c.name.clone(),
                        patterns: Vec::new(),
                        ids: HashMap::new(),
                    });
                    groups.len() - 1
                });
                let group = &mut groups[group_id];
                let value = c.value.clone().unwrap_or_default();
                let pattern_id = match group.ids.get(&value) {
                    Some(&id) => id,
                    None => {
                        let id = group.patterns.len() as u32;
                        group.patterns.push(value.clone());
                        group.ids.insert(value, id);
                        id
                    }
                };
                c.regex = Some((group_id, pattern_id));
            }
            entry_conds.push((route_id, conds));
        }
    }

    // One DFA per group; ids are assigned in group order.
    let dfas_start = w.count(Section::Dfas);
    for group in &groups {
        let bytes = build_dfa(vhost_spec, group, options)?;
        let (offset, len) = w.dfa(&bytes)?;
        let mut rec = [0u32; format::dfa::LEN];
        rec[format::dfa::OFFSET] = offset;
        rec[format::dfa::BYTES_LEN] = len;
        rec[format::dfa::PATTERNS] = group.patterns.len() as u32;
        w.push(Section::Dfas, &rec)?;
    }

    // Entries and conditions, and each entry filed under its key.
    let mut index = Index {
        dims: Vec::new(),
        dim_ids: HashMap::new(),
        keys: Vec::new(),
        key_ids: HashMap::new(),
        residual: Vec::new(),
    };
    for (local_idx, (route_id, conds)) in entry_conds.iter().enumerate() {
        let entry_id = entries_start + local_idx as u32;
        let conds_start = w.count(Section::Conditions);
        for c in conds {
            let mut rec = [0u32; cond::LEN];
            rec[cond::FIELD] = c.field;
            rec[cond::OP] = c.op;
            rec[cond::FLAGS] = c.flags;
            rec[cond::NAME] = w.opt_str(c.name.as_deref())?;
            rec[cond::VALUE] = w.opt_str(c.value.as_deref())?;
            rec[cond::DFA] = NONE;
            rec[cond::PATTERN] = c.port;
            if let Some((group_id, pattern_id)) = c.regex {
                rec[cond::DFA] = dfas_start + group_id as u32;
                rec[cond::PATTERN] = pattern_id;
            }
            w.push(Section::Conditions, &rec)?;
        }
        let mut rec = [0u32; entry::LEN];
        rec[entry::ROUTE] = *route_id;
        (rec[entry::CONDS], rec[entry::CONDS_LEN]) = range(conds_start, conds.len());
        w.push(Section::Entries, &rec)?;

        let best = conds
            .iter()
            .filter_map(|c| key_rank(c).map(|rank| (rank, c)))
            .min_by_key(|(rank, _)| *rank);
        let Some((_, key)) = best else {
            index.residual.push(entry_id);
            continue;
        };
        let ignore_case = key.flags & COND_IGNORE_CASE != 0;
        let dim_id = index.dim(key.field, &key.name, ignore_case);
        let value = key.value.clone().unwrap_or_default();
        match key.op {
            op::EXACT => {
                index.dims[dim_id].has_exact = true;
                index.key(dim_id, key_kind::EXACT, value, entry_id);
            }
            op::PREFIX => {
                index.dims[dim_id].prefix_lengths.insert(value.len() as u32);
                index.key(dim_id, key_kind::PREFIX, value, entry_id);
            }
            _ => {
                let (group_id, pattern_id) = key.regex.unwrap_or((0, 0));
                let d = &mut index.dims[dim_id];
                if d.regex_keys.is_empty() {
                    d.regex_group = Some(group_id);
                    d.regex_keys = vec![Vec::new(); groups[group_id].patterns.len()];
                }
                d.regex_keys[pattern_id as usize].push(entry_id);
            }
        }
    }

    // Dimensions with their prefix lengths and per-pattern key lists.
    let dims_start = w.count(Section::Dimensions);
    for (dim_id, d) in index.dims.iter().enumerate() {
        if dim_id > 0xffff {
            return Err(EncodeError::TooLarge {
                what: "indexed fields per virtual host",
            });
        }
        let mut rec = [0u32; dim::LEN];
        rec[dim::FIELD] = d.field;
        rec[dim::NAME] = w.opt_str(d.name.as_deref())?;
        rec[dim::IGNORE_CASE] = u32::from(d.ignore_case);
        rec[dim::HAS_EXACT] = u32::from(d.has_exact);
        (rec[dim::PREFIX_LENGTHS], rec[dim::PREFIX_LENGTHS_LEN]) =
            w.interned_list(Section::LengthList, d.prefix_lengths.iter().copied())?;
        rec[dim::DFA] = d.regex_group.map_or(NONE, |g| dfas_start + g as u32);
        let mut key_records = Vec::with_capacity(d.regex_keys.len());
        for entries in &d.regex_keys {
            key_records.push(w.list(Section::EntryList, entries.iter().copied())?);
        }
        (rec[dim::REGEX_KEYS], rec[dim::REGEX_KEYS_LEN]) =
            range(w.count(Section::RegexKeys), key_records.len());
        for (start, len) in key_records {
            let mut k = [0u32; regex_key::LEN];
            k[regex_key::ENTRIES] = start;
            k[regex_key::ENTRIES_LEN] = len;
            w.push(Section::RegexKeys, &k)?;
        }
        w.push(Section::Dimensions, &rec)?;
    }

    for (dim_id, kind, value, entries) in &index.keys {
        let list = w.list(Section::EntryList, entries.iter().copied())?;
        let mut hasher = KeyHasher::new(*kind, *dim_id as u32, vhost_id);
        hasher.push_bytes(value.as_bytes());
        key_slots.push(SlotItem {
            hash: hasher.finish(),
            tag: (kind << 16) | *dim_id as u32,
            scope: vhost_id,
            key: w.str(value)?,
            list,
        });
    }
    let residual = w.list(Section::EntryList, index.residual.iter().copied())?;

    for r in routes {
        w.push(Section::Routes, r)?;
    }

    let mut rec = [0u32; vhost::LEN];
    rec[vhost::NAME] = w.str(&vhost_spec.name)?;
    let domains = vhost_spec
        .domains
        .iter()
        .map(|d| w.str(&d.to_ascii_lowercase()))
        .collect::<Result<Vec<_>, _>>()?;
    (rec[vhost::DOMAINS], rec[vhost::DOMAINS_LEN]) = w.interned_list(Section::StrList, domains)?;
    (rec[vhost::PORTS], rec[vhost::PORTS_LEN]) = w.interned_list(
        Section::PortList,
        vhost_spec.ports.iter().map(|&p| u32::from(p)),
    )?;
    (rec[vhost::ROUTES], rec[vhost::ROUTES_LEN]) = range(routes_start, routes.len());
    (rec[vhost::ENTRIES], rec[vhost::ENTRIES_LEN]) = range(entries_start, entry_conds.len());
    (rec[vhost::DIMS], rec[vhost::DIMS_LEN]) = range(dims_start, index.dims.len());
    (rec[vhost::RESIDUAL], rec[vhost::RESIDUAL_LEN]) = residual;
    let id = w.push(Section::VirtualHosts, &rec)?;
    debug_assert_eq!(id, vhost_id);
    Ok(())
}
