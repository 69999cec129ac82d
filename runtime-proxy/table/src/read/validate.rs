//! Load-time validation: header, checksum, section table, every record field, strings, DFAs.
//!
//! The order matters: cheap header checks first, then the checksum (so accidental corruption
//! gets the clearest message), then structure, which alone guards against crafted files.

use regex_automata::dfa::StartKind;
use regex_automata::dfa::dense::DFA;

use super::{LoadError, SectionInfo, Table};
use crate::format::{
    self, ENDIAN_MARK, FieldKind, HEADER_LEN, MAGIC, NONE, SECTION_ALIGN, SECTION_ENTRY_LEN,
    Section, dest, dim, home_slot, policy, root, route_v1, slot, vhost,
};
use crate::hash::file_checksum;

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

pub fn load(bytes: &[u8]) -> Result<Table<'_>, LoadError> {
    let address_mod_8 = bytes.as_ptr() as usize % SECTION_ALIGN;
    if address_mod_8 != 0 {
        return Err(LoadError::Misaligned { address_mod_8 });
    }
    if bytes.len() < HEADER_LEN {
        return Err(LoadError::Truncated {
            len: bytes.len(),
            need: HEADER_LEN,
        });
    }
    let mut magic = [0u8; 8];
    magic.copy_from_slice(&bytes[..8]);
    if magic != MAGIC {
        return Err(LoadError::BadMagic { found: magic });
    }
    let endian = u32_at(bytes, 8);
    if endian != ENDIAN_MARK {
        return Err(LoadError::WrongEndianness { found: endian });
    }
    let version = u32_at(bytes, 12);
    let Some(layout) = Section::all_in(version) else {
        return Err(LoadError::UnsupportedVersion { found: version });
    };
    let flags = u32_at(bytes, 16);
    if flags != 0 {
        return Err(LoadError::UnknownFlags { found: flags });
    }
    let declared = u64_at(bytes, 56);
    if declared != (bytes.len() - HEADER_LEN) as u64 {
        return Err(LoadError::LengthMismatch {
            declared,
            actual: bytes.len() - HEADER_LEN,
        });
    }
    let stored = u64_at(bytes, format::CHECKSUM_OFFSET);
    let computed = file_checksum(bytes);
    if stored != computed {
        return Err(LoadError::ChecksumMismatch { stored, computed });
    }
    let n_sections = u32_at(bytes, 20);
    if n_sections as usize != layout.len() {
        return Err(LoadError::SectionCount {
            found: n_sections,
            expected: layout.len(),
        });
    }
    let mut content_hash = [0u8; 32];
    content_hash.copy_from_slice(&bytes[24..56]);

    let sections = section_table(bytes, version, layout)?;
    let slices = sections.map(|info| {
        bytes
            .get(info.offset..info.offset + info.length)
            .unwrap_or(&[])
    });
    let mut table = Table {
        bytes,
        owner: None,
        sections,
        slices,
        strs: Vec::new(),
        dfas: Vec::new(),
        version,
        flags,
        content_hash,
        checksum: stored,
    };
    for &section in layout {
        if let Some(schema) = section.schema_in(version) {
            check_fields(&table, section, schema)?;
        }
    }
    table.strs = check_strings(&table)?;
    check_lookup_structures(&table)?;
    table.dfas = load_dfas(&table)?;
    Ok(table)
}

