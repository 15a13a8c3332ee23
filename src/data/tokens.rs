//! Token streams for training, whatever their size: ids in memory (synthetic
//! data) or a range of a memory-mapped token cache (a file source of any
//! size, tokenized once); and the steps that make the cached stream of a
//! file source (text, dir, jsonl, json, csv): one streamed scan (content
//! hash, size, characters), a tokenizer sample, and the cache reused or
//! built in one pass that also writes the record index and the statistics.

use super::cache::{self, BuildOptions, CacheError, CacheKey, Progress, TokenCache, Width};
use super::records::{self, RecordStore, RecordWriter};
use super::sources::{self, ReadCounter, RecordStream};
use super::stream::{Chunk, ContentHash, TextChunks, CHUNK_BYTES};
use super::{DataError, DatasetStats};
use crate::config::{DataConfig, SourceKind};
use crate::tokenizer::Tokenizer;
use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A stream of token ids: owned, or a range of a token cache.
#[derive(Debug, Clone)]
pub enum Tokens {
    Owned(Arc<Vec<u32>>, Range<usize>),
    Mapped(Arc<TokenCache>, Range<usize>),
}

impl Tokens {
    pub fn owned(ids: Vec<u32>) -> Tokens {
        let n = ids.len();
        Tokens::Owned(Arc::new(ids), 0..n)
    }

    pub fn mapped(cache: Arc<TokenCache>) -> Tokens {
        let n = cache.len();
        Tokens::Mapped(cache, 0..n)
    }

    fn range(&self) -> &Range<usize> {
        match self {
            Tokens::Owned(_, r) | Tokens::Mapped(_, r) => r,
        }
    }

    pub fn len(&self) -> usize {
        self.range().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tokens `r` of this stream, as a stream (no copy).
    pub fn slice(&self, r: Range<usize>) -> Tokens {
        let base = self.range().start;
        assert!(r.end <= self.len(), "{r:?} of {}", self.len());
        let r = base + r.start..base + r.end;
        match self {
            Tokens::Owned(v, _) => Tokens::Owned(v.clone(), r),
            Tokens::Mapped(c, _) => Tokens::Mapped(c.clone(), r),
        }
    }

    /// Appends tokens `start..start + n` as `usize` to `out`.
    pub fn extend_window(&self, start: usize, n: usize, out: &mut Vec<usize>) {
        assert!(start + n <= self.len(), "{start}+{n} of {}", self.len());
        let s = self.range().start + start;
        match self {
            Tokens::Owned(v, _) => out.extend(v[s..s + n].iter().map(|&t| t as usize)),
            Tokens::Mapped(c, _) => c.extend_window(s, n, out),
        }
    }

    /// Tokens `r` as `u32`s.
    pub fn to_vec(&self, r: Range<usize>) -> Vec<u32> {
        let mut out = Vec::with_capacity(r.len());
        self.extend_window(r.start, r.len(), &mut out);
        out.into_iter().map(|t| t as u32).collect()
    }

    /// The first `train_fraction` of the tokens and the rest, as nanoGPT
    /// cuts them (a fraction that is not a number trains on everything).
    pub fn split(&self, train_fraction: f64) -> (Tokens, Tokens) {
        let f = if train_fraction.is_finite() {
            train_fraction.clamp(0.0, 1.0)
        } else {
            1.0
        };
        let n = ((self.len() as f64) * f).round() as usize;
        let n = n.min(self.len());
        (self.slice(0..n), self.slice(n..self.len()))
    }
}

/// A file source of training data: its kind, where it is, and where its
/// text is in each record.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub kind: SourceKind,
    pub path: PathBuf,
    /// JSONL/CSV: the text field or column.
    pub field: String,
    /// JSON: the dotted path to the text.
    pub json_path: String,
}

impl Source {
    /// The file source a config names (`None` for synthetic data or no path).
    pub fn from_config(cfg: &DataConfig) -> Option<Source> {
        let path = cfg.path.clone()?;
        if cfg.source == SourceKind::Synthetic {
            return None;
        }
        let json_path = if cfg.json_path.trim().is_empty() {
            cfg.field.clone()
        } else {
            cfg.json_path.clone()
        };
        Some(Source {
            kind: cfg.source,
            path,
            field: cfg.field.clone(),
            json_path,
        })
    }

