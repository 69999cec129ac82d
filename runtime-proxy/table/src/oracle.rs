//! A plain linear interpreter of Istio first-match semantics over a `TableSpec`.
//!
//! It shares nothing with the indexes: it scans virtual hosts and routes in order and tests
//! every condition directly, so property tests can compare it with the encoded table. It is
//! slow on purpose and allocates freely; only tests and `meshc` debugging use it.

use std::collections::HashMap;

use regex_automata::dfa::{Automaton, StartKind, dense};
use regex_automata::{Anchored, Input};

use crate::exec::RequestView;
use crate::hash::{Draw, draw, fires, percent_to_per_million};
use crate::pattern;
use crate::spec::{ActionSpec, HeaderMatchSpec, MatchSpec, StringMatchSpec, TableSpec};

/// What the oracle decided, by spec indexes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OracleDecision {
    pub virtual_host: Option<usize>,
    /// Index into the virtual host's routes.
    pub route: Option<usize>,
    /// Index into the route's destinations, for `Route` actions.
    pub destination: Option<usize>,
    pub delay_fires: bool,
    pub abort_fires: bool,
    /// Indexes of the route's mirrors that fire.
    pub mirrors: Vec<usize>,
}

pub struct Oracle<'s> {
    spec: &'s TableSpec,
    regexes: HashMap<String, dense::DFA<Vec<u32>>>,
}

fn spec_regexes<'m>(m: &'m MatchSpec) -> Vec<&'m str> {
    let mut out = Vec::new();
    let mut push = |sm: &'m StringMatchSpec| {
        if let StringMatchSpec::Regex(p) = sm {
            out.push(p.as_str());
        }
    };
    for sm in [&m.uri, &m.scheme, &m.method, &m.authority]
        .into_iter()
        .flatten()
    {
        push(sm);
    }
    for (_, hm) in m
        .headers
        .iter()
        .chain(&m.without_headers)
        .chain(&m.query_params)
    {
        if let HeaderMatchSpec::Match(sm) = hm {
            push(sm);
        }
    }
    out
}

