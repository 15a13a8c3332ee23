//! Multi-head self-attention from the fused `(B, S, 3C)` projection, causal
//! (GPT-2) or bidirectional (BERT) by a flag: per (batch, head) the scores
//! `Q Kᵀ / sqrt(d)` and the weighted sum `P V` are matrix products read
//! straight out of the strided `qkv` rows ([`super::matmul::sgemm`]), with the
//! mask (when causal) and softmax in between, one block of query rows at a
//! time; batches run in parallel. The whole `(B, H, S, S)` probabilities
//! exist only when asked for (the UI's attention maps; then they are kept
//! for the backward too, [`Probs`]); otherwise the forward keeps two floats
//! per query row (its maximum score and inverse sum) and the backward
//! recomputes each block's probabilities from them, flash-style, bit for bit
//! the forward's. The products run on one thread each (`1` as `sgemm`'s last
//! argument): the batch loop around them is the parallel one.

use super::matmul::{sgemm, Mat};
use super::{free_grad, ghost_io, host};
use crate::model::simd::{dot8, fast_exp, max8, simd_fn, sum8};
use crate::model::{T3, T4};
use dfdx::prelude::*;
use rayon::prelude::*;

/// Query rows per block: with the causal mask, block `[r0, r1)` only meets
/// keys `0..r1`, so the masked upper triangle is mostly never computed (5/8
/// of the full products at S = 64 instead of all of them).
const BLOCK: usize = 16;

/// The row blocks `(r0, r1)` of an `s`-long sequence.
fn blocks(s: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..s)
        .step_by(BLOCK)
        .map(move |r0| (r0, (r0 + BLOCK).min(s)))
}

simd_fn! {
    /// Row `i` of the scores (`s` wide), in place: softmax over `0..=i`, zeros
    /// after (`i = s - 1`: the whole row, unmasked). Returns the row's
    /// maximum and the inverse of its sum of exponentials, from which
    /// [`softmax_again`] recomputes the same probabilities.
    fn causal_softmax(row: &mut [f32], i: usize) -> (f32, f32) {
        let (live, masked) = row.split_at_mut(i + 1);
        let m = max8(live);
        for r in live.iter_mut() {
            *r = fast_exp(*r - m);
        }
        let inv = 1.0 / sum8(live);
        for r in live.iter_mut() {
            *r *= inv;
        }
        masked.fill(0.0);
        (m, inv)
    }
}

simd_fn! {
    /// Row `i` of the scores, in place, back into the probabilities
    /// [`causal_softmax`] made from the same scores, given the maximum `m`
    /// and inverse sum `inv` it returned: the same operations on the same
    /// values, so the same bits.
    fn softmax_again(row: &mut [f32], i: usize, m: f32, inv: f32) {
        let (live, masked) = row.split_at_mut(i + 1);
        for r in live.iter_mut() {
            *r = fast_exp(*r - m) * inv;
        }
        masked.fill(0.0);
    }
}

simd_fn! {
    /// Softmax backward, in place over `dp`: `ds = p (dp - Σ_j p dp) * scale`,
    /// on the first `w` columns of rows `s` wide (the rest of `p` is zero).
    fn softmax_backward(p: &[f32], dp: &mut [f32], s: usize, w: usize, scale: f32) {
        for (prow, drow) in p.chunks_exact(s).zip(dp.chunks_exact_mut(s)) {
            let (prow, drow) = (&prow[..w], &mut drow[..w]);
            let sum = dot8(prow, drow);
            for (d, &pv) in drow.iter_mut().zip(prow) {
                *d = pv * (*d - sum) * scale;
            }
        }
    }
}

/// How the backward gets the probabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probs {
    /// The forward keeps the whole `(B, H, S, S)` probabilities.
    Keep,
    /// The forward keeps each query row's maximum score and inverse sum
    /// (two floats per row) and the backward recomputes the probabilities
    /// one block of query rows at a time (flash-style): no `S x S` matrix.
    Recompute,
}

/// `v` in `b` chunks of `len`, or `b` empty slices when `v` is empty.
fn per_batch_mut(v: &mut [f32], b: usize, len: usize) -> Vec<&mut [f32]> {
    if v.is_empty() {
        (0..b).map(|_| &mut [][..]).collect()
    } else {
        v.chunks_mut(len).collect()
    }
}

