//! The whole compiler: check -> typecheck -> rules -> lower -> emit, for `meshc build`,
//! `meshc route` and the tests.

use mesh_table::spec::TableSpec;

use crate::check::Checked;
use crate::{emit, lower};

/// Why a build produced no artifact.
#[derive(Debug)]
pub enum BuildError {
    /// The check found errors; they are in `Checked::diagnostics`.
    Diagnostics(usize),
    /// The table could not be laid out (a regex too large for a DFA, a count over a limit).
    Encode(String),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Diagnostics(n) => write!(
                f,
                "the policy has {n} error{}: nothing was built",
                if *n == 1 { "" } else { "s" }
            ),
            BuildError::Encode(e) => write!(f, "cannot lay out the routing table: {e}"),
        }
    }
}

/// The table's input model for a checked repository, or why there is none.
pub fn table_spec(checked: &Checked) -> Result<TableSpec, BuildError> {
    let errors = checked.summary.errors;
    if errors > 0 {
        return Err(BuildError::Diagnostics(errors));
    }
    Ok(lower::lower(
        &checked.ir,
        emit::content_hash(&checked.resources),
    ))
}

/// The artifact bytes for a checked repository.
pub fn build(checked: &Checked) -> Result<Vec<u8>, BuildError> {
    let started = std::time::Instant::now();
    let spec = table_spec(checked)?;
    let lowered = started.elapsed();
    let bytes = mesh_table::encode(&spec).map_err(|e| BuildError::Encode(e.to_string()))?;
    if std::env::var_os("MESHC_TIMINGS").is_some() {
        eprintln!(
            "meshc timings: lower {lowered:?}, encode {:?}",
            started.elapsed() - lowered
        );
    }
    Ok(bytes)
}
