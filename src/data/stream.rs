//! A text file read in chunks, never whole: UTF-8 checked across chunk
//! edges, binary files refused, and every chunk cut where tokenization does
//! not depend on the cut (after a newline that a non-space character
//! follows), so encoding chunk by chunk gives the ids of the whole text.

use super::DataError;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Chunks aim at this many bytes (a chunk is one unit of parallel encoding).
pub const CHUNK_BYTES: usize = 4 << 20;
/// A chunk with no safe cut (one enormous line) is cut at a character
/// boundary once it reaches this size.
const CHUNK_MAX: usize = 64 << 20;

/// One chunk: its text and its byte offset in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub offset: u64,
    pub text: String,
}

/// The chunks of a UTF-8 text file, in order.
pub struct TextChunks {
    path: PathBuf,
    file: std::fs::File,
    /// Bytes read but not yet returned (a carried tail).
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    offset: u64,
    eof: bool,
    target: usize,
}

/// Where a chunk of `bytes` (valid UTF-8 up to its end, except maybe an
/// incomplete last character) may end: just after a `\n` that a
/// non-whitespace character follows; the last such place, or `None`.
pub(crate) fn safe_cut(bytes: &[u8]) -> Option<usize> {
    let mut end = bytes.len();
    while let Some(nl) = bytes[..end].iter().rposition(|&b| b == b'\n') {
        let next = &bytes[nl + 1..];
        let c = match std::str::from_utf8(&next[..next.len().min(4)]) {
            Ok(s) => s.chars().next(),
            Err(e) if e.valid_up_to() > 0 => std::str::from_utf8(&next[..e.valid_up_to()])
                .ok()
                .and_then(|s| s.chars().next()),
            Err(_) => None,
        };
        if let Some(c) = c {
            if !c.is_whitespace() {
                return Some(nl + 1);
            }
        }
        end = nl;
    }
    None
}

impl TextChunks {
    pub fn open(path: &Path) -> Result<TextChunks, DataError> {
        Self::with_chunk_size(path, CHUNK_BYTES)
    }

    /// As [`TextChunks::open`], aiming at `target` bytes per chunk.
    pub fn with_chunk_size(path: &Path, target: usize) -> Result<TextChunks, DataError> {
        let file = super::sources::open_file(path)?;
        Ok(TextChunks {
            path: path.to_path_buf(),
            file,
            buf: Vec::new(),
            offset: 0,
            eof: false,
            target: target.max(16),
        })
    }

    /// Reads until `buf` holds `want` bytes or the file ends.
    fn fill(&mut self, want: usize) -> Result<(), DataError> {
        while !self.eof && self.buf.len() < want {
            let old = self.buf.len();
            self.buf.resize(want, 0);
            let n = self.file.read(&mut self.buf[old..]).map_err(|e| {
                DataError::file(&self.path, format!("cannot read: {e}; check the file"))
            })?;
            self.buf.truncate(old + n);
            if n == 0 {
                self.eof = true;
            }
        }
        Ok(())
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, DataError> {
        let mut want = self.target;
        loop {
            self.fill(want)?;
            if self.buf.is_empty() {
                return Ok(None);
            }
            if let Some(pos) = self.buf.iter().position(|&b| b == 0) {
                return Err(DataError::file(
                    &self.path,
                    format!(
                        "looks like a binary file (NUL byte at byte offset {}); give a UTF-8 text file",
                        self.offset + pos as u64
                    ),
                ));
            }
            let cut = if self.eof {
                Some(self.buf.len())
            } else if let Some(c) = safe_cut(&self.buf) {
                Some(c)
            } else if self.buf.len() >= CHUNK_MAX {
                // One enormous line: cut at a character boundary.
                let mut c = self.buf.len();
                while c > 0 && (self.buf[c - 1] & 0xC0) == 0x80 {
                    c -= 1;
                }
                Some(c.saturating_sub(1).max(1))
            } else {
                None
            };
            let Some(cut) = cut else {
                want = self.buf.len() * 2;
                continue;
            };
            let rest = self.buf.split_off(cut);
            let bytes = std::mem::replace(&mut self.buf, rest);
            let offset = self.offset;
            self.offset += bytes.len() as u64;
            let text = String::from_utf8(bytes).map_err(|e| {
                DataError::file(
                    &self.path,
                    format!(
                        "is not valid UTF-8 (first bad byte at byte offset {}); save it as UTF-8",
                        offset + e.utf8_error().valid_up_to() as u64
                    ),
                )
            })?;
            return Ok(Some(Chunk { offset, text }));
        }
    }
}

impl Iterator for TextChunks {
    type Item = Result<Chunk, DataError>;
    fn next(&mut self) -> Option<Self::Item> {
        match self.next_chunk() {
            Ok(Some(c)) => Some(Ok(c)),
            Ok(None) => None,
            Err(e) => {
                // Stop after an error.
                self.eof = true;
                self.buf.clear();
                Some(Err(e))
            }
        }
    }
}

pub use crate::hash::ContentHash;

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks_of(text: &str, target: usize) -> Vec<Chunk> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.txt");
        std::fs::write(&p, text).unwrap();
        TextChunks::with_chunk_size(&p, target)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    }

    #[test]
    fn chunks_concatenate_to_the_file_and_cut_before_a_non_space() {
        let text = "First line\n  indented\n\nSecond é漢\nthird\n\n\n x\nlast".repeat(50);
        for target in [16, 40, 100, 1000, 1 << 20] {
            let cs = chunks_of(&text, target);
            let joined: String = cs.iter().map(|c| c.text.as_str()).collect();
            assert_eq!(joined, text, "target {target}");
            let mut off = 0u64;
            for (i, c) in cs.iter().enumerate() {
                assert_eq!(c.offset, off);
                off += c.text.len() as u64;
                if i + 1 < cs.len() {
                    assert!(c.text.ends_with('\n'), "{:?}", c.text);
                    let next = cs[i + 1].text.chars().next().unwrap();
                    assert!(!next.is_whitespace(), "cut before {next:?}");
                }
            }
        }
    }

    #[test]
    fn one_huge_line_is_one_chunk_until_the_limit() {
        let text = "ab".repeat(1000);
        let cs = chunks_of(&text, 64);
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].text, text);
    }

    #[test]
    fn bad_utf8_and_nul_name_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.txt");
        let mut bytes = b"line one\nline two\n".repeat(10);
        bytes.push(0xff);
        std::fs::write(&p, &bytes).unwrap();
        let e = TextChunks::with_chunk_size(&p, 16)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("UTF-8") && e.contains("180") && e.contains("bad.txt"),
            "{e}"
        );
        bytes.pop();
        bytes[25] = 0;
        std::fs::write(&p, &bytes).unwrap();
        let e = TextChunks::open(&p)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("binary") && e.contains("offset 25"), "{e}");
    }
}
