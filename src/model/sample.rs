//! Sampling from logits (temperature, top-k, top-p) and generation with the
//! KV cache, sliding the window when the context fills.

use super::infer::{HostModel, KvCache};
use rand::{Rng, SeedableRng};

/// How to pick tokens: the `[sample]` config section, the playground's
/// `/temp` and friends, and `headsup generate`'s flags.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SampleSettings {
    /// 0 means greedy.
    pub temperature: f32,
    /// 0 means no top-k cut.
    pub top_k: usize,
    /// 1.0 means no nucleus cut.
    pub top_p: f32,
    pub max_new_tokens: usize,
    pub seed: u64,
}

/// The index of the largest value (by `f32::total_cmp`), the lowest one on
/// ties; 0 for an empty slice.
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if x.total_cmp(&v[best]).is_gt() {
            best = i;
        }
    }
    best
}

/// Picks the next token from `logits` under `s`. Temperature 0 is greedy.
pub fn sample_logits(logits: &[f32], s: &SampleSettings, rng: &mut impl Rng) -> (usize, f32) {
    if logits.is_empty() {
        return (0, 0.0);
    }
    let greedy = s.temperature <= 0.0 || !s.temperature.is_finite();
    let t = if greedy { 1.0 } else { s.temperature };
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let mut w: Vec<f32> = logits.iter().map(|&l| ((l - max) / t).exp()).collect();
    let sum: f32 = w.iter().sum();
    for p in w.iter_mut() {
        *p /= sum;
    }
    if greedy {
        // The most likely id, lowest on ties: one pass, not a sort of the
        // whole vocabulary per token.
        let id = argmax(&w);
        return (id, w[id]);
    }
    let mut probs: Vec<(usize, f32)> = w.into_iter().enumerate().collect();
    probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut keep = probs.len();
    if s.top_k > 0 {
        keep = keep.min(s.top_k);
    }
    if s.top_p < 1.0 {
        let mut cum = 0.0;
        for (i, p) in probs.iter().enumerate().take(keep) {
            cum += p.1;
            if cum >= s.top_p {
                keep = i + 1;
                break;
            }
        }
    }
    let kept = &probs[..keep.max(1)];
    let total: f32 = kept.iter().map(|p| p.1).sum();
    let mut r = rng.gen::<f32>() * total;
    for &(id, p) in kept {
        if r < p {
            return (id, p);
        }
        r -= p;
    }
    kept[kept.len() - 1]
}

/// Streams tokens from `model` after `prompt`, calling `on_token(id, prob)`
/// for each until `max_new_tokens` or `on_token` returns false.
/// With `use_cache = false`, every token re-reads the whole context (the
/// reference for the cache's speed-up).
pub fn generate(
    model: &HostModel,
    prompt: &[usize],
    s: &SampleSettings,
    use_cache: bool,
    on_token: impl FnMut(usize, f32) -> bool,
) {
    generate_within(model, model.cfg.vocab_size, prompt, s, use_cache, on_token)
}

/// [`generate`] that never samples an id at or past `id_limit`: a model
/// whose vocabulary is padded past its tokenizer's gets those logits masked.
pub fn generate_within(
    model: &HostModel,
    id_limit: usize,
    prompt: &[usize],
    s: &SampleSettings,
    use_cache: bool,
    mut on_token: impl FnMut(usize, f32) -> bool,
) {
    generate_observed(model, id_limit, prompt, s, use_cache, |id, p, _| {
        on_token(id, p)
    })
}

/// The `k` most likely ids of the distribution [`sample_logits`] draws from
/// (softmax of `logits / temperature`, temperature 1 when greedy, before the
/// top-k / top-p cuts), highest first (ties by id), and that distribution's
/// entropy in nats.
pub fn top_alternatives(logits: &[f32], temperature: f32, k: usize) -> (Vec<(usize, f32)>, f32) {
    if logits.is_empty() {
        return (Vec::new(), 0.0);
    }
    let t = if temperature <= 0.0 || !temperature.is_finite() {
        1.0
    } else {
        temperature
    };
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f64> = logits
        .iter()
        .map(|&l| (((l - max) / t) as f64).exp())
        .collect();
    let sum: f64 = e.iter().sum();
    let mut entropy = 0.0f64;
    for &v in &e {
        let p = v / sum;
        if p > 0.0 {
            entropy -= p * p.ln();
        }
    }
    let mut idx: Vec<usize> = (0..e.len()).collect();
    idx.sort_by(|&a, &b| e[b].total_cmp(&e[a]).then(a.cmp(&b)));
    let top = idx
        .into_iter()
        .take(k)
        .map(|i| (i, (e[i] / sum) as f32))
        .collect();
    (top, entropy as f32)
}

