//! The executor: picks the virtual host, the first matching route, the destination and the
//! fault and mirror decisions for one request, without allocating.
//!
//! Route selection visits only candidates found through the indexes (see `build::dispatch`):
//! for each indexed request value it probes one hash slot (exact), one slot per indexed prefix
//! length, or walks one DFA (regex), then verifies candidates in entry order and stops at the
//! first one that verifies or at the best entry found so far. The cost depends on the request
//! and on how many entries share its key values, not on the number of routes.

use regex_automata::Anchored;
use regex_automata::dfa::Automaton;
use regex_automata::dfa::dense::DFA;
use regex_automata::util::primitives::StateID;
use regex_automata::util::start;

use crate::format::{
    COND_IGNORE_CASE, COND_NEGATED, NONE, Section, cond, dest, dim, entry, field, home_slot,
    key_kind, op, policy, root, slot, vhost,
};
use crate::hash::{Draw, KeyHasher, draw, fires};
use crate::read::Table;
use crate::view::{
    Abort, ActionView, ClusterView, DestinationView, MirrorView, RedirectView, RouteView,
    VirtualHostView,
};

/// Request headers by lower-case name. The proxy implements it over its own request fields, so
/// no header is copied per request. When a header repeats, return the values joined by `,` (as
/// Envoy matches them) or the first one. A value that is not visible ASCII is absent.
pub trait Headers {
    fn get(&self, lowercase_name: &str) -> Option<&[u8]>;
}

/// Headers as a slice of (name, value) pairs; names compare ASCII case-insensitively.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeaderList<'a>(pub &'a [(&'a str, &'a str)]);

impl Headers for HeaderList<'_> {
    fn get(&self, lowercase_name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(lowercase_name))
            .map(|(_, value)| value.as_bytes())
    }
}

/// What the executor reads from a request.
#[derive(Clone, Copy)]
pub struct RequestView<'r> {
    /// The `:authority` / `Host` value as received (any case, optional port).
    pub authority: &'r str,
    /// The listener port, or the authority's port when there is no listener context.
    pub port: Option<u16>,
    pub method: &'r str,
    /// The path without the query string.
    pub path: &'r str,
    /// The query string without `?`.
    pub query: Option<&'r str>,
    pub scheme: &'r str,
    pub headers: &'r dyn Headers,
}

/// The outcome for one request.
#[derive(Clone, Copy, Debug)]
pub enum Decision<'t> {
    /// No virtual host claims the authority (Envoy answers 404).
    NoVirtualHost,
    /// The host is known but no route matches (Envoy answers 404).
    NoRoute {
        virtual_host: VirtualHostView<'t>,
    },
    Route(RouteDecision<'t>),
}

impl<'t> Decision<'t> {
    pub fn route(&self) -> Option<&RouteDecision<'t>> {
        match self {
            Decision::Route(decision) => Some(decision),
            _ => None,
        }
    }
}

/// A matched route and everything decided for this request.
#[derive(Clone, Copy, Debug)]
pub struct RouteDecision<'t> {
    pub virtual_host: VirtualHostView<'t>,
    /// The route; its accessors give the configured timeout, retries, header operations,
    /// rewrite, CORS, fault and mirrors.
    pub route: RouteView<'t>,
    pub action: ActionDecision<'t>,
    pub fault: FaultDecision<'t>,
    random: u64,
}

#[derive(Clone, Copy, Debug)]
pub enum ActionDecision<'t> {
    /// Forward to the destination the weighted split chose.
    Forward {
        destination: DestinationView<'t>,
        cluster: ClusterView<'t>,
    },
    Redirect(RedirectView<'t>),
    DirectResponse {
        status: u16,
        body: &'t [u8],
    },
}

/// The fault actions that fire for this request (the configured ones are `route.fault()`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultDecision<'t> {
    pub delay_ms: Option<u32>,
    pub abort: Option<Abort<'t>>,
}

impl<'t> RouteDecision<'t> {
    /// The mirrors that fire for this request.
    pub fn mirrors(&self) -> impl Iterator<Item = MirrorView<'t>> + 't {
        let random = self.random;
        self.route
            .mirrors()
            .filter(move |m| fires(random, Draw::Mirror(m.index), m.per_million))
    }
}

