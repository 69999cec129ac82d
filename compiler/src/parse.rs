//! Parse: YAML text -> spanned document trees. Never fails: problems become diagnostics.
//!
//! serde-saphyr's event parser (`granit_parser`) does the YAML syntax; this module builds
//! our own [`Node`] trees from its events, so that each value and each mapping key keeps its
//! byte range in the file. Aliases are expanded here under a node budget (no alias bomb can
//! grow memory past it), nesting is bounded, duplicate keys are reported and YAML 1.1 merge
//! keys (`<<`) are applied as Kubernetes tooling does.

use serde_saphyr::granit_parser::{self, Event, ScalarStyle};

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
    /// Nodes that aliases may add by expansion, per file: real policies use a few aliases for
    /// shared labels; an alias bomb needs millions.
    pub max_alias_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 64 << 20,
            max_documents: 100_000,
            max_depth: 64,
            max_nodes: 4_000_000,
            max_alias_nodes: 100_000,
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

/// Parses every document of one file. Problems become diagnostics on `file`; documents
/// that ended before the first YAML error are kept, so one run reports as much as it can.
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
    let mut builder = Builder {
        file: file_id,
        limits,
        nodes: 0,
        alias_nodes: 0,
        anchors: Vec::new(),
        documents: Vec::new(),
        diagnostics: Vec::new(),
    };
    if let Err(stop) = builder.stream(text) {
        builder
            .diagnostics
            .push(stop.into_diagnostic(file_id, limits));
    }
    diagnostics.append(&mut builder.diagnostics);
    builder.documents
}

/// Why a file's parse stopped early.
enum Stop {
    Syntax(Span, String),
    Limit(Span, String),
}

impl Stop {
    fn into_diagnostic(self, file: FileId, limits: &Limits) -> Diagnostic {
        match self {
            Stop::Syntax(span, message) => {
                Diagnostic::new(&rules::YAML_SYNTAX, file, span, message)
            }
            Stop::Limit(span, what) => Diagnostic::new(
                &rules::INPUT_LIMIT,
                file,
                span,
                format!("input over a limit: {what}"),
            )
            .with_help(format!(
                "meshc reads at most {} documents, {} levels of nesting, {} YAML nodes and {} \
                 nodes expanded from aliases per file",
                limits.max_documents, limits.max_depth, limits.max_nodes, limits.max_alias_nodes
            )),
        }
    }
}

/// Builds [`Node`] trees from the parser's events, with aliases expanded under a budget.
struct Builder<'a> {
    file: FileId,
    limits: &'a Limits,
    /// Nodes materialised in this file so far, alias expansions included.
    nodes: usize,
    /// Nodes added by alias expansion alone.
    alias_nodes: usize,
    /// Anchored nodes of the current document, by anchor id, with their node counts.
    anchors: Vec<Option<(Node, usize)>>,
    documents: Vec<Document>,
    diagnostics: Vec<Diagnostic>,
}

type Events<'t> = granit_parser::Parser<'t, granit_parser::StrInput<'t>>;

fn span_of(span: &granit_parser::Span) -> Span {
    let start = span.start.byte_offset().unwrap_or(0);
    let end = span.end.byte_offset().unwrap_or(start).max(start);
    Span::new(start as u32, (end - start) as u32)
}

