//! The one matrix product the fused kernels use, on host slices with
//! arbitrary strides (so transposed operands and per-head column blocks need
//! no copies).
//!
//! On x86-64 with AVX2 + FMA (checked at run time): BLIS-style, B packed into
//! KC x NR panels, A into MR x KC panels, and a 6x16 microkernel with 12 ymm
//! accumulators. When an operand is small and has a unit stride it is read
//! in place instead of packed (only the ragged edge panel is packed, zero
//! padded); edge tiles are written back with masked stores. About 1.55x the
//! `gemm` crate (dfdx's matmul) on the baby config's shapes (68-87 against
//! 46-57 GFLOP/s on one core; `cargo bench --bench sgemm`). Elsewhere the `gemm`
//! crate does the work.
//!
//! Numerics (AVX2 path): every C element is computed as, for each k-block of
//! KC (in order), a sequential chain of FMAs over p starting from 0, then
//! `C = alpha*acc` (first block, !accumulate) or `C = fma(alpha, acc, C)`.
//! This does not depend on the tile position, so results are bit-identical
//! for any thread count / work split.

use crate::model::simd::{sgemm_level, SimdLevel};
use std::cell::{Cell, RefCell};
use std::mem::MaybeUninit;

/// The precision of [`sgemm`]'s products on the calling thread: the
/// config's `train.precision` itself. With `Bf16` the operands are rounded
/// to bf16 (nearest, ties to even) and the products accumulated in fp32, C
/// in fp32; AVX512-BF16's `vdpbf16ps` where the CPU has it, elsewhere the
/// rounded operands go through the fp32 kernel (the same products, slower).
pub use crate::config::Precision;

thread_local! {
    static PRECISION: Cell<Precision> = const { Cell::new(Precision::Fp32) };
}

/// Sets the precision of every [`sgemm`] this thread calls (a trainer sets
/// it on each thread of its pool, with `ThreadPoolBuilder::start_handler`).
pub fn set_thread_precision(p: Precision) {
    PRECISION.with(|c| c.set(p));
}

/// The calling thread's [`Precision`].
pub fn thread_precision() -> Precision {
    PRECISION.with(|c| c.get())
}

/// Whether bf16 products run on the CPU's own bf16 instructions
/// (AVX512-BF16) rather than emulated: the CPU has them and the kernel level
/// is not capped below AVX-512 (`HEADSUP_SIMD=avx2` or `portable` emulates).
pub fn bf16_native() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        crate::model::simd::simd_level() >= SimdLevel::Avx512 && bf16::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// What runs bf16 products here, for reports: `AVX512-BF16`, or the
/// emulation and why.
pub fn bf16_engine() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    let have = bf16::available();
    #[cfg(not(target_arch = "x86_64"))]
    let have = false;
    if bf16_native() {
        "AVX512-BF16"
    } else if have {
        "emulated: the kernels are capped below AVX-512"
    } else {
        "emulated: this CPU lacks AVX512-BF16"
    }
}

/// A pool of `threads` threads whose products run at `precision` (each
/// thread sets it as it starts): the trainer's and the benchmark's.
pub fn thread_pool(
    threads: usize,
    precision: Precision,
) -> Result<rayon::ThreadPool, rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .start_handler(move |_| set_thread_precision(precision))
        .build()
}

const MR: usize = 6;
const NR: usize = 16;
const KC: usize = 256;
const MC: usize = 72; // rows of A per packed block (multiple of MR); measured ~same as 120/240
const NC: usize = 2048; // multiple of NR

/// A strided matrix operand: element `(i, j)` at `data[i*rs + j*cs]`.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Mat<'a> {
    pub fn new(data: &'a [f32], rs: usize, cs: usize) -> Self {
        Mat { data, rs, cs }
    }
    /// Row-major rows `rs` apart.
    pub fn rows(data: &'a [f32], rs: usize) -> Self {
        Mat { data, rs, cs: 1 }
    }
    /// The transpose of row-major rows `rs` apart.
    pub fn t(data: &'a [f32], rs: usize) -> Self {
        Mat {
            data,
            rs: 1,
            cs: rs,
        }
    }
}

/// What C holds before `alpha A·B` is added to it.
#[derive(Clone, Copy, Debug)]
pub enum Init<'a> {
    /// Nothing: `C = alpha A·B`.
    Zero,
    /// C's own values: `C += alpha A·B`.
    Keep,
    /// The first `n` values of the slice on every row: `C = bias + alpha A·B`,
    /// bit for bit what filling C's rows with `bias` and then accumulating
    /// onto them gives, without that pass over C (a linear layer's bias).
    Bias(&'a [f32]),
}

