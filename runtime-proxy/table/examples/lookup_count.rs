//! Instruction-count harness: builds one synthetic table and runs a fixed number of lookups,
//! so `valgrind --tool=callgrind` can compare costs per lookup across table sizes.
//!
//! Usage: `lookup_count KIND N LOOKUPS` with KIND = header | prefix | regex. With LOOKUPS = 0
//! it only builds and loads, giving the baseline to subtract.

#[path = "../benches/support/mod.rs"]
mod support;

use mesh_table::{AlignedBytes, HeaderList, RequestView, Table, encode};
use support::{Kind, request_for, table_spec};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kind = match args.get(1).map(String::as_str) {
        Some("prefix") => Kind::PrefixPath,
        Some("regex") => Kind::RegexPath,
        _ => Kind::ExactHeader,
    };
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let lookups: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let started = std::time::Instant::now();
    let bytes = encode(&table_spec(kind, n)).expect("encodes");
    let encoded = started.elapsed();
    let aligned = AlignedBytes::new(&bytes);
    let started = std::time::Instant::now();
    let table = Table::load(&aligned).expect("loads");
    let loaded = started.elapsed();
    let (path, user) = request_for(kind, Some(n - 1));
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
    let mut hits = 0u64;
    for i in 0..lookups {
        let decision = table.decide(std::hint::black_box(&req), i);
        hits += u64::from(
            decision
                .route()
                .is_some_and(|d| d.route.index_in_host() as usize == n - 1),
        );
    }
    eprintln!(
        "{kind:?} n={n}: {} bytes, encode {encoded:?}, load {loaded:?}, {hits}/{lookups} lookups hit the last route",
        bytes.len()
    );
}
