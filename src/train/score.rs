//! Answering `Command::Score`: the per-token losses of dataset records under
//! a weight snapshot, on a worker thread, bounded in time and memory and
//! cancellable. Shared by the trainer's workers and the stand-in trainer of
//! `headsup watch` and `headsup tui --checkpoint` (`watch::local`).
//!
//! What is scored: the selected record (`detail`) up to its first
//! [`DETAIL_BYTES`] and [`DETAIL_TOKENS`] tokens, each token's piece and loss
//! sent back; a sample, each record's first [`SAMPLE_TOKENS`] tokens, only
//! the mean sent back, at most [`SAMPLE_RECORDS`] records and
//! [`SAMPLE_SECONDS`] seconds. Long records are scored in windows of the
//! model's positions (`model::score` says with how much context).
//!
//! A masked LM (BERT) has no per-token loss of the next token: its record
//! is masked as training masks a window (`train::masking`, seeded by the
//! record) and scored at the chosen positions; the detail then says what was
//! done at each and the model's top-1 there, and a sample's means are
//! masked-token losses.

use super::masking::{score_masked_record, MlmSetup};
use super::{Event, RecordLoss, ScoreRequest};
use crate::data::Dataset;
use crate::model::infer::HostModel;
use crate::model::score::token_losses;
use crate::model::Gpt;
use crate::tokenizer::Tokenizer;
use dfdx::prelude::Cpu;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes of the selected record scored token by token (the browser cuts the
/// same prefix into tokens).
pub const DETAIL_BYTES: usize = 16 * 1024;
/// Tokens of the selected record scored at most.
pub const DETAIL_TOKENS: usize = 4096;
/// Tokens of each sampled record scored (its start).
pub const SAMPLE_TOKENS: usize = 512;
/// Records one sample request scores at most.
pub const SAMPLE_RECORDS: usize = 2048;
/// Time one sample request may take; it ends with a note after that.
pub const SAMPLE_SECONDS: u64 = 120;

/// The token ids and pieces of a record's scored prefix.
/// The cancel flags of the scoring in flight, one per kind (the selected
/// record's detail, a sample): a newer request of a kind cancels the older
/// one of that kind. The trainer's workers and `watch`'s stand-in share it.
#[derive(Debug, Default)]
pub struct ScoreSlots {
    detail: Arc<AtomicBool>,
    sample: Arc<AtomicBool>,
}

impl ScoreSlots {
    /// Cancels the older request of this kind; the new request's flag.
    pub fn start(&mut self, detail: bool) -> Arc<AtomicBool> {
        let slot = if detail {
            &mut self.detail
        } else {
            &mut self.sample
        };
        slot.store(true, Ordering::SeqCst);
        *slot = Arc::new(AtomicBool::new(false));
        slot.clone()
    }

    /// `Command::CancelScore`: the sample stops.
    pub fn cancel_sample(&self) {
        self.sample.store(true, Ordering::SeqCst);
    }

    /// Everything stops (the loop is ending).
    pub fn cancel_all(&self) {
        self.detail.store(true, Ordering::SeqCst);
        self.cancel_sample();
    }
}

/// The weights that score: a causal LM's host copy, or a masked LM on the
/// CPU with how its records are masked.
pub enum Scorer<'a> {
    Causal(&'a HostModel),
    Masked {
        model: &'a Gpt<Cpu>,
        setup: MlmSetup,
        /// The run's seed (the masks are seeded by it and the record).
        seed: u64,
        /// The fused kernels (`model.fused`).
        fused: bool,
    },
}

impl Scorer<'_> {
    fn vocab(&self) -> usize {
        match self {
            Scorer::Causal(h) => h.cfg.vocab_size,
            Scorer::Masked { model, .. } => model.cfg.vocab_size,
        }
    }
}

fn tokens_of(tok: &Tokenizer, text: &str, max_bytes: usize, max_tokens: usize) -> Vec<usize> {
    let prefix = prefix(text, max_bytes);
    let mut ids: Vec<usize> = tok.encode(prefix).into_iter().map(|t| t as usize).collect();
    ids.truncate(max_tokens);
    ids
}

