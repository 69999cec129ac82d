//! Section buffers, interning by content, hash tables and the final header + section table.
//!
//! Interning keeps the output deterministic: ids are assigned in first-use order and the
//! maps are only looked up, never iterated into output.

use std::collections::HashMap;

use super::EncodeError;
use crate::format::{
    self, CHECKSUM_OFFSET, ENDIAN_MARK, FORMAT_VERSION, HEADER_LEN, MAGIC, SECTION_ALIGN,
    SECTION_ENTRY_LEN, Section, slot, span,
};
use crate::hash::file_checksum;

/// One key of a hash table before placement.
pub struct SlotItem {
    pub hash: u64,
    pub tag: u32,
    pub scope: u32,
    pub key: u32,
    pub list: (u32, u32),
}

/// Accumulates records per section.
pub struct Writer {
    /// u32 words per record section, indexed by `Section as usize - 1`.
    records: Vec<Vec<u32>>,
    bytes: Vec<u8>,
    dfa_bytes: Vec<u8>,
    /// Interned strings; only looked up, never iterated, so ids follow first use.
    strings: HashMap<String, u32>,
    /// Interned blobs, by content.
    blobs: HashMap<Vec<u8>, u32>,
    /// Interned ranges and single records per section (indexed like `records`): the words of
    /// the records -> the first record.
    ranges: Vec<HashMap<Vec<u32>, u32>>,
}

fn too_large(what: &'static str) -> EncodeError {
    EncodeError::TooLarge { what }
}

impl Writer {
    pub fn new() -> Writer {
        Writer {
            records: vec![Vec::new(); Section::ALL.len()],
            bytes: Vec::new(),
            dfa_bytes: Vec::new(),
            strings: HashMap::new(),
            blobs: HashMap::new(),
            ranges: vec![HashMap::new(); Section::ALL.len()],
        }
    }

    fn words(&mut self, section: Section) -> &mut Vec<u32> {
        &mut self.records[section as usize - 1]
    }

    /// Number of records written so far: the id the next one gets.
    pub fn count(&self, section: Section) -> u32 {
        let fields = section.record_size() / 4;
        (self.records[section as usize - 1].len() / fields) as u32
    }

    pub fn push(&mut self, section: Section, fields: &[u32]) -> Result<u32, EncodeError> {
        debug_assert_eq!(fields.len() * 4, section.record_size(), "{section:?}");
        let id = self.count(section);
        if id == u32::MAX {
            return Err(too_large(section.name()));
        }
        self.words(section).extend_from_slice(fields);
        Ok(id)
    }

    /// Writes a list of one-field records and returns its (start, len); (0, 0) when empty.
    /// For lists whose position matters (entry lists); others go through [`Writer::interned_list`].
    pub fn list(
        &mut self,
        section: Section,
        items: impl IntoIterator<Item = u32>,
    ) -> Result<(u32, u32), EncodeError> {
        let start = self.count(section);
        for item in items {
            self.push(section, &[item])?;
        }
        let len = self.count(section) - start;
        Ok(if len == 0 { (0, 0) } else { (start, len) })
    }

    /// A list of one-field records, written once per distinct content.
    pub fn interned_list(
        &mut self,
        section: Section,
        items: impl IntoIterator<Item = u32>,
    ) -> Result<(u32, u32), EncodeError> {
        let words: Vec<u32> = items.into_iter().collect();
        self.interned_range(section, words)
    }

    /// A range of whole records (`words` holds them back to back), written once per distinct
    /// content: the same records again give the same (start, len). Empty is (0, 0).
    pub fn interned_range(
        &mut self,
        section: Section,
        words: Vec<u32>,
    ) -> Result<(u32, u32), EncodeError> {
        let fields = section.record_size() / 4;
        debug_assert!(words.len().is_multiple_of(fields), "{section:?}");
        let len = u32::try_from(words.len() / fields).map_err(|_| too_large(section.name()))?;
        if len == 0 {
            return Ok((0, 0));
        }
        if let Some(&start) = self.ranges[section as usize - 1].get(&words) {
            return Ok((start, len));
        }
        let start = self.count(section);
        if u64::from(start) + u64::from(len) >= u64::from(u32::MAX) {
            return Err(too_large(section.name()));
        }
        self.words(section).extend_from_slice(&words);
        self.ranges[section as usize - 1].insert(words, start);
        Ok((start, len))
    }

    /// One record, written once per distinct content; returns its id.
    pub fn intern(&mut self, section: Section, fields: &[u32]) -> Result<u32, EncodeError> {
        debug_assert_eq!(fields.len() * 4, section.record_size(), "{section:?}");
        self.interned_range(section, fields.to_vec())
            .map(|(start, _)| start)
    }

