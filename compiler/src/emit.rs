//! Emit: the routing IR -> artifact bytes (the table crate's writer knows the layout), the
//! content hash of the input, and the atomic write that never leaves a partial file.

use std::io::Write;
use std::path::Path;

use crate::parse::{Node, Value};
use crate::resource::Resources;
use crate::sha256::sha256;

/// SHA-256 of the repository's canonical form: every resource as `kind namespace/name`
/// and its content with mapping keys sorted, resources sorted. Files, their order, comments
/// and formatting do not change it; any change of meaning does.
pub fn content_hash(resources: &Resources) -> [u8; 32] {
    let mut items: Vec<(String, String)> = resources
        .items
        .iter()
        .map(|r| {
            let mut text = String::new();
            canonical(&r.root, &mut text);
            (r.id(), text)
        })
        .collect();
    items.sort();
    let mut all = Vec::new();
    for (id, text) in items {
        all.extend_from_slice(id.as_bytes());
        all.push(b'\n');
        all.extend_from_slice(text.as_bytes());
        all.push(b'\n');
    }
    sha256(&all)
}

fn canonical(node: &Node, out: &mut String) {
    match &node.value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&format!("{f:?}")),
        Value::Str(s) => out.push_str(&serde_json::Value::String(s.clone()).to_string()),
        Value::Seq(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            let mut sorted: Vec<_> = entries.iter().collect();
            sorted.sort_by(|a, b| a.key.cmp(&b.key));
            out.push('{');
            for (i, e) in sorted.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(e.key.clone()).to_string());
                out.push(':');
                canonical(&e.value, out);
            }
            out.push('}');
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so
/// that a reader (a proxy watching the file) sees the old file or the new one, never a part.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("table");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
