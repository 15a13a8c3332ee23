//! The token cache: a corpus tokenized once, in parallel, into a file of
//! `u16` ids (when the vocabulary fits) or `u32` ids, memory-mapped for
//! training, with an index of chunk boundaries (byte offset in the corpus,
//! token offset). Keyed by the data's content hash and the tokenizer's hash,
//! written atomically (temporary file, fsync, rename), checked on open
//! (magic, length, CRC-32 of everything after the header) and rebuilt when
//! it does not check out.
//!
//! File layout (little-endian): a 64-byte header (`HSTOK001`, width in bytes,
//! CRC-32, token count, data hash, tokenizer hash, index entries), the ids,
//! zero padding to 8 bytes, then `(byte offset, token offset)` per chunk as
//! two `u64`s.

use super::stream::Chunk;
use super::DataError;
use crate::tokenizer::Tokenizer;
use rayon::prelude::*;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

const MAGIC: &[u8; 8] = b"HSTOK001";
const HEADER: usize = 64;
/// The file name suffix of token cache files.
pub const SUFFIX: &str = "tokens";
/// The file name suffix of tokenizers trained on a sample and kept beside them.
pub const TOKENIZER_SUFFIX: &str = "tokenizer.json";

/// Bytes per stored id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    U16,
    U32,
}

impl Width {
    pub fn bytes(self) -> usize {
        match self {
            Width::U16 => 2,
            Width::U32 => 4,
        }
    }

    /// `u16` when every id of a `vocab_size` vocabulary fits, else `u32`.
    pub fn for_vocab(vocab_size: usize) -> Width {
        if vocab_size <= 1 << 16 {
            Width::U16
        } else {
            Width::U32
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("token cache {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("token cache: {0}")]
    Other(String),
    #[error("tokenization cancelled; no token cache was written")]
    Cancelled,
    #[error(transparent)]
    Data(#[from] DataError),
}

fn file_err(path: &Path, message: impl Into<String>) -> CacheError {
    CacheError::File {
        path: path.into(),
        message: super::one_line(&message.into()),
    }
}

/// What a cache is of: the data's content hash and the tokenizer's hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheKey {
    pub data: u64,
    pub tokenizer: u64,
}

impl CacheKey {
    /// `<data>-<tokenizer>.tokens`, the hashes in hex.
    pub fn file_name(&self) -> String {
        format!("{:016x}-{:016x}.{SUFFIX}", self.data, self.tokenizer)
    }
}

/// The directory of token caches: `$HEADSUP_CACHE_DIR`, else `tokens/` in
/// the user's cache directory (`directories`: `~/.cache/headsup/tokens` on
/// Linux).
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HEADSUP_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    directories::ProjectDirs::from("", "", "headsup")
        .map(|d| d.cache_dir().join("tokens"))
        .unwrap_or_else(|| PathBuf::from(".headsup-cache/tokens"))
}

/// A checked, memory-mapped token cache.
pub struct TokenCache {
    path: PathBuf,
    map: memmap2::Mmap,
    width: Width,
    len: usize,
    key: CacheKey,
    index_len: usize,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TokenCache({}, {} tokens, {:?})",
            self.path.display(),
            self.len,
            self.width
        )
    }
}

/// CRC-32 of everything after the header, read with `read` rather than
/// through the map, so that checking a large cache does not make all of it
/// resident in this process.
fn payload_crc(file: &File, len: usize) -> std::io::Result<u32> {
    use std::io::Read;
    let mut f = file;
    f.seek(SeekFrom::Start(HEADER as u64))?;
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len - HEADER;
    while left > 0 {
        let n = f.read(&mut buf[..left.min(1 << 20)])?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        h.update(&buf[..n]);
        left -= n;
    }
    Ok(h.finalize())
}

fn pad8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