impl From<bool> for Init<'_> {
    /// `accumulate`: [`Init::Keep`], else [`Init::Zero`].
    fn from(accumulate: bool) -> Self {
        if accumulate {
            Init::Keep
        } else {
            Init::Zero
        }
    }
}

/// C = (if accumulate { C } else { 0 }) + alpha * A·B, where A is m×k, B is k×n, C is m×n.
/// Element (i,j) of X lives at x[i*x_rs + j*x_cs] (strides in elements).
/// C has column stride 1 (c[i*c_rs + j]).
/// `threads`: if > 1, split the work over rayon tasks (by blocks of rows or
/// columns of C only, never splitting k, so results are bit-identical for any
/// thread count).
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: Mat,
    b: Mat,
    c: &mut [f32],
    c_rs: usize,
    accumulate: bool,
    threads: usize,
) {
    sgemm_init(m, n, k, alpha, a, b, c, c_rs, accumulate.into(), threads);
}

/// [`sgemm`] with C starting from `init` (see [`Init`]).
#[allow(clippy::too_many_arguments)]
pub fn sgemm_init(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: Mat,
    b: Mat,
    c: &mut [f32],
    c_rs: usize,
    init: Init,
    threads: usize,
) {
    let p = Product {
        m,
        n,
        k,
        alpha,
        a,
        b,
        c_rs,
        init,
        threads,
    };
    sgemm_any(p, as_uninit(c));
}

/// `C = bias + alpha A·B` ([`Init::Bias`]) or `alpha A·B` ([`Init::Zero`])
/// into a new `m x n` buffer, written once (no zero-fill before the product).
///
/// # Panics
/// With [`Init::Keep`]: a new buffer has nothing to keep.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_new(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: Mat,
    b: Mat,
    init: Init,
    threads: usize,
) -> Vec<f32> {
    assert!(!matches!(init, Init::Keep), "sgemm_new: nothing to keep");
    let len = m.checked_mul(n).expect("sgemm_new: m x n overflows");
    let mut c = Vec::with_capacity(len);
    let p = Product {
        m,
        n,
        k,
        alpha,
        a,
        b,
        c_rs: n,
        init,
        threads,
    };
    sgemm_any(p, &mut c.spare_capacity_mut()[..len]);
    // SAFETY: with `Init::Zero` or `Init::Bias`, `sgemm_any` writes every
    // element of the dense m x n C (rows `n` apart: all `len` of them).
    unsafe { c.set_len(len) };
    c
}

