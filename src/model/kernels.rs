//! The model's hot operations as one trait, [`Ops`], with two implementations
//! chosen once per forward pass (never per op): [`Plain`], compositions of
//! dfdx ops (the reference, and the path on CUDA), and [`Fused`], the
//! hand-written CPU kernels of [`super::fused`]. A device names what "fused"
//! means on it through [`Kernels::Fused`]; the config's `model.fused` picks
//! between the two as a [`KernelSet`].

use super::{Block, T1, T2, T3, T4};
use dfdx::prelude::*;

/// Operations the model calls; the default bodies are the plain dfdx reference.
pub trait Ops<D: Device<f32>> {
    /// Rows of `wte` picked by `idx`: `(N,) -> (N, C)`.
    fn embedding<T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(
        wte: T2<D, T>,
        idx: Tensor<(usize,), usize, D>,
    ) -> T2<D, T> {
        plain::embedding(wte, idx)
    }

    /// LayerNorm over the last axis with gain and bias; `eps` is added to the variance.
    fn layer_norm<T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(
        x: T3<D, T>,
        g: &T1<D>,
        b: &T1<D>,
        eps: f64,
    ) -> T3<D, T> {
        plain::layer_norm(x, g, b, eps)
    }

    /// tanh-approximated GELU (GPT-2's `gelu_new`).
    fn gelu<T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(x: T3<D, T>) -> T3<D, T> {
        plain::gelu(x)
    }

    /// Multi-head self-attention from the fused q/k/v projection `(B, S, 3C)`
    /// to `(B, S, C)`, and the `(B, H, S, S)` probabilities when asked;
    /// `causal`: each position sees itself and earlier ones only (GPT-2),
    /// otherwise every position (BERT's bidirectional encoder).
    fn attention<T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(
        qkv: T3<D, T>,
        n_head: usize,
        causal: bool,
        keep_probs: bool,
    ) -> (T3<D, T>, Option<T4<D>>) {
        plain::attention(qkv, n_head, causal, keep_probs)
    }

    /// [`Ops::attention`] with the causal mask (GPT-2).
    fn causal_attention<T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(
        qkv: T3<D, T>,
        n_head: usize,
        keep_probs: bool,
    ) -> (T3<D, T>, Option<T4<D>>) {
        Self::attention(qkv, n_head, true, keep_probs)
    }

    /// `x @ w + b` over the last axis, `x: (B,S,I)`, `w: (I,O)`, `b: (O,)`.
    fn linear<T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(
        x: T3<D, T>,
        w: &T2<D>,
        b: &T1<D>,
    ) -> T3<D, T> {
        plain::linear(x, w, b)
    }

    /// `gelu(x W + b)`: the MLP's first layer and its activation (tanh GELU).
    fn linear_gelu<T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(
        x: T3<D, T>,
        w: &T2<D>,
        b: &T1<D>,
    ) -> T3<D, T> {
        Self::linear_act(x, w, b, Gelu::Tanh)
    }

    /// `gelu(x W + b)` with the GELU `act` names (BERT uses [`Gelu::Erf`]).
    fn linear_act<T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(
        x: T3<D, T>,
        w: &T2<D>,
        b: &T1<D>,
        act: Gelu,
    ) -> T3<D, T> {
        plain::linear_act(x, w, b, act)
    }

    /// `res + x W + b`: a linear layer added onto the residual stream.
    fn linear_residual<T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(
        res: T3<D, T>,
        x: T3<D, T>,
        w: &T2<D>,
        b: &T1<D>,
    ) -> T3<D, T> {
        plain::linear_residual(res, x, w, b)
    }

    /// `linear(layer_norm(x))`: a LayerNorm (gain `g`, bias `b`) and the
    /// linear layer `W`, `bias` after it (a block's `ln_1` and `c_attn`).
    fn ln_linear<T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(
        x: T3<D, T>,
        g: &T1<D>,
        b: &T1<D>,
        eps: f64,
        w: &T2<D>,
        bias: &T1<D>,
    ) -> T3<D, T> {
        Self::linear(Self::layer_norm(x, g, b, eps), w, bias)
    }