impl TokenCache {
    /// Opens and checks the cache at `path` (and, when given, that it is of
    /// `key`). Any mismatch (short file, wrong length, bad checksum) is an
    /// error: the caller rebuilds.
    pub fn open(path: &Path, key: Option<CacheKey>) -> Result<TokenCache, CacheError> {
        let file = File::open(path).map_err(|e| file_err(path, format!("cannot open: {e}")))?;
        // SAFETY: the file is ours (written by `build` and renamed into
        // place, never written again); a file changed under the map by
        // another program is the one hazard, and the checksum below is
        // checked after mapping.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|e| file_err(path, format!("cannot map: {e}")))?;
        if map.len() < HEADER || &map[..8] != MAGIC {
            return Err(file_err(
                path,
                "is not a headsup token cache (bad header); it will be rebuilt",
            ));
        }
        let width = match u32_at(&map, 8) {
            2 => Width::U16,
            4 => Width::U32,
            w => return Err(file_err(path, format!("has an unknown id width {w}"))),
        };
        let crc = u32_at(&map, 12);
        let len = u64_at(&map, 16) as usize;
        let found = CacheKey {
            data: u64_at(&map, 24),
            tokenizer: u64_at(&map, 32),
        };
        let index_len = u64_at(&map, 40) as usize;
        let want = len
            .checked_mul(width.bytes())
            .and_then(|b| pad8(b).checked_add(HEADER))
            .and_then(|b| index_len.checked_mul(16).and_then(|i| b.checked_add(i)));
        if want != Some(map.len()) {
            return Err(file_err(
                path,
                format!(
                    "is truncated or corrupted ({} bytes, the header says {}); it will be rebuilt",
                    map.len(),
                    want.map(|w| w.to_string())
                        .unwrap_or_else(|| "an overflow".into())
                ),
            ));
        }
        if payload_crc(&file, map.len()).map_err(|e| file_err(path, format!("cannot read: {e}")))?
            != crc
        {
            return Err(file_err(
                path,
                "is corrupted (checksum mismatch); it will be rebuilt",
            ));
        }
        if let Some(k) = key {
            if k != found {
                return Err(file_err(path, "is of other data or another tokenizer"));
            }
        }
        Ok(TokenCache {
            path: path.to_path_buf(),
            map,
            width,
            len,
            key: found,
            index_len,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn key(&self) -> CacheKey {
        self.key
    }

    pub fn width(&self) -> Width {
        self.width
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Token `i` (`i < len`).
    pub fn get(&self, i: usize) -> u32 {
        assert!(i < self.len, "token {i} of {}", self.len);
        match self.width {
            Width::U16 => {
                let at = HEADER + 2 * i;
                u16::from_le_bytes([self.map[at], self.map[at + 1]]) as u32
            }
            Width::U32 => u32_at(&self.map, HEADER + 4 * i),
        }
    }

    /// Appends tokens `start..start + n` to `out` as `usize`.
    pub fn extend_window(&self, start: usize, n: usize, out: &mut Vec<usize>) {
        assert!(start + n <= self.len, "window {start}+{n} of {}", self.len);
        let w = self.width.bytes();
        let bytes = &self.map[HEADER + w * start..HEADER + w * (start + n)];
        match self.width {
            Width::U16 => out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize),
            ),
            Width::U32 => out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize),
            ),
        }
    }

    /// Tokens `range` as `u32`.
    pub fn to_vec(&self, range: std::ops::Range<usize>) -> Vec<u32> {
        let mut out = Vec::with_capacity(range.len());
        self.extend_window(range.start, range.len(), &mut out);
        out.into_iter().map(|t| t as u32).collect()
    }

    /// `(byte offset in the corpus, token offset)` of every chunk, in order:
    /// chunk `i`'s tokens are `index[i].1..index[i + 1].1` (or `..len`).
    pub fn chunk_index(&self) -> Vec<(u64, u64)> {
        let at = HEADER + pad8(self.len * self.width.bytes());
        (0..self.index_len)
            .map(|i| {
                (
                    u64_at(&self.map, at + 16 * i),
                    u64_at(&self.map, at + 16 * i + 8),
                )
            })
            .collect()
    }
}

/// How far a long step is: `done` of `total` units (bytes), since `started`.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub phase: &'static str,
    pub done: u64,
    pub total: u64,
    pub started: Instant,
}

impl Progress {
    /// `tokenizing 45.0/223.0 MB (20%), 12.3 MB/s, ETA 14s`.
    pub fn line(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let rate = self.done as f64 / secs;
        let mb = |b: u64| b as f64 / 1e6;
        let pct = if self.total == 0 {
            100.0
        } else {
            100.0 * self.done as f64 / self.total as f64
        };
        let eta = if rate > 0.0 && self.total >= self.done {
            format!("{:.0}s", (self.total - self.done) as f64 / rate)
        } else {
            "?".into()
        };
        format!(
            "{} {:.1}/{:.1} MB ({pct:.0}%), {:.1} MB/s, ETA {eta}",
            self.phase,
            mb(self.done),
            mb(self.total),
            rate / 1e6
        )
    }
}

