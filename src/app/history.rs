//! Attention over training: the last probes, kept compactly (probabilities
//! quantised to one byte, the probe's tokens shared between probes of the
//! same text, and only the head scores when a probe's matrices would pass
//! the memory budget), so the attention pane can scrub back through
//! training steps and draw each head's scores over time.

use super::heads::{HeadScore, ScoreColumn};
use crate::train::AttentionMap;
use std::collections::VecDeque;
use std::sync::Arc;

/// Probes kept.
pub const MAX_PROBES: usize = 64;
/// Bytes of quantised matrices kept over all probes.
pub const MAX_BYTES: usize = 64 << 20;

/// One kept probe.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredProbe {
    pub step: usize,
    pub tokens: Arc<Vec<String>>,
    pub n_layer: usize,
    pub n_head: usize,
    /// `[layer][head]` matrices, each `n x n` bytes (p * 255 rounded), or
    /// None when only the scores were kept.
    pub probs: Option<Vec<u8>>,
    pub scores: Vec<HeadScore>,
    /// The map was causal (see [`AttentionMap::causal`]).
    pub causal: bool,
}

impl StoredProbe {
    /// The probe as a map again (weights within 1/510 of the original), if
    /// its matrices were kept.
    pub fn to_map(&self) -> Option<AttentionMap> {
        let bytes = self.probs.as_ref()?;
        let nn = self.tokens.len() * self.tokens.len();
        let mut chunks = bytes.chunks(nn.max(1));
        let probs = (0..self.n_layer)
            .map(|_| {
                (0..self.n_head)
                    .map(|_| {
                        chunks
                            .next()
                            .unwrap_or(&[])
                            .iter()
                            .map(|&b| b as f32 / 255.0)
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Some(AttentionMap {
            step: self.step,
            tokens: (*self.tokens).clone(),
            n_layer: self.n_layer,
            n_head: self.n_head,
            probs,
            causal: self.causal,
        })
    }
}

/// The kept probes, oldest first, within `MAX_PROBES` and `MAX_BYTES`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProbeHistory {
    pub probes: VecDeque<StoredProbe>,
    bytes: usize,
}

/// A probe's matrices quantised for the history, or None when they would
/// pass a quarter of the budget (then only its scores are kept).
pub fn quantised(map: &AttentionMap) -> Option<Vec<u8>> {
    let n = map.len();
    let size = map.n_layer * map.n_head * n * n;
    (size <= MAX_BYTES / 4).then(|| {
        let mut out = Vec::with_capacity(size);
        for l in &map.probs {
            for h in l {
                out.extend(h.iter().take(n * n).map(|&p| quantise(p)));
                out.resize(out.len() + (n * n).saturating_sub(h.len()), 0);
            }
        }
        out
    })
}

/// Quantises a probability to one byte.
pub fn quantise(p: f32) -> u8 {
    if p.is_finite() {
        (p.clamp(0.0, 1.0) * 255.0).round() as u8
    } else {
        0
    }
}

impl ProbeHistory {
    pub fn len(&self) -> usize {
        self.probes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.probes.is_empty()
    }
    /// Bytes of quantised matrices held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Keeps a probe and its scores; drops the oldest past the limits.
    /// Returns how many were dropped from the front.
    pub fn push(&mut self, map: &AttentionMap, scores: Vec<HeadScore>) -> usize {
        self.push_quantised(map, quantised(map), scores)
    }

    /// [`ProbeHistory::push`] with the matrices already quantised
    /// ([`quantised`], on a worker thread for a big probe).
    pub fn push_quantised(
        &mut self,
        map: &AttentionMap,
        probs: Option<Vec<u8>>,
        scores: Vec<HeadScore>,
    ) -> usize {
        let tokens = match self.probes.back() {
            Some(p) if *p.tokens == map.tokens => p.tokens.clone(),
            _ => Arc::new(map.tokens.clone()),
        };
        self.bytes += probs.as_ref().map_or(0, |p| p.len());
        self.probes.push_back(StoredProbe {
            step: map.step,
            tokens,
            n_layer: map.n_layer,
            n_head: map.n_head,
            probs,
            scores,
            causal: map.causal,
        });
        let mut dropped = 0;
        while self.probes.len() > MAX_PROBES || (self.bytes > MAX_BYTES && self.probes.len() > 1) {
            if let Some(p) = self.probes.pop_front() {
                self.bytes -= p.probs.as_ref().map_or(0, |p| p.len());
                dropped += 1;
            }
        }
        dropped
    }

    /// One head's score in `column` over the kept probes, oldest first
    /// (NaN where a probe has no such head).
    pub fn series(&self, layer: usize, head: usize, column: ScoreColumn) -> Vec<f32> {
        self.probes
            .iter()
            .map(|p| {
                p.scores
                    .iter()
                    .find(|s| s.layer == layer && s.head == head)
                    .map_or(f32::NAN, |s| s.get(column))
            })
            .collect()
    }
}

/// A sparkline of `values` (NaN as a space), scaled to `lo..hi`.
pub fn sparkline(values: &[f32], lo: f32, hi: f32) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    values
        .iter()
        .map(|&v| {
            if !v.is_finite() {
                ' '
            } else {
                let t = if hi > lo { (v - lo) / (hi - lo) } else { 1.0 };
                BARS[((t.clamp(0.0, 1.0) * 7.0).round() as usize).min(7)]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::heads::score_heads;

    fn map(step: usize, n: usize, w: f32) -> AttentionMap {
        let mut m = vec![0.0f32; n * n];
        for q in 0..n {
            m[q * n + q] = w;
            m[q * n] += 1.0 - w;
        }
        AttentionMap {
            step,
            tokens: (0..n).map(|i| format!("t{i}")).collect(),
            n_layer: 1,
            n_head: 1,
            probs: vec![vec![m]],
            causal: true,
        }
    }

    #[test]
    fn keeps_quantised_probes_within_bounds() {
        let mut h = ProbeHistory::default();
        for i in 0..(MAX_PROBES + 10) {
            let m = map(i * 10, 8, i as f32 / 100.0);
            h.push(&m, score_heads(&m));
        }
        assert_eq!(h.len(), MAX_PROBES);
        assert_eq!(h.probes[0].step, 100, "the oldest were dropped");
        assert_eq!(h.bytes(), MAX_PROBES * 64);
        // Tokens are shared between probes of the same text.
        assert!(Arc::ptr_eq(&h.probes[0].tokens, &h.probes[1].tokens));
        // Dequantised within half a step.
        let m = map(5, 8, 0.37);
        h.push(&m, score_heads(&m));
        let back = h.probes.back().unwrap().to_map().unwrap();
        for (a, b) in back.probs[0][0].iter().zip(&m.probs[0][0]) {
            assert!((a - b).abs() <= 0.5 / 255.0 + 1e-6);
        }
        // The previous-token score over time.
        let s = h.series(0, 0, ScoreColumn::PrevToken);
        assert_eq!(s.len(), MAX_PROBES);
        assert_eq!(sparkline(&[0.0, 0.5, 1.0, f32::NAN], 0.0, 1.0), "▁▅█ ");
    }

    #[test]
    fn a_probe_past_the_budget_keeps_only_scores() {
        let mut h = ProbeHistory::default();
        // 1 x 1 x 4200^2 bytes > MAX_BYTES / 4.
        let n = 4200;
        let m = AttentionMap {
            step: 1,
            tokens: vec![String::new(); n],
            n_layer: 1,
            n_head: 1,
            probs: vec![vec![vec![0.0; 1]]],
            causal: true,
        };
        h.push(&m, Vec::new());
        assert!(h.probes[0].probs.is_none());
        assert_eq!(h.bytes(), 0);
        assert!(h.probes[0].to_map().is_none());
    }
}