    fn span(&mut self, section: Section, data: &[u8]) -> Result<u32, EncodeError> {
        let offset = u32::try_from(self.bytes.len()).map_err(|_| too_large("string bytes"))?;
        let len = u32::try_from(data.len()).map_err(|_| too_large("string bytes"))?;
        offset
            .checked_add(len)
            .ok_or_else(|| too_large("string bytes"))?;
        self.bytes.extend_from_slice(data);
        let mut rec = [0u32; 2];
        rec[span::OFFSET] = offset;
        rec[span::LEN_FIELD] = len;
        self.push(section, &rec)
    }

    pub fn str(&mut self, value: &str) -> Result<u32, EncodeError> {
        if let Some(&id) = self.strings.get(value) {
            return Ok(id);
        }
        let id = self.span(Section::Strings, value.as_bytes())?;
        self.strings.insert(value.to_owned(), id);
        Ok(id)
    }

    pub fn opt_str(&mut self, value: Option<&str>) -> Result<u32, EncodeError> {
        value.map_or(Ok(format::NONE), |v| self.str(v))
    }

    pub fn blob(&mut self, value: &[u8]) -> Result<u32, EncodeError> {
        if let Some(&id) = self.blobs.get(value) {
            return Ok(id);
        }
        let id = self.span(Section::Blobs, value)?;
        self.blobs.insert(value.to_owned(), id);
        Ok(id)
    }

    /// Appends a serialized DFA at an 8-aligned offset of the DFA byte section.
    pub fn dfa(&mut self, serialized: &[u8]) -> Result<(u32, u32), EncodeError> {
        while !self.dfa_bytes.len().is_multiple_of(SECTION_ALIGN) {
            self.dfa_bytes.push(0);
        }
        let offset = u32::try_from(self.dfa_bytes.len()).map_err(|_| too_large("dfa bytes"))?;
        let len = u32::try_from(serialized.len()).map_err(|_| too_large("dfa bytes"))?;
        offset
            .checked_add(len)
            .ok_or_else(|| too_large("dfa bytes"))?;
        self.dfa_bytes.extend_from_slice(serialized);
        Ok((offset, len))
    }

    /// Places keys in an open-addressing table of [`format::slot_count`] slots (at most 0.6
    /// full, at least one slot left empty), by linear probing from each key's
    /// [`format::home_slot`] with wrap-around, Robin Hood style: a key moving along takes the
    /// slot of a key that is closer to its own home, which then moves on. Along every run,
    /// distances from home then grow by at most one per slot, so a lookup can stop at the first
    /// key closer to its home than the probe is to the sought key's (see `exec`). Keys are
    /// placed in insertion order, so placement is deterministic.
    pub fn hash_table(&mut self, section: Section, items: &[SlotItem]) -> Result<(), EncodeError> {
        let n_slots = format::slot_count(items.len());
        let n_slots_u32 = u32::try_from(n_slots)
            .ok()
            .filter(|&n| n < format::NONE)
            .ok_or_else(|| too_large(section.name()))?;
        let distance = |item: &SlotItem, idx: usize| {
            let home = format::home_slot(item.hash, n_slots_u32) as usize;
            (idx + n_slots - home) % n_slots
        };
        let mut table: Vec<Option<&SlotItem>> = vec![None; n_slots];
        for item in items {
            let mut moving = item;
            let mut idx = format::home_slot(moving.hash, n_slots_u32) as usize;
            // Terminates: there are more slots than items.
            while let Some(resident) = table[idx] {
                if distance(resident, idx) < distance(moving, idx) {
                    table[idx] = Some(moving);
                    moving = resident;
                }
                idx += 1;
                if idx == n_slots {
                    idx = 0;
                }
            }
            table[idx] = Some(moving);
        }
        for entry in table {
            let mut rec = [0u32; slot::LEN];
            rec[slot::KEY] = format::NONE;
            if let Some(item) = entry {
                rec[slot::HASH_LO] = item.hash as u32;
                rec[slot::HASH_HI] = (item.hash >> 32) as u32;
                rec[slot::TAG] = item.tag;
                rec[slot::SCOPE] = item.scope;
                rec[slot::KEY] = item.key;
                (rec[slot::LIST], rec[slot::LIST_LEN]) = item.list;
            }
            self.push(section, &rec)?;
        }
        Ok(())
    }