    /// A text file: the corpus is the file itself and the records are its
    /// windows.
    pub fn text(path: &Path) -> Source {
        Source {
            kind: SourceKind::Text,
            path: path.to_path_buf(),
            field: String::new(),
            json_path: String::new(),
        }
    }

    /// True for a text file, whose records concatenate to the corpus;
    /// otherwise records are joined with "\n" (none added after a record
    /// that ends with one).
    pub fn contiguous(&self) -> bool {
        self.kind == SourceKind::Text
    }

    /// What separates record `text` from the next in the corpus.
    pub fn separator(&self, text: &str) -> &'static str {
        if self.contiguous() || text.ends_with('\n') {
            ""
        } else {
            "\n"
        }
    }

    /// The records, streamed; `counter` gets the bytes of the source read.
    pub fn records(&self, counter: ReadCounter) -> Result<RecordStream, DataError> {
        let p = &self.path;
        match self.kind {
            SourceKind::Text | SourceKind::Synthetic => sources::text_records(p, counter),
            SourceKind::Dir => sources::dir_records(p, counter),
            SourceKind::Jsonl => sources::jsonl_records(p, &self.field, counter),
            SourceKind::Json => sources::json_records(p, &self.json_path, counter),
            SourceKind::Csv => sources::csv_records(p, &self.field, counter),
        }
    }

    /// Reads the first record only: a missing, unreadable, empty or binary
    /// file (or a first record that cannot be read) fails here, before the
    /// long pass.
    pub fn check_start(&self) -> Result<(), DataError> {
        match self.records(ReadCounter::default())?.next() {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }

    /// For the browser's title, e.g. "jsonl data.jsonl (field `text`)".
    pub fn describe(&self) -> String {
        let p = self.path.display();
        match self.kind {
            SourceKind::Text | SourceKind::Synthetic => format!("text {p}"),
            SourceKind::Dir => format!("dir {p}"),
            SourceKind::Jsonl => format!("jsonl {p} (field `{}`)", self.field),
            SourceKind::Json => format!("json {p} (path `{}`)", self.json_path),
            SourceKind::Csv => format!("csv {p} (column `{}`)", self.field),
        }
    }

    /// Bytes of the source on disk (a directory: of its files), for progress.
    fn disk_bytes(&self) -> u64 {
        fn walk(p: &Path) -> u64 {
            match std::fs::metadata(p) {
                Ok(m) if m.is_dir() => std::fs::read_dir(p)
                    .map(|rd| rd.flatten().map(|e| walk(&e.path())).sum())
                    .unwrap_or(0),
                Ok(m) => m.len(),
                Err(_) => 0,
            }
        }
        walk(&self.path)
    }

    /// What goes into the data hash besides the corpus: how it was read.
    fn tag(&self) -> String {
        match self.kind {
            SourceKind::Text | SourceKind::Synthetic => String::new(),
            SourceKind::Dir => "headsup-source dir\n".into(),
            SourceKind::Jsonl => format!("headsup-source jsonl {}\n", self.field),
            SourceKind::Json => format!("headsup-source json {}\n", self.json_path),
            SourceKind::Csv => format!("headsup-source csv {}\n", self.field),
        }
    }
}

/// What one streamed pass over a file source found.
#[derive(Debug, Clone)]
pub struct TextScan {
    pub source: Source,
    pub path: PathBuf,
    /// Bytes of the corpus (the records joined).
    pub bytes: u64,
    /// The content hash (the token cache's data key).
    pub hash: u64,
    /// Distinct characters, when asked for (a char tokenizer's vocabulary).
    pub chars: Option<BTreeSet<char>>,
}

fn cancelled(cancel: Option<&AtomicBool>) -> bool {
    cancel.is_some_and(|c| c.load(Ordering::Relaxed))
}

