//! Inference on host memory: a copy of the weights as plain `Vec<f32>`, one
//! token at a time through a KV cache. A snapshot like this can leave the
//! training thread (it is plain data, whatever device trained it), so the UI's
//! generations and attention probes never wait for training.

use super::simd::simd_fn;
use super::{BlockOf, Gpt, GptConfig};
use dfdx::prelude::*;
use rayon::prelude::*;

/// One block's weights, host side, GPT-2 Conv1D layout `[in, out]`: the
/// model's block layout with plain vectors.
type HostBlock = BlockOf<Vec<f32>, Vec<f32>>;

/// A host copy of a model's weights.
#[derive(Debug, Clone)]
pub struct HostModel {
    pub cfg: GptConfig,
    wte: Vec<f32>,
    wpe: Vec<f32>,
    blocks: Vec<HostBlock>,
    ln_f_g: Vec<f32>,
    ln_f_b: Vec<f32>,
}

/// Keys and values of every layer for the positions seen so far.
#[derive(Debug, Clone)]
pub struct KvCache {
    /// Per layer: `len * C` keys and values, position-major.
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    len: usize,
}

impl KvCache {
    pub fn new(cfg: &GptConfig) -> Self {
        KvCache {
            k: vec![Vec::with_capacity(cfg.n_positions * cfg.n_embd); cfg.n_layer],
            v: vec![Vec::with_capacity(cfg.n_positions * cfg.n_embd); cfg.n_layer],
            len: 0,
        }
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn clear(&mut self) {
        for k in &mut self.k {
            k.clear();
        }
        for v in &mut self.v {
            v.clear();
        }
        self.len = 0;
    }
}

impl HostModel {
    /// Copies the weights of `model` to the host.
    pub fn from_model<D: Device<f32>>(model: &Gpt<D>) -> Self {
        let blocks = model
            .blocks
            .iter()
            .map(|b| b.map(|v| v.as_vec(), |m| m.as_vec()))
            .collect();
        HostModel {
            cfg: model.cfg,
            wte: model.wte.as_vec(),
            wpe: model.wpe.as_vec(),
            blocks,
            ln_f_g: model.ln_f_g.as_vec(),
            ln_f_b: model.ln_f_b.as_vec(),
        }
    }

    /// Feeds one token at the cache's next position; returns the logits for
    /// the next token. When `attn` is given, each layer's and head's attention
    /// row for this query is written to `attn[layer][head]` (length `pos + 1`).
    /// The cache must hold fewer than `n_positions` entries.
    pub fn step(
        &self,
        cache: &mut KvCache,
        token: usize,
        mut attn: Option<&mut Vec<Vec<Vec<f32>>>>,
    ) -> Vec<f32> {
        let cfg = &self.cfg;
        let c = cfg.n_embd;
        let h = cfg.n_head;
        let hd = c / h;
        let pos = cache.len;
        debug_assert!(pos < cfg.n_positions);
        let token = token.min(cfg.vocab_size - 1);
        let mut x: Vec<f32> = (0..c)
            .map(|i| self.wte[token * c + i] + self.wpe[pos * c + i])
            .collect();
        let scale = 1.0 / (hd as f32).sqrt();
        let eps = cfg.layer_norm_epsilon as f32;
        let mut buf = vec![0.0f32; c];
        let mut scores = vec![0.0f32; pos + 1];
        for (l, b) in self.blocks.iter().enumerate() {
            layer_norm(&x, &b.ln_1_g, &b.ln_1_b, eps, &mut buf);
            let qkv = vec_mat(&buf, &b.c_attn_w, &b.c_attn_b, 3 * c);
            cache.k[l].extend_from_slice(&qkv[c..2 * c]);
            cache.v[l].extend_from_slice(&qkv[2 * c..]);
            let keys = &cache.k[l];
            let vals = &cache.v[l];
            let mut y = vec![0.0f32; c];
            for head in 0..h {
                let q = &qkv[head * hd..(head + 1) * hd];
                let mut max = f32::NEG_INFINITY;
                for (t, s) in scores.iter_mut().enumerate() {
                    let k = &keys[t * c + head * hd..t * c + (head + 1) * hd];
                    *s = dot(q, k) * scale;
                    max = max.max(*s);
                }
                let mut sum = 0.0;
                for s in scores.iter_mut() {
                    *s = (*s - max).exp();
                    sum += *s;
                }
                for s in scores.iter_mut() {
                    *s /= sum;
                }
                let yh = &mut y[head * hd..(head + 1) * hd];
                for (t, &p) in scores.iter().enumerate() {
                    let v = &vals[t * c + head * hd..t * c + (head + 1) * hd];
                    for (o, &vv) in yh.iter_mut().zip(v) {
                        *o += p * vv;
                    }
                }
                if let Some(a) = attn.as_deref_mut() {
                    a[l][head] = scores.clone();
                }
            }
            let proj = vec_mat(&y, &b.attn_proj_w, &b.attn_proj_b, c);
            for (xi, pi) in x.iter_mut().zip(&proj) {
                *xi += pi;
            }
            layer_norm(&x, &b.ln_2_g, &b.ln_2_b, eps, &mut buf);
            let mut hmid = vec_mat(&buf, &b.c_fc_w, &b.c_fc_b, 4 * c);
            for v in hmid.iter_mut() {
                *v = gelu_tanh(*v);
            }
            let out = vec_mat(&hmid, &b.mlp_proj_w, &b.mlp_proj_b, c);
            for (xi, oi) in x.iter_mut().zip(&out) {
                *xi += oi;
            }
        }
        cache.len += 1;
        layer_norm(&x, &self.ln_f_g, &self.ln_f_b, eps, &mut buf);
        // Tied LM head: logits = x . wte^T
        lm_head(&buf, &self.wte, c, cfg.vocab_size)
    }

