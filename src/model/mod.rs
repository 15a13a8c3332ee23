//! The GPT-2-layout decoder on dfdx 0.13.0 with runtime sizes.
//!
//! dfdx 0.13.0 gives its built-in layers const-generic widths; headsup instead
//! holds every parameter as a runtime-shaped tensor (`(usize,)` or
//! `(usize, usize)`) and writes the blocks itself, so any size a config names
//! works: `n_embd` divisible by `n_head`, any `n_layer`, `block_size`, vocab.
//! Weights are stored in GPT-2's Conv1D layout, `[in, out]`, so `x.matmul(w)`
//! needs no transpose and the checkpoint is written as is.

pub mod checkpoint;
pub mod dropout;
pub mod fused;
pub mod infer;
pub mod kernels;
pub mod pretrained;
pub mod sample;

use dfdx::prelude::*;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

pub use kernels::Kernels;

pub type T1<D, T = NoneTape> = Tensor<(usize,), f32, D, T>;
pub type T2<D, T = NoneTape> = Tensor<(usize, usize), f32, D, T>;
pub type T3<D, T = NoneTape> = Tensor<(usize, usize, usize), f32, D, T>;
pub type T4<D, T = NoneTape> = Tensor<(usize, usize, usize, usize), f32, D, T>;

/// The sizes of a model (GPT2Config's core keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GptConfig {
    pub vocab_size: usize,
    pub n_positions: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
}

impl GptConfig {
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head
    }
    /// Number of parameters (the LM head is tied to `wte`).
    pub fn n_params(&self) -> usize {
        let c = self.n_embd;
        let per_block = 2 * c
            + (c * 3 * c + 3 * c)
            + (c * c + c)
            + 2 * c
            + (c * 4 * c + 4 * c)
            + (4 * c * c + c);
        self.vocab_size * c + self.n_positions * c + self.n_layer * per_block + 2 * c
    }
}

pub const LN_EPS: f64 = 1e-5;

/// One transformer block: pre-LayerNorm attention and MLP, GPT-2 names in comments.
#[derive(Debug, Clone)]
pub struct Block<D: Storage<f32>> {
    pub ln_1_g: T1<D>,
    pub ln_1_b: T1<D>,
    /// `attn.c_attn`: `[C, 3C]`, fused q/k/v.
    pub c_attn_w: T2<D>,
    pub c_attn_b: T1<D>,
    /// `attn.c_proj`: `[C, C]`.
    pub attn_proj_w: T2<D>,
    pub attn_proj_b: T1<D>,
    pub ln_2_g: T1<D>,
    pub ln_2_b: T1<D>,
    /// `mlp.c_fc`: `[C, 4C]`.
    pub c_fc_w: T2<D>,
    pub c_fc_b: T1<D>,
    /// `mlp.c_proj`: `[4C, C]`.
    pub mlp_proj_w: T2<D>,
    pub mlp_proj_b: T1<D>,
}

/// The whole model. Cloning shares the buffers (cheap snapshot).
#[derive(Debug, Clone)]
pub struct Gpt<D: Storage<f32>> {
    pub cfg: GptConfig,
    pub wte: T2<D>,
    pub wpe: T2<D>,
    pub blocks: Vec<Block<D>>,
    pub ln_f_g: T1<D>,
    pub ln_f_b: T1<D>,
}

/// A borrowed parameter of either rank, for generic visiting.
pub enum ParamRef<'a, D: Storage<f32>> {
    One(&'a T1<D>),
    Two(&'a T2<D>),
}

pub enum ParamMut<'a, D: Storage<f32>> {
    One(&'a mut T1<D>),
    Two(&'a mut T2<D>),
}

impl<D: Storage<f32>> ParamRef<'_, D> {
    pub fn shape(&self) -> Vec<usize> {
        match self {
            ParamRef::One(t) => vec![t.shape().0],
            ParamRef::Two(t) => vec![t.shape().0, t.shape().1],
        }
    }
    pub fn to_vec(&self) -> Vec<f32> {
        match self {
            ParamRef::One(t) => t.as_vec(),
            ParamRef::Two(t) => t.as_vec(),
        }
    }
}

impl<D: Device<f32>> ParamMut<'_, D> {
    pub fn shape(&self) -> Vec<usize> {
        match self {
            ParamMut::One(t) => vec![t.shape().0],
            ParamMut::Two(t) => vec![t.shape().0, t.shape().1],
        }
    }
    pub fn copy_from(&mut self, v: &[f32]) {
        match self {
            ParamMut::One(t) => t.copy_from(v),
            ParamMut::Two(t) => t.copy_from(v),
        }
    }
}

