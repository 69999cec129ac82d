//! mesh-proxy: serves HTTP from a compiled meshc routing table.

fn main() {
    eprintln!("mesh-proxy: not built yet");
    std::process::exit(2);
}