/// The host part of an authority: `[v6]:port` → `[v6]`, `name:port` → `name`.
fn host_of(authority: &str) -> &[u8] {
    let bytes = authority.as_bytes();
    if bytes.first() == Some(&b'[') {
        return match bytes.iter().position(|&b| b == b']') {
            Some(end) => &bytes[..=end],
            None => bytes,
        };
    }
    match bytes.iter().rposition(|&b| b == b':') {
        Some(colon) if bytes[colon + 1..].iter().all(u8::is_ascii_digit) => &bytes[..colon],
        _ => bytes,
    }
}

/// The first value of a query parameter (no percent-decoding, as Envoy's matcher).
fn query_param<'r>(query: Option<&'r str>, name: &[u8]) -> Option<&'r str> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key.as_bytes() == name).then_some(value)
    })
}

fn push_folded(hasher: &mut KeyHasher, bytes: &[u8], fold: bool) {
    if fold {
        for &b in bytes {
            hasher.push(b.to_ascii_lowercase());
        }
    } else {
        hasher.push_bytes(bytes);
    }
}

fn eq_folded(a: &[u8], b: &[u8], fold: bool) -> bool {
    if fold {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

/// The DFA state after the whole value and the end-of-input transition, if it is a match
/// state: it then lists every pattern that matches the entire value.
fn full_match_state(dfa: &DFA<&[u32]>, value: &[u8]) -> Option<StateID> {
    let mut state = dfa
        .start_state(&start::Config::new().anchored(Anchored::Yes))
        .ok()?;
    for &byte in value {
        state = dfa.next_state(state, byte);
        if dfa.is_dead_state(state) || dfa.is_quit_state(state) {
            return None;
        }
    }
    state = dfa.next_eoi_state(state);
    dfa.is_match_state(state).then_some(state)
}

impl<'a> Table<'a> {
    /// Decides what to do with one request. `random` is a uniformly random u64 per request;
    /// splits, faults and mirrors each use an independent stream derived from it.
    pub fn decide(&self, req: &RequestView<'_>, random: u64) -> Decision<'_> {
        let table: &Table<'_> = self;
        let Some(vhost_id) = self.select_virtual_host(req.authority, req.port) else {
            return Decision::NoVirtualHost;
        };
        let virtual_host = VirtualHostView {
            table,
            id: vhost_id,
        };
        let Some(entry_id) = self.first_match(vhost_id, req) else {
            return Decision::NoRoute { virtual_host };
        };
        let route_id = self.rec(Section::Entries, entry_id).get(entry::ROUTE);
        let route = RouteView {
            table,
            id: route_id,
        };
        let action = match route.action() {
            ActionView::Route => {
                let destination = DestinationView {
                    table,
                    id: self.choose_destination(route_id, random),
                };
                ActionDecision::Forward {
                    destination,
                    cluster: destination.cluster(),
                }
            }
            ActionView::Redirect(redirect) => ActionDecision::Redirect(redirect),
            ActionView::DirectResponse { status, body } => {
                ActionDecision::DirectResponse { status, body }
            }
        };
        let mut fault = FaultDecision::default();
        if let Some(configured) = route.fault() {
            if let Some((ms, per_million)) = configured.delay {
                fault.delay_ms = fires(random, Draw::Delay, per_million).then_some(ms);
            }
            if let Some((abort, per_million)) = configured.abort {
                fault.abort = fires(random, Draw::Abort, per_million).then_some(abort);
            }
        }
        Decision::Route(RouteDecision {
            virtual_host,
            route,
            action,
            fault,
            random,
        })
    }

    /// The first destination whose cumulative weight exceeds the draw (binary search).
    fn choose_destination(&self, route_id: u32, random: u64) -> u32 {
        let rec = self.policy(route_id);
        let dests = rec.range(policy::DESTS);
        let total = rec.get(policy::TOTAL_WEIGHT);
        if total == 0 {
            return dests.start;
        }
        let target = (draw(random, Draw::Split) % u64::from(total)) as u32;
        let (mut lo, mut hi) = (dests.start, dests.end.saturating_sub(1));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.rec(Section::Destinations, mid).get(dest::CUMULATIVE) > target {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }

    fn probe(
        &self,
        slots: Section,
        hash: u64,
        tag: u32,
        scope: u32,
        key: &[u8],
        fold: bool,
    ) -> Option<std::ops::Range<u32>> {
        let n = self.count(slots);
        if n == 0 {
            return None;
        }
        // Version 1: a power-of-two count, the hash's low bits, plain linear probing.
        let robin_hood = self.version != 1;
        let mut idx = if robin_hood {
            home_slot(hash, n)
        } else {
            (hash as u32) & (n - 1)
        };
        // The loader checked that an empty slot ends every probe; the bound is a second guard.
        for distance in 0..n {
            let rec = self.rec(slots, idx);
            let found_tag = rec.get(slot::TAG);
            if found_tag == 0 {
                return None;
            }
            let found_hash =
                u64::from(rec.get(slot::HASH_LO)) | (u64::from(rec.get(slot::HASH_HI)) << 32);
            if found_hash == hash
                && found_tag == tag
                && rec.get(slot::SCOPE) == scope
                && eq_folded(key, self.str_bytes(rec.get(slot::KEY)), fold)
            {
                return Some(rec.range(slot::LIST));
            }
            // Robin Hood placement (checked at load): a key closer to its home than we are to
            // ours means ours would have taken its slot, so it is not in the table.
            if robin_hood {
                let found_home = home_slot(found_hash, n);
                let found_distance = if idx >= found_home {
                    idx - found_home
                } else {
                    n - (found_home - idx)
                };
                if found_distance < distance {
                    return None;
                }
            }
            idx += 1;
            if idx == n {
                idx = 0;
            }
        }
        None
    }

    /// Envoy's order: exact domain, then the longest `*suffix`, then `*`; among virtual hosts
    /// claiming the same domain, the one whose ports include the request port.
    fn select_virtual_host(&self, authority: &str, port: Option<u16>) -> Option<u32> {
        let host = host_of(authority);
        let host_key = |kind: u32, bytes: &[u8]| {
            let mut hasher = KeyHasher::new(kind, 0, NONE);
            push_folded(&mut hasher, bytes, true);
            self.probe(
                Section::HostSlots,
                hasher.finish(),
                kind << 16,
                NONE,
                bytes,
                true,
            )
            .and_then(|list| self.vhost_for_port(list, port))
        };
        if let Some(found) = host_key(key_kind::HOST_EXACT, host) {
            return Some(found);
        }
        let lengths = self.rec(Section::Root, 0).range(root::SUFFIX_LENGTHS);
        for i in lengths.rev() {
            let len = self.item(Section::LengthList, i) as usize;
            // Envoy: the `*` stands for at least one character.
            if len >= host.len() {
                continue;
            }
            if let Some(found) = host_key(key_kind::HOST_SUFFIX, &host[host.len() - len..]) {
                return Some(found);
            }
        }
        host_key(key_kind::HOST_ANY, b"")
    }

    fn vhost_for_port(&self, list: std::ops::Range<u32>, port: Option<u16>) -> Option<u32> {
        list.map(|i| self.item(Section::VhostList, i)).find(|&v| {
            let ports = self.rec(Section::VirtualHosts, v).range(vhost::PORTS);
            ports.is_empty()
                || port.is_some_and(|p| {
                    ports
                        .clone()
                        .any(|i| self.item(Section::PortList, i) == u32::from(p))
                })
        })
    }

    fn request_value<'r>(
        &self,
        req: &RequestView<'r>,
        field_id: u32,
        name: u32,
    ) -> Option<&'r [u8]> {
        match field_id {
            field::PATH => Some(req.path.as_bytes()),
            field::METHOD => Some(req.method.as_bytes()),
            field::SCHEME => Some(req.scheme.as_bytes()),
            field::AUTHORITY => Some(req.authority.as_bytes()),
            field::HEADER => req.headers.get(self.str(name)),
            field::QUERY => query_param(req.query, self.str_bytes(name)).map(str::as_bytes),
            _ => None,
        }
    }

    /// The lowest-numbered match entry of the host that the request satisfies.
    fn first_match(&self, vhost_id: u32, req: &RequestView<'_>) -> Option<u32> {
        let vh = self.rec(Section::VirtualHosts, vhost_id);
        let mut best = NONE;
        let dims = vh.range(vhost::DIMS);
        for dim_id in dims.clone() {
            let local = dim_id - dims.start;
            let d = self.rec(Section::Dimensions, dim_id);
            let Some(value) = self.request_value(req, d.get(dim::FIELD), d.get(dim::NAME)) else {
                continue;
            };
            let fold = d.get(dim::IGNORE_CASE) != 0;
            if d.get(dim::HAS_EXACT) != 0 {
                let mut hasher = KeyHasher::new(key_kind::EXACT, local, vhost_id);
                push_folded(&mut hasher, value, fold);
                let tag = (key_kind::EXACT << 16) | local;
                if let Some(list) = self.probe(
                    Section::KeySlots,
                    hasher.finish(),
                    tag,
                    vhost_id,
                    value,
                    fold,
                ) {
                    self.scan(list, req, &mut best);
                }
            }
            let lengths = d.range(dim::PREFIX_LENGTHS);
            if !lengths.is_empty() {
                // One pass over the value: hash incrementally and probe at each indexed length.
                let mut hasher = KeyHasher::new(key_kind::PREFIX, local, vhost_id);
                let tag = (key_kind::PREFIX << 16) | local;
                let mut hashed = 0;
                for i in lengths {
                    let len = self.item(Section::LengthList, i) as usize;
                    if len > value.len() {
                        break;
                    }
                    push_folded(&mut hasher, &value[hashed..len], fold);
                    hashed = len;
                    if let Some(list) = self.probe(
                        Section::KeySlots,
                        hasher.finish(),
                        tag,
                        vhost_id,
                        &value[..len],
                        fold,
                    ) {
                        self.scan(list, req, &mut best);
                    }
                }
            }
            let keys = d.range(dim::REGEX_KEYS);
            if !keys.is_empty()
                && let Some(dfa) = self.dfa(d.get(dim::DFA))
                && let Some(state) = full_match_state(dfa, value)
            {
                for i in 0..dfa.match_len(state) {
                    let pattern = dfa.match_pattern(state, i).as_u32();
                    if pattern < keys.end - keys.start {
                        let list = self.rec(Section::RegexKeys, keys.start + pattern).range(0);
                        self.scan(list, req, &mut best);
                    }
                }
            }
        }
        self.scan(vh.range(vhost::RESIDUAL), req, &mut best);
        (best != NONE).then_some(best)
    }

    /// Verifies the entries of a sorted candidate list until one matches or the current best
    /// is not beaten anymore.
    fn scan(&self, list: std::ops::Range<u32>, req: &RequestView<'_>, best: &mut u32) {
        for i in list {
            let entry_id = self.item(Section::EntryList, i);
            if entry_id >= *best {
                return;
            }
            if self.verify(entry_id, req) {
                *best = entry_id;
                return;
            }
        }
    }

    fn verify(&self, entry_id: u32, req: &RequestView<'_>) -> bool {
        self.rec(Section::Entries, entry_id)
            .range(entry::CONDS)
            .all(|c| self.condition_holds(c, req))
    }

    /// Whether one pattern of a multi-pattern DFA matches the whole value.
    fn regex_holds(&self, dfa_id: u32, pattern: u32, value: &[u8]) -> bool {
        let Some(dfa) = self.dfa(dfa_id) else {
            return false;
        };
        full_match_state(dfa, value).is_some_and(|state| {
            (0..dfa.match_len(state)).any(|i| dfa.match_pattern(state, i).as_u32() == pattern)
        })
    }

    fn condition_holds(&self, cond_id: u32, req: &RequestView<'_>) -> bool {
        let c = self.rec(Section::Conditions, cond_id);
        let flags = c.get(cond::FLAGS);
        let test = c.get(cond::OP);
        let passed = if test == op::PORT {
            req.port.map(u32::from) == Some(c.get(cond::PATTERN))
        } else {
            match self.request_value(req, c.get(cond::FIELD), c.get(cond::NAME)) {
                None => false,
                Some(value) => {
                    let expected = self.str_bytes(c.get(cond::VALUE));
                    let fold = flags & COND_IGNORE_CASE != 0;
                    match test {
                        op::PRESENT => true,
                        op::EXACT => eq_folded(value, expected, fold),
                        op::PREFIX => {
                            value.len() >= expected.len()
                                && eq_folded(&value[..expected.len()], expected, fold)
                        }
                        op::REGEX => {
                            self.regex_holds(c.get(cond::DFA), c.get(cond::PATTERN), value)
                        }
                        _ => false,
                    }
                }
            }
        };
        passed != (flags & COND_NEGATED != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::{host_of, query_param};

    #[test]
    fn ports_are_stripped_from_authorities() {
        assert_eq!(host_of("Example.com:8080"), b"Example.com");
        assert_eq!(host_of("example.com"), b"example.com");
        assert_eq!(host_of("[::1]:80"), b"[::1]");
        assert_eq!(host_of("[::1]"), b"[::1]");
        assert_eq!(host_of("weird:port"), b"weird:port");
    }

    #[test]
    fn query_params_take_the_first_occurrence() {
        assert_eq!(query_param(Some("a=1&b=2&a=3"), b"a"), Some("1"));
        assert_eq!(query_param(Some("flag&b=2"), b"flag"), Some(""));
        assert_eq!(query_param(Some("b=2"), b"a"), None);
        assert_eq!(query_param(None, b"a"), None);
    }
}
