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

use super::has_avx2 as has_avx2_fma;
use std::cell::RefCell;

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
    let simd = has_avx2_fma();
    sgemm_impl(simd, m, n, k, alpha, a, b, c, c_rs, accumulate, threads);
}

/// [`sgemm`] on the AVX2 path when `simd`, else on the `gemm` crate.
#[allow(clippy::too_many_arguments)]
fn sgemm_impl(
    simd: bool,
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
    if m == 0 || n == 0 {
        return;
    }
    assert!(m == 1 || c_rs >= n, "sgemm: C rows overlap (c_rs < n)");
    assert!(
        max_index(m, c_rs, n, 1) < c.len(),
        "sgemm: C slice too short"
    );
    if k == 0 || alpha == 0.0 {
        if !accumulate {
            for i in 0..m {
                c[i * c_rs..i * c_rs + n].fill(0.0);
            }
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

    if !simd {
        // SAFETY: the asserts above keep every index the strides reach in bounds.
        unsafe { gemm_crate(m, n, k, alpha, a, b, c, c_rs, accumulate, threads) };
        return;
    }

    // SAFETY (for every use of `p` below): the asserts above keep every index
    // the strides reach in bounds, and the parallel split hands each task
    // disjoint rows or columns of C.
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
        c: c.as_mut_ptr(),
        c_rs,
        accumulate,
    };

    // Below ~1 MFLOP the rayon fork/join cost outweighs the gain.
    let threads = if m * n * k < 512 * 1024 {
        1
    } else {
        threads.max(1)
    };
    if threads <= 1 {
        unsafe { sgemm_st(p) };
        return;
    }

    // Split over rows (multiples of MR) or columns (multiples of NR) of C.
    let (mb, nb) = (m.div_ceil(MR), n.div_ceil(NR));
    // Splitting rows duplicates B packing, splitting columns duplicates A packing.
    let split_m = (m >= n && mb >= threads) || nb < threads;
    let (blk, nblk, dim) = if split_m { (MR, mb, m) } else { (NR, nb, n) };
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
            let part = unsafe {
                if split_m {
                    p.rows(s, e)
                } else {
                    p.cols(s, e)
                }
            };
            if idx == last {
                unsafe { sgemm_st(part) };
            } else {
                sc.spawn(move |_| unsafe { sgemm_st(part) });
            }
        }
    });
}

/// The `gemm` crate (dfdx's own matmul engine): the path without AVX2/FMA
/// (and on other architectures, where it has its own SIMD kernels). Its
/// parallel split is over rows/columns of C too.
///
/// # Safety
/// m, n, k > 0 and every index the strides reach is in bounds (as checked by
/// [`sgemm_impl`]).
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_crate(
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
            c.as_mut_ptr(),
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
}

// SAFETY: a `Raw` is only sent to the rayon tasks of one `sgemm_impl` call,
// which outlive none of the borrowed slices and write disjoint parts of C.
unsafe impl Send for Raw {}

impl Raw {
    /// Rows `s..e` of C (and of A).
    ///
    /// # Safety
    /// `s <= e <= m`.
    unsafe fn rows(self, s: usize, e: usize) -> Raw {
        Raw {
            m: e - s,
            a: self.a.add(s * self.a_rs),
            c: self.c.add(s * self.c_rs),
            ..self
        }
    }

    /// Columns `s..e` of C (and of B).
    ///
    /// # Safety
    /// `s <= e <= n`.
    unsafe fn cols(self, s: usize, e: usize) -> Raw {
        Raw {
            n: e - s,
            b: self.b.add(s * self.b_cs),
            c: self.c.add(s),
            ..self
        }
    }
}

