//! The GPT-2-layout decoder on dfdx 0.13.0 with runtime sizes.
//!
//! dfdx 0.13.0 gives its built-in layers const-generic widths; headsup instead
//! holds every parameter as a runtime-shaped tensor (`(usize,)` or
//! `(usize, usize)`) and writes the blocks itself, so any size a config names
//! works: `n_embd` divisible by `n_head`, any `n_layer`, `block_size`, vocab.
//! Weights are stored in GPT-2's Conv1D layout, `[in, out]`, so `x.matmul(w)`
//! needs no transpose and the checkpoint is written as is.

pub mod bert;
pub mod bert_io;
pub mod checkpoint;
pub mod dropout;
pub mod fused;
pub mod infer;
pub mod kernels;
pub mod pretrained;
pub mod sample;
pub mod score;
pub mod simd;

use dfdx::prelude::*;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

pub use kernels::{Fused, KernelSet, Kernels, Ops, Plain};

pub type T1<D, T = NoneTape> = Tensor<(usize,), f32, D, T>;
pub type T2<D, T = NoneTape> = Tensor<(usize, usize), f32, D, T>;
pub type T3<D, T = NoneTape> = Tensor<(usize, usize, usize), f32, D, T>;
pub type T4<D, T = NoneTape> = Tensor<(usize, usize, usize, usize), f32, D, T>;

/// The sizes of a model and its LayerNorm epsilon (GPT2Config's core keys).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GptConfig {
    pub vocab_size: usize,
    pub n_positions: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    /// Added to the variance in every LayerNorm (GPT-2: 1e-5).
    #[serde(default = "default_layer_norm_epsilon")]
    pub layer_norm_epsilon: f64,
}

/// GPT-2's LayerNorm epsilon, the default of `model.layer_norm_epsilon` and of
/// a `config.json` without the key.
pub const DEFAULT_LAYER_NORM_EPSILON: f64 = 1e-5;

