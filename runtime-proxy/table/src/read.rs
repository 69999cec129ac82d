//! The checked reader: `Table::load` validates an artifact once, then hands out plain reads.
//!
//! `Table::load_shared` gives an owned `Table<'static>` for the proxy's `ArcSwap`: the table
//! keeps its `Arc<AlignedBytes>` and the same section slices point into it. That is the one
//! `unsafe` block of the workspace (see its SAFETY comment); it keeps reads as cheap as in the
//! borrowed form (one slice, one bounds check), where slicing by offsets on every access cost
//! about a third more per lookup.
//!
//! After `load` succeeds every index and range in every record is known to be in bounds, so
//! the accessors below cannot fail; they still use `get` rather than indexing, so that even a
//! validator bug degrades to a wrong answer, never a panic.

#![allow(unsafe_code)]

mod error;
mod validate;

use std::sync::Arc;

use regex_automata::dfa::dense::DFA;

use crate::format::{NONE, Section, route, route_v1, span};
pub use error::LoadError;

/// Where one section lies in the buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SectionInfo {
    pub offset: usize,
    pub length: usize,
    pub count: u32,
}

/// Header facts for `meshc inspect`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableInfo {
    pub version: u32,
    pub flags: u32,
    pub content_hash: [u8; 32],
    pub total_len: usize,
    pub checksum: u64,
    /// Every section with its name, in layout order.
    pub sections: Vec<(&'static str, SectionInfo)>,
}

/// A loaded, validated routing table: borrowing the artifact bytes (`Table<'a>` from
/// [`Table::load`]) or owning them (`Table<'static>` from [`Table::load_shared`]).
///
/// Invariant for the owned form: nothing typed with `'a` leaves the table; every accessor
/// returns data borrowed from `&self`, so no slice outlives `owner`.
pub struct Table<'a> {
    pub(crate) bytes: &'a [u8],
    /// The buffer `bytes` points into, when the table owns it.
    pub(crate) owner: Option<Arc<AlignedBytes>>,
    pub(crate) sections: [SectionInfo; Section::ALL.len()],
    /// The same sections as slices, so a record read is one bounds check, not two.
    pub(crate) slices: [&'a [u8]; Section::ALL.len()],
    pub(crate) dfas: Vec<DFA<&'a [u32]>>,
    /// Every string, validated as UTF-8 at load.
    pub(crate) strs: Vec<&'a str>,
    pub(crate) version: u32,
    pub(crate) flags: u32,
    pub(crate) content_hash: [u8; 32],
    pub(crate) checksum: u64,
}

impl std::fmt::Debug for Table<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("len", &self.bytes.len())
            .field("owned", &self.owner.is_some())
            .field("virtual_hosts", &self.count(Section::VirtualHosts))
            .field("routes", &self.count(Section::Routes))
            .field("clusters", &self.count(Section::Clusters))
            .finish()
    }
}

/// One fixed-size record: little-endian u32 fields.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rec<'a>(&'a [u8]);

impl<'a> Rec<'a> {
    #[inline]
    pub(crate) fn get(self, field: usize) -> u32 {
        self.0
            .get(field * 4..field * 4 + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    }

    /// The record from field `first` on, so that its field `first + f` reads as field `f`.
    #[inline]
    pub(crate) fn skip_fields(self, first: usize) -> Rec<'a> {
        Rec(self.0.get(first * 4..).unwrap_or(&[]))
    }

    /// A (start, len) pair as an index range.
    #[inline]
    pub(crate) fn range(self, field: usize) -> std::ops::Range<u32> {
        let start = self.get(field);
        start..start.saturating_add(self.get(field + 1))
    }
}

impl<'a> Table<'a> {
    /// Validates `bytes` and returns the table, or says what is wrong. `bytes` must start at an
    /// 8-byte aligned address (an mmap, or [`AlignedBytes`](crate::AlignedBytes)).
    pub fn load(bytes: &'a [u8]) -> Result<Table<'a>, LoadError> {
        validate::load(bytes)
    }

    /// The artifact bytes this table reads.
    pub fn bytes(&self) -> &[u8] {
        self.bytes
    }

    /// Header facts and section sizes.
    pub fn info(&self) -> TableInfo {
        TableInfo {
            version: self.version,
            flags: self.flags,
            content_hash: self.content_hash,
            total_len: self.bytes.len(),
            checksum: self.checksum,
            sections: Section::all_in(self.version)
                .unwrap_or(&Section::ALL)
                .iter()
                .map(|s| (s.name(), self.sections[*s as usize - 1]))
                .collect(),
        }
    }

    pub fn content_hash(&self) -> &[u8; 32] {
        &self.content_hash
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    #[inline]
    pub(crate) fn section(&self, section: Section) -> &[u8] {
        self.slices[section as usize - 1]
    }

    #[inline]
    pub(crate) fn count(&self, section: Section) -> u32 {
        self.sections[section as usize - 1].count
    }

    /// Bytes per record of a section in this table's format version.
    #[inline]
    pub(crate) fn record_size(&self, section: Section) -> usize {
        if section == Section::Routes && self.version == 1 {
            route_v1::LEN * 4
        } else {
            section.record_size()
        }
    }

    #[inline]
    pub(crate) fn rec(&self, section: Section, idx: u32) -> Rec<'_> {
        let size = self.record_size(section);
        let start = idx as usize * size;
        Rec(self
            .section(section)
            .get(start..start + size)
            .unwrap_or(&[]))
    }

    /// The policy of a route (read with `format::policy` field indexes): its record in
    /// `Policies`, or in version 1 the route record's own fields from `route_v1::POLICY_BASE`.
    #[inline]
    pub(crate) fn policy(&self, route_id: u32) -> Rec<'_> {
        let route = self.rec(Section::Routes, route_id);
        if self.version == 1 {
            route.skip_fields(route_v1::POLICY_BASE)
        } else {
            self.rec(Section::Policies, route.get(route::POLICY))
        }
    }

