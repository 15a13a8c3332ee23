//! Broadcast additions done in one pass: the bias of a linear layer over
//! `(B, S, O)`, and the position embeddings over the batch.

use super::{host, ELEM_CHUNK, ROW_CHUNK};
use crate::model::{T1, T2, T3};
use dfdx::prelude::*;
use rayon::prelude::*;

/// Adds `dy` into `dx` in parallel.
fn add_into(dx: &mut [f32], dy: &[f32]) {
    dx.par_chunks_mut(ELEM_CHUNK)
        .zip(dy.par_chunks(ELEM_CHUNK))
        .for_each(|(d, s)| {
            for (a, b) in d.iter_mut().zip(s) {
                *a += b;
            }
        });
}

/// Sums `rows` of width `c` in fixed chunks, chunk partials added in order.
fn column_sums(dy: &[f32], c: usize, acc: &mut [f32]) {
    let partial: Vec<Vec<f32>> = dy
        .par_chunks(c * ROW_CHUNK * 4)
        .map(|ch| {
            let mut s = vec![0.0f32; c];
            for row in ch.chunks(c) {
                for (a, b) in s.iter_mut().zip(row) {
                    *a += b;
                }
            }
            s
        })
        .collect();
    for p in &partial {
        for (a, b) in acc.iter_mut().zip(p) {
            *a += b;
        }
    }
}

/// `x + b` with `b: (O,)` broadcast over the rows of `x: (B, S, O)`.
pub fn bias_add<T: Tape<f32, Cpu>>(x: T3<Cpu, T>, b: &T1<Cpu>) -> T3<Cpu, T> {
    let (x, mut tape) = x.split_tape();
    let shape = *x.shape();
    let o = shape.2;
    assert_eq!(b.shape().0, o, "bias size");
    let mut y = host(&x);
    let bv = host(b);
    y.par_chunks_mut(o * ROW_CHUNK).for_each(|ch| {
        for row in ch.chunks_mut(o) {
            for (a, bb) in row.iter_mut().zip(&bv) {
                *a += bb;
            }
        }
    });
    let out = x.device().tensor_from_vec(y, shape);
    if T::OWNS_TAPE {
        let (out_c, b) = (out.clone(), b.clone());
        tape.add_backward_op(move |grads| {
            let dy: Vec<f32> = grads.get_or_alloc_mut(&out_c)?.to_vec();
            let dx: &mut Vec<f32> = grads.get_or_alloc_mut(&x)?;
            add_into(dx, &dy);
            let db: &mut Vec<f32> = grads.get_or_alloc_mut(&b)?;
            column_sums(&dy, o, db);
            Ok(())
        });
    }
    out.put_tape(tape)
}

/// `tok (B*S, C)` reshaped to `(B, S, C)` plus rows `0..S` of `wpe` broadcast over the batch.
pub fn add_positions<T: Tape<f32, Cpu>>(
    tok: T2<Cpu, T>,
    wpe: &T2<Cpu>,
    batch: usize,
    seq: usize,
) -> T3<Cpu, T> {
    let (tok, mut tape) = tok.split_tape();
    let c = tok.shape().1;
    assert_eq!(tok.shape().0, batch * seq, "token rows must be batch * seq");
    assert!(
        wpe.shape().0 >= seq && wpe.shape().1 == c,
        "position table size"
    );
    let mut y = host(&tok);
    let pv = host(wpe);
    y.par_chunks_mut(seq * c).for_each(|ch| {
        for (a, p) in ch.iter_mut().zip(&pv[..seq * c]) {
            *a += p;
        }
    });
    let out = tok.device().tensor_from_vec(y, (batch, seq, c));
    if T::OWNS_TAPE {
        let (out_c, wpe) = (out.clone(), wpe.clone());
        tape.add_backward_op(move |grads| {
            let dy: Vec<f32> = grads.get_or_alloc_mut(&out_c)?.to_vec();
            let dt: &mut Vec<f32> = grads.get_or_alloc_mut(&tok)?;
            add_into(dt, &dy);
            let dp: &mut Vec<f32> = grads.get_or_alloc_mut(&wpe)?;
            for bch in dy.chunks(seq * c) {
                for (a, b) in dp[..seq * c].iter_mut().zip(bch) {
                    *a += b;
                }
            }
            Ok(())
        });
    }
    out.put_tape(tape)
}
