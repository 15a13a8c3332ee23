//! The model's hot operations behind one trait, so the device picks its
//! implementation once: the plain dfdx composition (the reference, and the
//! path on CUDA) or, on the CPU with `fused = true`, hand-written kernels.

use super::{T1, T2, T3, T4};
use dfdx::prelude::*;

/// Operations the model calls; the default bodies are the plain dfdx reference.
pub trait Kernels: Device<f32> {
    /// Rows of `wte` picked by `idx`: `(N,) -> (N, C)`.
    fn embedding<T: Tape<f32, Self> + Merge<T> + Merge<NoneTape>>(
        wte: T2<Self, T>,
        idx: Tensor<(usize,), usize, Self>,
        fused: bool,
    ) -> T2<Self, T> {
        let _ = fused;
        plain::embedding(wte, idx)
    }

    /// LayerNorm over the last axis with gain and bias.
    fn layer_norm<T: Tape<f32, Self> + Merge<T> + Merge<NoneTape>>(
        x: T3<Self, T>,
        g: &T1<Self>,
        b: &T1<Self>,
        eps: f64,
        fused: bool,
    ) -> T3<Self, T> {
        let _ = fused;
        plain::layer_norm(x, g, b, eps)
    }

    /// tanh-approximated GELU (GPT-2's `gelu_new`).
    fn gelu<T: Tape<f32, Self> + Merge<T> + Merge<NoneTape>>(
        x: T3<Self, T>,
        fused: bool,
    ) -> T3<Self, T> {
        let _ = fused;
        x.fast_gelu()
    }

    /// Causal multi-head self-attention from the fused q/k/v projection
    /// `(B, S, 3C)` to `(B, S, C)`, and the `(B, H, S, S)` probabilities when asked.
    fn causal_attention<T: Tape<f32, Self> + Merge<T> + Merge<NoneTape>>(
        qkv: T3<Self, T>,
        n_head: usize,
        keep_probs: bool,
        fused: bool,
    ) -> (T3<Self, T>, Option<T4<Self>>) {
        let _ = fused;
        plain::causal_attention(qkv, n_head, keep_probs)
    }

    /// Mean softmax cross-entropy of integer `targets` under `(N, V)` logits.
    fn cross_entropy<T: Tape<f32, Self> + Merge<T> + Merge<NoneTape>>(
        logits: T2<Self, T>,
        targets: Tensor<(usize,), usize, Self>,
        fused: bool,
    ) -> Tensor<(), f32, Self, T> {
        let _ = fused;
        plain::cross_entropy(logits, targets)
    }
}

#[cfg(feature = "cuda")]
impl Kernels for Cuda {}

/// The reference implementations: compositions of dfdx 0.13.0 ops.
pub mod plain {
    use super::*;

    pub fn embedding<D: Device<f32>, T: Tape<f32, D>>(
        wte: T2<D, T>,
        idx: Tensor<(usize,), usize, D>,
    ) -> T2<D, T> {
        wte.gather(idx)
    }

    pub fn layer_norm<D: Device<f32>, T: Tape<f32, D> + Merge<NoneTape>>(
        x: T3<D, T>,
        g: &T1<D>,
        b: &T1<D>,
        eps: f64,
    ) -> T3<D, T> {
        let shape = *x.shape();
        x.normalize::<Axis<2>>(eps) * g.clone().broadcast_like::<_, Axes2<0, 1>>(&shape)
            + b.clone().broadcast_like::<_, Axes2<0, 1>>(&shape)
    }

    pub fn causal_attention<D: Device<f32>, T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(
        qkv: T3<D, T>,
        n_head: usize,
        keep_probs: bool,
    ) -> (T3<D, T>, Option<T4<D>>) {
        let (b, s, c3) = *qkv.shape();
        let c = c3 / 3;
        let hd = c / n_head;
        let dev = qkv.device().clone();
        let split = |t: T3<D, T>| -> T4<D, T> {
            t.reshape_like(&(b, s, n_head, hd))
                .permute::<_, Axes4<0, 2, 1, 3>>()
        };
        let q = split(qkv.retaped::<T>().slice((.., .., 0..c)));
        let k = split(qkv.retaped::<T>().slice((.., .., c..2 * c)));
        let v = split(qkv.slice((.., .., 2 * c..3 * c)));
        let scale = 1.0 / (hd as f32).sqrt();
        let scores = q.matmul(k.permute::<_, Axes4<0, 1, 3, 2>>()) * scale;
        let mask: Tensor<(usize, usize), f32, D> =
            dev.upper_tri_like(&(s, s), f32::NEG_INFINITY, 1);
        let scores = scores + mask.broadcast_like::<_, Axes2<0, 1>>(&(b, n_head, s, s));
        let probs = scores.softmax::<Axis<3>>();
        let (probs, tape) = probs.split_tape();
        let kept = keep_probs.then(|| probs.clone());
        let y = probs.put_tape(tape).matmul(v); // (B,H,S,hd)
        let y: T3<D, T> = y.permute::<_, Axes4<0, 2, 1, 3>>().reshape_like(&(b, s, c));
        (y, kept)
    }

    pub fn cross_entropy<D: Device<f32>, T: Tape<f32, D>>(
        logits: T2<D, T>,
        targets: Tensor<(usize,), usize, D>,
    ) -> Tensor<(), f32, D, T> {
        let picked: Tensor<(usize,), f32, D, T> = logits.log_softmax::<Axis<1>>().select(targets);
        picked.mean().negate()
    }
}
impl Kernels for Cpu {}
