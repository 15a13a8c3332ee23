//! Fused CPU kernels: each computes its forward pass on host buffers, in
//! parallel with rayon where it pays, and registers a hand-written backward
//! on the tape. [`Fused`] gathers them as the CPU's [`Ops`]: they replace
//! the plain dfdx compositions of [`super::kernels::plain`] when
//! `model.fused` is true (the default).
//!
//! Every parallel reduction is split into chunks of a fixed size and summed in
//! chunk order, so results do not depend on the number of threads.
//!
//! The inputs are the outputs of dfdx ops (matmuls, element-wise ops) or
//! parameters: contiguous tensors in standard row-major layout, which is what
//! [`host`] reads.

pub mod attention;
pub mod block;
pub mod cross_entropy;
pub mod embedding;
pub mod gelu;
pub mod layer_norm;
pub mod linear;
pub mod matmul;

use super::kernels::{Fused, Gelu, Ops};
use super::{Block, T1, T2, T3, T4};
use dfdx::prelude::*;

/// Makes every fused kernel take its portable path; see [`super::simd`].
pub use super::simd::set_portable_only;

/// Rows per parallel task in row-wise kernels, fixed so that partial sums
/// (and thus results) do not depend on the thread count.
pub(crate) const ROW_CHUNK: usize = 16;
/// Elements per parallel task in element-wise kernels.
pub(crate) const ELEM_CHUNK: usize = 8192;

/// The data of a contiguous tensor as a host vector (one memcpy).
pub fn host<S: Shape, T>(t: &Tensor<S, f32, Cpu, T>) -> Vec<f32> {
    let mut v = vec![0.0; t.shape().num_elements()];
    t.copy_into(&mut v);
    v
}

thread_local! {
    /// [`with_host`]'s buffer: as large as the largest tensor it copied on
    /// this thread.
    static SCRATCH: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// `f` of the data of `t`, copied into this thread's scratch buffer: one
/// memcpy, without the allocation and zero-fill of [`host`] once the buffer
/// has grown. For copies read within one call (the weights of a product).
/// A nested call (none is made today) would get a buffer of its own.
pub(crate) fn with_host<S: Shape, T, R>(
    t: &Tensor<S, f32, Cpu, T>,
    f: impl FnOnce(&[f32]) -> R,
) -> R {
    let mut buf = SCRATCH.with(|s| s.take());
    let n = t.shape().num_elements();
    if buf.len() < n {
        buf.resize(n, 0.0);
    }
    t.copy_into(&mut buf[..n]);
    let r = f(&buf[..n]);
    SCRATCH.with(|s| s.set(buf));
    r
}

/// The gradient of `out` (to read) and of `x` (to accumulate into), borrowed
/// together without copying `out`'s gradient (dfdx 0.13 keeps its own
/// two-buffer borrow crate-private). `x` and `out` are the store's accessors
/// (closures `|g| g.get_or_alloc_mut(&t)`), so that `t` may be a tensor or
/// its ghost (`Tensor::ghost`: the id and shape without the data, a type
/// dfdx 0.13 does not export): a backward op that keeps ghosts of its input
/// and output does not keep their buffers alive until the backward pass.
/// Both buffers are allocated first, so neither moves while the two borrows
/// live. Call it through the [`ghost_io!`] macro.
pub(crate) fn grad_pair<'g, X, O>(
    grads: &'g mut Gradients<f32, Cpu>,
    mut x: X,
    mut out: O,
) -> Result<(&'g mut [f32], &'g [f32]), CpuError>
where
    X: for<'a> FnMut(&'a mut Gradients<f32, Cpu>) -> Result<&'a mut Vec<f32>, CpuError>,
    O: for<'a> FnMut(&'a mut Gradients<f32, Cpu>) -> Result<&'a mut Vec<f32>, CpuError>,
{
    out(grads)?;
    x(grads)?;
    let dy = out(grads)?;
    let (ptr, len) = (dy.as_ptr(), dy.len());
    let dx = x(grads)?;
    assert!(
        dx.as_ptr() != ptr || len == 0,
        "ghost_io: a tensor cannot be its own input"
    );
    // SAFETY: `x` and `out` are different tensors, so their gradients are
    // different heap buffers (or `out`'s is empty: nothing is read); both
    // exist already (no insertion, hence no reallocation, happens while they
    // are borrowed), and `grads` stays mutably borrowed for 'g, so nothing
    // can free or resize `out`'s buffer.
    let dy = unsafe { std::slice::from_raw_parts(ptr, len) };
    Ok((dx.as_mut_slice(), dy))
}

/// `ghost_io!(grads, &x, &out)`: [`grad_pair`] for tensors or their ghosts.
macro_rules! ghost_io {
    ($grads:expr, $x:expr, $out:expr) => {
        $crate::model::fused::grad_pair(
            $grads,
            |g| g.get_or_alloc_mut($x).map(|v| &mut **v),
            |g| g.get_or_alloc_mut($out).map(|v| &mut **v),
        )
    };
}
pub(crate) use ghost_io;

