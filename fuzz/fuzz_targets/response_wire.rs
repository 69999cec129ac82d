#![no_main]
//! See `meshc_fuzz::response_wire` (fuzz/src/lib.rs) for what this target checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| meshc_fuzz::response_wire(data));
