//! Times reading an artifact into aligned memory and validating it, the way mesh-proxy loads
//! a table: `cargo run --release -p mesh-table --example load_file -- FILE [REPS]`.
//! Prints the fastest of REPS runs (default 10) for each phase.

use std::io::Read as _;
use std::time::{Duration, Instant};

use mesh_table::{AlignedBytes, Table};

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: load_file FILE [REPS]")?;
    let reps: u32 = args
        .next()
        .map_or(Ok(10), |r| r.parse())
        .map_err(|e| format!("REPS: {e}"))?;
    let (mut read_best, mut load_best) = (Duration::MAX, Duration::MAX);
    for _ in 0..reps.max(1) {
        let started = Instant::now();
        let mut file = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        let len = file.metadata().map_err(|e| format!("{path}: {e}"))?.len() as usize;
        let mut bytes = AlignedBytes::zeroed(len);
        file.read_exact(bytes.as_mut_bytes())
            .map_err(|e| format!("{path}: {e}"))?;
        let read = started.elapsed();
        let started = Instant::now();
        let table = Table::load(bytes.as_bytes()).map_err(|e| format!("{path}: {e}"))?;
        let load = started.elapsed();
        std::hint::black_box(&table);
        read_best = read_best.min(read);
        load_best = load_best.min(load);
    }
    println!(
        "{path}: read {:.1} ms, validate {:.1} ms (fastest of {reps})",
        read_best.as_secs_f64() * 1e3,
        load_best.as_secs_f64() * 1e3
    );
    Ok(())
}
