//! The ConfigMaps `meshc deploy` writes, built without a cluster: names, labels,
//! annotations, the 1 MiB size check, provenance (git commit, build time), and the YAML that
//! `--dry-run` prints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

/// The key of the table in the ConfigMap's `binaryData`, and so the file name in the
/// mounted volume: mesh-proxy runs with `--table /etc/mesh/routes.mtbl`.
pub const TABLE_KEY: &str = "routes.mtbl";

/// Kubernetes refuses a ConfigMap whose data (every key plus every value, `binaryData`
/// counted decoded) is over 1 MiB (`MaxSecretSize` in the API server's validation).
pub const MAX_DATA_BYTES: usize = 1024 * 1024;

pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Label: the `--name` a ConfigMap belongs to.
pub const TABLE: &str = "meshc.dev/table";
/// Label: `current` on the mounted ConfigMap, `revision` on the immutable copies.
pub const ROLE: &str = "meshc.dev/role";
pub const ROLE_CURRENT: &str = "current";
pub const ROLE_REVISION: &str = "revision";
/// The policy's content hash in the table header (what `meshc inspect` and mesh-proxy's
/// `/table` report), `sha256:<hex>`.
pub const CONTENT_HASH: &str = "meshc.dev/content-hash";
/// SHA-256 of the artifact bytes; revision names are content-addressed by it.
pub const ARTIFACT_SHA256: &str = "meshc.dev/artifact-sha256";
pub const FORMAT_VERSION: &str = "meshc.dev/format-version";
pub const GIT_COMMIT: &str = "meshc.dev/git-commit";
pub const BUILT_AT: &str = "meshc.dev/built-at";
/// The revision a ConfigMap holds (on the mounted one: which revision is current).
pub const REVISION: &str = "meshc.dev/revision";
/// Deployment order: 1 for the first deploy, one more for each deploy or rollback.
pub const SEQUENCE: &str = "meshc.dev/sequence";
pub const DEPLOYED_AT: &str = "meshc.dev/deployed-at";
/// On the mounted ConfigMap after a rollback: the revision that was current before.
pub const ROLLED_BACK_FROM: &str = "meshc.dev/rolled-back-from";

/// A checked artifact and the facts the annotations carry.
#[derive(Clone, Debug)]
pub struct Artifact {
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`, lower-case hex.
    pub sha256_hex: String,
    /// The table header's content hash, lower-case hex.
    pub content_hash_hex: String,
    pub format_version: u32,
    pub virtual_hosts: usize,
    pub routes: usize,
    pub clusters: usize,
}

impl Artifact {
    /// Reads the bytes through the proxy's checked reader: only a table that loads is
    /// deployed or rolled back to.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Artifact, String> {
        let aligned = mesh_table::AlignedBytes::new(&bytes);
        let table = mesh_table::Table::load(aligned.as_bytes()).map_err(|e| e.to_string())?;
        let info = table.info();
        let routes = table.virtual_hosts().map(|v| v.routes().len()).sum();
        let content_hash_hex = crate::sha256::hex(&info.content_hash);
        let (virtual_hosts, clusters) = (table.virtual_hosts().len(), table.clusters().len());
        Ok(Artifact {
            sha256_hex: crate::sha256::hex(&crate::sha256::sha256(&bytes)),
            content_hash_hex,
            format_version: info.version,
            virtual_hosts,
            routes,
            clusters,
            bytes,
        })
    }

    /// `NAME-rev-<first 10 hex digits of the artifact's SHA-256>`.
    pub fn revision_name(&self, name: &str) -> String {
        format!("{name}-rev-{}", &self.sha256_hex[..10])
    }

    /// What the ConfigMap's data adds up to, as the API server counts it.
    pub fn data_size(&self) -> usize {
        TABLE_KEY.len() + self.bytes.len()
    }
}

