//! Validate: each resource against our JSON Schema for its kind (`schemas/`), with every
//! schema error mapped back to the exact YAML key or value it is about.

use std::sync::LazyLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, Validator};
use serde_json::Value as Json;

use crate::diagnostic::Diagnostic;
use crate::parse::{Node, Value};
use crate::resource::{Kind, Resource};
use crate::rules::{self, Rule};
use crate::source::Span;
use crate::suggest::did_you_mean;

/// The schema files, embedded so that the binary needs nothing beside it.
pub const SCHEMAS: [(Kind, &str, &str); 5] = [
    (
        Kind::VirtualService,
        "virtualservice.schema.json",
        include_str!("../../schemas/virtualservice.schema.json"),
    ),
    (
        Kind::DestinationRule,
        "destinationrule.schema.json",
        include_str!("../../schemas/destinationrule.schema.json"),
    ),
    (
        Kind::ServiceEntry,
        "serviceentry.schema.json",
        include_str!("../../schemas/serviceentry.schema.json"),
    ),
    (
        Kind::WorkloadEntry,
        "workloadentry.schema.json",
        include_str!("../../schemas/workloadentry.schema.json"),
    ),
    (
        Kind::Service,
        "service.schema.json",
        include_str!("../../schemas/service.schema.json"),
    ),
];

struct Compiled {
    schema: Json,
    validator: Validator,
}

static COMPILED: LazyLock<Vec<(Kind, Compiled)>> = LazyLock::new(|| {
    SCHEMAS
        .iter()
        .map(|(kind, file, text)| {
            // The schemas are ours and tested; a broken one is a build defect, not input.
            let schema: Json = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("embedded schema {file} is not JSON: {e}"));
            let validator = jsonschema::options()
                .with_draft(Draft::Draft202012)
                .build(&schema)
                .unwrap_or_else(|e| panic!("embedded schema {file} does not compile: {e}"));
            (*kind, Compiled { schema, validator })
        })
        .collect()
});

/// Validates one resource; reports each problem once, at the key or value it is about.
pub fn validate(resource: &Resource, diagnostics: &mut Vec<Diagnostic>) {
    let Some((_, compiled)) = COMPILED.iter().find(|(k, _)| *k == resource.kind) else {
        return;
    };
    let instance = resource.root.to_json();
    if compiled.validator.is_valid(&instance) {
        return;
    }
    let mut found: Vec<Diagnostic> = Vec::new();
    for error in compiled.validator.iter_errors(&instance) {
        let pointer = error.instance_path().to_string();
        let schema_pointer = error.schema_path().to_string();
        let Some((node, key_span)) = resource.root.pointer(&pointer) else {
            continue;
        };
        let at = Place {
            resource,
            node,
            key_span,
            field: field_name(&pointer),
            schema: resolve_schema(&compiled.schema, &schema_pointer),
        };
        found.extend(at.diagnose(error.kind(), &error.to_string()));
    }
    // `allOf` branches and repeated keywords can say the same thing twice.
    found.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    found.dedup_by(|a, b| a.span == b.span && a.rule.code == b.rule.code && a.message == b.message);
    diagnostics.extend(found);
}

struct Place<'a> {
    resource: &'a Resource,
    node: &'a Node,
    key_span: Option<Span>,
    /// The last mapping key on the way to the node (`timeout`), or `""`.
    field: String,
    /// The schema object that holds the failing keyword, when it could be resolved.
    schema: Option<&'a Json>,
}