/// What one forward pass gives back besides the output.
pub struct ForwardOut<D: Storage<f32>, T> {
    /// `(B*T, V)` logits.
    pub logits: T2<D, T>,
    /// When asked for: per layer, `(B, H, T, T)` attention probabilities.
    pub attention: Vec<T4<D>>,
}

impl<D: Device<f32>> Gpt<D> {
    /// Initialisation from `seed` (host RNG, so CPU and GPU start alike), as
    /// the PyTorch reference (`ref_gpt.py`) does it: every weight matrix and
    /// embedding N(0, 0.02), biases 0, LayerNorm gains 1. (GPT-2 and nanoGPT
    /// also shrink the residual projections to 0.02/sqrt(2L); on the
    /// tinyshakespeare baby config, seed 1337, that ended at val loss 1.896
    /// against 1.874 without it, so headsup follows the reference.)
    pub fn new(dev: &D, cfg: GptConfig, seed: u64) -> Self {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let c = cfg.n_embd;
        let std = 0.02f32;
        let proj_std = std;
        let mut normal2 = |rows: usize, cols: usize, s: f32| -> T2<D> {
            let n = Normal::new(0.0f32, s).expect("std is positive");
            let v: Vec<f32> = (0..rows * cols).map(|_| n.sample(&mut rng)).collect();
            dev.tensor_from_vec(v, (rows, cols))
        };
        let wte = normal2(cfg.vocab_size, c, std);
        let wpe = normal2(cfg.n_positions, c, std);
        let mut blocks = Vec::with_capacity(cfg.n_layer);
        for _ in 0..cfg.n_layer {
            let c_attn_w = normal2(c, 3 * c, std);
            let attn_proj_w = normal2(c, c, proj_std);
            let c_fc_w = normal2(c, 4 * c, std);
            let mlp_proj_w = normal2(4 * c, c, proj_std);
            blocks.push(Block {
                ln_1_g: ones1(dev, c),
                ln_1_b: zeros1(dev, c),
                c_attn_w,
                c_attn_b: zeros1(dev, 3 * c),
                attn_proj_w,
                attn_proj_b: zeros1(dev, c),
                ln_2_g: ones1(dev, c),
                ln_2_b: zeros1(dev, c),
                c_fc_w,
                c_fc_b: zeros1(dev, 4 * c),
                mlp_proj_w,
                mlp_proj_b: zeros1(dev, c),
            });
        }
        Gpt {
            cfg,
            wte,
            wpe,
            blocks,
            ln_f_g: ones1(dev, c),
            ln_f_b: zeros1(dev, c),
        }
    }

    pub fn device(&self) -> D {
        self.wte.device().clone()
    }

    /// Forward pass over `tokens` (`batch * seq` ids, row-major), returning
    /// logits, and the attention probabilities of every layer when `keep_attention`.
    /// `wte` is the token embedding carrying the tape to record on (use
    /// [`Gpt::forward_inference`] or [`Gpt::forward_train`]).
    fn forward_with<T>(
        &self,
        wte: T2<D, T>,
        tokens: &[usize],
        batch: usize,
        seq: usize,
        keep_attention: bool,
        fused: bool,
    ) -> ForwardOut<D, T>
    where
        T: Tape<f32, D> + Merge<T> + Merge<NoneTape>,
        D: Kernels,
    {
        let dev = self.device();
        let c = self.cfg.n_embd;
        let h = self.cfg.n_head;
        assert!(
            seq <= self.cfg.n_positions,
            "sequence longer than n_positions"
        );
        assert_eq!(tokens.len(), batch * seq, "token count must be batch * seq");
        let idx: Tensor<(usize,), usize, D> = dev.tensor_from_vec(tokens.to_vec(), (batch * seq,));
        let tok = D::embedding(wte, idx, fused); // (B*S, C)
        let mut x: T3<D, T> = D::add_positions(tok, &self.wpe, batch, seq, fused);
        let mut attention = Vec::new();
        for blk in &self.blocks {
            let a = D::layer_norm(x.retaped::<T>(), &blk.ln_1_g, &blk.ln_1_b, LN_EPS, fused);
            let qkv = D::linear(a, &blk.c_attn_w, &blk.c_attn_b, fused); // (B,S,3C)
            let (y, probs) = D::causal_attention(qkv, h, keep_attention, fused); // (B,S,C)
            if let Some(p) = probs {
                attention.push(p);
            }
            x = D::linear_residual(x, y, &blk.attn_proj_w, &blk.attn_proj_b, fused);
            let m = D::layer_norm(x.retaped::<T>(), &blk.ln_2_g, &blk.ln_2_b, LN_EPS, fused);
            let m = D::linear_gelu(m, &blk.c_fc_w, &blk.c_fc_b, fused);
            x = D::linear_residual(x, m, &blk.mlp_proj_w, &blk.mlp_proj_b, fused);
        }
        let x = D::layer_norm(x, &self.ln_f_g, &self.ln_f_b, LN_EPS, fused);
        let x: T2<D, T> = x.reshape_like(&(batch * seq, c));
        let logits = D::lm_head(x, &self.wte, fused);
        ForwardOut { logits, attention }
    }

