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
        dot_body(a, b)
    }
}

simd_fn! {
    /// `out += Σ_r x[r] w_r` in row order, where `w_r` is `w[r * stride..]`
    /// cut to `out.len()`: eight rows per pass over `out` (fewer loads and
    /// stores of `out`, which stays in L1), each element still summed row
    /// after row, so the grouping never changes a result.
    fn axpy_rows(out: &mut [f32], x: &[f32], w: &[f32], stride: usize) {
        let n = out.len();
        let row = |r: usize| &w[r * stride..r * stride + n];
        let mut r = 0;
        while r + 8 <= x.len() {
            let xs: [f32; 8] = x[r..r + 8].try_into().unwrap();
            let ws: [&[f32]; 8] = std::array::from_fn(|i| row(r + i));
            for (j, o) in out.iter_mut().enumerate() {
                *o = *o
                    + xs[0] * ws[0][j]
                    + xs[1] * ws[1][j]
                    + xs[2] * ws[2][j]
                    + xs[3] * ws[3][j]
                    + xs[4] * ws[4][j]
                    + xs[5] * ws[5][j]
                    + xs[6] * ws[6][j]
                    + xs[7] * ws[7][j];
            }
            r += 8;
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

/// `out[i] = dot(x, rows[i])` for `c`-wide rows, each row summed exactly as
/// [`dot`] sums it (eight lanes, then the lanes in order, then the tail). With
/// AVX2, eight rows at a time: eight independent sums in flight while the rows
/// stream from memory.
fn dot_rows(out: &mut [f32], x: &[f32], rows: &[f32], c: usize) {
    assert!(x.len() >= c && rows.len() >= out.len() * c);
    #[cfg(target_arch = "x86_64")]
    if crate::model::simd::simd_level() >= crate::model::simd::SimdLevel::Avx2 {
        // SAFETY: the CPU has AVX2 (checked by `simd_level`); the lengths
        // were checked above.
        unsafe { dot_rows_avx2(out, x, rows, c) };
        return;
    }
    for (o, r) in out.iter_mut().zip(rows.chunks_exact(c)) {
        *o = dot_body(&x[..c], r);
    }
}

/// [`dot_rows`] with 256-bit lanes: lane `j` of row `k`'s accumulator adds
/// `x[p + j] * row_k[p + j]` (a multiply, then an add: no fused multiply-add,
/// so the sums round as [`dot_body`]'s do).
///
/// # Safety
/// The CPU must have AVX2; `x.len() >= c` and `rows.len() >= out.len() * c`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_rows_avx2(out: &mut [f32], x: &[f32], rows: &[f32], c: usize) {
    use std::arch::x86_64::*;
    const R: usize = 8;
    let full = c - c % 8;
    let finish = |acc: __m256, row: &[f32]| {
        let mut lanes = [0.0f32; 8];
        // SAFETY: `lanes` holds eight floats.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
        let mut s: f32 = lanes.iter().sum();
        for (a, b) in x[full..c].iter().zip(&row[full..c]) {
            s += a * b;
        }
        s
    };
    let mut i = 0;
    while i + R <= out.len() {
        let base = rows[i * c..].as_ptr();
        let mut acc = [_mm256_setzero_ps(); R];
        let mut p = 0;
        while p < full {
            // SAFETY: `p + 8 <= full <= c <= x.len()`, and row `i + k`
            // (k < R) ends at `(i + k + 1) * c <= rows.len()`.
            unsafe {
                let xv = _mm256_loadu_ps(x.as_ptr().add(p));
                for (k, a) in acc.iter_mut().enumerate() {
                    let w = _mm256_loadu_ps(base.add(k * c + p));
                    *a = _mm256_add_ps(*a, _mm256_mul_ps(xv, w));
                }
            }
            p += 8;
        }
        for (k, a) in acc.into_iter().enumerate() {
            out[i + k] = finish(a, &rows[(i + k) * c..(i + k + 1) * c]);
        }
        i += R;
    }
    while i < out.len() {
        out[i] = dot_body(&x[..c], &rows[i * c..(i + 1) * c]);
        i += 1;
    }
}

/// [`dot`]'s sum, inlined into the SIMD bodies.
#[inline(always)]
fn dot_body(a: &[f32], b: &[f32]) -> f32 {
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

/// Output columns of [`vec_mat`] per parallel task: the columns split evenly
/// over the threads (a multiple of 16), so each task streams long runs of
/// every row. The split never changes an element's sum, so neither does the
/// thread count.
fn cols_per_task(o: usize) -> usize {
    let t = rayon::current_num_threads().max(1);
    o.div_ceil(t).next_multiple_of(16).max(16)
}

/// Rows of the LM head per parallel task.
const VOCAB_ROWS: usize = 512;

/// `x (1 x I) @ w (I x O) + b`: blocks of columns in parallel, each
/// streaming its part of every row of `w` once.
fn vec_mat(x: &[f32], w: &[f32], b: &[f32], o: usize) -> Vec<f32> {
    let mut out = b.to_vec();
    let cols = cols_per_task(o);
    out.par_chunks_mut(cols)
        .enumerate()
        .for_each(|(k, oc)| axpy_rows(oc, x, &w[k * cols..], o));
    out
}

/// The tied LM head: `x . wte_vᵀ` for every row `v` of `wte` (`c` wide), in
/// parallel over blocks of rows.
fn lm_head(x: &[f32], wte: &[f32], c: usize, vocab: usize) -> Vec<f32> {
    let mut logits = vec![0.0f32; vocab];
    logits
        .par_chunks_mut(VOCAB_ROWS)
        .zip(wte[..vocab * c].par_chunks(VOCAB_ROWS * c))
        .for_each(|(lc, wc)| dot_rows(lc, x, wc, c));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2654435761u32) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    /// The LM head's row-by-row path and its AVX2 body give every row the
    /// same bits as `dot`, for widths with and without a tail and row counts
    /// with and without a remainder.
    #[test]
    fn dot_rows_matches_dot_bit_for_bit() {
        for (c, n) in [(768, 19), (37, 13), (8, 8), (5, 3)] {
            let x = values(c, 1);
            let rows = values(c * n, 2);
            let want: Vec<f32> = rows.chunks_exact(c).map(|r| dot_body(&x, r)).collect();
            let mut got = vec![0.0; n];
            dot_rows(&mut got, &x, &rows, c);
            assert_eq!(got, want, "c={c} n={n}");
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2") {
                let mut got = vec![0.0; n];
                // SAFETY: the CPU has AVX2; the lengths fit.
                unsafe { dot_rows_avx2(&mut got, &x, &rows, c) };
                assert_eq!(got, want, "avx2, c={c} n={n}");
            } else if std::env::var_os("CI").is_some() {
                panic!("CI: this CPU lacks AVX2, so dot_rows_avx2 went unchecked");
            }
        }
    }

    /// `vec_mat` sums each output row after row: the same bits as a plain
    /// loop, whatever the column split.
    #[test]
    fn vec_mat_sums_rows_in_order() {
        for (i, o) in [(768, 2304), (19, 40), (3, 7)] {
            let x = values(i, 3);
            let w = values(i * o, 4);
            let b = values(o, 5);
            let mut want = b.clone();
            for r in 0..i {
                for j in 0..o {
                    want[j] += x[r] * w[r * o + j];
                }
            }
            assert_eq!(vec_mat(&x, &w, &b, o), want, "{i}x{o}");
        }
    }
}
