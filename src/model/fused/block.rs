//! A transformer block's chains of ops fused across their boundaries, so
//! that the intermediates between them stay host buffers of the op (no
//! dfdx tensor, no host copy of it in the next op, no zero-filled gradient
//! buffer for it in the backward): [`ln_linear`], LayerNorm and the linear
//! layer after it (`ln_1` and `c_attn`); [`block_tail`], the attention's
//! output projection and the MLP, each added onto the residual stream.
//! Every element is computed by the same kernels in the same order as the
//! separate ops ([`super::layer_norm`], [`super::linear`], [`super::gelu`]),
//! so the results are those of the separate ops.

use super::gelu::{activate, chain_in_place};
use super::layer_norm::{backward_host, forward_host};
use super::linear::{add_into, add_to_rows, column_sums, Affine};
use super::{host, with_host, ELEM_CHUNK, ROW_CHUNK};
use crate::model::kernels::Gelu;
use crate::model::{Block, T1, T2, T3};
use dfdx::prelude::*;
use rayon::prelude::*;

/// `linear(layer_norm(x))`: `x (B, S, C)`, LayerNorm gain `g` and bias `b`,
/// then `x̂ W + bias` with `W: (C, O)`.
pub fn ln_linear<T: Tape<f32, Cpu>>(
    x: T3<Cpu, T>,
    g: &T1<Cpu>,
    b: &T1<Cpu>,
    eps: f64,
    w: &T2<Cpu>,
    bias: &T1<Cpu>,
) -> T3<Cpu, T> {
    let (x, mut tape) = x.split_tape();
    let (bsz, s, c) = *x.shape();
    assert_eq!(g.shape().0, c, "layer_norm gain size");
    assert_eq!(b.shape().0, c, "layer_norm bias size");
    let (wi, o) = *w.shape();
    assert_eq!(wi, c, "linear: weight rows must equal the input width");
    assert_eq!(
        bias.shape().0,
        o,
        "linear: bias size must equal the output width"
    );
    let gv = host(g);
    let bv = host(b);
    let (a, xhat, rstd) = with_host(&x, |xv| forward_host(xv, &gv, &bv, eps as f32));
    let mut aff = Affine::from_host(a, c, o);
    let bv = host(bias);
    let y = with_host(w, |wv| aff.biased_product(wv, &bv));
    let out = x.device().tensor_from_vec(y, (bsz, s, o));
    if T::OWNS_TAPE {
        let (xg, og) = (x.ghost(), out.ghost());
        drop(x);
        let (g, b, w, bias) = (g.clone(), b.clone(), w.clone(), bias.clone());
        tape.add_backward_op(move |grads| {
            // The output's gradient, taken out of the store (it is freed
            // here anyway): the linear layer's backward, then LayerNorm's.
            let dy: Vec<f32> = std::mem::take(grads.get_or_alloc_mut(&og)?);
            aff.weight_grad(&dy, grads.get_or_alloc_mut(&w)?);
            column_sums(&dy, o, grads.get_or_alloc_mut(&bias)?);
            // LayerNorm's output is not needed any more: its buffer takes
            // its gradient.
            let mut da = std::mem::take(&mut aff.xv);
            with_host(&w, |wv| aff.input_grad_to(wv, &dy, &mut da, false));
            drop(dy);
            let dx: &mut Vec<f32> = grads.get_or_alloc_mut(&xg)?;
            let partial = backward_host(dx, &da, &xhat, &rstd, &gv);
            partial.add_to(grads, &g, &b)
        });
    }
    out.put_tape(tape)
}

