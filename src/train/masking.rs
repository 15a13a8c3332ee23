//! Masked-LM batches (`train.objective = "mlm"`): each window becomes
//! `[CLS] tokens [SEP]`; of its non-special positions `mlm_probability` are
//! chosen, and a chosen token is replaced by `[MASK]` (`mlm_mask_fraction`),
//! by a random non-special token (`mlm_random_fraction`) or kept; the loss is
//! on the chosen positions only. The choices come from an RNG seeded by
//! (seed, step, micro-batch), so a resumed run masks exactly as an
//! uninterrupted one and evaluation masks the same way every time.

use super::batch::Batcher;
use crate::config::TrainConfig;
use crate::data::Tokens;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The special tokens' ids in the tokenizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialIds {
    pub pad: usize,
    pub unk: usize,
    pub cls: usize,
    pub sep: usize,
    pub mask: usize,
}

impl SpecialIds {
    /// The ids of a tokenizer with the BERT special tokens, or a one-line
    /// error naming the missing one.
    pub fn of(tok: &crate::tokenizer::Tokenizer) -> Result<SpecialIds, String> {
        let id = |t: &str| {
            tok.special_id(t).map(|i| i as usize).ok_or_else(|| {
                format!("the tokenizer has no {t} token; a masked-LM model needs [PAD] [UNK] [CLS] [SEP] [MASK]")
            })
        };
        Ok(SpecialIds {
            pad: id("[PAD]")?,
            unk: id("[UNK]")?,
            cls: id("[CLS]")?,
            sep: id("[SEP]")?,
            mask: id("[MASK]")?,
        })
    }

    pub fn contains(&self, id: usize) -> bool {
        [self.pad, self.unk, self.cls, self.sep, self.mask].contains(&id)
    }
}

/// How positions are chosen and replaced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaskRule {
    pub probability: f64,
    pub mask_fraction: f64,
    pub random_fraction: f64,
}

impl MaskRule {
    pub fn of(t: &TrainConfig) -> MaskRule {
        MaskRule {
            probability: t.mlm_probability,
            mask_fraction: t.mlm_mask_fraction,
            random_fraction: t.mlm_random_fraction,
        }
    }
}

/// A masked batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masked {
    /// `batch * seq` model inputs, with the replacements applied.
    pub inputs: Vec<usize>,
    /// Flat indices (into `inputs`) of the chosen positions, ascending.
    pub positions: Vec<usize>,
    /// The original token at each chosen position.
    pub targets: Vec<usize>,
}

/// What was done to a chosen position (for statistics and display).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replacement {
    Mask,
    Random,
    Kept,
}

/// What the masked-LM objective needs besides the model and data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MlmSetup {
    pub specials: SpecialIds,
    pub rule: MaskRule,
    /// Random replacements are drawn below this id (the tokenizer's ids;
    /// a padded vocabulary's extra rows are never drawn).
    pub vocab: usize,
}

impl MlmSetup {
    /// Draws `batch` windows of `block - 2` tokens from `data`, wraps them
    /// in `[CLS]`/`[SEP]` and masks them with the RNG of (seed, step, micro).
    #[allow(clippy::too_many_arguments)]
    pub fn draw(
        &self,
        batcher: &mut Batcher,
        data: &Tokens,
        batch: usize,
        block: usize,
        seed: u64,
        step: u64,
        micro: u64,
    ) -> Masked {
        let (windows, _) = batcher.draw(data, batch, block - 2);
        let rows = wrap_rows(&windows, block, &self.specials);
        let mut rng = rng_for(seed, step, micro);
        mask_rows(
            &rows,
            block,
            self.vocab,
            &self.specials,
            &self.rule,
            &mut rng,
        )
        .0
    }
}

/// The RNG of one (seed, step, micro-batch): the same masks on a rerun.
pub fn rng_for(seed: u64, step: u64, micro: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed ^ 0x6d6c_6d5f_6d61_736b);
    r.set_stream(step.wrapping_mul(0x1_0000).wrapping_add(micro));
    r
}

