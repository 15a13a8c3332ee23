//! Fused CPU kernels: each computes its forward pass on host buffers, in
//! parallel with rayon where it pays, and registers a hand-written backward
//! on the tape. They replace the plain dfdx compositions of
//! [`super::kernels::plain`] when `model.fused` is true (the default).
//!
//! Every parallel reduction is split into chunks of a fixed size and summed in
//! chunk order, so results do not depend on the number of threads.
//!
//! The inputs are the outputs of dfdx ops (matmuls, element-wise ops) or
//! parameters: contiguous tensors in standard row-major layout, which is what
//! [`host`] reads.

pub mod attention;
pub mod cross_entropy;
pub mod embedding;
pub mod gelu;
pub mod layer_norm;
pub mod linear;

use dfdx::prelude::*;

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

/// Dot product with eight independent accumulators (vectorises without
/// fast-math; the summation order is fixed).
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s = 0.0;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        s += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + s
}

/// `y += a * x`.
#[inline]
pub(crate) fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// `exp(x)` for f32 without a libm call, branch-free so loops over it
/// vectorise: range reduction by ln 2 and a degree-6 polynomial (Cephes
/// `expf`), within about 2 ulp of `f32::exp` on [-87, 88]; 0 below that
/// (so `exp(-inf) = 0`, as the causal mask needs).
#[inline(always)]
pub(crate) fn fast_exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let under = x < -87.0;
    let x = x.clamp(-87.0, 88.0);
    // floor without a libm call (no SSE4.1 `roundps` in the base target):
    // truncate, then step down where truncation rounded a negative value up.
    let v = x * LOG2E + 0.5;
    let t = v as i32;
    let n = (t - (v < t as f32) as i32) as f32;
    let r = x - n * LN2_HI - n * LN2_LO;
    let r2 = r * r;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e = p * r2 + r + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    if under {
        0.0
    } else {
        e * scale
    }
}

/// `tanh(x)` through [`fast_exp`]: `sign(x) (1 - e) / (1 + e)`, `e = exp(-2|x|)`;
/// absolute error about 1e-7.
#[inline(always)]
pub(crate) fn fast_tanh(x: f32) -> f32 {
    let e = fast_exp(-2.0 * x.abs());
    ((1.0 - e) / (1.0 + e)).copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_and_tanh_are_accurate() {
        let mut x = -30.0f32;
        while x < 30.0 {
            let (a, b) = (fast_exp(x), x.exp());
            assert!((a - b).abs() <= 4e-7 * b, "exp({x}): {a} vs {b}");
            let (a, b) = (fast_tanh(x), x.tanh());
            assert!((a - b).abs() <= 3e-7, "tanh({x}): {a} vs {b}");
            x += 0.0137;
        }
        assert_eq!(fast_exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(fast_exp(-100.0), 0.0);
    }
}
