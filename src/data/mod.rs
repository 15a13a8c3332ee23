//! Training data: sources (text, dir, jsonl, json, csv, synthetic), the
//! deterministic train/validation split, and statistics for the UI.
//!
//! Every source becomes a stream of [`Record`]s (what the data browser
//! shows) and one training stream, [`Dataset::corpus`]. A single text file
//! is cut into windows of about 1–2 KB at line boundaries; its corpus is the
//! file's text exactly. Training from a file goes through the token cache:
//! its [`Dataset`] then holds no records in memory but a [`RecordStore`]
//! read lazily, and the statistics made in the tokenization pass.

pub mod cache;
pub mod load;
pub mod located;
pub mod records;
mod sources;
mod stats;
pub mod stream;
mod synthetic;
pub mod tokens;

#[cfg(test)]
mod tests;

use crate::config::{DataConfig, SourceKind};
use std::path::PathBuf;

pub use records::RecordStore;
pub use sources::RecordStream;
pub use stats::{DatasetStats, HIST_BUCKETS};
pub use synthetic::generate as generate_synthetic;
pub use tokens::Tokens;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("data {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("data: {0}")]
    Other(String),
}

impl DataError {
    pub(crate) fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> DataError {
        DataError::File {
            path: path.into(),
            message: one_line(&message.into()),
        }
    }
}

/// Collapses a message onto one line.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One record of the dataset: a file, a JSON/CSV record, a synthetic example,
/// or a window of one long text.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Short label for the browser (file name, record index, title...).
    pub title: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dataset {
    /// Human description of the source (path and kind).
    pub source: String,
    /// The records, when held in memory (empty when `store` has them).
    pub records: Vec<Record>,
    /// True when the records are consecutive windows of one text (a `text`
    /// source): the corpus is then their plain concatenation, which is the
    /// original text byte for byte.
    pub contiguous: bool,
    /// The records of a tokenized file, read on demand (`records` is then empty).
    pub store: Option<std::sync::Arc<RecordStore>>,
    /// Statistics made in the tokenization pass (with `store`).
    pub stats: Option<DatasetStats>,
}

impl Dataset {
    /// A dataset of independent records (the corpus joins them with "\n").
    pub fn from_records(source: impl Into<String>, records: Vec<Record>) -> Dataset {
        Dataset {
            source: source.into(),
            records,
            contiguous: false,
            store: None,
            stats: None,
        }
    }

    /// Number of records (in memory or in the store).
    pub fn len(&self) -> usize {
        match &self.store {
            Some(s) => s.len(),
            None => self.records.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Record `i` (read from the store when there is one).
    pub fn record(&self, i: usize) -> Option<std::borrow::Cow<'_, Record>> {
        match &self.store {
            Some(s) => s.record(i).map(std::borrow::Cow::Owned),
            None => self.records.get(i).map(std::borrow::Cow::Borrowed),
        }
    }

    /// Record `i`'s title.
    pub fn title(&self, i: usize) -> Option<std::borrow::Cow<'_, str>> {
        match &self.store {
            Some(s) => s.title(i).map(std::borrow::Cow::Owned),
            None => self
                .records
                .get(i)
                .map(|r| std::borrow::Cow::Borrowed(r.title.as_str())),
        }
    }

    /// The first `max` bytes of record `i`'s text, at a character boundary.
    pub fn text_prefix(&self, i: usize, max: usize) -> Option<std::borrow::Cow<'_, str>> {
        match &self.store {
            Some(s) => s.text_prefix(i, max).map(std::borrow::Cow::Owned),
            None => self.records.get(i).map(|r| {
                let mut end = r.text.len().min(max);
                while !r.text.is_char_boundary(end) {
                    end -= 1;
                }
                std::borrow::Cow::Borrowed(&r.text[..end])
            }),
        }
    }

    /// Bytes of record `i`'s text.
    pub fn text_len(&self, i: usize) -> Option<usize> {
        match &self.store {
            Some(s) => s.text_len(i),
            None => self.records.get(i).map(|r| r.text.len()),
        }
    }

    /// Loads the records a config names into memory (small data; training
    /// streams them through the token cache instead: [`load::load`]).
    /// `seed` drives synthetic data.
    pub fn load(cfg: &DataConfig, seed: u64) -> Result<Dataset, DataError> {
        let path = match (cfg.source, cfg.path.as_deref()) {
            (SourceKind::Synthetic, _) => {
                if cfg.synthetic_records == 0 {
                    return Err(DataError::Other(
                        "data.synthetic_records is 0; set it to at least 1 (e.g. 2000)".into(),
                    ));
                }
                return Ok(synthetic::generate(cfg.task, cfg.synthetic_records, seed));
            }
            (_, Some(p)) => p,
            (kind, None) => {
                return Err(DataError::Other(format!(
                    "data.source = {} needs data.path (or --data PATH)",
                    source_name(kind)
                )));
            }
        };
        let ds = match cfg.source {
            SourceKind::Dir => sources::load_dir(path)?,
            SourceKind::Jsonl => sources::load_jsonl(path, &cfg.field)?,
            SourceKind::Json => {
                let json_path = if cfg.json_path.trim().is_empty() {
                    cfg.field.as_str()
                } else {
                    cfg.json_path.as_str()
                };
                sources::load_json(path, json_path)?
            }
            SourceKind::Csv => sources::load_csv(path, &cfg.field)?,
            SourceKind::Text | SourceKind::Synthetic => sources::load_text(path)?,
        };
        if ds.total_bytes() == 0 {
            return Err(DataError::file(
                path,
                "contains no text (every record is empty); check data.field / data.json_path",
            ));
        }
        Ok(ds)
    }

    /// All records joined into one training stream: records separated by "\n"
    /// (none added after a record that already ends with one); for a text
    /// source, the file's text exactly.
    pub fn corpus(&self) -> String {
        let mut s = String::with_capacity(self.total_bytes() + self.records.len());
        for r in &self.records {
            s.push_str(&r.text);
            if !self.contiguous && !r.text.ends_with('\n') {
                s.push('\n');
            }
        }
        s
    }

    pub fn total_bytes(&self) -> usize {
        match (&self.stats, &self.store) {
            (Some(s), Some(_)) => s.bytes,
            _ => self.records.iter().map(|r| r.text.len()).sum(),
        }
    }
}

pub(crate) fn source_name(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Text => "text",
        SourceKind::Dir => "dir",
        SourceKind::Jsonl => "jsonl",
        SourceKind::Json => "json",
        SourceKind::Csv => "csv",
        SourceKind::Synthetic => "synthetic",
    }
}

/// Token streams for training and validation.
#[derive(Debug, Clone)]
pub struct TokenSplit {
    pub train: Tokens,
    pub val: Tokens,
}

impl TokenSplit {
    /// The first `train_fraction` of the tokens train, the rest validate (as nanoGPT).
    pub fn new(tokens: Vec<u32>, train_fraction: f64) -> TokenSplit {
        let (train, val) = Tokens::owned(tokens).split(train_fraction);
        TokenSplit { train, val }
    }
}
