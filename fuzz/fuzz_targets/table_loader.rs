#![no_main]
//! See `meshc_fuzz::table_loader` (fuzz/src/lib.rs) for what this target checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = meshc_fuzz::table_loader(data);
});