/// `c` seen as possibly uninitialised: sound, as what is written through
/// it is always an initialised f32.
fn as_uninit(c: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: same layout; the products only ever write initialised values.
    unsafe { &mut *(c as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// One product apart from C: `C = init + alpha A·B`, A m×k, B k×n, C's
/// rows `c_rs` apart, on up to `threads` threads.
#[derive(Clone, Copy)]
struct Product<'a> {
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: Mat<'a>,
    b: Mat<'a>,
    c_rs: usize,
    init: Init<'a>,
    threads: usize,
}

/// [`sgemm_init`] on the thread's precision, C possibly uninitialised
/// (read only with [`Init::Keep`], when it must be initialised).
fn sgemm_any(p: Product, c: &mut [MaybeUninit<f32>]) {
    let bf16 = thread_precision() == Precision::Bf16;
    if bf16 && !bf16_native() {
        return sgemm_bf16_emulated(p, c);
    }
    sgemm_impl(sgemm_level(), bf16, p, c);
}

/// [`Precision::Bf16`] without AVX512-BF16: A and B rounded to bf16 into
/// dense copies, then the fp32 product of those (every product of two bf16
/// is exact in fp32, so only the order of the additions differs from the
/// native kernel).
fn sgemm_bf16_emulated(p: Product, c: &mut [MaybeUninit<f32>]) {
    let Product { m, n, k, a, b, .. } = p;
    if m == 0 || n == 0 || k == 0 {
        return sgemm_impl(sgemm_level(), false, p, c);
    }
    assert!(
        max_index(m, a.rs, k, a.cs) < a.data.len(),
        "sgemm: A slice too short"
    );
    assert!(
        max_index(k, b.rs, n, b.cs) < b.data.len(),
        "sgemm: B slice too short"
    );
    let ra: Vec<f32> = (0..m * k)
        .map(|x| bf16::round_bf16(a.data[(x / k) * a.rs + (x % k) * a.cs]))
        .collect();
    let rb: Vec<f32> = (0..k * n)
        .map(|x| bf16::round_bf16(b.data[(x / n) * b.rs + (x % n) * b.cs]))
        .collect();
    let rounded = Product {
        a: Mat::rows(&ra, k),
        b: Mat::rows(&rb, n),
        ..p
    };
    sgemm_impl(sgemm_level(), false, rounded, c);
}

/// [`sgemm`] at `level`: the AVX-512 or AVX2 kernel, or the `gemm` crate;
/// with `bf16`, the AVX512-BF16 kernel (which the CPU must have, and
/// `level` must not be `Portable`). `level` must not exceed what the CPU has
/// ([`sgemm_level`] never does).
fn sgemm_impl(level: SimdLevel, bf16: bool, p: Product, c: &mut [MaybeUninit<f32>]) {
    let Product {
        m,
        n,
        k,
        alpha,
        a,
        b,
        c_rs,
        init,
        threads,
    } = p;
    if m == 0 || n == 0 {
        return;
    }
    assert!(m == 1 || c_rs >= n, "sgemm: C rows overlap (c_rs < n)");
    assert!(
        max_index(m, c_rs, n, 1) < c.len(),
        "sgemm: C slice too short"
    );
    if let Init::Bias(bias) = init {
        assert!(bias.len() >= n, "sgemm: bias shorter than C's rows");
    }
    // C's starting rows written by a pass of their own: where the product
    // adds nothing, and on the `gemm` crate's path.
    let fill_bias = |c: &mut [MaybeUninit<f32>], bias: &[f32]| {
        for i in 0..m {
            for (d, &x) in c[i * c_rs..i * c_rs + n].iter_mut().zip(bias) {
                d.write(x);
            }
        }
    };
    if k == 0 || alpha == 0.0 {
        match init {
            Init::Zero => {
                for i in 0..m {
                    c[i * c_rs..i * c_rs + n].fill(MaybeUninit::new(0.0));
                }
            }
            Init::Keep => {}
            Init::Bias(bias) => fill_bias(c, bias),
        }
        return;
    }
    assert!(
        max_index(m, a.rs, k, a.cs) < a.data.len(),
        "sgemm: A slice too short"
    );
    assert!(
        max_index(k, b.rs, n, b.cs) < b.data.len(),
        "sgemm: B slice too short"
    );

    if level == SimdLevel::Portable {
        let accumulate = match init {
            Init::Zero => false,
            Init::Keep => true,
            Init::Bias(bias) => {
                fill_bias(c, bias);
                true
            }
        };
        // SAFETY: the asserts above keep every index the strides reach in
        // bounds; C is read only when accumulating onto it (initialised then).
        unsafe { gemm_crate(p, c.as_mut_ptr().cast(), accumulate) };
        return;
    }

    // Every index the strides of `p` reach is in bounds (the asserts above),
    // and the parallel split below hands each task disjoint rows or columns
    // of C.
    let p = Raw {
        m,
        n,
        k,
        alpha,
        a: a.data.as_ptr(),
        a_rs: a.rs,
        a_cs: a.cs,
        b: b.data.as_ptr(),
        b_rs: b.rs,
        b_cs: b.cs,
        c: c.as_mut_ptr().cast(),
        c_rs,
        accumulate: matches!(init, Init::Keep),
        bias: match init {
            Init::Bias(bias) => bias.as_ptr(),
            _ => std::ptr::null(),
        },
    };

    // Below ~1 MFLOP the rayon fork/join cost outweighs the gain.
    let threads = if m * n * k < 512 * 1024 {
        1
    } else {
        threads.max(1)
    };
    if threads <= 1 {
        // SAFETY: `p` covers the whole checked problem, and `level` is one
        // the CPU has (this function's contract).
        unsafe { sgemm_st(p, level, bf16) };
        return;
    }

    // Split over rows (multiples of the tile's rows) or columns (multiples
    // of its columns) of C. Results do not depend on the split.
    let (mr, nr) = if bf16 {
        (bf16::MR, bf16::NR)
    } else if level == SimdLevel::Avx512 {
        (avx512::MR, avx512::NR)
    } else {
        (MR, NR)
    };
    let (mb, nb) = (m.div_ceil(mr), n.div_ceil(nr));
    // Splitting rows duplicates B packing, splitting columns duplicates A packing.
    let split_m = (m >= n && mb >= threads) || nb < threads;
    let (blk, nblk, dim) = if split_m { (mr, mb, m) } else { (nr, nb, n) };
    let t = threads.min(nblk);
    let ranges: Vec<(usize, usize)> = (0..t)
        .map(|ti| {
            (
                (nblk * ti / t) * blk,
                ((nblk * (ti + 1) / t) * blk).min(dim),
            )
        })
        .filter(|(s, e)| e > s)
        .collect();
    rayon::scope(move |sc| {
        let last = ranges.len() - 1;
        for (idx, &(s, e)) in ranges.iter().enumerate() {
            // SAFETY: `s < e <= dim` (the ranges split `0..dim`, empty ones
            // dropped), so the sub-problem starts inside A or B and C.
            let part = unsafe {
                if split_m {
                    p.rows(s, e)
                } else {
                    p.cols(s, e)
                }
            };
            if idx == last {
                // SAFETY: `part` is a checked sub-problem whose part of C no
                // other task writes; the CPU has `level`.
                unsafe { sgemm_st(part, level, bf16) };
            } else {
                // SAFETY: as above; `rayon::scope` joins this task before
                // `sgemm_impl` returns, so the borrowed slices outlive it.
                sc.spawn(move |_| unsafe { sgemm_st(part, level, bf16) });
            }
        }
    });
}

/// The `gemm` crate (dfdx's own matmul engine): the path without AVX2/FMA
/// (and on other architectures, where it has its own SIMD kernels). Its
/// parallel split is over rows/columns of C too.
///
/// # Safety
/// m, n, k > 0 and every index the strides of `p` reach is in bounds, `c`
/// included (as checked by [`sgemm_impl`]); `p.init` is not read: C starts
/// from itself with `accumulate`, else from zero.
unsafe fn gemm_crate(p: Product, c: *mut f32, accumulate: bool) {
    let Product {
        m,
        n,
        k,
        alpha,
        a,
        b,
        c_rs,
        threads,
        ..
    } = p;
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the caller keeps every index the strides reach in bounds.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c,
            1,
            c_rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            alpha,
            false,
            false,
            false,
            par,
        );
    }
}

