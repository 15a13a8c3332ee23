//! Masked-LM batches (`train.objective = "mlm"`): each window becomes
//! `[CLS] tokens [SEP]`; of its non-special positions `mlm_probability` are
//! chosen, and a chosen token is replaced by `[MASK]` (`mlm_mask_fraction`),
//! by a random non-special token (`mlm_random_fraction`) or kept; the loss is
//! on the chosen positions only. The choices come from an RNG seeded by
//! (seed, step, micro-batch), so a resumed run masks exactly as an
//! uninterrupted one and evaluation masks the same way every time.
//!
//! Also what a masked LM answers outside training: filling the `[MASK]`s of
//! a text (`headsup fill`, the workbench's playground) and one dataset
//! record masked and predicted (the workbench's dataset pane).

use super::batch::Batcher;
use super::{FillRequest, FillResult, MaskFill, MaskKind, MaskedToken};
use crate::config::TrainConfig;
use crate::data::Tokens;
use crate::model::{Gpt, KernelSet, Kernels};
use crate::tokenizer::Tokenizer;
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

/// Why a text could not be filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FillError {
    /// The model is a causal LM (GPT-2).
    NotMasked,
    /// The tokenizer lacks the special tokens (the message says which).
    Specials(String),
    /// The text has no `[MASK]`.
    NoMask,
    /// With `[CLS]` and `[SEP]` the text has `tokens`, past the model's `max`.
    TooLong { tokens: usize, max: usize },
}

impl std::fmt::Display for FillError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FillError::NotMasked => write!(f, "this model is a causal LM (GPT-2): it generates; filling [MASK] needs a masked LM (model.arch = \"bert\")"),
            FillError::Specials(e) => write!(f, "tokenizer: {e}"),
            FillError::NoMask => write!(f, "no [MASK] in the text; write [MASK] where a token is to be filled, e.g. \"床前明[MASK]光\""),
            FillError::TooLong { tokens, max } => write!(f, "the text is {tokens} tokens with [CLS] and [SEP], more than the model's {max} positions; shorten it"),
        }
    }
}

/// A text's masks filled: `ids` are `[CLS] text [SEP]`, `positions` the
/// masks' indices in them, `candidates` each mask's best `(id, probability)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Filled {
    pub ids: Vec<usize>,
    pub positions: Vec<usize>,
    pub candidates: Vec<Vec<(u32, f32)>>,
}

/// The softmax of `row` (ids below `lim`): the `k` most likely, and the
/// probability of `target`.
fn top_of(row: &[f32], lim: usize, k: usize, target: Option<usize>) -> (Vec<(u32, f32)>, f32) {
    let row = &row[..lim.min(row.len())];
    let mx = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let z: f32 = row.iter().map(|&x| (x - mx).exp()).sum();
    let mut c: Vec<(u32, f32)> = row
        .iter()
        .enumerate()
        .map(|(i, &x)| (i as u32, (x - mx).exp() / z))
        .collect();
    let tp = target.and_then(|t| c.get(t)).map_or(0.0, |&(_, p)| p);
    c.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    c.truncate(k.max(1));
    (c, tp)
}

/// A masked LM's `k` best fills for every `[MASK]` of `text` (wrapped in
/// `[CLS] ... [SEP]`, one forward pass, bidirectional). Ids at or past
/// `id_limit` (a padded vocabulary) are never proposed. Shared by
/// `headsup fill`, the trainer's workers and `headsup watch`'s stand-in.
pub fn fill_masks<D: Kernels>(
    model: &Gpt<D>,
    tok: &Tokenizer,
    id_limit: usize,
    text: &str,
    k: usize,
    kernels: impl Into<KernelSet>,
) -> Result<Filled, FillError> {
    if model.bert.is_none() {
        return Err(FillError::NotMasked);
    }
    let sp = SpecialIds::of(tok).map_err(FillError::Specials)?;
    let mut ids = vec![sp.cls];
    ids.extend(tok.encode_marked(text).into_iter().map(|t| t as usize));
    ids.push(sp.sep);
    let positions: Vec<usize> = (0..ids.len()).filter(|&i| ids[i] == sp.mask).collect();
    if positions.is_empty() {
        return Err(FillError::NoMask);
    }
    let max = model.cfg.n_positions;
    if ids.len() > max {
        return Err(FillError::TooLong {
            tokens: ids.len(),
            max,
        });
    }
    let v = model.cfg.vocab_size;
    let logits = model
        .logits_at(&ids, &positions, 1, ids.len(), kernels)
        .as_vec();
    let lim = id_limit.min(v);
    let candidates = logits
        .chunks(v)
        .map(|row| top_of(row, lim, k, None).0)
        .collect();
    Ok(Filled {
        ids,
        positions,
        candidates,
    })
}