/// The rest of a pre-LayerNorm block after the attention `y (B, S, C)`, on
/// the residual stream `x (B, S, C)`:
/// `x1 = x + y W_o + b_o`, then `x1 + mlp_proj(gelu(c_fc(ln_2(x1))))`.
pub fn block_tail<T: Tape<f32, Cpu> + Merge<T>>(
    x: T3<Cpu, T>,
    y: T3<Cpu, T>,
    blk: &Block<Cpu>,
    eps: f64,
) -> T3<Cpu, T> {
    let (x, tape) = x.split_tape();
    let (y, yt) = y.split_tape();
    let mut tape = tape.merge(yt);
    let shape = *x.shape();
    let c = shape.2;
    assert_eq!(*y.shape(), shape, "block: attention output shape");
    let hidden = blk.c_fc_w.shape().1;
    assert_eq!(*blk.attn_proj_w.shape(), (c, c), "attn.c_proj shape");
    assert_eq!(*blk.c_fc_w.shape(), (c, hidden), "mlp.c_fc shape");
    assert_eq!(*blk.mlp_proj_w.shape(), (hidden, c), "mlp.c_proj shape");
    // x1 = x + b_o + y W_o, on a copy of x (as `linear_residual` does).
    let proj = Affine::from_host(host(&y), c, c);
    let mut xs = host(&x);
    let bo = host(&blk.attn_proj_b);
    xs.par_chunks_mut(c * ROW_CHUNK)
        .for_each(|ch| add_to_rows(ch, &bo));
    with_host(&blk.attn_proj_w, |wv| proj.accumulate_product(wv, &mut xs));
    // m = ln_2(x1); h = gelu(m W_fc + b_fc), keeping gelu' at the pre-activation.
    let g2 = host(&blk.ln_2_g);
    let (m, xhat, rstd) = forward_host(&xs, &g2, &host(&blk.ln_2_b), eps as f32);
    let mut fc = Affine::from_host(m, c, hidden);
    let bfc = host(&blk.c_fc_b);
    let pre = with_host(&blk.c_fc_w, |wv| fc.biased_product(wv, &bfc));
    let (h, dpre) = activate(pre, T::OWNS_TAPE, Gelu::Tanh);
    // x2 = x1 + b_p + h W_p, in place over x1 (LayerNorm kept x̂, not x1).
    let mut mlp = Affine::from_host(h, hidden, c);
    let bp = host(&blk.mlp_proj_b);
    xs.par_chunks_mut(c * ROW_CHUNK)
        .for_each(|ch| add_to_rows(ch, &bp));
    with_host(&blk.mlp_proj_w, |wv| mlp.accumulate_product(wv, &mut xs));
    let out = x.device().tensor_from_vec(xs, shape);
    let Some(mut dpre) = dpre else {
        return out.put_tape(tape);
    };
    let (xg, yg, og) = (x.ghost(), y.ghost(), out.ghost());
    drop((x, y));
    let blk = blk.clone();
    tape.add_backward_op(move |grads| {
        // d(x2), taken out of the store: it becomes d(x1) below (the
        // residual path carries it unchanged).
        let mut dx1: Vec<f32> = std::mem::take(grads.get_or_alloc_mut(&og)?);
        // mlp.c_proj: dW_p, db_p, then dh into h's buffer (h is done).
        mlp.weight_grad(&dx1, grads.get_or_alloc_mut(&blk.mlp_proj_w)?);
        column_sums(&dx1, c, grads.get_or_alloc_mut(&blk.mlp_proj_b)?);
        let mut dh = std::mem::take(&mut mlp.xv);
        with_host(&blk.mlp_proj_w, |wv| {
            mlp.input_grad_to(wv, &dx1, &mut dh, false)
        });
        // GELU: the kept derivative times dh is the pre-activation's gradient.
        dpre.par_chunks_mut(ELEM_CHUNK)
            .zip(dh.par_chunks(ELEM_CHUNK))
            .for_each(|(kc, gc)| chain_in_place(kc, gc));
        drop(dh);
        // mlp.c_fc: dW_fc, db_fc, then dm into m's buffer.
        fc.weight_grad(&dpre, grads.get_or_alloc_mut(&blk.c_fc_w)?);
        column_sums(&dpre, hidden, grads.get_or_alloc_mut(&blk.c_fc_b)?);
        let mut dm = std::mem::take(&mut fc.xv);
        with_host(&blk.c_fc_w, |wv| {
            fc.input_grad_to(wv, &dpre, &mut dm, false)
        });
        drop(dpre);
        // ln_2: d(x1) += its input gradient.
        let partial = backward_host(&mut dx1, &dm, &xhat, &rstd, &g2);
        partial.add_to(grads, &blk.ln_2_g, &blk.ln_2_b)?;
        drop(dm);
        // attn.c_proj: dy += d(x1) W_oᵀ, dW_o, db_o; the residual: dx += d(x1).
        let dy: &mut Vec<f32> = grads.get_or_alloc_mut(&yg)?;
        with_host(&blk.attn_proj_w, |wv| proj.input_grad(wv, &dx1, dy));
        proj.weight_grad(&dx1, grads.get_or_alloc_mut(&blk.attn_proj_w)?);
        column_sums(&dx1, c, grads.get_or_alloc_mut(&blk.attn_proj_b)?);
        add_into(grads.get_or_alloc_mut(&xg)?, &dx1);
        Ok(())
    });
    out.put_tape(tape)
}
