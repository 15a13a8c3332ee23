//! Where a run's dataset lives in the token cache (`RUN/dataset.json`):
//! written by the trainer once its data is prepared, so that a viewer
//! (`headsup attach`, `watch`, the workbench) opens the record index and the
//! statistics there, mapped and read lazily, instead of reading the data
//! again. A missing, stale or damaged reference is no error: the viewer then
//! goes through the token cache as training does.

use super::records::{self, RecordStore};
use super::Dataset;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// The file in the run directory.
pub const FILE: &str = "dataset.json";

#[derive(Debug, Serialize, Deserialize)]
struct DatasetRef {
    /// The browser's description of the source.
    source: String,
    contiguous: bool,
    records: PathBuf,
    corpus: PathBuf,
    stats: PathBuf,
    /// The corpus file's modification time (seconds, nanoseconds): a text
    /// source's corpus is the data file itself, and one changed since the
    /// index was made (even at the same size) is not trusted.
    corpus_modified: Option<(u64, u32)>,
}

fn modified(path: &Path) -> Option<(u64, u32)> {
    let t = std::fs::metadata(path).ok()?.modified().ok()?;
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    Some((d.as_secs(), d.subsec_nanos()))
}

/// Writes `RUN/dataset.json` for `dataset` (atomically) when its records
/// are in a record index; removes a stale one otherwise.
pub fn save(run_dir: &Path, dataset: &Dataset) -> std::io::Result<()> {
    let path = run_dir.join(FILE);
    let Some(store) = &dataset.store else {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    };
    let r = DatasetRef {
        source: dataset.source.clone(),
        contiguous: dataset.contiguous,
        records: store.path().to_path_buf(),
        corpus: store.corpus_path().to_path_buf(),
        stats: store.path().with_extension(records::STATS_SUFFIX),
        corpus_modified: modified(store.corpus_path()),
    };
    let json = serde_json::to_vec_pretty(&r).map_err(std::io::Error::other)?;
    crate::fsutil::atomic_write(&path, &json)
}

/// The dataset `RUN/dataset.json` names, its record index and statistics
/// opened and checked (length, CRC, corpus size and modification time):
/// `None` when there is no such file, `Some(Err(why))` when it cannot be
/// used (the caller then goes through the token cache).
pub fn open(run_dir: &Path) -> Option<Result<Dataset, String>> {
    let path = run_dir.join(FILE);
    let bytes = std::fs::read(&path).ok()?;
    Some(open_ref(&path, &bytes))
}

fn open_ref(path: &Path, bytes: &[u8]) -> Result<Dataset, String> {
    let r: DatasetRef = serde_json::from_slice(bytes)
        .map_err(|e| format!("{}: is not valid: {e}", path.display()))?;
    if r.corpus_modified.is_none() || modified(&r.corpus) != r.corpus_modified {
        return Err(format!(
            "{}: changed since its record index was made",
            r.corpus.display()
        ));
    }
    let store = RecordStore::open(&r.records, &r.corpus).map_err(|e| e.to_string())?;
    let stats = records::load_stats(&r.stats).map_err(|e| e.to_string())?;
    Ok(Dataset {
        source: r.source,
        records: Vec::new(),
        contiguous: r.contiguous,
        store: Some(std::sync::Arc::new(store)),
        stats: Some(stats),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::tokens::{cached_tokens, scan, Source};
    use crate::tokenizer::Tokenizer;

    /// A tokenized dataset, saved as a reference and opened again, lists
    /// the same records without reading the data; a corpus changed since
    /// (same size) is refused, not trusted.
    #[test]
    fn a_saved_reference_reopens_the_records_and_a_changed_corpus_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..400)
            .map(|i| format!("line {i} of the corpus\n"))
            .collect();
        let data = dir.path().join("data.txt");
        std::fs::write(&data, &text).unwrap();
        let s = scan(&Source::text(&data), true, None, &mut |_| {}).unwrap();
        let chars: String = s.chars.iter().flatten().collect();
        let tok = Tokenizer::train_char(&chars).unwrap();
        let cache = dir.path().join("cache");
        let c = cached_tokens(&cache, &s, &tok, None, None, &mut |_| {}).unwrap();
        let dataset = Dataset {
            source: "text data.txt".into(),
            records: Vec::new(),
            contiguous: true,
            store: Some(c.records.clone()),
            stats: Some(c.stats.clone()),
        };
        let run = dir.path().join("run");
        std::fs::create_dir_all(&run).unwrap();
        assert!(open(&run).is_none());
        save(&run, &dataset).unwrap();
        let d = open(&run).unwrap().unwrap();
        assert!(d.records.is_empty() && d.store.is_some());
        assert_eq!(d.len(), dataset.len());
        assert!(d.len() > 1);
        assert_eq!(d.record(1), dataset.record(1));
        assert_eq!(d.stats, dataset.stats);
        assert_eq!(d.source, dataset.source);
        assert!(d.contiguous);

        // The data file rewritten at the same size: not trusted.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&data, text.replace("line", "LINE")).unwrap();
        assert!(open(&run).unwrap().is_err());

        // A dataset held in memory has no reference: a stale one goes.
        save(&run, &Dataset::from_records("mem", Vec::new())).unwrap();
        assert!(open(&run).is_none());
    }
}