/// [`per_batch_mut`], shared.
fn per_batch(v: &[f32], b: usize, len: usize) -> Vec<&[f32]> {
    if v.is_empty() {
        vec![&[][..]; b]
    } else {
        v.chunks(len).collect()
    }
}

pub fn causal_attention<T: Tape<f32, Cpu>>(
    qkv: T3<Cpu, T>,
    n_head: usize,
    keep_probs: bool,
) -> (T3<Cpu, T>, Option<T4<Cpu>>) {
    attention(qkv, n_head, true, keep_probs)
}

/// Attention over keys `0..=i` for query `i` when `causal`, else over all keys.
/// The backward keeps the probabilities when `keep_probs` (they are made
/// anyway) and recomputes them otherwise: measured in CPU time at the baby
/// config (S = 64) and at GPT-2-small shapes (S = 256), recomputing costs
/// nothing measurable (docs/performance.md), so no length keeps them.
pub fn attention<T: Tape<f32, Cpu>>(
    qkv: T3<Cpu, T>,
    n_head: usize,
    causal: bool,
    keep_probs: bool,
) -> (T3<Cpu, T>, Option<T4<Cpu>>) {
    let mode = if keep_probs {
        Probs::Keep
    } else {
        Probs::Recompute
    };
    attention_with(qkv, n_head, causal, keep_probs, mode)
}

