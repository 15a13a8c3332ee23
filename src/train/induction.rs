//! The induction probe, as TransformerLens' induction-head detector: a seeded
//! random token sequence repeated twice, and each head's induction score on
//! it (attention from a token to the token after an earlier occurrence of
//! the same token). The trainer's probe worker runs it next to every
//! attention probe (it holds the weights); the workbench shows the scores
//! in the heads table. The score functions are also the workbench's copy
//! score on its current probe.

use rand::{Rng, SeedableRng};

/// The seed of the induction probe: the same tokens at every step, so the
/// scores are comparable over training.
pub const SEED: u64 = 0x1d_c0de;
/// The longest half of the probe (TransformerLens' detector uses tens of
/// tokens; a short probe keeps the extra forward pass cheap at any size).
pub const MAX_HALF: usize = 64;

/// The probe: `half` random ids below `id_limit` (seeded), then the same
/// ids again; `half` is `MAX_HALF` or what `max_len` (the model's block,
/// capped by the probe length setting) leaves, at least 1. Empty when
/// `id_limit` or `max_len` is too small for a repeat.
pub fn probe_tokens(id_limit: usize, max_len: usize, seed: u64) -> Vec<usize> {
    let half = (max_len / 2).min(MAX_HALF);
    if id_limit == 0 || half == 0 {
        return Vec::new();
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let first: Vec<usize> = (0..half).map(|_| rng.gen_range(0..id_limit)).collect();
    first.iter().chain(first.iter()).copied().collect()
}

/// For each query, the keys that follow an earlier occurrence of its token
/// (`j + 1` for every `j < q` with `tokens[j] == tokens[q]`; all `<= q`).
pub fn induction_targets<T: PartialEq>(tokens: &[T]) -> Vec<Vec<usize>> {
    (0..tokens.len())
        .map(|q| {
            (0..q)
                .filter(|&j| tokens[j] == tokens[q])
                .map(|j| j + 1)
                .collect()
        })
        .collect()
}

/// For each query of a bidirectional (non-causal) map, the keys that follow
/// any other occurrence of its token, earlier or later (`j + 1 < n` for
/// every `j != q` with `tokens[j] == tokens[q]`): an encoder can copy from
/// either side.
pub fn bidirectional_targets<T: PartialEq>(tokens: &[T]) -> Vec<Vec<usize>> {
    let n = tokens.len();
    (0..n)
        .map(|q| {
            (0..n.saturating_sub(1))
                .filter(|&j| j != q && tokens[j] == tokens[q])
                .map(|j| j + 1)
                .collect()
        })
        .collect()
}

/// The induction targets of a causal or a bidirectional map.
pub fn targets<T: PartialEq>(tokens: &[T], causal: bool) -> Vec<Vec<usize>> {
    if causal {
        induction_targets(tokens)
    } else {
        bidirectional_targets(tokens)
    }
}

/// Attention on the induction targets of a row-major `n x n` matrix,
/// averaged over the queries that have any (NaN when none has).
pub fn induction(m: &[f32], n: usize, targets: &[Vec<usize>]) -> f32 {
    let mut sum = 0.0f64;
    let mut count = 0;
    for (q, keys) in targets.iter().enumerate().take(n) {
        if keys.is_empty() {
            continue;
        }
        let r = m.get(q * n..(q + 1) * n).unwrap_or(&[]);
        sum += keys
            .iter()
            .map(|&k| r.get(k).copied().unwrap_or(0.0) as f64)
            .sum::<f64>();
        count += 1;
    }
    if count == 0 {
        f32::NAN
    } else {
        (sum / count as f64) as f32
    }
}

/// Every head's induction score, layer-major (`probs[layer][head]` are
/// `n x n` matrices on `tokens`, causal or bidirectional).
pub fn scores(probs: &[Vec<Vec<f32>>], tokens: &[usize], causal: bool) -> Vec<f32> {
    let n = tokens.len();
    let targets = targets(tokens, causal);
    probs
        .iter()
        .flat_map(|heads| heads.iter().map(|m| induction(m, n, &targets)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_is_a_seeded_sequence_repeated_twice_within_the_length() {
        let p = probe_tokens(15, 64, SEED);
        assert_eq!(p.len(), 64);
        assert_eq!(p[..32], p[32..]);
        assert!(p.iter().all(|&t| t < 15));
        assert_eq!(p, probe_tokens(15, 64, SEED), "seeded");
        assert_ne!(p, probe_tokens(15, 64, SEED + 1));
        // Capped at MAX_HALF; an odd length leaves one out; too short: none.
        assert_eq!(probe_tokens(50257, 1024, SEED).len(), 2 * MAX_HALF);
        assert_eq!(probe_tokens(15, 9, SEED).len(), 8);
        assert!(probe_tokens(15, 1, SEED).is_empty());
        assert!(probe_tokens(0, 64, SEED).is_empty());
    }

    #[test]
    fn a_perfect_induction_head_scores_one_and_a_previous_token_head_less() {
        // x y z x y z: queries 3, 4, 5 have targets 1, 2, 3.
        let toks = [4usize, 7, 9, 4, 7, 9];
        let n = toks.len();
        let mut ind = vec![0.0f32; n * n];
        let mut prev = vec![0.0f32; n * n];
        for q in 0..n {
            ind[q * n + if q >= 3 { q - 2 } else { 0 }] = 1.0;
            prev[q * n + q.saturating_sub(1)] = 1.0;
        }
        let s = scores(&[vec![ind, prev]], &toks, true);
        assert_eq!(s[0], 1.0);
        // The previous token is never the target (q - 1 vs q - 2).
        assert_eq!(s[1], 0.0);
    }
}
