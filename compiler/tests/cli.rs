//! The `meshc` binary as users and CI run it: exit codes, output formats, configuration,
//! suppression, and hostile input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn meshc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshc"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("meshc runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

const CLEAN_VS: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
---
apiVersion: v1
kind: Service
metadata:
  name: reviews
spec:
  ports:
  - name: http
    port: 9080
";

const TYPO_VS: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - retires:
      attempts: 3
    route:
    - destination:
        host: reviews
---
apiVersion: v1
kind: Service
metadata:
  name: reviews
spec:
  ports:
  - name: http
    port: 9080
";

fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

#[test]
fn exit_codes() {
    let clean = repo(&[("vs.yaml", CLEAN_VS)]);
    assert_eq!(meshc(clean.path(), &["check", "."]).status.code(), Some(0));
    let bad = repo(&[("vs.yaml", TYPO_VS)]);
    assert_eq!(meshc(bad.path(), &["check", "."]).status.code(), Some(1));
    let missing = meshc(clean.path(), &["check", "nope"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope: no such file or directory"));
    assert_eq!(
        meshc(clean.path(), &["check", ".", "--select", "MESH9999"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        meshc(clean.path(), &["check", ".", "--output-format", "xml"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn json_output_keeps_its_contract() {
    let dir = repo(&[
        ("policies/vs.yaml", TYPO_VS),
        (
            "policies/deploy.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n",
        ),
    ]);
    let out = meshc(
        dir.path(),
        &["check", "policies", "--output-format", "json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let d = &v["diagnostics"][0];
    assert_eq!(d["code"], "MESH0101");
    assert_eq!(d["severity"], "error");
    assert_eq!(d["message"], "unknown field `retires`");
    assert_eq!(d["file"], "policies/vs.yaml");
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(9), Some(5))
    );
    assert_eq!(
        (d["end_line"].as_u64(), d["end_column"].as_u64()),
        (Some(9), Some(12))
    );
    assert_eq!(d["resource"], "VirtualService default/reviews");
    assert_eq!(d["help"], "did you mean `retries`?");
    let s = &v["summary"];
    assert_eq!(s["files"], 2);
    assert_eq!(s["resources"], 2);
    assert_eq!(s["skipped"], 1);
    assert_eq!(s["errors"], 1);
    assert_eq!(s["warnings"], 0);
    assert_eq!(s["infos"], 0);
}

#[test]
fn sarif_output_is_valid_sarif_2_1_0() {
    let schema_path = std::env::var_os("MESHC_SARIF_SCHEMA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/test-deps/sarif-2.1.0.json"));
    let schema_text = std::fs::read_to_string(&schema_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `bash tests/setup.sh` first (it fetches the SARIF schema)",
            schema_path.display()
        )
    });
    // The published schema's `language` pattern has a stray `]` that ECMAScript tolerates
    // and Rust's regex engine refuses; the fix does not change what it accepts.
    let schema_text = schema_text.replace(
        r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$""#,
        r#""^[a-zA-Z]{2}(-[a-zA-Z]{2})?$""#,
    );
    let schema: Value = serde_json::from_str(&schema_text).unwrap();
    let validator = jsonschema::options().build(&schema).unwrap();

    let dir = repo(&[("a.yaml", TYPO_VS), ("b.yaml", CLEAN_VS)]);
    let out = meshc(dir.path(), &["check", ".", "--output-format", "sarif"]);
    assert_eq!(out.status.code(), Some(1));
    let sarif: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "SARIF output does not validate:\n{}",
        errors.join("\n")
    );

    let run = &sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert!(rules.len() >= 15);
    let results = run["results"].as_array().unwrap();
    assert!(results.iter().any(|r| r["ruleId"] == "MESH0101"));
    let index = results[0]["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(rules[index]["id"], results[0]["ruleId"]);
    let region = &results.iter().find(|r| r["ruleId"] == "MESH0101").unwrap()["locations"][0]["physicalLocation"];
    assert_eq!(region["artifactLocation"]["uri"], "a.yaml");
    assert_eq!(region["region"]["startLine"], 9);
}

#[test]
fn github_annotations() {
    let dir = repo(&[("vs.yaml", TYPO_VS)]);
    let out = meshc(dir.path(), &["check", ".", "--output-format", "github"]);
    let text = stdout(&out);
    assert!(
        text.starts_with("::error title=meshc (MESH0101) unknown-field,file=vs.yaml,line=9,col=5,endLine=9,endColumn=12::vs.yaml:9:5: MESH0101 unknown field `retires`%0A  help: did you mean `retries`?"),
        "{text}"
    );
}

#[test]
fn human_output_shows_the_source() {
    let dir = repo(&[("vs.yaml", TYPO_VS)]);
    let text = stdout(&meshc(dir.path(), &["check", "."]));
    assert!(
        text.contains("vs.yaml:9:5: unknown field `retires`"),
        "{text}"
    );
    assert!(text.contains("  9 │   - retires:"), "{text}");
    assert!(text.contains("did you mean `retries`?"), "{text}");
    assert!(
        text.contains(
            "failed: 1 error, 0 warnings, 0 info in 1 file (2 resources checked, 0 skipped)"
        ),
        "{text}"
    );
}

#[test]
fn config_file_and_annotation_suppress() {
    // meshc.toml ignores the rule by name.
    let dir = repo(&[
        ("vs.yaml", TYPO_VS),
        ("meshc.toml", "[lint]\nignore = [\"unknown-field\"]\n"),
    ]);
    assert_eq!(meshc(dir.path(), &["check", "."]).status.code(), Some(0));
    // A config that names no rule is a usage error.
    let dir = repo(&[
        ("vs.yaml", CLEAN_VS),
        ("meshc.toml", "[lint]\nignore = [\"no-such-rule\"]\n"),
    ]);
    let out = meshc(dir.path(), &["check", "."]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`no-such-rule` names no rule"));
    // A misspelled config key is refused too.
    let dir = repo(&[
        ("vs.yaml", CLEAN_VS),
        ("meshc.toml", "[lint]\nignroe = []\n"),
    ]);
    assert_eq!(meshc(dir.path(), &["check", "."]).status.code(), Some(2));
    // The per-resource annotation.
    let annotated = TYPO_VS.replace(
        "  name: reviews\n",
        "  name: reviews\n  annotations:\n    meshc.dev/suppress: MESH0101\n",
    );
    let dir = repo(&[("vs.yaml", &annotated)]);
    assert_eq!(meshc(dir.path(), &["check", "."]).status.code(), Some(0));
    // --select on the command line narrows to other rules.
    let dir = repo(&[("vs.yaml", TYPO_VS)]);
    assert_eq!(
        meshc(dir.path(), &["check", ".", "--select", "MESH00"])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn fail_level_warning() {
    // A document that is not a mapping is an error; use the clean file with --fail-level to
    // check that nothing below the level fails the run.
    let dir = repo(&[("vs.yaml", CLEAN_VS)]);
    assert_eq!(
        meshc(dir.path(), &["check", ".", "--fail-level", "info"])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn rule_docs_and_schemas() {
    let root = repo_root();
    let out = meshc(&root, &["rule", "MESH0101"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.starts_with("# MESH0101 `unknown-field`"), "{text}");
    assert!(text.contains("## Why is this bad"));
    assert_eq!(
        meshc(&root, &["rule", "unknown-field"]).status.code(),
        Some(0)
    );
    assert_eq!(meshc(&root, &["rule", "MESH9999"]).status.code(), Some(2));

    let out_dir = tempfile::tempdir().unwrap();
    let out = meshc(
        &root,
        &["schema", "--out", out_dir.path().to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0));
    for name in [
        "virtualservice",
        "destinationrule",
        "serviceentry",
        "workloadentry",
        "service",
    ] {
        let text =
            std::fs::read_to_string(out_dir.path().join(format!("{name}.schema.json"))).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(v["$schema"].as_str().unwrap().contains("2020-12"));
        // The files written are the ones in the repo.
        assert_eq!(
            text,
            std::fs::read_to_string(root.join(format!("schemas/{name}.schema.json"))).unwrap()
        );
    }
}

#[test]
fn the_rule_reference_page_is_up_to_date() {
    let root = repo_root();
    let generated = stdout(&meshc(&root, &["rule", "--all", "--markdown"]));
    let committed = std::fs::read_to_string(root.join("docs/rules.md")).unwrap_or_default();
    assert!(
        generated == committed,
        "docs/rules.md is stale: run `cargo run -p meshc -- rule --all --markdown > docs/rules.md`"
    );
    // The README's rule list is the same table, between its markers.
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap_or_default();
    let list = readme
        .split_once("<!-- rules: generated by `meshc rule --all --markdown`, do not edit -->\n")
        .and_then(|(_, rest)| rest.split_once("<!-- /rules -->"))
        .map(|(list, _)| list)
        .expect("README.md has the generated rule list between its markers");
    assert_eq!(
        list.trim_end(),
        meshc::rules::summary_markdown().trim_end(),
        "README.md's rule list is stale: copy the table from `meshc rule --all --markdown`"
    );
}

#[test]
fn bookinfo_is_clean() {
    let root = repo_root();
    let out = meshc(
        &root,
        &["check", "policies/bookinfo", "--output-format", "json"],
    );
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["diagnostics"], serde_json::json!([]), "{}", stdout(&out));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn istio_bookinfo_corpus_has_no_errors_per_virtual_service_file() {
    let corpus = repo_root().join("../shared/corpus/istio-bookinfo");
    let mut checked = 0;
    for entry in std::fs::read_dir(&corpus).expect("the shared corpus is beside the repo") {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.starts_with("virtual-service-") {
            continue;
        }
        let out = meshc(
            &corpus,
            &[
                "check",
                &name,
                "destination-rule-all.yaml",
                "--output-format",
                "json",
            ],
        );
        let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(v["summary"]["errors"], 0, "{name}: {}", stdout(&out));
        assert_eq!(out.status.code(), Some(0), "{name}");
        checked += 1;
    }
    assert_eq!(checked, 14);
}

// Hostile input: each case ends with a diagnostic, not a crash or a hang.

fn codes_for(files: &[(&str, &[u8])]) -> (Option<i32>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let out = meshc(dir.path(), &["check", ".", "--output-format", "json"]);
    let v: Value =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    let codes = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap().to_owned())
        .collect();
    (out.status.code(), codes)
}

#[test]
fn deep_nesting_is_refused() {
    for depth in [65, 200, 10_000] {
        let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let (code, codes) = codes_for(&[("deep.yaml", deep.as_bytes())]);
        assert_eq!(code, Some(1));
        assert_eq!(codes, ["MESH0004"], "depth {depth}");
    }
    let mut block = String::new();
    for i in 0..500 {
        block.push_str(&" ".repeat(i));
        block.push_str("a:\n");
    }
    let (code, codes) = codes_for(&[("deep-block.yaml", block.as_bytes())]);
    assert_eq!(code, Some(1));
    assert_eq!(codes, ["MESH0004"]);
}

#[test]
fn alias_bomb_is_refused() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let (code, codes) = codes_for(&[("bomb.yaml", text.as_bytes())]);
    assert_eq!(code, Some(1));
    assert_eq!(codes, ["MESH0004"]);
}

#[test]
fn nul_bytes_and_non_utf8_are_refused() {
    let (code, codes) = codes_for(&[
        ("nul.yaml", b"apiVersion: v1\x00\nkind: x\n"),
        ("latin1.yaml", b"name: caf\xe9\n"),
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(codes, ["MESH0003", "MESH0003"]);
}

#[test]
fn oversized_file_is_refused_without_reading_it_all() {
    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::File::create(dir.path().join("huge.yaml")).unwrap();
    file.set_len(100 << 20).unwrap();
    let out = meshc(dir.path(), &["check", ".", "--output-format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["diagnostics"][0]["code"], "MESH0004");
    assert!(
        v["diagnostics"][0]["message"]
            .as_str()
            .unwrap()
            .contains("larger than the limit")
    );
}

#[test]
fn a_hundred_thousand_documents_are_read() {
    let mut text = String::with_capacity(100_000 * 60);
    for i in 0..100_000 {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("many.yaml"), &text).unwrap();
    let out = meshc(dir.path(), &["check", ".", "--output-format", "json"]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["summary"]["skipped"], 100_000, "{}", stdout(&out));
    assert_eq!(out.status.code(), Some(0));
    // One more document is over the limit, with a diagnostic.
    text.push_str("---\na: 1\n");
    std::fs::write(dir.path().join("many.yaml"), &text).unwrap();
    let out = meshc(dir.path(), &["check", ".", "--output-format", "json"]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["diagnostics"][0]["code"], "MESH0004", "{}", stdout(&out));
}

#[test]
fn symlink_loop_is_reported_once() {
    let dir = repo(&[("vs.yaml", CLEAN_VS)]);
    std::os::unix::fs::symlink(".", dir.path().join("loop")).unwrap();
    let out = meshc(dir.path(), &["check", ".", "--output-format", "json"]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let codes: Vec<&str> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["MESH0005"]);
    assert_eq!(v["summary"]["resources"], 2);
}

#[test]
fn the_whole_istio_corpus_reports_duplicates_and_host_conflicts() {
    let corpus = repo_root().join("../shared/corpus/istio-bookinfo");
    let out = meshc(&corpus, &["check", ".", "--output-format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let diags = v["diagnostics"].as_array().unwrap();
    let count = |code: &str| diags.iter().filter(|d| d["code"] == code).count();
    // `reviews`, `ratings` and `details` VirtualServices are defined in many files.
    assert!(count("MESH0008") >= 20, "{}", count("MESH0008"));
    let conflicts: Vec<&str> = diags
        .iter()
        .filter(|d| d["code"] == "MESH0207")
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert!(
        conflicts
            .iter()
            .any(|m| m.contains("reviews.default.svc.cluster.local")),
        "{conflicts:?}"
    );
    assert!(
        conflicts
            .iter()
            .any(|m| m.contains("ratings.default.svc.cluster.local")),
        "{conflicts:?}"
    );
}

// Corrupt artifacts: `meshc inspect` and `meshc route` refuse each kind with a clear error.

/// The offset of `kind`'s entry in the artifact's section table.
fn section_entry(bytes: &[u8], kind: mesh_table::format::Section) -> usize {
    use mesh_table::format::{HEADER_LEN, SECTION_ENTRY_LEN, Section};
    (0..Section::ALL.len())
        .map(|i| HEADER_LEN + i * SECTION_ENTRY_LEN)
        .find(|&at| bytes[at..at + 4] == (kind as u32).to_le_bytes())
        .expect("section present")
}

/// Recomputes the checksum, so that only structural validation can refuse the file.
fn with_checksum(mut bytes: Vec<u8>) -> Vec<u8> {
    use mesh_table::format::CHECKSUM_OFFSET;
    let sum = mesh_table::hash::file_checksum(&bytes);
    bytes[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 8].copy_from_slice(&sum.to_le_bytes());
    bytes
}

#[test]
fn inspect_and_route_refuse_every_kind_of_corrupt_artifact() {
    use mesh_table::format::Section;
    let dir = repo(&[("vs.yaml", CLEAN_VS)]);
    let out = meshc(dir.path(), &["build", ".", "-o", "good.mtbl"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let good = std::fs::read(dir.path().join("good.mtbl")).unwrap();
    let routes = section_entry(&good, Section::Routes);
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "truncated header: 0 bytes, need 96"),
        ("truncated-header", good[..40].to_vec(), "truncated header"),
        (
            "truncated",
            good[..good.len() / 2].to_vec(),
            "length mismatch",
        ),
        (
            "trailing",
            [good.as_slice(), b"junk"].concat(),
            "length mismatch",
        ),
        ("yaml", CLEAN_VS.as_bytes().to_vec(), "not a mesh table"),
    ];
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    cases.push(("bit-flip", flipped, "checksum mismatch"));
    let mut version = good.clone();
    version[12..16].copy_from_slice(&3u32.to_le_bytes());
    cases.push((
        "version",
        version,
        "unsupported format version 3 (this reader supports versions 1 to 2)",
    ));
    let mut magic = good.clone();
    magic[..8].copy_from_slice(b"MESHTBX\0");
    cases.push(("magic", magic, "not a mesh table"));
    let mut count = good.clone();
    count[routes + 24..routes + 32].copy_from_slice(&u64::MAX.to_le_bytes());
    cases.push(("huge-count", with_checksum(count), "routes"));
    let mut length = good.clone();
    length[routes + 16..routes + 24].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    cases.push(("huge-length", with_checksum(length), "routes"));
    let mut misaligned = good.clone();
    let offset = u64::from_le_bytes(misaligned[routes + 8..routes + 16].try_into().unwrap());
    misaligned[routes + 8..routes + 16].copy_from_slice(&(offset + 4).to_le_bytes());
    cases.push(("misaligned", with_checksum(misaligned), "routes"));
    for (name, bytes, expected) in cases {
        let file = format!("{name}.mtbl");
        std::fs::write(dir.path().join(&file), &bytes).unwrap();
        // `route` takes policy paths too: a file without the magic is read as policy.
        let mut commands = vec![vec!["inspect", file.as_str()]];
        if bytes.starts_with(&mesh_table::format::MAGIC) {
            commands.push(vec!["route", file.as_str(), "--host", "reviews"]);
        }
        for args in commands {
            let out = meshc(dir.path(), &args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{name} {args:?}: {stderr}");
            assert!(
                stderr.contains("not a valid routing table: ") && stderr.contains(expected),
                "{name} {args:?}: {stderr}"
            );
            assert!(!stderr.contains("panicked"), "{name}: {stderr}");
            assert!(
                out.stdout.is_empty(),
                "{name}: nothing printed for a bad artifact"
            );
        }
    }
}

// More hostile policy input.

#[test]
fn regex_bombs_are_refused_before_any_automaton_is_built() {
    for (pattern, words) in [
        ("(a{1000}){1000}", "multiply past 1000"),
        ("((a{10}){10}){11}", "multiply past 1000"),
        ("(\\\\w{100}){100}", "multiply past 1000"),
        ("a{1001}", "above 1000"),
    ] {
        let vs = CLEAN_VS.replace(
            "  http:\n",
            &format!("  http:\n  - match:\n    - headers:\n        x-user:\n          regex: \"{pattern}\"\n    route:\n    - destination:\n        host: reviews\n"),
        );
        let dir = repo(&[("vs.yaml", &vs)]);
        let out = meshc(dir.path(), &["check", ".", "--output-format", "json"]);
        assert_eq!(out.status.code(), Some(1), "{pattern}: {}", stdout(&out));
        let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
        let diagnostics = v["diagnostics"].as_array().unwrap();
        assert_eq!(diagnostics.len(), 1, "{pattern}: {diagnostics:?}");
        assert_eq!(diagnostics[0]["code"], "MESH0314", "{pattern}");
        let message = diagnostics[0]["message"].as_str().unwrap();
        assert!(message.contains(words), "{pattern}: {message}");
        // `build` refuses too, and writes nothing.
        let out = meshc(dir.path(), &["build", ".", "-o", "t.mtbl"]);
        assert_eq!(out.status.code(), Some(1), "{pattern}");
        assert!(!dir.path().join("t.mtbl").exists(), "{pattern}");
    }
}

#[test]
fn a_hundred_megabyte_policy_file_gets_a_diagnostic() {
    // Real YAML this time (the sparse-file test above is all NUL bytes).
    let dir = repo(&[("vs.yaml", CLEAN_VS)]);
    let document = format!("{CLEAN_VS}---\n");
    let copies = (100 << 20) / document.len() + 1;
    std::fs::write(dir.path().join("huge.yaml"), document.repeat(copies)).unwrap();
    let out = meshc(dir.path(), &["check", ".", "--output-format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let diagnostics = v["diagnostics"].as_array().unwrap();
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    assert_eq!(diagnostics[0]["code"], "MESH0004");
    assert_eq!(diagnostics[0]["file"], "huge.yaml");
    // The other file is still checked.
    assert_eq!(v["summary"]["resources"], 2);
}

/// `meshc inspect big.mtbl | head`: a reader that goes away early ends meshc quietly (status 2,
/// as `check` when it cannot write its report), never with a panic.
#[test]
fn a_closed_stdout_ends_meshc_without_a_panic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).expect("dir");
    // 300 services of three routes: an inspect listing well over a pipe's 64 KiB buffer.
    for (name, text) in meshc::testgen::scale_repo(300) {
        std::fs::write(repo.join(name), text).expect("write");
    }
    let out = meshc(
        dir.path(),
        &["build", "repo", "--namespace", "default", "-o", "big.mtbl"],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshc"))
        .args(["inspect", "big.mtbl"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("meshc runs");
    // Read a little, then hang up, as `head -c 100` does.
    let mut reader = child.stdout.take().expect("stdout");
    let mut first = [0u8; 100];
    std::io::Read::read_exact(&mut reader, &mut first).expect("some output");
    drop(reader);
    let out = child.wait_with_output().expect("meshc ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(2), "{stderr}");
}