/// The section table of a file of `version`, whose sections are `layout` (in any order).
fn section_table(
    bytes: &[u8],
    version: u32,
    layout: &[Section],
) -> Result<[SectionInfo; Section::ALL.len()], LoadError> {
    let table_end = HEADER_LEN + layout.len() * SECTION_ENTRY_LEN;
    if bytes.len() < table_end {
        return Err(LoadError::Truncated {
            len: bytes.len(),
            need: table_end,
        });
    }
    let mut infos = [SectionInfo::default(); Section::ALL.len()];
    let mut seen = [false; Section::ALL.len()];
    let mut previous_end = table_end as u64;
    for index in 0..layout.len() {
        let at = HEADER_LEN + index * SECTION_ENTRY_LEN;
        let kind = u32_at(bytes, at);
        let err = |name: &'static str, problem: String| LoadError::Section {
            index,
            name,
            problem,
        };
        let section = Section::from_u32(kind)
            .filter(|section| layout.contains(section))
            .ok_or_else(|| {
                err(
                    "unknown",
                    format!("has kind {kind}, unknown in format version {version}"),
                )
            })?;
        let name = section.name();
        if std::mem::replace(&mut seen[section as usize - 1], true) {
            return Err(err(name, "appears twice".to_owned()));
        }
        let record_size = u32_at(bytes, at + 4) as usize;
        let expected_size = section.record_size_in(version);
        if record_size != expected_size {
            return Err(err(
                name,
                format!("has record size {record_size}, expected {expected_size}"),
            ));
        }
        let offset = u64_at(bytes, at + 8);
        let length = u64_at(bytes, at + 16);
        let count = u64_at(bytes, at + 24);
        let end = offset
            .checked_add(length)
            .filter(|&end| end <= bytes.len() as u64);
        let Some(end) = end else {
            return Err(err(
                name,
                format!(
                    "out of bounds: offset {offset} + length {length} > file length {}",
                    bytes.len()
                ),
            ));
        };
        if !offset.is_multiple_of(SECTION_ALIGN as u64) {
            return Err(err(
                name,
                format!("is misaligned: offset {offset} is not a multiple of 8"),
            ));
        }
        if offset < previous_end {
            return Err(err(
                name,
                format!("overlaps the previous section (offset {offset})"),
            ));
        }
        previous_end = end;
        if !length.is_multiple_of(record_size as u64) || count != length / record_size as u64 {
            return Err(err(
                name,
                format!("declares {count} records of {record_size} bytes in {length} bytes"),
            ));
        }
        // u32::MAX is NONE, so it must never be a valid index.
        if count >= u64::from(NONE) {
            return Err(err(name, format!("has too many records ({count})")));
        }
        infos[section as usize - 1] = SectionInfo {
            offset: offset as usize,
            length: length as usize,
            count: count as u32,
        };
    }
    Ok(infos)
}

/// One field's check, resolved once per section into a branch-free form: with `v` the field
/// and `n` the next field, the field is good when
/// `((v + (n & next_mask) + 1) & wrap_mask) <= limit` (in u64).
///
/// - a plain field: `limit = u64::MAX`;
/// - `value <= max`: `limit = max + 1`; `value < count`: `limit = count`;
/// - optional (`NONE` allowed): `wrap_mask = u32::MAX`, so `NONE + 1` wraps to 0;
/// - a range `value + len <= limit`: `next_mask = u64::MAX`, `limit = limit + 1`.
#[derive(Clone, Copy)]
struct Bound {
    next_mask: u64,
    wrap_mask: u64,
    limit: u64,
}

impl Bound {
    /// `value < limit`.
    fn plain(limit: u64) -> Bound {
        Bound {
            next_mask: 0,
            wrap_mask: u64::MAX,
            limit,
        }
    }

    /// `value == NONE || value < limit`.
    fn optional(limit: u64) -> Bound {
        Bound {
            next_mask: 0,
            wrap_mask: u64::from(u32::MAX),
            limit,
        }
    }

    /// `value + next <= limit`.
    fn range(limit: u64) -> Bound {
        Bound {
            next_mask: u64::MAX,
            wrap_mask: u64::MAX,
            limit: limit + 1,
        }
    }

    #[inline]
    fn passes(self, value: u64, next: u64) -> bool {
        ((value + (next & self.next_mask) + 1) & self.wrap_mask) <= self.limit
    }
}

fn bound(table: &Table<'_>, kind: FieldKind) -> Bound {
    match kind {
        FieldKind::Plain | FieldKind::Len => Bound::plain(u64::MAX),
        FieldKind::Max(max) => Bound::plain(u64::from(max) + 1),
        FieldKind::OptMax(max) => Bound::optional(u64::from(max) + 1),
        FieldKind::Str => Bound::plain(u64::from(table.count(Section::Strings))),
        FieldKind::OptStr => Bound::optional(u64::from(table.count(Section::Strings))),
        FieldKind::OptBlob => Bound::optional(u64::from(table.count(Section::Blobs))),
        FieldKind::Ref(target) => Bound::plain(u64::from(table.count(target))),
        FieldKind::OptRef(target) => Bound::optional(u64::from(table.count(target))),
        FieldKind::Start(target) => Bound::range(u64::from(table.count(target))),
        FieldKind::ByteStart(target) => Bound::range(table.section(target).len() as u64),
    }
}

