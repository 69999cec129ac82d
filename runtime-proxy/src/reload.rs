//! Reload: load the table file at start, then watch it (poll the path's identity every
//! interval, and on demand, e.g. SIGHUP) and swap in each new table that validates.
//!
//! Polling `metadata` on the path (following symlinks, re-resolved each time) also sees a
//! Kubernetes ConfigMap volume's `..data` symlink swap, where the file's inode changes.

use std::fmt;
use std::io::Read as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mesh_table::LoadError;
use tokio::sync::{Notify, watch};

use crate::state::{Loaded, Shared};

/// Why a table file could not be used.
#[derive(Debug)]
pub enum TableError {
    Read(PathBuf, std::io::Error),
    Invalid(PathBuf, LoadError),
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableError::Read(path, e) => write!(f, "cannot read table {}: {e}", path.display()),
            TableError::Invalid(path, e) => {
                write!(f, "table {} is invalid: {e}", path.display())
            }
        }
    }
}

impl std::error::Error for TableError {}

/// What identifies one version of the file: (dev, inode, mtime, size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileIdentity {
    dev: u64,
    ino: u64,
    mtime_ns: i128,
    size: u64,
}

pub fn identity(path: &Path) -> Option<FileIdentity> {
    let meta = std::fs::metadata(path).ok()?;
    Some(FileIdentity {
        dev: meta.dev(),
        ino: meta.ino(),
        mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        size: meta.size(),
    })
}

/// The largest table file the proxy reads (a 100,000-route table is about 34 MB).
pub const MAX_TABLE_BYTES: u64 = 1 << 30;

/// Reads and validates the table file fully.
///
/// The file is read, not memory-mapped: a mapped file that someone truncates or rewrites in
/// place (`cp` over it) would fault or change under the validated table, while a read copy
/// cannot. It is read once, straight into aligned memory, and validated there.
pub fn read_table(path: &Path) -> Result<Loaded, TableError> {
    let read_error = |e: std::io::Error| TableError::Read(path.to_owned(), e);
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    let len = file.metadata().map_err(read_error)?.len();
    if len > MAX_TABLE_BYTES {
        return Err(read_error(std::io::Error::other(format!(
            "{len} bytes is over the {MAX_TABLE_BYTES}-byte limit for a table"
        ))));
    }
    let mut bytes = mesh_table::AlignedBytes::zeroed(len as usize);
    file.read_exact(bytes.as_mut_bytes()).map_err(read_error)?;
    // A file that grew while it was read is not the one that was measured.
    if file.read(&mut [0u8; 1]).map_err(read_error)? != 0 {
        return Err(read_error(std::io::Error::other(
            "the file changed while it was read",
        )));
    }
    Loaded::from_aligned(Arc::new(bytes)).map_err(|e| TableError::Invalid(path.to_owned(), e))
}

/// Reads, validates and swaps in the table; a bad one is refused, logged and counted.
pub async fn reload(shared: &Shared) -> Result<(), TableError> {
    let path = shared.table_path.clone();
    // Reading and validating a large table is blocking work.
    let loaded = tokio::task::spawn_blocking(move || read_table(&path))
        .await
        .unwrap_or_else(|e| {
            Err(TableError::Read(
                shared.table_path.clone(),
                std::io::Error::other(e.to_string()),
            ))
        });
    match loaded {
        Ok(loaded) => {
            let hash = hex(loaded.table.content_hash());
            shared.current.store(Arc::new(loaded));
            shared.reloads_ok.fetch_add(1, Ordering::Relaxed);
            tracing::info!(table = %shared.table_path.display(), content_hash = %hash, "table reloaded");
            Ok(())
        }
        Err(error) => {
            shared.reloads_failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(%error, "table refused; the previous table keeps serving");
            Err(error)
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Watches the table file until shutdown: polls its identity every `interval` and reloads on
/// a change or when `reload_now` is notified. `seen` is the identity taken before the
/// serving table was read, so a change made before this task first runs is not missed.
pub async fn watch_table(
    shared: Arc<Shared>,
    mut seen: Option<FileIdentity>,
    interval: Duration,
    reload_now: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let forced = tokio::select! {
            _ = ticker.tick() => false,
            _ = reload_now.notified() => true,
            _ = shutdown.changed() => return,
        };
        let before = identity(&shared.table_path);
        if !forced && (before.is_none() || before == seen) {
            // A missing file (mid-swap) is not a change: the current table keeps serving.
            continue;
        }
        let _ = reload(&shared).await;
        // Remember the identity seen before reading: if the file changed while it was read,
        // the next tick sees a difference and reads it again.
        seen = before;
    }
}
