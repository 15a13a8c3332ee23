//! Causal multi-head self-attention from the fused `(B, S, 3C)` projection:
//! scores, mask, softmax and the weighted sum per (batch, head), batches in
//! parallel. The probabilities are kept for the backward (and handed back as
//! a `(B, H, S, S)` tensor when asked). Head sizes here are 16 to 64 and
//! S <= 256, where direct loops over contiguous rows beat per-head matmuls.

use super::{axpy, dot, fast_exp, host};
use crate::model::{T3, T4};
use dfdx::prelude::*;
use rayon::prelude::*;

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
                for i in 0..s {
                    let q = &xb[i * c3 + h * hd..][..hd];
                    let row = &mut pb[(h * s + i) * s..][..s];
                    let mut m = f32::NEG_INFINITY;
                    for (j, r) in row.iter_mut().enumerate().take(i + 1) {
                        let k = &xb[j * c3 + c + h * hd..][..hd];
                        let v = dot(q, k) * scale;
                        *r = v;
                        m = m.max(v);
                    }
                    let mut z = 0.0f32;
                    for r in row.iter_mut().take(i + 1) {
                        let e = fast_exp(*r - m);
                        *r = e;
                        z += e;
                    }
                    let inv = 1.0 / z;
                    let yi = &mut yb[i * c + h * hd..][..hd];
                    for (j, r) in row.iter_mut().enumerate().take(i + 1) {
                        *r *= inv;
                        axpy(*r, &xb[j * c3 + 2 * c + h * hd..][..hd], yi);
                    }
                }
            }
        });
    let dev = qkv.device().clone();
    let kept = keep_probs.then(|| dev.tensor_from_vec(probs.clone(), (b, n_head, s, s)));
    let out = dev.tensor_from_vec(y, (b, s, c));
    if T::OWNS_TAPE {
        let out_c = out.clone();
        tape.add_backward_op(move |grads| {
            let dy: Vec<f32> = grads.get_or_alloc_mut(&out_c)?.to_vec();
            let dx: &mut Vec<f32> = grads.get_or_alloc_mut(&qkv)?;
            dx.par_chunks_mut(s * c3)
                .zip(dy.par_chunks(s * c))
                .zip(probs.par_chunks(n_head * s * s).zip(qv.par_chunks(s * c3)))
                .for_each(|((db, dyb), (pb, xb))| {
                    let mut dp = vec![0.0f32; s];
                    for h in 0..n_head {
                        for i in 0..s {
                            let dyi = &dyb[i * c + h * hd..][..hd];
                            let p = &pb[(h * s + i) * s..][..s];
                            let mut sum = 0.0f32;
                            for j in 0..=i {
                                let v = &xb[j * c3 + 2 * c + h * hd..][..hd];
                                let d = dot(dyi, v);
                                dp[j] = d;
                                sum += p[j] * d;
                                // dV_j += p_ij dy_i
                                axpy(p[j], dyi, &mut db[j * c3 + 2 * c + h * hd..][..hd]);
                            }
                            let q = &xb[i * c3 + h * hd..][..hd];
                            for j in 0..=i {
                                let ds = p[j] * (dp[j] - sum) * scale;
                                let k = &xb[j * c3 + c + h * hd..][..hd];
                                // dQ_i += ds K_j ; dK_j += ds Q_i
                                axpy(ds, k, &mut db[i * c3 + h * hd..][..hd]);
                                axpy(ds, q, &mut db[j * c3 + c + h * hd..][..hd]);
                            }
                        }
                    }
                });
            Ok(())
        });
    }
    (out.put_tape(tape), kept)
}
