//! Linear layers as one fused op (`res + x W + b`: bias and residual written
//! first, the product accumulated onto them by one `(B*S, I) x (I, O)`
//! [`sgemm`], and a backward that accumulates `dx`, `dW`, `db` and the
//! residual's gradient straight into the gradient buffers), the plain bias
//! broadcast, and the position embeddings broadcast over the batch.

use super::gelu::{activate, chain_in_place};
use super::matmul::{sgemm, sgemm_new, Init, Mat};
use super::{free_grad, ghost_io, host, with_host, ELEM_CHUNK, ROW_CHUNK};
use crate::model::kernels::Gelu;
use crate::model::simd::simd_fn;
use crate::model::{T1, T2, T3};
use dfdx::prelude::*;
use rayon::prelude::*;

simd_fn! {
    /// `d += s`, element-wise.
    fn add_slice(d: &mut [f32], s: &[f32]) {
        for (a, b) in d.iter_mut().zip(s) {
            *a += b;
        }
    }
}

simd_fn! {
    /// Adds `row` to every `row.len()`-wide row of `ch`.
    pub(crate) fn add_to_rows(ch: &mut [f32], row: &[f32]) {
        for r in ch.chunks_exact_mut(row.len()) {
            for (a, b) in r.iter_mut().zip(row) {
                *a += b;
            }
        }
    }
}

/// Adds `dy` into `dx` in parallel.
pub(crate) fn add_into(dx: &mut [f32], dy: &[f32]) {
    dx.par_chunks_mut(ELEM_CHUNK)
        .zip(dy.par_chunks(ELEM_CHUNK))
        .for_each(|(d, s)| add_slice(d, s));
}

/// Sums `rows` of width `c` in fixed chunks, chunk partials added in order.
pub(crate) fn column_sums(dy: &[f32], c: usize, acc: &mut [f32]) {
    let partial: Vec<Vec<f32>> = dy
        .par_chunks(c * ROW_CHUNK * 4)
        .map(|ch| {
            let mut s = vec![0.0f32; c];
            add_to_rows_transposed(ch, &mut s);
            s
        })
        .collect();
    for p in &partial {
        add_slice(acc, p);
    }
}

simd_fn! {
    /// Adds every `s.len()`-wide row of `ch` into `s`, in row order.
    fn add_to_rows_transposed(ch: &[f32], s: &mut [f32]) {
        for row in ch.chunks_exact(s.len()) {
            for (a, b) in s.iter_mut().zip(row) {
                *a += b;
            }
        }
    }
}

/// What the fused linear ops share: the shapes, the host copy of `x` the
/// backward needs, and the three products. The weights are read from the
/// tensor when a product needs them (a copy for the forward, another in the
/// backward): a copy kept from forward to backward would hold a second copy
/// of every weight matrix for the whole step.
pub(crate) struct Affine {
    /// Rows (`B*S`), input and output widths.
    pub(crate) m: usize,
    pub(crate) i: usize,
    pub(crate) o: usize,
    /// The input, `m` rows of `i`.
    pub(crate) xv: Vec<f32>,
    threads: usize,
}

impl Affine {
    fn new(x: &T3<Cpu>, w: &T2<Cpu>, b: &T1<Cpu>) -> Self {
        let (bsz, s, i) = *x.shape();
        let (wi, o) = *w.shape();
        assert_eq!(wi, i, "linear: weight rows must equal the input width");
        assert_eq!(
            b.shape().0,
            o,
            "linear: bias size must equal the output width"
        );
        Affine {
            m: bsz * s,
            i,
            o,
            xv: host(x),
            threads: rayon::current_num_threads(),
        }
    }

    /// A layer of `o` outputs on the host input `xv` (rows of `i`).
    pub(crate) fn from_host(xv: Vec<f32>, i: usize, o: usize) -> Self {
        Affine {
            m: xv.len() / i.max(1),
            i,
            o,
            xv,
            threads: rayon::current_num_threads(),
        }
    }

    /// `x W + b` into a new buffer, `wv` the weights, `bv` the bias: the
    /// bias enters in the product's store (bit for bit `b` accumulated onto),
    /// so the output is written once.
    pub(crate) fn biased_product(&self, wv: &[f32], bv: &[f32]) -> Vec<f32> {
        let (m, i, o) = (self.m, self.i, self.o);
        let (x, w) = (Mat::rows(&self.xv, i), Mat::rows(wv, o));
        sgemm_new(m, o, i, 1.0, x, w, Init::Bias(bv), self.threads)
    }