/// Reads a file source once, streamed: checks it, hashes its corpus (with
/// how it was read), and collects its characters when `chars` is true.
pub fn scan(
    source: &Source,
    chars: bool,
    cancel: Option<&AtomicBool>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<TextScan, CacheError> {
    if source.contiguous() {
        return scan_text(&source.path, chars, cancel, progress);
    }
    let total = source.disk_bytes();
    let started = Instant::now();
    let mut hash = ContentHash::default();
    hash.update(source.tag().as_bytes());
    let mut set = CharSet::default();
    let mut bytes = 0u64;
    let mut text_bytes = 0u64;
    let counter = ReadCounter::default();
    let mut last = Instant::now();
    for rec in source.records(counter.clone())? {
        if cancelled(cancel) {
            return Err(CacheError::Cancelled);
        }
        let rec = rec?;
        let sep = source.separator(&rec.text);
        hash.update(rec.text.as_bytes());
        hash.update(sep.as_bytes());
        if chars {
            set.add(&rec.text);
            set.add(sep);
        }
        bytes += (rec.text.len() + sep.len()) as u64;
        text_bytes += rec.text.len() as u64;
        if last.elapsed().as_millis() >= 50 {
            last = Instant::now();
            let done = counter.load(Ordering::Relaxed);
            progress(&Progress {
                phase: "hashing",
                done,
                total: total.max(done),
                started,
            });
        }
    }
    let done = counter.load(Ordering::Relaxed).max(total);
    progress(&Progress {
        phase: "hashing",
        done,
        total: done,
        started,
    });
    if text_bytes == 0 {
        return Err(DataError::file(
            &source.path,
            "contains no text (every record is empty); check data.field / data.json_path",
        )
        .into());
    }
    Ok(TextScan {
        source: source.clone(),
        path: source.path.clone(),
        bytes,
        hash: hash.finish(),
        chars: chars.then(|| set.finish()),
    })
}

/// The distinct characters of a text, ASCII in a table.
struct CharSet {
    ascii: [bool; 128],
    other: BTreeSet<char>,
}

impl Default for CharSet {
    fn default() -> Self {
        CharSet {
            ascii: [false; 128],
            other: BTreeSet::new(),
        }
    }
}

impl CharSet {
    fn add(&mut self, text: &str) {
        for c in text.chars() {
            match self.ascii.get_mut(c as usize) {
                Some(seen) => *seen = true,
                None => {
                    self.other.insert(c);
                }
            }
        }
    }

    fn finish(self) -> BTreeSet<char> {
        let mut set = self.other;
        set.extend(
            (0..128u8)
                .filter(|&b| self.ascii[b as usize])
                .map(char::from),
        );
        set
    }
}

/// Reads `path` once, in chunks: checks it is UTF-8 text, hashes it, and
/// collects its characters when `chars` is true.
pub fn scan_text(
    path: &Path,
    chars: bool,
    cancel: Option<&AtomicBool>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<TextScan, CacheError> {
    let total = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let started = Instant::now();
    let mut hash = ContentHash::default();
    let mut set = CharSet::default();
    let mut bytes = 0u64;
    for chunk in TextChunks::open(path)? {
        if cancelled(cancel) {
            return Err(CacheError::Cancelled);
        }
        let chunk = chunk?;
        hash.update(chunk.text.as_bytes());
        if chars {
            set.add(&chunk.text);
        }
        bytes += chunk.text.len() as u64;
        progress(&Progress {
            phase: "hashing",
            done: bytes,
            total: total.max(bytes),
            started,
        });
    }
    if bytes == 0 {
        return Err(DataError::file(path, "is empty; give a file with some text").into());
    }
    Ok(TextScan {
        source: Source::text(path),
        path: path.to_path_buf(),
        bytes,
        hash: hash.finish(),
        chars: chars.then(|| set.finish()),
    })
}

impl TextScan {
    /// The start of the corpus: about `budget` bytes, cut after a line (the
    /// whole corpus when it is smaller): what a BPE tokenizer is trained on.
    pub fn sample(&self, budget: u64) -> Result<String, DataError> {
        if self.source.contiguous() {
            return sample_text(&self.path, budget);
        }
        let budget = budget.max(1) as usize;
        let mut out = String::new();
        for rec in self.source.records(ReadCounter::default())? {
            let rec = rec?;
            out.push_str(&rec.text);
            out.push_str(self.source.separator(&rec.text));
            if out.len() >= budget {
                if let Some(cut) = super::stream::safe_cut(&out.as_bytes()[..budget]) {
                    out.truncate(cut);
                }
                break;
            }
        }
        Ok(out)
    }
}

/// The start of `path`: about `budget` bytes, cut after a line (the whole
/// file when it is smaller): what a BPE tokenizer is trained on.
pub fn sample_text(path: &Path, budget: u64) -> Result<String, DataError> {
    let budget = budget.max(1) as usize;
    let mut out = String::new();
    for chunk in TextChunks::open(path)? {
        out.push_str(&chunk?.text);
        if out.len() >= budget {
            if let Some(cut) = super::stream::safe_cut(&out.as_bytes()[..budget]) {
                out.truncate(cut);
            }
            break;
        }
    }
    Ok(out)
}

/// How the BPE tokenizer of a large text was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpeSample {
    /// Bytes it was trained on (the start of the file).
    pub sampled: u64,
    /// Bytes of the whole file.
    pub total: u64,
    /// True when it came from the cache (trained by an earlier run).
    pub reused: bool,
}

impl BpeSample {
    /// `BPE 2048 trained on the first 16.8 MB of 223.1 MB (7.5%)`.
    pub fn describe(&self, vocab: usize) -> String {
        let pct = 100.0 * self.sampled as f64 / self.total.max(1) as f64;
        let how = if self.reused {
            "reused from the cache (trained"
        } else {
            "(trained"
        };
        format!(
            "BPE {vocab} tokenizer {how} on the first {:.1} MB of {:.1} MB, {pct:.1}%)",
            self.sampled as f64 / 1e6,
            self.total as f64 / 1e6
        )
    }
}

/// The byte-level BPE of `vocab` tokens for text file `scan.path`, trained
/// on its first `budget` bytes, kept in `dir` beside the token caches
/// (`<data hash>-bpe<vocab>-<budget>.tokenizer.json`) so the next run on the
/// same data reuses it instead of training again. `cancel` stops the
/// training (checked every 0.1 s); nothing is kept then.
pub fn cached_bpe(
    dir: &Path,
    scan: &TextScan,
    vocab: usize,
    budget: u64,
    cancel: Option<&AtomicBool>,
) -> Result<(Tokenizer, BpeSample), CacheError> {
    let name = format!(
        "{:016x}-bpe{vocab}-{budget}.{}",
        scan.hash,
        cache::TOKENIZER_SUFFIX
    );
    let path = dir.join(name);
    let sampled = scan.bytes.min(budget);
    if path.is_file() {
        if let Ok(t) = Tokenizer::load(&path) {
            if t.vocab_size() <= vocab {
                let s = BpeSample {
                    sampled,
                    total: scan.bytes,
                    reused: true,
                };
                return Ok((t, s));
            }
        }
    }
    let sample = scan.sample(budget)?;
    let sampled = sample.len() as u64;
    if cancelled(cancel) {
        return Err(CacheError::Cancelled);
    }
    // The trainer cannot be interrupted: it runs on a thread of its own,
    // and a cancel returns at once (the thread's result is dropped, nothing
    // is kept).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("bpe-training".into())
        .spawn(move || {
            let _ = tx.send(Tokenizer::train_bpe(&sample, vocab));
        })
        .map_err(|e| CacheError::Other(format!("cannot start the tokenizer training: {e}")))?;
    let trained = loop {
        match rx.recv_timeout(std::time::Duration::from_millis(100)) {
            Ok(t) => break t,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if cancelled(cancel) => {
                return Err(CacheError::Cancelled)
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(CacheError::Other(
                    "the tokenizer training ended without a result".into(),
                ))
            }
        }
    };
    let tok = trained.map_err(|e| CacheError::Other(e.to_string()))?;
    std::fs::create_dir_all(dir).map_err(|e| CacheError::File {
        path: dir.into(),
        message: format!(
            "cannot create the cache directory: {e}; set HEADSUP_CACHE_DIR to a writable directory"
        ),
    })?;
    // A tokenizer that cannot be kept is still usable: train again next time.
    let _ = tok.save(&path);
    let s = BpeSample {
        sampled,
        total: scan.bytes,
        reused: false,
    };
    Ok((tok, s))
}

/// Whether [`cached_tokens`] found the cache or made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheUse {
    /// A valid cache was there.
    Reused,
    /// None was there; built.
    Built,
    /// One was there but did not check out (the reason); rebuilt.
    Rebuilt(String),
}

