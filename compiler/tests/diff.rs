//! `meshc diff` as reviewers and CI run it: semantic equality (a directory and its artifact, a
//! reformatted policy), each kind of change in the three output formats, route identity and
//! order, `--git REV` in a repository made by the test, and the error exits.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/diff")
        .join(name)
}

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

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("meshc exited normally")
}

/// A work directory holding `old/` (the base fixture) and `new/` (the base fixture with
/// `edits` applied to `routes.yaml` and `services.yaml`, each of which must apply).
struct Case {
    dir: tempfile::TempDir,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn edit(path: &Path, edits: &[(&str, &str)]) {
    let mut text = std::fs::read_to_string(path).unwrap();
    for (from, to) in edits {
        if text.contains(from) {
            text = text.replacen(from, to, 1);
        }
    }
    std::fs::write(path, text).unwrap();
}

impl Case {
    fn new(edits: &[(&str, &str)]) -> Case {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&fixture("base"), &dir.path().join("old"));
        copy_dir(&fixture("base"), &dir.path().join("new"));
        let before = read_all(&dir.path().join("new"));
        for (from, _) in edits {
            assert!(before.contains(from), "edit does not apply: {from}");
        }
        edit(&dir.path().join("new/routes.yaml"), edits);
        edit(&dir.path().join("new/services.yaml"), edits);
        Case { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn diff(&self, format: &str) -> Output {
        meshc(
            self.path(),
            &["diff", "old", "new", "--output-format", format],
        )
    }

    /// Runs all three formats; each must exit 1 (different). Returns (human, markdown, json).
    fn all_formats(&self) -> (String, String, Value) {
        let human = self.diff("human");
        assert_eq!(code(&human), 1, "human: {}", stderr(&human));
        let markdown = self.diff("markdown");
        assert_eq!(code(&markdown), 1, "markdown: {}", stderr(&markdown));
        let json = self.diff("json");
        assert_eq!(code(&json), 1, "json: {}", stderr(&json));
        let json: Value = serde_json::from_str(&stdout(&json)).expect("json output parses");
        assert_eq!(json["equal"], false);
        (stdout(&human), stdout(&markdown), json)
    }
}

fn read_all(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    text
}

/// The one route of `host` in the json output, by label.
fn json_route<'a>(json: &'a Value, host: &str, label: &str) -> &'a Value {
    json["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == host)
        .unwrap_or_else(|| panic!("host {host} in {json:#}"))["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["label"] == label)
        .unwrap_or_else(|| panic!("route {label} of {host} in {json:#}"))
}

fn json_change<'a>(route: &'a Value, field: &str) -> &'a Value {
    route["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == field)
        .unwrap_or_else(|| panic!("change of {field} in {route:#}"))
}

#[test]
fn a_directory_and_the_artifact_built_from_it_are_equal() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = dir.path().join("base.mtbl");
    let base = fixture("base");
    let build = meshc(
        dir.path(),
        &[
            "build",
            base.to_str().unwrap(),
            "-o",
            artifact.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&build), 0, "{}", stderr(&build));
    for format in ["human", "json", "markdown"] {
        for (old, new) in [
            (&base, &artifact),
            (&artifact, &base),
            (&artifact, &artifact),
        ] {
            let out = meshc(
                dir.path(),
                &[
                    "diff",
                    old.to_str().unwrap(),
                    new.to_str().unwrap(),
                    "--output-format",
                    format,
                ],
            );
            assert_eq!(code(&out), 0, "{format}: {}{}", stdout(&out), stderr(&out));
        }
    }
    let out = meshc(
        dir.path(),
        &[
            "diff",
            base.to_str().unwrap(),
            artifact.to_str().unwrap(),
            "--output-format",
            "json",
        ],
    );
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["equal"], true);
    assert_eq!(json["hosts"], Value::Array(Vec::new()));
    let human = meshc(
        dir.path(),
        &["diff", base.to_str().unwrap(), artifact.to_str().unwrap()],
    );
    assert!(
        stdout(&human).contains("no change in traffic behaviour"),
        "{}",
        stdout(&human)
    );
}