/// Every field of every record of `section` against its kind. A fast, branch-free pass finds
/// the first bad record; [`check_record`] then says what is wrong with it.
fn check_fields(
    table: &Table<'_>,
    section: Section,
    schema: &[FieldKind],
) -> Result<(), LoadError> {
    let n = schema.len();
    let mut bounds: Vec<Bound> = schema.iter().map(|&kind| bound(table, kind)).collect();
    if let Some(last) = bounds.last_mut() {
        // The last field has no next field (the record-level check reads it as 0).
        last.next_mask = 0;
    }
    let size = table.record_size(section);
    let records = table.section(section);
    let count = table.count(section) as usize;
    if n == 0 || size != n * 4 || records.len() < count.saturating_mul(size) {
        // The section table guarantees these; check record by record rather than trust it.
        return (0..table.count(section))
            .try_for_each(|idx| check_record(table, section, schema, idx));
    }
    for (idx, record) in records.chunks_exact(size).take(count).enumerate() {
        let word = |i: usize| -> u64 {
            record
                .get(i * 4..i * 4 + 4)
                .and_then(|b| b.try_into().ok())
                .map_or(0, |b| u64::from(u32::from_le_bytes(b)))
        };
        let mut over = false;
        for (i, bound) in bounds.iter().enumerate() {
            over |= !bound.passes(word(i), word((i + 1).min(n - 1)));
        }
        if over {
            let idx = idx as u32;
            check_record(table, section, schema, idx)?;
            return Err(LoadError::Field {
                section: section.name(),
                record: u64::from(idx),
                field: 0,
                problem: "a field is out of range".to_owned(),
            });
        }
    }
    Ok(())
}

/// One record against its schema, with a message for the first bad field.
fn check_record(
    table: &Table<'_>,
    section: Section,
    schema: &[FieldKind],
    idx: u32,
) -> Result<(), LoadError> {
    {
        let rec = table.rec(section, idx);
        for (field, kind) in schema.iter().enumerate() {
            let value = rec.get(field);
            let problem = match *kind {
                FieldKind::Plain | FieldKind::Len => None,
                FieldKind::Max(max) => {
                    (value > max).then(|| format!("value {value} exceeds {max}"))
                }
                FieldKind::OptMax(max) => {
                    (value != NONE && value > max).then(|| format!("value {value} exceeds {max}"))
                }
                FieldKind::Str => in_range(table, Section::Strings, value),
                FieldKind::OptStr => opt_in_range(table, Section::Strings, value),
                FieldKind::OptBlob => opt_in_range(table, Section::Blobs, value),
                FieldKind::Ref(target) => in_range(table, target, value),
                FieldKind::OptRef(target) => opt_in_range(table, target, value),
                FieldKind::Start(target) => {
                    let end = u64::from(value) + u64::from(rec.get(field + 1));
                    (end > u64::from(table.count(target))).then(|| {
                        format!(
                            "range {value}+{} exceeds the {} {}",
                            rec.get(field + 1),
                            table.count(target),
                            target.name()
                        )
                    })
                }
                FieldKind::ByteStart(target) => {
                    let end = u64::from(value) + u64::from(rec.get(field + 1));
                    let length = table.section(target).len() as u64;
                    (end > length).then(|| {
                        format!(
                            "byte range {value}+{} exceeds the {length} bytes of {}",
                            rec.get(field + 1),
                            target.name()
                        )
                    })
                }
            };
            if let Some(problem) = problem {
                return Err(LoadError::Field {
                    section: section.name(),
                    record: u64::from(idx),
                    field,
                    problem,
                });
            }
        }
    }
    Ok(())
}

fn in_range(table: &Table<'_>, target: Section, value: u32) -> Option<String> {
    let count = table.count(target);
    (value >= count).then(|| format!("index {value} out of range ({count} {})", target.name()))
}

fn opt_in_range(table: &Table<'_>, target: Section, value: u32) -> Option<String> {
    if value == NONE {
        None
    } else {
        in_range(table, target, value)
    }
}

/// Validates every string as UTF-8 once and keeps the `&str`s, so reads need no re-check.
fn check_strings<'a>(table: &Table<'a>) -> Result<Vec<&'a str>, LoadError> {
    let n = table.count(Section::Strings);
    let mut strs = Vec::with_capacity(n as usize);
    for id in 0..n {
        let s = std::str::from_utf8(table.raw_str_bytes(id))
            .map_err(|_| LoadError::InvalidUtf8 { string: id })?;
        strs.push(s);
    }
    Ok(strs)
}