impl Place<'_> {
    fn diag(&self, rule: &'static Rule, span: Span, message: String) -> Diagnostic {
        Diagnostic::new(rule, self.resource.file, span, message).with_resource(self.resource.id())
    }

    /// The span to point at for the node as a whole: a scalar's own bytes, otherwise its key.
    fn value_span(&self) -> Span {
        match self.node.value {
            Value::Map(_) | Value::Seq(_) => self.key_span.unwrap_or(self.node.span),
            _ => self.node.span,
        }
    }

    fn diagnose(&self, kind: &ValidationErrorKind, fallback: &str) -> Vec<Diagnostic> {
        match kind {
            ValidationErrorKind::AdditionalProperties { unexpected }
            | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
                let known = self.known_properties();
                unexpected
                    .iter()
                    .map(|key| {
                        let span = self
                            .node
                            .entry(key)
                            .map_or(self.value_span(), |e| e.key_span);
                        let mut d = self.diag(
                            &rules::UNKNOWN_FIELD,
                            span,
                            format!("unknown field `{key}`"),
                        );
                        d.help = Some(match did_you_mean(key, known.iter().map(String::as_str)) {
                            Some(best) => format!("did you mean `{best}`?"),
                            None if known.is_empty() => "remove it".to_owned(),
                            None => format!("known fields here: {}", list(&known, 12)),
                        });
                        d
                    })
                    .collect()
            }
            ValidationErrorKind::Type { kind } => {
                let expected = type_phrase(&format!("{kind:?}"));
                let mut d = self.diag(
                    &rules::INVALID_TYPE,
                    self.value_span(),
                    format!(
                        "`{}` must be {expected}, found {}",
                        self.field_or_value(),
                        article(self.node.type_name())
                    ),
                );
                if self.is_duration() {
                    d.help = Some(
                        "durations are strings in Go syntax: `7s`, `1.5s`, `300ms`, `1h30m`"
                            .to_owned(),
                    );
                } else if expected.contains("string") && self.node.type_name() != "mapping" {
                    d.help = Some("quote the value to make it a string".to_owned());
                }
                vec![d]
            }
            ValidationErrorKind::Enum { options } => {
                let allowed: Vec<String> = options
                    .as_array()
                    .map(|a| a.iter().map(json_text).collect())
                    .unwrap_or_default();
                let value = scalar_text(self.node);
                let mut d = self.diag(
                    &rules::INVALID_ENUM,
                    self.value_span(),
                    format!("`{value}` is not a valid `{}`", self.field),
                );
                d.help = Some(
                    match did_you_mean(&value, allowed.iter().map(String::as_str)) {
                        Some(best) => {
                            format!("did you mean `{best}`? allowed: {}", list(&allowed, 12))
                        }
                        None => format!("allowed: {}", list(&allowed, 12)),
                    },
                );
                vec![d]
            }
            ValidationErrorKind::Constant { expected_value } => vec![self.diag(
                &rules::INVALID_ENUM,
                self.value_span(),
                format!("`{}` must be `{}`", self.field, json_text(expected_value)),
            )],
            ValidationErrorKind::Minimum { limit }
            | ValidationErrorKind::ExclusiveMinimum { limit } => {
                vec![self.range(format!(
                    "{} is below the minimum of {limit}",
                    scalar_text(self.node)
                ))]
            }
            ValidationErrorKind::Maximum { limit }
            | ValidationErrorKind::ExclusiveMaximum { limit } => {
                vec![self.range(format!(
                    "{} is above the maximum of {limit}",
                    scalar_text(self.node)
                ))]
            }
            ValidationErrorKind::MinItems { limit } => {
                vec![self.range(format!(
                    "`{}` needs at least {limit} item{}",
                    self.field,
                    plural(*limit)
                ))]
            }
            ValidationErrorKind::MaxItems { limit } => {
                vec![self.range(format!(
                    "`{}` takes at most {limit} item{}",
                    self.field,
                    plural(*limit)
                ))]
            }
            ValidationErrorKind::MinLength { limit } => {
                vec![self.range(format!(
                    "`{}` needs at least {limit} character{}",
                    self.field,
                    plural(*limit)
                ))]
            }
            ValidationErrorKind::MaxLength { limit } => {
                vec![self.range(format!(
                    "`{}` takes at most {limit} character{}",
                    self.field,
                    plural(*limit)
                ))]
            }
            ValidationErrorKind::MinProperties { limit } => {
                vec![self.range(format!(
                    "`{}` needs at least {limit} field{}",
                    self.field,
                    plural(*limit)
                ))]
            }
            ValidationErrorKind::MaxProperties { limit } => {
                vec![self.range(format!(
                    "`{}` takes at most {limit} field{}",
                    self.field,
                    plural(*limit)
                ))]
            }
            ValidationErrorKind::Required { property } => {
                let property = json_text(property);
                let span = self.key_span.unwrap_or(self.node.span);
                let where_ = if self.field.is_empty() {
                    "the resource".to_owned()
                } else {
                    format!("`{}`", self.field)
                };
                let mut d = self.diag(
                    &rules::MISSING_FIELD,
                    span,
                    format!("{where_} is missing the required field `{property}`"),
                );
                d.help = Some(format!("add `{property}`"));
                vec![d]
            }
            ValidationErrorKind::Not { schema } => {
                let pair: Vec<String> = schema
                    .get("required")
                    .and_then(Json::as_array)
                    .map(|a| a.iter().map(json_text).collect())
                    .unwrap_or_default();
                if pair.len() >= 2 {
                    // Point at whichever of the two comes second in the file.
                    let spans: Vec<Span> = pair
                        .iter()
                        .filter_map(|k| self.node.entry(k).map(|e| e.key_span))
                        .collect();
                    let span = spans.iter().copied().max().unwrap_or(self.value_span());
                    let first = spans.iter().copied().min();
                    let mut d = self.diag(
                        &rules::CONFLICTING_FIELDS,
                        span,
                        format!("`{}` and `{}` cannot be set together", pair[0], pair[1]),
                    );
                    if let Some(first) = first.filter(|f| *f != span) {
                        d = d.with_label(self.resource.file, first, "the other one is set here");
                    }
                    d.help = Some(format!("keep only one of `{}` and `{}`", pair[0], pair[1]));
                    vec![d]
                } else {
                    vec![self.diag(&rules::INVALID_FORMAT, self.value_span(), clean(fallback))]
                }
            }
            ValidationErrorKind::Pattern { .. } | ValidationErrorKind::Format { .. } => {
                let value = scalar_text(self.node);
                let (what, help) = if self.is_duration() {
                    (
                        "a valid duration".to_owned(),
                        Some("use Go duration syntax: `7s`, `1.5s`, `300ms`, `1h30m`".to_owned()),
                    )
                } else {
                    let what = format!("a valid `{}`", self.field);
                    let help = self
                        .schema
                        .and_then(|s| s.get("description"))
                        .and_then(Json::as_str)
                        .map(|d| d.trim_end_matches('.').to_owned());
                    (what, help)
                };
                let mut d = self.diag(
                    &rules::INVALID_FORMAT,
                    self.value_span(),
                    format!("`{value}` is not {what}"),
                );
                d.help = help;
                vec![d]
            }
            _ => vec![self.diag(&rules::INVALID_FORMAT, self.value_span(), clean(fallback))],
        }
    }

    fn range(&self, message: String) -> Diagnostic {
        self.diag(&rules::OUT_OF_RANGE, self.value_span(), message)
    }

    fn field_or_value(&self) -> String {
        if self.field.is_empty() {
            "value".to_owned()
        } else {
            self.field.clone()
        }
    }

    fn is_duration(&self) -> bool {
        let pattern_says = self
            .schema
            .and_then(|s| s.get("pattern"))
            .and_then(Json::as_str)
            .is_some_and(|p| p.contains("ms") && p.contains('h'));
        let description_says = self
            .schema
            .and_then(|s| s.get("description"))
            .and_then(Json::as_str)
            .is_some_and(|d| d.to_ascii_lowercase().contains("duration"));
        pattern_says || description_says
    }

    fn known_properties(&self) -> Vec<String> {
        self.schema
            .and_then(|s| s.get("properties"))
            .and_then(Json::as_object)
            .map(|props| props.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// Follows a keyword location (`/properties/spec/$ref/...`) through the schema document,
/// jumping through local `$ref`s, and returns the object that holds the last keyword.
fn resolve_schema<'a>(root: &'a Json, keyword_path: &str) -> Option<&'a Json> {
    let steps: Vec<String> = keyword_path
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut node = root;
    let Some((_, parents)) = steps.split_last() else {
        return Some(root);
    };
    for step in parents {
        if step == "$ref" {
            let target = node.get("$ref")?.as_str()?;
            node = root.pointer(target.strip_prefix('#')?)?;
            continue;
        }
        node = match node {
            Json::Object(map) => map.get(step.as_str())?,
            Json::Array(items) => items.get(step.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    // A `$ref` sitting beside the failing keyword's object is resolved too.
    while let Some(target) = node.get("$ref").and_then(Json::as_str) {
        if node.get("properties").is_some() {
            break;
        }
        node = root.pointer(target.strip_prefix('#')?)?;
    }
    Some(node)
}

fn field_name(pointer: &str) -> String {
    pointer
        .rsplit('/')
        .find(|s| s.parse::<usize>().is_err())
        .unwrap_or("")
        .replace("~1", "/")
        .replace("~0", "~")
}

fn scalar_text(node: &Node) -> String {
    match &node.value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_owned(),
        Value::Seq(_) => "[...]".to_owned(),
        Value::Map(_) => "{...}".to_owned(),
    }
}

fn json_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn type_phrase(debug: &str) -> String {
    // `Single(String)` or `Multiple(...)` from the validator's type kind.
    let names: Vec<&str> = [
        "string", "integer", "number", "boolean", "object", "array", "null",
    ]
    .into_iter()
    .filter(|t| debug.to_ascii_lowercase().contains(t))
    .collect();
    let words: Vec<&str> = names
        .iter()
        .map(|t| match *t {
            "object" => "a mapping",
            "array" => "a list",
            "string" => "a string",
            "integer" => "an integer",
            "number" => "a number",
            "boolean" => "a boolean",
            _ => "null",
        })
        .collect();
    if words.is_empty() {
        "of another type".to_owned()
    } else {
        words.join(" or ")
    }
}

fn article(type_name: &str) -> String {
    match type_name {
        "integer" => "an integer".to_owned(),
        "null" => "null".to_owned(),
        other => format!("a {other}"),
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn list(items: &[String], max: usize) -> String {
    let mut out: Vec<String> = items.iter().take(max).map(|i| format!("`{i}`")).collect();
    if items.len() > max {
        out.push(format!("and {} more", items.len() - max));
    }
    out.join(", ")
}

fn clean(message: &str) -> String {
    message.lines().next().unwrap_or(message).to_owned()
}
