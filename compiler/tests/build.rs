//! `meshc build`, `inspect` and `route`: the artifact is deterministic, refused on errors,
//! written atomically, and explains requests with the proxy's executor.

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

fn bookinfo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/bookinfo")
}

fn build_to(dir: &Path, inputs: &[&str], out: &str) -> Vec<u8> {
    let mut args = vec!["build"];
    args.extend_from_slice(inputs);
    args.extend_from_slice(&["-o", out]);
    let o = meshc(dir, &args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read(dir.join(out)).unwrap()
}

#[test]
fn same_input_same_bytes_whatever_the_file_order() {
    let src = bookinfo();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    // `a` holds the files as they are; `b` the same documents under other names, in other
    // directories, with comments and key order changed.
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, a.path().join(path.file_name().unwrap())).unwrap();
    }
    let texts: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    std::fs::create_dir_all(b.path().join("z/nested")).unwrap();
    for (i, text) in texts.iter().enumerate() {
        let mut docs: Vec<&str> = text.split("\n---\n").collect();
        docs.reverse();
        let shuffled = format!("# reordered copy\n{}", docs.join("\n---\n"));
        let name = if i % 2 == 0 {
            format!("z/nested/{i}-copy.yml")
        } else {
            format!("{i}-copy.yaml")
        };
        std::fs::write(b.path().join(name), shuffled).unwrap();
    }
    let one = build_to(a.path(), &["."], "t.mtbl");
    let two = build_to(b.path(), &["z", "."], "t.mtbl");
    assert_eq!(one, two, "artifacts differ");
    let again = build_to(a.path(), &["."], "t2.mtbl");
    assert_eq!(one, again);
}

#[test]
fn errors_refuse_the_build_and_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("vs.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: r\nspec:\n  hosts: [r]\n  http:\n  - retires: {attempts: 1}\n    route:\n    - destination: {host: r}\n",
    )
    .unwrap();
    // An older artifact stays as it was.
    std::fs::write(dir.path().join("out.mtbl"), b"previous").unwrap();
    let o = meshc(dir.path(), &["build", ".", "-o", "out.mtbl"]);
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("unknown field `retires`"), "{stderr}");
    assert!(stderr.contains("nothing was built"), "{stderr}");
    assert_eq!(
        std::fs::read(dir.path().join("out.mtbl")).unwrap(),
        b"previous"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn inspect_shows_header_and_routes_and_refuses_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let bookinfo = bookinfo();
    let bytes = build_to(dir.path(), &[bookinfo.to_str().unwrap()], "t.mtbl");
    let o = meshc(
        dir.path(),
        &["inspect", "t.mtbl", "--output-format", "json"],
    );
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["format_version"], mesh_table::format::FORMAT_VERSION);
    assert_eq!(v["size"], bytes.len());
    assert_eq!(v["content_hash"].as_str().unwrap().len(), 64);
    let hosts: Vec<&str> = v["virtual_hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        hosts,
        [
            "default/details",
            "default/productpage",
            "default/ratings",
            "default/reviews"
        ]
    );

    for (name, corrupt) in [
        ("truncated", bytes[..bytes.len() / 2].to_vec()),
        ("bit flip", {
            let mut b = bytes.clone();
            let at = b.len() - 10;
            b[at] ^= 0x40;
            b
        }),
        ("not a table", b"apiVersion: v1\n".to_vec()),
    ] {
        std::fs::write(dir.path().join("bad.mtbl"), &corrupt).unwrap();
        let o = meshc(dir.path(), &["inspect", "bad.mtbl"]);
        assert_eq!(o.status.code(), Some(1), "{name}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("not a valid routing table"),
            "{name}"
        );
    }
}

fn route(args: &[&str]) -> Value {
    let bookinfo = bookinfo();
    let mut all = vec![
        "route",
        bookinfo.to_str().unwrap(),
        "--output-format",
        "json",
    ];
    all.extend_from_slice(args);
    let o = meshc(Path::new(env!("CARGO_MANIFEST_DIR")), &all);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn route_explains_the_bookinfo_scenarios() {
    let jason = route(&["--host", "reviews", "--header", "end-user: jason"]);
    assert_eq!(jason["matched"], true);
    assert_eq!(jason["virtual_service"], "default/reviews");
    assert_eq!(jason["rule"], 0);
    assert_eq!(jason["rule_name"], "jason");
    assert_eq!(jason["action"], "route");
    assert_eq!(
        jason["destinations"],
        serde_json::json!([{"host": "reviews.default.svc.cluster.local", "subset": "v2", "port": 9080, "weight": 100}])
    );

    let ab = route(&[
        "--host",
        "reviews.default.svc.cluster.local:9080",
        "--header",
        "End-User: alice",
    ]);
    assert_eq!(ab["rule_name"], "signed-in-ab-test");
    let weights: Vec<(String, u64)> = ab["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["subset"].as_str().unwrap().to_owned(),
                d["weight"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(weights, [("v2".to_owned(), 50), ("v3".to_owned(), 50)]);

    let anonymous = route(&["--host", "reviews"]);
    assert_eq!(anonymous["rule_name"], "default");
    assert_eq!(anonymous["destinations"][0]["subset"], "v1");

    let delay = route(&["--host", "ratings", "--header", "end-user: jason"]);
    assert_eq!(
        delay["fault"],
        serde_json::json!({"delay_ms": 7000, "delay_percent": 100.0, "abort_status": null, "abort_percent": null})
    );

    let abort = route(&["--host", "ratings", "--header", "end-user: tester"]);
    assert_eq!(abort["fault"]["abort_status"], 500);
    assert_eq!(abort["fault"]["abort_percent"], 50.0);

    let retried = route(&["--host", "ratings", "--path", "/ratings/0"]);
    assert_eq!(
        retried["retries"],
        serde_json::json!({"attempts": 3, "per_try_timeout_ms": 2000, "retry_on": ["5xx", "connect-failure"]})
    );
    assert_eq!(retried["timeout_ms"], 10000);

    let unknown = route(&["--host", "nope.example.com"]);
    assert_eq!(unknown["matched"], false);
}