    /// Forward without gradients.
    pub fn forward_inference(
        &self,
        tokens: &[usize],
        batch: usize,
        seq: usize,
        keep_attention: bool,
        fused: bool,
    ) -> ForwardOut<D, NoneTape>
    where
        D: Kernels,
    {
        self.forward_with(self.wte.clone(), tokens, batch, seq, keep_attention, fused)
    }

    /// Mean cross-entropy of `targets` under the model, with gradients recorded.
    /// Returns the loss tensor (call `.backward()`), with `grads` as the tape's store.
    pub fn loss_train(
        &self,
        tokens: &[usize],
        targets: &[usize],
        batch: usize,
        seq: usize,
        grads: Gradients<f32, D>,
        fused: bool,
    ) -> Tensor<(), f32, D, OwnedTape<f32, D>>
    where
        D: Kernels,
    {
        let wte = self.wte.clone().traced(grads);
        let out = self.forward_with(wte, tokens, batch, seq, false, fused);
        let dev = self.device();
        let tgt: Tensor<(usize,), usize, D> =
            dev.tensor_from_vec(targets.to_vec(), (targets.len(),));
        D::cross_entropy(out.logits, tgt, fused)
    }

    /// Mean cross-entropy without gradients.
    pub fn loss(
        &self,
        tokens: &[usize],
        targets: &[usize],
        batch: usize,
        seq: usize,
        fused: bool,
    ) -> f32
    where
        D: Kernels,
    {
        let out = self.forward_inference(tokens, batch, seq, false, fused);
        let dev = self.device();
        let tgt: Tensor<(usize,), usize, D> =
            dev.tensor_from_vec(targets.to_vec(), (targets.len(),));
        D::cross_entropy(out.logits, tgt, fused).as_vec()[0]
    }

    /// A fresh gradient store. (dfdx 0.13 keeps tensor ids private, so the
    /// store is "leaky": it also holds intermediate gradients until dropped,
    /// which happens after every optimizer step.)
    pub fn alloc_grads(&self) -> Gradients<f32, D> {
        Gradients::leaky()
    }
}

impl<D: Storage<f32>> Gpt<D> {
    /// Visits every parameter with its GPT-2 (Hugging Face) name, in a fixed order.
    pub fn visit<'a>(&'a self, mut f: impl FnMut(String, ParamRef<'a, D>)) {
        f("transformer.wte.weight".into(), ParamRef::Two(&self.wte));
        f("transformer.wpe.weight".into(), ParamRef::Two(&self.wpe));
        for (i, b) in self.blocks.iter().enumerate() {
            let p = format!("transformer.h.{i}.");
            f(format!("{p}ln_1.weight"), ParamRef::One(&b.ln_1_g));
            f(format!("{p}ln_1.bias"), ParamRef::One(&b.ln_1_b));
            f(format!("{p}attn.c_attn.weight"), ParamRef::Two(&b.c_attn_w));
            f(format!("{p}attn.c_attn.bias"), ParamRef::One(&b.c_attn_b));
            f(
                format!("{p}attn.c_proj.weight"),
                ParamRef::Two(&b.attn_proj_w),
            );
            f(
                format!("{p}attn.c_proj.bias"),
                ParamRef::One(&b.attn_proj_b),
            );
            f(format!("{p}ln_2.weight"), ParamRef::One(&b.ln_2_g));
            f(format!("{p}ln_2.bias"), ParamRef::One(&b.ln_2_b));
            f(format!("{p}mlp.c_fc.weight"), ParamRef::Two(&b.c_fc_w));
            f(format!("{p}mlp.c_fc.bias"), ParamRef::One(&b.c_fc_b));
            f(
                format!("{p}mlp.c_proj.weight"),
                ParamRef::Two(&b.mlp_proj_w),
            );
            f(format!("{p}mlp.c_proj.bias"), ParamRef::One(&b.mlp_proj_b));
        }
        f(
            "transformer.ln_f.weight".into(),
            ParamRef::One(&self.ln_f_g),
        );
        f("transformer.ln_f.bias".into(), ParamRef::One(&self.ln_f_b));
    }