fn field_error(section: Section, record: u32, field: usize, problem: &str) -> LoadError {
    LoadError::Field {
        section: section.name(),
        record: u64::from(record),
        field,
        problem: problem.to_owned(),
    }
}

/// Checks the invariants the executor relies on for correct (not just safe) answers: every
/// hash table probe ends and finds its key, candidate lists are in entry order, and splits
/// are cumulative.
fn check_lookup_structures(table: &Table<'_>) -> Result<(), LoadError> {
    if table.count(Section::Root) != 1 {
        return Err(field_error(
            Section::Root,
            0,
            0,
            "the root section must hold one record",
        ));
    }
    let lengths = table.rec(Section::Root, 0).range(root::SUFFIX_LENGTHS);
    check_increasing(
        table,
        Section::LengthList,
        lengths,
        Section::Root,
        0,
        root::SUFFIX_LENGTHS,
    )?;
    for slots in [Section::HostSlots, Section::KeySlots] {
        check_slot_placement(table, slots)?;
        if slots == Section::KeySlots {
            for idx in 0..table.count(slots) {
                let range = table.rec(slots, idx).range(slot::LIST);
                check_increasing(table, Section::EntryList, range, slots, idx, slot::LIST)?;
            }
        }
    }
    for idx in 0..table.count(Section::VirtualHosts) {
        let range = table.rec(Section::VirtualHosts, idx).range(vhost::RESIDUAL);
        check_increasing(
            table,
            Section::EntryList,
            range,
            Section::VirtualHosts,
            idx,
            vhost::RESIDUAL,
        )?;
    }
    for idx in 0..table.count(Section::Dimensions) {
        let rec = table.rec(Section::Dimensions, idx);
        let lengths = rec.range(dim::PREFIX_LENGTHS);
        check_increasing(
            table,
            Section::LengthList,
            lengths,
            Section::Dimensions,
            idx,
            dim::PREFIX_LENGTHS,
        )?;
        for key in rec.range(dim::REGEX_KEYS) {
            let range = table.rec(Section::RegexKeys, key).range(0);
            check_increasing(table, Section::EntryList, range, Section::RegexKeys, key, 0)?;
        }
    }
    // Splits: per policy (version 1: per route, whose record holds the policy fields).
    let (owner, base) = if table.version == 1 {
        (Section::Routes, route_v1::POLICY_BASE)
    } else {
        (Section::Policies, 0)
    };
    for idx in 0..table.count(owner) {
        let rec = table.rec(owner, idx).skip_fields(base);
        let mut total = 0u32;
        for d in rec.range(policy::DESTS) {
            let cumulative = table.rec(Section::Destinations, d).get(dest::CUMULATIVE);
            if cumulative < total {
                return Err(field_error(
                    Section::Destinations,
                    d,
                    dest::CUMULATIVE,
                    "weights are not cumulative",
                ));
            }
            total = cumulative;
        }
        if total != rec.get(policy::TOTAL_WEIGHT) {
            return Err(field_error(
                owner,
                idx,
                base + policy::TOTAL_WEIGHT,
                "total weight does not match the destinations",
            ));
        }
    }
    Ok(())
}

/// A hash table must let every probe end and every key be found. Version 1: a power-of-two
/// slot count (keys at the hash's low bits). Version 2: at least one slot and at least one
/// empty slot (a probe stops at the first empty slot, so a full table would probe forever
/// without the executor's bound), and Robin Hood placement, which lookups rely on to stop
/// early: in every run of occupied slots the first key is at its home slot and each next key
/// is at most one slot further from its home than the key before it (so every key is reached
/// from its home without crossing an empty slot or a key closer to its own home).
fn check_slot_placement(table: &Table<'_>, slots: Section) -> Result<(), LoadError> {
    let n = table.count(slots);
    if table.version == 1 {
        if n != 0 && !n.is_power_of_two() {
            return Err(field_error(slots, 0, 0, "slot count is not a power of two"));
        }
        return Ok(());
    }
    if n == 0 {
        return Err(field_error(slots, 0, 0, "the hash table has no slot"));
    }
    let occupied = |idx: u32| table.rec(slots, idx).get(slot::TAG) != 0;
    let Some(empty) = (0..n).find(|&idx| !occupied(idx)) else {
        return Err(field_error(
            slots,
            0,
            slot::TAG,
            "the hash table has no empty slot",
        ));
    };
    // Walk once around the table from just after an empty slot; `previous` is the distance
    // from home of the key in the slot before, `None` after an empty slot.
    let n64 = u64::from(n);
    let mut previous: Option<u64> = None;
    for step in 1..=n64 {
        let idx = ((u64::from(empty) + step) % n64) as u32;
        let rec = table.rec(slots, idx);
        if rec.get(slot::TAG) == 0 {
            previous = None;
            continue;
        }
        let hash = u64::from(rec.get(slot::HASH_LO)) | (u64::from(rec.get(slot::HASH_HI)) << 32);
        let distance = (u64::from(idx) + n64 - u64::from(home_slot(hash, n))) % n64;
        if distance > previous.map_or(0, |d| d + 1) {
            return Err(field_error(
                slots,
                idx,
                slot::HASH_LO,
                "the key is not where a lookup from its home slot finds it",
            ));
        }
        previous = Some(distance);
    }
    Ok(())
}

