//! Loader robustness: every byte string either loads or is refused with an error, never a
//! panic; corruption is caught by the checksum, and by structural checks when the checksum is
//! recomputed (a crafted file).

mod support;

use mesh_table::format::{
    CHECKSUM_OFFSET, HEADER_LEN, SECTION_ENTRY_LEN, Section, home_slot, policy, route, slot,
};
use mesh_table::hash::file_checksum;
use mesh_table::spec::{HeaderMatchSpec, MatchSpec, TableSpec};
use mesh_table::{AlignedBytes, LoadError, Table};
use support::*;

fn small_spec() -> TableSpec {
    let m = MatchSpec {
        headers: vec![("x-user".to_owned(), HeaderMatchSpec::Present)],
        ..uri(prefix("/p"))
    };
    let routes = vec![
        with_match(route(0, 0), uri(exact("/a"))),
        with_match(route(1, 1), uri(regex("/r/[0-9]+"))),
        with_match(route(2, 0), m),
        route(3, 1),
    ];
    spec(vec![vhost("ns/h", &["h", "*.h"], routes)], 2)
}

fn load_owned(bytes: &[u8]) -> Result<(), LoadError> {
    let aligned = AlignedBytes::new(bytes);
    Table::load(&aligned).map(|_| ())
}

/// After a successful load, every accessor and a few decisions must still work.
fn exercise(table: &Table<'_>) {
    for vh in table.virtual_hosts() {
        let _ = (vh.name(), vh.domains().count(), vh.ports().count());
        for r in vh.routes() {
            let _ = (
                r.vs_name(),
                r.name(),
                r.action(),
                r.fault(),
                r.retry(),
                r.rewrite(),
                r.cors(),
            );
            let _ = (
                r.request_headers().count(),
                r.mirrors().count(),
                r.destinations().count(),
            );
            for m in r.matches() {
                let _ = m.conditions().count();
            }
        }
    }
    for c in table.clusters() {
        let _ = (
            c.name(),
            c.endpoints().count(),
            c.labels().count(),
            c.load_balancer(),
        );
    }
    for path in ["/a", "/r/12", "/p", "/zzz"] {
        let req = Req::new("h", path).header("x-user", "u");
        let _ = table.decide(&req.view(), 42);
    }
}

fn with_checksum(mut bytes: Vec<u8>) -> Vec<u8> {
    let sum = file_checksum(&bytes);
    bytes[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 8].copy_from_slice(&sum.to_le_bytes());
    bytes
}

fn section_entry(bytes: &[u8], kind: Section) -> usize {
    (0..Section::ALL.len())
        .map(|i| HEADER_LEN + i * SECTION_ENTRY_LEN)
        .find(|&at| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) == kind as u32)
        .expect("section present")
}

fn section_offset(bytes: &[u8], kind: Section) -> usize {
    let at = section_entry(bytes, kind);
    u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap()) as usize
}

#[test]
fn a_valid_table_loads_and_works() {
    let bytes = artifact(&small_spec());
    let table = Table::load(&bytes).unwrap();
    exercise(&table);
    assert_eq!(table.content_hash(), &[7; 32]);
    assert_eq!(pick(&table, &Req::new("h", "/r/77")), Some((0, 1)));
}

#[test]
fn every_truncation_is_refused() {
    let bytes = encode_small();
    for len in 0..bytes.len() {
        let err = load_owned(&bytes[..len]).expect_err("truncated artifact must not load");
        if len < HEADER_LEN {
            assert_eq!(
                err,
                LoadError::Truncated {
                    len,
                    need: HEADER_LEN
                }
            );
        }
    }
    assert!(
        load_owned(&[bytes.clone(), vec![0]].concat()).is_err(),
        "trailing bytes"
    );
}

fn encode_small() -> Vec<u8> {
    mesh_table::encode(&small_spec()).unwrap()
}