/// Why an artifact cannot go into a ConfigMap.
#[derive(Debug)]
pub struct TooLarge {
    pub table_bytes: usize,
    pub data_bytes: usize,
    pub routes: usize,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let per_route = (self.table_bytes / self.routes.max(1)).max(1);
        write!(
            f,
            "the routing table is {} bytes ({} routes): with its key, {} bytes of ConfigMap data, over the {} bytes (1 MiB) a ConfigMap may hold; Kubernetes would refuse it\n  help: deploy the repository in parts, one ConfigMap per namespace or team (`meshc deploy policies/<team> --namespace <team> --name <team>-routes`), or remove routes: at about {} bytes per route, some {} routes fit",
            self.table_bytes,
            self.routes,
            self.data_bytes,
            MAX_DATA_BYTES,
            per_route,
            MAX_DATA_BYTES / per_route
        )
    }
}

pub fn check_size(artifact: &Artifact) -> Result<(), TooLarge> {
    if artifact.data_size() > MAX_DATA_BYTES {
        Err(TooLarge {
            table_bytes: artifact.bytes.len(),
            data_bytes: artifact.data_size(),
            routes: artifact.routes,
        })
    } else {
        Ok(())
    }
}

/// RFC 1123 subdomain (a ConfigMap name), and at most 63 characters so that it is also a
/// valid label value (the revisions carry it in `meshc.dev/table`).
pub fn check_name(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    let ok = !name.is_empty()
        && name.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'))
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "--name `{name}` is not a valid ConfigMap name: use at most 63 lower-case letters, digits, `-` and `.`, starting and ending with a letter or digit"
        ))
    }
}

/// RFC 1123 label (a namespace name).
pub fn check_namespace(namespace: &str) -> Result<(), String> {
    let bytes = namespace.as_bytes();
    let ok = !namespace.is_empty()
        && namespace.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "--namespace `{namespace}` is not a valid namespace name: use at most 63 lower-case letters, digits and `-`, starting and ending with a letter or digit"
        ))
    }
}

/// Where the artifact came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provenance {
    /// `git rev-parse HEAD`, with `-dirty` when the policy paths have uncommitted changes;
    /// `None` outside a git repository.
    pub git_commit: Option<String>,
    /// RFC 3339, UTC, whole seconds.
    pub built_at: String,
}

impl Provenance {
    /// The git commit of the repository holding the first path, and the time now (or
    /// `SOURCE_DATE_EPOCH`, for reproducible output).
    pub fn collect(paths: &[PathBuf]) -> Provenance {
        Provenance {
            git_commit: paths.first().and_then(|p| git_commit(p, paths)),
            built_at: build_time(),
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn git_commit(first: &Path, paths: &[PathBuf]) -> Option<String> {
    let absolute = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    let first = absolute(first);
    let dir = if first.is_dir() {
        first
    } else {
        first.parent()?.to_owned()
    };
    let head = git(&dir, &["rev-parse", "--verify", "HEAD"])?;
    if head.len() != 40 || !head.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // Dirty when any policy path has changes or untracked files: they are in the artifact.
    let mut status_args = vec![
        "status".to_owned(),
        "--porcelain".to_owned(),
        "--".to_owned(),
    ];
    status_args.extend(paths.iter().map(|p| absolute(p).display().to_string()));
    let status_refs: Vec<&str> = status_args.iter().map(String::as_str).collect();
    match git(&dir, &status_refs) {
        Some(status) if status.is_empty() => Some(head),
        // A status we cannot read is not a clean one.
        _ => Some(format!("{head}-dirty")),
    }
}

/// The build time: `SOURCE_DATE_EPOCH` when set (reproducible builds), else now.
fn build_time() -> String {
    let seconds = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok());
    rfc3339(seconds.unwrap_or_else(|| k8s_openapi::jiff::Timestamp::now().as_second()))
}

/// Now, RFC 3339, UTC, whole seconds.
pub fn now() -> String {
    rfc3339(k8s_openapi::jiff::Timestamp::now().as_second())
}

fn rfc3339(seconds: i64) -> String {
    use k8s_openapi::jiff::Timestamp;
    Timestamp::from_second(seconds)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_string()
}

/// The annotations that describe the artifact itself (the same on the revision and on the
/// mounted ConfigMap).
pub fn artifact_annotations(
    artifact: &Artifact,
    provenance: &Provenance,
) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::from([
        (
            CONTENT_HASH.to_owned(),
            format!("sha256:{}", artifact.content_hash_hex),
        ),
        (ARTIFACT_SHA256.to_owned(), artifact.sha256_hex.clone()),
        (
            FORMAT_VERSION.to_owned(),
            artifact.format_version.to_string(),
        ),
        (BUILT_AT.to_owned(), provenance.built_at.clone()),
    ]);
    if let Some(commit) = &provenance.git_commit {
        annotations.insert(GIT_COMMIT.to_owned(), commit.clone());
    }
    annotations
}

/// One of the two ConfigMaps: the immutable revision (`role` = `revision`) or the mounted,
/// mutable one (`current`).
pub fn config_map(
    namespace: &str,
    name: &str,
    table: &str,
    role: &str,
    bytes: &[u8],
    annotations: BTreeMap<String, String>,
) -> ConfigMap {
    let labels = BTreeMap::from([
        (MANAGED_BY.to_owned(), "meshc".to_owned()),
        (ROLE.to_owned(), role.to_owned()),
        (TABLE.to_owned(), table.to_owned()),
    ]);
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        binary_data: Some(BTreeMap::from([(
            TABLE_KEY.to_owned(),
            ByteString(bytes.to_vec()),
        )])),
        data: None,
        immutable: (role == ROLE_REVISION).then_some(true),
    }
}

