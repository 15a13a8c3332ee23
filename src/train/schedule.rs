//! Learning-rate schedule: linear warmup, then cosine decay to a floor (nanoGPT).

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
}