fn default_layer_norm_epsilon() -> f64 {
    DEFAULT_LAYER_NORM_EPSILON
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

/// The GPT-2 (Hugging Face) parameter names, written once: the model's
/// [`Gpt::visit`] / [`Gpt::visit_mut`], the checkpoints and the optimizer state
/// take them from here, and the host inference model shares the block layout.
pub mod names {
    pub const WTE: &str = "transformer.wte.weight";
    pub const WPE: &str = "transformer.wpe.weight";
    pub const LN_F_WEIGHT: &str = "transformer.ln_f.weight";
    pub const LN_F_BIAS: &str = "transformer.ln_f.bias";
    /// A block's parameters under `transformer.h.{i}.`, in the order of
    /// [`super::BlockOf::params`].
    pub const BLOCK: [&str; 12] = [
        "ln_1.weight",
        "ln_1.bias",
        "attn.c_attn.weight",
        "attn.c_attn.bias",
        "attn.c_proj.weight",
        "attn.c_proj.bias",
        "ln_2.weight",
        "ln_2.bias",
        "mlp.c_fc.weight",
        "mlp.c_fc.bias",
        "mlp.c_proj.weight",
        "mlp.c_proj.bias",
    ];

    /// The full name of parameter `name` (one of [`BLOCK`]) of block `i`.
    pub fn block(i: usize, name: &str) -> String {
        format!("transformer.h.{i}.{name}")
    }
}

/// One transformer block's parameters (pre-LayerNorm attention and MLP),
/// generic over how a vector (`V1`) and a matrix (`V2`) are held: dfdx
/// tensors in [`Block`], host vectors in the inference model. Matrices are in
/// GPT-2's Conv1D layout `[in, out]`.
#[derive(Debug, Clone)]
pub struct BlockOf<V1, V2> {
    pub ln_1_g: V1,
    pub ln_1_b: V1,
    /// `attn.c_attn`: `[C, 3C]`, fused q/k/v.
    pub c_attn_w: V2,
    pub c_attn_b: V1,
    /// `attn.c_proj`: `[C, C]`.
    pub attn_proj_w: V2,
    pub attn_proj_b: V1,
    pub ln_2_g: V1,
    pub ln_2_b: V1,
    /// `mlp.c_fc`: `[C, 4C]`.
    pub c_fc_w: V2,
    pub c_fc_b: V1,
    /// `mlp.c_proj`: `[4C, C]`.
    pub mlp_proj_w: V2,
    pub mlp_proj_b: V1,
}

/// A block of dfdx tensors.
pub type Block<D> = BlockOf<T1<D>, T2<D>>;

/// A parameter of either rank.
pub enum Param<V1, V2> {
    One(V1),
    Two(V2),
}

impl<V1, V2> BlockOf<V1, V2> {
    /// The parameters with their names ([`names::BLOCK`]), in checkpoint order.
    pub fn params(&self) -> [(&'static str, Param<&V1, &V2>); 12] {
        let p = [
            Param::One(&self.ln_1_g),
            Param::One(&self.ln_1_b),
            Param::Two(&self.c_attn_w),
            Param::One(&self.c_attn_b),
            Param::Two(&self.attn_proj_w),
            Param::One(&self.attn_proj_b),
            Param::One(&self.ln_2_g),
            Param::One(&self.ln_2_b),
            Param::Two(&self.c_fc_w),
            Param::One(&self.c_fc_b),
            Param::Two(&self.mlp_proj_w),
            Param::One(&self.mlp_proj_b),
        ];
        let mut i = 0;
        p.map(|x| {
            i += 1;
            (names::BLOCK[i - 1], x)
        })
    }

    /// [`BlockOf::params`], mutable.
    pub fn params_mut(&mut self) -> [(&'static str, Param<&mut V1, &mut V2>); 12] {
        let p = [
            Param::One(&mut self.ln_1_g),
            Param::One(&mut self.ln_1_b),
            Param::Two(&mut self.c_attn_w),
            Param::One(&mut self.c_attn_b),
            Param::Two(&mut self.attn_proj_w),
            Param::One(&mut self.attn_proj_b),
            Param::One(&mut self.ln_2_g),
            Param::One(&mut self.ln_2_b),
            Param::Two(&mut self.c_fc_w),
            Param::One(&mut self.c_fc_b),
            Param::Two(&mut self.mlp_proj_w),
            Param::One(&mut self.mlp_proj_b),
        ];
        let mut i = 0;
        p.map(|x| {
            i += 1;
            (names::BLOCK[i - 1], x)
        })
    }

    /// The same block with every vector through `f1` and matrix through `f2`.
    pub fn map<W1, W2>(&self, f1: impl Fn(&V1) -> W1, f2: impl Fn(&V2) -> W2) -> BlockOf<W1, W2> {
        BlockOf {
            ln_1_g: f1(&self.ln_1_g),
            ln_1_b: f1(&self.ln_1_b),
            c_attn_w: f2(&self.c_attn_w),
            c_attn_b: f1(&self.c_attn_b),
            attn_proj_w: f2(&self.attn_proj_w),
            attn_proj_b: f1(&self.attn_proj_b),
            ln_2_g: f1(&self.ln_2_g),
            ln_2_b: f1(&self.ln_2_b),
            c_fc_w: f2(&self.c_fc_w),
            c_fc_b: f1(&self.c_fc_b),
            mlp_proj_w: f2(&self.mlp_proj_w),
            mlp_proj_b: f1(&self.mlp_proj_b),
        }
    }
}

/// The whole model. Cloning shares the buffers (cheap snapshot).
#[derive(Debug, Clone)]
pub struct Gpt<D: Storage<f32>> {
    pub cfg: GptConfig,
    /// Dropout in training (GPT-2's embd/attn/resid_pdrop); never in
    /// evaluation, generation or probes.
    pub dropout: dropout::Dropout,
    pub wte: T2<D>,
    pub wpe: T2<D>,
    pub blocks: Vec<Block<D>>,
    pub ln_f_g: T1<D>,
    pub ln_f_b: T1<D>,
    /// `Some` for a BERT encoder with the MLM head (`model.arch = "bert"`):
    /// its extra parameters; the shared ones change meaning ([`bert`]).
    pub bert: Option<bert::BertParts<D>>,
}

/// A borrowed parameter of either rank, for generic visiting.
pub type ParamRef<'a, D> = Param<&'a T1<D>, &'a T2<D>>;

/// A mutably borrowed parameter of either rank.
pub type ParamMut<'a, D> = Param<&'a mut T1<D>, &'a mut T2<D>>;

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
            dropout: dropout::Dropout::default(),
            wte,
            wpe,
            blocks,
            ln_f_g: ones1(dev, c),
            ln_f_b: zeros1(dev, c),
            bert: None,
        }
    }

    pub fn device(&self) -> D {
        self.wte.device().clone()
    }

    /// Forward pass over `tokens` (`batch * seq` ids, row-major) on the
    /// kernels `K`, returning logits, and the attention probabilities of every
    /// layer when `keep_attention`. `wte` is the token embedding carrying the
    /// tape to record on (see [`Gpt::forward_inference`] and [`Gpt::loss_train`]).
    /// `positions` (BERT only): the flat positions the head runs at.
    #[allow(clippy::too_many_arguments)]
    fn forward_with<K, T>(
        &self,
        wte: T2<D, T>,
        tokens: &[usize],
        batch: usize,
        seq: usize,
        keep_attention: bool,
        mut drop: Option<&mut dropout::DropoutMasks>,
        positions: Option<&[usize]>,
    ) -> ForwardOut<D, T>
    where
        K: Ops<D>,
        T: Tape<f32, D> + Merge<T> + Merge<NoneTape>,
    {
        if let Some(b) = &self.bert {
            assert!(
                seq <= self.cfg.n_positions,
                "sequence longer than n_positions"
            );
            assert_eq!(tokens.len(), batch * seq, "token count must be batch * seq");
            return bert::forward::<D, K, T>(
                self,
                b,
                wte,
                tokens,
                batch,
                seq,
                keep_attention,
                positions,
            );
        }
        let dev = self.device();
        let c = self.cfg.n_embd;
        let h = self.cfg.n_head;
        assert!(
            seq <= self.cfg.n_positions,
            "sequence longer than n_positions"
        );
        assert_eq!(tokens.len(), batch * seq, "token count must be batch * seq");
        let idx: Tensor<(usize,), usize, D> = dev.tensor_from_vec(tokens.to_vec(), (batch * seq,));
        let eps = self.cfg.layer_norm_epsilon;
        let tok = K::embedding(wte, idx); // (B*S, C)
        let mut x: T3<D, T> = K::add_positions(tok, &self.wpe, batch, seq);
        let bsc = (batch, seq, c);
        // Dropout (training only): the masked sites use the plain composition
        // with masks drawn on the host, the same on every kernel set.
        if let Some(m) = drop.as_mut().and_then(|d| d.embd(&dev, bsc)) {
            x = x * m;
        }
        let mut attention = Vec::new();
        for blk in &self.blocks {
            let (g, b) = (&blk.ln_1_g, &blk.ln_1_b);
            let qkv = K::ln_linear(x.retaped::<T>(), g, b, eps, &blk.c_attn_w, &blk.c_attn_b); // (B,S,3C)
            let y = match drop
                .as_mut()
                .and_then(|d| d.attn(&dev, (batch, h, seq, seq)))
            {
                Some(mask) => dropout::causal_attention_dropped(qkv, h, mask),
                None => {
                    let (y, probs) = K::causal_attention(qkv, h, keep_attention); // (B,S,C)
                    if let Some(p) = probs {
                        attention.push(p);
                    }
                    y
                }
            };
            let Some(d) = drop.as_mut() else {
                // No dropout: the rest of the block as one op.
                x = K::block_tail(x, y, blk, eps);
                continue;
            };
            x = match d.resid(&dev, bsc) {
                Some(mask) => x + K::linear(y, &blk.attn_proj_w, &blk.attn_proj_b) * mask,
                None => K::linear_residual(x, y, &blk.attn_proj_w, &blk.attn_proj_b),
            };
            let m = K::layer_norm(x.retaped::<T>(), &blk.ln_2_g, &blk.ln_2_b, eps);
            let m = K::linear_gelu(m, &blk.c_fc_w, &blk.c_fc_b);
            x = match d.resid(&dev, bsc) {
                Some(mask) => x + K::linear(m, &blk.mlp_proj_w, &blk.mlp_proj_b) * mask,
                None => K::linear_residual(x, m, &blk.mlp_proj_w, &blk.mlp_proj_b),
            };
        }
        let x = K::layer_norm(x, &self.ln_f_g, &self.ln_f_b, eps);
        let x: T2<D, T> = x.reshape_like(&(batch * seq, c));
        let logits = K::lm_head(x, &self.wte);
        ForwardOut { logits, attention }
    }

    /// Forward without gradients, on the kernels `kernels` names (a
    /// [`KernelSet`], or `model.fused` as a bool).
    pub fn forward_inference(
        &self,
        tokens: &[usize],
        batch: usize,
        seq: usize,
        keep_attention: bool,
        kernels: impl Into<KernelSet>,
    ) -> ForwardOut<D, NoneTape>
    where
        D: Kernels,
    {
        let wte = self.wte.clone();
        match kernels.into() {
            KernelSet::Plain => {
                self.forward_with::<Plain, _>(wte, tokens, batch, seq, keep_attention, None, None)
            }
            KernelSet::Fused => self.forward_with::<D::Fused, _>(
                wte,
                tokens,
                batch,
                seq,
                keep_attention,
                None,
                None,
            ),
        }
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
        kernels: impl Into<KernelSet>,
    ) -> Tensor<(), f32, D, OwnedTape<f32, D>>
    where
        D: Kernels,
    {
        self.loss_train_dropped(tokens, targets, batch, seq, grads, kernels, None)
    }

    /// [`Gpt::loss_train`] with dropout masks (`None`: no dropout).
    #[allow(clippy::too_many_arguments)]
    pub fn loss_train_dropped(
        &self,
        tokens: &[usize],
        targets: &[usize],
        batch: usize,
        seq: usize,
        grads: Gradients<f32, D>,
        kernels: impl Into<KernelSet>,
        drop: Option<&mut dropout::DropoutMasks>,
    ) -> Tensor<(), f32, D, OwnedTape<f32, D>>
    where
        D: Kernels,
    {
        let wte = self.wte.clone().traced(grads);
        match kernels.into() {
            KernelSet::Plain => {
                self.loss_with::<Plain, _>(wte, tokens, targets, batch, seq, drop, None)
            }
            KernelSet::Fused => {
                self.loss_with::<D::Fused, _>(wte, tokens, targets, batch, seq, drop, None)
            }
        }
    }

    /// Mean cross-entropy without gradients.
    pub fn loss(
        &self,
        tokens: &[usize],
        targets: &[usize],
        batch: usize,
        seq: usize,
        kernels: impl Into<KernelSet>,
    ) -> f32
    where
        D: Kernels,
    {
        let wte = self.wte.clone();
        let loss = match kernels.into() {
            KernelSet::Plain => {
                self.loss_with::<Plain, _>(wte, tokens, targets, batch, seq, None, None)
            }
            KernelSet::Fused => {
                self.loss_with::<D::Fused, _>(wte, tokens, targets, batch, seq, None, None)
            }
        };
        loss.as_vec()[0]
    }

    /// Mean cross-entropy of `targets` on the kernels `K`, recorded on `wte`'s tape.
    #[allow(clippy::too_many_arguments)]
    fn loss_with<K, T>(
        &self,
        wte: T2<D, T>,
        tokens: &[usize],
        targets: &[usize],
        batch: usize,
        seq: usize,
        drop: Option<&mut dropout::DropoutMasks>,
        positions: Option<&[usize]>,
    ) -> Tensor<(), f32, D, T>
    where
        K: Ops<D>,
        T: Tape<f32, D> + Merge<T> + Merge<NoneTape>,
    {
        let out = self.forward_with::<K, T>(wte, tokens, batch, seq, false, drop, positions);
        let tgt: Tensor<(usize,), usize, D> = self
            .device()
            .tensor_from_vec(targets.to_vec(), (targets.len(),));
        K::cross_entropy(out.logits, tgt)
    }

    /// Masked-LM loss with gradients recorded: the mean cross-entropy of
    /// `targets` at the flat `positions` (one target each) of the
    /// `batch * seq` `tokens`, the masked inputs. A BERT model's
    /// objective; its head runs at those positions only.
    #[allow(clippy::too_many_arguments)]
    pub fn mlm_loss_train(
        &self,
        tokens: &[usize],
        positions: &[usize],
        targets: &[usize],
        batch: usize,
        seq: usize,
        grads: Gradients<f32, D>,
        kernels: impl Into<KernelSet>,
    ) -> Tensor<(), f32, D, OwnedTape<f32, D>>
    where
        D: Kernels,
    {
        assert_eq!(positions.len(), targets.len(), "one target per position");
        let wte = self.wte.clone().traced(grads);
        let p = Some(positions);
        match kernels.into() {
            KernelSet::Plain => {
                self.loss_with::<Plain, _>(wte, tokens, targets, batch, seq, None, p)
            }
            KernelSet::Fused => {
                self.loss_with::<D::Fused, _>(wte, tokens, targets, batch, seq, None, p)
            }
        }
    }

    /// Logits `(positions.len(), V)` at the flat `positions` without
    /// gradients (masked-LM evaluation and filling).
    pub fn logits_at(
        &self,
        tokens: &[usize],
        positions: &[usize],
        batch: usize,
        seq: usize,
        kernels: impl Into<KernelSet>,
    ) -> T2<D>
    where
        D: Kernels,
    {
        let wte = self.wte.clone();
        let p = Some(positions);
        match kernels.into() {
            KernelSet::Plain => {
                self.forward_with::<Plain, _>(wte, tokens, batch, seq, false, None, p)
            }
            KernelSet::Fused => {
                self.forward_with::<D::Fused, _>(wte, tokens, batch, seq, false, None, p)
            }
        }
        .logits
    }

    /// A fresh gradient store. (dfdx 0.13 keeps tensor ids private, so the
    /// store is "leaky": it also holds intermediate gradients until dropped,
    /// which happens after every optimizer step.)
    pub fn alloc_grads(&self) -> Gradients<f32, D> {
        Gradients::leaky()
    }
}

