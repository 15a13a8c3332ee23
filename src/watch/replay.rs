//! A bounded history as the trainer events a workbench folds (`Step`,
//! `Eval`), in step order, so that a viewer that joins late (an attached
//! workbench, or `headsup watch` reading a run from disk) draws the curves
//! from the run's first step with the same code as a live run.

use super::history::{EvalPoint, History};
use crate::train::{EvalStats, Event, StepStats};

/// The steps and evaluations of `h` after step `after` (all when `None`),
/// interleaved in step order; each evaluation carries the best validation
/// loss up to it.
pub fn history_events(h: &History, after: Option<usize>) -> Vec<Event> {
    let after = after.map(|a| a as f64).unwrap_or(f64::NEG_INFINITY);
    let mut out = Vec::with_capacity(h.steps.len() + h.evals.len());
    let mut best = f32::INFINITY;
    let mut eval = |e: &EvalPoint, out: &mut Vec<Event>| {
        if e.val_loss.is_finite() {
            best = best.min(e.val_loss);
        }
        if e.step as f64 > after {
            out.push(Event::Eval(EvalStats {
                step: e.step,
                train_loss: e.train_loss.unwrap_or(f32::NAN),
                val_loss: e.val_loss,
                best_val_loss: best,
                masked: e.masked,
            }));
        }
    };
    let mut evals = h.evals.iter().peekable();
    for p in &h.steps {
        while let Some(e) = evals.next_if(|e| (e.step as f64) <= p.step) {
            eval(e, &mut out);
        }
        if p.step > after {
            out.push(Event::Step(StepStats {
                step: p.step.round() as usize,
                loss: p.loss,
                lr: p.lr,
                grad_norm: p.grad_norm,
                tokens_per_sec: p.tokens_per_sec,
                eta_secs: 0.0,
                elapsed_secs: 0.0,
            }));
        }
    }
    for e in evals {
        eval(e, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::history::StepPoint;

    #[test]
    fn steps_and_evals_interleave_in_order_with_a_running_best() {
        let mut h = History::default();
        for s in [10, 20, 30] {
            h.push_step(StepPoint {
                step: s as f64,
                loss: 3.0 - s as f32 / 10.0,
                lr: 1e-3,
                grad_norm: 0.5,
                tokens_per_sec: 1.0,
            });
        }
        for (s, v) in [(0, 3.0), (20, 2.0), (30, 2.5)] {
            h.push_eval(EvalPoint {
                step: s,
                train_loss: Some(v),
                val_loss: v,
                masked: None,
            });
        }
        let ev = history_events(&h, None);
        let kinds: Vec<String> = ev
            .iter()
            .map(|e| match e {
                Event::Step(s) => format!("s{}", s.step),
                Event::Eval(e) => format!("e{}:{}", e.step, e.best_val_loss),
                _ => "?".into(),
            })
            .collect();
        assert_eq!(kinds, ["e0:3", "s10", "e20:2", "s20", "e30:2", "s30"]);
        let later = history_events(&h, Some(20));
        assert_eq!(later.len(), 2, "{later:?}");
    }
}