fn check_increasing(
    table: &Table<'_>,
    list: Section,
    range: std::ops::Range<u32>,
    owner: Section,
    record: u32,
    field: usize,
) -> Result<(), LoadError> {
    let mut previous: Option<u32> = None;
    for i in range {
        let value = table.item(list, i);
        if previous.is_some_and(|p| p >= value) {
            return Err(field_error(
                owner,
                record,
                field,
                "list is not strictly increasing",
            ));
        }
        previous = Some(value);
    }
    Ok(())
}

fn load_dfas<'a>(table: &Table<'a>) -> Result<Vec<DFA<&'a [u32]>>, LoadError> {
    let n = table.count(Section::Dfas);
    let all = table.raw_section(Section::DfaBytes);
    let mut dfas = Vec::with_capacity(n as usize);
    for id in 0..n {
        let rec = table.rec(Section::Dfas, id);
        let offset = rec.get(format::dfa::OFFSET) as usize;
        let len = rec.get(format::dfa::BYTES_LEN) as usize;
        let problem = |p: String| LoadError::Dfa {
            dfa: id,
            problem: p,
        };
        if !offset.is_multiple_of(SECTION_ALIGN) {
            return Err(problem(format!("offset {offset} is not 8-byte aligned")));
        }
        let slice = all.get(offset..offset + len).unwrap_or(&[]);
        let (dfa, _) = DFA::from_bytes(slice).map_err(|e| problem(e.to_string()))?;
        if dfa.start_kind() == StartKind::Unanchored {
            return Err(problem("does not support anchored searches".to_owned()));
        }
        let patterns = rec.get(format::dfa::PATTERNS) as usize;
        if regex_automata::dfa::Automaton::pattern_len(&dfa) != patterns {
            return Err(problem(format!(
                "has a pattern count different from {patterns}"
            )));
        }
        dfas.push(dfa);
    }
    Ok(dfas)
}

#[cfg(test)]
mod tests {
    use super::Bound;
    use crate::format::NONE;

    /// The branch-free form says the same as the plain definitions, at every edge.
    #[test]
    fn bounds_agree_with_their_definitions() {
        let limits = [0u32, 1, 2, 7, 1000, NONE - 1, NONE];
        let values = [
            0u32,
            1,
            2,
            6,
            7,
            8,
            999,
            1000,
            1001,
            NONE - 2,
            NONE - 1,
            NONE,
        ];
        for &limit in &limits {
            let l = u64::from(limit);
            for &v in &values {
                let x = u64::from(v);
                assert_eq!(Bound::plain(l).passes(x, 0), x < l, "{v} < {limit}");
                assert_eq!(Bound::plain(l + 1).passes(x, 0), x <= l, "{v} <= {limit}");
                assert_eq!(
                    Bound::optional(l).passes(x, 0),
                    v == NONE || x < l,
                    "{v} none or < {limit}"
                );
                for &next in &values {
                    let n = u64::from(next);
                    assert_eq!(
                        Bound::range(l).passes(x, n),
                        x + n <= l,
                        "{v}+{next} <= {limit}"
                    );
                    // The next field matters to ranges only.
                    assert_eq!(Bound::plain(l).passes(x, n), x < l);
                }
            }
        }
        assert!(Bound::plain(u64::MAX).passes(u64::from(NONE), u64::from(NONE)));
    }
}
