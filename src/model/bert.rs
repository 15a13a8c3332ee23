//! The BERT encoder with its masked-LM head (`model.arch = "bert"`, Hugging
//! Face's `BertForMaskedLM`), on the same parameters and kernels as the GPT-2
//! decoder: learned positions, token-type embeddings, post-LayerNorm blocks
//! with bidirectional attention and the exact (erf) GELU, and the MLM head
//! (dense + GELU + LayerNorm, decoder tied to the word embeddings, own bias).
//!
//! A BERT model is a [`Gpt`] whose `bert` holds the parts GPT-2 lacks; the
//! shared fields change meaning: `ln_f` is the embeddings' LayerNorm
//! (applied first, not last), a block's `ln_1` / `ln_2` follow the attention
//! / the MLP (`attention.output.LayerNorm`, `output.LayerNorm`), and its
//! `c_attn` holds query, key and value side by side (`[C, 3C]`, `[in, out]`).

use super::kernels::{Gelu, Ops};
use super::{Block, ForwardOut, Gpt, GptConfig, Param, ParamMut, ParamRef, T1, T2, T3};
use dfdx::prelude::*;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

/// Which network a config or checkpoint describes (`model.arch`).
pub use crate::config::Arch;

/// BERT's token-type vocabulary (`type_vocab_size`): one type is used in
/// training; the table is there for loading.
pub const TYPE_VOCAB_SIZE: usize = 2;

/// The parameters a BERT model has beyond GPT-2's layout.
#[derive(Debug, Clone)]
pub struct BertParts<D: Storage<f32>> {
    /// `bert.embeddings.token_type_embeddings.weight`: `(types, C)`.
    pub token_type: T2<D>,
    /// `cls.predictions.transform.dense`: `[C, C]` (`[in, out]`).
    pub head_w: T2<D>,
    pub head_b: T1<D>,
    /// `cls.predictions.transform.LayerNorm`.
    pub head_ln_g: T1<D>,
    pub head_ln_b: T1<D>,
    /// `cls.predictions.bias`: `(V,)`, the decoder's own bias.
    pub decoder_bias: T1<D>,
}

/// The `BertForMaskedLM` parameter names headsup's parameters carry (visit
/// order, optimizer state, `train.freeze`). Two differ from the checkpoint's:
/// a block's `attention.self.qkv` is written as `query`, `key` and `value`,
/// and every dense matrix is transposed on the way (see `checkpoint`).
pub mod names {
    pub const WORD: &str = "bert.embeddings.word_embeddings.weight";
    pub const POSITION: &str = "bert.embeddings.position_embeddings.weight";
    pub const TOKEN_TYPE: &str = "bert.embeddings.token_type_embeddings.weight";
    pub const EMB_LN_WEIGHT: &str = "bert.embeddings.LayerNorm.weight";
    pub const EMB_LN_BIAS: &str = "bert.embeddings.LayerNorm.bias";
    pub const HEAD_DENSE_WEIGHT: &str = "cls.predictions.transform.dense.weight";
    pub const HEAD_DENSE_BIAS: &str = "cls.predictions.transform.dense.bias";
    pub const HEAD_LN_WEIGHT: &str = "cls.predictions.transform.LayerNorm.weight";
    pub const HEAD_LN_BIAS: &str = "cls.predictions.transform.LayerNorm.bias";
    pub const DECODER_BIAS: &str = "cls.predictions.bias";
    /// A block's parameters under `bert.encoder.layer.{i}.`, in the order of
    /// [`crate::model::BlockOf::params`] (GPT-2's `ln_1`, `c_attn`, ...).
    pub const BLOCK: [&str; 12] = [
        "attention.output.LayerNorm.weight",
        "attention.output.LayerNorm.bias",
        "attention.self.qkv.weight",
        "attention.self.qkv.bias",
        "attention.output.dense.weight",
        "attention.output.dense.bias",
        "output.LayerNorm.weight",
        "output.LayerNorm.bias",
        "intermediate.dense.weight",
        "intermediate.dense.bias",
        "output.dense.weight",
        "output.dense.bias",
    ];

    /// The full name of parameter `k` (index into [`BLOCK`]) of block `i`.
    pub fn block(i: usize, k: usize) -> String {
        format!("bert.encoder.layer.{i}.{}", BLOCK[k])
    }
}