    /// The rest of a pre-LayerNorm block after its attention `y`, on the
    /// residual stream `x`: the output projection added onto `x`, then the
    /// MLP (`ln_2`, `c_fc` + GELU, `c_proj`) added onto that.
    fn block_tail<T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(
        x: T3<D, T>,
        y: T3<D, T>,
        blk: &Block<D>,
        eps: f64,
    ) -> T3<D, T> {
        let x = Self::linear_residual(x, y, &blk.attn_proj_w, &blk.attn_proj_b);
        let m = Self::layer_norm(x.retaped::<T>(), &blk.ln_2_g, &blk.ln_2_b, eps);
        let m = Self::linear_gelu(m, &blk.c_fc_w, &blk.c_fc_b);
        Self::linear_residual(x, m, &blk.mlp_proj_w, &blk.mlp_proj_b)
    }

    /// Token embeddings `(B*S, C)` plus the first `seq` rows of `wpe`,
    /// broadcast over the batch: `(B, S, C)`.
    fn add_positions<T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(
        tok: T2<D, T>,
        wpe: &T2<D>,
        batch: usize,
        seq: usize,
    ) -> T3<D, T> {
        plain::add_positions(tok, wpe, batch, seq)
    }

    /// The tied LM head: `x (N, C)` times `wteᵀ` gives `(N, V)` logits.
    fn lm_head<T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(x: T2<D, T>, wte: &T2<D>) -> T2<D, T> {
        plain::lm_head(x, wte)
    }

    /// Mean softmax cross-entropy of integer `targets` under `(N, V)` logits.
    fn cross_entropy<T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(
        logits: T2<D, T>,
        targets: Tensor<(usize,), usize, D>,
    ) -> Tensor<(), f32, D, T> {
        plain::cross_entropy(logits, targets)
    }
}

/// Which GELU an MLP applies: GPT-2's tanh approximation (`gelu_new`) or the
/// exact erf form (BERT's `gelu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gelu {
    Tanh,
    Erf,
}

/// The plain dfdx compositions of [`plain`], on any device.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

impl<D: Device<f32>> Ops<D> for Plain {}

/// The fused CPU kernels of [`super::fused`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Fused;

/// Which kernels a forward pass runs on, chosen once (from `model.fused`):
/// the plain reference or the device's fused ones ([`Kernels::Fused`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelSet {
    Plain,
    Fused,
}

impl From<bool> for KernelSet {
    /// `model.fused`: `true` is [`KernelSet::Fused`].
    fn from(fused: bool) -> Self {
        if fused {
            KernelSet::Fused
        } else {
            KernelSet::Plain
        }
    }
}

/// A device the model runs on: what [`KernelSet::Fused`] means there, and
/// host copies of parameters and gradients.
pub trait Kernels: Device<f32> {
    /// The device's fused kernels ([`Plain`] where it has none).
    type Fused: Ops<Self>;

    /// The gradient of parameter `t` as a host vector (zeros if it has none).
    /// The store may give its buffer up (the CPU moves it out, no copy):
    /// read each parameter's gradient once, after the backward pass.
    fn grad_to_host<S: Shape>(
        grads: &mut Gradients<f32, Self>,
        t: &Tensor<S, f32, Self>,
    ) -> Vec<f32> {
        match grads.get_or_alloc_mut(t) {
            Ok(_) => grads.get(t).as_vec(),
            Err(_) => vec![0.0; t.shape().num_elements()],
        }
    }

