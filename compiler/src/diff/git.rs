//! `meshc diff --git REV`: the policy paths as they are at a git revision, written into a
//! temporary directory so the usual loader reads them.
//!
//! It runs the `git` command-line tool (`rev-parse`, `ls-tree`, `cat-file --batch`); the
//! working tree is only read. Only policy files (`*.yaml`, `*.yml`) under the paths and the
//! `meshc.toml` files above them are written out; symbolic links and submodules are left
//! out.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

/// The paths at a revision, on disk until this is dropped.
#[derive(Debug)]
pub struct Snapshot {
    dir: tempfile::TempDir,
    /// The given paths, in the same order, inside the snapshot.
    pub paths: Vec<PathBuf>,
    /// The full commit id the revision named.
    pub commit: String,
}

impl Snapshot {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `git`: {e}"))?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

/// The directory git should start from for `path` (itself, or the nearest existing parent).
fn start_dir(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut dir = absolute.as_path();
    loop {
        if dir.is_dir() {
            return dir.to_path_buf();
        }
        match dir.parent() {
            Some(parent) => dir = parent,
            None => return PathBuf::from("."),
        }
    }
}

fn is_policy_file(path: &str) -> bool {
    path.ends_with(".yaml") || path.ends_with(".yml")
}

/// Writes the files of `paths` as of `rev` into a temporary directory.
pub fn snapshot(rev: &str, paths: &[PathBuf]) -> Result<Snapshot, String> {
    if rev.is_empty() || rev.starts_with('-') {
        return Err(format!("`{rev}` is not a git revision"));
    }
    let first = paths.first().map_or(Path::new("."), PathBuf::as_path);
    let start = start_dir(first);
    let toplevel = git(&start, &["rev-parse", "--show-toplevel"]).map_err(|_| {
        format!(
            "{} is not inside a git repository (`--git` compares with a revision of the repository that holds the paths)",
            start.display()
        )
    })?;
    let toplevel = PathBuf::from(String::from_utf8_lossy(&toplevel).trim());
    let root =
        std::fs::canonicalize(&toplevel).map_err(|e| format!("{}: {e}", toplevel.display()))?;
    let commit = git(
        &root,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &format!("{rev}^{{commit}}"),
        ],
    )
    .map_err(|_| format!("unknown git revision `{rev}`"))?;
    let commit = String::from_utf8_lossy(&commit).trim().to_owned();
    if commit.is_empty() {
        return Err(format!("unknown git revision `{rev}`"));
    }

    // Each path relative to the repository root.
    let mut relative: Vec<PathBuf> = Vec::new();
    for path in paths {
        let absolute =
            std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let rel = absolute.strip_prefix(&root).map_err(|_| {
            format!(
                "{} is outside the git repository at {}",
                path.display(),
                root.display()
            )
        })?;
        relative.push(rel.to_path_buf());
    }
    if relative.is_empty() {
        relative.push(PathBuf::new());
    }

    // Pathspecs: the paths, and every `meshc.toml` from the repository root down to them.
    let mut specs: Vec<String> = Vec::new();
    for rel in &relative {
        let text = rel.to_string_lossy().into_owned();
        specs.push(if text.is_empty() {
            ".".to_owned()
        } else {
            text
        });
        let mut dir = Some(rel.as_path());
        while let Some(d) = dir {
            let config = d.join(crate::config::FILE_NAME);
            specs.push(config.to_string_lossy().into_owned());
            dir = d.parent();
        }
    }
    specs.sort();
    specs.dedup();
    let mut args = vec!["ls-tree", "-r", "-z", "--full-tree", commit.as_str(), "--"];
    args.extend(specs.iter().map(String::as_str));
    let listing = git(&root, &args).map_err(|e| format!("git ls-tree {rev}: {e}"))?;

    let dir = tempfile::Builder::new()
        .prefix("meshc-diff-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    // The snapshot's root stands for the repository root: `meshc.toml` discovery stops here.
    std::fs::create_dir_all(dir.path().join(".git"))
        .map_err(|e| format!("{}: {e}", dir.path().display()))?;

    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for entry in listing.split(|&b| b == 0).filter(|e| !e.is_empty()) {
        let entry = String::from_utf8_lossy(entry);
        let Some((meta, file)) = entry.split_once('\t') else {
            continue;
        };
        let mut meta = meta.split(' ');
        let (Some(mode), Some(kind), Some(oid)) = (meta.next(), meta.next(), meta.next()) else {
            continue;
        };
        let is_config = Path::new(file)
            .file_name()
            .is_some_and(|n| n == crate::config::FILE_NAME);
        if kind != "blob" || mode == "120000" || !(is_policy_file(file) || is_config) {
            continue;
        }
        let rel = Path::new(file);
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(format!("git ls-tree {rev}: unexpected path `{file}`"));
        }
        files.push((oid.to_owned(), dir.path().join(rel)));
    }
    write_blobs(&root, &files)?;

    let mut snapshot_paths = Vec::new();
    for (rel, given) in relative.iter().zip(paths) {
        let at_rev = dir.path().join(rel);
        // A path that is new since `rev` was empty then.
        if !at_rev.exists() {
            if given.is_dir() {
                std::fs::create_dir_all(&at_rev)
                    .map_err(|e| format!("{}: {e}", at_rev.display()))?;
            } else {
                continue;
            }
        }
        snapshot_paths.push(at_rev);
    }
    if snapshot_paths.is_empty() {
        let empty = dir.path().join(".empty");
        std::fs::create_dir_all(&empty).map_err(|e| format!("{}: {e}", empty.display()))?;
        snapshot_paths.push(empty);
    }
    Ok(Snapshot {
        dir,
        paths: snapshot_paths,
        commit,
    })
}

/// Reads the blobs with one `git cat-file --batch` and writes each to its path.
fn write_blobs(root: &Path, files: &[(String, PathBuf)]) -> Result<(), String> {
    if files.is_empty() {
        return Ok(());
    }
    let mut child = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run `git cat-file`: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("git cat-file: no stdin")?;
    let request: String = files.iter().map(|(oid, _)| format!("{oid}\n")).collect();
    // Written from another thread so that a large listing cannot fill both pipes at once.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(request.as_bytes());
    });
    let stdout = child.stdout.take().ok_or("git cat-file: no stdout")?;
    let mut reader = BufReader::new(stdout);
    let result = files
        .iter()
        .try_for_each(|(oid, path)| read_blob(&mut reader, oid, path));
    drop(reader);
    if result.is_err() {
        let _ = child.kill();
    }
    let _ = writer.join();
    let _ = child.wait();
    result
}

/// Reads one `<oid> blob <size>` answer of `git cat-file --batch` and writes the blob.
fn read_blob(reader: &mut impl BufRead, oid: &str, path: &Path) -> Result<(), String> {
    let mut header = String::new();
    if reader.read_line(&mut header).map_err(|e| e.to_string())? == 0 {
        return Err(format!("git cat-file: no answer for {oid}"));
    }
    let size = header
        .trim_end()
        .rsplit(' ')
        .next()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|_| header.contains(" blob "))
        .ok_or_else(|| format!("git cat-file: unexpected answer `{}`", header.trim_end()))?;
    let mut body = Vec::new();
    reader
        .take(size + 1)
        .read_to_end(&mut body)
        .map_err(|e| e.to_string())?;
    body.truncate(usize::try_from(size).unwrap_or(usize::MAX));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(path, &body).map_err(|e| format!("{}: {e}", path.display()))
}