impl<D: Device<f32>> Gpt<D> {
    /// A fresh BERT encoder with the MLM head, initialised from `seed` as
    /// transformers does: every matrix and embedding N(0, 0.02), biases 0,
    /// LayerNorm gains 1.
    pub fn new_bert(dev: &D, cfg: GptConfig, seed: u64) -> Self {
        let mut m = Gpt::new(dev, cfg, seed);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xbe57);
        let n = Normal::new(0.0f32, 0.02).expect("std is positive");
        let c = cfg.n_embd;
        let mut normal2 = |rows: usize, cols: usize| -> T2<D> {
            let v: Vec<f32> = (0..rows * cols).map(|_| n.sample(&mut rng)).collect();
            dev.tensor_from_vec(v, (rows, cols))
        };
        let token_type = normal2(TYPE_VOCAB_SIZE, c);
        let head_w = normal2(c, c);
        let vec1 = |n: usize, x: f32| dev.tensor_from_vec(vec![x; n], (n,));
        m.bert = Some(BertParts {
            token_type,
            head_w,
            head_b: vec1(c, 0.0),
            head_ln_g: vec1(c, 1.0),
            head_ln_b: vec1(c, 0.0),
            decoder_bias: vec1(cfg.vocab_size, 0.0),
        });
        m
    }
}

impl<D: Storage<f32>> Gpt<D> {
    /// Which network this is.
    pub fn arch(&self) -> Arch {
        if self.bert.is_some() {
            Arch::Bert
        } else {
            Arch::Gpt2
        }
    }

    /// A copy of the weights on the CPU, of either architecture: what the
    /// workers that fill masks and score records for a BERT run hold while
    /// the trainer's own model goes on training (as `HostModel` is for GPT-2).
    pub fn to_cpu(&self) -> Gpt<Cpu> {
        let dev = Cpu::default();
        let mut m = match &self.bert {
            Some(b) => {
                let mut m = Gpt::new_bert(&dev, self.cfg, 0);
                let (types, c) = *b.token_type.shape();
                if let Some(mb) = m.bert.as_mut() {
                    mb.token_type = dev.tensor_from_vec(vec![0.0; types * c], (types, c));
                }
                m
            }
            None => Gpt::new(&dev, self.cfg, 0),
        };
        let mut host = std::collections::BTreeMap::new();
        self.visit(|name, p| {
            host.insert(name, p.to_vec());
        });
        m.visit_mut(|name, mut p| {
            if let Some(d) = host.get(&name) {
                p.copy_from(d);
            }
        });
        m.dropout = self.dropout;
        m
    }

    /// Number of parameters, of either architecture (the decoder is tied).
    pub fn n_params(&self) -> usize {
        let mut n = 0;
        self.visit(|_, p| n += p.shape().iter().product::<usize>());
        n
    }
}

/// Visits a BERT model's parameters in a fixed order: embeddings (word,
/// position, token type, LayerNorm), each block's, the MLM head's.
pub(super) fn visit<'a, D: Storage<f32>>(
    m: &'a Gpt<D>,
    b: &'a BertParts<D>,
    f: &mut impl FnMut(String, ParamRef<'a, D>),
) {
    f(names::WORD.into(), Param::Two(&m.wte));
    f(names::POSITION.into(), Param::Two(&m.wpe));
    f(names::TOKEN_TYPE.into(), Param::Two(&b.token_type));
    f(names::EMB_LN_WEIGHT.into(), Param::One(&m.ln_f_g));
    f(names::EMB_LN_BIAS.into(), Param::One(&m.ln_f_b));
    for (i, blk) in m.blocks.iter().enumerate() {
        for (k, (_, p)) in blk.params().into_iter().enumerate() {
            f(names::block(i, k), p);
        }
    }
    f(names::HEAD_DENSE_WEIGHT.into(), Param::Two(&b.head_w));
    f(names::HEAD_DENSE_BIAS.into(), Param::One(&b.head_b));
    f(names::HEAD_LN_WEIGHT.into(), Param::One(&b.head_ln_g));
    f(names::HEAD_LN_BIAS.into(), Param::One(&b.head_ln_b));
    f(names::DECODER_BIAS.into(), Param::One(&b.decoder_bias));
}

