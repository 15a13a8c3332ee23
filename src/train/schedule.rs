//! Learning-rate schedule: linear warmup, then cosine decay to a floor (nanoGPT).
//! A run continued past its end (`--resume --set train.max_iters=N`, or `c`
//! in the workbench) re-stretches the cosine to the new end unless
//! `train.lr_decay_iters` is set: the rule the README states.

/// Learning rate at optimizer step `it` (0-based).
pub fn lr_at(it: usize, lr: f64, min_lr: f64, warmup: usize, decay_iters: usize) -> f64 {
    if it < warmup {
        return lr * (it + 1) as f64 / (warmup + 1) as f64;
    }
    if it > decay_iters {
        return min_lr;
    }
    let span = decay_iters.saturating_sub(warmup).max(1) as f64;
    let ratio = ((it - warmup) as f64 / span).clamp(0.0, 1.0);
    let coeff = 0.5 * (1.0 + (std::f64::consts::PI * ratio).cos());
    min_lr + coeff * (lr - min_lr)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn warmup_then_cosine_to_floor() {
        assert!(lr_at(0, 1e-3, 1e-4, 100, 2000) < 2e-5);
        assert!((lr_at(99, 1e-3, 1e-4, 100, 2000) - 1e-3 * 100.0 / 101.0).abs() < 1e-12);
        assert!((lr_at(100, 1e-3, 1e-4, 100, 2000) - 1e-3).abs() < 1e-12);
        assert!((lr_at(2000, 1e-3, 1e-4, 100, 2000) - 1e-4).abs() < 1e-12);
        assert_eq!(lr_at(5000, 1e-3, 1e-4, 100, 2000), 1e-4);
        let mid = lr_at(1050, 1e-3, 1e-4, 100, 2000);
        assert!((mid - 5.5e-4).abs() < 1e-9);
    }

    #[test]
    fn continuing_past_the_end_restretches_the_cosine() {
        let (lr, min, warm) = (3e-3, 3e-4, 50);
        // At the old end the rate has reached the floor.
        assert!((lr_at(1000, lr, min, warm, 1000) - min).abs() < 1e-15);
        // Continued to 2000: the same step is back on the longer cosine,
        // (1000 - 50) / (2000 - 50) of the way down: about half the peak.
        let ratio: f64 = 950.0 / 1950.0;
        let want = min + 0.5 * (1.0 + (std::f64::consts::PI * ratio).cos()) * (lr - min);
        assert!((lr_at(1000, lr, min, warm, 2000) - want).abs() < 1e-12);
        assert!((want / lr - 0.57).abs() < 0.01, "{}", want / lr);
        // ... and it decays to the floor at the new end, monotonically.
        let mut prev = f64::INFINITY;
        for it in 1000..=2000 {
            let v = lr_at(it, lr, min, warm, 2000);
            assert!(v <= prev);
            prev = v;
        }
        assert!((prev - min).abs() < 1e-15);
        // With the decay end kept (train.lr_decay_iters = 1000): a constant
        // floor after the old end.
        assert_eq!(lr_at(1500, lr, min, warm, 1000), min);
    }
}