    /// `y += x W`, `wv` the weights.
    pub(crate) fn accumulate_product(&self, wv: &[f32], y: &mut [f32]) {
        let (m, i, o) = (self.m, self.i, self.o);
        let (x, w) = (Mat::rows(&self.xv, i), Mat::rows(wv, o));
        sgemm(m, o, i, 1.0, x, w, y, o, true, self.threads);
    }

    /// `dx += dy Wᵀ`, `wv` the weights.
    pub(crate) fn input_grad(&self, wv: &[f32], dy: &[f32], dx: &mut [f32]) {
        self.input_grad_to(wv, dy, dx, true);
    }

    /// `dx = dy Wᵀ` (`accumulate`: `dx += dy Wᵀ`), `wv` the weights.
    pub(crate) fn input_grad_to(&self, wv: &[f32], dy: &[f32], dx: &mut [f32], accumulate: bool) {
        let (m, i, o) = (self.m, self.i, self.o);
        let (dy, wt) = (Mat::rows(dy, o), Mat::t(wv, o));
        sgemm(m, i, o, 1.0, dy, wt, dx, i, accumulate, self.threads);
    }

    /// `dW += xᵀ dy`.
    pub(crate) fn weight_grad(&self, dy: &[f32], dw: &mut [f32]) {
        let (m, i, o) = (self.m, self.i, self.o);
        let (xt, dy) = (Mat::t(&self.xv, i), Mat::rows(dy, o));
        sgemm(i, o, m, 1.0, xt, dy, dw, o, true, self.threads);
    }
}

/// `x W + b` with `x: (B, S, I)`, `W: (I, O)` (GPT-2's Conv1D layout), `b: (O,)`.
pub fn linear<T: Tape<f32, Cpu> + Merge<T>>(x: T3<Cpu, T>, w: &T2<Cpu>, b: &T1<Cpu>) -> T3<Cpu, T> {
    linear_impl(None, x, w, b)
}

/// `res + x W + b`: a linear layer added onto the residual stream `res: (B, S, O)`.
pub fn linear_residual<T: Tape<f32, Cpu> + Merge<T>>(
    res: T3<Cpu, T>,
    x: T3<Cpu, T>,
    w: &T2<Cpu>,
    b: &T1<Cpu>,
) -> T3<Cpu, T> {
    linear_impl(Some(res), x, w, b)
}

fn linear_impl<T: Tape<f32, Cpu> + Merge<T>>(
    res: Option<T3<Cpu, T>>,
    x: T3<Cpu, T>,
    w: &T2<Cpu>,
    b: &T1<Cpu>,
) -> T3<Cpu, T> {
    let (x, tape) = x.split_tape();
    let (res, mut tape) = match res {
        Some(r) => {
            let (r, rt) = r.split_tape();
            (Some(r), rt.merge(tape))
        }
        None => (None, tape),
    };
    let (bsz, s, _) = *x.shape();
    let aff = Affine::new(&x, w, b);
    let (m, o) = (aff.m, aff.o);
    let bv = host(b);
    // The product accumulates onto `res + b`, or starts from `b`.
    let y = match &res {
        Some(r) => {
            assert_eq!(*r.shape(), (bsz, s, o), "linear: residual shape");
            let mut y = host(r);
            y.par_chunks_mut(o * ROW_CHUNK)
                .for_each(|ch| add_to_rows(ch, &bv));
            with_host(w, |wv| aff.accumulate_product(wv, &mut y));
            y
        }
        None => with_host(w, |wv| aff.biased_product(wv, &bv)),
    };
    debug_assert_eq!(y.len(), m * o);
    let out = x.device().tensor_from_vec(y, (bsz, s, o));
    if T::OWNS_TAPE {
        // Ghosts of the input, the residual and the output: their buffers
        // are not kept until the backward pass (`aff` has what it needs).
        let (xg, og, rg) = (x.ghost(), out.ghost(), res.as_ref().map(|r| r.ghost()));
        drop((x, res));
        let (w, b) = (w.clone(), b.clone());
        tape.add_backward_op(move |grads| {
            let (dx, dy) = ghost_io!(grads, &xg, &og)?;
            with_host(&w, |wv| aff.input_grad(wv, dy, dx));
            let (dw, dy) = ghost_io!(grads, &w, &og)?;
            aff.weight_grad(dy, dw);
            let (db, dy) = ghost_io!(grads, &b, &og)?;
            column_sums(dy, o, db);
            if let Some(rg) = &rg {
                let (dr, dy) = ghost_io!(grads, rg, &og)?;
                add_into(dr, dy);
            }
            free_grad!(grads, &og);
            Ok(())
        });
    }
    out.put_tape(tape)
}

