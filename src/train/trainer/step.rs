//! One optimizer step (batch, forward, backward, clipping, AdamW with the
//! non-finite guard) and the evaluation of both splits.

use super::super::accumulate::{accumulate, accumulate_mlm, MicroBatches, StepGradients};
use super::super::batch::Batcher;
use super::super::events::MaskedEval;
use super::super::events::NonFinite;
use super::super::optim::{clip_global_norm, AdamWConfig};
use super::super::schedule::lr_at;
use super::Trainer;
use crate::model::{Kernels, ParamMut, ParamRef};

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
        let lr = lr_at(
            self.step,
            t.learning_rate,
            t.min_lr,
            t.warmup_iters,
            self.cfg.lr_decay_iters(),
        );
        // The mean gradient over grad_accum_steps micro-batches (dropout
        // masks by step and micro-batch); frozen parameters get none.
        let micro = MicroBatches {
            batch: b,
            block: s,
            count: t.grad_accum_steps,
            kernels: self.fused.into(),
            dropout: self.model.dropout,
            seed: self.cfg.seed,
            step: self.step as u64,
        };
        let StepGradients {
            loss: loss_value,
            grads: mut gvecs,
        } = match &self.mlm {
            Some(mlm) => accumulate_mlm(
                &self.model,
                &mut self.batcher,
                &self.split.train,
                &micro,
                mlm,
            ),
            None => accumulate(&self.model, &mut self.batcher, &self.split.train, &micro),
        };
        for (g, &frozen) in gvecs.iter_mut().zip(&self.frozen) {
            if frozen {
                g.iter_mut().for_each(|x| *x = 0.0);
            }
        }
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
        // The update is applied only when every new weight is finite: a huge
        // learning rate can overflow the weights even though the loss and
        // gradients were finite, and such weights must never reach the model,
        // the optimizer state or a checkpoint. A first pass computes the new
        // weights without writing them (no copy of the optimizer state or of
        // the parameters is needed to refuse a step); the second applies the
        // same computation in place, one parameter at a time, so the step
        // needs only one parameter's host copy beyond the model, the moments
        // and the gradients. Frozen parameters: weights and moments as they
        // were (no decay, no update).
        let t_new = self.opt.t + 1;
        let (opt, frozen) = (&self.opt, &self.frozen);
        let mut i = 0;
        let mut finite = true;
        // One host buffer for every parameter's copy, in both passes.
        let mut buf = Vec::new();
        self.model.visit(|_, p| {
            if finite && !frozen[i] {
                let (w, decay) = match p {
                    ParamRef::One(t) => (D::param_into_host(t, &mut buf), false),
                    ParamRef::Two(t) => (D::param_into_host(t, &mut buf), true),
                };
                finite = opt.update_stays_finite(t_new, i, w, &gvecs[i], decay, &c);
            }
            i += 1;
        });
        if !finite {
            return outcome(Some(NonFinite::Weights));
        }
        let opt = &mut self.opt;
        let mut i = 0;
        self.model.visit_mut(|_, mut p| {
            if !frozen[i] {
                let (w, decay) = match &p {
                    ParamMut::One(t) => (D::param_into_host(&**t, &mut buf), false),
                    ParamMut::Two(t) => (D::param_into_host(&**t, &mut buf), true),
                };
                opt.update_param(t_new, i, w, &gvecs[i], decay, &c);
                p.copy_from(w);
            }
            i += 1;
        });
        self.opt.t = t_new;
        self.step += 1;
        self.last_lr = lr;
        outcome(None)
    }

    /// [`Trainer::evaluate`], and for a masked-LM run the masked loss and
    /// accuracy on validation (then both losses are masked-LM losses).
    pub fn evaluate_all(&self) -> (f32, f32, Option<MaskedEval>) {
        let Some(mlm) = &self.mlm else {
            let (tr, va) = self.evaluate();
            return (tr, va, None);
        };
        let t = &self.cfg.train;
        let (b, s) = (t.batch_size, self.cfg.model.block_size);
        let v = self.model.cfg.vocab_size;
        let run = |data: &crate::data::Tokens, salt: u64| {
            let mut bt = Batcher::new(self.cfg.seed ^ salt);
            let (mut loss, mut top1, mut top5, mut n) = (0.0f64, 0usize, 0usize, 0usize);
            for i in 0..t.eval_iters {
                // The same masks every evaluation: step u64::MAX - salt, batch i.
                let m = mlm.draw(
                    &mut bt,
                    data,
                    b,
                    s,
                    self.cfg.seed,
                    u64::MAX - salt,
                    i as u64,
                );
                let logits = self
                    .model
                    .logits_at(&m.inputs, &m.positions, b, s, self.fused)
                    .as_vec();
                let (l, h1, h5) = super::super::masking::score(&logits, &m.targets, v);
                loss += l;
                top1 += h1;
                top5 += h5;
                n += m.targets.len();
            }
            let n1 = n.max(1) as f64;
            MaskedEval {
                loss: (loss / n1) as f32,
                top1: (top1 as f64 / n1) as f32,
                top5: (top5 as f64 / n1) as f32,
                positions: n,
            }
        };
        let tr = run(&self.split.train, 0x7261_696e);
        let va = run(&self.split.val, 0x7661_6c21);
        (tr.loss, va.loss, Some(va))
    }

    /// Mean loss over `eval_iters` batches of each split (same batches every time).
    pub fn evaluate(&self) -> (f32, f32) {
        let t = &self.cfg.train;
        let (b, s) = (t.batch_size, self.cfg.model.block_size);
        let mean = |data: &crate::data::Tokens, salt: u64| {
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