    /// The values of parameter `t` copied into the front of `buf`, which
    /// grows to fit (a buffer reused across parameters is allocated and
    /// zero-filled only when it grows); returns those `t.len()` elements.
    fn param_into_host<'a, S: Shape>(
        t: &Tensor<S, f32, Self>,
        buf: &'a mut Vec<f32>,
    ) -> &'a mut [f32] {
        let v = t.as_vec();
        grow_to(buf, v.len());
        buf[..v.len()].copy_from_slice(&v);
        &mut buf[..v.len()]
    }
}

/// Grows `buf` to at least `n` elements (never shrinks it).
fn grow_to(buf: &mut Vec<f32>, n: usize) {
    if buf.len() < n {
        buf.resize(n, 0.0);
    }
}

#[cfg(feature = "cuda")]
impl Kernels for Cuda {
    type Fused = Plain;
}

impl Kernels for Cpu {
    type Fused = Fused;

    fn grad_to_host<S: Shape>(
        grads: &mut Gradients<f32, Self>,
        t: &Tensor<S, f32, Self>,
    ) -> Vec<f32> {
        // The buffer itself, moved out of the store (no copy, so the step
        // never holds two copies of the gradients).
        match grads.get_or_alloc_mut(t) {
            Ok(g) => std::mem::take(g),
            Err(_) => vec![0.0; t.shape().num_elements()],
        }
    }

