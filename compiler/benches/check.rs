//! `meshc check` on generated repositories (10,000 VirtualServices with their
//! DestinationRules and ServiceEntries), read from disk as the CLI does.

use std::path::PathBuf;

use meshc::check::{self, Settings};

fn main() {
    divan::main();
}

fn write_repo(n: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in meshc::testgen::scale_repo(n) {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let path = dir.path().to_path_buf();
    (dir, path)
}

#[divan::bench(args = [1_000, 10_000], sample_count = 5, sample_size = 1)]
fn check_repo(bencher: divan::Bencher, n: usize) {
    let (_dir, path) = write_repo(n);
    let settings = Settings::default();
    bencher.bench(|| {
        let checked = check::check_paths(std::slice::from_ref(&path), &settings).unwrap();
        assert_eq!(checked.summary.resources, 3 * n);
        checked.summary
    });
}

/// Check, lower and encode: what `meshc build` does after reading the files.
#[divan::bench(args = [10_000], sample_count = 3, sample_size = 1)]
fn build_repo(bencher: divan::Bencher, n: usize) {
    let (_dir, path) = write_repo(n);
    let settings = Settings::default();
    bencher.bench(|| {
        let checked = check::check_paths(std::slice::from_ref(&path), &settings).unwrap();
        meshc::compile::build(&checked).unwrap().len()
    });
}

/// Loading (validating) the artifact of a 10,000-VirtualService repo, as the proxy does on
/// every reload.
#[divan::bench(args = [10_000], sample_count = 10, sample_size = 1)]
fn load_table(bencher: divan::Bencher, n: usize) {
    let (_dir, path) = write_repo(n);
    let checked = check::check_paths(std::slice::from_ref(&path), &Settings::default()).unwrap();
    let bytes = meshc::compile::build(&checked).unwrap();
    eprintln!("artifact for {n} VirtualServices: {} bytes", bytes.len());
    let aligned = mesh_table::AlignedBytes::new(&bytes);
    bencher.bench(|| {
        mesh_table::Table::load(aligned.as_bytes())
            .map(|t| t.info().total_len)
            .unwrap()
    });
}

/// The whole check of one host with many rules: the shadowing analysis must not be
/// quadratic in the number of rules.
#[divan::bench(args = [100, 1_000, 10_000], sample_count = 5, sample_size = 1)]
fn one_host_rules(bencher: divan::Bencher, n: usize) {
    let text = meshc::testgen::one_host_repo(n);
    let settings = Settings::default();
    bencher.bench(|| {
        let checked = check::check_sources([("api.yaml", text.as_str())], &settings);
        assert_eq!(checked.summary.errors + checked.summary.warnings, 0);
        checked.summary
    });
}
