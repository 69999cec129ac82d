//! Parse: YAML text -> spanned document trees. Never fails: problems become diagnostics.
//!
//! serde-saphyr does the YAML work (syntax, anchors with a budget, duplicate keys). We
//! deserialize every document into our own [`Node`] tree through `Spanned<_>`, so each
//! value and each mapping key keeps its byte range in the file.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{DuplicateKeyPolicy, Spanned};

use crate::diagnostic::Diagnostic;
use crate::rules;
use crate::source::{FileId, SourceFile, Span};

/// Limits that keep hostile input bounded in time and memory.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_file_bytes: usize,
    pub max_documents: usize,
    pub max_depth: usize,
    pub max_nodes: usize,
    pub max_aliases: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 64 << 20,
            max_documents: 100_000,
            max_depth: 64,
            max_nodes: 4_000_000,
            max_aliases: 10_000,
        }
    }
}

/// A YAML value with its location.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The value's bytes for a scalar; the start of a mapping or sequence (zero length).
    pub span: Span,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// One `key: value` pair of a mapping.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

/// One YAML document of a file.
#[derive(Debug)]
pub struct Document {
    pub file: FileId,
    /// 0-based position among the file's non-empty documents.
    pub index: usize,
    pub root: Node,
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The entry for `key` in a mapping.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.as_map()?.iter().find(|e| e.key == key)
    }

    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// A short name of the value's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Seq(_) => "list",
            Value::Map(_) => "mapping",
        }
    }

    /// The node as JSON, for the schema validator.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }

    /// Walks a JSON pointer (`/spec/http/0/route`); returns the node and, when the last step
    /// was a mapping key, that key's span.
    pub fn pointer(&self, pointer: &str) -> Option<(&Node, Option<Span>)> {
        let mut node = self;
        let mut key_span = None;
        if pointer.is_empty() {
            return Some((node, None));
        }
        for raw in pointer.strip_prefix('/')?.split('/') {
            let step = raw.replace("~1", "/").replace("~0", "~");
            match &node.value {
                Value::Map(entries) => {
                    let entry = entries.iter().find(|e| e.key == step)?;
                    key_span = Some(entry.key_span);
                    node = &entry.value;
                }
                Value::Seq(items) => {
                    node = items.get(step.parse::<usize>().ok()?)?;
                    key_span = None;
                }
                _ => return None,
            }
        }
        Some((node, key_span))
    }
}

fn span_of(loc: &serde_saphyr::Location) -> Span {
    let span = loc.span();
    match (span.byte_offset(), span.byte_len()) {
        (Some(offset), Some(len)) => Span::new(offset as u32, len as u32),
        (Some(offset), None) => Span::new(offset as u32, 0),
        _ => Span::default(),
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        Ok(Node {
            span: span_of(&spanned.referenced),
            value: spanned.value,
        })
    }
}

