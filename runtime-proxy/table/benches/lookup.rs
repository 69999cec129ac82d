//! Lookup cost against table size (1 to 100 000 routes) for exact-header, path-prefix and
//! path-regex tables, for requests hitting the first route, the last route, and none (falling
//! through to the catch-all); plus encode and load time and artifact size at 10 000 routes.
//!
//! Run: `cargo bench -p mesh-table`. The goal is flat lookup cost: 100 000 routes within 3x
//! of 1 route.

mod support;

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use divan::Bencher;
use mesh_table::{AlignedBytes, HeaderList, RequestView, Table, encode};
use support::{Kind, request_for, table_spec};

const SIZES: [usize; 4] = [1, 1_000, 10_000, 100_000];

fn main() {
    divan::main();
}

/// Tables are expensive to build (100 000 regexes take seconds), so each is built once and
/// leaked for the life of the benchmark process.
fn table(kind: Kind, n: usize) -> &'static Table<'static> {
    static TABLES: OnceLock<Mutex<BTreeMap<(u8, usize), &'static Table<'static>>>> =
        OnceLock::new();
    let key = (kind as u8, n);
    let mut tables = TABLES.get_or_init(Default::default).lock().unwrap();
    tables.entry(key).or_insert_with(|| {
        let bytes: &'static AlignedBytes = Box::leak(Box::new(AlignedBytes::new(
            &encode(&table_spec(kind, n)).unwrap(),
        )));
        eprintln!("{kind:?} n={n}: artifact {} bytes", bytes.len());
        Box::leak(Box::new(Table::load(bytes).unwrap()))
    })
}

fn lookup(bencher: Bencher, kind: Kind, n: usize, target: Option<usize>) {
    let table = table(kind, n);
    let (path, user) = request_for(kind, target);
    let headers = [("x-user", user.as_str())];
    let headers = HeaderList(&headers);
    let req = RequestView {
        authority: "bench.example.com",
        port: None,
        method: "GET",
        path: &path,
        query: None,
        scheme: "http",
        headers: &headers,
    };
    let expected = target.unwrap_or(n) as u32;
    assert_eq!(
        table
            .decide(&req, 0)
            .route()
            .map(|d| d.route.index_in_host()),
        Some(expected)
    );
    let mut random = 0u64;
    bencher.bench_local(|| {
        random = random.wrapping_add(1);
        divan::black_box(
            table
                .decide(divan::black_box(&req), random)
                .route()
                .is_some(),
        )
    });
}

mod exact_header {
    use super::*;
    #[divan::bench(args = SIZES)]
    fn first(b: Bencher, n: usize) {
        lookup(b, Kind::ExactHeader, n, Some(0));
    }
    #[divan::bench(args = SIZES)]
    fn last(b: Bencher, n: usize) {
        lookup(b, Kind::ExactHeader, n, Some(n - 1));
    }
    #[divan::bench(args = SIZES)]
    fn none(b: Bencher, n: usize) {
        lookup(b, Kind::ExactHeader, n, None);
    }
}

mod prefix_path {
    use super::*;
    #[divan::bench(args = SIZES)]
    fn first(b: Bencher, n: usize) {
        lookup(b, Kind::PrefixPath, n, Some(0));
    }
    #[divan::bench(args = SIZES)]
    fn last(b: Bencher, n: usize) {
        lookup(b, Kind::PrefixPath, n, Some(n - 1));
    }
    #[divan::bench(args = SIZES)]
    fn none(b: Bencher, n: usize) {
        lookup(b, Kind::PrefixPath, n, None);
    }
}

mod regex_path {
    use super::*;
    #[divan::bench(args = SIZES)]
    fn first(b: Bencher, n: usize) {
        lookup(b, Kind::RegexPath, n, Some(0));
    }
    #[divan::bench(args = SIZES)]
    fn last(b: Bencher, n: usize) {
        lookup(b, Kind::RegexPath, n, Some(n - 1));
    }
    #[divan::bench(args = SIZES)]
    fn none(b: Bencher, n: usize) {
        lookup(b, Kind::RegexPath, n, None);
    }
}

const KINDS: [Kind; 3] = [Kind::ExactHeader, Kind::PrefixPath, Kind::RegexPath];

#[divan::bench(args = KINDS, sample_count = 10, sample_size = 1)]
fn encode_10k(bencher: Bencher, kind: Kind) {
    let spec = table_spec(kind, 10_000);
    bencher.bench_local(|| divan::black_box(encode(&spec).unwrap().len()));
}

#[divan::bench(args = KINDS, sample_count = 20, sample_size = 1)]
fn load_10k(bencher: Bencher, kind: Kind) {
    let bytes = AlignedBytes::new(&encode(&table_spec(kind, 10_000)).unwrap());
    bencher.bench_local(|| divan::black_box(Table::load(&bytes).is_ok()));
}