    /// Mutable visit in the same order as [`Gpt::visit`].
    pub fn visit_mut(&mut self, mut f: impl FnMut(String, ParamMut<'_, D>)) {
        f(
            "transformer.wte.weight".into(),
            ParamMut::Two(&mut self.wte),
        );
        f(
            "transformer.wpe.weight".into(),
            ParamMut::Two(&mut self.wpe),
        );
        for (i, b) in self.blocks.iter_mut().enumerate() {
            let p = format!("transformer.h.{i}.");
            f(format!("{p}ln_1.weight"), ParamMut::One(&mut b.ln_1_g));
            f(format!("{p}ln_1.bias"), ParamMut::One(&mut b.ln_1_b));
            f(
                format!("{p}attn.c_attn.weight"),
                ParamMut::Two(&mut b.c_attn_w),
            );
            f(
                format!("{p}attn.c_attn.bias"),
                ParamMut::One(&mut b.c_attn_b),
            );
            f(
                format!("{p}attn.c_proj.weight"),
                ParamMut::Two(&mut b.attn_proj_w),
            );
            f(
                format!("{p}attn.c_proj.bias"),
                ParamMut::One(&mut b.attn_proj_b),
            );
            f(format!("{p}ln_2.weight"), ParamMut::One(&mut b.ln_2_g));
            f(format!("{p}ln_2.bias"), ParamMut::One(&mut b.ln_2_b));
            f(format!("{p}mlp.c_fc.weight"), ParamMut::Two(&mut b.c_fc_w));
            f(format!("{p}mlp.c_fc.bias"), ParamMut::One(&mut b.c_fc_b));
            f(
                format!("{p}mlp.c_proj.weight"),
                ParamMut::Two(&mut b.mlp_proj_w),
            );
            f(
                format!("{p}mlp.c_proj.bias"),
                ParamMut::One(&mut b.mlp_proj_b),
            );
        }
        f(
            "transformer.ln_f.weight".into(),
            ParamMut::One(&mut self.ln_f_g),
        );
        f(
            "transformer.ln_f.bias".into(),
            ParamMut::One(&mut self.ln_f_b),
        );
    }

    /// All parameters as host vectors with names and shapes (checkpoints, snapshots).
    pub fn to_host(&self) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let mut out = Vec::new();
        self.visit(|name, p| out.push((name, p.shape(), p.to_vec())));
        out
    }
}

fn ones1<D: Device<f32>>(dev: &D, n: usize) -> T1<D> {
    dev.tensor_from_vec(vec![1.0; n], (n,))
}

fn zeros1<D: Device<f32>>(dev: &D, n: usize) -> T1<D> {
    dev.tensor_from_vec(vec![0.0; n], (n,))
}

impl<D: Device<f32>> Gpt<D> {
    /// Keeps the first `n` positions of the position table (nanoGPT's
    /// `crop_block_size`): a checkpoint fine-tuned on shorter windows.
    /// `n` at least the current `n_positions` changes nothing.
    pub fn crop_positions(&mut self, n: usize) {
        if n == 0 || n >= self.cfg.n_positions {
            return;
        }
        let c = self.cfg.n_embd;
        let mut rows = self.wpe.as_vec();
        rows.truncate(n * c);
        self.wpe = self.device().tensor_from_vec(rows, (n, c));
        self.cfg.n_positions = n;
    }
}