/// A file source's token cache with its record index and statistics.
#[derive(Debug, Clone)]
pub struct Cached {
    pub tokens: Arc<TokenCache>,
    pub records: Arc<RecordStore>,
    /// Records, bytes, tokens, length histogram (the vocabulary and split
    /// are the caller's).
    pub stats: DatasetStats,
    pub how: CacheUse,
}

/// The files of one cache: ids, record index, corpus (the text file itself
/// for a text source) and statistics.
struct CachePaths {
    tokens: PathBuf,
    records: PathBuf,
    corpus: PathBuf,
    stats: PathBuf,
}

impl CachePaths {
    fn new(dir: &Path, key: CacheKey, source: &Source) -> CachePaths {
        let tokens = dir.join(key.file_name());
        let with = |suffix: &str| tokens.with_extension(suffix);
        CachePaths {
            records: with(records::RECORDS_SUFFIX),
            corpus: if source.contiguous() {
                source.path.clone()
            } else {
                with(records::CORPUS_SUFFIX)
            },
            stats: with(records::STATS_SUFFIX),
            tokens,
        }
    }

    fn open(&self, key: CacheKey) -> Result<(TokenCache, RecordStore, DatasetStats), CacheError> {
        let t = TokenCache::open(&self.tokens, Some(key))?;
        let r = RecordStore::open(&self.records, &self.corpus)?;
        let s = records::load_stats(&self.stats)?;
        Ok((t, r, s))
    }
}

