//! Token embedding: gather rows of `wte`; the backward scatter-adds rows in
//! token order (deterministic).

use super::host;
use crate::model::T2;
use dfdx::prelude::*;
use rayon::prelude::*;

pub fn embedding<T: Tape<f32, Cpu>>(
    wte: T2<Cpu, T>,
    idx: Tensor<(usize,), usize, Cpu>,
) -> T2<Cpu, T> {
    let (w, mut tape) = wte.split_tape();
    let (v, c) = *w.shape();
    let ids = idx.as_vec();
    assert!(
        ids.iter().all(|&i| i < v),
        "token id out of range for the embedding ({v} rows)"
    );
    let wv = host(&w);
    let mut out = vec![0.0f32; ids.len() * c];
    out.par_chunks_mut(c)
        .zip(ids.par_iter())
        .for_each(|(row, &i)| {
            row.copy_from_slice(&wv[i * c..(i + 1) * c]);
        });
    let out = w.device().tensor_from_vec(out, (ids.len(), c));
    if T::OWNS_TAPE {
        let og = out.ghost();
        tape.add_backward_op(move |grads| {
            // The output's gradient, taken out of the store (not copied).
            let dy: Vec<f32> = std::mem::take(grads.get_or_alloc_mut(&og)?);
            let dw: &mut Vec<f32> = grads.get_or_alloc_mut(&w)?;
            for (n, &i) in ids.iter().enumerate() {
                let src = &dy[n * c..(n + 1) * c];
                for (d, s) in dw[i * c..(i + 1) * c].iter_mut().zip(src) {
                    *d += s;
                }
            }
            Ok(())
        });
    }
    out.put_tape(tape)
}
