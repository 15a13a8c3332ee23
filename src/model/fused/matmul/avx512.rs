//! The AVX-512 matrix product behind [`super::sgemm`]: the blocking of the
//! AVX2 kernel ([`super::avx2`]) with a 14x32 register tile (28 zmm
//! accumulators, two zmm of B and one broadcast of A: 31 of the 32 zmm
//! registers), masked loads and stores for the ragged edges. Each C element is
//! the same chain of FMAs over each KC block as on the AVX2 path, so the two
//! paths give bit-identical results. Only [`super::sgemm_st`] calls it, on a
//! CPU with AVX-512 F/BW/DQ/VL, AVX2 and FMA.

use super::avx2::{choose_direct, pack_columns};
use super::{Out, Raw, KC};
use std::arch::x86_64::*;

/// Rows of the register tile.
pub(super) const MR: usize = 14;
/// Columns of the register tile (two zmm registers).
pub(super) const NR: usize = 32;
/// zmm registers per tile row.
const NV: usize = NR / 16;
/// Rows of A per packed block (a multiple of MR).
const MC: usize = 140;
/// Columns of B per packed block (a multiple of NR).
const NC: usize = 2048;

/// `C (+)= alpha A B` for one thread's problem `p`, packing into `pa` / `pb`
/// (grown as needed).
///
/// # Safety
/// `p` is a problem checked by [`super::sgemm_impl`] (every index its strides
/// reach lies inside A, B and C), no other thread touches its part of C while
/// this runs, and the CPU has AVX-512 F/BW/DQ/VL, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(super) unsafe fn gemm(p: Raw, pa: &mut Vec<f32>, pb: &mut Vec<f32>) {
    let Raw {
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
    let kc_max = KC.min(k);
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
    let (_, direct_b) = choose_direct(m, n, k, a_rs, a_cs, b_cs);
    // SAFETY: the blocking loops only form offsets of elements (i, p) of A,
    // (p, j) of B and (i, j) of C inside the m x k, k x n, m x n problem,
    // which the caller guarantees to be in bounds; `pa` and `pb` were sized
    // just above for the largest block (mc_max x kc_max, kc_max x nc_max),
    // which is all `pack_a`, `pack_b` and the kernel's packed reads touch;
    // the CPU has the features this function is compiled for (the caller).
    unsafe {
        let mut jc = 0;
        while jc < n {
            let nc = NC.min(n - jc);
            let nc_full = nc / NR * NR;
            let mut pc = 0;
            while pc < k {
                let kc = KC.min(k - pc);
                let bblk = b.add(pc * b_rs + jc * b_cs);
                if direct_b {
                    // Only the partial edge panel needs (padded) packing.
                    if nc_full < nc {
                        let dst = pb.add(nc_full * kc);
                        pack_b(kc, nc - nc_full, bblk.add(nc_full), b_rs, b_cs, dst);
                    }
                } else {
                    pack_b(kc, nc, bblk, b_rs, b_cs, pb);
                }
                let mut ic = 0;
                while ic < m {
                    let mc = MC.min(m - ic);
                    let ablk = a.add(ic * a_rs + pc * a_cs);
                    // A is always packed: the 14 row pointers of an in-place
                    // A would not fit in the 16 general registers.
                    pack_a(mc, kc, ablk, a_rs, a_cs, pa);
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
                            let t = Tile {
                                kc,
                                b: bpan,
                                ldb,
                                out: p.tile(pc, ic + ir, jc + jr, mr, nr),
                            };
                            kernel(t, pa.add(ir * kc));
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

/// Pack an mc×kc block of A into MR-row panels: panel r, element (i,p) at
/// r*MR*kc + p*MR + i. Rows beyond mc are zero-padded.
///
/// # Safety
/// Elements (i, p), i < mc, p < kc, at `a + i*a_rs + p*a_cs` are readable;
/// `dst` has room for `mc.div_ceil(MR) * MR * kc` floats; the CPU has AVX-512F.
#[inline(always)]
unsafe fn pack_a(mc: usize, kc: usize, a: *const f32, a_rs: usize, a_cs: usize, dst: *mut f32) {
    // SAFETY: reads stay at (i, p) with i < mc, p < kc (the masked loads read
    // only the live `mr` rows); writes stay in the `ceil(mc/MR)*MR x kc`
    // panels of `dst` (the caller's contract).
    unsafe {
        let mut ir = 0;
        while ir < mc {
            let mr = MR.min(mc - ir);
            let d = dst.add(ir * kc);
            let src = a.add(ir * a_rs);
            if a_rs == 1 {
                // Each column of the panel is contiguous: one masked copy.
                let live: __mmask16 = (1u32 << mr) as u16 - 1;
                for p in 0..kc {
                    let v = _mm512_maskz_loadu_ps(live, src.add(p * a_cs));
                    _mm512_mask_storeu_ps(d.add(p * MR), 0x3fff, v);
                }
            } else {
                if mr < MR {
                    std::ptr::write_bytes(d, 0, kc * MR);
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
/// q*NR*kc + p*NR + j. Columns beyond nc are zero-padded.
///
/// # Safety
/// Elements (p, j), p < kc, j < nc, at `b + p*b_rs + j*b_cs` are readable;
/// `dst` has room for `nc.div_ceil(NR) * NR * kc` floats; the CPU has AVX-512F.
#[inline(always)]
unsafe fn pack_b(kc: usize, nc: usize, b: *const f32, b_rs: usize, b_cs: usize, dst: *mut f32) {
    // SAFETY: reads stay at (p, j) with p < kc, j < nc (masked loads for a
    // partial panel, the 8x8 transposes only on full panels and rows
    // p..p+8 <= kc); writes stay in the `ceil(nc/NR)*NR x kc` panels of `dst`.
    unsafe {
        let mut jr = 0;
        while jr < nc {
            let nr = NR.min(nc - jr);
            let d = dst.add(jr * kc);
            let src = b.add(jr * b_cs);
            if b_cs == 1 {
                let m0: __mmask16 = if nr >= 16 {
                    0xffff
                } else {
                    ((1u32 << nr) - 1) as u16
                };
                let m1: __mmask16 = if nr >= 32 {
                    0xffff
                } else if nr > 16 {
                    ((1u32 << (nr - 16)) - 1) as u16
                } else {
                    0
                };
                for p in 0..kc {
                    let s = src.add(p * b_rs);
                    let dd = d.add(p * NR);
                    _mm512_storeu_ps(dd, _mm512_maskz_loadu_ps(m0, s));
                    _mm512_storeu_ps(dd.add(16), _mm512_maskz_loadu_ps(m1, s.wrapping_add(16)));
                }
            } else if nr == NR && b_rs == 1 {
                pack_columns::<NR>(kc, src, b_cs, d);
            } else {
                for p in 0..kc {
                    let dd = d.add(p * NR);
                    _mm512_storeu_ps(dd, _mm512_setzero_ps());
                    _mm512_storeu_ps(dd.add(16), _mm512_setzero_ps());
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

/// Where one register tile reads B and writes C.
#[derive(Clone, Copy)]
struct Tile {
    kc: usize,
    /// B row p at `b + p*ldb`, 32 floats (padded where `nr < 32`).
    b: *const f32,
    ldb: usize,
    out: Out,
}

/// The 14x32 microkernel on a packed A panel: element (i, p) at `a + p*14 + i`.
///
/// # Safety
/// The packed panel's kc x 14 floats (padded where `mr < 14`), B's rows
/// p < kc (32 floats each) and `t.out`'s tile are in bounds (as
/// [`store_tile`] needs); the CPU has AVX-512F and FMA.
#[inline(always)]
unsafe fn kernel(t: Tile, a: *const f32) {
    // SAFETY: the loads read A (14 rows, kc columns) and B (kc rows of 32)
    // inside the bounds the caller guarantees; the masked loads and stores
    // touch only C's mr x nr tile.
    unsafe {
        // Named accumulators (an array of them was kept in memory, not in
        // registers).
        let mut c0_0 = _mm512_setzero_ps();
        let mut c0_1 = _mm512_setzero_ps();
        let mut c1_0 = _mm512_setzero_ps();
        let mut c1_1 = _mm512_setzero_ps();
        let mut c2_0 = _mm512_setzero_ps();
        let mut c2_1 = _mm512_setzero_ps();
        let mut c3_0 = _mm512_setzero_ps();
        let mut c3_1 = _mm512_setzero_ps();
        let mut c4_0 = _mm512_setzero_ps();
        let mut c4_1 = _mm512_setzero_ps();
        let mut c5_0 = _mm512_setzero_ps();
        let mut c5_1 = _mm512_setzero_ps();
        let mut c6_0 = _mm512_setzero_ps();
        let mut c6_1 = _mm512_setzero_ps();
        let mut c7_0 = _mm512_setzero_ps();
        let mut c7_1 = _mm512_setzero_ps();
        let mut c8_0 = _mm512_setzero_ps();
        let mut c8_1 = _mm512_setzero_ps();
        let mut c9_0 = _mm512_setzero_ps();
        let mut c9_1 = _mm512_setzero_ps();
        let mut c10_0 = _mm512_setzero_ps();
        let mut c10_1 = _mm512_setzero_ps();
        let mut c11_0 = _mm512_setzero_ps();
        let mut c11_1 = _mm512_setzero_ps();
        let mut c12_0 = _mm512_setzero_ps();
        let mut c12_1 = _mm512_setzero_ps();
        let mut c13_0 = _mm512_setzero_ps();
        let mut c13_1 = _mm512_setzero_ps();
        let mut ao = 0usize;
        let mut bp = t.b;
        macro_rules! step {
            () => {{
                let b0 = _mm512_loadu_ps(bp);
                let b1 = _mm512_loadu_ps(bp.add(16));
                let x = _mm512_set1_ps(*a.add(ao + 0));
                c0_0 = _mm512_fmadd_ps(x, b0, c0_0);
                c0_1 = _mm512_fmadd_ps(x, b1, c0_1);
                let x = _mm512_set1_ps(*a.add(ao + 1));
                c1_0 = _mm512_fmadd_ps(x, b0, c1_0);
                c1_1 = _mm512_fmadd_ps(x, b1, c1_1);
                let x = _mm512_set1_ps(*a.add(ao + 2));
                c2_0 = _mm512_fmadd_ps(x, b0, c2_0);
                c2_1 = _mm512_fmadd_ps(x, b1, c2_1);
                let x = _mm512_set1_ps(*a.add(ao + 3));
                c3_0 = _mm512_fmadd_ps(x, b0, c3_0);
                c3_1 = _mm512_fmadd_ps(x, b1, c3_1);
                let x = _mm512_set1_ps(*a.add(ao + 4));
                c4_0 = _mm512_fmadd_ps(x, b0, c4_0);
                c4_1 = _mm512_fmadd_ps(x, b1, c4_1);
                let x = _mm512_set1_ps(*a.add(ao + 5));
                c5_0 = _mm512_fmadd_ps(x, b0, c5_0);
                c5_1 = _mm512_fmadd_ps(x, b1, c5_1);
                let x = _mm512_set1_ps(*a.add(ao + 6));
                c6_0 = _mm512_fmadd_ps(x, b0, c6_0);
                c6_1 = _mm512_fmadd_ps(x, b1, c6_1);
                let x = _mm512_set1_ps(*a.add(ao + 7));
                c7_0 = _mm512_fmadd_ps(x, b0, c7_0);
                c7_1 = _mm512_fmadd_ps(x, b1, c7_1);
                let x = _mm512_set1_ps(*a.add(ao + 8));
                c8_0 = _mm512_fmadd_ps(x, b0, c8_0);
                c8_1 = _mm512_fmadd_ps(x, b1, c8_1);
                let x = _mm512_set1_ps(*a.add(ao + 9));
                c9_0 = _mm512_fmadd_ps(x, b0, c9_0);
                c9_1 = _mm512_fmadd_ps(x, b1, c9_1);
                let x = _mm512_set1_ps(*a.add(ao + 10));
                c10_0 = _mm512_fmadd_ps(x, b0, c10_0);
                c10_1 = _mm512_fmadd_ps(x, b1, c10_1);
                let x = _mm512_set1_ps(*a.add(ao + 11));
                c11_0 = _mm512_fmadd_ps(x, b0, c11_0);
                c11_1 = _mm512_fmadd_ps(x, b1, c11_1);
                let x = _mm512_set1_ps(*a.add(ao + 12));
                c12_0 = _mm512_fmadd_ps(x, b0, c12_0);
                c12_1 = _mm512_fmadd_ps(x, b1, c12_1);
                let x = _mm512_set1_ps(*a.add(ao + 13));
                c13_0 = _mm512_fmadd_ps(x, b0, c13_0);
                c13_1 = _mm512_fmadd_ps(x, b1, c13_1);
                ao += MR;
                bp = bp.wrapping_add(t.ldb);
            }};
        }
        let mut p = 0;
        while p + 2 <= t.kc {
            step!();
            step!();
            p += 2;
        }
        while p < t.kc {
            step!();
            p += 1;
        }
        let acc = [
            [c0_0, c0_1],
            [c1_0, c1_1],
            [c2_0, c2_1],
            [c3_0, c3_1],
            [c4_0, c4_1],
            [c5_0, c5_1],
            [c6_0, c6_1],
            [c7_0, c7_1],
            [c8_0, c8_1],
            [c9_0, c9_1],
            [c10_0, c10_1],
            [c11_0, c11_1],
            [c12_0, c12_1],
            [c13_0, c13_1],
        ];
        store_tile(&acc, t.out);
    }
}

/// Writes a 14x32 register tile to C as [`Out`] says, with masked loads
/// and stores at a ragged right edge. Shared by this kernel and the bf16 one
/// ([`super::bf16`]).
///
/// # Safety
/// The elements (i, j), i < mr <= 14, j < nr <= 32, of C and of a non-null
/// `src` are in bounds; the CPU has AVX-512F and FMA.
#[inline(always)]
pub(super) unsafe fn store_tile(acc: &[[__m512; NV]; MR], out: Out) {
    let Out {
        c,
        c_rs,
        alpha,
        src,
        src_rs,
        mr,
        nr,
    } = out;
    // SAFETY: the masked loads and stores touch only the mr x nr tile of C
    // and of `src` (the caller's contract).
    unsafe {
        let av = _mm512_set1_ps(alpha);
        let masks: [__mmask16; NV] = [
            if nr >= 16 {
                0xffff
            } else {
                ((1u32 << nr) - 1) as u16
            },
            if nr >= 32 {
                0xffff
            } else if nr > 16 {
                ((1u32 << (nr - 16)) - 1) as u16
            } else {
                0
            },
        ];
        for (i, row) in acc.iter().enumerate().take(mr) {
            let cp = c.add(i * c_rs);
            let sp = src.wrapping_add(i * src_rs);
            for (v, (&x, &mask)) in row.iter().zip(&masks).enumerate() {
                let y = if src.is_null() {
                    _mm512_mul_ps(av, x)
                } else {
                    _mm512_fmadd_ps(av, x, _mm512_maskz_loadu_ps(mask, sp.wrapping_add(16 * v)))
                };
                _mm512_mask_storeu_ps(cp.wrapping_add(16 * v), mask, y);
            }
        }
    }
}
