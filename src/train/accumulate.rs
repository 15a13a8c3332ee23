//! One optimizer step's gradients: the mean over `train.grad_accum_steps`
//! micro-batches of `batch_size` windows (each micro-batch's loss is a mean
//! over the same number of tokens, so this equals one batch that many times
//! larger), with dropout masks per (step, micro-batch); and the parameters
//! `train.freeze` keeps fixed.

use super::batch::Batcher;
use super::masking::MlmSetup;
use crate::data::Tokens;
use crate::model::dropout::{Dropout, DropoutMasks};
use crate::model::{Gpt, KernelSet, Kernels, ParamRef};
use dfdx::prelude::*;

/// The gradients of every parameter (in [`Gpt::visit`] order) and the mean loss.
#[derive(Debug, Clone)]
pub struct StepGradients {
    pub loss: f32,
    pub grads: Vec<Vec<f32>>,
}

/// What one step's forward passes need besides the model and the data.
#[derive(Debug, Clone, Copy)]
pub struct MicroBatches {
    pub batch: usize,
    pub block: usize,
    /// Micro-batches averaged (at least 1).
    pub count: usize,
    pub kernels: KernelSet,
    pub dropout: Dropout,
    pub seed: u64,
    /// The optimizer step, for the dropout masks.
    pub step: u64,
}

/// Draws `m.count` micro-batches from `data` and averages their gradients.
pub fn accumulate<D: Kernels>(
    model: &Gpt<D>,
    batcher: &mut Batcher,
    data: &Tokens,
    m: &MicroBatches,
) -> StepGradients {
    accumulate_with(model, m, |micro| {
        let (x, y) = batcher.draw(data, m.batch, m.block);
        let mut masks = (!m.dropout.is_off())
            .then(|| DropoutMasks::new(m.dropout, m.seed, m.step, micro as u64));
        model.loss_train_dropped(
            &x,
            &y,
            m.batch,
            m.block,
            model.alloc_grads(),
            m.kernels,
            masks.as_mut(),
        )
    })
}

/// [`accumulate`] for the masked-LM objective: each micro-batch is
/// `batch` windows as `[CLS] ... [SEP]` rows of `block`, masked by the
/// (seed, step, micro-batch) RNG; the loss is on the chosen positions.
pub fn accumulate_mlm<D: Kernels>(
    model: &Gpt<D>,
    batcher: &mut Batcher,
    data: &Tokens,
    m: &MicroBatches,
    mlm: &MlmSetup,
) -> StepGradients {
    accumulate_with(model, m, |micro| {
        let masked = mlm.draw(
            batcher,
            data,
            m.batch,
            m.block,
            m.seed,
            m.step,
            micro as u64,
        );
        model.mlm_loss_train(
            &masked.inputs,
            &masked.positions,
            &masked.targets,
            m.batch,
            m.block,
            model.alloc_grads(),
            m.kernels,
        )
    })
}

/// The mean loss and gradients of `m.count` micro-batches, micro-batch
/// `i`'s loss (with its tape) from `loss_of(i)`.
fn accumulate_with<D: Kernels>(
    model: &Gpt<D>,
    m: &MicroBatches,
    mut loss_of: impl FnMut(usize) -> Tensor<(), f32, D, OwnedTape<f32, D>>,
) -> StepGradients {
    let count = m.count.max(1);
    let mut sum: Option<Vec<Vec<f32>>> = None;
    let mut loss_sum = 0.0f64;
    for micro in 0..count {
        let loss = loss_of(micro);
        loss_sum += loss.as_vec()[0] as f64;
        let mut grads = loss.backward();
        let mut i = 0;
        let mut acc = sum.take().unwrap_or_default();
        model.visit(|_, p| {
            let g = match p {
                ParamRef::One(t) => D::grad_to_host(&mut grads, t),
                ParamRef::Two(t) => D::grad_to_host(&mut grads, t),
            };
            if acc.len() <= i {
                acc.push(g);
            } else {
                for (a, b) in acc[i].iter_mut().zip(&g) {
                    *a += b;
                }
            }
            i += 1;
        });
        sum = Some(acc);
    }
    let mut grads = sum.unwrap_or_default();
    if count > 1 {
        let inv = 1.0 / count as f32;
        for g in grads.iter_mut() {
            for x in g.iter_mut() {
                *x *= inv;
            }
        }
    }
    StepGradients {
        loss: (loss_sum / count as f64) as f32,
        grads,
    }
}

/// Which parameters `patterns` freeze, in [`Gpt::visit`] order: a pattern
/// names a parameter or a group by its GPT-2 name without `transformer.`
/// (`wte`, `wpe`, `h.0`, `h.0.attn`, `ln_f`). A pattern that matches nothing
/// is an error naming it.
pub fn frozen<D: dfdx::prelude::Storage<f32>>(
    model: &Gpt<D>,
    patterns: &[String],
) -> Result<Vec<bool>, String> {
    let mut names = Vec::new();
    model.visit(|n, _| names.push(n));
    let short: Vec<&str> = names
        .iter()
        .map(|n| n.strip_prefix("transformer.").unwrap_or(n))
        .collect();
    let matches = |pat: &str, name: &str| {
        name == pat || (name.starts_with(pat) && name[pat.len()..].starts_with('.'))
    };
    for pat in patterns {
        let pat = pat.trim().trim_start_matches("transformer.");
        if !short.iter().any(|n| matches(pat, n)) {
            return Err(format!(
                "train.freeze: `{pat}` names no parameter; use GPT-2 names such as wte, wpe, h.0, h.0.attn, ln_f (this model has h.0 to h.{})",
                model.blocks.len().saturating_sub(1)
            ));
        }
    }
    Ok(short
        .iter()
        .map(|n| {
            patterns
                .iter()
                .any(|p| matches(p.trim().trim_start_matches("transformer."), n))
        })
        .collect())
}
