//! Replays the committed fuzz findings in `fuzz/regressions/<target>/` through the same code
//! the fuzz targets run (`fuzz/src/lib.rs`, included below), so a fixed crash, timeout or
//! oracle disagreement stays fixed without nightly, libFuzzer or `cargo fuzz`.
//!
//! Each input must finish without a panic within a generous time budget (debug build; set
//! `MESH_FUZZ_REPLAY_BUDGET_MS` to change it). To add a finding: minimise it with
//! `cargo fuzz tmin -s none <target> <artifact>` and copy it into the target's directory
//! (see `fuzz/README.md`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod harness;

fn inputs_in(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.') && !name.ends_with(".md")
        })
        .collect();
    files.sort();
    files
}

fn budget() -> Duration {
    let ms = std::env::var("MESH_FUZZ_REPLAY_BUDGET_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000);
    Duration::from_millis(ms)
}

/// Runs `body` on every committed input of `target`; reports every failing input at once.
fn replay(target: &str, body: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
    replay_dir("regressions", target, body);
}

fn replay_dir(kind: &str, target: &str, body: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
    let budget = budget();
    let mut failures = Vec::new();
    for path in inputs_in(kind, target) {
        let data = std::fs::read(&path).expect("read regression input");
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(|| body(&data));
        let took = started.elapsed();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match outcome {
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                failures.push(format!("{target}/{name}: panicked: {message}"));
            }
            Ok(()) if took > budget => {
                failures.push(format!(
                    "{target}/{name}: took {took:?} (budget {budget:?})"
                ));
            }
            Ok(()) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "fuzz regressions failed:\n{}",
        failures.join("\n")
    );
}

#[test]
fn yaml_front_end_regressions() {
    replay("yaml_front_end", harness::yaml_front_end);
}

#[test]
fn table_loader_regressions() {
    replay("table_loader", |data| {
        // Both loads (as given, and with the checksum recomputed) return Ok or Err.
        for outcome in harness::table_loader(data) {
            let _ = outcome.map_err(|e| e.to_string());
        }
    });
}

#[test]
fn executor_regressions() {
    replay("executor", harness::executor);
}

#[test]
fn request_wire_seeds_and_regressions() {
    replay_dir("seeds", "request_wire", harness::request_wire);
    replay("request_wire", harness::request_wire);
    assert!(inputs_in("seeds", "request_wire").len() >= 8);
}

#[test]
fn response_wire_seeds_and_regressions() {
    replay_dir("seeds", "response_wire", harness::response_wire);
    replay("response_wire", harness::response_wire);
    assert!(inputs_in("seeds", "response_wire").len() >= 8);
}

/// The harness itself works: the executor's fixed policy checks cleanly and the oracle
/// agrees on an empty request, and the bookinfo artifact loads and executes.
#[test]
fn harness_smoke() {
    harness::executor(&[]);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut policy = String::new();
    for file in [
        "destination-rules.yaml",
        "services.yaml",
        "virtual-services.yaml",
    ] {
        policy
            .push_str(&std::fs::read_to_string(root.join("policies/bookinfo").join(file)).unwrap());
        policy.push_str("\n---\n");
    }
    harness::yaml_front_end(policy.as_bytes());
    let golden = std::fs::read(root.join("runtime-proxy/table/tests/golden/v1.bin")).unwrap();
    let [raw, fixed] = harness::table_loader(&golden);
    assert!(raw.is_ok() && fixed.is_ok(), "{raw:?} {fixed:?}");
}