#[test]
fn every_single_bit_flip_is_refused() {
    let bytes = encode_small();
    let mut aligned = AlignedBytes::new(&bytes);
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        aligned = AlignedBytes::new(&flipped);
        assert!(
            Table::load(&aligned).is_err(),
            "bit {bit} flipped but the table loaded"
        );
    }
    drop(aligned);
}

#[test]
fn header_errors_are_specific() {
    let bytes = encode_small();
    let mut bad_magic = bytes.clone();
    bad_magic[0] = b'X';
    assert!(matches!(
        load_owned(&bad_magic),
        Err(LoadError::BadMagic { .. })
    ));

    let mut version = bytes.clone();
    version[12..16].copy_from_slice(&7u32.to_le_bytes());
    let err = load_owned(&version).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported format version 7 (this reader supports versions 1 to 2)"
    );

    let mut endian = bytes.clone();
    endian[8..12].copy_from_slice(&0x0102_0304u32.to_be_bytes());
    assert!(matches!(
        load_owned(&endian),
        Err(LoadError::WrongEndianness { .. })
    ));

    let mut body = bytes.clone();
    let last = body.len() - 1;
    body[last] ^= 0x80;
    let err = load_owned(&body).unwrap_err();
    assert!(err.to_string().starts_with("checksum mismatch"), "{err}");

    let err = load_owned(&bytes[..12]).unwrap_err();
    assert_eq!(err.to_string(), "truncated header: 12 bytes, need 96");
}

#[test]
fn misaligned_buffers_are_refused() {
    let bytes = encode_small();
    let shifted = AlignedBytes::new(&[vec![0u8], bytes.clone()].concat());
    let err = Table::load(&shifted[1..]).unwrap_err();
    assert_eq!(err, LoadError::Misaligned { address_mod_8: 1 });
    assert!(err.to_string().contains("AlignedBytes"));
}

#[test]
fn crafted_section_tables_are_refused() {
    let bytes = encode_small();
    let routes = section_entry(&bytes, Section::Routes);
    // Huge record count and length, with a valid checksum.
    for (field, value) in [(24, u64::MAX), (16, u64::MAX / 2), (16, 8), (8, 3), (8, 0)] {
        let mut crafted = bytes.clone();
        crafted[routes + field..routes + field + 8].copy_from_slice(&value.to_le_bytes());
        let err = load_owned(&with_checksum(crafted)).unwrap_err();
        assert!(
            matches!(err, LoadError::Section { .. }),
            "field {field}={value}: {err}"
        );
        assert!(err.to_string().contains("routes"), "{err}");
    }
    let mut kind = bytes.clone();
    kind[routes..routes + 4].copy_from_slice(&99u32.to_le_bytes());
    assert!(matches!(
        load_owned(&with_checksum(kind)),
        Err(LoadError::Section { .. })
    ));
    let mut size = bytes.clone();
    size[routes + 4..routes + 8].copy_from_slice(&4u32.to_le_bytes());
    assert!(matches!(
        load_owned(&with_checksum(size)),
        Err(LoadError::Section { .. })
    ));
}

