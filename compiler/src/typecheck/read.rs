//! Lenient readers over spanned YAML: a field of the wrong type reads as absent, because the
//! schema stage has already reported it.

use std::collections::BTreeMap;

use super::duration::{self, Dur};
use super::{Meta, Percent, Spanned};
use crate::diagnostic::Diagnostic;
use crate::parse::{Node, Value};
use crate::rules;
use crate::source::Span;

/// The construction context of one resource: where to report, and its metadata.
pub(crate) struct Cx<'a> {
    pub meta: &'a Meta,
    pub diagnostics: &'a mut Vec<Diagnostic>,
}

impl<'a> Cx<'a> {
    pub fn new(meta: &'a Meta, diagnostics: &'a mut Vec<Diagnostic>) -> Self {
        Cx { meta, diagnostics }
    }

    /// Reads a duration field; reports (and drops) values Istio rejects: below 1ms or not a
    /// whole number of milliseconds (D1/D2). `zero_ok` is for the few fields where `0s`
    /// means "disabled" (DestinationRule `tcp.idleTimeout`).
    pub fn duration(&mut self, node: &Node, key: &str, zero_ok: bool) -> Option<Dur> {
        let (text, span) = string(node, key)?;
        // A string that is not a Go duration was reported by the schema (pattern).
        let nanos = duration::parse(text)?;
        match duration::check(nanos, zero_ok) {
            Ok(ms) => Some(Dur { ms, span }),
            Err(problem) => {
                let message = match problem {
                    duration::Problem::Negative => {
                        format!("`{key}` is negative (`{text}`): durations must be at least 1ms")
                    }
                    duration::Problem::BelowOneMs => format!(
                        "`{key}` is `{text}`, below 1ms: Istio requires durations of at least 1ms"
                    ),
                    duration::Problem::NotWholeMs => format!(
                        "`{key}` is `{text}`, not a whole number of milliseconds: Istio supports durations to ms precision only"
                    ),
                    duration::Problem::TooLong => {
                        format!("`{key}` is `{text}`, longer than meshc can represent")
                    }
                };
                let help = match problem {
                    duration::Problem::NotWholeMs => {
                        format!(
                            "round it to whole milliseconds, e.g. `{}`",
                            duration::format_ms(nanos / 1_000_000 + 1)
                        )
                    }
                    duration::Problem::TooLong => "use a duration under 49 days".to_owned(),
                    _ => "use `1ms` or more (e.g. `100ms`, `2s`)".to_owned(),
                };
                self.diagnostics.push(
                    self.meta
                        .diag(&rules::INVALID_DURATION, span, message)
                        .with_help(help),
                );
                None
            }
        }
    }
}

pub(crate) fn string<'n>(node: &'n Node, key: &str) -> Option<(&'n str, Span)> {
    let value = node.get(key)?;
    value.as_str().map(|s| (s, value.span))
}

pub(crate) fn spanned_string(node: &Node, key: &str) -> Option<Spanned<String>> {
    string(node, key).map(|(s, span)| Spanned::new(s.to_owned(), span))
}

pub(crate) fn int(node: &Node, key: &str) -> Option<Spanned<i64>> {
    let value = node.get(key)?;
    match value.value {
        Value::Int(i) => Some(Spanned::new(i, value.span)),
        _ => None,
    }
}

pub(crate) fn number(node: &Node, key: &str) -> Option<Spanned<f64>> {
    let value = node.get(key)?;
    match value.value {
        Value::Int(i) => Some(Spanned::new(i as f64, value.span)),
        Value::Float(f) => Some(Spanned::new(f, value.span)),
        _ => None,
    }
}

pub(crate) fn boolean(node: &Node, key: &str) -> Option<bool> {
    match node.get(key)?.value {
        Value::Bool(b) => Some(b),
        _ => None,
    }
}

pub(crate) fn port(node: &Node, key: &str) -> Option<Spanned<u16>> {
    let n = int(node, key)?;
    u16::try_from(n.value)
        .ok()
        .filter(|p| *p > 0)
        .map(|p| Spanned::new(p, n.span))
}

pub(crate) fn key_span(node: &Node, key: &str) -> Option<Span> {
    node.entry(key).map(|e| e.key_span)
}

pub(crate) fn seq<'n>(node: &'n Node, key: &str) -> &'n [Node] {
    node.get(key).and_then(Node::as_seq).unwrap_or(&[])
}

pub(crate) fn strings(node: &Node, key: &str) -> Vec<Spanned<String>> {
    seq(node, key)
        .iter()
        .filter_map(|n| n.as_str().map(|s| Spanned::new(s.to_owned(), n.span)))
        .collect()
}

/// A `map<string, string>` such as labels; non-string values are skipped.
pub(crate) fn string_map(node: &Node, key: &str) -> BTreeMap<String, String> {
    node.get(key)
        .and_then(Node::as_map)
        .unwrap_or(&[])
        .iter()
        .filter_map(|e| {
            let v = match &e.value.value {
                Value::Str(s) => s.clone(),
                Value::Int(i) => i.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((e.key.clone(), v))
        })
        .collect()
}

/// A `{value: N}` percentage message.
pub(crate) fn percent(node: &Node, key: &str) -> Option<Percent> {
    let entry = node.entry(key)?;
    let value = number(&entry.value, "value");
    Some(match value {
        Some(v) => Percent {
            value: v.value,
            span: v.span,
        },
        // `percentage: {}` is 0 (proto3 default).
        None if entry.value.as_map().is_some() => Percent {
            value: 0.0,
            span: entry.key_span,
        },
        None => return None,
    })
}
