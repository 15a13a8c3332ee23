//! GELU element-wise in parallel: tanh-approximated (GPT-2's `gelu_new`) or
//! exact with erf (BERT's `gelu`), as [`Gelu`] says. When recording gradients, the forward also writes the derivative (it
//! shares the one `tanh`), and keeps that instead of the input: the backward
//! is then a plain product.

use super::{free_grad, ghost_io, host, ELEM_CHUNK};
use crate::model::kernels::Gelu;
use crate::model::simd::{fast_tanh, simd_fn};
use crate::model::T3;
use dfdx::prelude::*;
use rayon::prelude::*;

const KAPPA: f32 = 0.044715;
/// sqrt(2 / pi)
const BETA: f32 = 0.797_884_6;

#[inline(always)]
fn f(x: f32) -> f32 {
    0.5 * x * (1.0 + fast_tanh(BETA * (x + KAPPA * x * x * x)))
}

/// `(gelu(x), gelu'(x))`.
#[inline(always)]
fn f_df(x: f32) -> (f32, f32) {
    let x2 = x * x;
    let t = fast_tanh(BETA * (x + KAPPA * x2 * x));
    let y = 0.5 * x * (1.0 + t);
    let d = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * BETA * (1.0 + 3.0 * KAPPA * x2);
    (y, d)
}

/// 1 / sqrt(2)
const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1 / sqrt(2 pi)
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// The exact GELU, `x Φ(x)`.
#[inline(always)]
fn f_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + libm::erff(x * FRAC_1_SQRT_2))
}

/// `(gelu(x), gelu'(x))` of the exact GELU: `Φ(x) + x φ(x)`.
#[inline(always)]
fn f_df_erf(x: f32) -> (f32, f32) {
    let cdf = 0.5 * (1.0 + libm::erff(x * FRAC_1_SQRT_2));
    let pdf = FRAC_1_SQRT_2PI * (-0.5 * x * x).exp();
    (x * cdf, cdf + x * pdf)
}

fn forward_erf_chunk(x: &[f32], y: &mut [f32]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = f_erf(xi);
    }
}

fn forward_erf_grad_in_place(x: &mut [f32], y: &mut [f32]) {
    for (xi, yi) in x.iter_mut().zip(y.iter_mut()) {
        (*yi, *xi) = f_df_erf(*xi);
    }
}

simd_fn! {
    fn forward_chunk(x: &[f32], y: &mut [f32]) {
        for (yi, &xi) in y.iter_mut().zip(x) {
            *yi = f(xi);
        }
    }
}

simd_fn! {
    fn backward_chunk(dydx: &[f32], dy: &[f32], dx: &mut [f32]) {
        for ((d, &k), &g) in dx.iter_mut().zip(dydx).zip(dy) {
            *d += g * k;
        }
    }
}

simd_fn! {
    /// Writes `gelu(x)` into `y` and overwrites `x` with `gelu'(x)`.
    fn forward_grad_in_place(x: &mut [f32], y: &mut [f32]) {
        for (xi, yi) in x.iter_mut().zip(y.iter_mut()) {
            (*yi, *xi) = f_df(*xi);
        }
    }
}

simd_fn! {
    /// `k *= g`: turns the kept derivative into the input's gradient, in place.
    pub(crate) fn chain_in_place(k: &mut [f32], g: &[f32]) {
        for (a, &b) in k.iter_mut().zip(g) {
            *a *= b;
        }
    }
}

/// Writes `gelu(x)` into `y` and `gelu'(x)` over `x`.
type InPlace = fn(&mut [f32], &mut [f32]);
/// Writes `gelu(x)` into `y`.
type Forward = fn(&[f32], &mut [f32]);

/// `gelu(x)`, and when `keep_derivative` also `gelu'(x)` (written over `x`).
pub(crate) fn activate(
    mut x: Vec<f32>,
    keep_derivative: bool,
    act: Gelu,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let mut y = vec![0.0f32; x.len()];
    let (grad_in_place, forward): (InPlace, Forward) = match act {
        Gelu::Tanh => (forward_grad_in_place, forward_chunk),
        Gelu::Erf => (forward_erf_grad_in_place, forward_erf_chunk),
    };
    if keep_derivative {
        y.par_chunks_mut(ELEM_CHUNK)
            .zip(x.par_chunks_mut(ELEM_CHUNK))
            .for_each(|(yc, xc)| grad_in_place(xc, yc));
        (y, Some(x))
    } else {
        y.par_chunks_mut(ELEM_CHUNK)
            .zip(x.par_chunks(ELEM_CHUNK))
            .for_each(|(yc, xc)| forward(xc, yc));
        (y, None)
    }
}

pub fn gelu<T: Tape<f32, Cpu>>(x: T3<Cpu, T>) -> T3<Cpu, T> {
    gelu_of(x, Gelu::Tanh)
}

/// The GELU `act` names, element-wise.
pub fn gelu_of<T: Tape<f32, Cpu>>(x: T3<Cpu, T>, act: Gelu) -> T3<Cpu, T> {
    let (x, mut tape) = x.split_tape();
    let shape = *x.shape();
    let (y, dydx) = activate(host(&x), T::OWNS_TAPE, act);
    let out = x.device().tensor_from_vec(y, shape);
    if let Some(dydx) = dydx {
        let (xg, og) = (x.ghost(), out.ghost());
        drop(x);
        tape.add_backward_op(move |grads| {
            let (dx, dy) = ghost_io!(grads, &xg, &og)?;
            dx.par_chunks_mut(ELEM_CHUNK)
                .zip(dydx.par_chunks(ELEM_CHUNK).zip(dy.par_chunks(ELEM_CHUNK)))
                .for_each(|(dxc, (kc, dyc))| backward_chunk(kc, dyc, dxc));
            free_grad!(grads, &og);
            Ok(())
        });
    }
    out.put_tape(tape)
}