/// Largest index touched by a rows×cols view (rows, cols >= 1); usize::MAX on overflow.
fn max_index(rows: usize, rs: usize, cols: usize, cs: usize) -> usize {
    (rows - 1)
        .checked_mul(rs)
        .and_then(|x| (cols - 1).checked_mul(cs).and_then(|y| x.checked_add(y)))
        .unwrap_or(usize::MAX)
}

/// One product on raw pointers, already checked by [`sgemm_impl`]:
/// `C (+)= alpha A B` with the strides of [`Mat`], C's columns contiguous.
#[derive(Clone, Copy)]
struct Raw {
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: *const f32,
    a_rs: usize,
    a_cs: usize,
    b: *const f32,
    b_rs: usize,
    b_cs: usize,
    c: *mut f32,
    c_rs: usize,
    accumulate: bool,
    /// Null, or (with `!accumulate`) the row C starts from, `n` values.
    bias: *const f32,
}

// SAFETY: a `Raw` is only sent to the rayon tasks of one `sgemm_impl` call,
// which outlive none of the borrowed slices and write disjoint parts of C.
unsafe impl Send for Raw {}

impl Raw {
    /// Rows `s..e` of C (and of A).
    ///
    /// # Safety
    /// `s < e <= m`, and `self` is a checked problem (row `s` of A and C lies
    /// inside their buffers).
    unsafe fn rows(self, s: usize, e: usize) -> Raw {
        // SAFETY: row `s < m` of A and of C is inside their buffers (the caller).
        let (a, c) = unsafe { (self.a.add(s * self.a_rs), self.c.add(s * self.c_rs)) };
        Raw {
            m: e - s,
            a,
            c,
            ..self
        }
    }

