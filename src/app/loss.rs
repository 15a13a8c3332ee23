//! The loss pane's state: train loss, learning rate and gradient-norm series,
//! eval points, the best validation loss, and the view toggles (EMA, log
//! scale, recent window), and the other runs overlaid on it by `headsup
//! watch A B ...` (each its train loss and validation points, aligned by step
//! or by tokens seen); on a masked LM's run, the latest masked accuracy
//! (top-1 and top-5 on validation) and the best top-1.

use super::series::Series;
use crate::train::{EvalStats, MaskedEval, StepStats};

#[derive(Debug, Clone, PartialEq)]
pub struct LossView {
    pub train: Series,
    pub lr: Series,
    /// Global gradient norm per logged step (before clipping).
    pub grad_norm: Series,
    pub eval_train: Series,
    pub eval_val: Series,
    pub smooth: bool,
    /// EMA strength in [0, 0.99].
    pub strength: f64,
    pub log_scale: bool,
    /// Show only the most recent `recent_steps` steps.
    pub recent: bool,
    pub recent_steps: usize,
    /// The small chart below shows the gradient norm instead of the learning
    /// rate (when the pane is too narrow for both side by side).
    pub show_grad: bool,
    pub best_val: Option<f32>,
    /// The latest finite gradient norm.
    pub last_grad_norm: Option<f32>,
    /// Tokens per second of the newest step folded in (the pane's header;
    /// the status bar has the live figure).
    pub tokens_per_sec: f64,
    /// `train.grad_clip`: gradients are scaled down to this norm (None: no clipping).
    pub grad_clip: Option<f64>,
    /// Other runs drawn over this one (`headsup watch A B ...`); empty: none.
    pub overlay: Vec<OverlayRun>,
    /// With an overlay: the x axis is tokens seen (step x tokens per step of
    /// each run) instead of the step.
    pub by_tokens: bool,
    /// A masked LM's latest masked-token evaluation and its step.
    pub masked: Option<(usize, MaskedEval)>,
    /// The best masked top-1 accuracy so far.
    pub best_top1: Option<f32>,
}

/// Another run's curves, for the overlay.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OverlayRun {
    /// The run directory's name, the legend entry.
    pub name: String,
    /// Tokens per optimizer step (batch x block from its config); `None`
    /// when unknown (a transformers run): drawn by step even by tokens.
    pub tokens_per_step: Option<f64>,
    /// (step, train loss).
    pub train: Vec<(f64, f64)>,
    /// (step, validation loss).
    pub val: Vec<(f64, f64)>,
}

impl Default for LossView {
    fn default() -> Self {
        LossView {
            train: Series::default(),
            lr: Series::default(),
            grad_norm: Series::default(),
            eval_train: Series::default(),
            eval_val: Series::default(),
            smooth: true,
            strength: 0.6,
            log_scale: false,
            recent: false,
            recent_steps: 500,
            show_grad: false,
            best_val: None,
            last_grad_norm: None,
            tokens_per_sec: 0.0,
            grad_clip: None,
            overlay: Vec::new(),
            by_tokens: false,
            masked: None,
            best_top1: None,
        }
    }
}

impl LossView {
    /// A view that marks `grad_clip` (a value <= 0 means no clipping).
    pub fn with_grad_clip(grad_clip: f64) -> LossView {
        LossView {
            grad_clip: (grad_clip.is_finite() && grad_clip > 0.0).then_some(grad_clip),
            ..LossView::default()
        }
    }

    pub fn on_step(&mut self, s: &StepStats) {
        self.train.push(s.step as f64, s.loss as f64);
        self.lr.push(s.step as f64, s.lr);
        self.grad_norm.push(s.step as f64, s.grad_norm as f64);
        self.tokens_per_sec = s.tokens_per_sec;
        if s.grad_norm.is_finite() {
            self.last_grad_norm = Some(s.grad_norm);
        }
    }

    pub fn on_eval(&mut self, e: &EvalStats) {
        self.eval_train.push(e.step as f64, e.train_loss as f64);
        self.eval_val.push(e.step as f64, e.val_loss as f64);
        if let Some(m) = e.masked {
            self.masked = Some((e.step, m));
            if m.top1.is_finite() {
                self.best_top1 = Some(self.best_top1.map_or(m.top1, |b| b.max(m.top1)));
            }
        }
        self.best_val = [Some(e.best_val_loss), Some(e.val_loss), self.best_val]
            .into_iter()
            .flatten()
            .filter(|v| v.is_finite())
            .fold(None, |acc: Option<f32>, v| {
                Some(acc.map_or(v, |a| a.min(v)))
            });
    }

    /// Stronger smoothing (turns it on): 0.1 steps up to 0.9, then towards 0.99.
    pub fn smooth_more(&mut self) {
        self.smooth = true;
        self.strength = ((self.strength * 10.0).round() / 10.0 + 0.1).min(0.9);
        if self.strength >= 0.9 {
            self.strength = (self.strength + 0.09).min(0.99);
        }
    }

    /// Weaker smoothing, down to 0.
    pub fn smooth_less(&mut self) {
        self.strength = if self.strength > 0.9 {
            0.9
        } else {
            ((self.strength * 10.0).round() / 10.0 - 0.1).max(0.0)
        };
    }
}
