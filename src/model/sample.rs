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

/// Picks the next token from `logits` under `s`. Temperature 0 is greedy.
pub fn sample_logits(logits: &[f32], s: &SampleSettings, rng: &mut impl Rng) -> (usize, f32) {
    if logits.is_empty() {
        return (0, 0.0);
    }
    let greedy = s.temperature <= 0.0 || !s.temperature.is_finite();
    let t = if greedy { 1.0 } else { s.temperature };
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let mut probs: Vec<(usize, f32)> = logits
        .iter()
        .map(|&l| ((l - max) / t).exp())
        .enumerate()
        .collect();
    let sum: f32 = probs.iter().map(|p| p.1).sum();
    for p in probs.iter_mut() {
        p.1 /= sum;
    }
    probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if greedy {
        return probs[0];
    }
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
        let (id, p) = sample_logits(&logits[..limit.min(logits.len())], s, &mut rng);
        context.push(id);
        if !on_token(id, p) {
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
