//! The `meshc` command line.

fn main() {}
