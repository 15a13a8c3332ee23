//! The AVX2 + FMA matrix product behind [`super::sgemm`]: BLIS-style
//! blocking (B packed into KC x NR panels, A into MR x KC panels), a 6x16
//! microkernel with 12 ymm accumulators, operands read in place when small
//! and unit-strided, and masked stores for the ragged edge. Only
//! [`super::sgemm_st`] calls it, on a CPU that has AVX2 and FMA.

use super::{MC, MR, NC, NR};
use std::arch::x86_64::*;

/// `C (+)= alpha A B` for one thread's problem `p`, packing into `pa` / `pb`
/// (grown as needed).
///
/// # Safety
/// `p` is a problem checked by [`super::sgemm_impl`] (every index its strides
/// reach lies inside A, B and C), no other thread touches its part of C while
/// this runs, and the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn gemm(p: super::Raw, pa: &mut Vec<f32>, pb: &mut Vec<f32>) {
    // SAFETY: the blocking loops only form offsets of elements (i, p) of A,
    // (p, j) of B and (i, j) of C inside the m x k, k x n, m x n problem,
    // which the caller guarantees to be in bounds; `pa` and `pb` are sized
    // first thing for the largest block (mc_max x kc_max, kc_max x nc_max, plus
    // slack), which is all `pack_a`, `pack_b` and the kernel's packed reads
    // touch; and the CPU has AVX2 and FMA (the caller).
    unsafe {
        let super::Raw {
            m,
            n,
            k,
            a,
            a_rs,
            a_cs,
            b,
            b_rs,
            b_cs,
            ..
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
                            let out = p.tile(pc, ic + ir, jc + jr, mr, nr);
                            // Specialise the A addressing: either column-contiguous
                            // (packed / transposed A) or row-contiguous.
                            if ars == 1 {
                                kernel_6x16(kc, apan, 1, acs, bpan, ldb, out, pf);
                            } else {
                                debug_assert!(acs == 1);
                                kernel_6x16(kc, apan, ars, 1, bpan, ldb, out, pf);
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
}

/// Decide whether to read A / B in place instead of packing them.
#[inline(always)]
pub(super) fn choose_direct(
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
///
/// # Safety
/// Elements (i, p), i < mc, p < kc, at `a + i*a_rs + p*a_cs` are readable;
/// `dst` has room for `mc.div_ceil(MR) * MR * kc` floats; the CPU has AVX2.
#[inline(always)]
unsafe fn pack_a(mc: usize, kc: usize, a: *const f32, a_rs: usize, a_cs: usize, dst: *mut f32) {
    // SAFETY: reads stay at (i, p) with i < mc, p < kc (partial panels read
    // only their `mr` live rows; the 4-wide loads of the transposing loop
    // read columns p..p+4 <= kc); writes stay in the `ceil(mc/MR)*MR x kc`
    // panels of `dst` (the caller's contract).
    unsafe {
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
}

/// Pack a kc×nc block of B into NR-column panels: panel q, element (p,j) at
/// q*NR*kc + p*NR + j.  Columns beyond nc are zero-padded.
///
/// # Safety
/// Elements (p, j), p < kc, j < nc, at `b + p*b_rs + j*b_cs` are readable;
/// `dst` has room for `nc.div_ceil(NR) * NR * kc` floats; the CPU has AVX2.
#[inline(always)]
unsafe fn pack_b(kc: usize, nc: usize, b: *const f32, b_rs: usize, b_cs: usize, dst: *mut f32) {
    // SAFETY: reads stay at (p, j) with p < kc, j < nc (full panels read NR
    // columns only when `nr == NR`; the 8x8 transposes read rows p..p+8 <=
    // kc); writes stay in the `ceil(nc/NR)*NR x kc` panels of `dst` (the
    // caller's contract).
    unsafe {
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
                pack_columns::<NR>(kc, src, b_cs, d);
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
}

/// One full panel of `N` columns of B whose elements run along p (`b_rs ==
/// 1`, column j at `src + j*b_cs`): element (p, j) to `d + p*N + j`, by 8x8
/// transposes, the last `kc % 8` rows one by one. Shared with the AVX-512
/// packing (`N` = 16 or 32).
///
/// # Safety
/// Elements (p, j), p < kc, j < N, at `src + j*b_cs + p` are readable; `d`
/// has room for `kc * N` floats; `N` is a multiple of 8; the CPU has AVX.
#[inline(always)]
pub(super) unsafe fn pack_columns<const N: usize>(
    kc: usize,
    src: *const f32,
    b_cs: usize,
    d: *mut f32,
) {
    // SAFETY: the 8x8 blocks read rows p..p+8 <= kc of columns j < N and
    // write rows p..p+8 of the panel; the tail reads and writes row p < kc
    // (the caller's contract).
    unsafe {
        let mut p = 0;
        while p + 8 <= kc {
            for part in 0..N / 8 {
                let s = src.add(part * 8 * b_cs + p);
                let mut r = [_mm256_setzero_ps(); 8];
                for (q, rq) in r.iter_mut().enumerate() {
                    *rq = _mm256_loadu_ps(s.add(q * b_cs));
                }
                let t = transpose8(r);
                for (q, tq) in t.iter().enumerate() {
                    _mm256_storeu_ps(d.add((p + q) * N + part * 8), *tq);
                }
            }
            p += 8;
        }
        while p < kc {
            let dd = d.add(p * N);
            for j in 0..N {
                *dd.add(j) = *src.add(j * b_cs + p);
            }
            p += 1;
        }
    }
}

/// The transpose of an 8x8 block held as 8 rows.
///
/// # Safety
/// The CPU has AVX (only AVX2 and AVX-512 code calls it).
#[inline(always)]
pub(super) unsafe fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    // SAFETY: register-only AVX shuffles; the CPU has AVX (the caller).
    unsafe {
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
}

/// 6x16 microkernel. A element (i,p) at a[i*ars + p*acs]; B row p at b[p*ldb..p*ldb+16].
///
/// # Safety
/// A's elements (i, p), i < 6, p < kc, B's rows p < kc (16 floats each) and
/// the tile `out`'s elements (i, j), i < mr, j < nr, of C and of its
/// non-null `src`, are in bounds (A and B padded where `mr < 6` or
/// `nr < 16`); the CPU has AVX2 and FMA.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn kernel_6x16(
    kc: usize,
    a: *const f32,
    ars: usize,
    acs: usize,
    b: *const f32,
    ldb: usize,
    out: super::Out,
    pf: bool,
) {
    let super::Out {
        c,
        c_rs,
        alpha,
        src,
        src_rs,
        mr,
        nr,
    } = out;
    // SAFETY: the loads read A (6 rows, kc columns) and B (kc rows of 16)
    // inside the bounds the caller guarantees; the stores and masked
    // loads/stores touch only the mr x nr tile of C and of `src`;
    // prefetches never fault.
    unsafe {
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
                if src.is_null() {
                    _mm256_storeu_ps(cp, _mm256_mul_ps(av, row[0]));
                    _mm256_storeu_ps(cp.add(8), _mm256_mul_ps(av, row[1]));
                } else {
                    let sp = src.add(i * src_rs);
                    _mm256_storeu_ps(cp, _mm256_fmadd_ps(av, row[0], _mm256_loadu_ps(sp)));
                    _mm256_storeu_ps(
                        cp.add(8),
                        _mm256_fmadd_ps(av, row[1], _mm256_loadu_ps(sp.add(8))),
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
                if src.is_null() {
                    _mm256_maskstore_ps(cp, m0, _mm256_mul_ps(av, row[0]));
                    _mm256_maskstore_ps(cp.add(8), m1, _mm256_mul_ps(av, row[1]));
                } else {
                    let sp = src.add(i * src_rs);
                    let x0 = _mm256_maskload_ps(sp, m0);
                    let x1 = _mm256_maskload_ps(sp.add(8), m1);
                    _mm256_maskstore_ps(cp, m0, _mm256_fmadd_ps(av, row[0], x0));
                    _mm256_maskstore_ps(cp.add(8), m1, _mm256_fmadd_ps(av, row[1], x1));
                }
            }
        }
    }
}