impl<D: Storage<f32>> Gpt<D> {
    /// Visits every parameter with its GPT-2 (Hugging Face) name ([`names`]),
    /// in a fixed order: `wte`, `wpe`, each block's, `ln_f`'s.
    /// A BERT model visits its `BertForMaskedLM` names instead ([`bert`]).
    pub fn visit<'a>(&'a self, mut f: impl FnMut(String, ParamRef<'a, D>)) {
        if let Some(b) = &self.bert {
            return bert::visit(self, b, &mut f);
        }
        f(names::WTE.into(), Param::Two(&self.wte));
        f(names::WPE.into(), Param::Two(&self.wpe));
        for (i, b) in self.blocks.iter().enumerate() {
            for (name, p) in b.params() {
                f(names::block(i, name), p);
            }
        }
        f(names::LN_F_WEIGHT.into(), Param::One(&self.ln_f_g));
        f(names::LN_F_BIAS.into(), Param::One(&self.ln_f_b));
    }

    /// Mutable visit in the same order as [`Gpt::visit`].
    pub fn visit_mut(&mut self, mut f: impl FnMut(String, ParamMut<'_, D>)) {
        if let Some(b) = &mut self.bert {
            return bert::visit_mut(
                &mut self.wte,
                &mut self.wpe,
                (&mut self.ln_f_g, &mut self.ln_f_b),
                &mut self.blocks,
                b,
                &mut f,
            );
        }
        f(names::WTE.into(), Param::Two(&mut self.wte));
        f(names::WPE.into(), Param::Two(&mut self.wpe));
        for (i, b) in self.blocks.iter_mut().enumerate() {
            for (name, p) in b.params_mut() {
                f(names::block(i, name), p);
            }
        }
        f(names::LN_F_WEIGHT.into(), Param::One(&mut self.ln_f_g));
        f(names::LN_F_BIAS.into(), Param::One(&mut self.ln_f_b));
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
