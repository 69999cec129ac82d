//! `MESH0401` `shadowed-rule`: every match of a rule is covered by earlier rules. This file
//! also holds the shadowing analysis that reports `shadowed-match` and `duplicate-match`.

use std::collections::HashMap;

use super::Rule;
use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::regex::Matcher;
use crate::typecheck::{
    HeaderMatch, HttpMatch, Ir, KeyedMatch, MatchValue, StringMatch, VirtualService,
};

pub static RULE: Rule = Rule {
    code: "MESH0401",
    name: "shadowed-rule",
    severity: Severity::Warning,
    summary: "every match of a rule is covered by earlier rules, so the rule is never used",
    doc: r#"## What it does
Reports an `http` rule whose every `match` entry is covered by an entry of an earlier rule:
every request the entry matches also matches the earlier one, and the first matching rule
wins. The earlier rule is labelled.

An entry A covers B when each condition of A is implied by B:
- `uri`, `scheme`, `method`, `authority`, header, query-parameter values: an `exact` under
  an earlier `prefix` or equal `exact`; a `prefix` under a shorter earlier `prefix`; a
  `regex` whose every match starts with an earlier `prefix` (from its literal prefixes), or
  that lists finitely many strings an earlier matcher all accepts; anything under an
  earlier universal regex (`.*`) or `prefix: /` on `uri`; an earlier regex of the form
  `literal.*` acts as a prefix; an `exact` value is tested against an earlier regex with an
  RE2-compatible matcher. `ignoreUriCase` is taken into account.
- a header present (`{}`) is implied by any condition on that header;
- `withoutHeaders`, `port`, `sourceLabels`, `sourceNamespace` and `gateways` are compared
  as sets of requests and clients;
- a missing condition in A matches everything.
Coverage by the union of several earlier entries is claimed only entry by entry. When the
analysis cannot prove inclusion (for example two different regexes), it reports nothing.

Rules after a rule without `match` are left to `unreachable-rule`.

## Why is this bad
The rule's route, retries, faults and timeouts never apply. It is usually an ordering
mistake: a broad rule placed before a narrow one.

## Example
```yaml
http:
- name: catalogue
  match:
  - uri: {prefix: /catalogue}
  route: [{destination: {host: catalogue}}]
- name: catalogue-v2
  match:
  - uri: {prefix: /catalogue/v2}
  route: [{destination: {host: catalogue, subset: v2}}]
```

## Use instead
Put the narrower rule first:
```yaml
http:
- name: catalogue-v2
  match: [{uri: {prefix: /catalogue/v2}}]
  route: [{destination: {host: catalogue, subset: v2}}]
- name: catalogue
  match: [{uri: {prefix: /catalogue}}]
  route: [{destination: {host: catalogue}}]
```

## References
- Istio webhook `analyzeUnreachableHTTPRules` (VAL), V12 "all matches used by prior rules"
  (which detects only exact duplicates) and V13a (prefix overlaps); `istioctl analyze`
  IST0130 VirtualServiceUnreachableRule
"#,
};

pub fn check(ir: &Ir, _settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    let mut regexes = Regexes::default();
    for vs in &ir.virtual_services {
        analyse(vs, &mut regexes, diagnostics);
    }
}

/// Compiled regexes, shared across VirtualServices.
#[derive(Default)]
struct Regexes(HashMap<String, Option<Matcher>>);

impl Regexes {
    fn get(&mut self, pattern: &str) -> Option<&Matcher> {
        if !self.0.contains_key(pattern) {
            self.0.insert(pattern.to_owned(), Matcher::new(pattern));
        }
        self.0.get(pattern).and_then(Option::as_ref)
    }
}

/// Earlier entries, indexed so that finding candidates that may cover an entry does not scan
/// every earlier rule: by exact path, by path prefix, by an exact header value.
#[derive(Default)]
struct Index {
    exact: HashMap<String, Vec<usize>>,
    prefix: HashMap<String, Vec<usize>>,
    header: HashMap<(String, String), Vec<usize>>,
    rest: Vec<usize>,
}

