//! Section buffers, string interning, hash tables and the final header + section table.

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

    /// Writes a list of one-field records and returns its (start, len).
    pub fn list(
        &mut self,
        section: Section,
        items: impl IntoIterator<Item = u32>,
    ) -> Result<(u32, u32), EncodeError> {
        let start = self.count(section);
        for item in items {
            self.push(section, &[item])?;
        }
        Ok((start, self.count(section) - start))
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
        self.span(Section::Blobs, value)
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

    /// Places keys in an open-addressing table of a power-of-two size at most half full, by
    /// linear probing in insertion order (so placement is deterministic).
    pub fn hash_table(&mut self, section: Section, items: &[SlotItem]) -> Result<(), EncodeError> {
        if items.is_empty() {
            return Ok(());
        }
        let n_slots = (items.len() * 2).next_power_of_two();
        if n_slots > u32::MAX as usize / 2 {
            return Err(too_large(section.name()));
        }
        let mut table: Vec<Option<&SlotItem>> = vec![None; n_slots];
        let mask = n_slots - 1;
        for item in items {
            let mut idx = (item.hash as usize) & mask;
            while table[idx].is_some() {
                idx = (idx + 1) & mask;
            }
            table[idx] = Some(item);
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
