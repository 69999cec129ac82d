//! `meshc.toml`: lint selection, thresholds and limits for one policy repository.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::diagnostic::Severity;
use crate::parse::Limits;
use crate::rules;

pub const FILE_NAME: &str = "meshc.toml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    #[serde(default)]
    pub lint: LintConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub analysis: AnalysisConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LintConfig {
    /// Codes, code prefixes or names to report; all rules when absent.
    pub select: Option<Vec<String>>,
    /// Codes, code prefixes or names never to report.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// The lowest severity that makes `meshc check` exit 1.
    pub fail_level: Option<String>,
    /// Report destination hosts declared nowhere in the repo as errors, not warnings.
    #[serde(default)]
    pub strict_hosts: bool,
    /// The namespace of resources without `metadata.namespace`.
    pub namespace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsConfig {
    pub max_file_bytes: Option<usize>,
    pub max_documents: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AnalysisConfig {
    /// The largest acceptable worst-case number of upstream attempts along a chain of
    /// services that each retry the next.
    pub max_retry_amplification: Option<u32>,
    /// Chains of services that call each other in order (`[["productpage", "reviews",
    /// "ratings"]]`), for `retry-amplification`; routing rules do not say who calls whom.
    #[serde(default)]
    pub call_chains: Vec<Vec<String>>,
}

impl Config {
    /// Reads and checks a config file. Errors are for the user: they name the file.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let config: Config =
            toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
        config
            .check()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        for selector in self.lint.select.iter().flatten().chain(&self.lint.ignore) {
            if !rules::all()
                .iter()
                .any(|r| rules::selector_matches(selector, r))
            {
                return Err(format!(
                    "`{selector}` names no rule (see `meshc rule --all`)"
                ));
            }
        }
        if let Some(level) = &self.lint.fail_level {
            Severity::parse(level).ok_or_else(|| {
                format!("fail-level `{level}` is not one of error, warning, info")
            })?;
        }
        Ok(())
    }

    pub fn limits(&self) -> Limits {
        let mut limits = Limits::default();
        if let Some(v) = self.limits.max_file_bytes {
            limits.max_file_bytes = v;
        }
        if let Some(v) = self.limits.max_documents {
            limits.max_documents = v;
        }
        limits
    }

    /// Whether a rule is enabled by `select` and `ignore`.
    pub fn enabled(&self, rule: &rules::Rule) -> bool {
        let selected = match &self.lint.select {
            Some(select) => select.iter().any(|s| rules::selector_matches(s, rule)),
            None => true,
        };
        selected
            && !self
                .lint
                .ignore
                .iter()
                .any(|s| rules::selector_matches(s, rule))
    }
}

/// Finds `meshc.toml` for a run: in the first input directory or one of its ancestors,
/// stopping at the root of a git checkout.
pub fn discover(first_input: Option<&Path>) -> Option<PathBuf> {
    let start = first_input.unwrap_or(Path::new("."));
    let start = std::fs::canonicalize(start).ok()?;
    let mut dir = if start.is_dir() {
        Some(start.as_path())
    } else {
        start.parent()
    };
    while let Some(d) = dir {
        let candidate = d.join(FILE_NAME);
        if candidate.is_file() {
            return Some(candidate);
        }
        if d.join(".git").exists() {
            return None;
        }
        dir = d.parent();
    }
    None
}