/// The longest prefix of at most `max` bytes ending on a char boundary.
fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Ids the model has no embedding for (a tokenizer larger than the model is
/// refused when a checkpoint is opened; this keeps a bad id from panicking).
fn clamp_ids(ids: &mut [usize], vocab: usize) {
    for id in ids.iter_mut() {
        *id = (*id).min(vocab.saturating_sub(1));
    }
}

fn mean(losses: &[f32]) -> f32 {
    if losses.is_empty() {
        return f32::NAN;
    }
    (losses.iter().map(|&l| l as f64).sum::<f64>() / losses.len() as f64) as f32
}

/// Scores what `req` asks on `host` (the weights of `step`) and sends a
/// `RecordLoss` per record, then `ScoreDone`. Ends early when `cancel` is
/// set, the time bound is reached, or `send` returns false.
pub fn serve_score(
    scorer: &Scorer,
    tok: &Tokenizer,
    dataset: &Dataset,
    step: usize,
    req: &ScoreRequest,
    cancel: &AtomicBool,
    mut send: impl FnMut(Event) -> bool,
) {
    let start = Instant::now();
    let limit = Duration::from_secs(SAMPLE_SECONDS);
    let records: Vec<usize> = req.records.iter().copied().take(SAMPLE_RECORDS).collect();
    let total = records.len();
    let mut note = (req.records.len() > total).then(|| {
        format!(
            "scored the first {SAMPLE_RECORDS} of {} records asked for",
            req.records.len()
        )
    });
    let mut scored = 0;
    let mut cancelled = false;
    for (done, &r) in records.iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            cancelled = true;
            break;
        }
        if !req.detail && start.elapsed() > limit {
            note = Some(format!(
                "stopped after {SAMPLE_SECONDS} s: {scored} of {total} records scored"
            ));
            break;
        }
        let Some(rec) = dataset.record(r) else {
            note = Some(format!(
                "record {r} is not in this dataset ({} records)",
                dataset.len()
            ));
            continue;
        };
        let (max_bytes, max_tokens) = if req.detail {
            (DETAIL_BYTES, DETAIL_TOKENS)
        } else {
            (DETAIL_BYTES, SAMPLE_TOKENS)
        };
        let mut ids = tokens_of(tok, &rec.text, max_bytes, max_tokens);
        clamp_ids(&mut ids, scorer.vocab());
        if let Scorer::Masked {
            model,
            setup,
            seed,
            fused,
        } = scorer
        {
            let (window, m, chosen) =
                score_masked_record(model, tok, setup, *seed, r, &ids, *fused);
            scored += 1;
            let ev = RecordLoss {
                id: req.id,
                record: r,
                step,
                tokens: chosen.len(),
                mean: m,
                pieces: if req.detail {
                    window.iter().map(|&i| tok.decode(&[i as u32])).collect()
                } else {
                    Vec::new()
                },
                losses: Vec::new(),
                done: done + 1,
                total,
                masked: req.detail.then_some(chosen),
            };
            if !send(Event::RecordLoss(ev)) {
                return;
            }
            continue;
        }
        let Scorer::Causal(host) = scorer else {
            continue;
        };
        let Some(losses) = token_losses(host, &ids, cancel) else {
            cancelled = true;
            break;
        };
        let pieces = if req.detail {
            let mut p = tok.pieces(prefix(&rec.text, max_bytes));
            p.truncate(ids.len());
            p
        } else {
            Vec::new()
        };
        let m = mean(&losses);
        scored += 1;
        let ev = RecordLoss {
            id: req.id,
            record: r,
            step,
            tokens: losses.len(),
            mean: m,
            losses: if req.detail {
                losses
                    .iter()
                    .map(|&l| if l.is_finite() { l } else { f32::MAX })
                    .collect()
            } else {
                Vec::new()
            },
            pieces,
            done: done + 1,
            total,
            masked: None,
        };
        if !send(Event::RecordLoss(ev)) {
            return;
        }
    }
    send(Event::ScoreDone {
        id: req.id,
        scored,
        total,
        cancelled,
        note,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Record;
    use crate::model::{Gpt, GptConfig};
    use dfdx::prelude::Cpu;

    fn tiny() -> (HostModel, Tokenizer) {
        let tok = Tokenizer::train_char("abcdefgh|\n ").unwrap();
        let cfg = GptConfig {
            vocab_size: tok.vocab_size(),
            n_positions: 8,
            n_embd: 16,
            n_layer: 1,
            n_head: 2,
            layer_norm_epsilon: 1e-5,
        };
        let m = Gpt::new(&Cpu::default(), cfg, 3);
        (HostModel::from_model(&m), tok)
    }

    fn dataset(n: usize) -> Dataset {
        let recs = (0..n)
            .map(|i| Record {
                title: format!("r{i}"),
                text: "abcdefgh|".repeat(1 + i % 5),
            })
            .collect();
        Dataset::from_records("test", recs)
    }

    #[test]
    fn a_detail_request_sends_pieces_and_losses_that_line_up() {
        let (host, tok) = tiny();
        let ds = dataset(3);
        let req = ScoreRequest {
            id: 4,
            records: vec![2],
            detail: true,
        };
        let mut got = Vec::new();
        serve_score(
            &Scorer::Causal(&host),
            &tok,
            &ds,
            7,
            &req,
            &AtomicBool::new(false),
            |e| {
                got.push(e);
                true
            },
        );
        let Event::RecordLoss(r) = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!((r.id, r.record, r.step, r.done, r.total), (4, 2, 7, 1, 1));
        assert_eq!(r.pieces.concat(), ds.records[2].text);
        assert_eq!(r.losses.len() + 1, r.pieces.len());
        assert_eq!(r.tokens, r.losses.len());
        assert!((r.mean - mean(&r.losses)).abs() < 1e-6);
        assert!(matches!(
            got[1],
            Event::ScoreDone {
                id: 4,
                scored: 1,
                total: 1,
                cancelled: false,
                note: None
            }
        ));
    }

    #[test]
    fn a_cancelled_sample_ends_at_once_with_what_it_had() {
        let (host, tok) = tiny();
        let ds = dataset(50);
        let req = ScoreRequest {
            id: 1,
            records: (0..50).collect(),
            detail: false,
        };
        let cancel = AtomicBool::new(false);
        let mut got = Vec::new();
        serve_score(&Scorer::Causal(&host), &tok, &ds, 0, &req, &cancel, |e| {
            if matches!(&e, Event::RecordLoss(r) if r.done == 5) {
                cancel.store(true, Ordering::SeqCst);
            }
            got.push(e);
            true
        });
        assert_eq!(got.len(), 6, "{got:?}");
        assert!(matches!(
            got.last(),
            Some(Event::ScoreDone {
                scored: 5,
                total: 50,
                cancelled: true,
                ..
            })
        ));
        // A sample sends means only.
        let Event::RecordLoss(r) = &got[0] else {
            panic!()
        };
        assert!(r.pieces.is_empty() && r.losses.is_empty() && r.mean.is_finite());
    }
}