#[test]
fn the_same_behaviour_written_differently_is_equal() {
    // One file instead of two, other orders, flow style, weights 1:1, durations in ms.
    let out = meshc(
        &fixture(""),
        &["diff", "base", "reformatted", "--output-format", "markdown"],
    );
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("no change in traffic behaviour"));
}

#[test]
fn a_weight_shift_is_reported_in_every_format() {
    let case = Case::new(&[(
        "      weight: 50\n    - destination:\n        host: reviews\n        subset: v3\n      weight: 50",
        "      weight: 20\n    - destination:\n        host: reviews\n        subset: v3\n      weight: 80",
    )]);
    let (human, markdown, json) = case.all_formats();
    assert!(
        human.contains(
            "  ~ `signed-in-ab-test` (rule 1)\n      weights: reviews: v2 50%, v3 50% -> reviews: v2 20%, v3 80%\n"
        ),
        "{human}"
    );
    assert!(human.contains("routes: 1 changed"), "{human}");
    assert!(
        markdown.contains(
            "| ~ | `signed-in-ab-test` (rule 1) | weights | `reviews: v2 50%, v3 50%` | `reviews: v2 20%, v3 80%` |"
        ),
        "{markdown}"
    );
    let route = json_route(&json, "default/reviews", "`signed-in-ab-test` (rule 1)");
    assert_eq!(route["status"], "changed");
    let change = json_change(route, "weights");
    let percents = |side: &str| -> Vec<(String, f64)> {
        change[side]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["subset"].as_str().unwrap().to_owned(),
                    d["percent"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        percents("old"),
        [("v2".to_owned(), 50.0), ("v3".to_owned(), 50.0)]
    );
    assert_eq!(
        percents("new"),
        [("v2".to_owned(), 20.0), ("v3".to_owned(), 80.0)]
    );
    assert_eq!(json["summary"]["routes_changed"], 1);
    // Nothing else changed.
    assert_eq!(json["hosts"].as_array().unwrap().len(), 1);
    assert_eq!(json["clusters"], Value::Array(Vec::new()));
}

#[test]
fn an_added_route_is_reported_in_every_format() {
    let case = Case::new(&[(
        "  - name: signed-in-ab-test\n",
        "  - name: beta\n    match:\n    - headers:\n        end-user:\n          exact: beta\n    route:\n    - destination:\n        host: reviews\n        subset: v3\n  - name: signed-in-ab-test\n",
    )]);
    let (human, markdown, json) = case.all_formats();
    assert!(
        human.contains("  + `beta` (rule 1) at position 2: end-user=beta -> reviews: v3 100%\n"),
        "{human}"
    );
    // The routes after it keep their order: none of them moved.
    assert!(!human.contains("order:"), "{human}");
    assert!(human.contains("routes: 1 added\n"), "{human}");
    assert!(
        markdown.contains(
            "| + | `beta` (rule 1) | added at position 2 | | `end-user=beta -> reviews: v3 100%` |"
        ),
        "{markdown}"
    );
    let route = json_route(&json, "default/reviews", "`beta` (rule 1)");
    assert_eq!(route["status"], "added");
    assert_eq!(route["new_position"], 2);
    assert_eq!(
        route["new"]["match"],
        serde_json::json!([["end-user=beta"]])
    );
    assert_eq!(route["new"]["weights"][0]["subset"], "v3");
    assert_eq!(json["summary"]["routes_added"], 1);
    assert_eq!(json["summary"]["routes_changed"], 0);
    assert_eq!(json["summary"]["routes_moved"], 0);
}

#[test]
fn a_changed_fault_is_reported_in_every_format() {
    let case = Case::new(&[
        (
            "value: 50.0\n        httpStatus: 500",
            "value: 10.0\n        httpStatus: 503",
        ),
        ("fixedDelay: 7s", "fixedDelay: 2500ms"),
    ]);
    let (human, markdown, json) = case.all_formats();
    assert!(
        human.contains(
            "  ~ `jason-delay` (rule 0)\n      fault delay: 7s for 100% -> 2.5s for 100%\n"
        ),
        "{human}"
    );
    assert!(
        human.contains(
            "  ~ `tester-abort` (rule 1)\n      fault abort: HTTP 500 for 50% -> HTTP 503 for 10%\n"
        ),
        "{human}"
    );
    assert!(
        markdown.contains("| ~ | `tester-abort` (rule 1) | fault abort | `HTTP 500 for 50%` | `HTTP 503 for 10%` |"),
        "{markdown}"
    );
    assert!(
        markdown.contains(
            "| ~ | `jason-delay` (rule 0) | fault delay | `7s for 100%` | `2.5s for 100%` |"
        ),
        "{markdown}"
    );
    let abort = json_change(
        json_route(&json, "default/ratings", "`tester-abort` (rule 1)"),
        "fault abort",
    );
    assert_eq!(
        abort["old"],
        serde_json::json!({"abort": "HTTP 500", "percent": 50.0})
    );
    assert_eq!(
        abort["new"],
        serde_json::json!({"abort": "HTTP 503", "percent": 10.0})
    );
    let delay = json_change(
        json_route(&json, "default/ratings", "`jason-delay` (rule 0)"),
        "fault delay",
    );
    assert_eq!(delay["old"]["delay_ms"], 7000);
    assert_eq!(delay["new"]["delay_ms"], 2500);
}

#[test]
fn changed_retries_and_timeouts_are_reported_in_every_format() {
    let case = Case::new(&[
        (
            "attempts: 3\n      perTryTimeout: 2s\n      retryOn: 5xx,connect-failure",
            "attempts: 5\n      perTryTimeout: 1s\n      retryOn: gateway-error,connect-failure",
        ),
        ("timeout: 10s", "timeout: 4s"),
    ]);
    let (human, markdown, json) = case.all_formats();
    assert!(
        human.contains(
            "  ~ `default` (rule 2)\n      timeout: 10s -> 4s\n      retries: 3 attempts, 2s per try on 5xx,connect-failure -> 5 attempts, 1s per try on connect-failure,gateway-error\n"
        ),
        "{human}"
    );
    assert!(
        markdown.contains(
            "| ~ | `default` (rule 2) | retries | `3 attempts, 2s per try on 5xx,connect-failure` | `5 attempts, 1s per try on connect-failure,gateway-error` |"
        ),
        "{markdown}"
    );
    assert!(
        markdown.contains("| ~ | `default` (rule 2) | timeout | `10s` | `4s` |"),
        "{markdown}"
    );
    let route = json_route(&json, "default/ratings", "`default` (rule 2)");
    let retries = json_change(route, "retries");
    assert_eq!(retries["old"]["attempts"], 3);
    assert_eq!(retries["new"]["attempts"], 5);
    assert_eq!(retries["new"]["per_try_timeout_ms"], 1000);
    assert_eq!(
        retries["new"]["retry_on"],
        serde_json::json!(["connect-failure", "gateway-error"])
    );
    assert_eq!(json_change(route, "timeout")["new"], 4000);
}

#[test]
fn reordered_routes_are_reported_as_moved() {
    // `jason` moves below the broader A/B rule: first match now sends jason to the split.
    let jason = "  - name: jason\n    match:\n    - headers:\n        end-user:\n          exact: jason\n    route:\n    - destination:\n        host: reviews\n        subset: v2\n";
    let case = Case::new(&[
        (jason, ""),
        (
            "  - match:\n    - uri:\n        prefix: /health\n",
            &format!("{jason}  - match:\n    - uri:\n        prefix: /health\n"),
        ),
    ]);
    let (human, markdown, json) = case.all_formats();
    assert!(
        human.contains("  > `jason` (rule 1)\n      order: position 1 -> 2 (first match wins)\n"),
        "{human}"
    );
    // Only the route that moved is reported, not the one it moved past.
    assert!(!human.contains("signed-in-ab-test"), "{human}");
    assert!(
        markdown.contains(
            "| > | `jason` (rule 1) | order (first match wins) | position 1 | position 2 |"
        ),
        "{markdown}"
    );
    let route = json_route(&json, "default/reviews", "`jason` (rule 1)");
    assert_eq!(route["status"], "moved");
    assert_eq!(route["old_position"], 1);
    assert_eq!(route["new_position"], 2);
    assert_eq!(json["summary"]["routes_moved"], 1);
}

#[test]
fn unnamed_routes_are_identified_by_match_then_by_rule_index() {
    // The unnamed /health route keeps its match and changes its destination: the same route.
    let case = Case::new(&[(
        "        prefix: /health\n    route:\n    - destination:\n        host: reviews\n        subset: v1",
        "        prefix: /health\n    route:\n    - destination:\n        host: reviews\n        subset: v3",
    )]);
    let (human, _, _) = case.all_formats();
    assert!(
        human.contains("  ~ rule 2\n      weights: reviews: v1 100% -> reviews: v3 100%\n"),
        "{human}"
    );
    // Its match changes at the same rule index: still the same route, with a changed match.
    let case = Case::new(&[("prefix: /health", "prefix: /healthz")]);
    let (human, _, json) = case.all_formats();
    assert!(
        human.contains("  ~ rule 2\n      match: uri^=/health -> uri^=/healthz\n"),
        "{human}"
    );
    assert_eq!(json["summary"]["routes_added"], 0);
    assert_eq!(json["summary"]["routes_removed"], 0);
}

#[test]
fn hosts_and_clusters_added_removed_and_changed() {
    let case = Case::new(&[
        ("simple: ROUND_ROBIN", "simple: LEAST_REQUEST"),
        ("      http: 19085\n", "      http: 19086\n"),
    ]);
    let (human, markdown, json) = case.all_formats();
    assert!(
        human.contains(
            "  ~ outbound|9080|v1|ratings.default.svc.cluster.local\n      endpoints: 127.0.0.1:19085 {version=v1} -> 127.0.0.1:19086 {version=v1}\n"
        ),
        "{human}"
    );
    assert!(
        human.contains("      load balancer: round robin -> least request\n"),
        "{human}"
    );
    assert!(
        markdown.contains(
            "| ~ | `outbound\\|9080\\|v2\\|reviews.default.svc.cluster.local` | load balancer | `round robin` | `least request` |"
        ),
        "{markdown}"
    );
    assert_eq!(json["summary"]["clusters_changed"], 4);
    assert_eq!(json["hosts"], Value::Array(Vec::new()));

    // Removing the ratings VirtualService removes its host and its routes.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("base"), &dir.path().join("old"));
    copy_dir(&fixture("base"), &dir.path().join("new"));
    let routes = std::fs::read_to_string(dir.path().join("new/routes.yaml")).unwrap();
    let cut = routes.find("---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: ratings").unwrap();
    std::fs::write(dir.path().join("new/routes.yaml"), &routes[..cut]).unwrap();
    let out = meshc(dir.path(), &["diff", "old", "new"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let human = stdout(&out);
    assert!(
        human.contains("- ratings (VirtualService default/ratings): removed\n"),
        "{human}"
    );
    assert!(
        human.contains("  - `tester-abort` (rule 1) at position 2: end-user=tester -> ratings: v1 100%; abort HTTP 500 for 50%\n"),
        "{human}"
    );
    assert!(
        human.contains("hosts: 1 removed; routes: 3 removed"),
        "{human}"
    );
    // The other direction adds them.
    let out = meshc(
        dir.path(),
        &["diff", "new", "old", "--output-format", "json"],
    );
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["summary"]["hosts_added"], 1);
    assert_eq!(json["summary"]["routes_added"], 3);
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=meshc",
            "-c",
            "user.email=meshc@example.invalid",
        ])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
}

