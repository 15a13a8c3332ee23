//! Training data: sources (text, dir, jsonl, json, csv, synthetic), the
//! deterministic train/validation split, and random-window batches.
//! (Interface stub: the implementation lands with the data/tokenizer work.)

use crate::config::DataConfig;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("data {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("data: {0}")]
    Other(String),
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
}

impl Dataset {
    /// Loads the records a config names.
    pub fn load(cfg: &DataConfig, seed: u64) -> Result<Dataset, DataError> {
        let _ = (cfg, seed);
        Err(DataError::Other("not yet implemented".into()))
    }
    /// All records joined into one training stream (records separated by "\n").
    pub fn corpus(&self) -> String {
        let mut s = String::new();
        for r in &self.records {
            s.push_str(&r.text);
            if !r.text.ends_with('\n') {
                s.push('\n');
            }
        }
        s
    }
    pub fn total_bytes(&self) -> usize {
        self.records.iter().map(|r| r.text.len()).sum()
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
        let n = ((tokens.len() as f64) * train_fraction).round() as usize;
        let n = n.min(tokens.len());
        let val = tokens[n..].to_vec();
        let mut train = tokens;
        train.truncate(n);
        TokenSplit { train, val }
    }
}