/// `gelu(x W + b)` (the MLP's first layer) as one op: the pre-activation
/// never becomes a tensor (no copy of it, no gradient buffer for it); the
/// forward keeps GELU's derivative, and the backward turns it into the
/// pre-activation's gradient in place before the two products.
pub fn linear_gelu<T: Tape<f32, Cpu>>(x: T3<Cpu, T>, w: &T2<Cpu>, b: &T1<Cpu>) -> T3<Cpu, T> {
    linear_act(x, w, b, Gelu::Tanh)
}

/// [`linear_gelu`] with the GELU `act` names.
pub fn linear_act<T: Tape<f32, Cpu>>(
    x: T3<Cpu, T>,
    w: &T2<Cpu>,
    b: &T1<Cpu>,
    act: Gelu,
) -> T3<Cpu, T> {
    let (x, mut tape) = x.split_tape();
    let (bsz, s, _) = *x.shape();
    let aff = Affine::new(&x, w, b);
    let o = aff.o;
    let bv = host(b);
    let pre = with_host(w, |wv| aff.biased_product(wv, &bv));
    // With gradients, `pre` comes back as GELU's derivative at it.
    let (y, dydx) = activate(pre, T::OWNS_TAPE, act);
    let out = x.device().tensor_from_vec(y, (bsz, s, o));
    let Some(mut dpre) = dydx else {
        return out.put_tape(tape);
    };
    let (xg, og) = (x.ghost(), out.ghost());
    drop(x);
    let (w, b) = (w.clone(), b.clone());
    tape.add_backward_op(move |grads| {
        // The kept derivative times dy: the pre-activation's gradient.
        let dy: &[f32] = grads.get_or_alloc_mut(&og)?;
        dpre.par_chunks_mut(ELEM_CHUNK)
            .zip(dy.par_chunks(ELEM_CHUNK))
            .for_each(|(kc, gc)| chain_in_place(kc, gc));
        free_grad!(grads, &og);
        let dx: &mut Vec<f32> = grads.get_or_alloc_mut(&xg)?;
        with_host(&w, |wv| aff.input_grad(wv, &dpre, dx));
        aff.weight_grad(&dpre, grads.get_or_alloc_mut(&w)?);
        column_sums(&dpre, o, grads.get_or_alloc_mut(&b)?);
        Ok(())
    });
    out.put_tape(tape)
}

/// The tied LM head: `x (N, C) · wteᵀ` with `wte: (V, C)`, logits `(N, V)`.
pub fn lm_head<T: Tape<f32, Cpu>>(x: T2<Cpu, T>, wte: &T2<Cpu>) -> T2<Cpu, T> {
    let (x, mut tape) = x.split_tape();
    let (n, c) = *x.shape();
    let (v, wc) = *wte.shape();
    assert_eq!(wc, c, "lm_head: embedding width must equal the input width");
    let xv = host(&x);
    let threads = rayon::current_num_threads();
    let mut y = vec![0.0f32; n * v];
    sgemm(
        n,
        v,
        c,
        1.0,
        Mat::rows(&xv, c),
        Mat::t(&host(wte), c),
        &mut y,
        v,
        false,
        threads,
    );
    let out = x.device().tensor_from_vec(y, (n, v));
    if T::OWNS_TAPE {
        // Ghosts of the input and the output; the embedding is read again
        // in the backward rather than kept.
        let (xg, og, wte) = (x.ghost(), out.ghost(), wte.clone());
        drop(x);
        tape.add_backward_op(move |grads| {
            // dx += dy wte ; dwte += dyᵀ x
            let wv = host(&wte);
            let (dx, dy) = ghost_io!(grads, &xg, &og)?;
            sgemm(
                n,
                c,
                v,
                1.0,
                Mat::rows(dy, v),
                Mat::rows(&wv, c),
                dx,
                c,
                true,
                threads,
            );
            drop(wv);
            let (dw, dy) = ghost_io!(grads, &wte, &og)?;
            sgemm(
                v,
                c,
                n,
                1.0,
                Mat::t(dy, v),
                Mat::rows(&xv, c),
                dw,
                c,
                true,
                threads,
            );
            free_grad!(grads, &og);
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
        let (og, tg, wpe) = (out.ghost(), tok.ghost(), wpe.clone());
        drop(tok);
        tape.add_backward_op(move |grads| {
            let dy: Vec<f32> = std::mem::take(grads.get_or_alloc_mut(&og)?);
            let dt: &mut Vec<f32> = grads.get_or_alloc_mut(&tg)?;
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