impl<'s> Oracle<'s> {
    /// Compiles every regex of the spec on its own (one DFA per pattern).
    pub fn new(spec: &'s TableSpec) -> Result<Oracle<'s>, String> {
        let mut regexes = HashMap::new();
        for vh in &spec.virtual_hosts {
            for route in &vh.routes {
                for m in &route.matches {
                    for p in spec_regexes(m) {
                        if regexes.contains_key(p) {
                            continue;
                        }
                        let normalized = pattern::normalize(p)?;
                        // `\z` after the group: a match must end at the end of the value.
                        let dfa = dense::Builder::new()
                            .configure(dense::Config::new().start_kind(StartKind::Anchored))
                            .syntax(pattern::syntax_config())
                            .build(&format!("(?:{normalized})\\z"))
                            .map_err(|e| e.to_string())?;
                        regexes.insert(p.to_owned(), dfa);
                    }
                }
            }
        }
        Ok(Oracle { spec, regexes })
    }

    pub fn decide(&self, req: &RequestView<'_>, random: u64) -> OracleDecision {
        let mut out = OracleDecision::default();
        let Some(vh_idx) = self.virtual_host(req) else {
            return out;
        };
        out.virtual_host = Some(vh_idx);
        let vh = &self.spec.virtual_hosts[vh_idx];
        let Some(route_idx) = vh
            .routes
            .iter()
            .position(|r| r.matches.is_empty() || r.matches.iter().any(|m| self.matches(m, req)))
        else {
            return out;
        };
        out.route = Some(route_idx);
        let route = &vh.routes[route_idx];
        if let ActionSpec::Route(dests) = &route.action {
            let all_zero = dests.iter().all(|d| d.weight == 0);
            let weights: Vec<u64> = dests
                .iter()
                .map(|d| if all_zero { 1 } else { u64::from(d.weight) })
                .collect();
            let total: u64 = weights.iter().sum();
            let target = draw(random, Draw::Split) % total.max(1);
            let mut running = 0;
            for (i, w) in weights.iter().enumerate() {
                running += w;
                if target < running {
                    out.destination = Some(i);
                    break;
                }
            }
        }
        if let Some(fault) = &route.fault {
            out.delay_fires = fault
                .delay
                .is_some_and(|(_, p)| fires(random, Draw::Delay, percent_to_per_million(p)));
            out.abort_fires = fault
                .abort
                .as_ref()
                .is_some_and(|(_, p)| fires(random, Draw::Abort, percent_to_per_million(*p)));
        }
        for (i, m) in route.mirrors.iter().enumerate() {
            if fires(
                random,
                Draw::Mirror(i as u32),
                percent_to_per_million(m.percent),
            ) {
                out.mirrors.push(i);
            }
        }
        out
    }

    fn virtual_host(&self, req: &RequestView<'_>) -> Option<usize> {
        let authority = req.authority.to_ascii_lowercase();
        let host = if authority.starts_with('[') {
            match authority.find(']') {
                Some(end) => authority[..=end].to_owned(),
                None => authority.clone(),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h.to_owned(),
                _ => authority.clone(),
            }
        };
        let applicable: Vec<usize> = (0..self.spec.virtual_hosts.len())
            .filter(|&i| {
                let ports = &self.spec.virtual_hosts[i].ports;
                ports.is_empty() || req.port.is_some_and(|p| ports.contains(&p))
            })
            .collect();
        let domains = |i: usize| {
            self.spec.virtual_hosts[i]
                .domains
                .iter()
                .map(|d| d.to_ascii_lowercase())
        };
        if let Some(&i) = applicable.iter().find(|&&i| domains(i).any(|d| d == host)) {
            return Some(i);
        }
        let mut best: Option<(usize, usize)> = None;
        for &i in &applicable {
            for d in domains(i) {
                if let Some(suffix) = d.strip_prefix('*') {
                    let longer = best.is_none_or(|(len, _)| suffix.len() > len);
                    if !suffix.is_empty()
                        && host.len() > suffix.len()
                        && host.ends_with(suffix)
                        && longer
                    {
                        best = Some((suffix.len(), i));
                    }
                }
            }
        }
        if let Some((_, i)) = best {
            return Some(i);
        }
        applicable
            .into_iter()
            .find(|&i| domains(i).any(|d| d == "*"))
    }

    fn string_matches(&self, sm: &StringMatchSpec, value: &str, ignore_case: bool) -> bool {
        match sm {
            StringMatchSpec::Exact(e) if ignore_case => value.eq_ignore_ascii_case(e),
            StringMatchSpec::Exact(e) => value == e,
            StringMatchSpec::Prefix(p) if ignore_case => value
                .to_ascii_lowercase()
                .starts_with(&p.to_ascii_lowercase()),
            StringMatchSpec::Prefix(p) => value.starts_with(p.as_str()),
            StringMatchSpec::Regex(r) => self.regexes.get(r).is_some_and(|dfa| {
                let input = Input::new(value).anchored(Anchored::Yes);
                matches!(dfa.try_search_fwd(&input), Ok(Some(_)))
            }),
        }
    }

    fn header_matches(&self, hm: &HeaderMatchSpec, value: Option<&str>) -> bool {
        match (hm, value) {
            (_, None) => false,
            (HeaderMatchSpec::Present, Some(_)) => true,
            (HeaderMatchSpec::Match(sm), Some(v)) => self.string_matches(sm, v, false),
        }
    }

    fn matches(&self, m: &MatchSpec, req: &RequestView<'_>) -> bool {
        let query = |name: &str| {
            req.query?.split('&').find_map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (k == name).then_some(v)
            })
        };
        m.uri
            .as_ref()
            .is_none_or(|sm| self.string_matches(sm, req.path, m.ignore_uri_case))
            && m.scheme
                .as_ref()
                .is_none_or(|sm| self.string_matches(sm, req.scheme, false))
            && m.method
                .as_ref()
                .is_none_or(|sm| self.string_matches(sm, req.method, false))
            && m.authority
                .as_ref()
                .is_none_or(|sm| self.string_matches(sm, req.authority, false))
            && m.headers
                .iter()
                .all(|(n, hm)| self.header_matches(hm, header_str(req, n)))
            && m.without_headers
                .iter()
                .all(|(n, hm)| !self.header_matches(hm, header_str(req, n)))
            && m.query_params
                .iter()
                .all(|(n, hm)| self.header_matches(hm, query(n)))
            && m.port.is_none_or(|p| req.port == Some(p))
    }
}

/// A header's value as text (the executor hands out visible ASCII only).
fn header_str<'r>(req: &RequestView<'r>, name: &str) -> Option<&'r str> {
    std::str::from_utf8(req.headers.get(name)?).ok()
}