/// The token cache of file source `scan.source` under `tok`, in `dir`:
/// reused when one of the same data and tokenizer checks out (with its
/// record index and statistics), else built in one streamed pass (the
/// progress goes to `progress`; `cancel` stops it leaving no file).
pub fn cached_tokens(
    dir: &Path,
    scan: &TextScan,
    tok: &Tokenizer,
    width: Option<Width>,
    cancel: Option<&AtomicBool>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Cached, CacheError> {
    let key = CacheKey {
        data: scan.hash,
        tokenizer: tok.fingerprint(),
    };
    let paths = CachePaths::new(dir, key, &scan.source);
    cache::remove_stale_temps(dir);
    let mut how = CacheUse::Built;
    if paths.tokens.exists() {
        match paths.open(key) {
            Ok((c, _, _)) if width.is_some_and(|w| w != c.width()) => {
                how = CacheUse::Rebuilt("it has the other id width".into())
            }
            Ok((c, r, s)) => {
                return Ok(Cached {
                    tokens: Arc::new(c),
                    records: Arc::new(r),
                    stats: s,
                    how: CacheUse::Reused,
                })
            }
            Err(e) => how = CacheUse::Rebuilt(e.to_string()),
        }
    }
    build_cached(
        &paths,
        key,
        scan,
        tok,
        BuildOptions {
            width,
            cancel,
            progress: Some(progress),
        },
        CHUNK_BYTES,
    )
    .map(|mut c| {
        c.how = how;
        c
    })
}

/// Builds the cache files `paths` of `scan.source` (chunks of about
/// `target` bytes) in one streamed pass.
fn build_cached(
    paths: &CachePaths,
    key: CacheKey,
    scan: &TextScan,
    tok: &Tokenizer,
    opts: BuildOptions<'_>,
    target: usize,
) -> Result<Cached, CacheError> {
    let dir = paths.tokens.parent().unwrap_or(Path::new("."));
    let source = &scan.source;
    std::fs::create_dir_all(dir).map_err(|e| CacheError::File {
        path: dir.into(),
        message: format!(
            "cannot create the cache directory: {e}; set HEADSUP_CACHE_DIR to a writable directory"
        ),
    })?;
    if !source.contiguous() {
        // The joined corpus is kept beside the ids.
        cache::check_space(dir, scan.bytes)?;
    }
    let mut writer = RecordWriter::new(
        &paths.records,
        (!source.contiguous()).then_some(paths.corpus.as_path()),
    )?;
    let chunks = Grouped {
        records: source.records(ReadCounter::default())?.peekable(),
        writer: &mut writer,
        source,
        offset: 0,
        target,
    };
    let c = cache::build(&paths.tokens, key, tok, chunks, scan.bytes, opts)?;
    let (n, bytes) = (writer.count(), writer.text_bytes());
    let finished = writer.finish().and_then(|()| {
        let store = RecordStore::open(&paths.records, &paths.corpus)?;
        let (length_hist, hist_max) = store.length_hist();
        let stats = DatasetStats {
            records: n as usize,
            bytes: bytes as usize,
            tokens: c.len(),
            tokens_estimated: false,
            vocab_size: tok.vocab_size(),
            length_hist,
            hist_max,
            ..DatasetStats::default()
        };
        records::save_stats(&paths.stats, &stats)?;
        Ok((store, stats))
    });
    match finished {
        Ok((store, stats)) => Ok(Cached {
            tokens: Arc::new(c),
            records: Arc::new(store),
            stats,
            how: CacheUse::Built,
        }),
        Err(e) => {
            // The ids are of no use without their index: not kept.
            let _ = std::fs::remove_file(&paths.tokens);
            Err(e)
        }
    }
}

/// A chunk with no safe cut is cut anyway at this many bytes (one enormous
/// line), as [`TextChunks`] does.
const GROUP_MAX: usize = 64 << 20;

/// Records grouped into chunks of about `target` bytes of corpus, cut only
/// where tokenization does not depend on the cut (after a newline that a
/// non-space character follows, as [`TextChunks`]), so the chunks' ids are
/// the ids of the whole corpus; every record goes to the index on the way.
struct Grouped<'a> {
    records: std::iter::Peekable<RecordStream>,
    writer: &'a mut RecordWriter,
    source: &'a Source,
    offset: u64,
    target: usize,
}

