//! The `check` pipeline: read -> parse -> recognise resources -> validate -> (analyses),
//! then filter by configuration and suppressions, and sort.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::Config;
use crate::diagnostic::{Diagnostic, Severity};
use crate::load::{self, InputError};
use crate::parse::{self, Document, Limits};
use crate::report::Summary;
use crate::resource::{self, Resources};
use crate::rules;
use crate::source::{FileId, SourceDb, SourceFile};
use crate::typecheck;
use crate::validate;

/// Settings of one run: the config file merged with command-line flags.
#[derive(Debug, Default)]
pub struct Settings {
    pub config: Config,
    pub namespace: Option<String>,
    pub strict_hosts: bool,
}

impl Settings {
    pub fn default_namespace(&self) -> &str {
        self.namespace
            .as_deref()
            .or(self.config.lint.namespace.as_deref())
            .unwrap_or("default")
    }

    pub fn strict_hosts(&self) -> bool {
        self.strict_hosts || self.config.lint.strict_hosts
    }

    pub fn limits(&self) -> Limits {
        self.config.limits()
    }
}

/// Everything a check found: the sources (for rendering), the resources (for later stages)
/// and the diagnostics, sorted.
#[derive(Debug)]
pub struct Checked {
    pub db: SourceDb,
    pub resources: Resources,
    /// The typed IR, for the stages after checking (`lower`).
    pub ir: typecheck::Ir,
    pub diagnostics: Vec<Diagnostic>,
    pub summary: Summary,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    /// Whether any diagnostic reaches `level`.
    pub fn fails_at(&self, level: Severity) -> bool {
        self.diagnostics.iter().any(|d| d.severity >= level)
    }
}

/// Checks the policy files under `paths`.
pub fn check_paths(paths: &[PathBuf], settings: &Settings) -> Result<Checked, InputError> {
    let mut db = SourceDb::default();
    let mut diagnostics = Vec::new();
    load::read_inputs(
        paths,
        settings.limits().max_file_bytes,
        &mut db,
        &mut diagnostics,
    )?;
    Ok(check_db(db, diagnostics, settings))
}

/// Checks in-memory files given as `(path, text)` pairs (tests, tools).
pub fn check_sources<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a str)>,
    settings: &Settings,
) -> Checked {
    let mut db = SourceDb::default();
    for (path, text) in files {
        db.add(SourceFile::new(path.to_owned(), text));
    }
    check_db(db, Vec::new(), settings)
}

fn check_db(db: SourceDb, mut diagnostics: Vec<Diagnostic>, settings: &Settings) -> Checked {
    let timings = std::env::var_os("MESHC_TIMINGS").is_some();
    let started = std::time::Instant::now();
    let limits = settings.limits();
    let documents = parse_all(&db, &limits, &mut diagnostics);
    let parsed = started.elapsed();
    let resources = resource::collect(documents, settings.default_namespace(), &mut diagnostics);
    validate_all(&resources, &mut diagnostics);
    let validated = started.elapsed();
    if timings {
        eprintln!(
            "meshc timings: parse {parsed:?}, validate {:?}",
            validated - parsed
        );
    }
    let typechecked = std::time::Instant::now();
    let ir = typecheck::typecheck(&resources, settings, &mut diagnostics);
    let analysed = std::time::Instant::now();
    rules::analyse(&ir, settings, &mut diagnostics);
    if timings {
        eprintln!(
            "meshc timings: typecheck {:?}, rules {:?}",
            analysed - typechecked,
            analysed.elapsed()
        );
    }

    // Suppressions: the config's select/ignore, then each resource's annotation.
    let suppressed: BTreeMap<String, &Vec<String>> = resources
        .items
        .iter()
        .filter(|r| !r.suppress.is_empty())
        .map(|r| (r.id(), &r.suppress))
        .collect();
    diagnostics.retain(|d| {
        settings.config.enabled(d.rule)
            && !d
                .resource
                .as_ref()
                .and_then(|id| suppressed.get(id))
                .is_some_and(|list| list.iter().any(|s| rules::selector_matches(s, d.rule)))
    });
    diagnostics.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));

    let mut summary = Summary {
        files: db.len(),
        resources: resources.items.len(),
        skipped: resources.skipped,
        ..Summary::default()
    };
    summary.count(&diagnostics);
    Checked {
        db,
        resources,
        ir,
        diagnostics,
        summary,
    }
}

const PARSE_STACK_BYTES: usize = 64 << 20;

/// Parses every file, on as many threads as there are cores, keeping file order.
fn parse_all(db: &SourceDb, limits: &Limits, diagnostics: &mut Vec<Diagnostic>) -> Vec<Document> {
    let files: Vec<(FileId, &SourceFile)> = db.iter().collect();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len().max(1));
    let chunk = files.len().div_ceil(workers).max(1);
    let results: Vec<(Vec<Document>, Vec<Diagnostic>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                // Deserialising nested YAML recurses; the depth budget bounds it, and a
                // roomy stack keeps the bound far from the thread's limit.
                std::thread::Builder::new()
                    .stack_size(PARSE_STACK_BYTES)
                    .spawn_scoped(scope, move || {
                        let mut docs = Vec::new();
                        let mut diags = Vec::new();
                        for (id, file) in part.iter().filter(|(_, f)| f.parse) {
                            docs.extend(parse::parse_file(*id, file, limits, &mut diags));
                        }
                        (docs, diags)
                    })
                    .expect("spawning a parser thread")
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut documents = Vec::new();
    for (docs, diags) in results {
        documents.extend(docs);
        diagnostics.extend(diags);
    }
    documents
}

fn validate_all(resources: &Resources, diagnostics: &mut Vec<Diagnostic>) {
    let items = &resources.items;
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len().max(1));
    let chunk = items.len().div_ceil(workers).max(1);
    let results: Vec<Vec<Diagnostic>> = std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut diags = Vec::new();
                    for r in part {
                        validate::validate(r, &mut diags);
                    }
                    diags
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    diagnostics.extend(results.into_iter().flatten());
}
