//! Source files as the compiler sees them: a path as given, its text, and a line index.

use std::sync::Arc;

/// A byte range in one source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub start: u32,
    pub len: u32,
}

impl Span {
    pub const fn new(start: u32, len: u32) -> Self {
        Span { start, len }
    }

    pub const fn end(self) -> u32 {
        self.start + self.len
    }

    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end() as usize
    }
}

/// Index of a file in a [`SourceDb`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub u32);

/// One policy file: the path as the user gave it or as it was found, and its text.
#[derive(Debug)]
pub struct SourceFile {
    pub path: String,
    pub text: Arc<str>,
    /// False for a file kept only so that a diagnostic can point into it (for example one
    /// that is not UTF-8): the parser skips it.
    pub parse: bool,
    line_starts: Arc<[u32]>,
}

/// A 1-based line and column; the column counts characters, not bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineCol {
    pub line: u32,
    pub column: u32,
}

impl SourceFile {
    pub fn new(path: String, text: impl Into<Arc<str>>) -> Self {
        let text: Arc<str> = text.into();
        let mut line_starts = vec![0u32];
        line_starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i as u32 + 1),
        );
        SourceFile {
            path,
            text,
            parse: true,
            line_starts: line_starts.into(),
        }
    }

    /// A file that diagnostics may point into but that is not parsed.
    pub fn unparsed(path: String, text: impl Into<Arc<str>>) -> Self {
        SourceFile {
            parse: false,
            ..SourceFile::new(path, text)
        }
    }

    /// The line and column of a byte offset (clamped to the text).
    pub fn line_col(&self, offset: u32) -> LineCol {
        let offset = offset.min(self.text.len() as u32);
        let line_idx = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let line_start = self.line_starts[line_idx] as usize;
        let mut end = offset as usize;
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let column = self.text[line_start..end].chars().count() as u32 + 1;
        LineCol {
            line: line_idx as u32 + 1,
            column,
        }
    }

    /// Byte offsets where lines start (the first is 0), shared cheaply.
    pub fn line_starts(&self) -> Arc<[u32]> {
        self.line_starts.clone()
    }

    /// The byte offset of a 1-based line and character column, if it exists.
    pub fn offset_of(&self, line: u32, column: u32) -> Option<u32> {
        let start = *self.line_starts.get(line.checked_sub(1)? as usize)? as usize;
        let rest = &self.text[start..];
        let mut offset = start;
        for (n, (i, _)) in rest.char_indices().enumerate() {
            if n + 1 == column as usize {
                return Some((start + i) as u32);
            }
            offset = start + i;
        }
        Some(offset.min(self.text.len()) as u32)
    }
}

/// Every file read in one run, addressed by [`FileId`].
#[derive(Debug, Default)]
pub struct SourceDb {
    files: Vec<SourceFile>,
}

impl SourceDb {
    pub fn add(&mut self, file: SourceFile) -> FileId {
        self.files.push(file);
        FileId(self.files.len() as u32 - 1)
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(i as u32), f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let f = SourceFile::new("a.yaml".into(), "ab\nçd: x\n");
        assert_eq!(f.line_col(0), LineCol { line: 1, column: 1 });
        assert_eq!(f.line_col(3), LineCol { line: 2, column: 1 });
        // `d` follows a two-byte character.
        assert_eq!(f.line_col(5), LineCol { line: 2, column: 2 });
        assert_eq!(f.offset_of(2, 2), Some(5));
    }
}
