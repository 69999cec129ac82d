//! ARCHITECTURE.md stays true: every repository path it names exists.

use std::path::Path;

#[test]
fn every_path_named_in_architecture_md_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut checked = 0;
    let mut missing = Vec::new();
    for word in
        text.split(|c: char| c.is_whitespace() || c == '`' || c == '(' || c == ')' || c == ',')
    {
        let word = word.trim_end_matches(['.', ':', ';']);
        let top_level = [
            "compiler/",
            "runtime-proxy/",
            "schemas/",
            "policies/",
            "tests/",
            "docs/",
        ];
        if !top_level.iter().any(|t| word.starts_with(t)) || word.contains('*') {
            continue;
        }
        checked += 1;
        if !root.join(word).exists() {
            missing.push(word.to_owned());
        }
    }
    assert!(
        checked > 20,
        "found only {checked} paths: has the format changed?"
    );
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names paths that do not exist: {missing:?}"
    );
}