/// Options of [`build`].
#[derive(Default)]
pub struct BuildOptions<'a> {
    /// The id width asked for; `None` chooses from the vocabulary size.
    pub width: Option<Width>,
    /// Set (e.g. by Ctrl-C) to stop: the temporary file is removed.
    pub cancel: Option<&'a AtomicBool>,
    /// Called after every batch of chunks.
    pub progress: Option<&'a mut dyn FnMut(&Progress)>,
}

/// Removes the temporary file unless the build got to the rename.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Tokenizes `chunks` (the corpus in order; `total_bytes` of it, for the
/// progress) with `tok`, in parallel, into the cache file `dest`, atomically,
/// and opens it.
pub fn build(
    dest: &Path,
    key: CacheKey,
    tok: &Tokenizer,
    chunks: impl Iterator<Item = Result<Chunk, DataError>>,
    total_bytes: u64,
    mut opts: BuildOptions<'_>,
) -> Result<TokenCache, CacheError> {
    let vocab = tok.vocab_size();
    let width = match opts.width {
        Some(Width::U16) if vocab > 1 << 16 => {
            return Err(CacheError::Other(format!(
                "the vocabulary has {vocab} tokens, more than u16 ids can hold (65536); ask for u32 ids"
            )))
        }
        Some(w) => w,
        None => Width::for_vocab(vocab),
    };
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| {
        file_err(
            dir,
            format!("cannot create the cache directory: {e}; set HEADSUP_CACHE_DIR to a writable directory"),
        )
    })?;
    check_space(dir, total_bytes.saturating_mul(width.bytes() as u64))?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cache".into());
    let tmp_path = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut guard = TempFile(Some(tmp_path.clone()));
    let io = |e: std::io::Error| {
        file_err(
            &tmp_path,
            format!("cannot write: {e}; check the disk space and HEADSUP_CACHE_DIR"),
        )
    };
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp_path).map_err(io)?);
    out.write_all(&[0u8; HEADER]).map_err(io)?;
    let mut crc = crc32fast::Hasher::new();
    let mut index: Vec<(u64, u64)> = Vec::new();
    let mut n_tokens: u64 = 0;
    let started = Instant::now();
    let mut done: u64 = 0;
    let group = rayon::current_num_threads().max(1) * 2;
    let mut chunks = chunks.peekable();
    let mut bytes_buf: Vec<u8> = Vec::new();
    while chunks.peek().is_some() {
        if opts.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(CacheError::Cancelled);
        }
        let batch: Vec<Chunk> = chunks.by_ref().take(group).collect::<Result<Vec<_>, _>>()?;
        let ids: Vec<Vec<u32>> = batch.par_iter().map(|c| tok.encode(&c.text)).collect();
        for (c, ids) in batch.iter().zip(&ids) {
            index.push((c.offset, n_tokens));
            n_tokens += ids.len() as u64;
            done += c.text.len() as u64;
            bytes_buf.clear();
            match width {
                Width::U16 => {
                    for &t in ids {
                        let t = u16::try_from(t).map_err(|_| {
                            CacheError::Other(format!(
                                "token id {t} does not fit u16 ids; ask for u32 ids"
                            ))
                        })?;
                        bytes_buf.extend_from_slice(&t.to_le_bytes());
                    }
                }
                Width::U32 => {
                    for &t in ids {
                        bytes_buf.extend_from_slice(&t.to_le_bytes());
                    }
                }
            }
            crc.update(&bytes_buf);
            out.write_all(&bytes_buf).map_err(io)?;
        }
        if let Some(p) = opts.progress.as_mut() {
            p(&Progress {
                phase: "tokenizing",
                done,
                total: total_bytes.max(done),
                started,
            });
        }
    }
    let payload = n_tokens as usize * width.bytes();
    let pad = vec![0u8; pad8(payload) - payload];
    crc.update(&pad);
    out.write_all(&pad).map_err(io)?;
    for &(b, t) in &index {
        let mut e = [0u8; 16];
        e[..8].copy_from_slice(&b.to_le_bytes());
        e[8..].copy_from_slice(&t.to_le_bytes());
        crc.update(&e);
        out.write_all(&e).map_err(io)?;
    }
    let mut header = [0u8; HEADER];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&(width.bytes() as u32).to_le_bytes());
    header[12..16].copy_from_slice(&crc.finalize().to_le_bytes());
    header[16..24].copy_from_slice(&n_tokens.to_le_bytes());
    header[24..32].copy_from_slice(&key.data.to_le_bytes());
    header[32..40].copy_from_slice(&key.tokenizer.to_le_bytes());
    header[40..48].copy_from_slice(&(index.len() as u64).to_le_bytes());
    let mut file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.write_all(&header).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    if opts.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
        return Err(CacheError::Cancelled);
    }
    std::fs::rename(&tmp_path, dest).map_err(|e| {
        file_err(
            dest,
            format!("cannot move the finished cache into place: {e}"),
        )
    })?;
    guard.0 = None;
    crate::fsutil::sync_dir(dir);
    TokenCache::open(dest, Some(key))
}