    /// Lays out header, section table and sections, then fills in the checksum.
    pub fn finish(self, content_hash: &[u8; 32]) -> Result<Vec<u8>, EncodeError> {
        let n_sections = Section::ALL.len();
        let mut out = vec![0u8; HEADER_LEN + n_sections * SECTION_ENTRY_LEN];
        let mut table = Vec::with_capacity(n_sections);
        for section in Section::ALL {
            while !out.len().is_multiple_of(SECTION_ALIGN) {
                out.push(0);
            }
            let offset = out.len();
            match section {
                Section::Bytes => out.extend_from_slice(&self.bytes),
                Section::DfaBytes => out.extend_from_slice(&self.dfa_bytes),
                _ => {
                    for word in &self.records[section as usize - 1] {
                        out.extend_from_slice(&word.to_le_bytes());
                    }
                }
            }
            let length = out.len() - offset;
            let count = length / section.record_size();
            table.push((section, offset, length, count));
        }
        out[0..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&ENDIAN_MARK.to_le_bytes());
        out[12..16].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[16..20].copy_from_slice(&0u32.to_le_bytes());
        out[20..24].copy_from_slice(&(n_sections as u32).to_le_bytes());
        out[24..56].copy_from_slice(content_hash);
        let payload_len = (out.len() - HEADER_LEN) as u64;
        out[56..64].copy_from_slice(&payload_len.to_le_bytes());
        for (i, (section, offset, length, count)) in table.into_iter().enumerate() {
            let at = HEADER_LEN + i * SECTION_ENTRY_LEN;
            out[at..at + 4].copy_from_slice(&(section as u32).to_le_bytes());
            out[at + 4..at + 8].copy_from_slice(&(section.record_size() as u32).to_le_bytes());
            out[at + 8..at + 16].copy_from_slice(&(offset as u64).to_le_bytes());
            out[at + 16..at + 24].copy_from_slice(&(length as u64).to_le_bytes());
            out[at + 24..at + 32].copy_from_slice(&(count as u64).to_le_bytes());
        }
        let checksum = file_checksum(&out);
        out[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 8].copy_from_slice(&checksum.to_le_bytes());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::{SlotItem, Writer};
    use crate::format::{self, Section, slot};

    /// The slots as (hash, key) or `None` for empty ones.
    fn place(hashes: &[u64]) -> Vec<Option<(u64, u32)>> {
        let items: Vec<SlotItem> = hashes
            .iter()
            .enumerate()
            .map(|(i, &hash)| SlotItem {
                hash,
                tag: 1 << 16,
                scope: 0,
                key: i as u32,
                list: (0, 0),
            })
            .collect();
        let mut w = Writer::new();
        w.hash_table(Section::KeySlots, &items).unwrap();
        w.records[Section::KeySlots as usize - 1]
            .chunks(slot::LEN)
            .map(|rec| {
                (rec[slot::TAG] != 0).then(|| {
                    let hash =
                        u64::from(rec[slot::HASH_LO]) | (u64::from(rec[slot::HASH_HI]) << 32);
                    (hash, rec[slot::KEY])
                })
            })
            .collect()
    }

    /// Every key placed once, an empty slot left, and Robin Hood order along every run: the
    /// first key of a run at its home, each next at most one slot further from its own.
    fn check(hashes: &[u64]) {
        let slots = place(hashes);
        let n = slots.len();
        assert_eq!(n, format::slot_count(hashes.len()));
        let mut keys: Vec<u32> = slots.iter().flatten().map(|&(_, key)| key).collect();
        keys.sort_unstable();
        assert_eq!(keys, (0..hashes.len() as u32).collect::<Vec<_>>());
        let empty = slots
            .iter()
            .position(Option::is_none)
            .expect("an empty slot");
        let mut previous: Option<usize> = None;
        for step in 1..=n {
            let idx = (empty + step) % n;
            let Some((hash, _)) = slots[idx] else {
                previous = None;
                continue;
            };
            let home = format::home_slot(hash, n as u32) as usize;
            let distance = (idx + n - home) % n;
            assert!(
                distance <= previous.map_or(0, |d| d + 1),
                "{hashes:?}: {slots:?}"
            );
            previous = Some(distance);
        }
    }

    #[test]
    fn keys_are_placed_robin_hood_style_even_when_they_collide() {
        check(&[]);
        check(&[0]);
        check(&[u64::MAX; 7]);
        check(&[0, 0, 0, u64::MAX, u64::MAX, u64::MAX]);
        // Homes spread out, then crowding one end so that runs wrap around.
        let mut hashes: Vec<u64> = (0..50).map(|i| i * (u64::MAX / 50)).collect();
        hashes.extend((0..30).map(|i| u64::MAX - i));
        check(&hashes);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let random: Vec<u64> = (0..5000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            })
            .collect();
        check(&random);
    }
}
