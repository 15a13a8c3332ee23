//! What each attention head does, measured on a probe: per layer x head the
//! entropy of the attention rows, the previous-token score, the first-token
//! (sink) score and the induction / copy score (attention from a token to the
//! token after an earlier occurrence of the same token, as TransformerLens'
//! induction detector) on the probe, and the induction score on the
//! trainer's induction probe (`train::induction`, a random sequence repeated
//! twice); the heads table's rows and sort order; and the
//! aggregate matrices (mean and max over a layer's heads, attention rollout
//! across layers, Abnar & Zuidema 2020). Plain functions of an `AttentionMap`.

use crate::train::AttentionMap;

/// A column of the heads table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScoreColumn {
    /// Layer, then head.
    #[default]
    Head,
    Entropy,
    PrevToken,
    Sink,
    Induction,
    /// The induction score on the trainer's induction probe.
    InductionProbe,
}

impl ScoreColumn {
    pub const ALL: [ScoreColumn; 6] = [
        ScoreColumn::Head,
        ScoreColumn::Entropy,
        ScoreColumn::PrevToken,
        ScoreColumn::Sink,
        ScoreColumn::Induction,
        ScoreColumn::InductionProbe,
    ];
    pub fn name(self) -> &'static str {
        match self {
            ScoreColumn::Head => "head",
            ScoreColumn::Entropy => "entropy",
            ScoreColumn::PrevToken => "prev",
            ScoreColumn::Sink => "first",
            ScoreColumn::Induction => "copy",
            ScoreColumn::InductionProbe => "induct",
        }
    }
    pub fn next(self) -> ScoreColumn {
        let i = Self::ALL.iter().position(|&c| c == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }
}

/// The scores of one head on one probe. A score that has no query to be
/// measured on (a one-token probe; no repeated token) is NaN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadScore {
    pub layer: usize,
    pub head: usize,
    /// Mean over query rows of the entropy (nats) of the attention row.
    pub entropy: f32,
    /// Mean over queries q >= 1 of the weight on key q - 1.
    pub prev_token: f32,
    /// Mean over queries q >= 1 of the weight on key 0.
    pub sink: f32,
    /// Mean, over queries whose token occurred earlier, of the weight on the
    /// keys that follow an earlier occurrence (key <= query); on a
    /// bidirectional map, over queries whose token occurs elsewhere, of the
    /// weight on the keys that follow any other occurrence (either side).
    pub induction: f32,
    /// The same on the trainer's induction probe (a random sequence
    /// repeated twice); NaN until its scores arrive.
    pub induction_probe: f32,
}

impl HeadScore {
    pub fn get(&self, c: ScoreColumn) -> f32 {
        match c {
            ScoreColumn::Head => (self.layer * 1000 + self.head) as f32,
            ScoreColumn::Entropy => self.entropy,
            ScoreColumn::PrevToken => self.prev_token,
            ScoreColumn::Sink => self.sink,
            ScoreColumn::Induction => self.induction,
            ScoreColumn::InductionProbe => self.induction_probe,
        }
    }
}

/// Row `q` of an `n x n` row-major matrix.
fn row(m: &[f32], n: usize, q: usize) -> &[f32] {
    m.get(q * n..(q + 1) * n).unwrap_or(&[])
}

fn mean(sum: f64, count: usize) -> f32 {
    if count == 0 {
        f32::NAN
    } else {
        (sum / count as f64) as f32
    }
}

/// Entropy (nats) of the attention rows, averaged over queries.
pub fn entropy(m: &[f32], n: usize) -> f32 {
    let mut sum = 0.0f64;
    for q in 0..n {
        for &p in row(m, n, q) {
            if p > 0.0 && p.is_finite() {
                sum -= p as f64 * (p as f64).ln();
            }
        }
    }
    mean(sum, n)
}

/// Weight on the previous token, averaged over queries 1..n.
pub fn prev_token(m: &[f32], n: usize) -> f32 {
    let sum: f64 = (1..n)
        .map(|q| row(m, n, q).get(q - 1).copied().unwrap_or(0.0) as f64)
        .sum();
    mean(sum, n.saturating_sub(1))
}