/// [`generate_within`] whose callback also sees the logits the token was
/// drawn from (`on_token(id, prob, logits)`, the logits cut at `id_limit`).
pub fn generate_observed(
    model: &HostModel,
    id_limit: usize,
    prompt: &[usize],
    s: &SampleSettings,
    use_cache: bool,
    mut on_token: impl FnMut(usize, f32, &[f32]) -> bool,
) {
    let limit = id_limit.clamp(1, model.cfg.vocab_size.max(1));
    let ctx_max = model.cfg.n_positions;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(s.seed);
    let mut context: Vec<usize> = if prompt.is_empty() {
        vec![0]
    } else {
        prompt.to_vec()
    };
    let mut cache = KvCache::new(&model.cfg);
    let mut logits = Vec::new();
    // Re-reads the last `keep` tokens of the context into an empty cache.
    let refill = |cache: &mut KvCache, context: &[usize], logits: &mut Vec<f32>, keep: usize| {
        cache.clear();
        let start = context.len().saturating_sub(keep);
        for &t in &context[start..] {
            *logits = model.step(cache, t, None);
        }
    };
    refill(&mut cache, &context, &mut logits, ctx_max);
    for _ in 0..s.max_new_tokens {
        let seen = &logits[..limit.min(logits.len())];
        let (id, p) = sample_logits(seen, s, &mut rng);
        context.push(id);
        if !on_token(id, p, seen) {
            break;
        }
        if !use_cache {
            refill(&mut cache, &context, &mut logits, ctx_max);
        } else if cache.len() >= ctx_max {
            // The window is full: slide it by half, so that re-reading is
            // paid once every ctx_max/2 tokens and the mean cost stays flat.
            refill(&mut cache, &context, &mut logits, (ctx_max / 2).max(1));
        } else {
            logits = model.step(&mut cache, id, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sample_logits` at temperature 0.
    fn greedy(logits: &[f32]) -> (usize, f32) {
        let s = SampleSettings {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            max_new_tokens: 1,
            seed: 1,
        };
        sample_logits(logits, &s, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1))
    }

    #[test]
    fn alternatives_are_the_sampled_distribution_highest_first() {
        // logits ln 1, ln 2, ln 3, ln 4 at temperature 1: p = i / 10.
        let logits: Vec<f32> = [1.0f32, 2.0, 3.0, 4.0].iter().map(|v| v.ln()).collect();
        let (top, h) = top_alternatives(&logits, 1.0, 2);
        assert_eq!(top.len(), 2);
        assert_eq!((top[0].0, top[1].0), (3, 2));
        assert!((top[0].1 - 0.4).abs() < 1e-6 && (top[1].1 - 0.3).abs() < 1e-6);
        let want: f64 = [0.1f64, 0.2, 0.3, 0.4].iter().map(|p| -p * p.ln()).sum();
        assert!((h as f64 - want).abs() < 1e-6, "{h} vs {want}");
        // The probability sample_logits reports for an id is the same number.
        let (id, p) = greedy(&logits);
        assert_eq!((id, p), (top[0].0, top[0].1));
        // Temperature 2 flattens: entropy grows; greedy (0) reads as 1.
        assert!(top_alternatives(&logits, 2.0, 1).1 > h);
        assert_eq!(
            top_alternatives(&logits, 0.0, 4),
            top_alternatives(&logits, 1.0, 4)
        );
        assert_eq!(top_alternatives(&[], 1.0, 3), (Vec::new(), 0.0));
    }

    /// Greedy picks what sorting every probability (highest first, lowest
    /// id on ties) put first, without the sort: ties, NaN and infinities.
    #[test]
    fn greedy_is_the_first_of_the_sorted_distribution() {
        let cases: [&[f32]; 6] = [
            &[0.5, 2.0, -1.0, 2.0, 1.9],
            &[3.0, 3.0, 3.0],
            &[-4.0],
            &[1.0, f32::NAN, 2.0],
            &[f32::INFINITY, 1.0, f32::INFINITY],
            &[100.0, 100.0 + 1e-5, 99.0],
        ];
        for logits in cases {
            let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let w: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
            let sum: f32 = w.iter().sum();
            let mut sorted: Vec<(usize, f32)> = w.iter().map(|p| p / sum).enumerate().collect();
            sorted.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let (id, p) = greedy(logits);
            assert_eq!(id, sorted[0].0, "{logits:?}");
            assert_eq!(p.to_bits(), sorted[0].1.to_bits(), "{logits:?}");
        }
        assert_eq!(argmax(&[]), 0);
    }
}