    fn param_into_host<'a, S: Shape>(
        t: &Tensor<S, f32, Self>,
        buf: &'a mut Vec<f32>,
    ) -> &'a mut [f32] {
        // One copy, straight from the tensor's storage.
        let n = t.shape().num_elements();
        grow_to(buf, n);
        t.copy_into(&mut buf[..n]);
        &mut buf[..n]
    }
}

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

    /// [`scores`] with the causal mask.
    pub fn causal_scores<D: Device<f32>, T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(
        qkv: T3<D, T>,
        n_head: usize,
    ) -> (T4<D, T>, T4<D, T>) {
        scores(qkv, n_head, true)
    }

    /// The per-head attention scores of the fused `(B, S, 3C)` projection,
    /// scaled (and causally masked when `causal`), `(B, H, S, S)`, and the
    /// values `(B, H, S, hd)`: what every plain attention variant (with or
    /// without dropout) starts from.
    pub fn scores<D: Device<f32>, T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(
        qkv: T3<D, T>,
        n_head: usize,
        causal: bool,
    ) -> (T4<D, T>, T4<D, T>) {
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
        if !causal {
            return (scores, v);
        }
        let mask: Tensor<(usize, usize), f32, D> =
            dev.upper_tri_like(&(s, s), f32::NEG_INFINITY, 1);
        (
            scores + mask.broadcast_like::<_, Axes2<0, 1>>(&(b, n_head, s, s)),
            v,
        )
    }

    /// Heads `(B, H, S, hd)` back to `(B, S, C)`.
    pub fn merge_heads<D: Device<f32>, T: Tape<f32, D>>(
        y: T4<D, T>,
        b: usize,
        s: usize,
        c: usize,
    ) -> T3<D, T> {
        y.permute::<_, Axes4<0, 2, 1, 3>>().reshape_like(&(b, s, c))
    }

    pub fn causal_attention<D: Device<f32>, T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(
        qkv: T3<D, T>,
        n_head: usize,
        keep_probs: bool,
    ) -> (T3<D, T>, Option<T4<D>>) {
        attention(qkv, n_head, true, keep_probs)
    }

    pub fn attention<D: Device<f32>, T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(
        qkv: T3<D, T>,
        n_head: usize,
        causal: bool,
        keep_probs: bool,
    ) -> (T3<D, T>, Option<T4<D>>) {
        let (b, s, c3) = *qkv.shape();
        let (scores, v) = self::scores(qkv, n_head, causal);
        let probs = scores.softmax::<Axis<3>>();
        let (probs, tape) = probs.split_tape();
        let kept = keep_probs.then(|| probs.clone());
        let y = probs.put_tape(tape).matmul(v); // (B,H,S,hd)
        (merge_heads(y, b, s, c3 / 3), kept)
    }

    /// `x @ w + b` over the last axis, `x: (B,S,I)`, `w: (I,O)`.
    pub fn linear<D: Device<f32>, T: Tape<f32, D> + Merge<NoneTape>>(
        x: T3<D, T>,
        w: &T2<D>,
        b: &T1<D>,
    ) -> T3<D, T> {
        let (bsz, s, _) = *x.shape();
        let o = w.shape().1;
        x.matmul(w.clone()) + b.clone().broadcast_like::<_, Axes2<0, 1>>(&(bsz, s, o))
    }

    pub fn gelu<D: Device<f32>, T: Tape<f32, D>>(x: T3<D, T>) -> T3<D, T> {
        x.fast_gelu()
    }

    /// The exact GELU, `x Φ(x)` (BERT's `gelu`). dfdx 0.13.0's
    /// `accurate_gelu` computes the value right but its derivative's `x φ(x)`
    /// term `sqrt(2)` too large; the added `k exp(-x²/2)`, minus the same
    /// value off the tape, is zero in value and takes exactly that excess
    /// off the gradient (`k = 1/sqrt(pi) - 1/sqrt(2 pi)`); the exact GELU's
    /// derivative is checked against f64 in `tests/mlm_model.rs`.
    pub fn gelu_erf<D: Device<f32>, T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(
        x: T3<D, T>,
    ) -> T3<D, T> {
        const K: f32 = 0.564_189_6 - 0.398_942_3;
        let bump = (x.retaped::<T>().square() * -0.5).exp() * K;
        // A new tensor (`negate` gives it its own id): a copy would share
        // `bump`'s id, and its gradient would cancel `bump`'s.
        let minus_bump = bump.retaped::<NoneTape>().negate();
        x.accurate_gelu() + bump + minus_bump
    }

    pub fn linear_gelu<D: Device<f32>, T: Tape<f32, D> + Merge<NoneTape>>(
        x: T3<D, T>,
        w: &T2<D>,
        b: &T1<D>,
    ) -> T3<D, T> {
        gelu(linear(x, w, b))
    }

    pub fn linear_act<D: Device<f32>, T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(
        x: T3<D, T>,
        w: &T2<D>,
        b: &T1<D>,
        act: Gelu,
    ) -> T3<D, T> {
        match act {
            Gelu::Tanh => gelu(linear(x, w, b)),
            Gelu::Erf => gelu_erf(linear(x, w, b)),
        }
    }

    pub fn linear_residual<D: Device<f32>, T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(
        res: T3<D, T>,
        x: T3<D, T>,
        w: &T2<D>,
        b: &T1<D>,
    ) -> T3<D, T> {
        res + linear(x, w, b)
    }

    pub fn add_positions<D: Device<f32>, T: Tape<f32, D> + Merge<NoneTape>>(
        tok: T2<D, T>,
        wpe: &T2<D>,
        batch: usize,
        seq: usize,
    ) -> T3<D, T> {
        let c = tok.shape().1;
        let pos = wpe
            .clone()
            .retaped::<T>()
            .slice((0..seq, ..))
            .broadcast_like::<_, Axis<0>>(&(batch, seq, c));
        tok.reshape_like(&(batch, seq, c)) + pos
    }

    pub fn lm_head<D: Device<f32>, T: Tape<f32, D> + Merge<T>>(
        x: T2<D, T>,
        wte: &T2<D>,
    ) -> T2<D, T> {
        x.matmul(wte.clone().retaped::<T>().permute::<_, Axes2<1, 0>>())
    }

    pub fn cross_entropy<D: Device<f32>, T: Tape<f32, D>>(
        logits: T2<D, T>,
        targets: Tensor<(usize,), usize, D>,
    ) -> Tensor<(), f32, D, T> {
        let picked: Tensor<(usize,), f32, D, T> = logits.log_softmax::<Axis<1>>().select(targets);
        picked.mean().negate()
    }
}