/// Weight on the first token, averaged over queries 1..n.
pub fn sink(m: &[f32], n: usize) -> f32 {
    let sum: f64 = (1..n)
        .map(|q| row(m, n, q).first().copied().unwrap_or(0.0) as f64)
        .sum();
    mean(sum, n.saturating_sub(1))
}

pub use crate::train::induction::{bidirectional_targets, induction, induction_targets};

/// Every head's scores on a map, layer by layer.
pub fn score_heads(map: &AttentionMap) -> Vec<HeadScore> {
    let n = map.len();
    let targets = crate::train::induction::targets(&map.tokens, map.causal);
    let mut out = Vec::with_capacity(map.n_layer * map.n_head);
    for (layer, heads) in map.probs.iter().enumerate() {
        for (head, m) in heads.iter().enumerate() {
            out.push(HeadScore {
                layer,
                head,
                entropy: entropy(m, n),
                prev_token: prev_token(m, n),
                sink: sink(m, n),
                induction: induction(m, n, &targets),
                induction_probe: f32::NAN,
            });
        }
    }
    out
}

/// Indices into `scores` in table order: by `column`, highest first (entropy:
/// lowest first, the sharpest heads; head: layer then head), NaN last, ties
/// by layer and head.
pub fn sorted(scores: &[HeadScore], column: ScoreColumn) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    let key = |i: usize| -> f32 {
        let v = scores[i].get(column);
        match column {
            ScoreColumn::Head | ScoreColumn::Entropy => v,
            _ => -v,
        }
    };
    idx.sort_by(|&a, &b| {
        let (ka, kb) = (key(a), key(b));
        ka.is_nan()
            .cmp(&kb.is_nan())
            .then(ka.total_cmp(&kb))
            .then((scores[a].layer, scores[a].head).cmp(&(scores[b].layer, scores[b].head)))
    });
    idx
}

/// Which matrix of a layer the heatmap shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadSel {
    Head(usize),
    /// The mean over the layer's heads.
    Mean,
    /// The element-wise max over the layer's heads.
    Max,
    /// Attention rollout from the first layer up to this one.
    Rollout,
}

impl HeadSel {
    /// The selections of a layer with `n_head` heads, in cycling order.
    pub fn count(n_head: usize) -> usize {
        n_head + 3
    }
    pub fn from_index(i: usize, n_head: usize) -> HeadSel {
        match i.checked_sub(n_head) {
            None => HeadSel::Head(i),
            Some(0) => HeadSel::Mean,
            Some(1) => HeadSel::Max,
            Some(_) => HeadSel::Rollout,
        }
    }
    pub fn label(self) -> String {
        match self {
            HeadSel::Head(h) => format!("{}", h + 1),
            HeadSel::Mean => "mean".into(),
            HeadSel::Max => "max".into(),
            HeadSel::Rollout => "rollout".into(),
        }
    }
}

/// Mean over the heads of `layer`.
pub fn layer_mean(map: &AttentionMap, layer: usize) -> Vec<f32> {
    let n = map.len();
    let mut out = vec![0.0f32; n * n];
    let Some(heads) = map.probs.get(layer) else {
        return out;
    };
    for m in heads {
        for (o, &v) in out.iter_mut().zip(m) {
            *o += v;
        }
    }
    let k = heads.len().max(1) as f32;
    out.iter_mut().for_each(|v| *v /= k);
    out
}

/// Element-wise max over the heads of `layer`.
pub fn layer_max(map: &AttentionMap, layer: usize) -> Vec<f32> {
    let n = map.len();
    let mut out = vec![0.0f32; n * n];
    for m in map.probs.get(layer).into_iter().flatten() {
        for (o, &v) in out.iter_mut().zip(m) {
            *o = o.max(v);
        }
    }
    out
}

