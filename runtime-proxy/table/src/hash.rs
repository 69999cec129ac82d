//! The hash functions the format depends on: key hashing for lookup tables, the payload
//! checksum, and the derivation of independent per-decision draws from one request random.
//!
//! They are part of the format (the writer and reader must agree bit for bit), so they are
//! written out here rather than taken from a crate whose output could change.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Incremental FNV-1a over key bytes. Prefix and suffix lookups feed bytes one at a time and
/// probe at each indexed length, so one pass over the path covers every prefix length.
#[derive(Clone, Copy, Debug)]
pub struct KeyHasher(u64);

impl KeyHasher {
    /// Starts a key in a given namespace (table kind, dimension, scope), so equal strings in
    /// different namespaces hash differently.
    pub fn new(kind: u32, dim: u32, scope: u32) -> KeyHasher {
        let mut hasher = KeyHasher(FNV_OFFSET);
        for word in [kind, dim, scope] {
            for byte in word.to_le_bytes() {
                hasher.push(byte);
            }
        }
        hasher
    }

    #[inline]
    pub fn push(&mut self, byte: u8) {
        self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
    }

    #[inline]
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.push(byte);
        }
    }

    /// FNV's low bits are weak; the table masks low bits, so mix before use.
    #[inline]
    pub fn finish(self) -> u64 {
        fmix64(self.0)
    }
}

/// MurmurHash3's 64-bit finaliser: a bijection that spreads every input bit.
#[inline]
pub fn fmix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

const P1: u64 = 0x9e37_79b1_85eb_ca87;
const P2: u64 = 0xc2b2_ae3d_27d4_eb4f;

/// The payload checksum: four xxh64-style lanes over little-endian u64 words, then the tail.
///
/// Every step is a bijection of the lane state for a fixed input word (xor, multiply by an
/// odd constant, rotate), so any change confined to one word, in particular any single flipped
/// bit, always changes the result. About 8 bytes per multiply, so validating a 100 MiB table
/// costs tens of milliseconds, not hundreds.
pub fn checksum64(seed: u64, bytes: &[u8]) -> u64 {
    let mut lanes = [
        seed ^ P1,
        seed ^ P2,
        seed.rotate_left(17),
        seed.rotate_left(41),
    ];
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        for (lane, word) in lanes.iter_mut().zip(block.chunks_exact(8)) {
            *lane = round(*lane, read_u64(word));
        }
    }
    let mut hash = lanes[0];
    for &lane in &lanes[1..] {
        hash = round(hash, lane);
    }
    let tail = blocks.remainder();
    let mut words = tail.chunks_exact(8);
    for word in &mut words {
        hash = round(hash, read_u64(word));
    }
    for &byte in words.remainder() {
        hash = round(hash, u64::from(byte) | 0x100);
    }
    fmix64(hash ^ bytes.len() as u64)
}

#[inline]
fn round(acc: u64, word: u64) -> u64 {
    (acc ^ word)
        .wrapping_mul(P1)
        .rotate_left(31)
        .wrapping_mul(P2)
}

#[inline]
fn read_u64(word: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(word);
    u64::from_le_bytes(buf)
}

/// The checksum of a whole artifact: header bytes before the checksum field, then everything
/// after it, chained through the seed. The caller guarantees `bytes` is at least a header long.
pub fn file_checksum(bytes: &[u8]) -> u64 {
    use crate::format::{CHECKSUM_OFFSET, CHECKSUM_SEED};
    let head = checksum64(CHECKSUM_SEED, bytes.get(..CHECKSUM_OFFSET).unwrap_or(&[]));
    checksum64(head, bytes.get(CHECKSUM_OFFSET + 8..).unwrap_or(&[]))
}

/// What a draw from the request random is used for. Each purpose gets its own stream so that,
/// for example, a request that falls in the first 10% for a delay is not also biased towards
/// the first destination of a split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Draw {
    Split,
    Delay,
    Abort,
    Mirror(u32),
}

/// Derives the draw for one purpose (splitmix64 of the random xor a purpose constant).
#[inline]
pub fn draw(random: u64, purpose: Draw) -> u64 {
    let salt = match purpose {
        Draw::Split => 1,
        Draw::Delay => 2,
        Draw::Abort => 3,
        Draw::Mirror(index) => 4 + u64::from(index),
    };
    let mut z = random ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One million: percentages are stored as parts per million.
pub const PER_MILLION: u32 = 1_000_000;

/// Whether a per-million chance fires for this random and purpose.
#[inline]
pub fn fires(random: u64, purpose: Draw, per_million: u32) -> bool {
    (draw(random, purpose) % u64::from(PER_MILLION)) < u64::from(per_million)
}

/// Converts a policy percentage (0–100, any precision) to parts per million, clamped.
pub fn percent_to_per_million(percent: f64) -> u32 {
    if percent.is_nan() || percent <= 0.0 {
        return 0;
    }
    let scaled = (percent * 10_000.0).round();
    if scaled >= f64::from(PER_MILLION) {
        PER_MILLION
    } else {
        scaled as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_sees_every_bit_flip_of_a_short_buffer() {
        let data: Vec<u8> = (0..77u8).collect();
        let base = checksum64(7, &data);
        for bit in 0..data.len() * 8 {
            let mut flipped = data.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(checksum64(7, &flipped), base, "bit {bit}");
        }
        assert_ne!(checksum64(8, &data), base);
    }

    #[test]
    fn percent_conversion_clamps_and_rounds() {
        assert_eq!(percent_to_per_million(-1.0), 0);
        assert_eq!(percent_to_per_million(f64::NAN), 0);
        assert_eq!(percent_to_per_million(0.0001), 1);
        assert_eq!(percent_to_per_million(12.5), 125_000);
        assert_eq!(percent_to_per_million(100.0), PER_MILLION);
        assert_eq!(percent_to_per_million(1e9), PER_MILLION);
    }

    #[test]
    fn draws_for_different_purposes_differ() {
        let r = 0x1234_5678_9abc_def0;
        assert_ne!(draw(r, Draw::Split), draw(r, Draw::Delay));
        assert_ne!(draw(r, Draw::Mirror(0)), draw(r, Draw::Mirror(1)));
    }
}