/// `free_grad!(grads, &out)`: frees the gradient buffer of an op's output
/// once the op's backward has read it. dfdx 0.13 keeps every intermediate
/// gradient until the whole backward pass ends; an output's gradient is
/// complete when its producer's backward runs (every consumer ran before)
/// and nothing reads it after, so freeing it there keeps only the
/// gradients of the layers in flight.
macro_rules! free_grad {
    ($grads:expr, $t:expr) => {
        let g: &mut Vec<f32> = $grads.get_or_alloc_mut($t)?;
        *g = Vec::new();
    };
}
pub(crate) use free_grad;

/// The CPU's fused kernels.
impl Ops<Cpu> for Fused {
    fn embedding<T: Tape<f32, Cpu> + Merge<T> + Merge<NoneTape>>(
        wte: T2<Cpu, T>,
        idx: Tensor<(usize,), usize, Cpu>,
    ) -> T2<Cpu, T> {
        embedding::embedding(wte, idx)
    }

    fn layer_norm<T: Tape<f32, Cpu> + Merge<T> + Merge<NoneTape>>(
        x: T3<Cpu, T>,
        g: &T1<Cpu>,
        b: &T1<Cpu>,
        eps: f64,
    ) -> T3<Cpu, T> {
        layer_norm::layer_norm(x, g, b, eps)
    }

    fn gelu<T: Tape<f32, Cpu> + Merge<T> + Merge<NoneTape>>(x: T3<Cpu, T>) -> T3<Cpu, T> {
        gelu::gelu(x)
    }

    fn attention<T: Tape<f32, Cpu> + Merge<T> + Merge<NoneTape>>(
        qkv: T3<Cpu, T>,
        n_head: usize,
        causal: bool,
        keep_probs: bool,
    ) -> (T3<Cpu, T>, Option<T4<Cpu>>) {
        attention::attention(qkv, n_head, causal, keep_probs)
    }

    fn linear<T: Tape<f32, Cpu> + Merge<T> + Merge<NoneTape>>(
        x: T3<Cpu, T>,
        w: &T2<Cpu>,
        b: &T1<Cpu>,
    ) -> T3<Cpu, T> {
        linear::linear(x, w, b)
    }

    fn linear_gelu<T: Tape<f32, Cpu> + Merge<T> + Merge<NoneTape>>(
        x: T3<Cpu, T>,
        w: &T2<Cpu>,
        b: &T1<Cpu>,
    ) -> T3<Cpu, T> {
        linear::linear_gelu(x, w, b)
    }

    fn linear_act<T: Tape<f32, Cpu> + Merge<T> + Merge<NoneTape>>(
        x: T3<Cpu, T>,
        w: &T2<Cpu>,
        b: &T1<Cpu>,
        act: Gelu,
    ) -> T3<Cpu, T> {
        linear::linear_act(x, w, b, act)
    }

    fn linear_residual<T: Tape<f32, Cpu> + Merge<T> + Merge<NoneTape>>(
        res: T3<Cpu, T>,
        x: T3<Cpu, T>,
        w: &T2<Cpu>,
        b: &T1<Cpu>,
    ) -> T3<Cpu, T> {
        linear::linear_residual(res, x, w, b)
    }

    fn ln_linear<T: Tape<f32, Cpu> + Merge<T> + Merge<NoneTape>>(
        x: T3<Cpu, T>,
        g: &T1<Cpu>,
        b: &T1<Cpu>,
        eps: f64,
        w: &T2<Cpu>,
        bias: &T1<Cpu>,
    ) -> T3<Cpu, T> {
        block::ln_linear(x, g, b, eps, w, bias)
    }

    fn block_tail<T: Tape<f32, Cpu> + Merge<T> + Merge<NoneTape>>(
        x: T3<Cpu, T>,
        y: T3<Cpu, T>,
        blk: &Block<Cpu>,
        eps: f64,
    ) -> T3<Cpu, T> {
        block::block_tail(x, y, blk, eps)
    }

    fn add_positions<T: Tape<f32, Cpu> + Merge<T> + Merge<NoneTape>>(
        tok: T2<Cpu, T>,
        wpe: &T2<Cpu>,
        batch: usize,
        seq: usize,
    ) -> T3<Cpu, T> {
        linear::add_positions(tok, wpe, batch, seq)
    }

    fn lm_head<T: Tape<f32, Cpu> + Merge<T> + Merge<NoneTape>>(
        x: T2<Cpu, T>,
        wte: &T2<Cpu>,
    ) -> T2<Cpu, T> {
        linear::lm_head(x, wte)
    }

    fn cross_entropy<T: Tape<f32, Cpu> + Merge<T> + Merge<NoneTape>>(
        logits: T2<Cpu, T>,
        targets: Tensor<(usize,), usize, Cpu>,
    ) -> Tensor<(), f32, Cpu, T> {
        cross_entropy::cross_entropy(logits, targets)
    }
}