    /// Attention probabilities of every layer and head over `tokens`
    /// (at most `n_positions`): `[layer][head]` row-major `n x n`.
    pub fn attention(&self, tokens: &[usize]) -> Vec<Vec<Vec<f32>>> {
        let n = tokens.len().min(self.cfg.n_positions);
        let (nl, nh) = (self.cfg.n_layer, self.cfg.n_head);
        let mut out = vec![vec![vec![0.0f32; n * n]; nh]; nl];
        let mut cache = KvCache::new(&self.cfg);
        let mut rows = vec![vec![Vec::new(); nh]; nl];
        for (q, &t) in tokens[..n].iter().enumerate() {
            self.step(&mut cache, t, Some(&mut rows));
            for l in 0..nl {
                for hh in 0..nh {
                    out[l][hh][q * n..q * n + q + 1].copy_from_slice(&rows[l][hh]);
                }
            }
        }
        out
    }
}

simd_fn! {
    /// Eight-lane dot product: lane `j` sums the products at `j mod 8` in
    /// order, the lanes are added in order, then the tail.
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0.0f32; 8];
        let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
        let (at, bt) = (ac.remainder(), bc.remainder());
        for (x, y) in ac.zip(bc) {
            for j in 0..8 {
                acc[j] += x[j] * y[j];
            }
        }
        let mut s: f32 = acc.iter().sum();
        for (x, y) in at.iter().zip(bt) {
            s += x * y;
        }
        s
    }
}

simd_fn! {
    /// `out += Σ_r x[r] w_r` in row order, where `w_r` is `w[r * stride..]`
    /// cut to `out.len()`: four rows per pass over `out`, each element
    /// still summed row after row.
    fn axpy_rows(out: &mut [f32], x: &[f32], w: &[f32], stride: usize) {
        let n = out.len();
        let row = |r: usize| &w[r * stride..r * stride + n];
        let mut r = 0;
        while r + 4 <= x.len() {
            let (x0, x1, x2, x3) = (x[r], x[r + 1], x[r + 2], x[r + 3]);
            let (w0, w1, w2, w3) = (row(r), row(r + 1), row(r + 2), row(r + 3));
            for (j, o) in out.iter_mut().enumerate() {
                *o = *o + x0 * w0[j] + x1 * w1[j] + x2 * w2[j] + x3 * w3[j];
            }
            r += 4;
        }
        while r < x.len() {
            let (xr, wr) = (x[r], row(r));
            for (o, &wv) in out.iter_mut().zip(wr) {
                *o += xr * wv;
            }
            r += 1;
        }
    }
}

/// Output columns per parallel task of [`vec_mat`], rows per task of the LM
/// head: the split never changes an element's sum, so neither does the
/// thread count.
const COLS: usize = 256;
const VOCAB_ROWS: usize = 512;

/// `x (1 x I) @ w (I x O) + b`: blocks of columns in parallel, each
/// streaming its part of every row of `w` once.
fn vec_mat(x: &[f32], w: &[f32], b: &[f32], o: usize) -> Vec<f32> {
    let mut out = b.to_vec();
    out.par_chunks_mut(COLS)
        .enumerate()
        .for_each(|(k, oc)| axpy_rows(oc, x, &w[k * COLS..], o));
    out
}

/// The tied LM head: `x . wte_vᵀ` for every row `v` of `wte` (`c` wide), in
/// parallel over blocks of rows.
fn lm_head(x: &[f32], wte: &[f32], c: usize, vocab: usize) -> Vec<f32> {
    let mut logits = vec![0.0f32; vocab];
    logits
        .par_chunks_mut(VOCAB_ROWS)
        .zip(wte[..vocab * c].par_chunks(VOCAB_ROWS * c))
        .for_each(|(lc, wc)| {
            for (l, row) in lc.iter_mut().zip(wc.chunks_exact(c)) {
                *l = dot(x, row);
            }
        });
    logits
}

/// LayerNorm of `x` with gain `g` and bias `b`, `eps` added to the variance.
fn layer_norm(x: &[f32], g: &[f32], b: &[f32], eps: f32, out: &mut [f32]) {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    for i in 0..x.len() {
        out[i] = (x[i] - mean) * inv * g[i] + b[i];
    }
}

/// GPT-2's `gelu_new`: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
pub fn gelu_tanh(x: f32) -> f32 {
    const K: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (K * (x + 0.044715 * x * x * x)).tanh())
}
