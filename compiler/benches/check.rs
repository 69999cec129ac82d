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
