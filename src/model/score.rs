//! Per-token loss of a token sequence under a model (how hard each token is
//! for it): the cross-entropy of every token given the tokens before it,
//! for sequences longer than the model's positions too, in overlapping
//! windows.
//!
//! The context rule: token 0 has no loss (nothing before it). Tokens
//! `1..=n_positions` are scored in the first window, with all of the tokens
//! before them in view. Past that, windows of `n_positions` tokens advance by
//! `n_positions / 2`: each later token is scored once, in the first window
//! that holds it, with at least `n_positions / 2` tokens before it in view
//! (the strided evaluation of Hugging Face's "perplexity of fixed-length
//! models").

use super::infer::{HostModel, KvCache};
use std::sync::atomic::{AtomicBool, Ordering};

/// The loss (nats) of `logits` for `target`: logsumexp(logits) - logits[target].
pub fn cross_entropy(logits: &[f32], target: usize) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|&l| (l - max).exp()).sum();
    max + sum.ln() - logits.get(target).copied().unwrap_or(f32::NEG_INFINITY)
}

/// The start of each window over `n` tokens for a model of `positions`
/// positions (see the module's context rule).
pub fn window_starts(n: usize, positions: usize) -> Vec<usize> {
    let positions = positions.max(1);
    let stride = (positions / 2).max(1);
    let mut starts = vec![0];
    // The last target the latest window scores: start + positions.
    while starts.last().is_some_and(|&s| s + positions < n - n.min(1)) {
        let s = starts[starts.len() - 1] + stride;
        starts.push(s);
    }
    starts
}

/// `losses[i]` is the loss of `ids[i + 1]` given the tokens before it (with
/// the context rule of the module). `None` when `cancel` was set (checked
/// between tokens).
pub fn token_losses(model: &HostModel, ids: &[usize], cancel: &AtomicBool) -> Option<Vec<f32>> {
    let n = ids.len();
    if n < 2 {
        return Some(Vec::new());
    }
    let positions = model.cfg.n_positions.max(1);
    let mut losses = Vec::with_capacity(n - 1);
    let mut cache = KvCache::new(&model.cfg);
    for start in window_starts(n, positions) {
        cache.clear();
        // Inputs start..end predict the targets start+1..=end.
        let end = (start + positions).min(n - 1);
        for p in start..end {
            if cancel.load(Ordering::Relaxed) {
                return None;
            }
            let logits = model.step(&mut cache, ids[p], None);
            // Target p + 1; scored once, in the first window that holds it.
            if p >= losses.len() {
                losses.push(cross_entropy(&logits, ids[p + 1]));
            }
        }
    }
    debug_assert_eq!(losses.len(), n - 1);
    Some(losses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_every_target_once_with_half_a_window_of_context() {
        assert_eq!(window_starts(0, 8), vec![0]);
        assert_eq!(window_starts(5, 8), vec![0]);
        assert_eq!(window_starts(9, 8), vec![0]);
        assert_eq!(window_starts(10, 8), vec![0, 4]);
        assert_eq!(window_starts(30, 8), vec![0, 4, 8, 12, 16, 20, 24]);
        for n in 2..60 {
            let starts = window_starts(n, 8);
            // Every target 1..n lies in some window; the last one reaches it.
            let last = *starts.last().unwrap();
            assert!(last + 8 >= n - 1, "n {n}: {starts:?}");
        }
    }

    #[test]
    fn cross_entropy_of_uniform_logits_is_log_vocab() {
        let v = cross_entropy(&[0.0; 10], 3);
        assert!((v - 10f32.ln()).abs() < 1e-6);
    }
}
