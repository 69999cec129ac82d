//! Report: diagnostics -> human (miette), json, sarif or github output.

use std::fmt::Write as _;
use std::sync::Arc;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    SourceCode, SourceSpan, SpanContents,
};
use serde_json::json;

use crate::diagnostic::{Diagnostic, Severity};
use crate::rules;
use crate::source::{SourceDb, SourceFile};

/// A file for miette that reads only the lines around a span. miette's own readers scan the
/// text from its start for every label, which makes thousands of diagnostics in a large file
/// quadratic; our line index finds the window in O(log lines).
struct WindowedSource {
    name: String,
    text: Arc<str>,
    line_starts: Arc<[u32]>,
}

impl WindowedSource {
    fn of(file: &SourceFile) -> Self {
        WindowedSource {
            name: file.path.clone(),
            text: file.text.clone(),
            line_starts: file.line_starts(),
        }
    }

    fn line_of(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&(offset as u32)) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
    }
}

impl SourceCode for WindowedSource {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let end = span.offset() + span.len();
        if end > self.text.len() {
            return Err(MietteError::OutOfBounds);
        }
        let first_line = self
            .line_of(span.offset())
            .saturating_sub(context_lines_before);
        let last_line =
            self.line_of(end.saturating_sub(1).max(span.offset())) + context_lines_after + 1;
        let start = self.line_starts[first_line] as usize;
        let stop = self
            .line_starts
            .get(last_line + 1)
            .map_or(self.text.len(), |&s| s as usize);
        let window = &self.text[start..stop];
        let local = SourceSpan::new((span.offset() - start).into(), span.len());
        let contents = window.read_span(&local, context_lines_before, context_lines_after)?;
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            contents.data(),
            SourceSpan::new(
                (contents.span().offset() + start).into(),
                contents.span().len(),
            ),
            contents.line() + first_line,
            contents.column(),
            contents.line_count() + first_line,
        )))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
    Sarif,
    Github,
}

/// Counts for the summary line and the json `summary` object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub files: usize,
    pub resources: usize,
    pub skipped: usize,
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
}

impl Summary {
    pub fn count(&mut self, diagnostics: &[Diagnostic]) {
        for d in diagnostics {
            match d.severity {
                Severity::Error => self.errors += 1,
                Severity::Warning => self.warnings += 1,
                Severity::Info => self.infos += 1,
            }
        }
    }
}

pub fn render(
    format: OutputFormat,
    db: &SourceDb,
    diagnostics: &[Diagnostic],
    summary: &Summary,
    color: bool,
) -> String {
    match format {
        OutputFormat::Human => human(db, diagnostics, summary, color),
        OutputFormat::Json => json(db, diagnostics, summary),
        OutputFormat::Sarif => sarif(db, diagnostics),
        OutputFormat::Github => github(db, diagnostics),
    }
}

/// Line and column of a diagnostic's start and end, 1-based.
fn position(db: &SourceDb, d: &Diagnostic) -> (u32, u32, u32, u32) {
    let file = db.get(d.file);
    let start = file.line_col(d.span.start);
    let end = file.line_col(d.span.end());
    (start.line, start.column, end.line, end.column)
}

struct MietteDiagnostic {
    message: String,
    code: String,
    severity: miette::Severity,
    help: Option<String>,
    source: WindowedSource,
    labels: Vec<LabeledSpan>,
    related: Vec<MietteDiagnostic>,
}

impl std::fmt::Debug for MietteDiagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::fmt::Display for MietteDiagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for MietteDiagnostic {}

impl miette::Diagnostic for MietteDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(&self.code))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            return None;
        }
        Some(Box::new(
            self.related.iter().map(|r| r as &dyn miette::Diagnostic),
        ))
    }
}

fn miette_severity(s: Severity) -> miette::Severity {
    match s {
        Severity::Error => miette::Severity::Error,
        Severity::Warning => miette::Severity::Warning,
        Severity::Info => miette::Severity::Advice,
    }
}

fn to_miette(db: &SourceDb, d: &Diagnostic) -> MietteDiagnostic {
    let file = db.get(d.file);
    let (line, column, _, _) = position(db, d);
    let mut labels = vec![LabeledSpan::new_primary_with_span(
        Some(d.rule.name.to_owned()),
        d.span.range(),
    )];
    let mut related = Vec::new();
    for label in &d.labels {
        if label.file == d.file {
            labels.push(LabeledSpan::new_with_span(
                Some(label.message.clone()),
                label.span.range(),
            ));
        } else {
            let other = db.get(label.file);
            related.push(MietteDiagnostic {
                message: label.message.clone(),
                code: String::new(),
                severity: miette::Severity::Advice,
                help: None,
                source: WindowedSource::of(other),
                labels: vec![LabeledSpan::new_primary_with_span(None, label.span.range())],
                related: Vec::new(),
            });
        }
    }
    let resource = d
        .resource
        .as_deref()
        .filter(|r| !d.message.contains(*r))
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    MietteDiagnostic {
        message: format!("{}:{line}:{column}: {}{resource}", file.path, d.message),
        code: format!("{} {}", d.rule.code, d.rule.name),
        severity: miette_severity(d.severity),
        help: d.help.clone(),
        source: WindowedSource::of(file),
        labels,
        related,
    }
}