impl Iterator for Grouped<'_> {
    type Item = Result<Chunk, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.offset;
        let mut text = String::new();
        loop {
            let safe = match self.records.peek() {
                None => break,
                Some(Err(_)) => {
                    return match self.records.next() {
                        Some(Err(e)) => Some(Err(e)),
                        _ => None,
                    };
                }
                Some(Ok(r)) => {
                    text.ends_with('\n')
                        && r.text.chars().next().is_some_and(|c| !c.is_whitespace())
                }
            };
            if (text.len() >= self.target && safe) || text.len() >= GROUP_MAX {
                break;
            }
            let Some(Ok(r)) = self.records.next() else {
                break;
            };
            let sep = self.source.separator(&r.text);
            let at = start + text.len() as u64;
            if let Err(e) = self.writer.push(&r, at, sep) {
                return Some(Err(DataError::Other(format!(
                    "cannot write the record index: {e}; check the disk space and HEADSUP_CACHE_DIR"
                ))));
            }
            text.push_str(&r.text);
            text.push_str(sep);
        }
        if text.is_empty() {
            return None;
        }
        self.offset += text.len() as u64;
        Some(Ok(Chunk {
            offset: start,
            text,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_tokens_reuse_rebuild_and_invalidate() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("c.txt");
        let text = "To be, or not to be:\nthat is the question.\n".repeat(200);
        std::fs::write(&src, &text).unwrap();
        let cache_dir = dir.path().join("cache");
        let mut lines = Vec::new();
        let mut progress = |p: &Progress| lines.push(p.line());
        let scan = scan_text(&src, true, None, &mut progress).unwrap();
        assert_eq!(scan.bytes, text.len() as u64);
        let chars: String = scan.chars.clone().unwrap().into_iter().collect();
        let tok = Tokenizer::train_char(&chars).unwrap();
        assert_eq!(
            tok.encode(&text),
            Tokenizer::train_char(&text).unwrap().encode(&text)
        );

        let got = cached_tokens(&cache_dir, &scan, &tok, None, None, &mut progress).unwrap();
        assert_eq!(got.how, CacheUse::Built);
        let c = got.tokens.clone();
        let t = Tokens::mapped(c.clone());
        assert_eq!(t.to_vec(0..t.len()), tok.encode(&text));
        let store = &got.records;
        let recs: Vec<_> = (0..store.len()).map(|i| store.record(i).unwrap()).collect();
        assert_eq!(
            recs.iter().map(|r| r.text.as_str()).collect::<String>(),
            text
        );
        assert!(recs[0].title.starts_with("lines 1-"), "{}", recs[0].title);
        assert_eq!(got.stats.records, recs.len());
        assert_eq!(got.stats.bytes, text.len());
        assert_eq!(got.stats.tokens, text.chars().count());
        let path = c.path().to_path_buf();
        drop((c, t, got));
        let again = cached_tokens(&cache_dir, &scan, &tok, None, None, &mut progress).unwrap();
        assert_eq!(again.how, CacheUse::Reused);
        assert_eq!(again.stats.records, recs.len());
        drop(again);

        // Truncated: detected and rebuilt.
        let b = std::fs::read(&path).unwrap();
        std::fs::write(&path, &b[..b.len() - 3]).unwrap();
        let got = cached_tokens(&cache_dir, &scan, &tok, None, None, &mut progress).unwrap();
        assert!(
            matches!(got.how, CacheUse::Rebuilt(ref m) if m.contains("truncated")),
            "{:?}",
            got.how
        );
        assert_eq!(got.tokens.len(), text.chars().count());
        drop(got);

        // A record index or statistics missing: rebuilt too.
        std::fs::remove_file(path.with_extension("stats.json")).unwrap();
        let got = cached_tokens(&cache_dir, &scan, &tok, None, None, &mut progress).unwrap();
        assert!(matches!(got.how, CacheUse::Rebuilt(_)), "{:?}", got.how);
        drop(got);
        std::fs::remove_file(path.with_extension("records")).unwrap();
        let got = cached_tokens(&cache_dir, &scan, &tok, None, None, &mut progress).unwrap();
        assert!(matches!(got.how, CacheUse::Rebuilt(_)), "{:?}", got.how);
        drop(got);

        // Other data or another tokenizer: another cache file.
        std::fs::write(&src, text.replace("question", "answer!!")).unwrap();
        let scan2 = scan_text(&src, false, None, &mut progress).unwrap();
        assert_ne!(scan2.hash, scan.hash);
        let bpe = Tokenizer::train_bpe(&text, 280).unwrap();
        assert_ne!(bpe.fingerprint(), tok.fingerprint());
        let c2 = cached_tokens(&cache_dir, &scan2, &bpe, None, None, &mut progress).unwrap();
        assert_eq!(c2.how, CacheUse::Built);
        assert_ne!(c2.tokens.path(), path);
        assert!(lines.iter().any(|l| l.starts_with("hashing ")));
        assert!(lines.iter().any(|l| l.starts_with("tokenizing ")));
    }

    /// Every structured source through the cache in small chunks: the
    /// records and the corpus as the in-memory reader has them, the ids of
    /// the whole corpus (records starting with a space or a newline are not
    /// cut before), and the statistics.
    #[test]
    fn structured_sources_stream_into_the_cache() {
        use crate::config::{DataConfig, SourceKind};
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut jsonl = String::new();
        let mut csv = String::from("id,text,title\n");
        let mut json = Vec::new();
        for i in 0..300 {
            let text = match i % 4 {
                0 => format!("record {i}: To be, or not to be"),
                1 => format!(" starts with a space {i}\nand has two lines"),
                2 => format!("\nstarts with a newline {i} 漢字"),
                _ => format!("ends with a newline {i}\n"),
            };
            let q = serde_json::to_string(&text).unwrap();
            jsonl.push_str(&format!("{{\"id\": {i}, \"text\": {q}}}\n"));
            if i % 10 == 0 {
                jsonl.push_str("   \n");
            }
            csv.push_str(&format!("{i},\"{}\",t{i}\n", text.replace('"', "\"\"")));
            json.push(serde_json::json!({"meta": {"n": i}, "body": {"paragraphs": text.split('\n').collect::<Vec<_>>(), "title": format!("poem {i}")}}));
        }
        std::fs::write(d.join("a.jsonl"), &jsonl).unwrap();
        std::fs::write(d.join("a.csv"), &csv).unwrap();
        let doc = serde_json::json!({"skip": [1, 2, {"x": "y"}], "poems": json});
        std::fs::write(d.join("a.json"), serde_json::to_vec(&doc).unwrap()).unwrap();
        std::fs::create_dir(d.join("tree")).unwrap();
        for i in 0..30 {
            let lead = if i % 3 == 0 { " " } else { "" };
            std::fs::write(
                d.join(format!("tree/f{i:02}.txt")),
                format!("{lead}file {i}\nbody"),
            )
            .unwrap();
        }
        let cases = [
            (SourceKind::Jsonl, "a.jsonl", "text", ""),
            (SourceKind::Csv, "a.csv", "text", ""),
            (SourceKind::Json, "a.json", "", "poems.body.paragraphs"),
            (SourceKind::Dir, "tree", "", ""),
        ];
        for (kind, file, field, json_path) in cases {
            let cfg = DataConfig {
                source: kind,
                path: Some(d.join(file)),
                field: if field.is_empty() {
                    "text".into()
                } else {
                    field.into()
                },
                json_path: json_path.into(),
                ..DataConfig::default()
            };
            let mem = super::super::Dataset::load(&cfg, 0).unwrap();
            let corpus = mem.corpus();
            let source = Source::from_config(&cfg).unwrap();
            let scan = scan(&source, true, None, &mut |_| {}).unwrap();
            assert_eq!(scan.bytes, corpus.len() as u64, "{kind:?}");
            let chars: String = scan.chars.clone().unwrap().into_iter().collect();
            let char_tok = Tokenizer::train_char(&chars).unwrap();
            assert_eq!(
                char_tok.encode(&corpus),
                Tokenizer::train_char(&corpus).unwrap().encode(&corpus)
            );
            let bpe = Tokenizer::train_bpe(&scan.sample(1 << 20).unwrap(), 300).unwrap();
            for tok in [char_tok, bpe] {
                let cache_dir = d.join(format!("cache-{kind:?}"));
                let key = CacheKey {
                    data: scan.hash,
                    tokenizer: tok.fingerprint(),
                };
                let paths = CachePaths::new(&cache_dir, key, &source);
                std::fs::create_dir_all(&cache_dir).unwrap();
                let got =
                    build_cached(&paths, key, &scan, &tok, BuildOptions::default(), 64).unwrap();
                assert!(got.tokens.chunk_index().len() > 3, "{kind:?}: small chunks");
                assert_eq!(
                    got.tokens.to_vec(0..got.tokens.len()),
                    tok.encode(&corpus),
                    "{kind:?}"
                );
                let store = &got.records;
                assert_eq!(store.len(), mem.records.len(), "{kind:?}");
                for (i, r) in mem.records.iter().enumerate() {
                    assert_eq!(store.record(i).as_ref(), Some(r), "{kind:?} record {i}");
                }
                assert_eq!(got.stats, {
                    let mut s = mem.stats(None, 0.9);
                    s.tokens = got.tokens.len();
                    s.vocab_size = tok.vocab_size();
                    (s.train_tokens, s.val_tokens) = (0, 0);
                    s
                });
                if kind != SourceKind::Dir {
                    let stored = std::fs::read_to_string(paths.corpus.clone()).unwrap();
                    assert_eq!(stored, corpus, "{kind:?}");
                }
                // Reopened: the same records and statistics, at once.
                drop(got);
                let again =
                    cached_tokens(&cache_dir, &scan, &tok, None, None, &mut |_| {}).unwrap();
                assert_eq!(again.how, CacheUse::Reused, "{kind:?}");
                assert_eq!(again.records.len(), mem.records.len());
            }
        }
    }

    #[test]
    fn bpe_from_a_sample_is_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("c.txt");
        let text =
            "Now is the winter of our discontent\nMade glorious summer by this sun of York;\n"
                .repeat(100);
        std::fs::write(&src, &text).unwrap();
        let scan = scan_text(&src, false, None, &mut |_| {}).unwrap();
        let cache_dir = dir.path().join("cache");
        let (a, s) = cached_bpe(&cache_dir, &scan, 300, 1000, None).unwrap();
        assert!(!s.reused);
        assert!(s.sampled <= 1000 && s.sampled > 900, "{s:?}");
        assert_eq!(s.total, text.len() as u64);
        assert!(
            s.describe(300).contains("first 0.0 MB of 0.0 MB"),
            "{}",
            s.describe(300)
        );
        let (b, s) = cached_bpe(&cache_dir, &scan, 300, 1000, None).unwrap();
        assert!(s.reused);
        assert_eq!(a.fingerprint(), b.fingerprint());
        // The whole file when it is within the budget: as today's tokenizer.
        let (c, s) = cached_bpe(&cache_dir, &scan, 300, 1 << 30, None).unwrap();
        assert_eq!(s.sampled, text.len() as u64);
        assert_eq!(
            c.fingerprint(),
            Tokenizer::train_bpe(&text, 300).unwrap().fingerprint()
        );
        assert_eq!(cache::list(&cache_dir).len(), 2);
    }

    #[test]
    fn split_and_windows_match_the_owned_split() {
        let ids: Vec<u32> = (0..1000).collect();
        let t = Tokens::owned(ids.clone());
        let (a, b) = t.split(0.9);
        assert_eq!(a.to_vec(0..a.len()), ids[..900]);
        assert_eq!(b.to_vec(0..b.len()), ids[900..]);
        let mut w = Vec::new();
        b.extend_window(2, 3, &mut w);
        assert_eq!(w, vec![902, 903, 904]);
    }

    #[test]
    fn empty_file_is_a_one_line_error() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("empty.txt");
        std::fs::write(&src, "").unwrap();
        let e = scan_text(&src, true, None, &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty.txt") && e.contains("empty"), "{e}");
    }
}
