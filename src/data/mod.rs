//! Training data: sources (text, dir, jsonl, json, csv, synthetic), the
//! deterministic train/validation split, and statistics for the UI.
//!
//! Every source becomes a list of [`Record`]s (what the data browser shows)
//! and one training stream, [`Dataset::corpus`]. A single text file is cut
//! into windows of about 1–2 KB at line boundaries; its corpus is the file's
//! text exactly.

mod sources;
mod stats;
mod synthetic;

#[cfg(test)]
mod tests;

use crate::config::{DataConfig, SourceKind};
use std::path::PathBuf;

pub use stats::{DatasetStats, HIST_BUCKETS};
pub use synthetic::generate as generate_synthetic;

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

#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Human description of the source (path and kind).
    pub source: String,
    pub records: Vec<Record>,
    /// True when the records are consecutive windows of one text (a `text`
    /// source): the corpus is then their plain concatenation, which is the
    /// original text byte for byte.
    pub contiguous: bool,
}

impl Dataset {
    /// A dataset of independent records (the corpus joins them with "\n").
    pub fn from_records(source: impl Into<String>, records: Vec<Record>) -> Dataset {
        Dataset {
            source: source.into(),
            records,
            contiguous: false,
        }
    }

    /// Loads the records a config names. `seed` drives synthetic data.
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
        self.records.iter().map(|r| r.text.len()).sum()
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
#[derive(Debug, Clone, PartialEq)]
pub struct TokenSplit {
    pub train: Vec<u32>,
    pub val: Vec<u32>,
}

impl TokenSplit {
    /// The first `train_fraction` of the tokens train, the rest validate (as nanoGPT).
    pub fn new(tokens: Vec<u32>, train_fraction: f64) -> TokenSplit {
        let f = if train_fraction.is_finite() {
            train_fraction.clamp(0.0, 1.0)
        } else {
            1.0
        };
        let n = ((tokens.len() as f64) * f).round() as usize;
        let n = n.min(tokens.len());
        let val = tokens[n..].to_vec();
        let mut train = tokens;
        train.truncate(n);
        TokenSplit { train, val }
    }
}