/// [`attention`] with the backward's source of probabilities chosen by the
/// caller (`keep_probs` with [`Probs::Recompute`]: the probabilities are
/// returned, but the backward recomputes them all the same).
pub fn attention_with<T: Tape<f32, Cpu>>(
    qkv: T3<Cpu, T>,
    n_head: usize,
    causal: bool,
    keep_probs: bool,
    mode: Probs,
) -> (T3<Cpu, T>, Option<T4<Cpu>>) {
    // The keys a block of query rows `[r0, r1)` meets, and the last key
    // query row `i` sees.
    let keys = move |r1: usize, s: usize| if causal { r1 } else { s };
    let last = move |i: usize, s: usize| if causal { i } else { s - 1 };
    let (qkv, mut tape) = qkv.split_tape();
    let (b, s, c3) = *qkv.shape();
    let c = c3 / 3;
    assert!(
        c3 == 3 * c && n_head > 0 && c % n_head == 0,
        "attention: the last axis must be 3 * n_embd with n_embd divisible by n_head"
    );
    let hd = c / n_head;
    let scale = 1.0 / (hd as f32).sqrt();
    let qv = host(&qkv);
    let mut y = vec![0.0f32; b * s * c];
    // The whole probabilities when asked for or kept for the backward; each
    // row's maximum and inverse sum when the backward recomputes them.
    let full = keep_probs || (T::OWNS_TAPE && mode == Probs::Keep);
    let recompute = T::OWNS_TAPE && mode == Probs::Recompute;
    let mut probs = vec![0.0f32; if full { b * n_head * s * s } else { 0 }];
    let mut stats = vec![0.0f32; if recompute { b * n_head * s * 2 } else { 0 }];
    let pbs = per_batch_mut(&mut probs, b, n_head * s * s);
    let sbs = per_batch_mut(&mut stats, b, n_head * s * 2);
    y.par_chunks_mut(s * c)
        .zip(qv.par_chunks(s * c3))
        .zip(pbs.into_par_iter().zip(sbs))
        .for_each(|((yb, xb), (pb, sb))| {
            // Without the whole probabilities, one block of rows at a time.
            let mut strip = vec![0.0f32; if pb.is_empty() { BLOCK * s } else { 0 }];
            for h in 0..n_head {
                let (q, k, v) = (&xb[h * hd..], &xb[c + h * hd..], &xb[2 * c + h * hd..]);
                for (r0, r1) in blocks(s) {
                    let (rows, kw) = (r1 - r0, keys(r1, s));
                    let pr = if pb.is_empty() {
                        &mut strip[..rows * s]
                    } else {
                        &mut pb[(h * s + r0) * s..(h * s + r1) * s]
                    };
                    // P = Q Kᵀ * scale over keys 0..kw (Kᵀ: (d, j) is k[j*c3 + d])
                    let qr = Mat::new(&q[r0 * c3..], c3, 1);
                    sgemm(rows, kw, hd, scale, qr, Mat::new(k, 1, c3), pr, s, false, 1);
                    for (i, row) in pr.chunks_exact_mut(s).enumerate() {
                        let (m, inv) = causal_softmax(row, last(r0 + i, s));
                        if !sb.is_empty() {
                            let o = (h * s + r0 + i) * 2;
                            (sb[o], sb[o + 1]) = (m, inv);
                        }
                    }
                    // Y_h = P V
                    let yr = &mut yb[r0 * c + h * hd..];
                    sgemm(
                        rows,
                        hd,
                        kw,
                        1.0,
                        Mat::new(pr, s, 1),
                        Mat::new(v, c3, 1),
                        yr,
                        c,
                        false,
                        1,
                    );
                }
            }
        });
    let dev = qkv.device().clone();
    let kept = keep_probs.then(|| dev.tensor_from_vec(probs.clone(), (b, n_head, s, s)));
    if !(T::OWNS_TAPE && mode == Probs::Keep) {
        probs = Vec::new();
    }
    let out = dev.tensor_from_vec(y, (b, s, c));
    if T::OWNS_TAPE {
        // Ghosts of the input and output: `qv` and `probs` (or `stats`) are
        // what the backward reads.
        let (xg, og) = (qkv.ghost(), out.ghost());
        drop(qkv);
        tape.add_backward_op(move |grads| {
            let (dx, dy) = ghost_io!(grads, &xg, &og)?;
            let pbs = per_batch(&probs, b, n_head * s * s);
            let sbs = per_batch(&stats, b, n_head * s * 2);
            dx.par_chunks_mut(s * c3)
                .zip(dy.par_chunks(s * c))
                .zip(qv.par_chunks(s * c3).zip(pbs.into_par_iter().zip(sbs)))
                .for_each(|((db, dyb), (xb, (pb, sb)))| {
                    let mut ds = vec![0.0f32; BLOCK * s];
                    // The recomputed probabilities of one block of rows.
                    let mut strip = vec![0.0f32; if pb.is_empty() { BLOCK * s } else { 0 }];
                    for h in 0..n_head {
                        let (q, k, v) = (&xb[h * hd..], &xb[c + h * hd..], &xb[2 * c + h * hd..]);
                        for (r0, r1) in blocks(s) {
                            let (rows, kw) = (r1 - r0, keys(r1, s));
                            let qr = Mat::new(&q[r0 * c3..], c3, 1);
                            let pr: &[f32] = if pb.is_empty() {
                                // The forward's scores and softmax again,
                                // from its row maxima and inverse sums.
                                let pr = &mut strip[..rows * s];
                                sgemm(rows, kw, hd, scale, qr, Mat::new(k, 1, c3), pr, s, false, 1);
                                for (i, row) in pr.chunks_exact_mut(s).enumerate() {
                                    let o = (h * s + r0 + i) * 2;
                                    softmax_again(row, last(r0 + i, s), sb[o], sb[o + 1]);
                                }
                                pr
                            } else {
                                &pb[(h * s + r0) * s..(h * s + r1) * s]
                            };
                            let dsr = &mut ds[..rows * s];
                            let dyr = Mat::new(&dyb[r0 * c + h * hd..], c, 1);
                            // dV[0..kw] += Pᵀ dY
                            let dv = &mut db[2 * c + h * hd..];
                            sgemm(kw, hd, rows, 1.0, Mat::new(pr, 1, s), dyr, dv, c3, true, 1);
                            // dP = dY Vᵀ, then dS = softmax backward (scaled)
                            sgemm(rows, kw, hd, 1.0, dyr, Mat::new(v, 1, c3), dsr, s, false, 1);
                            softmax_backward(pr, dsr, s, kw, scale);
                            let dsr: &[f32] = dsr;
                            // dQ += dS K ; dK[0..kw] += dSᵀ Q
                            let dq = &mut db[r0 * c3 + h * hd..];
                            sgemm(
                                rows,
                                hd,
                                kw,
                                1.0,
                                Mat::new(dsr, s, 1),
                                Mat::new(k, c3, 1),
                                dq,
                                c3,
                                true,
                                1,
                            );
                            let dk = &mut db[c + h * hd..];
                            sgemm(kw, hd, rows, 1.0, Mat::new(dsr, 1, s), qr, dk, c3, true, 1);
                        }
                    }
                });
            free_grad!(grads, &og);
            Ok(())
        });
    }
    (out.put_tape(tape), kept)
}