fn human(db: &SourceDb, diagnostics: &[Diagnostic], summary: &Summary, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    for d in diagnostics {
        let _ = handler.render_report(&mut out, &to_miette(db, d));
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "{}: {} error{}, {} warning{}, {} info in {} file{} ({} resource{} checked, {} skipped)",
        if summary.errors > 0 {
            "failed"
        } else {
            "checked"
        },
        summary.errors,
        plural(summary.errors),
        summary.warnings,
        plural(summary.warnings),
        summary.infos,
        summary.files,
        plural(summary.files),
        summary.resources,
        plural(summary.resources),
        summary.skipped,
    );
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn json(db: &SourceDb, diagnostics: &[Diagnostic], summary: &Summary) -> String {
    let items: Vec<serde_json::Value> = diagnostics
        .iter()
        .map(|d| {
            let (line, column, end_line, end_column) = position(db, d);
            json!({
                "code": d.rule.code,
                "name": d.rule.name,
                "severity": d.severity.as_str(),
                "message": d.message,
                "file": db.get(d.file).path,
                "line": line,
                "column": column,
                "end_line": end_line,
                "end_column": end_column,
                "resource": d.resource,
                "help": d.help,
            })
        })
        .collect();
    let value = json!({
        "diagnostics": items,
        "summary": {
            "files": summary.files,
            "resources": summary.resources,
            "skipped": summary.skipped,
            "errors": summary.errors,
            "warnings": summary.warnings,
            "infos": summary.infos,
        }
    });
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

fn sarif(db: &SourceDb, diagnostics: &[Diagnostic]) -> String {
    let all = rules::all();
    let rules_json: Vec<serde_json::Value> = all
        .iter()
        .map(|r| {
            json!({
                "id": r.code,
                "name": r.name,
                "shortDescription": { "text": r.summary },
                "fullDescription": { "text": r.summary },
                "help": { "text": r.doc, "markdown": r.doc },
                "defaultConfiguration": { "enabled": true, "level": sarif_level(r.severity) },
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = diagnostics
        .iter()
        .map(|d| {
            let (line, column, end_line, end_column) = position(db, d);
            let index = all.iter().position(|r| r.code == d.rule.code).unwrap_or(0);
            let mut message = d.message.clone();
            if let Some(help) = &d.help {
                message.push_str("\nhelp: ");
                message.push_str(help);
            }
            let related: Vec<serde_json::Value> = d
                .labels
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let file = db.get(l.file);
                    let start = file.line_col(l.span.start);
                    let end = file.line_col(l.span.end());
                    json!({
                        "id": i,
                        "message": { "text": l.message },
                        "physicalLocation": {
                            "artifactLocation": { "uri": uri(&file.path) },
                            "region": {
                                "startLine": start.line, "startColumn": start.column,
                                "endLine": end.line, "endColumn": end.column,
                            }
                        }
                    })
                })
                .collect();
            let mut result = json!({
                "ruleId": d.rule.code,
                "ruleIndex": index,
                "level": sarif_level(d.severity),
                "message": { "text": message },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri(&db.get(d.file).path) },
                        "region": {
                            "startLine": line, "startColumn": column,
                            "endLine": end_line, "endColumn": end_column,
                        }
                    }
                }],
            });
            if !related.is_empty() {
                result["relatedLocations"] = serde_json::Value::Array(related);
            }
            result
        })
        .collect();
    let value = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "meshc",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://github.com/meshc/meshc",
                    "rules": rules_json,
                }
            },
            "results": results,
        }]
    });
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

/// A relative URI for SARIF: forward slashes, no leading `./`.
fn uri(path: &str) -> String {
    let path = path.replace('\\', "/");
    path.strip_prefix("./").unwrap_or(&path).to_owned()
}

fn github(db: &SourceDb, diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let (line, column, end_line, end_column) = position(db, d);
        let command = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "notice",
        };
        let path = db.get(d.file).path.as_str();
        let mut message = format!("{path}:{line}:{column}: {} {}", d.rule.code, d.message);
        if let Some(help) = &d.help {
            message.push_str("\n  help: ");
            message.push_str(help);
        }
        let _ = writeln!(
            out,
            "::{command} title={},file={},line={line},col={column},endLine={end_line},endColumn={end_column}::{}",
            escape_property(&format!("meshc ({}) {}", d.rule.code, d.rule.name)),
            escape_property(path),
            escape_data(&message),
        );
    }
    out
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}