#[test]
fn crafted_records_are_refused() {
    let bytes = encode_small();
    let routes = section_offset(&bytes, Section::Routes);
    let policies = section_offset(&bytes, Section::Policies);
    for (name, at, value) in [
        ("route's virtual host", routes + route::VHOST * 4, 1000u32),
        (
            "route's VirtualService name",
            routes + route::VS_NAME * 4,
            1_000_000,
        ),
        ("route's policy", routes + route::POLICY * 4, 1000),
        ("policy's destinations", policies + policy::DESTS * 4, 1000),
        (
            "policy's destination count",
            policies + policy::DESTS_LEN * 4,
            u32::MAX,
        ),
        ("policy's action", policies + policy::ACTION * 4, 9),
    ] {
        let mut crafted = bytes.clone();
        crafted[at..at + 4].copy_from_slice(&value.to_le_bytes());
        let err = load_owned(&with_checksum(crafted)).unwrap_err();
        assert!(
            matches!(err, LoadError::Field { .. }),
            "{name} = {value}: {err}"
        );
    }
    // A string that is not UTF-8.
    let strings = section_offset(&bytes, Section::Bytes);
    let mut crafted = bytes.clone();
    crafted[strings] = 0xff;
    assert!(matches!(
        load_owned(&with_checksum(crafted)),
        Err(LoadError::InvalidUtf8 { .. })
    ));
    // A corrupted DFA.
    let dfa = section_offset(&bytes, Section::DfaBytes);
    let mut crafted = bytes.clone();
    for b in &mut crafted[dfa + 64..dfa + 128] {
        *b = 0xff;
    }
    assert!(load_owned(&with_checksum(crafted)).is_err());
}

fn set_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// Version 2 specifics, each with a valid checksum so that only structure can refuse them.
#[test]
fn crafted_version_2_tables_are_refused() {
    let bytes = encode_small();
    let expect = |crafted: Vec<u8>, fragment: &str| {
        let err = load_owned(&with_checksum(crafted)).unwrap_err();
        assert!(err.to_string().contains(fragment), "{fragment}: {err}");
    };

    // A route whose policy is out of range.
    let mut crafted = bytes.clone();
    let n_policies = u32_at(&bytes, section_entry(&bytes, Section::Policies) + 24);
    let at = section_offset(&bytes, Section::Routes) + route::POLICY * 4;
    set_u32(&mut crafted, at, n_policies);
    expect(
        crafted,
        &format!("routes record 0, field 4: index {n_policies} out of range"),
    );

    // A policy whose total weight does not match its destinations.
    let mut crafted = bytes.clone();
    let at = section_offset(&bytes, Section::Policies) + policy::TOTAL_WEIGHT * 4;
    set_u32(&mut crafted, at, 7);
    expect(crafted, "total weight does not match the destinations");

    // Key slots: the table below has two keys in four slots.
    let key_slots = section_offset(&bytes, Section::KeySlots);
    let entry = section_entry(&bytes, Section::KeySlots);
    let n = u32_at(&bytes, entry + 24) as usize;
    let size = slot::LEN * 4;
    let tag = |b: &[u8], i: usize| u32_at(b, key_slots + i * size + slot::TAG * 4);
    assert_eq!(n, 4);

    // No empty slot: a probe for a missing key would never stop at one.
    let mut crafted = bytes.clone();
    let used_tag = (0..n).map(|i| tag(&bytes, i)).find(|&t| t != 0).unwrap();
    for i in 0..n {
        if tag(&bytes, i) == 0 {
            set_u32(&mut crafted, key_slots + i * size + slot::TAG * 4, used_tag);
        }
    }
    expect(
        crafted,
        "key hash table record 0, field 2: the hash table has no empty slot",
    );

    // No slot at all.
    let mut crafted = bytes.clone();
    crafted[entry + 16..entry + 32].copy_from_slice(&[0; 16]);
    expect(crafted, "the hash table has no slot");

    // A key moved before its home slot, where a probe never looks. The first key of a run of
    // occupied slots sits at its home, and the slot before it is empty.
    let run_start = (0..n)
        .find(|&i| tag(&bytes, i) != 0 && tag(&bytes, (i + n - 1) % n) == 0)
        .unwrap();
    let hash_at = key_slots + run_start * size;
    let hash = u64::from(u32_at(&bytes, hash_at)) | (u64::from(u32_at(&bytes, hash_at + 4)) << 32);
    assert_eq!(home_slot(hash, n as u32) as usize, run_start);
    let before = (run_start + n - 1) % n;
    let mut crafted = bytes.clone();
    let record = bytes[hash_at..hash_at + size].to_vec();
    let empty = bytes[key_slots + before * size..key_slots + (before + 1) * size].to_vec();
    crafted[key_slots + before * size..key_slots + (before + 1) * size].copy_from_slice(&record);
    crafted[hash_at..hash_at + size].copy_from_slice(&empty);
    expect(
        crafted,
        "the key is not where a lookup from its home slot finds it",
    );

    // A version 2 file labelled version 1 (and the other way round) does not load.
    let mut relabelled = bytes.clone();
    set_u32(&mut relabelled, 12, 1);
    expect(relabelled, "section table has 29 sections, expected 28");
    let v1 = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/v1.bin")).unwrap();
    let mut relabelled = v1.clone();
    set_u32(&mut relabelled, 12, 2);
    expect(relabelled, "section table has 28 sections, expected 29");
}