impl Builder<'_> {
    fn next<'t>(&mut self, events: &mut Events<'t>) -> Result<(Event<'t>, Span), Stop> {
        // Comments are presentation, not data: the parser reports them (the `comments`
        // feature is on in every build) and the tree leaves them out.
        let mut next = events.next_event();
        while let Some(Ok((Event::Comment(..), _))) = next {
            next = events.next_event();
        }
        match next {
            Some(Ok((event, span))) => Ok((event, span_of(&span))),
            Some(Err(e)) => {
                let offset = e.marker().byte_offset().unwrap_or(0) as u32;
                let message = tidy_message(&e.kind().to_string());
                if message.contains("recursion limit") {
                    return Err(Stop::Limit(
                        Span::new(offset, 0),
                        format!("nesting is deeper than {} levels", self.limits.max_depth),
                    ));
                }
                Err(Stop::Syntax(Span::new(offset, 0), message))
            }
            None => Err(Stop::Syntax(
                Span::default(),
                "unexpected end of the YAML stream".to_owned(),
            )),
        }
    }

    fn stream(&mut self, text: &str) -> Result<(), Stop> {
        let mut events: Events<'_> = granit_parser::Parser::new_from_str(text);
        let mut index = 0;
        loop {
            match self.next(&mut events)?.0 {
                Event::StreamStart | Event::DocumentEnd => {}
                Event::StreamEnd => return Ok(()),
                Event::DocumentStart(..) => {
                    if index >= self.limits.max_documents {
                        let at = self
                            .documents
                            .last()
                            .map_or(Span::default(), |d| d.root.span);
                        return Err(Stop::Limit(
                            at,
                            format!(
                                "the file has more than {} documents",
                                self.limits.max_documents
                            ),
                        ));
                    }
                    self.anchors.clear();
                    let root = self.document(&mut events)?;
                    // Empty documents (`---` with nothing after it) are not resources.
                    if root.value != Value::Null {
                        self.documents.push(Document {
                            file: self.file,
                            index,
                            root,
                        });
                        index += 1;
                    }
                }
                _ => {}
            }
        }
    }

    fn document<'t>(&mut self, events: &mut Events<'t>) -> Result<Node, Stop> {
        loop {
            let (event, span) = self.next(events)?;
            match event {
                Event::DocumentEnd => {
                    return Ok(Node {
                        span,
                        value: Value::Null,
                    });
                }
                #[allow(unreachable_patterns)]
                Event::Anchor(..) => {}
                event => {
                    let root = self.node(events, event, span, 0)?;
                    // The document's end follows its root node.
                    while !matches!(self.next(events)?.0, Event::DocumentEnd) {}
                    return Ok(root);
                }
            }
        }
    }

    fn count(&mut self, n: usize, span: Span) -> Result<(), Stop> {
        self.nodes += n;
        if self.nodes > self.limits.max_nodes {
            return Err(Stop::Limit(
                span,
                format!(
                    "the file has more than {} YAML nodes",
                    self.limits.max_nodes
                ),
            ));
        }
        Ok(())
    }

    fn remember(&mut self, anchor: usize, node: &Node, size: usize) {
        if anchor == 0 {
            return;
        }
        if self.anchors.len() <= anchor {
            self.anchors.resize(anchor + 1, None);
        }
        self.anchors[anchor] = Some((node.clone(), size));
    }

    /// Builds the node that `event` starts; returns it with its size in nodes.
    fn node<'t>(
        &mut self,
        events: &mut Events<'t>,
        event: Event<'t>,
        span: Span,
        depth: usize,
    ) -> Result<Node, Stop> {
        self.node_sized(events, event, span, depth).map(|(n, _)| n)
    }

    fn node_sized<'t>(
        &mut self,
        events: &mut Events<'t>,
        event: Event<'t>,
        span: Span,
        depth: usize,
    ) -> Result<(Node, usize), Stop> {
        if depth >= self.limits.max_depth {
            return Err(Stop::Limit(
                span,
                format!("nesting is deeper than {} levels", self.limits.max_depth),
            ));
        }
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                self.count(1, span)?;
                let node = Node {
                    span,
                    value: scalar_value(&text, style, tag.as_deref()),
                };
                self.remember(anchor, &node, 1);
                Ok((node, 1))
            }
            Event::Alias(anchor) => {
                let Some(Some((node, size))) = self.anchors.get(anchor) else {
                    return Err(Stop::Syntax(span, "alias to an unknown anchor".to_owned()));
                };
                let (node, size) = (node.clone(), *size);
                // Charge the whole expansion before it is copied, so that nested aliases
                // cannot multiply memory past the budget.
                self.alias_nodes += size;
                if self.alias_nodes > self.limits.max_alias_nodes {
                    return Err(Stop::Limit(
                        span,
                        format!(
                            "aliases expand to more than {} nodes (an alias bomb?)",
                            self.limits.max_alias_nodes
                        ),
                    ));
                }
                self.count(size, span)?;
                Ok((
                    Node {
                        span,
                        value: node.value,
                    },
                    size,
                ))
            }
            Event::SequenceStart(_, anchor, _) => {
                self.count(1, span)?;
                let mut items = Vec::new();
                let mut size = 1;
                loop {
                    let (event, item_span) = self.next(events)?;
                    match event {
                        Event::SequenceEnd => break,
                        #[allow(unreachable_patterns)]
                        Event::Anchor(..) => continue,
                        event => {
                            let (item, n) = self.node_sized(events, event, item_span, depth + 1)?;
                            size += n;
                            items.push(item);
                        }
                    }
                }
                let node = Node {
                    span: Span::new(span.start, 0),
                    value: Value::Seq(items),
                };
                self.remember(anchor, &node, size);
                Ok((node, size))
            }
            Event::MappingStart(_, anchor, _) => {
                self.count(1, span)?;
                let (entries, size) = self.mapping(events, depth)?;
                let node = Node {
                    span: Span::new(span.start, 0),
                    value: Value::Map(entries),
                };
                self.remember(anchor, &node, size);
                Ok((node, size))
            }
            _ => Err(Stop::Syntax(span, "unexpected YAML event".to_owned())),
        }
    }

    fn mapping<'t>(
        &mut self,
        events: &mut Events<'t>,
        depth: usize,
    ) -> Result<(Vec<Entry>, usize), Stop> {
        let mut entries: Vec<Entry> = Vec::new();
        let mut merged: Vec<Entry> = Vec::new();
        let mut size = 1;
        loop {
            let (event, key_span) = self.next(events)?;
            let key = match event {
                Event::MappingEnd => break,
                #[allow(unreachable_patterns)]
                Event::Anchor(..) => continue,
                Event::Scalar(text, ..) => text.into_owned(),
                Event::Alias(_) => {
                    let (key_node, _) = self.node_sized(events, event, key_span, depth + 1)?;
                    match key_node.value {
                        Value::Str(s) => s,
                        _ => {
                            return Err(Stop::Syntax(
                                key_span,
                                "mapping keys must be scalars".to_owned(),
                            ));
                        }
                    }
                }
                _ => {
                    return Err(Stop::Syntax(
                        key_span,
                        "mapping keys must be scalars".to_owned(),
                    ));
                }
            };
            let (event, value_span) = self.next(events)?;
            let (value, n) = self.node_sized(events, event, value_span, depth + 1)?;
            size += n + 1;
            // YAML 1.1 merge keys, which Kubernetes tooling accepts: `<<: *defaults`.
            if key == "<<" {
                match value.value {
                    Value::Map(m) => merged.extend(m),
                    Value::Seq(items) => {
                        for item in items {
                            if let Value::Map(m) = item.value {
                                merged.extend(m);
                            }
                        }
                    }
                    _ => {
                        return Err(Stop::Syntax(
                            key_span,
                            "a merge key `<<` takes a mapping".to_owned(),
                        ));
                    }
                }
                continue;
            }
            if let Some(first) = find_key(&entries, &key) {
                let first_span = entries[first].key_span;
                self.diagnostics.push(
                    Diagnostic::new(&rules::DUPLICATE_KEY, self.file, key_span, format!("duplicate key `{key}`"))
                        .with_label(self.file, first_span, "first used here")
                        .with_help("remove one of the two: YAML forbids duplicates, and tools disagree on which one wins"),
                );
                continue;
            }
            entries.push(Entry {
                key,
                key_span,
                value,
            });
        }
        // Explicit keys win over merged ones; the first merged source wins among them.
        for entry in merged {
            if find_key(&entries, &entry.key).is_none() {
                entries.push(entry);
            }
        }
        Ok((entries, size))
    }
}

