//! A run's loss and evaluation history, bounded and evenly downsampled: each
//! point is the mean of `stride` logged steps; when the points pass their
//! capacity, neighbours are merged pairwise and the stride doubles. So a run
//! of any length is sent to a new viewer (or read from disk) as at most a few
//! thousand points covering it from its first step, not replayed step by
//! step. Steps going backwards (a resumed run that lost work) drop the points
//! past the new step.

use serde::{Deserialize, Serialize};

/// One logged training step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepPoint {
    pub step: f64,
    pub loss: f32,
    #[serde(default)]
    pub lr: f64,
    #[serde(default)]
    pub grad_norm: f32,
    #[serde(default)]
    pub tokens_per_sec: f64,
}

/// One evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    pub step: usize,
    pub train_loss: Option<f32>,
    pub val_loss: f32,
    /// A masked LM's masked-token loss and accuracy (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masked: Option<crate::train::MaskedEval>,
}

/// Default number of step points kept.
pub const HISTORY_CAP: usize = 2048;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub steps: Vec<StepPoint>,
    pub evals: Vec<EvalPoint>,
    /// Steps logged in all (before downsampling).
    pub logged: u64,
    /// Logged steps per point.
    pub stride: u64,
    /// Logged steps in the last point (up to `stride`).
    last_count: u64,
    cap: usize,
}

impl Default for History {
    fn default() -> Self {
        History::with_capacity(HISTORY_CAP)
    }
}

impl History {
    pub fn with_capacity(cap: usize) -> History {
        History {
            steps: Vec::new(),
            evals: Vec::new(),
            logged: 0,
            stride: 1,
            last_count: 0,
            cap: cap.max(8),
        }
    }

    /// Adds a step; a step at or before the last one first drops the points
    /// from there on (the run was resumed from an earlier checkpoint).
    pub fn push_step(&mut self, p: StepPoint) {
        if !p.step.is_finite() {
            return;
        }
        if self.steps.last().is_some_and(|l| l.step >= p.step) {
            self.steps.retain(|q| q.step < p.step);
            self.evals.retain(|e| (e.step as f64) < p.step);
            // The last point kept is whole: start a new one.
            self.last_count = self.stride;
        }
        self.logged += 1;
        match self.steps.last_mut() {
            Some(last) if self.last_count < self.stride => {
                *last = mean(last, self.last_count, &p, 1);
                self.last_count += 1;
            }
            _ => {
                self.steps.push(p);
                self.last_count = 1;
            }
        }
        if self.steps.len() > self.cap {
            self.compact();
        }
    }

    pub fn push_eval(&mut self, e: EvalPoint) {
        if self.evals.last().is_some_and(|l| l.step >= e.step) {
            self.evals.retain(|q| q.step < e.step);
        }
        self.evals.push(e);
        // Evaluations are rarer; thin them the same way past the cap.
        if self.evals.len() > self.cap {
            let half = self.evals.len() / 2;
            let old: Vec<EvalPoint> = self.evals[..half].iter().step_by(2).copied().collect();
            let mut out = old;
            out.extend_from_slice(&self.evals[half..]);
            self.evals = out;
        }
    }

    /// Merges neighbours pairwise and doubles the stride.
    fn compact(&mut self) {
        let n = self.steps.len();
        let mut out = Vec::with_capacity(n / 2 + 1);
        let mut last_count = self.stride;
        for (i, pair) in self.steps.chunks(2).enumerate() {
            let is_last = (i + 1) * 2 >= n;
            match pair {
                [a, b] => {
                    let nb = if is_last {
                        self.last_count
                    } else {
                        self.stride
                    };
                    out.push(mean(a, self.stride, b, nb));
                    last_count = self.stride + nb;
                }
                [a] => {
                    out.push(*a);
                    last_count = self.last_count;
                }
                _ => {}
            }
        }
        self.steps = out;
        self.stride *= 2;
        self.last_count = last_count;
    }

    /// The newest step logged.
    pub fn last_step(&self) -> Option<usize> {
        self.steps.last().map(|p| p.step.round() as usize)
    }

    /// The lowest validation loss so far.
    pub fn best_val_loss(&self) -> Option<f32> {
        self.evals
            .iter()
            .map(|e| e.val_loss)
            .filter(|v| v.is_finite())
            .reduce(f32::min)
    }
}

/// The mean of two points weighted by the logged steps each stands for.
fn mean(a: &StepPoint, na: u64, b: &StepPoint, nb: u64) -> StepPoint {
    let (wa, wb) = (na as f64, nb as f64);
    let t = (wa + wb).max(1.0);
    let m = |x: f64, y: f64| (x * wa + y * wb) / t;
    StepPoint {
        step: m(a.step, b.step),
        loss: m(a.loss as f64, b.loss as f64) as f32,
        lr: m(a.lr, b.lr),
        grad_norm: m(a.grad_norm as f64, b.grad_norm as f64) as f32,
        tokens_per_sec: m(a.tokens_per_sec, b.tokens_per_sec),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(s: usize, loss: f32) -> StepPoint {
        StepPoint {
            step: s as f64,
            loss,
            lr: 1e-3,
            grad_norm: 1.0,
            tokens_per_sec: 100.0,
        }
    }

    #[test]
    fn a_hundred_thousand_steps_become_evenly_spread_means_within_the_cap() {
        let mut h = History::with_capacity(1000);
        for s in 1..=100_000 {
            h.push_step(step(s, 1.0 / s as f32));
        }
        assert!(
            h.steps.len() <= 1000 && h.steps.len() > 300,
            "{}",
            h.steps.len()
        );
        assert_eq!(h.logged, 100_000);
        assert_eq!(h.stride, 128);
        // Evenly spread from the first step to the last.
        assert_eq!(h.steps[0].step, 64.5);
        assert!(h
            .steps
            .windows(2)
            .all(|w| (w[1].step - w[0].step - 128.0).abs() < 64.0));
        assert!(h.last_step().unwrap() > 99_900, "{:?}", h.steps.last());
        // Each point is the mean of the losses it stands for.
        let want: f64 = (1..=128).map(|s| 1.0 / s as f64).sum::<f64>() / 128.0;
        assert!((h.steps[0].loss as f64 - want).abs() < 1e-6);
        let json = serde_json::to_vec(&h).unwrap();
        assert!(json.len() < 200_000, "{} bytes", json.len());
    }

    #[test]
    fn going_back_in_steps_drops_the_lost_work() {
        let mut h = History::default();
        for s in 1..=10 {
            h.push_step(step(s, 1.0));
        }
        h.push_eval(EvalPoint {
            step: 8,
            train_loss: Some(1.0),
            val_loss: 2.0,
            masked: None,
        });
        h.push_step(step(6, 0.5));
        assert_eq!(h.steps.len(), 6);
        assert_eq!(h.last_step(), Some(6));
        assert!(h.evals.is_empty());
        h.push_eval(EvalPoint {
            step: 6,
            train_loss: None,
            val_loss: 1.5,
            masked: None,
        });
        assert_eq!(h.best_val_loss(), Some(1.5));
    }
}
