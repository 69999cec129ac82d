//! `meshc deploy` as a pipeline runs it, against the in-repo fake API server
//! (`tests/fake-apiserver`): no real kube-apiserver can be installed where these tests run.
//! Each test starts its own fake server on loopback and points a kubeconfig at it; the
//! server records every request, so the tests assert what was sent (method, path, content
//! type, field manager, body) and what the cluster holds afterwards.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fake_apiserver::base64::Engine;
use fake_apiserver::base64::engine::general_purpose::STANDARD as BASE64;
use fake_apiserver::{FakeApiServer, Field, FieldValue, RecordedRequest};
use serde_json::{Value, json};

const NS: &str = "mesh";
const NAME: &str = "mesh-routes";
const KEY: &str = "routes.mtbl";

struct Cluster {
    server: FakeApiServer,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

fn cluster() -> Cluster {
    let server =
        FakeApiServer::with_namespaces(&["default", NS]).expect("the fake API server starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig()).expect("write kubeconfig");
    Cluster {
        server,
        dir,
        kubeconfig,
    }
}

/// Runs meshc in `dir` with a fixed build time and no inherited kubeconfig.
fn meshc_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_meshc"));
    command
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("SOURCE_DATE_EPOCH", "1790000000")
        .env_remove("KUBECONFIG")
        .env("HOME", dir);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("meshc runs")
}

impl Cluster {
    /// `meshc deploy <args> --namespace mesh --name mesh-routes --kubeconfig <fake>`.
    fn deploy(&self, args: &[&str]) -> Output {
        let kubeconfig = self.kubeconfig.display().to_string();
        let mut all = vec!["deploy"];
        all.extend_from_slice(args);
        all.extend_from_slice(&[
            "--namespace",
            NS,
            "--name",
            NAME,
            "--kubeconfig",
            &kubeconfig,
        ]);
        meshc_in(self.dir.path(), &all, &[])
    }

    /// A policy repo (outside any git repository) whose `reviews` route has `timeout`.
    fn repo(&self, label: &str, timeout: &str) -> PathBuf {
        let repo = self.dir.path().join(format!("policy-{label}"));
        std::fs::create_dir_all(&repo).expect("repo dir");
        std::fs::write(repo.join("reviews.yaml"), policy(timeout)).expect("write policy");
        repo
    }

    fn table(&self, name: &str) -> Vec<u8> {
        self.server
            .config_map(NS, name)
            .and_then(|cm| cm.bytes(KEY).map(<[u8]>::to_vec))
            .unwrap_or_else(|| panic!("ConfigMap {NS}/{name} holds {KEY}"))
    }

    fn revisions(&self) -> Vec<String> {
        self.server
            .config_maps(NS)
            .into_iter()
            .filter(|cm| cm.name.starts_with(&format!("{NAME}-rev-")))
            .map(|cm| cm.name)
            .collect()
    }
}

fn policy(timeout: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - timeout: {timeout}
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
"
    )
}

