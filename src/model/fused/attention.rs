//! Causal multi-head self-attention from the fused `(B, S, 3C)` projection:
//! per (batch, head) the scores `Q Kᵀ / sqrt(d)` and the weighted sum `P V`
//! are matrix products read straight out of the strided `qkv` rows
//! ([`super::matmul::sgemm`]), with the mask and softmax in between; batches
//! run in parallel. The probabilities are kept for the backward (and handed
//! back as a `(B, H, S, S)` tensor when asked).

use super::matmul::sgemm;
use super::{fast_exp, grad_io, host, simd_fn};
use crate::model::{T3, T4};
use dfdx::prelude::*;
use rayon::prelude::*;

simd_fn! {
    /// Row `i` of the `s × s` scores, in place: softmax over `0..=i`, zeros after.
    fn causal_softmax(p: &mut [f32], s: usize) {
        for (i, row) in p.chunks_exact_mut(s).enumerate() {
            let (live, masked) = row.split_at_mut(i + 1);
            let m = live.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let mut z = 0.0f32;
            for r in live.iter_mut() {
                let e = fast_exp(*r - m);
                *r = e;
                z += e;
            }
            let inv = 1.0 / z;
            for r in live.iter_mut() {
                *r *= inv;
            }
            masked.fill(0.0);
        }
    }
}

simd_fn! {
    /// Softmax backward, in place over `dp`: `ds = p (dp - Σ_j p dp) * scale`.
    fn softmax_backward(p: &[f32], dp: &mut [f32], s: usize, scale: f32) {
        for (prow, drow) in p.chunks_exact(s).zip(dp.chunks_exact_mut(s)) {
            let mut sum = 0.0f32;
            for (a, b) in prow.iter().zip(drow.iter()) {
                sum += a * b;
            }
            for (d, &pv) in drow.iter_mut().zip(prow) {
                *d = pv * (*d - sum) * scale;
            }
        }
    }
}

pub fn causal_attention<T: Tape<f32, Cpu>>(
    qkv: T3<Cpu, T>,
    n_head: usize,
    keep_probs: bool,
) -> (T3<Cpu, T>, Option<T4<Cpu>>) {
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
    let mut probs = vec![0.0f32; b * n_head * s * s];
    y.par_chunks_mut(s * c)
        .zip(probs.par_chunks_mut(n_head * s * s))
        .zip(qv.par_chunks(s * c3))
        .for_each(|((yb, pb), xb)| {
            for h in 0..n_head {
                let p = &mut pb[h * s * s..][..s * s];
                let (q, k, v) = (&xb[h * hd..], &xb[c + h * hd..], &xb[2 * c + h * hd..]);
                // P = Q Kᵀ * scale (Kᵀ: element (d, j) is k[j*c3 + d])
                sgemm(s, s, hd, scale, q, c3, 1, k, 1, c3, p, s, false, 1);
                causal_softmax(p, s);
                // Y_h = P V
                sgemm(
                    s,
                    hd,
                    s,
                    1.0,
                    p,
                    s,
                    1,
                    v,
                    c3,
                    1,
                    &mut yb[h * hd..],
                    c,
                    false,
                    1,
                );
            }
        });
    let dev = qkv.device().clone();
    let kept = keep_probs.then(|| dev.tensor_from_vec(probs.clone(), (b, n_head, s, s)));
    let out = dev.tensor_from_vec(y, (b, s, c));
    if T::OWNS_TAPE {
        let out_c = out.clone();
        tape.add_backward_op(move |grads| {
            let (dx, dy) = grad_io(grads, &qkv, &out_c)?;
            dx.par_chunks_mut(s * c3)
                .zip(dy.par_chunks(s * c))
                .zip(probs.par_chunks(n_head * s * s).zip(qv.par_chunks(s * c3)))
                .for_each(|((db, dyb), (pb, xb))| {
                    let mut ds = vec![0.0f32; s * s];
                    for h in 0..n_head {
                        let p = &pb[h * s * s..][..s * s];
                        let (q, k, v) = (&xb[h * hd..], &xb[c + h * hd..], &xb[2 * c + h * hd..]);
                        let dyh = &dyb[h * hd..];
                        // dV += Pᵀ dY
                        sgemm(
                            s,
                            hd,
                            s,
                            1.0,
                            p,
                            1,
                            s,
                            dyh,
                            c,
                            1,
                            &mut db[2 * c + h * hd..],
                            c3,
                            true,
                            1,
                        );
                        // dP = dY Vᵀ, then dS = softmax backward (scaled)
                        sgemm(s, s, hd, 1.0, dyh, c, 1, v, 1, c3, &mut ds, s, false, 1);
                        softmax_backward(p, &mut ds, s, scale);
                        // dQ += dS K ; dK += dSᵀ Q
                        sgemm(
                            s,
                            hd,
                            s,
                            1.0,
                            &ds,
                            s,
                            1,
                            k,
                            c3,
                            1,
                            &mut db[h * hd..],
                            c3,
                            true,
                            1,
                        );
                        sgemm(
                            s,
                            hd,
                            s,
                            1.0,
                            &ds,
                            1,
                            s,
                            q,
                            c3,
                            1,
                            &mut db[c + h * hd..],
                            c3,
                            true,
                            1,
                        );
                    }
                });
            Ok(())
        });
    }
    (out.put_tape(tape), kept)
}