fn find_key(entries: &[Entry], key: &str) -> Option<usize> {
    entries.iter().position(|e| e.key == key)
}

/// Resolves a scalar with the YAML 1.2 core schema: plain `null`, `true`, `42`, `1.5` are
/// typed; quoted and block scalars, and anything tagged `!!str`, are strings.
fn scalar_value(text: &str, style: ScalarStyle, tag: Option<&granit_parser::Tag>) -> Value {
    if let Some(tag) = tag.filter(|t| t.is_yaml_core_schema()) {
        match tag.suffix() {
            "str" => return Value::Str(text.to_owned()),
            "null" => return Value::Null,
            _ => {}
        }
    }
    if style != ScalarStyle::Plain {
        return Value::Str(text.to_owned());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.') {
        if let Some(hex) = text.strip_prefix("0x") {
            if let Ok(i) = i64::from_str_radix(hex, 16) {
                return Value::Int(i);
            }
        } else if let Some(oct) = text.strip_prefix("0o") {
            if let Ok(i) = i64::from_str_radix(oct, 8) {
                return Value::Int(i);
            }
        } else if text
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_digit() || (i == 0 && matches!(b, b'-' | b'+')))
        {
            return text.parse::<i64>().map_or_else(
                |_| Value::Float(text.parse().unwrap_or(f64::NAN)),
                Value::Int,
            );
        } else if is_core_float(text)
            && let Ok(f) = text.parse::<f64>()
        {
            return Value::Float(f);
        }
    }
    Value::Str(text.to_owned())
}

