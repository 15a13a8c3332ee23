//! One optimizer step (batch, forward, backward, clipping, AdamW with the
//! non-finite guard) and the evaluation of both splits.

use super::super::batch::Batcher;
use super::super::events::NonFinite;
use super::super::optim::{clip_global_norm, AdamWConfig};
use super::super::schedule::lr_at;
use super::Trainer;
use crate::model::{Kernels, ParamRef};
use dfdx::prelude::*;

/// What one call of [`Trainer::train_step`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct StepOutcome {
    /// The batch's loss before the update.
    pub loss: f32,
    /// The global gradient norm before clipping.
    pub grad_norm: f32,
    /// The learning rate of the step.
    pub lr: f64,
    /// `Some` when the guard refused the step: nothing was updated.
    pub non_finite: Option<NonFinite>,
}

impl<D: Kernels> Trainer<D> {
    /// One optimizer step on a fresh batch. When the loss, the gradient norm
    /// or any updated weight is not finite, nothing is updated (model,
    /// optimizer and step unchanged) and the outcome says what went wrong.
    pub fn train_step(&mut self) -> StepOutcome {
        let t = &self.cfg.train;
        let (b, s) = (t.batch_size, self.cfg.model.block_size);
        let (x, y) = self.batcher.draw(&self.split.train, b, s);
        let lr = lr_at(
            self.step,
            t.learning_rate,
            t.min_lr,
            t.warmup_iters,
            self.cfg.lr_decay_iters(),
        );
        let grads = self.model.alloc_grads();
        let loss = self.model.loss_train(&x, &y, b, s, grads, self.fused);
        let loss_value = loss.as_vec()[0];
        let mut grads = loss.backward();
        let mut gvecs: Vec<Vec<f32>> = Vec::new();
        self.model.visit(|_, p| {
            gvecs.push(match p {
                ParamRef::One(t) => D::grad_to_host(&mut grads, t),
                ParamRef::Two(t) => D::grad_to_host(&mut grads, t),
            })
        });
        drop(grads);
        let norm = clip_global_norm(&mut gvecs, t.grad_clip as f32);
        let outcome = |non_finite| StepOutcome {
            loss: loss_value,
            grad_norm: norm,
            lr,
            non_finite,
        };
        if !loss_value.is_finite() {
            return outcome(Some(NonFinite::Loss));
        }
        if !norm.is_finite() {
            return outcome(Some(NonFinite::GradNorm));
        }
        let c = AdamWConfig {
            lr: lr as f32,
            beta1: t.beta1 as f32,
            beta2: t.beta2 as f32,
            eps: 1e-8,
            weight_decay: t.weight_decay as f32,
        };
        // The update is computed on copies and applied only when every new
        // weight is finite: a huge learning rate can overflow the weights even
        // though the loss and gradients were finite, and such weights must
        // never reach the model, the optimizer state or a checkpoint.
        let mut new_opt = self.opt.clone();
        new_opt.t += 1;
        let mut updated: Vec<Vec<f32>> = Vec::with_capacity(gvecs.len());
        let mut decay: Vec<bool> = Vec::with_capacity(gvecs.len());
        self.model.visit(|_, p| {
            decay.push(matches!(p, ParamRef::Two(_)));
            updated.push(match p {
                ParamRef::One(t) => D::param_to_host(t),
                ParamRef::Two(t) => D::param_to_host(t),
            })
        });
        new_opt.update_all(&mut updated, &gvecs, &decay, &c);
        let finite = {
            use rayon::prelude::*;
            updated.par_iter().all(|d| d.iter().all(|x| x.is_finite()))
        };
        if !finite {
            return outcome(Some(NonFinite::Weights));
        }
        self.opt = new_opt;
        let mut i = 0;
        self.model.visit_mut(|_, mut p| {
            p.copy_from(&updated[i]);
            i += 1;
        });
        self.step += 1;
        self.last_lr = lr;
        outcome(None)
    }

    /// Mean loss over `eval_iters` batches of each split (same batches every time).
    pub fn evaluate(&self) -> (f32, f32) {
        let t = &self.cfg.train;
        let (b, s) = (t.batch_size, self.cfg.model.block_size);
        let mean = |data: &[u32], salt: u64| {
            let mut bt = Batcher::new(self.cfg.seed ^ salt);
            let mut sum = 0.0;
            for _ in 0..t.eval_iters {
                let (x, y) = bt.draw(data, b, s);
                sum += self.model.loss(&x, &y, b, s, self.fused);
            }
            sum / t.eval_iters as f32
        };
        (
            mean(&self.split.train, 0x7261_696e),
            mean(&self.split.val, 0x7661_6c21),
        )
    }
}