/// Masks `tokens` (`batch` rows of `seq`, already `[CLS] ... [SEP]`):
/// specials are never chosen; a row with no position chosen gets one (so
/// every row contributes and the loss is always defined). Returns the batch
/// and what was done at each chosen position.
pub fn mask_rows(
    tokens: &[usize],
    seq: usize,
    vocab: usize,
    sp: &SpecialIds,
    rule: &MaskRule,
    rng: &mut ChaCha8Rng,
) -> (Masked, Vec<Replacement>) {
    let mut inputs = tokens.to_vec();
    let mut positions = Vec::new();
    let mut targets = Vec::new();
    let mut how = Vec::new();
    for (r, row) in tokens.chunks(seq).enumerate() {
        let mut chosen: Vec<usize> = (0..row.len())
            .filter(|&i| !sp.contains(row[i]) && rng.gen::<f64>() < rule.probability)
            .collect();
        if chosen.is_empty() {
            let live: Vec<usize> = (0..row.len()).filter(|&i| !sp.contains(row[i])).collect();
            if live.is_empty() {
                continue;
            }
            chosen.push(live[rng.gen_range(0..live.len())]);
        }
        for i in chosen {
            let at = r * seq + i;
            let u: f64 = rng.gen();
            let h = if u < rule.mask_fraction {
                inputs[at] = sp.mask;
                Replacement::Mask
            } else if u < rule.mask_fraction + rule.random_fraction {
                inputs[at] = random_token(vocab, sp, rng);
                Replacement::Random
            } else {
                Replacement::Kept
            };
            positions.push(at);
            targets.push(row[i]);
            how.push(h);
        }
    }
    (
        Masked {
            inputs,
            positions,
            targets,
        },
        how,
    )
}

/// A uniformly random non-special id below `vocab`.
fn random_token(vocab: usize, sp: &SpecialIds, rng: &mut ChaCha8Rng) -> usize {
    loop {
        let t = rng.gen_range(0..vocab);
        if !sp.contains(t) {
            return t;
        }
    }
}

/// `batch` windows of `seq - 2` tokens as `[CLS] window [SEP]` rows.
pub fn wrap_rows(windows: &[usize], seq: usize, sp: &SpecialIds) -> Vec<usize> {
    let inner = seq - 2;
    let mut out = Vec::with_capacity(windows.len() / inner * seq);
    for w in windows.chunks(inner) {
        out.push(sp.cls);
        out.extend_from_slice(w);
        out.push(sp.sep);
    }
    out
}

/// Masked-LM evaluation of one batch of logits `(N, V)` at the chosen
/// positions: summed loss, top-1 and top-5 hits.
pub fn score(logits: &[f32], targets: &[usize], vocab: usize) -> (f64, usize, usize) {
    let mut loss = 0.0f64;
    let (mut top1, mut top5) = (0, 0);
    for (row, &t) in logits.chunks(vocab).zip(targets) {
        let mx = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
        let lse = row.iter().map(|&z| (z as f64 - mx).exp()).sum::<f64>().ln() + mx;
        loss += lse - row[t] as f64;
        let better = row.iter().filter(|&&z| z > row[t]).count();
        if better == 0 {
            top1 += 1;
        }
        if better < 5 {
            top5 += 1;
        }
    }
    (loss, top1, top5)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp() -> SpecialIds {
        SpecialIds {
            pad: 100,
            unk: 0,
            cls: 101,
            sep: 102,
            mask: 103,
        }
    }

    #[test]
    fn score_counts_hits() {
        let logits = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let (_, t1, t5) = score(&logits, &[6], 7);
        assert_eq!((t1, t5), (1, 1));
        let (_, t1, t5) = score(&logits, &[2], 7);
        assert_eq!((t1, t5), (0, 1));
        let (_, t1, t5) = score(&logits, &[1], 7);
        assert_eq!((t1, t5), (0, 0));
    }

    #[test]
    fn wrap_adds_cls_and_sep() {
        let w = wrap_rows(&[1, 2, 3, 4], 4, &sp());
        assert_eq!(w, vec![101, 1, 2, 102, 101, 3, 4, 102]);
    }
}
