//! Why an artifact was refused, with messages that say what was found and what was expected.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The buffer does not start at an 8-byte aligned address.
    Misaligned {
        address_mod_8: usize,
    },
    Truncated {
        len: usize,
        need: usize,
    },
    BadMagic {
        found: [u8; 8],
    },
    WrongEndianness {
        found: u32,
    },
    UnsupportedVersion {
        found: u32,
    },
    UnknownFlags {
        found: u32,
    },
    LengthMismatch {
        declared: u64,
        actual: usize,
    },
    ChecksumMismatch {
        stored: u64,
        computed: u64,
    },
    SectionCount {
        found: u32,
        expected: usize,
    },
    /// Something wrong with one entry of the section table.
    Section {
        index: usize,
        name: &'static str,
        problem: String,
    },
    /// A record field that refers outside its target or holds an impossible value.
    Field {
        section: &'static str,
        record: u64,
        field: usize,
        problem: String,
    },
    InvalidUtf8 {
        string: u32,
    },
    Dfa {
        dfa: u32,
        problem: String,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Misaligned { address_mod_8 } => write!(
                f,
                "buffer is misaligned: it starts {address_mod_8} bytes past an 8-byte boundary (use AlignedBytes or an mmap)"
            ),
            LoadError::Truncated { len, need } => {
                write!(f, "truncated header: {len} bytes, need {need}")
            }
            LoadError::BadMagic { found } => {
                write!(
                    f,
                    "not a mesh table: magic is {found:02x?}, expected \"MESHTBL\\0\""
                )
            }
            LoadError::WrongEndianness { found } => {
                write!(f, "endianness mark is {found:#010x}, expected 0x01020304")
            }
            LoadError::UnsupportedVersion { found } => write!(
                f,
                "unsupported format version {found} (this reader supports versions {} to {})",
                crate::format::OLDEST_READABLE_VERSION,
                crate::format::FORMAT_VERSION
            ),
            LoadError::UnknownFlags { found } => write!(f, "unknown header flags {found:#x}"),
            LoadError::LengthMismatch { declared, actual } => write!(
                f,
                "length mismatch: header declares {declared} payload bytes, buffer has {actual}"
            ),
            LoadError::ChecksumMismatch { stored, computed } => write!(
                f,
                "checksum mismatch: stored {stored:#018x}, computed {computed:#018x} (file corrupted or truncated)"
            ),
            LoadError::SectionCount { found, expected } => {
                write!(f, "section table has {found} sections, expected {expected}")
            }
            LoadError::Section {
                index,
                name,
                problem,
            } => {
                write!(f, "section {index} ({name}) {problem}")
            }
            LoadError::Field {
                section,
                record,
                field,
                problem,
            } => {
                write!(f, "{section} record {record}, field {field}: {problem}")
            }
            LoadError::InvalidUtf8 { string } => write!(f, "string {string} is not valid UTF-8"),
            LoadError::Dfa { dfa, problem } => write!(f, "dfa {dfa}: {problem}"),
        }
    }
}

impl std::error::Error for LoadError {}