#[test]
fn git_compares_the_working_tree_with_a_revision() {
    let repo = tempfile::tempdir().unwrap();
    let policies = repo.path().join("policies");
    copy_dir(&fixture("base"), &policies);
    std::fs::write(repo.path().join("README"), "not policy\n").unwrap();
    git(repo.path(), &["init", "-q"]);
    git(repo.path(), &["add", "."]);
    git(repo.path(), &["commit", "-q", "-m", "base"]);

    // A clean working tree equals HEAD, from the root and from inside the directory.
    let out = meshc(repo.path(), &["diff", "--git", "HEAD", "policies"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("HEAD:policies -> policies: no change"),
        "{}",
        stdout(&out)
    );
    let out = meshc(&policies, &["diff", "--git", "HEAD~0"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));

    // An uncommitted weight shift, and a new file that did not exist at HEAD.
    edit(
        &policies.join("routes.yaml"),
        &[("weight: 50", "weight: 30"), ("weight: 50", "weight: 70")],
    );
    let out = meshc(
        repo.path(),
        &[
            "diff",
            "--git",
            "HEAD",
            "policies",
            "--output-format",
            "markdown",
        ],
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stdout(&out)
            .contains("| weights | `reviews: v2 50%, v3 50%` | `reviews: v2 30%, v3 70%` |"),
        "{}",
        stdout(&out)
    );
    // Committing it makes HEAD equal again and HEAD~1 the old side.
    git(repo.path(), &["commit", "-q", "-am", "shift"]);
    let out = meshc(repo.path(), &["diff", "--git", "HEAD", "policies"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let out = meshc(
        &policies,
        &["diff", "--git", "HEAD~1", "--output-format", "json"],
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["old"], "HEAD~1:.");
    assert_eq!(json["summary"]["routes_changed"], 1);

    // A directory that is new since the revision: everything in it is added.
    let extra = repo.path().join("extra");
    copy_dir(&fixture("base"), &extra);
    let out = meshc(
        repo.path(),
        &["diff", "--git", "HEAD", "extra", "--output-format", "json"],
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["summary"]["hosts_added"], 2);

    // An unknown revision is an error, not a difference.
    let out = meshc(
        repo.path(),
        &["diff", "--git", "no-such-branch", "policies"],
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("unknown git revision `no-such-branch`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn git_outside_a_repository_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("base"), &dir.path().join("policies"));
    // GIT_CEILING_DIRECTORIES keeps git from finding a repository above the temporary directory.
    let out = Command::new(env!("CARGO_BIN_EXE_meshc"))
        .args(["diff", "--git", "HEAD", "policies"])
        .current_dir(dir.path())
        .env("GIT_CEILING_DIRECTORIES", dir.path().parent().unwrap())
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("is not inside a git repository"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_input_exits_2_with_a_message() {
    let case = Case::new(&[(
        "subset: v3\n      weight: 50",
        "subset: v9\n      weight: 50",
    )]);
    // A policy error on one side: its diagnostics, and exit 2 (not "different").
    let out = case.diff("human");
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("v9"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    // A path that does not exist.
    let out = meshc(case.path(), &["diff", "old", "missing"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("missing"), "{}", stderr(&out));
    // A file that claims to be an artifact but is not one.
    let mut bytes = b"MESHTBL\0".to_vec();
    bytes.extend_from_slice(&[0xff; 100]);
    std::fs::write(case.path().join("broken.mtbl"), bytes).unwrap();
    let out = meshc(case.path(), &["diff", "old", "broken.mtbl"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("not a valid routing table"),
        "{}",
        stderr(&out)
    );
    // One side only.
    let out = meshc(case.path(), &["diff", "old"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("OLD and NEW"), "{}", stderr(&out));
}

#[test]
fn output_of_a_combined_change() {
    let case = Case::new(&[
        (
            "      weight: 50\n    - destination:\n        host: reviews\n        subset: v3\n      weight: 50",
            "      weight: 10\n    - destination:\n        host: reviews\n        subset: v3\n      weight: 90",
        ),
        (
            "value: 50.0\n        httpStatus: 500",
            "value: 100.0\n        httpStatus: 500",
        ),
        (
            "retries:\n      attempts: 3\n      perTryTimeout: 2s\n      retryOn: 5xx,connect-failure",
            "retries:\n      attempts: 0",
        ),
        ("simple: ROUND_ROBIN", "simple: RANDOM"),
    ]);
    let (human, markdown, json) = case.all_formats();
    insta::with_settings!({ snapshot_path => "snapshots/diff", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("combined-human", human);
        insta::assert_snapshot!("combined-markdown", markdown);
        insta::assert_snapshot!("combined-json", serde_json::to_string_pretty(&json).unwrap());
    });
}
