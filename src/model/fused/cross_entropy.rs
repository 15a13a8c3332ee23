//! Mean softmax cross-entropy of integer targets; the backward writes
//! `(softmax - onehot) * dloss / N` without keeping the probabilities.

use super::{host, ROW_CHUNK};
use crate::model::simd::{fast_exp, max8, simd_fn, sum_exp8};
use crate::model::T2;
use dfdx::prelude::*;
use rayon::prelude::*;

simd_fn! {
    /// `log Σ exp(row)`, stably.
    fn log_sum_exp(row: &[f32]) -> f32 {
        let m = max8(row);
        m + sum_exp8(row, m).ln()
    }
}

simd_fn! {
    /// `d += scale * exp(x - lse)` (the softmax part of the gradient).
    fn add_softmax(d: &mut [f32], x: &[f32], lse: f32, scale: f32) {
        for (d, &x) in d.iter_mut().zip(x) {
            *d += scale * fast_exp(x - lse);
        }
    }
}

pub fn cross_entropy<T: Tape<f32, Cpu>>(
    logits: T2<Cpu, T>,
    targets: Tensor<(usize,), usize, Cpu>,
) -> Tensor<(), f32, Cpu, T> {
    let (l, mut tape) = logits.split_tape();
    let (n, v) = *l.shape();
    let tg = targets.as_vec();
    assert_eq!(tg.len(), n, "one target per logits row");
    assert!(
        tg.iter().all(|&t| t < v),
        "target id out of range for {v} logits"
    );
    let lv = host(&l);
    // log-sum-exp per row, and the per-chunk sums of (lse - logit[target]).
    let mut lse = vec![0.0f32; n];
    let partial: Vec<f64> = lse
        .par_chunks_mut(ROW_CHUNK)
        .zip(lv.par_chunks(v * ROW_CHUNK).zip(tg.par_chunks(ROW_CHUNK)))
        .map(|(lc, (xc, tc))| {
            let mut s = 0.0f64;
            for (r, row) in xc.chunks(v).enumerate() {
                let ls = log_sum_exp(row);
                lc[r] = ls;
                s += (ls - row[tc[r]]) as f64;
            }
            s
        })
        .collect();
    let loss = (partial.iter().sum::<f64>() / n.max(1) as f64) as f32;
    let out = l.device().tensor_from_vec(vec![loss], ());
    if T::OWNS_TAPE {
        // Ghosts: the logits' buffer is not kept besides `lv`.
        let (og, lg) = (out.ghost(), l.ghost());
        drop(l);
        tape.add_backward_op(move |grads| {
            let g = grads.get_or_alloc_mut(&og)?[0];
            let scale = g / n.max(1) as f32;
            let dl: &mut Vec<f32> = grads.get_or_alloc_mut(&lg)?;
            dl.par_chunks_mut(v * ROW_CHUNK)
                .zip(lv.par_chunks(v * ROW_CHUNK))
                .zip(lse.par_chunks(ROW_CHUNK).zip(tg.par_chunks(ROW_CHUNK)))
                .for_each(|((dc, xc), (lc, tc))| {
                    for (r, (drow, xrow)) in dc.chunks_mut(v).zip(xc.chunks(v)).enumerate() {
                        add_softmax(drow, xrow, lc[r], scale);
                        drow[tc[r]] -= scale;
                    }
                });
            Ok(())
        });
    }
    out.put_tape(tape)
}