/// A version 1 file with its key table's slot count made odd is refused, as before.
#[test]
fn version_1_hash_tables_must_stay_powers_of_two() {
    let v1 = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/v1.bin")).unwrap();
    assert!(load_owned(&v1).is_ok());
    let n_sections = u32_at(&v1, 20) as usize;
    let entry = (0..n_sections)
        .map(|i| HEADER_LEN + i * SECTION_ENTRY_LEN)
        .find(|&at| u32_at(&v1, at) == Section::KeySlots as u32)
        .unwrap();
    let count = u64::from_le_bytes(v1[entry + 24..entry + 32].try_into().unwrap());
    assert!(count > 1 && count.is_power_of_two());
    let mut crafted = v1.clone();
    let size = (slot::LEN * 4) as u64;
    crafted[entry + 16..entry + 24].copy_from_slice(&((count - 1) * size).to_le_bytes());
    crafted[entry + 24..entry + 32].copy_from_slice(&(count - 1).to_le_bytes());
    let err = load_owned(&with_checksum(crafted)).unwrap_err();
    assert!(
        err.to_string().contains("slot count is not a power of two"),
        "{err}"
    );
}

/// A bounded fuzz loop: random mutations, half of them with a recomputed checksum so that
/// structural validation is what must refuse them. Whatever loads must also execute.
#[test]
fn random_mutations_never_panic() {
    mutate_and_load(&encode_small(), 20_000);
}

/// The same for a version 1 file (the golden one), read through the version 1 layout.
#[test]
fn random_mutations_of_a_version_1_table_never_panic() {
    let v1 = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/v1.bin")).unwrap();
    mutate_and_load(&v1, 5_000);
}

fn mutate_and_load(bytes: &[u8], rounds: usize) {
    let mut state = 0x1234_5678_9abc_def1u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut loaded = 0;
    for _ in 0..rounds {
        let mut m = bytes.to_vec();
        for _ in 0..1 + next() % 8 {
            let at = (next() % m.len() as u64) as usize;
            match next() % 4 {
                0 => m[at] ^= 1 << (next() % 8),
                1 => m[at] = next() as u8,
                2 => m[at] = [0, 0xff, 1, 0x7f][(next() % 4) as usize],
                _ => {
                    // Write a small or huge u32 at an aligned spot.
                    let at = at & !3;
                    if at + 4 <= m.len() {
                        let v =
                            [0u32, 1, 2, 7, 0xffff, u32::MAX, u32::MAX - 1][(next() % 7) as usize];
                        m[at..at + 4].copy_from_slice(&v.to_le_bytes());
                    }
                }
            }
        }
        if next() % 8 == 0 {
            let len = (next() % m.len() as u64) as usize;
            m.truncate(len);
        }
        if next() % 2 == 0 && m.len() >= HEADER_LEN {
            m = with_checksum(m);
        }
        let aligned = AlignedBytes::new(&m);
        if let Ok(table) = Table::load(&aligned) {
            loaded += 1;
            exercise(&table);
        }
    }
    // Mutations of unused padding or plain fields may load; that is fine, but not all should.
    assert!(loaded < rounds);
}
