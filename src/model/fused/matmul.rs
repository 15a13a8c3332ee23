//! The one matrix product the fused kernels use, on host slices with
//! arbitrary strides (so transposed operands and per-head column blocks need
//! no copies).

/// `C = (C if accumulate else 0) + alpha * A·B` with `A: m×k`, `B: k×n`,
/// `C: m×n`. Element `(i, j)` of `A` is `a[i*a_rs + j*a_cs]` (likewise `B`);
/// `C`'s columns are contiguous (`c[i*c_rs + j]`). `threads > 1` splits the
/// work over rows/columns of `C` only, never over `k`, so the result does not
/// depend on the thread count.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    a_rs: usize,
    a_cs: usize,
    b: &[f32],
    b_rs: usize,
    b_cs: usize,
    c: &mut [f32],
    c_rs: usize,
    accumulate: bool,
    threads: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rs: usize, cs: usize, r: usize, cols: usize| (r - 1) * rs + (cols - 1) * cs;
    assert!(c.len() > last(c_rs, 1, m, n), "sgemm: C too short");
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                c[i * c_rs..i * c_rs + n].fill(0.0);
            }
        }
        return;
    }
    assert!(a.len() > last(a_rs, a_cs, m, k), "sgemm: A too short");
    assert!(b.len() > last(b_rs, b_cs, k, n), "sgemm: B too short");
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above keep every index the strides reach in bounds.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            c_rs as isize,
            accumulate,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            1.0,
            alpha,
            false,
            false,
            false,
            par,
        );
    }
}