/// The artifact `meshc build` writes for `repo`, and its SHA-256.
fn build(repo: &Path, namespace: &str) -> (Vec<u8>, String) {
    let out = repo.with_extension("mtbl");
    let output = meshc_in(
        repo,
        &[
            "build",
            &repo.display().to_string(),
            "--namespace",
            namespace,
            "-o",
            &out.display().to_string(),
        ],
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let bytes = std::fs::read(&out).expect("artifact");
    let hash = meshc::sha256::hex(&meshc::sha256::sha256(&bytes));
    (bytes, hash)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn annotation(cm: &fake_apiserver::Stored, key: &str) -> String {
    cm.annotation(key)
        .unwrap_or_else(|| panic!("{} has no annotation {key}", cm.name))
        .to_owned()
}

fn label(cm: &fake_apiserver::Stored, key: &str) -> Option<String> {
    match cm.fields.get(&Field::Label(key.to_owned())) {
        Some(FieldValue::Text(v)) => Some(v.clone()),
        _ => None,
    }
}

fn writes(requests: &[RecordedRequest]) -> Vec<&RecordedRequest> {
    requests.iter().filter(|r| r.method != "GET").collect()
}

#[test]
fn deploy_applies_the_mounted_config_map_and_an_immutable_revision() {
    let c = cluster();
    let repo = c.repo("a", "3s");
    let (bytes, hash) = build(&repo, NS);
    let output = c.deploy(&[&repo.display().to_string()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let revision = format!("{NAME}-rev-{}", &hash[..10]);
    assert!(
        stdout(&output).contains(&format!("deployed {NS}/{NAME} = {revision} (deploy #1)")),
        "{}",
        stdout(&output)
    );

    // What the cluster holds.
    assert_eq!(c.table(NAME), bytes);
    assert_eq!(c.table(&revision), bytes);
    let mounted = c.server.config_map(NS, NAME).expect("mounted ConfigMap");
    let copy = c.server.config_map(NS, &revision).expect("revision");
    assert_eq!(
        copy.fields.get(&Field::Immutable),
        Some(&FieldValue::Bool(true))
    );
    assert_eq!(
        mounted.fields.get(&Field::Immutable),
        None,
        "the mounted ConfigMap must stay mutable"
    );
    for cm in [&mounted, &copy] {
        assert_eq!(
            label(cm, "app.kubernetes.io/managed-by").as_deref(),
            Some("meshc")
        );
        assert_eq!(label(cm, "meshc.dev/table").as_deref(), Some(NAME));
        assert_eq!(annotation(cm, "meshc.dev/artifact-sha256"), hash);
        assert_eq!(
            annotation(cm, "meshc.dev/format-version"),
            mesh_table::format::FORMAT_VERSION.to_string()
        );
        assert_eq!(annotation(cm, "meshc.dev/built-at"), "2026-09-21T14:13:20Z");
        assert_eq!(annotation(cm, "meshc.dev/revision"), revision);
        assert_eq!(annotation(cm, "meshc.dev/sequence"), "1");
        assert!(annotation(cm, "meshc.dev/content-hash").starts_with("sha256:"));
        // Not in a git repository: no commit to name.
        assert_eq!(cm.annotation("meshc.dev/git-commit"), None);
    }
    assert_eq!(
        label(&mounted, "meshc.dev/role").as_deref(),
        Some("current")
    );
    assert_eq!(label(&copy, "meshc.dev/role").as_deref(), Some("revision"));
    // The content hash is the one `meshc inspect` (and mesh-proxy's /table) reports.
    let table_file = repo.with_extension("mtbl");
    let inspect = meshc_in(
        c.dir.path(),
        &[
            "inspect",
            &table_file.display().to_string(),
            "--output-format",
            "json",
        ],
        &[],
    );
    assert!(
        stdout(&inspect)
            .contains(annotation(&mounted, "meshc.dev/content-hash").trim_start_matches("sha256:")),
        "{}",
        stdout(&inspect)
    );

    // What was sent: read the mounted ConfigMap, apply the revision, apply the mounted one,
    // list the revisions to collect old ones.
    let requests = c.server.requests();
    let summary: Vec<(String, String)> = requests
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    let cms = format!("/api/v1/namespaces/{NS}/configmaps");
    assert_eq!(
        summary,
        vec![
            ("GET".to_owned(), format!("{cms}/{NAME}")),
            ("PATCH".to_owned(), format!("{cms}/{revision}")),
            ("PATCH".to_owned(), format!("{cms}/{NAME}")),
            ("GET".to_owned(), cms.clone()),
        ]
    );
    for patch in requests.iter().filter(|r| r.method == "PATCH") {
        assert_eq!(
            patch.content_type.as_deref(),
            Some("application/apply-patch+yaml")
        );
        assert_eq!(patch.query_value("fieldManager"), Some("meshc"));
        assert_eq!(patch.query_value("force"), Some("true"));
        assert_eq!(patch.authorization.as_deref(), Some("Bearer fake-token"));
        let body = patch.body_json().expect("a JSON body");
        assert_eq!(body["apiVersion"], json!("v1"));
        assert_eq!(body["kind"], json!("ConfigMap"));
        assert_eq!(body["metadata"]["namespace"], json!(NS));
        let sent = BASE64
            .decode(
                body["binaryData"][KEY]
                    .as_str()
                    .expect("binaryData is base64 text"),
            )
            .expect("valid base64");
        assert_eq!(sent, bytes);
        assert!(body.get("data").is_none());
    }
    let list = &requests[3];
    assert_eq!(
        list.query_value("labelSelector"),
        Some(
            format!(
                "app.kubernetes.io/managed-by=meshc,meshc.dev/table={NAME},meshc.dev/role=revision"
            )
            .as_str()
        )
    );
    // Field ownership is meshc's, as server-side apply records it.
    let owners = &mounted.owners[&Field::BinaryData(KEY.to_owned())];
    assert_eq!(owners.iter().collect::<Vec<_>>(), vec!["meshc"]);
}

#[test]
fn redeploying_a_changed_policy_updates_the_mounted_config_map_and_adds_a_revision() {
    let c = cluster();
    let first = c.repo("a", "3s");
    let second = c.repo("b", "5s");
    let (bytes_a, hash_a) = build(&first, NS);
    let (bytes_b, hash_b) = build(&second, NS);
    assert_ne!(bytes_a, bytes_b);
    assert!(c.deploy(&[&first.display().to_string()]).status.success());
    let output = c.deploy(&[&second.display().to_string()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("(deploy #2)"),
        "{}",
        stdout(&output)
    );
    assert_eq!(c.table(NAME), bytes_b);
    let mut expected = vec![
        format!("{NAME}-rev-{}", &hash_a[..10]),
        format!("{NAME}-rev-{}", &hash_b[..10]),
    ];
    expected.sort();
    assert_eq!(c.revisions(), expected);
    let mounted = c.server.config_map(NS, NAME).expect("mounted");
    assert_eq!(
        annotation(&mounted, "meshc.dev/revision"),
        format!("{NAME}-rev-{}", &hash_b[..10])
    );
    assert_eq!(annotation(&mounted, "meshc.dev/sequence"), "2");
    assert_eq!(c.table(&format!("{NAME}-rev-{}", &hash_a[..10])), bytes_a);
}

#[test]
fn deploying_the_same_table_twice_is_a_no_op() {
    let c = cluster();
    let repo = c.repo("a", "3s");
    assert!(c.deploy(&[&repo.display().to_string()]).status.success());
    let version = c.server.resource_version();
    c.server.clear_requests();
    let output = c.deploy(&[&repo.display().to_string()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("unchanged"), "{}", stdout(&output));
    let requests = c.server.requests();
    assert_eq!(
        requests.len(),
        1,
        "only the mounted ConfigMap is read: {requests:?}"
    );
    assert_eq!(requests[0].method, "GET");
    assert_eq!(c.server.resource_version(), version, "nothing was written");
    assert_eq!(c.revisions().len(), 1);
}

#[test]
fn rollback_restores_the_previous_bytes_and_history_shows_it() {
    let c = cluster();
    let first = c.repo("a", "3s");
    let second = c.repo("b", "5s");
    let (bytes_a, hash_a) = build(&first, NS);
    let (bytes_b, hash_b) = build(&second, NS);
    let rev_a = format!("{NAME}-rev-{}", &hash_a[..10]);
    let rev_b = format!("{NAME}-rev-{}", &hash_b[..10]);
    assert!(c.deploy(&[&first.display().to_string()]).status.success());
    assert!(c.deploy(&[&second.display().to_string()]).status.success());

    let output = c.deploy(&["--rollback"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output).trim(),
        format!("rolled back {NS}/{NAME} from {rev_b} to {rev_a} (deploy #3)")
    );
    assert_eq!(c.table(NAME), bytes_a);
    let mounted = c.server.config_map(NS, NAME).expect("mounted");
    assert_eq!(annotation(&mounted, "meshc.dev/revision"), rev_a);
    assert_eq!(annotation(&mounted, "meshc.dev/rolled-back-from"), rev_b);
    assert_eq!(annotation(&mounted, "meshc.dev/artifact-sha256"), hash_a);
    // The revision itself is untouched in content (immutable) and moved forward in order.
    let copy = c.server.config_map(NS, &rev_a).expect("revision a");
    assert_eq!(annotation(&copy, "meshc.dev/sequence"), "3");
    assert_eq!(c.table(&rev_a), bytes_a);

    let history = c.deploy(&["--history"]);
    assert!(history.status.success(), "{}", stderr(&history));
    let text = stdout(&history);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].contains("REVISION") && lines[0].contains("GIT COMMIT"),
        "{text}"
    );
    assert!(
        lines[1].starts_with('*') && lines[1].contains(&rev_a) && lines[1].contains("#3"),
        "{text}"
    );
    assert!(
        lines[2].contains(&rev_b) && lines[2].contains("#2"),
        "{text}"
    );

    // `previous` again goes back to b, as `kubectl rollout undo` does.
    assert!(c.deploy(&["--rollback", "previous"]).status.success());
    assert_eq!(c.table(NAME), bytes_b);
    // By hash prefix.
    let output = c.deploy(&["--rollback", &hash_a[..6]]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(c.table(NAME), bytes_a);
    // Rolling back to what is already current is refused, and writes nothing.
    c.server.clear_requests();
    let output = c.deploy(&["--rollback", &rev_a]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("already holds revision"),
        "{}",
        stderr(&output)
    );
    assert!(writes(&c.server.requests()).is_empty());
    // An unknown revision is a clear error.
    let output = c.deploy(&["--rollback", "ffffffff"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no kept revision"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn rollback_refuses_a_revision_whose_bytes_do_not_load() {
    let c = cluster();
    let repo = c.repo("a", "3s");
    assert!(c.deploy(&[&repo.display().to_string()]).status.success());
    // A revision someone wrote by hand, with the right labels and a newer sequence, holding
    // bytes that are not a table.
    let forged = format!("{NAME}-rev-0123456789");
    c.server
        .create(
            NS,
            &json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": forged, "labels": {
                    "app.kubernetes.io/managed-by": "meshc", "meshc.dev/table": NAME,
                    "meshc.dev/role": "revision"},
                    "annotations": {"meshc.dev/sequence": "0"}},
                "binaryData": {KEY: BASE64.encode(b"not a routing table")},
                "immutable": true}),
            "kubectl",
        )
        .expect("seed");
    let before = c.table(NAME);
    c.server.clear_requests();
    let output = c.deploy(&["--rollback"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&format!(
            "revision {forged} does not hold a valid routing table"
        )),
        "{}",
        stderr(&output)
    );
    assert!(writes(&c.server.requests()).is_empty());
    assert_eq!(c.table(NAME), before);
}

#[test]
fn old_revisions_are_deleted_beyond_keep() {
    let c = cluster();
    let mut hashes = Vec::new();
    for (i, timeout) in ["1s", "2s", "3s", "4s"].iter().enumerate() {
        let repo = c.repo(&i.to_string(), timeout);
        hashes.push(build(&repo, NS).1);
        let output = c.deploy(&[&repo.display().to_string(), "--keep", "2"]);
        assert!(output.status.success(), "{}", stderr(&output));
        if i >= 2 {
            let deleted = format!("deleted {NS}/{NAME}-rev-{}", &hashes[i - 2][..10]);
            assert!(stdout(&output).contains(&deleted), "{}", stdout(&output));
        }
    }
    let mut expected: Vec<String> = hashes[2..]
        .iter()
        .map(|h| format!("{NAME}-rev-{}", &h[..10]))
        .collect();
    expected.sort();
    assert_eq!(c.revisions(), expected);
    let deletes: Vec<RecordedRequest> = c
        .server
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 2);
    // After a rollback the current revision is the newest: collection never deletes it.
    assert!(c.deploy(&["--rollback"]).status.success());
    let repo = c.repo("again", "4s");
    let output = c.deploy(&[&repo.display().to_string(), "--keep", "1"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        c.revisions(),
        vec![format!("{NAME}-rev-{}", &hashes[3][..10])]
    );
}

#[test]
fn a_failing_check_refuses_to_deploy_and_contacts_nothing() {
    let c = cluster();
    let repo = c.dir.path().join("broken");
    std::fs::create_dir_all(&repo).expect("dir");
    std::fs::write(
        repo.join("vs.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\nspec:\n  hosts:\n  - reviews\n  http:\n  - retires:\n      attempts: 3\n",
    )
    .expect("write");
    let output = c.deploy(&[&repo.display().to_string()]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("MESH0101") || err.contains("unknown field"),
        "{err}"
    );
    assert!(err.contains("nothing was deployed"), "{err}");
    assert!(c.server.requests().is_empty(), "{:?}", c.server.requests());
}

#[test]
fn a_table_over_the_config_map_limit_is_refused_with_what_to_do() {
    let c = cluster();
    let repo = c.dir.path().join("big");
    std::fs::create_dir_all(&repo).expect("dir");
    // 700 services of three routes each: well over 1 MiB.
    for (name, text) in meshc::testgen::scale_repo(700) {
        std::fs::write(repo.join(name), text).expect("write");
    }
    // The generated services are in `default` (elsewhere their hosts are undeclared).
    let kubeconfig = c.kubeconfig.display().to_string();
    let path = repo.display().to_string();
    let mut args = vec![
        "deploy",
        &path,
        "--namespace",
        "default",
        "--name",
        NAME,
        "--kubeconfig",
        &kubeconfig,
    ];
    let output = meshc_in(c.dir.path(), &args, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("over the 1048576 bytes (1 MiB) a ConfigMap may hold"),
        "{err}"
    );
    assert!(err.contains("one ConfigMap per namespace"), "{err}");
    assert!(err.contains("(2100 routes)"), "{err}");
    assert!(c.server.requests().is_empty());
    args.push("--dry-run");
    let output = meshc_in(c.dir.path(), &args, &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).is_empty());
}

#[test]
fn dry_run_prints_the_config_maps_and_contacts_nothing() {
    let c = cluster();
    let repo = c.repo("a", "3s");
    let (bytes, hash) = build(&repo, NS);
    let output = c.deploy(&[&repo.display().to_string(), "--dry-run"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(c.server.requests().is_empty());
    assert!(
        stderr(&output).contains("nothing was sent"),
        "{}",
        stderr(&output)
    );
    let text = stdout(&output);
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text).expect("the output is YAML");
    assert_eq!(documents.len(), 2, "{text}");
    let revision = format!("{NAME}-rev-{}", &hash[..10]);
    for (doc, name, role) in [
        (&documents[0], revision.as_str(), "revision"),
        (&documents[1], NAME, "current"),
    ] {
        assert_eq!(doc["apiVersion"], json!("v1"));
        assert_eq!(doc["kind"], json!("ConfigMap"));
        assert_eq!(doc["metadata"]["name"], json!(name));
        assert_eq!(doc["metadata"]["namespace"], json!(NS));
        assert_eq!(doc["metadata"]["labels"]["meshc.dev/role"], json!(role));
        let annotations = &doc["metadata"]["annotations"];
        assert_eq!(annotations["meshc.dev/artifact-sha256"], json!(hash));
        assert_eq!(
            annotations["meshc.dev/format-version"],
            json!(mesh_table::format::FORMAT_VERSION.to_string())
        );
        assert_eq!(
            annotations["meshc.dev/built-at"],
            json!("2026-09-21T14:13:20Z")
        );
        assert_eq!(annotations["meshc.dev/revision"], json!(revision));
        let encoded = doc["binaryData"][KEY]
            .as_str()
            .expect("binaryData is base64 text");
        assert_eq!(BASE64.decode(encoded).expect("base64"), bytes);
    }
    assert_eq!(documents[0]["immutable"], json!(true));
    assert!(documents[1].get("immutable").is_none());
    assert!(
        text.starts_with("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n"),
        "{text}"
    );
    // The same inputs give the same output.
    let again = c.deploy(&[&repo.display().to_string(), "--dry-run"]);
    assert_eq!(stdout(&again), text);
}

#[test]
fn the_git_commit_is_recorded_and_marked_dirty() {
    let c = cluster();
    let repo = c.repo("git", "3s");
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .args([
                "-c",
                "user.name=meshc",
                "-c",
                "user.email=meshc@example.invalid",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(&repo)
            .output()
            .expect("git runs");
        assert!(output.status.success(), "git {args:?}: {}", stderr(&output));
        stdout(&output).trim().to_owned()
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "policy"]);
    let head = git(&["rev-parse", "HEAD"]);
    let output = c.deploy(&[&repo.display().to_string(), "--dry-run"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let documents: Vec<Value> = serde_saphyr::from_multiple(&stdout(&output)).expect("YAML");
    assert_eq!(
        documents[1]["metadata"]["annotations"]["meshc.dev/git-commit"],
        json!(head)
    );
    std::fs::write(repo.join("reviews.yaml"), policy("4s")).expect("edit");
    let output = c.deploy(&[&repo.display().to_string()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(&format!("commit {head}-dirty")),
        "{}",
        stdout(&output)
    );
    let mounted = c.server.config_map(NS, NAME).expect("mounted");
    assert_eq!(
        annotation(&mounted, "meshc.dev/git-commit"),
        format!("{head}-dirty")
    );
}

#[test]
fn cluster_errors_are_reported_clearly() {
    let c = cluster();
    let repo = c.repo("a", "3s");
    let path = repo.display().to_string();
    let kubeconfig = c.kubeconfig.display().to_string();

    // A namespace the cluster does not have.
    let output = meshc_in(
        c.dir.path(),
        &[
            "deploy",
            &path,
            "--namespace",
            "nope",
            "--name",
            NAME,
            "--kubeconfig",
            &kubeconfig,
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("404 NotFound: namespaces \"nope\" not found"),
        "{}",
        stderr(&output)
    );

    // A ConfigMap of that name that meshc did not make is not taken over.
    c.server
        .create(
            NS,
            &json!({"metadata": {"name": NAME}, "data": {"x": "y"}}),
            "kubectl",
        )
        .expect("seed");
    c.server.clear_requests();
    let output = c.deploy(&[&path]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("is not a table deployed by meshc"),
        "{}",
        stderr(&output)
    );
    assert!(writes(&c.server.requests()).is_empty());
    let output = c.deploy(&["--rollback"]);
    assert_eq!(output.status.code(), Some(1));

    // An API server that is not there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let dead = c.dir.path().join("dead-kubeconfig");
    std::fs::write(
        &dead,
        c.server
            .kubeconfig()
            .replace(&c.server.url(), &format!("http://127.0.0.1:{port}")),
    )
    .expect("write");
    let output = meshc_in(
        c.dir.path(),
        &[
            "deploy",
            &path,
            "--namespace",
            NS,
            "--name",
            "other",
            "--kubeconfig",
            &dead.display().to_string(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("cannot reach the API server"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn kubeconfig_and_context_are_found_as_kubectl_finds_them() {
    let c = cluster();
    let repo = c.repo("a", "3s");
    let path = repo.display().to_string();
    // Two contexts: the current one points nowhere, `fake` at the fake server.
    let two = c.dir.path().join("two-contexts");
    let text = c
        .server
        .kubeconfig()
        .replace("current-context: fake", "current-context: nowhere")
        + "";
    let text = text
        .replacen(
            "contexts:\n",
            "contexts:\n- name: nowhere\n  context:\n    cluster: nowhere\n    user: fake\n",
            1,
        )
        .replacen(
            "clusters:\n",
            "clusters:\n- name: nowhere\n  cluster:\n    server: http://127.0.0.1:9\n",
            1,
        );
    std::fs::write(&two, text).expect("write");
    let kubeconfig = two.display().to_string();
    let output = meshc_in(
        c.dir.path(),
        &[
            "deploy",
            &path,
            "--namespace",
            NS,
            "--name",
            NAME,
            "--context",
            "fake",
        ],
        &[("KUBECONFIG", &kubeconfig)],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(c.server.config_map(NS, NAME).is_some());
    // An unknown context is a usage error.
    let output = meshc_in(
        c.dir.path(),
        &[
            "deploy",
            &path,
            "--namespace",
            NS,
            "--name",
            NAME,
            "--kubeconfig",
            &kubeconfig,
            "--context",
            "missing",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("missing"), "{}", stderr(&output));
}

#[test]
fn bad_names_are_usage_errors_before_any_work() {
    let c = cluster();
    let repo = c.repo("a", "3s");
    let path = repo.display().to_string();
    let kubeconfig = c.kubeconfig.display().to_string();
    for (args, expected) in [
        (
            vec!["deploy", &path, "--name", NAME, "--kubeconfig", &kubeconfig],
            "needs --namespace",
        ),
        (
            vec![
                "deploy",
                &path,
                "--namespace",
                NS,
                "--name",
                "Mesh_Routes",
                "--kubeconfig",
                &kubeconfig,
            ],
            "not a valid ConfigMap name",
        ),
        (
            vec![
                "deploy",
                &path,
                "--namespace",
                "a.b",
                "--name",
                NAME,
                "--kubeconfig",
                &kubeconfig,
            ],
            "not a valid namespace name",
        ),
        (
            vec![
                "deploy",
                "--rollback",
                "--namespace",
                NS,
                "--name",
                "Bad",
                "--kubeconfig",
                &kubeconfig,
            ],
            "not a valid ConfigMap name",
        ),
    ] {
        let output = meshc_in(c.dir.path(), &args, &[]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    assert!(c.server.requests().is_empty());
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the compiler is in the workspace")
        .to_path_buf()
}

/// The example manifests are wired the way `meshc deploy` and mesh-proxy work: the sidecar
/// reads the key meshc writes from the whole-directory mount of the ConfigMap, its probes hit
/// the admin port it listens on, the app's proxy variables name its listener, and the Role
/// grants every verb a deploy uses.
#[test]
fn the_example_manifests_match_what_deploy_writes_and_the_proxy_serves() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Container, HTTPGetAction};
    use k8s_openapi::api::rbac::v1::Role;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    let dir = repo_root().join("examples/kubernetes");
    let text = std::fs::read_to_string(dir.join("deployment.yaml")).expect("deployment.yaml");
    let deployment: Deployment = serde_saphyr::from_str(&text).expect("a Deployment");
    let pod = deployment.spec.template.spec.expect("a pod template");
    let volume = pod
        .volumes
        .unwrap_or_default()
        .into_iter()
        .find(|v| v.config_map.is_some())
        .expect("a ConfigMap volume");
    assert_eq!(
        volume.config_map.as_ref().map(|c| c.name.as_str()),
        Some(NAME)
    );
    let proxy: &Container = pod
        .containers
        .iter()
        .find(|c| c.name == "mesh-proxy")
        .expect("the mesh-proxy sidecar");
    let args = proxy.args.clone().unwrap_or_default();
    let arg = |flag: &str| -> String {
        let at = args
            .iter()
            .position(|a| a == flag)
            .unwrap_or_else(|| panic!("{flag} is given"));
        args.get(at + 1)
            .cloned()
            .unwrap_or_else(|| panic!("{flag} has a value"))
    };
    let mount = proxy
        .volume_mounts
        .as_ref()
        .and_then(|m| m.iter().find(|m| m.name == volume.name))
        .expect("the sidecar mounts the ConfigMap");
    assert_eq!(
        mount.sub_path, None,
        "a subPath mount never sees ConfigMap updates"
    );
    assert_eq!(
        arg("--table"),
        format!(
            "{}/{}",
            mount.mount_path,
            meshc::deploy::manifest::TABLE_KEY
        )
    );
    let admin: std::net::SocketAddr = arg("--admin").parse().expect("an address");
    assert!(
        admin.ip().is_unspecified(),
        "the kubelet probes the pod address"
    );
    let listen: std::net::SocketAddr = arg("--listen").parse().expect("an address");
    let port_number = |port: &IntOrString| match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => proxy
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port)
            .unwrap_or_else(|| panic!("port `{name}` is declared")),
    };
    let probe = |probe: &Option<k8s_openapi::api::core::v1::Probe>| -> HTTPGetAction {
        probe
            .as_ref()
            .and_then(|p| p.http_get.clone())
            .expect("an HTTP probe")
    };
    for (action, path) in [
        (probe(&proxy.liveness_probe), "/healthz/live"),
        (probe(&proxy.readiness_probe), "/healthz/ready"),
        (probe(&proxy.startup_probe), "/healthz/ready"),
    ] {
        assert_eq!(action.path.as_deref(), Some(path));
        assert_eq!(port_number(&action.port), i32::from(admin.port()));
    }
    let app = pod
        .containers
        .iter()
        .find(|c| c.name != "mesh-proxy")
        .expect("the app container");
    let http_proxy = app
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "HTTP_PROXY")
        .and_then(|e| e.value.clone())
        .expect("HTTP_PROXY");
    assert_eq!(http_proxy, format!("http://{listen}"));

    // Every verb a deploy, a collection and a rollback use is granted.
    let rbac = std::fs::read_to_string(dir.join("rbac.yaml")).expect("rbac.yaml");
    let documents: Vec<Value> = serde_saphyr::from_multiple(&rbac).expect("YAML");
    let role: Role = documents
        .into_iter()
        .find(|d| d["kind"] == json!("Role"))
        .map(|d| serde_json::from_value(d).expect("a Role"))
        .expect("a Role");
    let granted: Vec<String> = role
        .rules
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.resources.iter().flatten().any(|x| x == "configmaps"))
        .flat_map(|r| r.verbs)
        .collect();
    let c = cluster();
    for (i, timeout) in ["1s", "2s", "3s"].iter().enumerate() {
        let repo = c.repo(&i.to_string(), timeout);
        assert!(
            c.deploy(&[&repo.display().to_string(), "--keep", "2"])
                .status
                .success()
        );
    }
    assert!(c.deploy(&["--rollback"]).status.success());
    let mut used = vec!["create".to_owned()]; // an apply that creates needs `create` too
    for r in c.server.requests() {
        let collection = r.path.ends_with("/configmaps");
        used.push(match (r.method.as_str(), collection) {
            ("GET", true) => "list".to_owned(),
            ("GET", false) => "get".to_owned(),
            ("PATCH", _) => "patch".to_owned(),
            ("DELETE", _) => "delete".to_owned(),
            (other, _) => panic!("unexpected {other}"),
        });
    }
    used.sort();
    used.dedup();
    for verb in &used {
        assert!(
            granted.contains(verb),
            "the Role lacks `{verb}` (grants {granted:?})"
        );
    }
}