    /// Columns `s..e` of C (and of B).
    ///
    /// # Safety
    /// `s < e <= n`, and `self` is a checked problem (column `s` of B and C
    /// lies inside their buffers).
    unsafe fn cols(self, s: usize, e: usize) -> Raw {
        // SAFETY: column `s < n` of B and of C (and of the bias row, which
        // has `n` values) is inside their buffers (the caller).
        let (b, c) = unsafe { (self.b.add(s * self.b_cs), self.c.add(s)) };
        let bias = if self.bias.is_null() {
            self.bias
        } else {
            self.bias.wrapping_add(s)
        };
        Raw {
            n: e - s,
            b,
            c,
            bias,
            ..self
        }
    }

    /// The `mr x nr` tile of C at (`row`, `col`), in the k block starting
    /// at `pc`: where it is written and what it starts from (C itself when
    /// accumulating or after the first k block, else the bias row or
    /// nothing). Pointers only, formed with wrapping arithmetic: the
    /// kernels' contracts say which of them are read.
    fn tile(&self, pc: usize, row: usize, col: usize, mr: usize, nr: usize) -> Out {
        let c = self.c.wrapping_add(row * self.c_rs + col);
        let (src, src_rs) = if pc > 0 || self.accumulate {
            (c as *const f32, self.c_rs)
        } else if self.bias.is_null() {
            (std::ptr::null(), 0)
        } else {
            (self.bias.wrapping_add(col), 0)
        };
        Out {
            c,
            c_rs: self.c_rs,
            alpha: self.alpha,
            src,
            src_rs,
            mr,
            nr,
        }
    }
}

/// Where a register tile is written, and what it starts from: element
/// (i, j), i < mr, j < nr, at `c + i*c_rs + j` becomes `alpha acc`, plus
/// `src[i*src_rs + j]` where `src` is not null (C itself when accumulating,
/// a bias row with `src_rs` 0). Shared by every kernel's store.
#[derive(Clone, Copy)]
struct Out {
    c: *mut f32,
    c_rs: usize,
    alpha: f32,
    src: *const f32,
    src_rs: usize,
    mr: usize,
    nr: usize,
}