/// Attention rollout up to `layer` (Abnar & Zuidema, 2020): each layer's
/// head-mean `A` with the residual added, `0.5 A + 0.5 I` with rows
/// renormalised, multiplied from the first layer up: `R = Â_l ... Â_0`.
pub fn rollout(map: &AttentionMap, layer: usize) -> Vec<f32> {
    let n = map.len();
    let mut r: Vec<f32> = (0..n * n)
        .map(|i| {
            if i / n.max(1) == i % n.max(1) {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    for l in 0..=layer.min(map.n_layer.saturating_sub(1)) {
        let mut a = layer_mean(map, l);
        for q in 0..n {
            a[q * n + q] += 1.0;
            let s: f32 = a[q * n..(q + 1) * n].iter().sum();
            if s > 0.0 {
                a[q * n..(q + 1) * n].iter_mut().for_each(|v| *v /= s);
            }
        }
        // r = a * r
        let mut next = vec![0.0f32; n * n];
        for q in 0..n {
            for j in 0..n {
                let w = a[q * n + j];
                if w == 0.0 {
                    continue;
                }
                for k in 0..n {
                    next[q * n + k] += w * r[j * n + k];
                }
            }
        }
        r = next;
    }
    r
}

/// The matrix a selection shows, `n x n` row-major.
pub fn matrix(map: &AttentionMap, layer: usize, sel: HeadSel) -> Vec<f32> {
    match sel {
        HeadSel::Head(h) => map
            .probs
            .get(layer)
            .and_then(|l| l.get(h))
            .cloned()
            .unwrap_or_else(|| vec![0.0; map.len() * map.len()]),
        HeadSel::Mean => layer_mean(map, layer),
        HeadSel::Max => layer_max(map, layer),
        HeadSel::Rollout => rollout(map, layer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(tokens: &[&str], probs: Vec<Vec<Vec<f32>>>) -> AttentionMap {
        AttentionMap {
            step: 1,
            tokens: tokens.iter().map(|s| s.to_string()).collect(),
            n_layer: probs.len(),
            n_head: probs[0].len(),
            probs,
            causal: true,
        }
    }

    /// 3 tokens; every row puts all weight on the previous token (row 0 on itself).
    const PREV: [f32; 9] = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    /// Uniform causal rows: 1, 1/2 1/2, 1/3 1/3 1/3.
    const UNIFORM: [f32; 9] = [
        1.0,
        0.0,
        0.0,
        0.5,
        0.5,
        0.0,
        1.0 / 3.0,
        1.0 / 3.0,
        1.0 / 3.0,
    ];

    #[test]
    fn hand_checked_scores() {
        // Entropy: rows of PREV are one-hot: 0. UNIFORM: (0 + ln 2 + ln 3) / 3.
        assert_eq!(entropy(&PREV, 3), 0.0);
        let want = ((2.0f64).ln() + (3.0f64).ln()) / 3.0;
        assert!((entropy(&UNIFORM, 3) as f64 - want).abs() < 1e-6);
        // Previous token: PREV 1; UNIFORM (1/2 + 1/3) / 2 = 5/12.
        assert_eq!(prev_token(&PREV, 3), 1.0);
        assert!((prev_token(&UNIFORM, 3) - 5.0 / 12.0).abs() < 1e-6);
        // Sink: PREV (1 + 0) / 2; UNIFORM (1/2 + 1/3) / 2.
        assert_eq!(sink(&PREV, 3), 0.5);
        assert!((sink(&UNIFORM, 3) - 5.0 / 12.0).abs() < 1e-6);
        // One token: no query to measure previous-token or sink on.
        assert!(prev_token(&[1.0], 1).is_nan() && sink(&[1.0], 1).is_nan());
    }

    #[test]
    fn induction_on_a_repeated_sequence() {
        // a b c a b c: query 3 (a) should look at 1 (b, after the first a),
        // query 4 (b) at 2, query 5 (c) at 3.
        let toks = ["a", "b", "c", "a", "b", "c"];
        let t = induction_targets(&toks);
        assert!(t[..3].iter().all(|k| k.is_empty()));
        assert_eq!(t[3..], [vec![1], vec![2], vec![3]]);
        let n = 6;
        let mut perfect = vec![0.0f32; n * n];
        let mut half = vec![0.0f32; n * n];
        for q in 0..n {
            let k = if q >= 3 { q - 2 } else { q };
            perfect[q * n + k] = 1.0;
            half[q * n + k] = 0.5;
            half[q * n] += 0.5;
        }
        assert_eq!(induction(&perfect, n, &t), 1.0);
        assert_eq!(induction(&half, n, &t), 0.5);
        // No repeated token: nothing to measure.
        let none = induction_targets(&["a", "b"]);
        assert!(induction(&[1.0, 0.0, 1.0, 0.0], 2, &none).is_nan());
        // Two earlier occurrences: both following keys count.
        let t = induction_targets(&["x", "y", "x", "z", "x"]);
        assert_eq!(t[4], vec![1, 3]);
    }

    #[test]
    fn a_bidirectional_map_scores_copies_from_either_side() {
        // a b c a b c: in an encoder a token can copy from the token after
        // its other occurrence on either side. The c at 2 has none (the
        // other c is the last token).
        let toks = ["a", "b", "c", "a", "b", "c"];
        let t = bidirectional_targets(&toks);
        assert_eq!(t[0], vec![4]);
        assert_eq!(t[1], vec![5]);
        assert!(t[2].is_empty());
        assert_eq!(t[3..], [vec![1], vec![2], vec![3]]);
        // A look-ahead copy head: queries 0 and 1 on keys 4 and 5, every
        // other query on itself.
        let n = 6;
        let mut m = vec![0.0f32; n * n];
        for q in 0..n {
            let k = match q {
                0 => 4,
                1 => 5,
                _ => q,
            };
            m[q * n + k] = 1.0;
        }
        let mk = |causal| AttentionMap {
            step: 1,
            tokens: toks.iter().map(|s| s.to_string()).collect(),
            n_layer: 1,
            n_head: 1,
            probs: vec![vec![m.clone()]],
            causal,
        };
        // Bidirectional: 2 of the 5 queries with a target copy.
        let bi = score_heads(&mk(false))[0];
        assert!((bi.induction - 0.4).abs() < 1e-6, "{bi:?}");
        // The causal reading sees only queries 3-5 looking back: nothing.
        assert_eq!(score_heads(&mk(true))[0].induction, 0.0);
        // Previous-token and first-token are defined alike on both.
        assert_eq!(bi.prev_token, prev_token(&m, n));
        assert_eq!(bi.sink, sink(&m, n));
    }

    #[test]
    fn table_sorting_and_aggregates() {
        let m = map(
            &["a", "b", "c"],
            vec![vec![PREV.to_vec(), UNIFORM.to_vec()]],
        );
        let s = score_heads(&m);
        assert_eq!(s.len(), 2);
        assert_eq!(sorted(&s, ScoreColumn::PrevToken), vec![0, 1]);
        // Entropy: sharpest first.
        assert_eq!(sorted(&s, ScoreColumn::Entropy), vec![0, 1]);
        assert_eq!(sorted(&s, ScoreColumn::Head), vec![0, 1]);
        // Mean and max of the two heads.
        let mean = layer_mean(&m, 0);
        assert_eq!(mean[3], 0.75);
        assert_eq!(mean[4], 0.25);
        let max = layer_max(&m, 0);
        assert_eq!(max[3], 1.0);
        assert_eq!(max[4], 0.5);
        assert_eq!(HeadSel::from_index(2, 2), HeadSel::Mean);
        assert_eq!(HeadSel::from_index(4, 2), HeadSel::Rollout);
    }

    #[test]
    fn rollout_of_one_layer_and_two() {
        // One layer, one head PREV: 0.5 A + 0.5 I, rows renormalised.
        // Row 0: A puts 1 on key 0: (1 + 1) / 2 -> [1, 0, 0].
        // Row 1: [0.5, 0.5, 0]; row 2: [0, 0.5, 0.5].
        let one = map(&["a", "b", "c"], vec![vec![PREV.to_vec()]]);
        let r = rollout(&one, 0);
        assert_eq!(r, vec![1.0, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.5, 0.5]);
        // Two layers of PREV: R = Â Â.
        // Row 2: 0.5 * row1 + 0.5 * row2 = [0.25, 0.5, 0.25].
        let two = map(
            &["a", "b", "c"],
            vec![vec![PREV.to_vec()], vec![PREV.to_vec()]],
        );
        let r = rollout(&two, 1);
        assert_eq!(&r[6..], &[0.25, 0.5, 0.25]);
        assert_eq!(&r[3..6], &[0.75, 0.25, 0.0]);
        // Rows of a rollout sum to 1.
        for q in 0..3 {
            let s: f32 = r[q * 3..q * 3 + 3].iter().sum();
            assert!((s - 1.0).abs() < 1e-6);
        }
    }
}