/// [`visit`], mutable, in the same order.
pub(super) fn visit_mut<D: Storage<f32>>(
    wte: &mut T2<D>,
    wpe: &mut T2<D>,
    ln_f: (&mut T1<D>, &mut T1<D>),
    blocks: &mut [Block<D>],
    b: &mut BertParts<D>,
    f: &mut impl FnMut(String, ParamMut<'_, D>),
) {
    f(names::WORD.into(), Param::Two(wte));
    f(names::POSITION.into(), Param::Two(wpe));
    f(names::TOKEN_TYPE.into(), Param::Two(&mut b.token_type));
    f(names::EMB_LN_WEIGHT.into(), Param::One(ln_f.0));
    f(names::EMB_LN_BIAS.into(), Param::One(ln_f.1));
    for (i, blk) in blocks.iter_mut().enumerate() {
        for (k, (_, p)) in blk.params_mut().into_iter().enumerate() {
            f(names::block(i, k), p);
        }
    }
    f(names::HEAD_DENSE_WEIGHT.into(), Param::Two(&mut b.head_w));
    f(names::HEAD_DENSE_BIAS.into(), Param::One(&mut b.head_b));
    f(names::HEAD_LN_WEIGHT.into(), Param::One(&mut b.head_ln_g));
    f(names::HEAD_LN_BIAS.into(), Param::One(&mut b.head_ln_b));
    f(names::DECODER_BIAS.into(), Param::One(&mut b.decoder_bias));
}

/// The encoder and MLM head on the kernels `K`: logits `(N, V)` at the flat
/// positions `positions` (`None`: every one of the `batch * seq`), and the
/// attention probabilities of every layer when `keep_attention`.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward<D, K, T>(
    m: &Gpt<D>,
    b: &BertParts<D>,
    wte: T2<D, T>,
    tokens: &[usize],
    batch: usize,
    seq: usize,
    keep_attention: bool,
    positions: Option<&[usize]>,
) -> ForwardOut<D, T>
where
    D: Device<f32>,
    K: Ops<D>,
    T: Tape<f32, D> + Merge<T> + Merge<NoneTape>,
{
    let dev = m.device();
    let c = m.cfg.n_embd;
    let h = m.cfg.n_head;
    let eps = m.cfg.layer_norm_epsilon;
    let n = batch * seq;
    let idx: Tensor<(usize,), usize, D> = dev.tensor_from_vec(tokens.to_vec(), (n,));
    let tok = K::embedding(wte, idx); // (N, C)
                                      // Token type 0 everywhere: its row broadcast over the positions.
    let types = b
        .token_type
        .clone()
        .retaped::<T>()
        .slice((0..1, ..))
        .reshape_like(&(c,))
        .broadcast_like::<_, Axis<0>>(&(n, c));
    let x = K::add_positions(tok + types, &m.wpe, batch, seq);
    let mut x: T3<D, T> = K::layer_norm(x, &m.ln_f_g, &m.ln_f_b, eps);
    let mut attention = Vec::new();
    for blk in &m.blocks {
        let qkv = K::linear(x.retaped::<T>(), &blk.c_attn_w, &blk.c_attn_b);
        let (y, probs) = K::attention(qkv, h, false, keep_attention);
        if let Some(p) = probs {
            attention.push(p);
        }
        let x1 = K::linear_residual(x, y, &blk.attn_proj_w, &blk.attn_proj_b);
        let x1 = K::layer_norm(x1, &blk.ln_1_g, &blk.ln_1_b, eps);
        let mid = K::linear_act(x1.retaped::<T>(), &blk.c_fc_w, &blk.c_fc_b, Gelu::Erf);
        let x2 = K::linear_residual(x1, mid, &blk.mlp_proj_w, &blk.mlp_proj_b);
        x = K::layer_norm(x2, &blk.ln_2_g, &blk.ln_2_b, eps);
    }
    let x: T2<D, T> = x.reshape_like(&(n, c));
    let x = match positions {
        Some(p) => {
            assert!(p.iter().all(|&i| i < n), "masked position out of range");
            let pi: Tensor<(usize,), usize, D> = dev.tensor_from_vec(p.to_vec(), (p.len(),));
            K::embedding(x, pi)
        }
        None => x,
    };
    let rows = x.shape().0;
    let x: T3<D, T> = x.reshape_like(&(1, rows, c));
    let t = K::linear_act(x, &b.head_w, &b.head_b, Gelu::Erf);
    let t = K::layer_norm(t, &b.head_ln_g, &b.head_ln_b, eps);
    let t: T2<D, T> = t.reshape_like(&(rows, c));
    let v = m.cfg.vocab_size;
    let logits = K::lm_head(t, &m.wte)
        + b.decoder_bias
            .clone()
            .retaped::<T>()
            .broadcast_like::<_, Axis<0>>(&(rows, v));
    ForwardOut { logits, attention }
}