/// [`fill_masks`] as the answer to a `Command::Fill`: the text's pieces and
/// each mask's candidates (rounded as generation alternatives are), or the
/// error in one line.
pub fn fill_result<D: Kernels>(
    model: &Gpt<D>,
    tok: &Tokenizer,
    req: &FillRequest,
    step: usize,
    kernels: impl Into<KernelSet>,
) -> FillResult {
    let k = req.k.clamp(1, 50);
    match fill_masks(model, tok, tok.id_limit(), &req.text, k, kernels) {
        Ok(f) => {
            let inner = &f.ids[1..f.ids.len() - 1];
            let pieces = inner.iter().map(|&i| tok.decode(&[i as u32])).collect();
            let masks = f
                .positions
                .iter()
                .zip(&f.candidates)
                .map(|(&pos, c)| MaskFill {
                    at: pos - 1,
                    top: super::TokenAlts::rounded(
                        0.0,
                        c.iter().map(|&(id, p)| (tok.decode(&[id]), p)),
                    )
                    .top,
                })
                .collect();
            FillResult {
                id: req.id,
                step,
                pieces,
                masks,
                error: None,
            }
        }
        Err(e) => FillResult {
            id: req.id,
            step,
            pieces: Vec::new(),
            masks: Vec::new(),
            error: Some(e.to_string()),
        },
    }
}

/// The RNG stream of a dataset record's masking (far from the training
/// steps' micro-batches, which count from 0).
const RECORD_STREAM: u64 = 0xfff0;

/// One dataset record masked as training masks a window (its first
/// `block - 2` tokens in `[CLS] ... [SEP]`, the RNG seeded by (seed,
/// record), so the same record shows the same masks every time) and
/// predicted by `model`: the window's tokens, the mean loss over the chosen
/// positions and, at each, what was done and the model's top-1.
pub fn score_masked_record<D: Kernels>(
    model: &Gpt<D>,
    tok: &Tokenizer,
    setup: &MlmSetup,
    seed: u64,
    record: usize,
    ids: &[usize],
    kernels: impl Into<KernelSet>,
) -> (Vec<usize>, f32, Vec<MaskedToken>) {
    let block = model.cfg.n_positions.max(3);
    let window: Vec<usize> = ids.iter().copied().take(block - 2).collect();
    let seq = window.len() + 2;
    let row = wrap_rows(&window, seq, &setup.specials);
    let mut rng = rng_for(seed, record as u64, RECORD_STREAM);
    let (m, how) = mask_rows(
        &row,
        seq,
        setup.vocab,
        &setup.specials,
        &setup.rule,
        &mut rng,
    );
    if m.positions.is_empty() {
        return (window, f32::NAN, Vec::new());
    }
    let v = model.cfg.vocab_size;
    let logits = model
        .logits_at(&m.inputs, &m.positions, 1, seq, kernels)
        .as_vec();
    let lim = tok.id_limit().min(v);
    let mut loss = 0.0f64;
    let mut out = Vec::with_capacity(m.positions.len());
    for (((row, &pos), &target), h) in logits.chunks(v).zip(&m.positions).zip(&m.targets).zip(&how)
    {
        let (top, tp) = top_of(row, lim, 1, Some(target));
        loss -= (tp.max(f32::MIN_POSITIVE) as f64).ln();
        let (best, p) = top.first().copied().unwrap_or((0, 0.0));
        out.push(MaskedToken {
            at: pos - 1,
            kind: match h {
                Replacement::Mask => MaskKind::Mask,
                Replacement::Random => MaskKind::Random,
                Replacement::Kept => MaskKind::Kept,
            },
            input: tok.decode(&[m.inputs[pos] as u32]),
            top1: tok.decode(&[best]),
            prob: round4(p),
            target_prob: round4(tp),
            correct: best as usize == target,
        });
    }
    (window, (loss / out.len() as f64) as f32, out)
}

/// Round to 4 decimals (what travels).
pub(crate) fn round4(v: f32) -> f32 {
    (v * 1e4).round() / 1e4
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