/// Fails before any work when the file system of `dir` has less than
/// `need` bytes free (Linux; elsewhere unchecked).
pub(crate) fn check_space(dir: &Path, need: u64) -> Result<(), CacheError> {
    if let Some(free) = free_bytes(dir) {
        // The estimate is an upper bound (one id per byte); keep a margin.
        if free < need + (64 << 20) {
            return Err(file_err(
                dir,
                format!(
                    "needs up to {:.1} MB for the token cache but only {:.1} MB are free; free some space or set HEADSUP_CACHE_DIR to a larger disk",
                    need as f64 / 1e6,
                    free as f64 / 1e6
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain old data, for which all zeroes is a value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a valid statvfs to fill.
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (r == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn free_bytes(_dir: &Path) -> Option<u64> {
    None
}

/// One cache file, for `headsup cache ls`.
#[derive(Debug, Clone)]
pub struct CacheEntry {
    pub path: PathBuf,
    pub bytes: u64,
    /// `Some(tokens)` when a token cache checks out (`None` for a tokenizer).
    pub tokens: Option<usize>,
    /// Why not, when it does not.
    pub problem: Option<String>,
    pub modified: Option<std::time::SystemTime>,
}

/// The token caches (checked) and kept tokenizers in `dir`, and temporary
/// files that interrupted builds left behind.
pub fn list(dir: &Path) -> Vec<CacheEntry> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let is_cache = name.ends_with(&format!(".{SUFFIX}")) && !name.starts_with('.');
        let is_tok = name.ends_with(&format!(".{TOKENIZER_SUFFIX}")) && !name.starts_with('.');
        let side = [
            super::records::RECORDS_SUFFIX,
            super::records::CORPUS_SUFFIX,
            super::records::STATS_SUFFIX,
        ];
        let is_side =
            !name.starts_with('.') && side.iter().any(|s| name.ends_with(&format!(".{s}")));
        let is_tmp = name.starts_with('.')
            && [SUFFIX, TOKENIZER_SUFFIX]
                .iter()
                .chain(side.iter())
                .any(|s| name.contains(&format!(".{s}.tmp")))
            || name.starts_with('.') && name.contains(".records.titles.tmp-");
        if !is_cache && !is_tmp && !is_tok && !is_side {
            continue;
        }
        let meta = e.metadata().ok();
        let (tokens, problem) = if is_tmp {
            (None, Some("unfinished (an interrupted build)".to_string()))
        } else if is_tok || is_side {
            (None, None)
        } else {
            match TokenCache::open(&path, None) {
                Ok(c) => (Some(c.len()), None),
                Err(e) => (None, Some(e.to_string())),
            }
        };
        out.push(CacheEntry {
            path,
            bytes: meta.as_ref().map(|m| m.len()).unwrap_or(0),
            tokens,
            problem,
            modified: meta.and_then(|m| m.modified().ok()),
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// What `headsup cache ls` prints: the directory, one line per file (size,
/// tokens or what is wrong with it, name), and the total.
pub fn ls_lines(dir: &Path) -> Vec<String> {
    let entries = list(dir);
    let mut out = vec![format!("token cache directory: {}", dir.display())];
    let mut total = 0u64;
    for e in &entries {
        total += e.bytes;
        let name = e
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let what = match (&e.tokens, &e.problem) {
            (Some(n), _) => format!("{n} tokens"),
            (None, Some(p)) => format!("unusable: {p}"),
            (None, None) => side_kind(&name).into(),
        };
        out.push(format!(
            "{:>10.1} MB  {what:<24}  {}",
            e.bytes as f64 / 1e6,
            crate::data::one_line(&name)
        ));
    }
    out.push(format!(
        "{} files, {:.1} MB (headsup cache clear removes them)",
        entries.len(),
        total as f64 / 1e6
    ));
    out
}

/// What a cache file that is not ids is, by its name.
fn side_kind(name: &str) -> &'static str {
    use super::records::{CORPUS_SUFFIX, RECORDS_SUFFIX};
    if name.ends_with(&format!(".{TOKENIZER_SUFFIX}")) {
        "tokenizer"
    } else if name.ends_with(&format!(".{RECORDS_SUFFIX}")) {
        "record index"
    } else if name.ends_with(&format!(".{CORPUS_SUFFIX}")) {
        "joined corpus"
    } else {
        "statistics"
    }
}

/// `headsup cache ls` (prints [`ls_lines`]) and `headsup cache clear`.
pub fn run_command(clear: bool) -> anyhow::Result<()> {
    let dir = cache_dir();
    if !clear {
        for l in ls_lines(&dir) {
            println!("{l}");
        }
        return Ok(());
    }
    let (n, bytes) = self::clear(&dir).map_err(|e| {
        anyhow::anyhow!(
            "token cache {}: cannot remove a file: {e}; check its permissions",
            dir.display()
        )
    })?;
    println!(
        "removed {n} files ({:.1} MB) from {}",
        bytes as f64 / 1e6,
        dir.display()
    );
    Ok(())
}

/// Removes the temporary files in `dir` of builds whose process is gone (a
/// SIGKILL mid-build leaves one; Linux, where `/proc` says who is alive).
pub fn remove_stale_temps(dir: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    for e in list(dir) {
        let name = e.path.file_name().map(|n| n.to_string_lossy().into_owned());
        let pid = name
            .as_deref()
            .filter(|n| n.starts_with('.'))
            .and_then(|n| n.rsplit_once(".tmp-").or_else(|| n.rsplit_once(".tmp")))
            .and_then(|(_, pid)| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_file(&e.path);
            }
        }
    }
}

/// Removes every cache file (and leftover temporary file) in `dir`; returns
/// how many files and bytes.
pub fn clear(dir: &Path) -> std::io::Result<(usize, u64)> {
    let mut n = 0;
    let mut bytes = 0;
    for e in list(dir) {
        std::fs::remove_file(&e.path)?;
        n += 1;
        bytes += e.bytes;
    }
    Ok((n, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::stream::TextChunks;

    fn corpus() -> String {
        "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n  indented line\n漢字 and émoji 😀\n"
            .repeat(40)
    }

    fn key() -> CacheKey {
        CacheKey {
            data: 1,
            tokenizer: 2,
        }
    }

    fn build_file(dir: &Path, tok: &Tokenizer, text: &str, chunk: usize) -> TokenCache {
        let src = dir.join("corpus.txt");
        std::fs::write(&src, text).unwrap();
        let chunks = TextChunks::with_chunk_size(&src, chunk).unwrap();
        build(
            &dir.join(key().file_name()),
            key(),
            tok,
            chunks,
            text.len() as u64,
            BuildOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn chunked_cache_has_the_ids_of_the_whole_text() {
        let text = corpus();
        let dir = tempfile::tempdir().unwrap();
        for tok in [
            Tokenizer::train_char(&text).unwrap(),
            Tokenizer::train_bpe(&text, 300).unwrap(),
        ] {
            let whole = tok.encode(&text);
            for chunk in [64, 500, 1 << 20] {
                let c = build_file(dir.path(), &tok, &text, chunk);
                assert_eq!(c.width(), Width::U16);
                assert_eq!(c.to_vec(0..c.len()), whole, "{tok:?} chunk {chunk}");
                let idx = c.chunk_index();
                assert_eq!(idx[0], (0, 0));
                assert!(idx.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
                let mut win = Vec::new();
                c.extend_window(3, 5, &mut win);
                let want: Vec<usize> = whole[3..8].iter().map(|&t| t as usize).collect();
                assert_eq!(win, want);
            }
        }
    }

    #[test]
    fn u32_when_asked_and_u16_refused_for_a_large_vocabulary() {
        let text = corpus();
        let dir = tempfile::tempdir().unwrap();
        let tok = Tokenizer::train_char(&text).unwrap();
        let src = dir.path().join("c.txt");
        std::fs::write(&src, &text).unwrap();
        let c = build(
            &dir.path().join("w.tokens"),
            key(),
            &tok,
            TextChunks::open(&src).unwrap(),
            text.len() as u64,
            BuildOptions {
                width: Some(Width::U32),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.width(), Width::U32);
        assert_eq!(c.to_vec(0..c.len()), tok.encode(&text));
        assert_eq!(Width::for_vocab(65536), Width::U16);
        assert_eq!(Width::for_vocab(65537), Width::U32);
    }

    #[test]
    fn truncated_or_corrupted_cache_is_refused() {
        let text = corpus();
        let dir = tempfile::tempdir().unwrap();
        let tok = Tokenizer::train_char(&text).unwrap();
        let c = build_file(dir.path(), &tok, &text, 256);
        let path = c.path().to_path_buf();
        drop(c);
        let good = std::fs::read(&path).unwrap();
        assert!(TokenCache::open(&path, Some(key())).is_ok());
        let other = CacheKey {
            data: 1,
            tokenizer: 3,
        };
        let e = TokenCache::open(&path, Some(other))
            .unwrap_err()
            .to_string();
        assert!(e.contains("another tokenizer"), "{e}");

        std::fs::write(&path, &good[..good.len() - 10]).unwrap();
        let e = TokenCache::open(&path, Some(key()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated"), "{e}");

        let mut bad = good.clone();
        bad[HEADER + 7] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        let e = TokenCache::open(&path, Some(key()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("checksum"), "{e}");

        std::fs::write(&path, b"HSTOK").unwrap();
        let e = TokenCache::open(&path, Some(key()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a headsup token cache"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn cancellation_leaves_no_file() {
        let text = corpus();
        let dir = tempfile::tempdir().unwrap();
        let tok = Tokenizer::train_char(&text).unwrap();
        let src = dir.path().join("c.txt");
        std::fs::write(&src, &text).unwrap();
        let cancel = AtomicBool::new(false);
        let mut calls = 0;
        let mut progress = |p: &Progress| {
            calls += 1;
            assert!(p.line().starts_with("tokenizing "));
            cancel.store(true, Ordering::Relaxed);
        };
        let e = build(
            &dir.path().join(key().file_name()),
            key(),
            &tok,
            TextChunks::with_chunk_size(&src, 64).unwrap(),
            text.len() as u64,
            BuildOptions {
                width: None,
                cancel: Some(&cancel),
                progress: Some(&mut progress),
            },
        )
        .unwrap_err();
        assert!(matches!(e, CacheError::Cancelled), "{e}");
        assert_eq!(calls, 1);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("c.txt")]);
    }

    #[test]
    fn list_and_clear() {
        let text = corpus();
        let dir = tempfile::tempdir().unwrap();
        let tok = Tokenizer::train_char(&text).unwrap();
        let c = build_file(dir.path(), &tok, &text, 1 << 20);
        let n = c.len();
        drop(c);
        std::fs::write(dir.path().join(".x.tokens.tmp-1"), b"half").unwrap();
        // pid 4000000000 cannot be alive (pid_max is at most 2^22).
        std::fs::write(dir.path().join(".y.tokens.tmp-4000000000"), b"half").unwrap();
        remove_stale_temps(dir.path());
        let l = list(dir.path());
        assert_eq!(
            l.len(),
            2 + usize::from(!Path::new("/proc/1").exists()),
            "{l:?}"
        );
        assert!(l.iter().any(|e| e.tokens == Some(n)));
        assert!(l.iter().any(|e| e.problem.is_some()));
        let ls = ls_lines(dir.path());
        assert_eq!(ls.len(), 4, "{ls:?}");
        assert!(
            ls[1..3].iter().any(|l| l.contains(&format!("{n} tokens"))),
            "{ls:?}"
        );
        assert!(ls[3].starts_with("2 files"), "{ls:?}");
        assert_eq!(clear(dir.path()).unwrap().0, 2);
        assert!(list(dir.path()).is_empty());
        assert!(dir.path().join("corpus.txt").is_file());
    }
}