/// The ConfigMaps as a multi-document YAML stream, keys in the order kubectl users expect.
pub fn to_yaml(config_maps: &[ConfigMap]) -> String {
    let mut out = String::new();
    for cm in config_maps {
        out.push_str("---\n");
        let value = serde_json::to_value(cm).unwrap_or(Value::Null);
        let Value::Object(map) = value else { continue };
        let order = [
            "apiVersion",
            "kind",
            "metadata",
            "immutable",
            "data",
            "binaryData",
        ];
        for key in order {
            if let Some(v) = map.get(key) {
                emit_entry(key, v, 0, &mut out);
            }
        }
        for (key, v) in &map {
            if !order.contains(&key.as_str()) {
                emit_entry(key, v, 0, &mut out);
            }
        }
    }
    out
}

fn emit_entry(key: &str, value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    let key = yaml_key(key);
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push_str(&format!("{pad}{key}:\n"));
            for (k, v) in map {
                emit_entry(k, v, indent + 2, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            out.push_str(&format!("{pad}{key}:\n"));
            for item in items {
                out.push_str(&format!("{pad}- {}\n", yaml_scalar(item)));
            }
        }
        other => out.push_str(&format!("{pad}{key}: {}\n", yaml_scalar(other))),
    }
}

/// Plain keys where YAML reads them back unchanged, double-quoted (JSON escapes, which are
/// valid YAML) otherwise.
fn yaml_key(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
        && key.bytes().next().is_some_and(|b| b.is_ascii_alphabetic());
    if plain {
        key.to_owned()
    } else {
        Value::String(key.to_owned()).to_string()
    }
}

fn yaml_scalar(value: &Value) -> String {
    match value {
        Value::Object(_) => "{}".to_owned(),
        Value::Array(_) => "[]".to_owned(),
        Value::String(s) if is_plain_safe(s) => s.clone(),
        // Anything else is quoted, so that `1`, `yes` or `2026-01-01` stay strings.
        other => other.to_string(),
    }
}

/// A word YAML 1.1 and 1.2 both read back as this same string: a letter, then letters,
/// digits, `-`, `_`, `.` or `/`, and not a boolean or null.
fn is_plain_safe(s: &str) -> bool {
    let reserved = ["y", "n", "yes", "no", "on", "off", "true", "false", "null"];
    s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
        && !reserved.contains(&s.to_ascii_lowercase().as_str())
}
