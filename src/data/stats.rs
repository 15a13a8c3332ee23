//! Dataset statistics for the browser's statistics panel: sizes in bytes and
//! tokens (exact, or extrapolated from a prefix of a large corpus), the
//! vocabulary size, the train/val token split and a record-length histogram.

use super::Dataset;
use crate::tokenizer::Tokenizer;

/// Buckets of [`DatasetStats::length_hist`].
pub const HIST_BUCKETS: usize = 24;
/// Bytes tokenized exactly; beyond this the token count is extrapolated.
const EXACT_LIMIT: usize = 4 << 20;

/// Dataset statistics, computed once (for a tokenized file, in the
/// tokenization pass, and kept beside its token cache).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct DatasetStats {
    pub records: usize,
    /// UTF-8 bytes of all records.
    pub bytes: usize,
    /// Tokens of all records (chars without a tokenizer).
    pub tokens: usize,
    /// True when `tokens` was extrapolated from a prefix of a large corpus.
    pub tokens_estimated: bool,
    /// The tokenizer's vocabulary, or the distinct chars without one.
    pub vocab_size: usize,
    pub train_tokens: usize,
    pub val_tokens: usize,
    /// Record lengths (bytes) in [`HIST_BUCKETS`] equal-width buckets from 0
    /// to `hist_max`, the largest length (all zero for an empty dataset).
    pub length_hist: Vec<u64>,
    pub hist_max: usize,
}

impl Dataset {
    /// Sizes, split and length histogram; tokens counted with `tok` (chars
    /// without one), split by `train_fraction` (0.9 when not finite).
    pub fn stats(&self, tok: Option<&Tokenizer>, train_fraction: f64) -> DatasetStats {
        if let Some(s) = &self.stats {
            // Made in the tokenization pass: the split may differ.
            let frac = if train_fraction.is_finite() {
                train_fraction.clamp(0.0, 1.0)
            } else {
                0.9
            };
            let mut s = s.clone();
            s.train_tokens = ((s.tokens as f64) * frac).round() as usize;
            s.val_tokens = s.tokens.saturating_sub(s.train_tokens);
            if let Some(t) = tok {
                s.vocab_size = t.vocab_size();
            }
            return s;
        }
        let bytes = self.total_bytes();
        let (tokens, estimated) = match tok {
            Some(t) => {
                let mut counted_bytes = 0usize;
                let mut tokens = 0usize;
                for r in &self.records {
                    if counted_bytes >= EXACT_LIMIT {
                        break;
                    }
                    tokens += t.encode(&r.text).len();
                    counted_bytes += r.text.len();
                }
                if counted_bytes < bytes && counted_bytes > 0 {
                    let scaled = tokens as f64 * bytes as f64 / counted_bytes as f64;
                    (scaled.round() as usize, true)
                } else {
                    (tokens, false)
                }
            }
            None => (
                self.records.iter().map(|r| r.text.chars().count()).sum(),
                false,
            ),
        };
        let frac = if train_fraction.is_finite() {
            train_fraction.clamp(0.0, 1.0)
        } else {
            0.9
        };
        let train_tokens = ((tokens as f64) * frac).round() as usize;
        let hist_max = self.records.iter().map(|r| r.text.len()).max().unwrap_or(0);
        let mut hist = vec![0u64; HIST_BUCKETS];
        if hist_max > 0 {
            for r in &self.records {
                let b = (r.text.len() * HIST_BUCKETS / (hist_max + 1)).min(HIST_BUCKETS - 1);
                hist[b] += 1;
            }
        }
        DatasetStats {
            records: self.records.len(),
            bytes,
            tokens,
            tokens_estimated: estimated,
            vocab_size: match tok {
                Some(t) => t.vocab_size(),
                None => {
                    let mut chars: Vec<char> =
                        self.records.iter().flat_map(|r| r.text.chars()).collect();
                    chars.sort_unstable();
                    chars.dedup();
                    chars.len()
                }
            },
            train_tokens,
            val_tokens: tokens.saturating_sub(train_tokens),
            length_hist: hist,
            hist_max,
        }
    }
}
