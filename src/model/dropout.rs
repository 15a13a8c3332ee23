//! Dropout where GPT-2 has it (`embd_pdrop` after the embeddings,
//! `attn_pdrop` on the attention probabilities, `resid_pdrop` on each
//! residual branch), for training only. The masks are drawn on the host from
//! a ChaCha RNG seeded by (seed, step, micro-batch), so a run is
//! deterministic under its seed, a resumed run draws the masks an
//! uninterrupted one would, and the fused and plain kernels see the same
//! masks (the dropped sites use the same composition on both).

use super::{T3, T4};
use dfdx::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// GPT-2's three dropout probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Dropout {
    pub embd: f64,
    pub attn: f64,
    pub resid: f64,
}

impl Dropout {
    /// The same probability at every site (nanoGPT's `dropout`).
    pub fn all(p: f64) -> Self {
        Dropout {
            embd: p,
            attn: p,
            resid: p,
        }
    }

    pub fn is_off(&self) -> bool {
        self.embd <= 0.0 && self.attn <= 0.0 && self.resid <= 0.0
    }
}

/// The masks of one forward pass, drawn in the order the sites are met.
#[derive(Debug, Clone)]
pub struct DropoutMasks {
    rates: Dropout,
    rng: ChaCha8Rng,
}

impl DropoutMasks {
    /// Masks for optimizer step `step`, micro-batch `micro`, of a run seeded `seed`.
    pub fn new(rates: Dropout, seed: u64, step: u64, micro: u64) -> Self {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&step.to_le_bytes());
        key[16..24].copy_from_slice(&micro.to_le_bytes());
        key[24..].copy_from_slice(b"dropout!");
        DropoutMasks {
            rates,
            rng: ChaCha8Rng::from_seed(key),
        }
    }

    /// `n` multipliers: 0 with probability `p`, else `1 / (1 - p)`; `None`
    /// when `p` is 0 (nothing is drawn).
    pub fn draw(&mut self, p: f64, n: usize) -> Option<Vec<f32>> {
        if p <= 0.0 {
            return None;
        }
        let keep = (1.0 / (1.0 - p)) as f32;
        Some(
            (0..n)
                .map(|_| if self.rng.gen::<f64>() < p { 0.0 } else { keep })
                .collect(),
        )
    }

    fn mask3<D: Device<f32>>(
        &mut self,
        p: f64,
        dev: &D,
        shape: (usize, usize, usize),
    ) -> Option<T3<D>> {
        let v = self.draw(p, shape.0 * shape.1 * shape.2)?;
        Some(dev.tensor_from_vec(v, shape))
    }

    /// The embeddings' mask, `(B, S, C)`.
    pub fn embd<D: Device<f32>>(&mut self, dev: &D, shape: (usize, usize, usize)) -> Option<T3<D>> {
        self.mask3(self.rates.embd, dev, shape)
    }

    /// A residual branch's mask, `(B, S, C)`.
    pub fn resid<D: Device<f32>>(
        &mut self,
        dev: &D,
        shape: (usize, usize, usize),
    ) -> Option<T3<D>> {
        self.mask3(self.rates.resid, dev, shape)
    }

    /// The attention probabilities' mask, `(B, H, S, S)`.
    pub fn attn<D: Device<f32>>(
        &mut self,
        dev: &D,
        shape: (usize, usize, usize, usize),
    ) -> Option<T4<D>> {
        let v = self.draw(self.rates.attn, shape.0 * shape.1 * shape.2 * shape.3)?;
        Some(dev.tensor_from_vec(v, shape))
    }
}

/// Causal attention from the fused q/k/v projection with `mask` multiplied
/// into the probabilities (the plain composition, on every kernel set).
pub fn causal_attention_dropped<D: Device<f32>, T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(
    qkv: T3<D, T>,
    n_head: usize,
    mask: T4<D>,
) -> T3<D, T> {
    let (b, s, c3) = *qkv.shape();
    let (scores, v) = super::kernels::plain::causal_scores(qkv, n_head);
    let probs = scores.softmax::<Axis<3>>() * mask;
    let y = probs.matmul(v); // (B,H,S,hd)
    super::kernels::plain::merge_heads(y, b, s, c3 / 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_drop_about_p_and_scale_the_rest() {
        let mut m = DropoutMasks::new(Dropout::all(0.1), 1, 2, 3);
        let v = m.draw(0.1, 100_000).expect("p > 0 draws");
        let dropped = v.iter().filter(|&&x| x == 0.0).count() as f64 / v.len() as f64;
        assert!((dropped - 0.1).abs() < 0.01, "{dropped}");
        assert!(v.iter().all(|&x| x == 0.0 || (x - 1.0 / 0.9).abs() < 1e-6));
        assert!(m.draw(0.0, 10).is_none());
    }

    #[test]
    fn masks_depend_on_seed_step_and_micro_batch_only() {
        let draw = |seed, step, micro| {
            DropoutMasks::new(Dropout::all(0.5), seed, step, micro).draw(0.5, 64)
        };
        assert_eq!(draw(1, 2, 3), draw(1, 2, 3));
        assert_ne!(draw(1, 2, 3), draw(1, 2, 4));
        assert_ne!(draw(1, 2, 3), draw(1, 3, 3));
        assert_ne!(draw(1, 2, 3), draw(2, 2, 3));
    }

    #[test]
    fn attention_with_an_all_ones_mask_is_plain_attention() {
        let dev = Cpu::default();
        let (b, s, c, h) = (2, 5, 8, 2);
        let v: Vec<f32> = (0..b * s * 3 * c)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let qkv: T3<Cpu> = dev.tensor_from_vec(v, (b, s, 3 * c));
        let ones: T4<Cpu> = dev.tensor_from_vec(vec![1.0; b * h * s * s], (b, h, s, s));
        let got = causal_attention_dropped(qkv.clone(), h, ones).as_vec();
        let (want, _) = super::super::kernels::plain::causal_attention(qkv, h, false);
        for (a, w) in got.iter().zip(want.as_vec()) {
            assert!((a - w).abs() < 1e-6);
        }
    }
}