thread_local! {
    static BUFS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
    static BUFS16: RefCell<(Vec<u32>, Vec<u32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// One thread's share on the `level` kernel (the bf16 one with `bf16`), with
/// this thread's packing buffers.
///
/// # Safety
/// `p` as made by [`sgemm_impl`] (every index its strides reach is in
/// bounds, and no other thread touches its part of C), on a CPU that has
/// `level` (AVX2 + FMA, or AVX-512 as well), and AVX512-BF16 with `bf16`.
unsafe fn sgemm_st(p: Raw, level: SimdLevel, bf16: bool) {
    #[cfg(target_arch = "x86_64")]
    if bf16 {
        BUFS16.with(|bufs| {
            let mut bufs = bufs.borrow_mut();
            let (pa, pb) = &mut *bufs;
            // SAFETY: the caller's contract is `bf16::gemm`'s.
            unsafe { bf16::gemm(p, pa, pb) };
        });
        return;
    }
    #[cfg(target_arch = "x86_64")]
    BUFS.with(|bufs| {
        let mut bufs = bufs.borrow_mut();
        let (pa, pb) = &mut *bufs;
        if level == SimdLevel::Avx512 {
            // SAFETY: the caller's contract is `avx512::gemm`'s.
            unsafe { avx512::gemm(p, pa, pb) };
        } else {
            // SAFETY: the caller's contract is `avx2::gemm`'s.
            unsafe { avx2::gemm(p, pa, pb) };
        }
    });
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (p, level, bf16);
        unreachable!("sgemm_st runs only on x86-64 with AVX2 or more");
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
pub(crate) mod bf16;

#[cfg(test)]
mod tests {
    use super::{as_uninit, sgemm_impl, sgemm_init, Init, Mat, Product};
    use crate::model::simd::{cpu_simd_level, SimdLevel};

    fn portable(p: Product, c: &mut [f32]) {
        sgemm_impl(SimdLevel::Portable, false, p, as_uninit(c));
    }

    fn avx2(p: Product, c: &mut [f32]) {
        sgemm_impl(SimdLevel::Avx2, false, p, as_uninit(c));
    }

    fn avx512(p: Product, c: &mut [f32]) {
        sgemm_impl(SimdLevel::Avx512, false, p, as_uninit(c));
    }

    /// The public entry, on the thread's precision.
    fn public(p: Product, c: &mut [f32]) {
        let Product {
            m,
            n,
            k,
            alpha,
            a,
            b,
            c_rs,
            init,
            threads,
        } = p;
        sgemm_init(m, n, k, alpha, a, b, c, c_rs, init, threads);
    }

    /// Whether this CPU has `level`; says so on stderr when it does not.
    fn cpu_has(level: SimdLevel) -> bool {
        let have = cpu_simd_level() >= level;
        if !have {
            eprintln!(
                "NOTE: this CPU lacks {}: its sgemm path is not checked here",
                level.name()
            );
        }
        have
    }

    type Gemm = fn(Product, &mut [f32]);

    /// What C starts from in a [`check`].
    #[derive(Clone, Copy, Debug)]
    enum Start {
        Zero,
        Keep,
        Bias,
    }

    struct Lcg(u64);
    impl Lcg {
        fn vec(&mut self, n: usize) -> Vec<f32> {
            (0..n)
                .map(|_| {
                    self.0 = self
                        .0
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
                })
                .collect()
        }
    }

    /// Runs `f` at 1 and 2 threads on one case and checks it against an f64
    /// triple loop (relative to Σ|a||b|; on operands rounded to bf16 when
    /// `bf16` is set), bit-equality across thread counts, and that C's
    /// padding between rows is untouched. Starting from a bias row, the
    /// result must be bit-identical to accumulating onto rows of the bias.
    #[allow(clippy::too_many_arguments)]
    fn check(
        f: Gemm,
        rng: &mut Lcg,
        m: usize,
        n: usize,
        k: usize,
        a_l: (usize, usize),
        b_l: (usize, usize),
        start: Start,
        alpha: f32,
        bf16: bool,
    ) {
        let r = |x: f32| {
            if bf16 {
                super::bf16::round_bf16(x) as f64
            } else {
                x as f64
            }
        };
        let ((a_rs, a_cs), (b_rs, b_cs)) = (a_l, b_l);
        let a = rng.vec((m.max(1) - 1) * a_rs + (k.max(1) - 1) * a_cs + 1);
        let b = rng.vec((k.max(1) - 1) * b_rs + (n.max(1) - 1) * b_cs + 1);
        let c_rs = n + 3;
        let c0 = rng.vec(m * c_rs + 1);
        let bias = rng.vec(n + 2);
        let init = match start {
            Start::Zero => Init::Zero,
            Start::Keep => Init::Keep,
            Start::Bias => Init::Bias(&bias),
        };
        let (mut c1, mut c2) = (c0.clone(), c0.clone());
        let (am, bm) = (Mat::new(&a, a_rs, a_cs), Mat::new(&b, b_rs, b_cs));
        let p = Product {
            m,
            n,
            k,
            alpha,
            a: am,
            b: bm,
            c_rs,
            init,
            threads: 1,
        };
        f(p, &mut c1);
        f(Product { threads: 2, ..p }, &mut c2);
        let what = format!("m{m} n{n} k{k} a{a_l:?} b{b_l:?} {start:?} alpha{alpha}");
        let same = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits());
        assert!(same(&c1, &c2), "{what}: 1 vs 2 threads");
        if let Start::Bias = start {
            let mut c3 = c0.clone();
            for i in 0..m {
                c3[i * c_rs..i * c_rs + n].copy_from_slice(&bias[..n]);
            }
            f(
                Product {
                    init: Init::Keep,
                    ..p
                },
                &mut c3,
            );
            assert!(
                same(&c1, &c3),
                "{what}: bias row vs rows of the bias, accumulated"
            );
        }
        for i in 0..m {
            for j in 0..c_rs {
                let got = c1[i * c_rs + j] as f64;
                if j >= n {
                    assert_eq!(got, c0[i * c_rs + j] as f64, "{what}: padding written");
                    continue;
                }
                let (mut s, mut sa) = (0.0f64, 0.0f64);
                for p in 0..k {
                    let x = r(a[i * a_rs + p * a_cs]) * r(b[p * b_rs + j * b_cs]);
                    s += x;
                    sa += x.abs();
                }
                let base = match start {
                    Start::Zero => 0.0,
                    Start::Keep => c0[i * c_rs + j] as f64,
                    Start::Bias => bias[j] as f64,
                };
                let want = base + alpha as f64 * s;
                let err = (got - want).abs() / (alpha as f64 * sa + base.abs()).max(1e-30);
                assert!(err < 1e-5, "{what}: ({i},{j}) got {got} want {want}");
            }
        }
        assert_eq!(c1[m * c_rs], c0[m * c_rs], "{what}: wrote past C");
    }

    fn run_all(f: Gemm, dims: &[usize], bf16: bool) {
        let mut rng = Lcg(12345);
        for &m in dims {
            for &n in dims {
                for &k in dims {
                    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                        let a_l = if ta { (1, m.max(1)) } else { (k.max(1), 1) };
                        let b_l = if tb { (1, k.max(1)) } else { (n.max(1), 1) };
                        for (start, alpha) in
                            [(Start::Zero, 1.0), (Start::Keep, 0.5), (Start::Bias, 0.75)]
                        {
                            check(f, &mut rng, m, n, k, a_l, b_l, start, alpha, bf16);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn sgemm_matches_f64_reference_on_edge_shapes() {
        run_all(public, &[0, 1, 2, 5, 7, 16, 17, 33, 70], false);
    }

    #[test]
    fn sgemm_blocks_and_general_strides() {
        // k > KC, n > NC, m > MC, and strides that are neither 1 nor the width.
        let mut rng = Lcg(99);
        for &(m, n, k) in &[(13, 2100, 300), (130, 70, 513), (64, 32, 64)] {
            for &(a_l, b_l) in &[
                ((k + 3, 1), (1, k + 1)),
                ((2, 2 * m + 1), (3 * n, 2)),
                ((1, m), (n, 1)),
            ] {
                for start in [Start::Zero, Start::Keep, Start::Bias] {
                    check(public, &mut rng, m, n, k, a_l, b_l, start, 0.75, false);
                }
            }
        }
    }

    #[test]
    fn avx2_path_matches_f64_reference() {
        if cpu_has(SimdLevel::Avx2) {
            run_all(avx2, &[0, 1, 5, 17, 40], false);
        }
    }

    #[test]
    fn avx512_path_matches_f64_reference() {
        if cpu_has(SimdLevel::Avx512) {
            run_all(avx512, &[0, 1, 2, 13, 14, 15, 31, 32, 33, 70], false);
            let mut rng = Lcg(7);
            for &(m, n, k) in &[(13, 2100, 300), (150, 70, 513), (64, 32, 64)] {
                for &(a_l, b_l) in &[
                    ((k + 3, 1), (1, k + 1)),
                    ((2, 2 * m + 1), (3 * n, 2)),
                    ((1, m), (n, 1)),
                ] {
                    for start in [Start::Zero, Start::Keep, Start::Bias] {
                        check(avx512, &mut rng, m, n, k, a_l, b_l, start, 0.75, false);
                    }
                }
            }
        }
    }

    /// [`super::sgemm`] on a thread set to bf16: the native AVX512-BF16
    /// kernel where the CPU has it, else the emulation.
    fn bf16_sgemm(p: Product, c: &mut [f32]) {
        super::set_thread_precision(super::Precision::Bf16);
        public(p, c);
        super::set_thread_precision(super::Precision::Fp32);
    }

    fn bf16_emulated(p: Product, c: &mut [f32]) {
        super::sgemm_bf16_emulated(p, as_uninit(c));
    }

    /// Rounding to bf16: nearest, ties to even, NaN kept, overflow to
    /// infinity.
    #[test]
    fn bf16_rounding_is_nearest_even() {
        use super::bf16::{bf16_bits, round_bf16};
        assert_eq!(round_bf16(1.0), 1.0);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1).
        assert_eq!(round_bf16(1.0 + 1.0 / 256.0), 1.0);
        // 1 + 3*2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: to 1 + 2^-6.
        assert_eq!(round_bf16(1.0 + 3.0 / 256.0), 1.0 + 1.0 / 64.0);
        assert_eq!(round_bf16(1.0 + 1.0 / 200.0), 1.0 + 1.0 / 128.0);
        assert_eq!(round_bf16(-2.5), -2.5);
        assert!(round_bf16(f32::NAN).is_nan());
        assert_eq!(round_bf16(f32::INFINITY), f32::INFINITY);
        assert_eq!(round_bf16(f32::MAX), f32::INFINITY);
        assert_eq!(bf16_bits(1.0), 0x3f80);
    }

    /// The bf16 products (native kernel and emulation) against an f64
    /// reference on the rounded operands, every layout and edge, and
    /// bit-identical at 1 and 2 threads (in `check`).
    #[test]
    fn bf16_paths_match_reference_on_rounded_operands() {
        if super::bf16_native() {
            run_all(bf16_sgemm, &[0, 1, 2, 13, 14, 15, 31, 32, 33, 70], true);
            let mut rng = Lcg(8);
            for &(m, n, k) in &[(13, 2100, 300), (150, 70, 513), (64, 32, 65)] {
                for &(a_l, b_l) in &[
                    ((k + 3, 1), (1, k + 1)),
                    ((2, 2 * m + 1), (3 * n, 2)),
                    ((1, m), (n, 1)),
                ] {
                    for start in [Start::Zero, Start::Keep, Start::Bias] {
                        check(bf16_sgemm, &mut rng, m, n, k, a_l, b_l, start, 0.75, true);
                    }
                }
            }
        } else {
            eprintln!(
                "NOTE: this CPU lacks AVX512-BF16 (or HEADSUP_SIMD caps the kernels below AVX-512): the native bf16 kernel is not checked here"
            );
            let capped = crate::model::simd::simd_level() < SimdLevel::Avx512;
            if std::env::var_os("CI").is_some() && super::bf16::available() && !capped {
                panic!("CI: the CPU has AVX512-BF16 but the native kernel was not chosen");
            }
        }
        run_all(bf16_emulated, &[0, 1, 5, 17, 40], true);
    }

    /// The AVX-512 and AVX2 kernels compute every element as the same FMA
    /// chain: bit-identical results, at any thread count.
    #[test]
    fn avx512_and_avx2_paths_are_bit_identical() {
        if !cpu_has(SimdLevel::Avx512) {
            return;
        }
        let mut rng = Lcg(3);
        for &(m, n, k) in &[(1, 1, 1), (37, 45, 300), (200, 129, 64), (64, 64, 700)] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = rng.vec(m * k);
                let b = rng.vec(k * n);
                let am = if ta { Mat::t(&a, m) } else { Mat::rows(&a, k) };
                let bm = if tb { Mat::t(&b, k) } else { Mat::rows(&b, n) };
                let c0 = rng.vec(m * n);
                let bias = rng.vec(n);
                for init in [Init::Zero, Init::Keep, Init::Bias(&bias)] {
                    let (mut c2, mut c5, mut c5t) = (c0.clone(), c0.clone(), c0.clone());
                    let p = Product {
                        m,
                        n,
                        k,
                        alpha: 0.5,
                        a: am,
                        b: bm,
                        c_rs: n,
                        init,
                        threads: 1,
                    };
                    avx2(p, &mut c2);
                    avx512(p, &mut c5);
                    avx512(Product { threads: 3, ..p }, &mut c5t);
                    let same = |x: &[f32], y: &[f32]| {
                        x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
                    };
                    let what = format!("m{m} n{n} k{k} ta{ta} tb{tb} {init:?}");
                    assert!(same(&c2, &c5), "{what}: AVX-512 vs AVX2");
                    assert!(same(&c5, &c5t), "{what}: AVX-512 1 vs 3 threads");
                }
            }
        }
    }

    /// A new buffer from `sgemm_new` holds what `sgemm_init` writes over an
    /// old one (every element written, nothing kept from before).
    #[test]
    fn sgemm_new_writes_every_element() {
        let mut rng = Lcg(5);
        for &(m, n, k) in &[(1, 1, 1), (37, 45, 300), (768, 384, 128), (3, 70, 0)] {
            let (a, b, bias) = (rng.vec(m * k + 1), rng.vec(k * n + 1), rng.vec(n));
            let (am, bm) = (Mat::rows(&a, k), Mat::rows(&b, n));
            for init in [Init::Zero, Init::Bias(&bias)] {
                let mut want = vec![f32::NAN; m * n];
                sgemm_init(m, n, k, 0.5, am, bm, &mut want, n, init, 1);
                let got = super::sgemm_new(m, n, k, 0.5, am, bm, init, 2);
                assert_eq!(got.len(), m * n);
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "m{m} n{n} k{k} {init:?}"
                );
            }
        }
        let kept = std::panic::catch_unwind(|| {
            super::sgemm_new(
                1,
                1,
                1,
                1.0,
                Mat::rows(&[1.0], 1),
                Mat::rows(&[1.0], 1),
                Init::Keep,
                1,
            )
        });
        assert!(kept.is_err(), "sgemm_new must refuse Init::Keep");
    }

    #[test]
    fn portable_path_matches_f64_reference() {
        run_all(portable, &[0, 1, 5, 17, 40], false);
    }
}