/// The core schema's float form: `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`.
fn is_core_float(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i > int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        digits |= i > frac_start;
    }
    if !digits {
        return false;
    }
    if i < b.len() && matches!(b[i], b'e' | b'E') {
        i += 1;
        if i < b.len() && matches!(b[i], b'-' | b'+') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

/// Drops a " at line N, column M" tail: the diagnostic shows the location.
fn tidy_message(message: &str) -> String {
    let message = message.lines().next().unwrap_or(message).trim();
    let trimmed = match message.rfind(" at line ") {
        Some(at) if message[at..].contains("column") => &message[..at],
        _ => message,
    };
    trimmed.trim_end_matches(['.', ':']).to_owned()
}

/// Convenience for tests and tools: parse text as one file.
pub fn parse_str(text: &str) -> (Vec<Document>, Vec<Diagnostic>) {
    let file = SourceFile::new("<input>".into(), text);
    let mut diagnostics = Vec::new();
    let docs = parse_file(FileId(0), &file, &Limits::default(), &mut diagnostics);
    (docs, diagnostics)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Node {
        let (mut docs, diags) = parse_str(text);
        assert!(diags.is_empty(), "{diags:?}");
        docs.remove(0).root
    }

    #[test]
    fn scalars_follow_the_core_schema() {
        let n = root(
            "a: 1\nb: '1'\nc: 1.5\nd: true\ne: ~\nf: 7s\ng: 0x1F\nh: -3\ni: 1e3\nj: .5\nk: 1.2.3\n",
        );
        let get = |k: &str| n.get(k).unwrap().value.clone();
        assert_eq!(get("a"), Value::Int(1));
        assert_eq!(get("b"), Value::Str("1".into()));
        assert_eq!(get("c"), Value::Float(1.5));
        assert_eq!(get("d"), Value::Bool(true));
        assert_eq!(get("e"), Value::Null);
        assert_eq!(get("f"), Value::Str("7s".into()));
        assert_eq!(get("g"), Value::Int(31));
        assert_eq!(get("h"), Value::Int(-3));
        assert_eq!(get("i"), Value::Float(1000.0));
        assert_eq!(get("j"), Value::Float(0.5));
        assert_eq!(get("k"), Value::Str("1.2.3".into()));
    }

    #[test]
    fn keys_and_values_keep_their_bytes() {
        let text = "spec:\n  hosts:\n  - reviews\n";
        let n = root(text);
        let spec = n.entry("spec").unwrap();
        assert_eq!(&text[spec.key_span.range()], "spec");
        let (host, _) = n.pointer("/spec/hosts/0").unwrap();
        assert_eq!(&text[host.span.range()], "reviews");
        let (_, key) = n.pointer("/spec/hosts").unwrap();
        assert_eq!(&text[key.unwrap().range()], "hosts");
    }

    #[test]
    fn duplicate_keys_are_reported_and_parsing_goes_on() {
        let (docs, diags) = parse_str("a: 1\na: 2\nb: 3\n---\nc: 4\n");
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].rule.code, "MESH0002");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].root.get("a").unwrap().value, Value::Int(1));
        assert_eq!(docs[0].root.get("b").unwrap().value, Value::Int(3));
    }

    #[test]
    fn aliases_and_merge_keys() {
        let n = root("base: &b {x: 1, y: 2}\nmerged:\n  <<: *b\n  y: 3\ncopy: *b\n");
        let merged = n.get("merged").unwrap();
        assert_eq!(merged.get("x").unwrap().value, Value::Int(1));
        assert_eq!(merged.get("y").unwrap().value, Value::Int(3));
        assert_eq!(
            n.get("copy").unwrap().get("y").unwrap().value,
            Value::Int(2)
        );
    }

    #[test]
    fn documents_before_a_syntax_error_are_kept() {
        let (docs, diags) = parse_str("a: 1\n---\nb: [\n");
        assert_eq!(docs.len(), 1);
        assert_eq!(diags[0].rule.code, "MESH0001");
    }

    #[test]
    fn empty_documents_are_skipped() {
        let (docs, diags) = parse_str("---\n---\na: 1\n---\n");
        assert!(diags.is_empty());
        assert_eq!(docs.len(), 1);
    }
}
