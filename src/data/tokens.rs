//! Token streams for training, whatever their size: ids in memory (small and
//! structured data) or a range of a memory-mapped token cache (a text file
//! of any size, tokenized once); and the steps that make the cached stream of
//! a text file: one streamed scan (content hash, size, characters), a
//! tokenizer sample, and the cache reused or built.

use super::cache::{self, BuildOptions, CacheError, CacheKey, Progress, TokenCache, Width};
use super::stream::{ContentHash, TextChunks};
use super::DataError;
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

/// What one streamed pass over a text file found.
#[derive(Debug, Clone)]
pub struct TextScan {
    pub path: PathBuf,
    pub bytes: u64,
    /// The content hash (the token cache's data key).
    pub hash: u64,
    /// Distinct characters, when asked for (a char tokenizer's vocabulary).
    pub chars: Option<BTreeSet<char>>,
}

fn cancelled(cancel: Option<&AtomicBool>) -> bool {
    cancel.is_some_and(|c| c.load(Ordering::Relaxed))
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
    let mut ascii = [false; 128];
    let mut other: BTreeSet<char> = BTreeSet::new();
    let mut bytes = 0u64;
    for chunk in TextChunks::open(path)? {
        if cancelled(cancel) {
            return Err(CacheError::Cancelled);
        }
        let chunk = chunk?;
        hash.update(chunk.text.as_bytes());
        if chars {
            for c in chunk.text.chars() {
                match ascii.get_mut(c as usize) {
                    Some(seen) => *seen = true,
                    None => {
                        other.insert(c);
                    }
                }
            }
        }
        bytes += chunk.text.len() as u64;
        progress(&Progress {
            phase: "reading",
            done: bytes,
            total: total.max(bytes),
            started,
        });
    }
    if bytes == 0 {
        return Err(DataError::file(path, "is empty; give a file with some text").into());
    }
    let chars = chars.then(|| {
        let mut set = other;
        set.extend((0..128u8).filter(|&b| ascii[b as usize]).map(char::from));
        set
    });
    Ok(TextScan {
        path: path.to_path_buf(),
        bytes,
        hash: hash.finish(),
        chars,
    })
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
/// same data reuses it instead of training again.
pub fn cached_bpe(
    dir: &Path,
    scan: &TextScan,
    vocab: usize,
    budget: u64,
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
    let sample = sample_text(&scan.path, budget)?;
    let tok = Tokenizer::train_bpe(&sample, vocab).map_err(|e| CacheError::Other(e.to_string()))?;
    std::fs::create_dir_all(dir).map_err(|e| CacheError::File {
        path: dir.into(),
        message: format!(
            "cannot create the cache directory: {e}; set HEADSUP_CACHE_DIR to a writable directory"
        ),
    })?;
    // A tokenizer that cannot be kept is still usable: train again next time.
    let _ = tok.save(&path);
    let s = BpeSample {
        sampled: sample.len() as u64,
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

/// The token cache of text file `scan.path` under `tok`, in `dir`: reused
/// when one of the same data and tokenizer checks out, else built (the
/// progress goes to `progress`; `cancel` stops it leaving no file).
pub fn cached_tokens(
    dir: &Path,
    scan: &TextScan,
    tok: &Tokenizer,
    width: Option<Width>,
    cancel: Option<&AtomicBool>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(Arc<TokenCache>, CacheUse), CacheError> {
    let key = CacheKey {
        data: scan.hash,
        tokenizer: tok.fingerprint(),
    };
    let path = dir.join(key.file_name());
    cache::remove_stale_temps(dir);
    let mut how = CacheUse::Built;
    if path.exists() {
        match TokenCache::open(&path, Some(key)) {
            Ok(c) if width.is_none_or(|w| w == c.width()) => {
                return Ok((Arc::new(c), CacheUse::Reused))
            }
            Ok(_) => how = CacheUse::Rebuilt("it has the other id width".into()),
            Err(e) => how = CacheUse::Rebuilt(e.to_string()),
        }
    }
    let c = cache::build(
        &path,
        key,
        tok,
        TextChunks::open(&scan.path)?,
        scan.bytes,
        BuildOptions {
            width,
            cancel,
            progress: Some(progress),
        },
    )?;
    Ok((Arc::new(c), how))
}

/// The records (windows of about 1-2 KB) of chunk `i` of the text file
/// `path` whose token cache is `cache`, read from the file on demand: what a
/// browser lists lazily, one chunk (about 4 MB) at a time, for a corpus of
/// any size. Titles give the byte offset of each record in the file.
/// `cache.chunk_index().len()` is the number of chunks.
pub fn chunk_records(
    path: &Path,
    cache: &TokenCache,
    i: usize,
) -> Result<Vec<super::Record>, DataError> {
    use std::io::{Read, Seek, SeekFrom};
    let index = cache.chunk_index();
    let Some(&(start, _)) = index.get(i) else {
        return Ok(Vec::new());
    };
    let read_err = |e: std::io::Error| DataError::file(path, format!("cannot read: {e}"));
    let mut f = std::fs::File::open(path).map_err(read_err)?;
    let end = match index.get(i + 1) {
        Some(&(e, _)) => e,
        None => f.metadata().map_err(read_err)?.len(),
    };
    f.seek(SeekFrom::Start(start)).map_err(read_err)?;
    let mut bytes = vec![0u8; end.saturating_sub(start) as usize];
    f.read_exact(&mut bytes).map_err(read_err)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        DataError::file(
            path,
            "changed since it was tokenized (not UTF-8 where it was); run again to rebuild the cache",
        )
    })?;
    let mut at = start;
    Ok(super::sources::windows(&text)
        .into_iter()
        .map(|mut r| {
            r.title = format!("byte {at}");
            at += r.text.len() as u64;
            r
        })
        .collect())
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

        let (c, how) = cached_tokens(&cache_dir, &scan, &tok, None, None, &mut progress).unwrap();
        assert_eq!(how, CacheUse::Built);
        let t = Tokens::mapped(c.clone());
        assert_eq!(t.to_vec(0..t.len()), tok.encode(&text));
        let recs: Vec<_> = (0..c.chunk_index().len())
            .flat_map(|i| chunk_records(&src, &c, i).unwrap())
            .collect();
        assert_eq!(
            recs.iter().map(|r| r.text.as_str()).collect::<String>(),
            text
        );
        assert_eq!(recs[0].title, "byte 0");
        let path = c.path().to_path_buf();
        drop((c, t));
        let (_, how) = cached_tokens(&cache_dir, &scan, &tok, None, None, &mut progress).unwrap();
        assert_eq!(how, CacheUse::Reused);

        // Truncated: detected and rebuilt.
        let b = std::fs::read(&path).unwrap();
        std::fs::write(&path, &b[..b.len() - 3]).unwrap();
        let (c, how) = cached_tokens(&cache_dir, &scan, &tok, None, None, &mut progress).unwrap();
        assert!(
            matches!(how, CacheUse::Rebuilt(ref m) if m.contains("truncated")),
            "{how:?}"
        );
        assert_eq!(c.len(), text.chars().count());

        // Other data or another tokenizer: another cache file.
        std::fs::write(&src, text.replace("question", "answer!!")).unwrap();
        let scan2 = scan_text(&src, false, None, &mut progress).unwrap();
        assert_ne!(scan2.hash, scan.hash);
        let bpe = Tokenizer::train_bpe(&text, 280).unwrap();
        assert_ne!(bpe.fingerprint(), tok.fingerprint());
        let (c2, how) = cached_tokens(&cache_dir, &scan2, &bpe, None, None, &mut progress).unwrap();
        assert_eq!(how, CacheUse::Built);
        assert_ne!(c2.path(), path);
        assert!(lines.iter().any(|l| l.starts_with("reading ")));
        assert!(lines.iter().any(|l| l.starts_with("tokenizing ")));
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
        let (a, s) = cached_bpe(&cache_dir, &scan, 300, 1000).unwrap();
        assert!(!s.reused);
        assert!(s.sampled <= 1000 && s.sampled > 900, "{s:?}");
        assert_eq!(s.total, text.len() as u64);
        assert!(
            s.describe(300).contains("first 0.0 MB of 0.0 MB"),
            "{}",
            s.describe(300)
        );
        let (b, s) = cached_bpe(&cache_dir, &scan, 300, 1000).unwrap();
        assert!(s.reused);
        assert_eq!(a.fingerprint(), b.fingerprint());
        // The whole file when it is within the budget: as today's tokenizer.
        let (c, s) = cached_bpe(&cache_dir, &scan, 300, 1 << 30).unwrap();
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
