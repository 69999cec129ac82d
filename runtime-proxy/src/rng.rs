//! A per-thread wyrand generator for the per-request random u64 (seeded once per thread, no
//! syscall per request), and a small hash for consistent-hash keys.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    // RandomState is seeded from the OS once per thread; mixing in the thread id keeps two
    // threads apart even if their keys came from the same cached seed.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    std::hash::Hash::hash(&std::thread::current().id(), &mut hasher);
    hasher.finish()
}

/// The next random u64 for this thread (wyrand).
pub fn next_u64() -> u64 {
    STATE.with(|state| {
        let s = state.get().wrapping_add(0xA076_1D64_78BD_642F);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xE703_7ED1_A0B4_28DB);
        ((t >> 64) as u64) ^ (t as u64)
    })
}

/// FNV-1a, then a final mix; stable across processes so a key maps to the same endpoint.
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01B3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_differ_and_hashes_are_stable() {
        let a = super::next_u64();
        let b = super::next_u64();
        assert_ne!(a, b);
        assert_eq!(super::hash_bytes(b"alice"), super::hash_bytes(b"alice"));
        assert_ne!(super::hash_bytes(b"alice"), super::hash_bytes(b"bob"));
    }
}
