//! The record index of a token cache: where each record of the corpus
//! starts, how long its text is and its title, written during the one
//! tokenization pass (never held whole in memory) and memory-mapped after,
//! so that the browser lists and reads records of a corpus of any size
//! lazily. A record's text is read on demand from the corpus file: the text
//! file itself, or, for structured sources (JSONL, JSON, CSV, directories),
//! the joined corpus written beside the cache (`<key>.corpus`).
//!
//! File layout (`<key>.records`, little-endian): a 64-byte header
//! (`HSREC001`, record count, titles' bytes, corpus bytes, CRC-32 of
//! everything after the header), then per record `(corpus offset, text
//! bytes, title offset)` as three `u64`s, then the titles' UTF-8 bytes.

use super::cache::CacheError;
use super::stats::{DatasetStats, HIST_BUCKETS};
use super::Record;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"HSREC001";
const HEADER: usize = 64;
const ENTRY: usize = 24;
/// The file name suffix of record indexes.
pub const RECORDS_SUFFIX: &str = "records";
/// The file name suffix of the joined corpus of a structured source.
pub const CORPUS_SUFFIX: &str = "corpus";
/// The file name suffix of the statistics kept beside a cache.
pub const STATS_SUFFIX: &str = "stats.json";

fn file_err(path: &Path, message: impl Into<String>) -> CacheError {
    CacheError::File {
        path: path.into(),
        message: super::one_line(&message.into()),
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// A checked, memory-mapped record index and its corpus file.
pub struct RecordStore {
    path: PathBuf,
    map: memmap2::Mmap,
    n: usize,
    blob_len: usize,
    corpus_path: PathBuf,
    corpus: File,
}

impl std::fmt::Debug for RecordStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RecordStore({}, {} records, corpus {})",
            self.path.display(),
            self.n,
            self.corpus_path.display()
        )
    }
}

impl PartialEq for RecordStore {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.corpus_path == other.corpus_path
    }
}

