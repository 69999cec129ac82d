//! Reading the inputs: paths -> source files (recursively, `*.yaml` and `*.yml`).
//!
//! A path the user names that does not exist is a usage error (exit 2). Problems found
//! while walking (unreadable files, link loops, non-UTF-8 text, oversized files) become
//! diagnostics, so one run reports all of them.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::diagnostic::Diagnostic;
use crate::rules;
use crate::source::{SourceDb, SourceFile, Span};

/// A path given on the command line that cannot be used at all.
#[derive(Debug)]
pub struct InputError {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Reads every policy file under `paths` into `db`, in a stable order.
pub fn read_inputs(
    paths: &[PathBuf],
    max_file_bytes: usize,
    db: &mut SourceDb,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<(), InputError> {
    let mut found: Vec<Found> = Vec::new();
    for path in paths {
        let meta = fs::metadata(path).map_err(|e| InputError {
            path: path.display().to_string(),
            message: io_message(&e),
        })?;
        if meta.is_dir() {
            let mut stack = BTreeSet::new();
            // `meshc check .` reports `vs.yaml`, not `./vs.yaml`.
            let root = if path.as_os_str() == "." {
                Path::new("")
            } else {
                path.as_path()
            };
            walk(root, &mut stack, &mut found);
        } else {
            found.push(Found::File(path.clone()));
        }
    }
    // The same file named twice (or reached twice through links) is read once.
    let mut seen = BTreeSet::new();
    found.sort_by(|a, b| a.path().cmp(b.path()));
    for item in found {
        let key = fs::canonicalize(item.path()).unwrap_or_else(|_| item.path().to_path_buf());
        if !seen.insert(key) {
            continue;
        }
        match item {
            Found::File(path) => read_one(&path, max_file_bytes, db, diagnostics),
            Found::Problem(path, message) => {
                let id = db.add(SourceFile::unparsed(display(&path), ""));
                diagnostics.push(
                    Diagnostic::new(&rules::UNREADABLE_PATH, id, Span::default(), message)
                        .with_help(
                            "fix or remove the path; meshc does not skip policy files silently",
                        ),
                );
            }
        }
    }
    Ok(())
}

enum Found {
    File(PathBuf),
    Problem(PathBuf, String),
}

impl Found {
    fn path(&self) -> &Path {
        match self {
            Found::File(p) | Found::Problem(p, _) => p,
        }
    }
}

fn walk(dir: &Path, stack: &mut BTreeSet<PathBuf>, found: &mut Vec<Found>) {
    // `dir` is empty for the current directory, so that children are reported as `a.yaml`.
    let on_disk = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let canonical = match fs::canonicalize(on_disk) {
        Ok(c) => c,
        Err(e) => {
            found.push(Found::Problem(dir.to_path_buf(), io_message(&e)));
            return;
        }
    };
    // A directory that is its own ancestor through a symbolic link would be walked forever.
    if !stack.insert(canonical.clone()) {
        found.push(Found::Problem(
            dir.to_path_buf(),
            "symbolic link loop: this directory contains itself".to_owned(),
        ));
        return;
    }
    let entries = match fs::read_dir(on_disk) {
        Ok(entries) => entries,
        Err(e) => {
            found.push(Found::Problem(dir.to_path_buf(), io_message(&e)));
            stack.remove(&canonical);
            return;
        }
    };
    let mut children: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| dir.join(e.file_name())))
        .collect();
    children.sort();
    for child in children {
        let name = child.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Version-control and tool directories are not policy.
        if name.starts_with('.') {
            continue;
        }
        match fs::metadata(&child) {
            Ok(meta) if meta.is_dir() => walk(&child, stack, found),
            Ok(_) => {
                if is_yaml(&child) {
                    found.push(Found::File(child));
                }
            }
            Err(e) => {
                let message = match fs::read_link(&child) {
                    Ok(target) if e.kind() == std::io::ErrorKind::NotFound => {
                        format!("broken symbolic link to `{}`", target.display())
                    }
                    _ => io_message(&e),
                };
                found.push(Found::Problem(child, message));
            }
        }
    }
    stack.remove(&canonical);
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

fn read_one(
    path: &Path,
    max_file_bytes: usize,
    db: &mut SourceDb,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let name = display(path);
    let problem = |db: &mut SourceDb,
                   diagnostics: &mut Vec<Diagnostic>,
                   rule,
                   text: String,
                   span,
                   msg: String| {
        let id = db.add(SourceFile::unparsed(name.clone(), text));
        diagnostics.push(Diagnostic::new(rule, id, span, msg));
    };
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            return problem(
                db,
                diagnostics,
                &rules::UNREADABLE_PATH,
                String::new(),
                Span::default(),
                io_message(&e),
            );
        }
    };
    // Read one byte past the limit: enough to know the file is too large, never more.
    let mut bytes = Vec::new();
    if let Err(e) = file.take(max_file_bytes as u64 + 1).read_to_end(&mut bytes) {
        return problem(
            db,
            diagnostics,
            &rules::UNREADABLE_PATH,
            String::new(),
            Span::default(),
            io_message(&e),
        );
    }
    if bytes.len() > max_file_bytes {
        let id = db.add(SourceFile::unparsed(name, ""));
        diagnostics.push(
            Diagnostic::new(
                &rules::INPUT_LIMIT,
                id,
                Span::default(),
                format!("file is larger than the limit of {max_file_bytes} bytes"),
            )
            .with_help("split the file, or raise `limits.max-file-bytes` in `meshc.toml`"),
        );
        return;
    }
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let id = db.add(SourceFile::unparsed(name, lossy));
            diagnostics.push(
                Diagnostic::new(
                    &rules::INVALID_ENCODING,
                    id,
                    Span::new(at as u32, 1),
                    format!("file is not valid UTF-8: invalid byte at offset {at}"),
                )
                .with_help("save the file as UTF-8"),
            );
            return;
        }
    };
    if let Some(at) = text.find('\0') {
        let id = db.add(SourceFile::unparsed(name, text));
        diagnostics.push(
            Diagnostic::new(
                &rules::INVALID_ENCODING,
                id,
                Span::new(at as u32, 1),
                "file contains a NUL byte",
            )
            .with_help("a policy file is text; remove the NUL byte or the file"),
        );
        return;
    }
    db.add(SourceFile::new(name, text));
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ if e.raw_os_error() == Some(40) => "too many levels of symbolic links".to_owned(),
        _ => e.to_string(),
    }
}
