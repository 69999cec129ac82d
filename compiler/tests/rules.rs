//! Rule fixtures: each rule has a folder under `fixtures/rules/<name>/` with a firing case
//! and a clean case. The firing case must report the rule; the clean case must not; the
//! rendered diagnostics of the firing case are snapshot-tested.
//!
//! A case is `fire.yaml` / `clean.yaml` (one file, or several separated by
//! `# --- file: NAME` lines), or a `fire/` / `clean/` directory checked from disk.

use std::path::{Path, PathBuf};

use meshc::check::{self, Checked, Settings};
use meshc::report::{self, OutputFormat};
use meshc::rules;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules")
}

/// Splits a fixture into `(file name, text)` pairs.
fn split_files(text: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = Vec::new();
    for line in text.split_inclusive('\n') {
        if let Some(name) = line.trim_end().strip_prefix("# --- file: ") {
            files.push((name.trim().to_owned(), String::new()));
        } else if let Some((_, body)) = files.last_mut() {
            body.push_str(line);
        } else {
            files.push(("policy.yaml".to_owned(), line.to_owned()));
        }
    }
    files
}

/// Runs the checker on one case; the second value is the case's label in snapshots.
fn run_case(dir: &Path, case: &str) -> Option<Checked> {
    let settings = Settings::default();
    let file = dir.join(format!("{case}.yaml"));
    let tree = dir.join(case);
    if file.is_file() {
        let text = std::fs::read_to_string(&file).unwrap();
        let files = split_files(&text);
        Some(check::check_sources(
            files.iter().map(|(n, t)| (n.as_str(), t.as_str())),
            &settings,
        ))
    } else if tree.is_dir() {
        // Relative paths keep the snapshots independent of where the repo is checked out.
        let relative = tree
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap()
            .to_path_buf();
        std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).unwrap();
        Some(check::check_paths(&[relative], &settings).expect("fixture directory is readable"))
    } else {
        None
    }
}

#[test]
fn every_rule_has_a_firing_and_a_clean_fixture() {
    let mut failures = Vec::new();
    for rule in rules::all() {
        let dir = fixtures().join(rule.name);
        let Some(fire) = run_case(&dir, "fire") else {
            failures.push(format!(
                "{} {}: no fire case in {}",
                rule.code,
                rule.name,
                dir.display()
            ));
            continue;
        };
        let Some(clean) = run_case(&dir, "clean") else {
            failures.push(format!("{} {}: no clean case", rule.code, rule.name));
            continue;
        };
        if !fire.diagnostics.iter().any(|d| d.rule.code == rule.code) {
            failures.push(format!(
                "{} {}: the fire case does not report it; it reports {:?}",
                rule.code,
                rule.name,
                fire.diagnostics
                    .iter()
                    .map(|d| (d.rule.code, d.message.as_str()))
                    .collect::<Vec<_>>()
            ));
        }
        if let Some(d) = clean.diagnostics.iter().find(|d| d.rule.code == rule.code) {
            failures.push(format!(
                "{} {}: the clean case reports it: {}",
                rule.code, rule.name, d.message
            ));
        }
        let rendered = report::render(
            OutputFormat::Human,
            &fire.db,
            &fire.diagnostics,
            &fire.summary,
            false,
        );
        insta::with_settings!({ snapshot_path => "snapshots/rules", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(rule.name, rendered);
        });
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_fixture_folder_names_a_rule() {
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            rules::find(&name).is_some(),
            "fixtures/rules/{name} names no rule"
        );
    }
}