impl RecordStore {
    /// Opens and checks the index at `path` (header, length, CRC) and its
    /// corpus file `corpus` (its size must be the one the index was made
    /// for). Any mismatch is an error: the caller rebuilds.
    pub fn open(path: &Path, corpus: &Path) -> Result<RecordStore, CacheError> {
        let file = File::open(path).map_err(|e| file_err(path, format!("cannot open: {e}")))?;
        // SAFETY: the file is ours (written whole, renamed into place,
        // never written again); its checksum is checked below.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|e| file_err(path, format!("cannot map: {e}")))?;
        if map.len() < HEADER || &map[..8] != MAGIC {
            return Err(file_err(
                path,
                "is not a headsup record index (bad header); it will be rebuilt",
            ));
        }
        let n = u64_at(&map, 8) as usize;
        let blob_len = u64_at(&map, 16) as usize;
        let corpus_len = u64_at(&map, 24);
        let crc = u64_at(&map, 32) as u32;
        let want = n
            .checked_mul(ENTRY)
            .and_then(|e| e.checked_add(HEADER))
            .and_then(|e| e.checked_add(blob_len));
        if want != Some(map.len()) {
            return Err(file_err(
                path,
                "is truncated or corrupted (its length is not what its header says); it will be rebuilt",
            ));
        }
        let mut f = &file;
        let mut h = crc32fast::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        f.seek(SeekFrom::Start(HEADER as u64))
            .map_err(|e| file_err(path, format!("cannot read: {e}")))?;
        loop {
            let k = f
                .read(&mut buf)
                .map_err(|e| file_err(path, format!("cannot read: {e}")))?;
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
        }
        if h.finalize() != crc {
            return Err(file_err(
                path,
                "is corrupted (checksum mismatch); it will be rebuilt",
            ));
        }
        let cf = File::open(corpus).map_err(|e| {
            file_err(
                corpus,
                format!("cannot open the corpus of the record index: {e}"),
            )
        })?;
        let len = cf.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
        if len != corpus_len {
            return Err(file_err(
                corpus,
                format!("has {len} bytes, the record index was made for {corpus_len}; it will be rebuilt"),
            ));
        }
        Ok(RecordStore {
            path: path.to_path_buf(),
            map,
            n,
            blob_len,
            corpus_path: corpus.to_path_buf(),
            corpus: cf,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The corpus file the records are read from.
    pub fn corpus_path(&self) -> &Path {
        &self.corpus_path
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// `(corpus offset, text bytes, title offset)` of record `i < len`.
    fn entry(&self, i: usize) -> (u64, u64, u64) {
        let at = HEADER + ENTRY * i;
        (
            u64_at(&self.map, at),
            u64_at(&self.map, at + 8),
            u64_at(&self.map, at + 16),
        )
    }

    /// Bytes of record `i`'s text.
    pub fn text_len(&self, i: usize) -> Option<usize> {
        (i < self.n).then(|| self.entry(i).1 as usize)
    }

    /// Record `i`'s byte offset in the corpus.
    pub fn offset(&self, i: usize) -> Option<u64> {
        (i < self.n).then(|| self.entry(i).0)
    }

    pub fn title(&self, i: usize) -> Option<String> {
        if i >= self.n {
            return None;
        }
        let blob = HEADER + ENTRY * self.n;
        let start = self.entry(i).2 as usize;
        let end = if i + 1 < self.n {
            self.entry(i + 1).2 as usize
        } else {
            self.blob_len
        };
        let bytes = self.map.get(blob + start..blob + end.max(start))?;
        Some(String::from_utf8_lossy(bytes).into_owned())
    }

    /// The first `max` bytes of record `i`'s text (cut at a character
    /// boundary), read from the corpus file.
    pub fn text_prefix(&self, i: usize, max: usize) -> Option<String> {
        if i >= self.n {
            return None;
        }
        let (off, len, _) = self.entry(i);
        let want = (len as usize).min(max);
        let mut buf = vec![0u8; want];
        read_at(&self.corpus, &mut buf, off).ok()?;
        let s = match String::from_utf8(buf) {
            Ok(s) => s,
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let mut b = e.into_bytes();
                if want < len as usize && b.len() - valid < 4 {
                    // Cut inside a character.
                    b.truncate(valid);
                    String::from_utf8(b).unwrap_or_default()
                } else {
                    // The corpus changed under the index.
                    String::from_utf8_lossy(&b).into_owned()
                }
            }
        };
        Some(s)
    }

    /// The corpus bytes of records `i..k`, as many whole records as fit in
    /// `max` bytes (at least record `i`, cut to `max` when longer): one read
    /// for a search over many records.
    pub fn read_block(&self, i: usize, max: usize) -> Option<(std::ops::Range<usize>, Vec<u8>)> {
        if i >= self.n {
            return None;
        }
        let start = self.entry(i).0;
        let mut k = i + 1;
        let mut end = start + self.entry(i).1;
        while k < self.n {
            let (o, l, _) = self.entry(k);
            if (o + l - start) as usize > max {
                break;
            }
            end = o + l;
            k += 1;
        }
        let want = ((end - start) as usize).min(max.max(1));
        let mut buf = vec![0u8; want];
        read_at(&self.corpus, &mut buf, start).ok()?;
        Some((i..k, buf))
    }

    /// Record `i`, title and whole text.
    pub fn record(&self, i: usize) -> Option<Record> {
        Some(Record {
            title: self.title(i)?,
            text: self.text_prefix(i, usize::MAX)?,
        })
    }

    /// The record-length histogram of the statistics: lengths in
    /// [`HIST_BUCKETS`] equal buckets from 0 to the largest (read from the
    /// index, not the text).
    pub fn length_hist(&self) -> (Vec<u64>, usize) {
        let max = (0..self.n).map(|i| self.entry(i).1).max().unwrap_or(0) as usize;
        let mut hist = vec![0u64; HIST_BUCKETS];
        if max > 0 {
            for i in 0..self.n {
                let l = self.entry(i).1 as usize;
                hist[(l * HIST_BUCKETS / (max + 1)).min(HIST_BUCKETS - 1)] += 1;
            }
        }
        (hist, max)
    }
}

#[cfg(unix)]
fn read_at(f: &File, buf: &mut [u8], off: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    f.read_exact_at(buf, off)
}

#[cfg(not(unix))]
fn read_at(f: &File, buf: &mut [u8], off: u64) -> std::io::Result<()> {
    let mut f = f.try_clone()?;
    f.seek(SeekFrom::Start(off))?;
    f.read_exact(buf)
}

/// Removes a temporary file unless it was renamed into place.
struct Temp(Option<PathBuf>);

impl Drop for Temp {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn temp_name(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "records".into());
    dest.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes a record index (and, for a structured source, the joined corpus)
/// as records stream by, into temporary files that [`RecordWriter::finish`]
/// renames into place; dropped unfinished (cancelled, failed), it removes
/// them.
pub struct RecordWriter {
    dest: PathBuf,
    entries: BufWriter<File>,
    entries_tmp: Temp,
    titles: BufWriter<File>,
    titles_tmp: Temp,
    corpus: Option<(BufWriter<File>, Temp, PathBuf)>,
    crc: crc32fast::Hasher,
    n: u64,
    corpus_len: u64,
    title_len: u64,
    text_bytes: u64,
}

impl RecordWriter {
    /// A writer of the index `dest`; with `corpus`, the joined corpus goes
    /// to that file.
    pub fn new(dest: &Path, corpus: Option<&Path>) -> Result<RecordWriter, CacheError> {
        let create = |p: &Path| {
            File::create(p)
                .map(|f| BufWriter::with_capacity(1 << 20, f))
                .map_err(|e| {
                    file_err(
                        p,
                        format!("cannot write: {e}; check the disk space and HEADSUP_CACHE_DIR"),
                    )
                })
        };
        let et = temp_name(dest);
        let mut entries = create(&et)?;
        let entries_tmp = Temp(Some(et.clone()));
        entries
            .write_all(&[0u8; HEADER])
            .map_err(|e| file_err(&et, format!("cannot write: {e}")))?;
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tt = temp_name(&dest.with_file_name(format!("{name}.titles")));
        let titles = create(&tt)?;
        let titles_tmp = Temp(Some(tt));
        let corpus = match corpus {
            Some(c) => {
                let ct = temp_name(c);
                let w = create(&ct)?;
                Some((w, Temp(Some(ct)), c.to_path_buf()))
            }
            None => None,
        };
        Ok(RecordWriter {
            dest: dest.to_path_buf(),
            entries,
            entries_tmp,
            titles,
            titles_tmp,
            corpus,
            crc: crc32fast::Hasher::new(),
            n: 0,
            corpus_len: 0,
            title_len: 0,
            text_bytes: 0,
        })
    }

    /// Adds a record whose text starts at corpus offset `offset`; with a
    /// corpus file, writes its text and `sep` after it.
    pub fn push(&mut self, rec: &Record, offset: u64, sep: &str) -> std::io::Result<()> {
        let mut e = [0u8; ENTRY];
        e[..8].copy_from_slice(&offset.to_le_bytes());
        e[8..16].copy_from_slice(&(rec.text.len() as u64).to_le_bytes());
        e[16..].copy_from_slice(&self.title_len.to_le_bytes());
        self.crc.update(&e);
        self.entries.write_all(&e)?;
        self.titles.write_all(rec.title.as_bytes())?;
        self.title_len += rec.title.len() as u64;
        if let Some((w, _, _)) = self.corpus.as_mut() {
            w.write_all(rec.text.as_bytes())?;
            w.write_all(sep.as_bytes())?;
        }
        self.corpus_len = offset + (rec.text.len() + sep.len()) as u64;
        self.text_bytes += rec.text.len() as u64;
        self.n += 1;
        Ok(())
    }

    /// Records pushed so far.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Bytes of the records' texts pushed so far.
    pub fn text_bytes(&self) -> u64 {
        self.text_bytes
    }

    /// Writes the header, fsyncs and renames the files into place.
    pub fn finish(mut self) -> Result<(), CacheError> {
        let et = self.entries_tmp.0.clone().expect("temporary index");
        let io = |e: std::io::Error| {
            file_err(
                &et,
                format!("cannot write: {e}; check the disk space and HEADSUP_CACHE_DIR"),
            )
        };
        let titles = self.titles.into_inner().map_err(|e| io(e.into_error()))?;
        drop(titles);
        let tt = self.titles_tmp.0.clone().expect("temporary titles");
        let mut tf = File::open(&tt).map_err(io)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let k = tf.read(&mut buf).map_err(io)?;
            if k == 0 {
                break;
            }
            self.crc.update(&buf[..k]);
            self.entries.write_all(&buf[..k]).map_err(io)?;
        }
        let mut header = [0u8; HEADER];
        header[..8].copy_from_slice(MAGIC);
        header[8..16].copy_from_slice(&self.n.to_le_bytes());
        header[16..24].copy_from_slice(&self.title_len.to_le_bytes());
        header[24..32].copy_from_slice(&self.corpus_len.to_le_bytes());
        header[32..40].copy_from_slice(&(self.crc.finalize() as u64).to_le_bytes());
        let mut f = self.entries.into_inner().map_err(|e| io(e.into_error()))?;
        f.seek(SeekFrom::Start(0)).map_err(io)?;
        f.write_all(&header).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        if let Some((w, mut tmp, dest)) = self.corpus.take() {
            let f = w.into_inner().map_err(|e| io(e.into_error()))?;
            f.sync_all().map_err(io)?;
            let from = tmp.0.take().expect("temporary corpus");
            if let Err(e) = std::fs::rename(&from, &dest) {
                let _ = std::fs::remove_file(&from);
                return Err(file_err(&dest, format!("cannot move into place: {e}")));
            }
        }
        std::fs::rename(&et, &self.dest)
            .map_err(|e| file_err(&self.dest, format!("cannot move into place: {e}")))?;
        self.entries_tmp.0 = None;
        Ok(())
    }
}

/// Reads the statistics kept at `path`.
pub fn load_stats(path: &Path) -> Result<DatasetStats, CacheError> {
    let bytes = std::fs::read(path).map_err(|e| file_err(path, format!("cannot read: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| file_err(path, format!("is not valid: {e}")))
}

/// Keeps the statistics at `path`, atomically.
pub fn save_stats(path: &Path, stats: &DatasetStats) -> Result<(), CacheError> {
    let json = serde_json::to_vec_pretty(stats).map_err(|e| CacheError::Other(e.to_string()))?;
    crate::fsutil::atomic_write(path, &json).map_err(|e| {
        file_err(
            path,
            format!("cannot write: {e}; check the disk space and HEADSUP_CACHE_DIR"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trips_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("k.records");
        let corpus = dir.path().join("k.corpus");
        let recs = [
            Record {
                title: "first".into(),
                text: "hello é".into(),
            },
            Record {
                title: "漢字 title".into(),
                text: String::new(),
            },
            Record {
                title: String::new(),
                text: "last\n".into(),
            },
        ];
        let mut w = RecordWriter::new(&dest, Some(&corpus)).unwrap();
        let mut off = 0;
        for r in &recs {
            let sep = if r.text.ends_with('\n') { "" } else { "\n" };
            w.push(r, off, sep).unwrap();
            off += (r.text.len() + sep.len()) as u64;
        }
        w.finish().unwrap();
        assert_eq!(
            std::fs::read_to_string(&corpus).unwrap(),
            "hello é\n\nlast\n"
        );
        let s = RecordStore::open(&dest, &corpus).unwrap();
        assert_eq!(s.len(), 3);
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(s.record(i).as_ref(), Some(r));
        }
        assert_eq!(s.text_prefix(0, 7).unwrap(), "hello ");
        assert_eq!(s.record(3), None);
        let (hist, max) = s.length_hist();
        assert_eq!((hist.iter().sum::<u64>(), max), (3, 8));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");

        let good = std::fs::read(&dest).unwrap();
        std::fs::write(&dest, &good[..good.len() - 1]).unwrap();
        let e = RecordStore::open(&dest, &corpus).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        let mut bad = good.clone();
        bad[HEADER + 1] ^= 1;
        std::fs::write(&dest, &bad).unwrap();
        let e = RecordStore::open(&dest, &corpus).unwrap_err().to_string();
        assert!(e.contains("checksum"), "{e}");
        std::fs::write(&dest, &good).unwrap();
        std::fs::write(&corpus, "changed").unwrap();
        let e = RecordStore::open(&dest, &corpus).unwrap_err().to_string();
        assert!(e.contains("made for"), "{e}");
    }

    #[test]
    fn an_unfinished_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = RecordWriter::new(
            &dir.path().join("k.records"),
            Some(&dir.path().join("k.corpus")),
        )
        .unwrap();
        w.push(
            &Record {
                title: "t".into(),
                text: "x".into(),
            },
            0,
            "\n",
        )
        .unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