    /// The single value of a one-field list record.
    #[inline]
    pub(crate) fn item(&self, section: Section, idx: u32) -> u32 {
        self.rec(section, idx).get(0)
    }

    fn span(&self, section: Section, id: u32) -> &[u8] {
        let rec = self.rec(section, id);
        let offset = rec.get(span::OFFSET) as usize;
        let len = rec.get(span::LEN_FIELD) as usize;
        self.section(Section::Bytes)
            .get(offset..offset + len)
            .unwrap_or(&[])
    }

    /// A section with the buffer's lifetime, for load-time validation only (this module and
    /// `validate`): keeping `'a` from the rest of the crate is what makes the owned form sound.
    fn raw_section(&self, section: Section) -> &'a [u8] {
        self.slices[section as usize - 1]
    }

    /// A string's bytes with the buffer's lifetime, for load-time validation only.
    fn raw_str_bytes(&self, id: u32) -> &'a [u8] {
        let rec = self.rec(Section::Strings, id);
        let offset = rec.get(span::OFFSET) as usize;
        let len = rec.get(span::LEN_FIELD) as usize;
        self.raw_section(Section::Bytes)
            .get(offset..offset + len)
            .unwrap_or(&[])
    }

    #[inline]
    pub(crate) fn str_bytes(&self, id: u32) -> &[u8] {
        self.span(Section::Strings, id)
    }

    /// A string by id (empty for `NONE`, which callers check first).
    #[inline]
    pub(crate) fn str(&self, id: u32) -> &str {
        self.strs.get(id as usize).copied().unwrap_or("")
    }

    pub(crate) fn opt_str(&self, id: u32) -> Option<&str> {
        (id != NONE).then(|| self.str(id))
    }

    pub(crate) fn blob(&self, id: u32) -> &[u8] {
        if id == NONE {
            &[]
        } else {
            self.span(Section::Blobs, id)
        }
    }

    pub(crate) fn dfa(&self, id: u32) -> Option<&DFA<&[u32]>> {
        self.dfas.get(id as usize)
    }
}

impl Table<'static> {
    /// Validates an artifact and returns a table that owns (shares) its bytes, for a proxy
    /// that keeps the table in an `Arc`/`ArcSwap` across tasks. Validation is the same as
    /// [`Table::load`]'s, and reads cost the same.
    pub fn load_shared(bytes: Arc<AlignedBytes>) -> Result<Table<'static>, LoadError> {
        // SAFETY: the slice points into the heap buffer of an `AlignedBytes` that the returned
        // table keeps alive in `owner`. That buffer never moves (moving the `Arc` or the table
        // moves pointers, not the allocation) and is never written (`AlignedBytes` has no
        // mutating method, and its fields are private). The `'static` lifetime never escapes:
        // every accessor of `Table` returns references bounded by `&self`, so no reference
        // into the buffer outlives the table that owns it.
        let static_bytes: &'static [u8] = unsafe { &*std::ptr::from_ref::<[u8]>(bytes.as_bytes()) };
        let mut table = validate::load(static_bytes)?;
        table.owner = Some(bytes);
        Ok(table)
    }

    /// [`Table::load_shared`] for bytes read from a file (copied once into aligned memory).
    pub fn load_owned(bytes: &[u8]) -> Result<Table<'static>, LoadError> {
        Table::load_shared(Arc::new(AlignedBytes::new(bytes)))
    }
}

/// An owned, 8-byte aligned byte buffer for callers that read an artifact into memory.
///
/// It over-allocates by 7 bytes and starts the data at the first aligned address inside the
/// allocation (a heap buffer does not move when the `Vec` does), which needs no `unsafe`.
#[derive(Default)]
pub struct AlignedBytes {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBytes {
    pub fn new(bytes: &[u8]) -> AlignedBytes {
        let mut buf = vec![0u8; bytes.len() + 7];
        let start = buf.as_ptr().align_offset(8).min(7);
        buf[start..start + bytes.len()].copy_from_slice(bytes);
        AlignedBytes {
            buf,
            start,
            len: bytes.len(),
        }
    }

    /// `len` zero bytes at an aligned address, to read a file into with
    /// [`AlignedBytes::as_mut_bytes`]: one copy from the page cache, none after.
    pub fn zeroed(len: usize) -> AlignedBytes {
        let buf = vec![0u8; len + 7];
        let start = buf.as_ptr().align_offset(8).min(7);
        AlignedBytes { buf, start, len }
    }

    /// The bytes, writable (before the table is loaded from them).
    pub fn as_mut_bytes(&mut self) -> &mut [u8] {
        let (start, len) = (self.start, self.len);
        self.buf.get_mut(start..start + len).unwrap_or(&mut [])
    }

    /// The bytes, starting at an 8-byte aligned address.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf
            .get(self.start..self.start + self.len)
            .unwrap_or(&[])
    }
}

impl Clone for AlignedBytes {
    /// A clone is a new allocation, so it has to find its own aligned start.
    fn clone(&self) -> AlignedBytes {
        AlignedBytes::new(self.as_bytes())
    }
}

impl std::fmt::Debug for AlignedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBytes")
            .field("len", &self.len)
            .finish()
    }
}

impl std::ops::Deref for AlignedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}