impl Index {
    fn insert(&mut self, id: usize, m: &HttpMatch) {
        let uri = m.uri.as_ref().map(|u| &u.matcher);
        match uri {
            Some(StringMatch::Exact(x)) if !m.ignore_uri_case => {
                self.exact.entry(x.clone()).or_default().push(id);
            }
            Some(StringMatch::Prefix(p)) if !m.ignore_uri_case && p.len() > 1 => {
                self.prefix.entry(p.clone()).or_default().push(id);
            }
            _ => {
                let header = m.headers.iter().find_map(|h| match &h.matcher {
                    HeaderMatch::Match(StringMatch::Exact(v)) => Some((h.name.clone(), v.clone())),
                    _ => None,
                });
                match header {
                    Some(key) => self.header.entry(key).or_default().push(id),
                    None => self.rest.push(id),
                }
            }
        }
    }

    /// Ids of earlier entries that may cover `m`, ascending.
    fn candidates(&self, m: &HttpMatch, regexes: &mut Regexes) -> Vec<usize> {
        let mut out: Vec<usize> = self.rest.clone();
        let mut texts: Vec<String> = Vec::new();
        match m.uri.as_ref().map(|u| &u.matcher) {
            Some(StringMatch::Exact(x) | StringMatch::Prefix(x)) => texts.push(x.clone()),
            Some(StringMatch::Regex(r)) => {
                if let Some(lits) = regexes.get(r).and_then(Matcher::literal_prefixes) {
                    texts.extend(lits.into_iter().map(|(s, _)| s));
                }
            }
            None => {}
        }
        for text in &texts {
            if let Some(ids) = self.exact.get(text) {
                out.extend(ids);
            }
            for (i, _) in text.char_indices().skip(1).chain([(text.len(), ' ')]) {
                if let Some(ids) = self.prefix.get(&text[..i]) {
                    out.extend(ids);
                }
            }
        }
        for h in &m.headers {
            if let HeaderMatch::Match(StringMatch::Exact(v)) = &h.matcher
                && let Some(ids) = self.header.get(&(h.name.clone(), v.clone()))
            {
                out.extend(ids);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

fn analyse(vs: &VirtualService, regexes: &mut Regexes, diagnostics: &mut Vec<Diagnostic>) {
    // (rule index, entry) of every entry seen so far; ids index this list.
    let mut entries: Vec<(usize, &HttpMatch)> = Vec::new();
    let mut index = Index::default();
    for (rule_idx, rule) in vs.http.iter().enumerate() {
        if rule.matches.is_empty() {
            // Everything after a catch-all is `unreachable-rule`.
            break;
        }
        // For each entry: the earliest covering entry of an earlier rule, or of this rule.
        let mut by_earlier: Vec<Option<usize>> = Vec::new();
        let mut by_same: Vec<Option<usize>> = Vec::new();
        for (j, m) in rule.matches.iter().enumerate() {
            let earlier = index
                .candidates(m, regexes)
                .into_iter()
                .find(|&id| covers(entries[id].1, m, regexes));
            let same = if earlier.is_none() {
                rule.matches[..j].iter().position(|a| covers(a, m, regexes))
            } else {
                None
            };
            by_earlier.push(earlier);
            by_same.push(same);
        }
        if by_earlier.iter().all(Option::is_some) {
            let mut shadowing: Vec<usize> = by_earlier
                .iter()
                .flatten()
                .map(|&id| entries[id].0)
                .collect();
            shadowing.sort_unstable();
            shadowing.dedup();
            let names: Vec<String> = shadowing.iter().map(|&r| vs.http[r].label()).collect();
            let mut d = vs
                .meta
                .diag(
                    &RULE,
                    rule.anchor(),
                    format!(
                        "rule {} is never used: every request it matches is matched first by rule {}",
                        rule.label(),
                        names.join(", rule ")
                    ),
                )
                .with_help("move this rule before the broader one, or remove it");
            for &r in shadowing.iter().take(3) {
                let earlier = &vs.http[r];
                d = d.with_label(
                    vs.meta.file,
                    earlier.anchor(),
                    format!("rule {} matches first", earlier.label()),
                );
            }
            diagnostics.push(d);
        } else {
            for (j, m) in rule.matches.iter().enumerate() {
                let (other, other_rule) = match (by_earlier[j], by_same[j]) {
                    (Some(id), _) => (entries[id].1, entries[id].0),
                    (None, Some(k)) => (&rule.matches[k], rule_idx),
                    (None, None) => continue,
                };
                let where_other = if other_rule == rule_idx {
                    format!("match #{} of the same rule", other.index)
                } else {
                    format!(
                        "match #{} of rule {}",
                        other.index,
                        vs.http[other_rule].label()
                    )
                };
                let (lint, message, help) = if other.canonical == m.canonical {
                    (
                        &super::DUPLICATE_MATCH,
                        format!(
                            "match #{} of rule {} repeats {where_other}",
                            m.index,
                            rule.label()
                        ),
                        "remove the repeated entry, or change its condition",
                    )
                } else {
                    (
                        &super::SHADOWED_MATCH,
                        format!(
                            "match #{} of rule {} is never used: {where_other} matches every request it matches",
                            m.index,
                            rule.label()
                        ),
                        "move the narrower entry to a rule before the broader one, or remove it",
                    )
                };
                diagnostics.push(
                    vs.meta
                        .diag(lint, m.span, message)
                        .with_label(vs.meta.file, other.span, "covering match")
                        .with_help(help),
                );
            }
        }
        for m in &rule.matches {
            index.insert(entries.len(), m);
            entries.push((rule_idx, m));
        }
    }
}

/// Whether entry `a` matches every request entry `b` matches.
fn covers(a: &HttpMatch, b: &HttpMatch, regexes: &mut Regexes) -> bool {
    if a.port.is_some() && b.port != a.port {
        return false;
    }
    if a.source_namespace.is_some() && b.source_namespace != a.source_namespace {
        return false;
    }
    if !a
        .source_labels
        .iter()
        .all(|(k, v)| b.source_labels.get(k) == Some(v))
    {
        return false;
    }
    if !a.gateways.is_empty()
        && (b.gateways.is_empty() || !b.gateways.iter().all(|g| a.gateways.contains(g)))
    {
        return false;
    }
    if !uri_covers(a, b, regexes) {
        return false;
    }
    for (x, y) in [
        (&a.scheme, &b.scheme),
        (&a.method, &b.method),
        (&a.authority, &b.authority),
    ] {
        if !field_covers(x.as_ref(), y.as_ref(), regexes) {
            return false;
        }
    }
    keyed_covers(&a.headers, &b.headers, regexes)
        && keyed_covers(&a.query_params, &b.query_params, regexes)
        && without_covers(&a.without_headers, &b.without_headers, regexes)
}

fn field_covers(a: Option<&MatchValue>, b: Option<&MatchValue>, regexes: &mut Regexes) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(a), None) => universal(&a.matcher, regexes),
        (Some(a), Some(b)) => includes(&a.matcher, &b.matcher, regexes),
    }
}

fn uri_covers(a: &HttpMatch, b: &HttpMatch, regexes: &mut Regexes) -> bool {
    let Some(au) = &a.uri else { return true };
    // Paths start with `/`: `prefix: /` (or empty) matches every path.
    if let StringMatch::Prefix(p) = &au.matcher
        && (p.is_empty() || p == "/")
    {
        return true;
    }
    let Some(bu) = &b.uri else {
        return universal(&au.matcher, regexes);
    };
    let a_ci = a.ignore_uri_case && !matches!(au.matcher, StringMatch::Regex(_));
    let b_ci = b.ignore_uri_case && !matches!(bu.matcher, StringMatch::Regex(_));
    if !a_ci && !b_ci {
        return includes(&au.matcher, &bu.matcher, regexes);
    }
    // Case folding applies to exact and prefix only (Envoy `case_sensitive: false`).
    if matches!(bu.matcher, StringMatch::Regex(_)) || matches!(au.matcher, StringMatch::Regex(_)) {
        return universal(&au.matcher, regexes);
    }
    if b_ci && !a_ci && au.matcher.text().bytes().any(|c| c.is_ascii_alphabetic()) {
        return false;
    }
    let fold = |m: &StringMatch| match m {
        StringMatch::Exact(s) => StringMatch::Exact(s.to_ascii_lowercase()),
        StringMatch::Prefix(s) => StringMatch::Prefix(s.to_ascii_lowercase()),
        StringMatch::Regex(s) => StringMatch::Regex(s.clone()),
    };
    includes(&fold(&au.matcher), &fold(&bu.matcher), regexes)
}

fn universal(m: &StringMatch, regexes: &mut Regexes) -> bool {
    match m {
        StringMatch::Prefix(p) => p.is_empty(),
        StringMatch::Exact(_) => false,
        StringMatch::Regex(r) => regexes.get(r).is_some_and(Matcher::is_universal),
    }
}

/// Whether every string `b` accepts, `a` accepts too.
fn includes(a: &StringMatch, b: &StringMatch, regexes: &mut Regexes) -> bool {
    use StringMatch::{Exact, Prefix, Regex};
    if a == b {
        return true;
    }
    if universal(a, regexes) {
        return true;
    }
    match (a, b) {
        (Exact(x), Exact(y)) => x == y,
        (Exact(x), Regex(r)) => regexes
            .get(r)
            .and_then(Matcher::exact_strings)
            .is_some_and(|all| !all.is_empty() && all.iter().all(|s| s == x)),
        (Exact(_), Prefix(_)) => false,
        (Prefix(p), Exact(y)) => y.starts_with(p.as_str()),
        (Prefix(p), Prefix(q)) => q.starts_with(p.as_str()),
        (Prefix(p), Regex(r)) => regexes
            .get(r)
            .and_then(Matcher::literal_prefixes)
            .is_some_and(|lits| {
                !lits.is_empty() && lits.iter().all(|(l, _)| l.starts_with(p.as_str()))
            }),
        (Regex(r), Exact(y)) => regexes.get(r).and_then(|m| m.full_match(y)) == Some(true),
        (Regex(r), Prefix(q)) => regexes
            .get(r)
            .and_then(Matcher::prefix_form)
            .is_some_and(|l| q.starts_with(l.as_str())),
        (Regex(r), Regex(s)) => {
            let Some(b_strings) = regexes.get(s).and_then(Matcher::exact_strings) else {
                // `literal.*` earlier covers a later regex whose matches all start with it.
                let Some(l) = regexes.get(r).and_then(Matcher::prefix_form) else {
                    return false;
                };
                return includes(&Prefix(l), b, regexes);
            };
            !b_strings.is_empty()
                && b_strings
                    .iter()
                    .all(|y| regexes.get(r).and_then(|m| m.full_match(y)) == Some(true))
        }
    }
}

fn keyed_covers(a: &[KeyedMatch], b: &[KeyedMatch], regexes: &mut Regexes) -> bool {
    a.iter().all(|ah| {
        let Some(bh) = b.iter().find(|bh| bh.name == ah.name) else {
            return false;
        };
        match (&ah.matcher, &bh.matcher) {
            (HeaderMatch::Present, _) => true,
            (HeaderMatch::Match(am), HeaderMatch::Present) => universal(am, regexes),
            (HeaderMatch::Match(am), HeaderMatch::Match(bm)) => includes(am, bm, regexes),
        }
    })
}

/// `withoutHeaders`: the requests `a` rejects must all be rejected by `b`. A missing header
/// counts as an empty value for value conditions (Envoy `treat_missing_header_as_empty`).
fn without_covers(a: &[KeyedMatch], b: &[KeyedMatch], regexes: &mut Regexes) -> bool {
    a.iter().all(|ah| {
        let Some(bh) = b.iter().find(|bh| bh.name == ah.name) else {
            return false;
        };
        match (&ah.matcher, &bh.matcher) {
            (HeaderMatch::Present, HeaderMatch::Present) => true,
            (HeaderMatch::Present, HeaderMatch::Match(bm)) => universal(bm, regexes),
            (HeaderMatch::Match(am), HeaderMatch::Present) => match am {
                StringMatch::Exact(s) | StringMatch::Prefix(s) => !s.is_empty(),
                StringMatch::Regex(r) => {
                    regexes.get(r).and_then(|m| m.full_match("")) == Some(false)
                }
            },
            (HeaderMatch::Match(am), HeaderMatch::Match(bm)) => includes(bm, am, regexes),
        }
    })
}