thread_local! {
    static BUFS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// One thread's share, with this thread's packing buffers.
///
/// # Safety
/// `p` as made by [`sgemm_impl`] (in bounds), on a CPU with AVX2 and FMA.
unsafe fn sgemm_st(p: Raw) {
    #[cfg(target_arch = "x86_64")]
    BUFS.with(|bufs| {
        let mut bufs = bufs.borrow_mut();
        let (pa, pb) = &mut *bufs;
        avx2::gemm(p, pa, pb);
    });
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = p;
        unreachable!("sgemm_st runs only where has_avx2_fma() holds");
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{MC, MR, NC, NR};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn gemm(p: super::Raw, pa: &mut Vec<f32>, pb: &mut Vec<f32>) {
        let super::Raw {
            m,
            n,
            k,
            alpha,
            a,
            a_rs,
            a_cs,
            b,
            b_rs,
            b_cs,
            c,
            c_rs,
            accumulate,
        } = p;
        let kcb = super::KC;
        let kc_max = kcb.min(k);
        let mc_max = MC.min(m.div_ceil(MR) * MR);
        let nc_max = NC.min(n.div_ceil(NR) * NR);
        let need_a = mc_max * kc_max + 16;
        let need_b = nc_max * kc_max + 16;
        if pa.len() < need_a {
            pa.resize(need_a, 0.0);
        }
        if pb.len() < need_b {
            pb.resize(need_b, 0.0);
        }
        let pa = pa.as_mut_ptr();
        let pb = pb.as_mut_ptr();

        let (direct_a, direct_b) = choose_direct(m, n, k, a_rs, a_cs, b_cs);
        let pf = true; // prefetch the C tile before the k loop
        let mut jc = 0;
        while jc < n {
            let nc = NC.min(n - jc);
            let nc_full = nc / NR * NR;
            let mut pc = 0;
            while pc < k {
                let kc = kcb.min(k - pc);
                let first = pc == 0 && !accumulate;
                let bblk = b.add(pc * b_rs + jc * b_cs);
                if direct_b {
                    // only the partial edge panel needs (padded) packing
                    if nc_full < nc {
                        pack_b(
                            kc,
                            nc - nc_full,
                            bblk.add(nc_full),
                            b_rs,
                            b_cs,
                            pb.add(nc_full * kc),
                        );
                    }
                } else {
                    pack_b(kc, nc, bblk, b_rs, b_cs, pb);
                }
                let mut ic = 0;
                while ic < m {
                    let mc = MC.min(m - ic);
                    let mc_full = mc / MR * MR;
                    let ablk = a.add(ic * a_rs + pc * a_cs);
                    if direct_a {
                        if mc_full < mc {
                            pack_a(
                                mc - mc_full,
                                kc,
                                ablk.add(mc_full * a_rs),
                                a_rs,
                                a_cs,
                                pa.add(mc_full * kc),
                            );
                        }
                    } else {
                        pack_a(mc, kc, ablk, a_rs, a_cs, pa);
                    }
                    let mut jr = 0;
                    while jr < nc {
                        let nr = NR.min(nc - jr);
                        let (bpan, ldb) = if direct_b && nr == NR {
                            (bblk.add(jr), b_rs)
                        } else {
                            (pb.add(jr * kc) as *const f32, NR)
                        };
                        let mut ir = 0;
                        while ir < mc {
                            let mr = MR.min(mc - ir);
                            let (apan, ars, acs) = if direct_a && mr == MR {
                                (ablk.add(ir * a_rs), a_rs, a_cs)
                            } else {
                                (pa.add(ir * kc) as *const f32, 1, MR)
                            };
                            let cptr = c.add((ic + ir) * c_rs + jc + jr);
                            // Specialise the A addressing: either column-contiguous
                            // (packed / transposed A) or row-contiguous.
                            if ars == 1 {
                                kernel_6x16(
                                    kc, apan, 1, acs, bpan, ldb, cptr, c_rs, alpha, first, mr, nr,
                                    pf,
                                );
                            } else {
                                debug_assert!(acs == 1);
                                kernel_6x16(
                                    kc, apan, ars, 1, bpan, ldb, cptr, c_rs, alpha, first, mr, nr,
                                    pf,
                                );
                            }
                            ir += MR;
                        }
                        jr += NR;
                    }
                    ic += mc;
                }
                pc += kc;
            }
            jc += nc;
        }
    }

    /// Decide whether to read A / B in place instead of packing them.
    #[inline(always)]
    fn choose_direct(
        m: usize,
        n: usize,
        k: usize,
        a_rs: usize,
        a_cs: usize,
        b_cs: usize,
    ) -> (bool, bool) {
        // Reading A in place avoids the packing pass (which matters most when n
        // is small); it is only worth it while A stays cache resident.
        let da = if a_cs == 1 {
            m * k <= 512 * 1024
        } else if a_rs == 1 {
            m * k <= 64 * 1024 || (n <= 128 && m * k <= 512 * 1024)
        } else {
            false
        };
        let db = b_cs == 1 && k * n <= 16 * 1024;
        (da, db)
    }

    /// Pack an mc×kc block of A into MR-row panels: panel r, element (i,p) at
    /// r*MR*kc + p*MR + i.  Rows beyond mc are zero-padded.
    #[inline(always)]
    unsafe fn pack_a(mc: usize, kc: usize, a: *const f32, a_rs: usize, a_cs: usize, dst: *mut f32) {
        let mut ir = 0;
        while ir < mc {
            let mr = MR.min(mc - ir);
            let d = dst.add(ir * kc);
            let src = a.add(ir * a_rs);
            if mr == MR {
                if a_rs == 1 {
                    for p in 0..kc {
                        let s = src.add(p * a_cs);
                        let dd = d.add(p * MR);
                        // 6 contiguous floats
                        _mm_storeu_ps(dd, _mm_loadu_ps(s));
                        *dd.add(4) = *s.add(4);
                        *dd.add(5) = *s.add(5);
                    }
                } else if a_cs == 1 {
                    // Transpose 6 rows: process 8 columns at a time.
                    let mut p = 0;
                    let r0 = src;
                    let r1 = src.add(a_rs);
                    let r2 = src.add(2 * a_rs);
                    let r3 = src.add(3 * a_rs);
                    let r4 = src.add(4 * a_rs);
                    let r5 = src.add(5 * a_rs);
                    while p + 4 <= kc {
                        // 4x4 transpose of rows 0..3, then rows 4,5 scalar
                        let x0 = _mm_loadu_ps(r0.add(p));
                        let x1 = _mm_loadu_ps(r1.add(p));
                        let x2 = _mm_loadu_ps(r2.add(p));
                        let x3 = _mm_loadu_ps(r3.add(p));
                        let t0 = _mm_unpacklo_ps(x0, x1);
                        let t1 = _mm_unpacklo_ps(x2, x3);
                        let t2 = _mm_unpackhi_ps(x0, x1);
                        let t3 = _mm_unpackhi_ps(x2, x3);
                        let y0 = _mm_movelh_ps(t0, t1);
                        let y1 = _mm_movehl_ps(t1, t0);
                        let y2 = _mm_movelh_ps(t2, t3);
                        let y3 = _mm_movehl_ps(t3, t2);
                        let x4 = _mm_loadu_ps(r4.add(p));
                        let x5 = _mm_loadu_ps(r5.add(p));
                        let u0 = _mm_unpacklo_ps(x4, x5); // a4p0 a5p0 a4p1 a5p1
                        let u1 = _mm_unpackhi_ps(x4, x5); // a4p2 a5p2 a4p3 a5p3
                        let dd = d.add(p * MR);
                        _mm_storeu_ps(dd, y0);
                        _mm_storel_pd(dd.add(4) as *mut f64, _mm_castps_pd(u0));
                        _mm_storeu_ps(dd.add(6), y1);
                        _mm_storeh_pd(dd.add(10) as *mut f64, _mm_castps_pd(u0));
                        _mm_storeu_ps(dd.add(12), y2);
                        _mm_storel_pd(dd.add(16) as *mut f64, _mm_castps_pd(u1));
                        _mm_storeu_ps(dd.add(18), y3);
                        _mm_storeh_pd(dd.add(22) as *mut f64, _mm_castps_pd(u1));
                        p += 4;
                    }
                    while p < kc {
                        let dd = d.add(p * MR);
                        *dd = *r0.add(p);
                        *dd.add(1) = *r1.add(p);
                        *dd.add(2) = *r2.add(p);
                        *dd.add(3) = *r3.add(p);
                        *dd.add(4) = *r4.add(p);
                        *dd.add(5) = *r5.add(p);
                        p += 1;
                    }
                } else {
                    for p in 0..kc {
                        let dd = d.add(p * MR);
                        for i in 0..MR {
                            *dd.add(i) = *src.add(i * a_rs + p * a_cs);
                        }
                    }
                }
            } else {
                for p in 0..kc {
                    std::ptr::write_bytes(d.add(p * MR), 0, MR);
                }
                for i in 0..mr {
                    let s = src.add(i * a_rs);
                    for p in 0..kc {
                        *d.add(p * MR + i) = *s.add(p * a_cs);
                    }
                }
            }
            ir += MR;
        }
    }

    /// Pack a kc×nc block of B into NR-column panels: panel q, element (p,j) at
    /// q*NR*kc + p*NR + j.  Columns beyond nc are zero-padded.
    #[inline(always)]
    unsafe fn pack_b(kc: usize, nc: usize, b: *const f32, b_rs: usize, b_cs: usize, dst: *mut f32) {
        let mut jr = 0;
        while jr < nc {
            let nr = NR.min(nc - jr);
            let d = dst.add(jr * kc);
            let src = b.add(jr * b_cs);
            if nr == NR && b_cs == 1 {
                for p in 0..kc {
                    let s = src.add(p * b_rs);
                    let dd = d.add(p * NR);
                    _mm256_storeu_ps(dd, _mm256_loadu_ps(s));
                    _mm256_storeu_ps(dd.add(8), _mm256_loadu_ps(s.add(8)));
                }
            } else if nr == NR && b_rs == 1 {
                // Columns contiguous along p: transpose 8x8 blocks.
                let mut p = 0;
                while p + 8 <= kc {
                    for half in 0..2 {
                        let s = src.add(half * 8 * b_cs + p);
                        let mut r = [_mm256_setzero_ps(); 8];
                        for (q, rq) in r.iter_mut().enumerate() {
                            *rq = _mm256_loadu_ps(s.add(q * b_cs));
                        }
                        let t = transpose8(r);
                        for (q, tq) in t.iter().enumerate() {
                            _mm256_storeu_ps(d.add((p + q) * NR + half * 8), *tq);
                        }
                    }
                    p += 8;
                }
                while p < kc {
                    let dd = d.add(p * NR);
                    for j in 0..NR {
                        *dd.add(j) = *src.add(j * b_cs + p);
                    }
                    p += 1;
                }
            } else {
                for p in 0..kc {
                    let dd = d.add(p * NR);
                    _mm256_storeu_ps(dd, _mm256_setzero_ps());
                    _mm256_storeu_ps(dd.add(8), _mm256_setzero_ps());
                    let s = src.add(p * b_rs);
                    for j in 0..nr {
                        *dd.add(j) = *s.add(j * b_cs);
                    }
                }
            }
            jr += NR;
        }
    }

    #[inline(always)]
    unsafe fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        [
            _mm256_permute2f128_ps::<0x20>(s0, s4),
            _mm256_permute2f128_ps::<0x20>(s1, s5),
            _mm256_permute2f128_ps::<0x20>(s2, s6),
            _mm256_permute2f128_ps::<0x20>(s3, s7),
            _mm256_permute2f128_ps::<0x31>(s0, s4),
            _mm256_permute2f128_ps::<0x31>(s1, s5),
            _mm256_permute2f128_ps::<0x31>(s2, s6),
            _mm256_permute2f128_ps::<0x31>(s3, s7),
        ]
    }

    /// 6x16 microkernel. A element (i,p) at a[i*ars + p*acs]; B row p at b[p*ldb..p*ldb+16].
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn kernel_6x16(
        kc: usize,
        a: *const f32,
        ars: usize,
        acs: usize,
        b: *const f32,
        ldb: usize,
        c: *mut f32,
        c_rs: usize,
        alpha: f32,
        first: bool,
        mr: usize,
        nr: usize,
        pf: bool,
    ) {
        if pf {
            for i in 0..mr {
                let cp = c.add(i * c_rs) as *const i8;
                _mm_prefetch::<_MM_HINT_T0>(cp);
                _mm_prefetch::<_MM_HINT_T0>(cp.wrapping_add(60));
            }
        }
        let mut c00 = _mm256_setzero_ps();
        let mut c01 = _mm256_setzero_ps();
        let mut c10 = _mm256_setzero_ps();
        let mut c11 = _mm256_setzero_ps();
        let mut c20 = _mm256_setzero_ps();
        let mut c21 = _mm256_setzero_ps();
        let mut c30 = _mm256_setzero_ps();
        let mut c31 = _mm256_setzero_ps();
        let mut c40 = _mm256_setzero_ps();
        let mut c41 = _mm256_setzero_ps();
        let mut c50 = _mm256_setzero_ps();
        let mut c51 = _mm256_setzero_ps();
        let r0 = a;
        let r1 = a.add(ars);
        let r2 = a.add(2 * ars);
        let r3 = a.add(3 * ars);
        let r4 = a.add(4 * ars);
        let r5 = a.add(5 * ars);
        let mut ao = 0usize;
        let mut bp = b;
        macro_rules! step {
            () => {{
                let b0 = _mm256_loadu_ps(bp);
                let b1 = _mm256_loadu_ps(bp.add(8));
                let a0 = _mm256_broadcast_ss(&*r0.add(ao));
                c00 = _mm256_fmadd_ps(a0, b0, c00);
                c01 = _mm256_fmadd_ps(a0, b1, c01);
                let a1 = _mm256_broadcast_ss(&*r1.add(ao));
                c10 = _mm256_fmadd_ps(a1, b0, c10);
                c11 = _mm256_fmadd_ps(a1, b1, c11);
                let a2 = _mm256_broadcast_ss(&*r2.add(ao));
                c20 = _mm256_fmadd_ps(a2, b0, c20);
                c21 = _mm256_fmadd_ps(a2, b1, c21);
                let a3 = _mm256_broadcast_ss(&*r3.add(ao));
                c30 = _mm256_fmadd_ps(a3, b0, c30);
                c31 = _mm256_fmadd_ps(a3, b1, c31);
                let a4 = _mm256_broadcast_ss(&*r4.add(ao));
                c40 = _mm256_fmadd_ps(a4, b0, c40);
                c41 = _mm256_fmadd_ps(a4, b1, c41);
                let a5 = _mm256_broadcast_ss(&*r5.add(ao));
                c50 = _mm256_fmadd_ps(a5, b0, c50);
                c51 = _mm256_fmadd_ps(a5, b1, c51);
                ao += acs;
                bp = bp.wrapping_add(ldb);
            }};
        }
        let mut p = 0;
        while p + 4 <= kc {
            step!();
            step!();
            step!();
            step!();
            p += 4;
        }
        while p < kc {
            step!();
            p += 1;
        }
        let acc = [
            [c00, c01],
            [c10, c11],
            [c20, c21],
            [c30, c31],
            [c40, c41],
            [c50, c51],
        ];
        let av = _mm256_set1_ps(alpha);
        if nr == NR {
            for (i, row) in acc.iter().enumerate().take(mr) {
                let cp = c.add(i * c_rs);
                if first {
                    _mm256_storeu_ps(cp, _mm256_mul_ps(av, row[0]));
                    _mm256_storeu_ps(cp.add(8), _mm256_mul_ps(av, row[1]));
                } else {
                    _mm256_storeu_ps(cp, _mm256_fmadd_ps(av, row[0], _mm256_loadu_ps(cp)));
                    _mm256_storeu_ps(
                        cp.add(8),
                        _mm256_fmadd_ps(av, row[1], _mm256_loadu_ps(cp.add(8))),
                    );
                }
            }
        } else {
            let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let nrv = _mm256_set1_epi32(nr as i32);
            let m0 = _mm256_cmpgt_epi32(nrv, lane);
            let m1 = _mm256_cmpgt_epi32(nrv, _mm256_add_epi32(lane, _mm256_set1_epi32(8)));
            for (i, row) in acc.iter().enumerate().take(mr) {
                let cp = c.add(i * c_rs);
                if first {
                    _mm256_maskstore_ps(cp, m0, _mm256_mul_ps(av, row[0]));
                    _mm256_maskstore_ps(cp.add(8), m1, _mm256_mul_ps(av, row[1]));
                } else {
                    let x0 = _mm256_maskload_ps(cp, m0);
                    let x1 = _mm256_maskload_ps(cp.add(8), m1);
                    _mm256_maskstore_ps(cp, m0, _mm256_fmadd_ps(av, row[0], x0));
                    _mm256_maskstore_ps(cp.add(8), m1, _mm256_fmadd_ps(av, row[1], x1));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{sgemm, sgemm_impl, Mat};

    #[allow(clippy::too_many_arguments)]
    fn portable(
        m: usize,
        n: usize,
        k: usize,
        alpha: f32,
        a: Mat,
        b: Mat,
        c: &mut [f32],
        c_rs: usize,
        acc: bool,
        threads: usize,
    ) {
        sgemm_impl(false, m, n, k, alpha, a, b, c, c_rs, acc, threads);
    }

    type Gemm = fn(usize, usize, usize, f32, Mat, Mat, &mut [f32], usize, bool, usize);

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
    /// triple loop (relative to Σ|a||b|), bit-equality across thread counts,
    /// and that C's padding between rows is untouched.
    #[allow(clippy::too_many_arguments)]
    fn check(
        f: Gemm,
        rng: &mut Lcg,
        m: usize,
        n: usize,
        k: usize,
        a_l: (usize, usize),
        b_l: (usize, usize),
        acc: bool,
        alpha: f32,
    ) {
        let ((a_rs, a_cs), (b_rs, b_cs)) = (a_l, b_l);
        let a = rng.vec((m.max(1) - 1) * a_rs + (k.max(1) - 1) * a_cs + 1);
        let b = rng.vec((k.max(1) - 1) * b_rs + (n.max(1) - 1) * b_cs + 1);
        let c_rs = n + 3;
        let c0 = rng.vec(m * c_rs + 1);
        let (mut c1, mut c2) = (c0.clone(), c0.clone());
        let (am, bm) = (Mat::new(&a, a_rs, a_cs), Mat::new(&b, b_rs, b_cs));
        f(m, n, k, alpha, am, bm, &mut c1, c_rs, acc, 1);
        f(m, n, k, alpha, am, bm, &mut c2, c_rs, acc, 2);
        let what = format!("m{m} n{n} k{k} a{a_l:?} b{b_l:?} acc{acc} alpha{alpha}");
        assert!(
            c1.iter().zip(&c2).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{what}: 1 vs 2 threads"
        );
        for i in 0..m {
            for j in 0..c_rs {
                let got = c1[i * c_rs + j] as f64;
                if j >= n {
                    assert_eq!(got, c0[i * c_rs + j] as f64, "{what}: padding written");
                    continue;
                }
                let (mut s, mut sa) = (0.0f64, 0.0f64);
                for p in 0..k {
                    let x = a[i * a_rs + p * a_cs] as f64 * b[p * b_rs + j * b_cs] as f64;
                    s += x;
                    sa += x.abs();
                }
                let base = if acc { c0[i * c_rs + j] as f64 } else { 0.0 };
                let want = base + alpha as f64 * s;
                let err = (got - want).abs() / (alpha as f64 * sa + base.abs()).max(1e-30);
                assert!(err < 1e-5, "{what}: ({i},{j}) got {got} want {want}");
            }
        }
        assert_eq!(c1[m * c_rs], c0[m * c_rs], "{what}: wrote past C");
    }

    fn run_all(f: Gemm, dims: &[usize]) {
        let mut rng = Lcg(12345);
        for &m in dims {
            for &n in dims {
                for &k in dims {
                    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                        let a_l = if ta { (1, m.max(1)) } else { (k.max(1), 1) };
                        let b_l = if tb { (1, k.max(1)) } else { (n.max(1), 1) };
                        for (acc, alpha) in [(false, 1.0), (true, 0.5)] {
                            check(f, &mut rng, m, n, k, a_l, b_l, acc, alpha);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn sgemm_matches_f64_reference_on_edge_shapes() {
        run_all(sgemm, &[0, 1, 2, 5, 7, 16, 17, 33, 70]);
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
                for acc in [false, true] {
                    check(sgemm, &mut rng, m, n, k, a_l, b_l, acc, 0.75);
                }
            }
        }
    }

    #[test]
    fn portable_path_matches_f64_reference() {
        run_all(portable, &[0, 1, 5, 17, 40]);
    }
}