/// A mapping key: any scalar, kept as its text.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar mapping key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key, E> {
                Ok(Key(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Key, E> {
                Ok(Key("null".to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Key, A::Error> {
                Err(de::Error::custom("a mapping cannot be used as a key"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Key, A::Error> {
                Err(de::Error::custom("a sequence cannot be used as a key"))
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
                Value::deserialize(d)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
                Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
                Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
                Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
                Ok(Value::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Str(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
                Ok(Value::Str(v))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
                Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(item) = seq.next_element::<Node>()? {
                    items.push(item);
                }
                Ok(Value::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
                let mut entries: Vec<Entry> = Vec::new();
                while let Some(key) = map.next_key::<Spanned<Key>>()? {
                    let value = map.next_value::<Node>()?;
                    entries.push(Entry {
                        key: key.value.0,
                        key_span: span_of(&key.referenced),
                        value,
                    });
                }
                Ok(Value::Map(entries))
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// Parses every document of one file. Errors and limits become diagnostics on `file`.
pub fn parse_file(
    file_id: FileId,
    file: &SourceFile,
    limits: &Limits,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Document> {
    let text: &str = &file.text;
    if text.len() > limits.max_file_bytes {
        diagnostics.push(
            Diagnostic::new(
                &rules::INPUT_LIMIT,
                file_id,
                Span::new(0, 0),
                format!(
                    "file is {} bytes, over the limit of {} bytes",
                    text.len(),
                    limits.max_file_bytes
                ),
            )
            .with_help("split the file, or raise `limits.max-file-bytes` in `meshc.toml`"),
        );
        return Vec::new();
    }
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_documents: limits.max_documents,
            max_depth: limits.max_depth,
            max_nodes: limits.max_nodes,
            max_aliases: limits.max_aliases,
            max_anchors: limits.max_aliases,
            max_recorded_anchor_events: 250_000,
            flow_nesting_limit: limits.max_depth,
            max_events: limits.max_nodes.saturating_mul(4),
            max_total_scalar_bytes: limits.max_file_bytes,
        },
        duplicate_keys: DuplicateKeyPolicy::Error,
        with_snippet: false,
    };
    match serde_saphyr::from_multiple_with_options::<Node>(text, options) {
        Ok(roots) => roots
            .into_iter()
            .enumerate()
            .map(|(index, root)| Document {
                file: file_id,
                index,
                root,
            })
            .collect(),
        Err(err) => {
            diagnostics.push(yaml_error(file_id, file, &err, limits));
            Vec::new()
        }
    }
}

fn yaml_error(
    file_id: FileId,
    file: &SourceFile,
    err: &serde_saphyr::Error,
    limits: &Limits,
) -> Diagnostic {
    let span = err
        .location()
        .map(|loc| {
            let span = span_of(&loc);
            if span == Span::default() && loc.line() > 0 {
                let offset = file
                    .offset_of(loc.line() as u32, loc.column().max(1) as u32)
                    .unwrap_or(0);
                Span::new(offset, 0)
            } else {
                span
            }
        })
        .unwrap_or_default();
    let raw = err.without_snippet().to_string();
    let message = tidy_message(first_line(&raw));
    let message = message.as_str();
    let lower = message.to_ascii_lowercase();
    if let Some(breach) = lower.split("budget breached:").nth(1) {
        let what = if breach.contains("anchor") || breach.contains("alias") {
            format!(
                "aliases expand past the limit of {} (an alias bomb?)",
                limits.max_aliases
            )
        } else if breach.contains("depth") {
            format!("nesting is deeper than {} levels", limits.max_depth)
        } else if breach.contains("document") {
            format!("the file has more than {} documents", limits.max_documents)
        } else if breach.contains("node") || breach.contains("event") {
            format!("the file has more than {} YAML nodes", limits.max_nodes)
        } else if breach.contains("scalar") {
            format!(
                "the file's strings add up to more than {} bytes",
                limits.max_file_bytes
            )
        } else {
            format!("over a YAML budget ({})", breach.trim())
        };
        return Diagnostic::new(
            &rules::INPUT_LIMIT,
            file_id,
            span,
            format!("input over a limit: {what}"),
        )
        .with_help("split the file; do not build large structures from aliases");
    }
    if lower.contains("recursion") || lower.contains("too deep") || lower.contains("nesting") {
        return Diagnostic::new(
            &rules::INPUT_LIMIT,
            file_id,
            span,
            format!(
                "input over a limit: nesting is deeper than {} levels",
                limits.max_depth
            ),
        )
        .with_help("policy documents are a few levels deep; flatten the structure");
    }
    if lower.contains("duplicate") {
        let key = message
            .split_once("key:")
            .map(|(_, rest)| rest.split(',').next().unwrap_or("").trim().to_owned())
            .unwrap_or_default();
        let message = if key.is_empty() {
            "duplicate key".to_owned()
        } else {
            format!("duplicate key `{key}`")
        };
        return Diagnostic::new(&rules::DUPLICATE_KEY, file_id, span, message).with_help(
            "remove one of the two keys: YAML keeps only one, and which one depends on the tool",
        );
    }
    Diagnostic::new(&rules::YAML_SYNTAX, file_id, span, message.to_owned())
}

/// Drops the parser's own " at line N, column M" tail: the diagnostic shows the location.
fn tidy_message(message: &str) -> String {
    let trimmed = match message.rfind(" at line ") {
        Some(at) if message[at..].contains("column") => &message[..at],
        _ => message,
    };
    trimmed.trim_end_matches(['.', ':']).to_owned()
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s).trim()
}

/// Convenience for tests and tools: parse text as one file.
pub fn parse_str(text: &str) -> (Vec<Document>, Vec<Diagnostic>) {
    let file = SourceFile::new("<input>".into(), text);
    let mut diagnostics = Vec::new();
    let docs = parse_file(FileId(0), &file, &Limits::default(), &mut diagnostics);
    (docs, diagnostics)
}
