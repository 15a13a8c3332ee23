//! Character-level and byte-level BPE tokenizers through the `tokenizers` crate,
//! saved and loaded as Hugging Face `tokenizer.json`.
//! (Interface stub: the implementation lands with the data/tokenizer work.)

use crate::config::TokenizerConfig;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("tokenizer {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("tokenizer: {0}")]
    Other(String),
}

/// A trained tokenizer. Cheap to clone? No: wrap in `Arc` to share.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokenizer(vocab={})", self.vocab_size())
    }
}

impl Tokenizer {
    /// Builds the tokenizer the config asks for from the corpus text
    /// (or loads `cfg.path`).
    pub fn build(cfg: &TokenizerConfig, corpus: &str) -> Result<Tokenizer, TokenizerError> {
        let _ = (cfg, corpus);
        Err(TokenizerError::Other("not yet implemented".into()))
    }
    pub fn load(path: &Path) -> Result<Tokenizer, TokenizerError> {
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| TokenizerError::File {
            path: path.into(),
            message: e.to_string(),
        })?;
        Ok(Tokenizer { inner })
    }
    /// Writes `tokenizer.json` atomically.
    pub fn save(&self, path: &Path) -> Result<(), TokenizerError> {
        let json = self
            .inner
            .to_string(false)
            .map_err(|e| TokenizerError::Other(e.to_string()))?;
        crate::fsutil::atomic_write(path, json.as_bytes()).map_err(|e| TokenizerError::File {
            path: path.into(),
            message: e.to_string(),
        })
    }
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_default()
    }
    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, false).unwrap_or_default()
    }
    /// The text of each token of `text`, in order, as the tokenizer cuts it
    /// (concatenated they give `text` back). For display.
    pub fn pieces(&self, text: &str) -> Vec<String> {
        self.encode(text)
            .iter()
            .map(|&id| self.decode(&[id]))
            .collect()
    }
}

/// Turns a stream of token ids into text pieces, holding back incomplete
/// UTF-8 (a byte-level BPE token can be half a character).
#[derive(Debug, Default)]
pub struct StreamDecoder {
    ids: Vec<u32>,
    emitted: usize,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds one token; returns the newly complete text (may be empty).
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> String {
        self.ids.push(id);
        let text = tok.decode(&self.ids);
        if text.ends_with('\u{FFFD}') {
            return String::new();
        }
        let new = text.get(self.emitted..).unwrap_or("").to_string();
        self.emitted = text.len();
        new
    }
}
