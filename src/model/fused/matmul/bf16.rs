//! The bf16 matrix product behind [`super::sgemm`] in `train.precision =
//! "bf16"`: A and B rounded to bf16 (round to nearest even) while they are
//! packed, products accumulated in fp32 by AVX512-BF16's `vdpbf16ps`, C in
//! fp32 (PyTorch's CPU autocast does the same). The blocking is the AVX-512
//! kernel's ([`super::avx512`]): a 14x32 register tile (28 zmm accumulators),
//! but each step consumes two k (a pair of bf16 in every 32-bit lane), so
//! each instruction does twice the multiply-adds of an fp32 FMA.
//!
//! Packed layouts, in 32-bit words holding the bf16 of `k = 2q` in the low
//! half and of `k = 2q + 1` in the high half (zero past `kc`):
//! - A: panel r, word (i, q) at `r*MR*kq + q*MR + i`;
//! - B: panel s, word (q, j) at `s*NR*kq + q*NR + j`;
//!
//! where `kq = kc.div_ceil(2)`. Each C element is, per KC block in order, a
//! chain of pair-steps from 0, then `alpha acc` or `C + alpha acc`: it does
//! not depend on the tile position, so any thread count gives the same bits.

use super::avx512::store_tile;
use super::{Out, Raw};
use std::arch::x86_64::*;

/// Rows of the register tile: the AVX-512 kernel's (they share
/// [`store_tile`]).
pub(super) const MR: usize = super::avx512::MR;
/// Columns of the register tile (two zmm registers).
pub(super) const NR: usize = super::avx512::NR;
/// k per packed block (even): more than the fp32 kernel's 256, as a bf16
/// pair takes one word (fewer write-backs of C per product); 256, 384 and
/// 512 with NC 512-2048 were tried on GPT-2-small's shapes (`cargo bench
/// --bench sgemm -- gpt2 bf16`), 384 / 1024 was best on every one.
const KC: usize = 384;
/// Rows of A per packed block (a multiple of MR).
const MC: usize = 140;
/// Columns of B per packed block (a multiple of NR): a packed block of B,
/// `NC * KC / 2` words, is 768 KB (Zen 4's L2 is 1 MB).
const NC: usize = 1024;

/// `x` rounded to bf16 (nearest, ties to even), as its 16 bits. NaN stays a
/// (quiet) NaN; infinities and overflow to infinity are kept.
#[inline(always)]
pub(crate) fn bf16_bits(x: f32) -> u32 {
    let b = x.to_bits();
    // (Wrapping: a NaN's bits may overflow here; it takes the other branch.)
    let rounded = b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16;
    if x.is_nan() {
        (b >> 16) | 0x40
    } else {
        rounded
    }
}

/// `x` rounded to bf16 and widened back to f32 (what the kernel multiplies).
#[inline(always)]
pub(crate) fn round_bf16(x: f32) -> f32 {
    f32::from_bits(bf16_bits(x) << 16)
}

/// Whether this CPU has AVX512-BF16 beside AVX-512 F/BW/DQ/VL (the kernel's
/// needs); asked once, as every product on a bf16 thread asks it.
pub(crate) fn available() -> bool {
    static HAVE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAVE.get_or_init(|| {
        std::is_x86_feature_detected!("avx512bf16")
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512dq")
            && std::is_x86_feature_detected!("avx512vl")
    })
}

/// `C (+)= alpha bf16(A) bf16(B)` for one thread's problem `p`, packing into
/// `pa` / `pb` (grown as needed).
///
/// # Safety
/// `p` is a problem checked by [`super::sgemm_impl`] (every index its strides
/// reach lies inside A, B and C), no other thread touches its part of C while
/// this runs, and the CPU has what [`available`] checks.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")]
pub(super) unsafe fn gemm(p: Raw, pa: &mut Vec<u32>, pb: &mut Vec<u32>) {
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
    let kq_max = KC.min(k).div_ceil(2);
    let mc_max = MC.min(m.div_ceil(MR) * MR);
    let nc_max = NC.min(n.div_ceil(NR) * NR);
    if pa.len() < mc_max * kq_max {
        pa.resize(mc_max * kq_max, 0);
    }
    if pb.len() < nc_max * kq_max {
        pb.resize(nc_max * kq_max, 0);
    }
    let pa = pa.as_mut_ptr();
    let pb = pb.as_mut_ptr();
    // SAFETY: the blocking loops only form offsets of elements (i, p) of A,
    // (p, j) of B and (i, j) of C inside the m x k, k x n, m x n problem,
    // which the caller guarantees to be in bounds; `pa` and `pb` were sized
    // just above for the largest block, which is all the packing and the
    // kernel's packed reads touch; the CPU has the features this function is
    // compiled for (the caller).
    unsafe {
        let mut jc = 0;
        while jc < n {
            let nc = NC.min(n - jc);
            let mut pc = 0;
            while pc < k {
                let kc = KC.min(k - pc);
                let kq = kc.div_ceil(2);
                pack_pairs::<NR>(nc, kc, b.add(pc * b_rs + jc * b_cs), b_cs, b_rs, pb);
                let mut ic = 0;
                while ic < m {
                    let mc = MC.min(m - ic);
                    pack_pairs::<MR>(mc, kc, a.add(ic * a_rs + pc * a_cs), a_rs, a_cs, pa);
                    let mut jr = 0;
                    while jr < nc {
                        let mut ir = 0;
                        while ir < mc {
                            let (mr, nr) = (MR.min(mc - ir), NR.min(nc - jr));
                            let t = Tile {
                                kq,
                                b: pb.add(jr * kq),
                                out: p.tile(pc, ic + ir, jc + jr, mr, nr),
                            };
                            kernel(t, pa.add(ir * kq));
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

/// The word of bf16(`lo`) and bf16(`hi`).
#[inline(always)]
fn pair(lo: f32, hi: f32) -> u32 {
    bf16_bits(lo) | (bf16_bits(hi) << 16)
}

/// [`bf16_bits`] of sixteen floats, one per 32-bit lane (the bf16 in the
/// low half, the high half zero).
///
/// # Safety
/// The CPU has AVX-512F.
#[inline(always)]
unsafe fn round16(v: __m512) -> __m512i {
    // SAFETY: register operations only; the CPU has AVX-512F (the caller).
    unsafe {
        let b = _mm512_castps_si512(v);
        let one = _mm512_set1_epi32(1);
        let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(b), one);
        let bias = _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb);
        let rounded = _mm512_srli_epi32::<16>(_mm512_add_epi32(b, bias));
        let quiet = _mm512_or_si512(_mm512_srli_epi32::<16>(b), _mm512_set1_epi32(0x40));
        let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
        _mm512_mask_blend_epi32(nan, rounded, quiet)
    }
}

/// `dst[j] = pair(lo[j], hi[j])` for `j < n <= 16` (`hi` zero when `None`).
///
/// # Safety
/// `lo` and `hi` have `n` readable floats, `dst` room for `n` words; the CPU
/// has AVX-512F.
#[inline(always)]
unsafe fn row_pairs(lo: *const f32, hi: Option<*const f32>, n: usize, dst: *mut u32) {
    let m: __mmask16 = if n >= 16 {
        0xffff
    } else {
        ((1u32 << n) - 1) as u16
    };
    // SAFETY: the masked loads and store touch only the `n` live lanes.
    unsafe {
        let l = round16(_mm512_maskz_loadu_ps(m, lo));
        let h = match hi {
            Some(h) => _mm512_slli_epi32::<16>(round16(_mm512_maskz_loadu_ps(m, h))),
            None => _mm512_setzero_si512(),
        };
        _mm512_mask_storeu_epi32(dst as *mut i32, m, _mm512_or_si512(l, h));
    }
}

/// `words[q] = pair(s[2q], s[2q + 1])` for the `kc` contiguous floats at `s`
/// (the last `hi` zero when `kc` is odd).
///
/// # Safety
/// `s` has `kc` readable floats, `words` room for `kc.div_ceil(2)`; the CPU
/// has AVX-512F.
#[inline(always)]
unsafe fn adjacent_pairs(s: *const f32, kc: usize, words: &mut [u32]) {
    let mut p = 0;
    // SAFETY: each load reads s[p..p + 16] with p + 16 <= kc, each store
    // words[p/2..p/2 + 8] with p/2 + 8 <= kc/2.
    unsafe {
        while p + 16 <= kc {
            let r = round16(_mm512_loadu_ps(s.add(p)));
            // Each lane's low 16 bits, in order: lanes 2q and 2q + 1 make word q.
            let w = _mm512_cvtepi32_epi16(r);
            _mm256_storeu_si256(words.as_mut_ptr().add(p / 2) as *mut __m256i, w);
            p += 16;
        }
        while p + 2 <= kc {
            words[p / 2] = pair(*s.add(p), *s.add(p + 1));
            p += 2;
        }
        if p < kc {
            words[p / 2] = pair(*s.add(p), 0.0);
        }
    }
}

/// Pack `rows` x `kc` of X (element (r, p) at `x + r*rs + p*cs`) into
/// `R`-row panels of bf16 pairs: panel `t`, word (q, r) at `t*R*kq + q*R + r`
/// holds `pair(X(r, 2q), X(r, 2q + 1))`; rows beyond `rows` and the odd k
/// past `kc` are zero. A is packed as X = A (`R = MR`), B as X = Bᵀ
/// (`R = NR`, the strides swapped).
///
/// # Safety
/// Elements (r, p), r < rows, p < kc, are readable; `dst` has room for
/// `rows.div_ceil(R) * R * kc.div_ceil(2)` words; the CPU has AVX-512F.
#[inline(always)]
unsafe fn pack_pairs<const R: usize>(
    rows: usize,
    kc: usize,
    x: *const f32,
    rs: usize,
    cs: usize,
    dst: *mut u32,
) {
    let kq = kc.div_ceil(2);
    // SAFETY: reads stay at (r, p) with r < rows, p < kc; writes stay in the
    // `ceil(rows/R)*R x kq` panels of `dst` (the caller's contract).
    unsafe {
        let mut t0 = 0;
        while t0 < rows {
            let n = R.min(rows - t0);
            let d = dst.add(t0 * kq);
            let src = x.add(t0 * rs);
            if n < R {
                std::ptr::write_bytes(d, 0, kq * R);
            }
            if rs == 1 {
                // A panel's rows contiguous for each p: 16 of them at a time.
                for q in 0..kq {
                    let p = 2 * q;
                    let (lo, hi) = (src.add(p * cs), src.add((p + 1) * cs));
                    let mut r = 0;
                    while r < n {
                        let hi = (p + 1 < kc).then(|| hi.add(r));
                        row_pairs(lo.add(r), hi, 16.min(n - r), d.add(q * R + r));
                        r += 16;
                    }
                }
            } else {
                let mut words = [0u32; KC / 2];
                for r in 0..n {
                    let s = src.add(r * rs);
                    if cs == 1 {
                        // The row's pairs are adjacent: convert the row,
                        // then spread it over the panel.
                        adjacent_pairs(s, kc, &mut words);
                    } else {
                        for (q, w) in words.iter_mut().enumerate().take(kq) {
                            let p = 2 * q;
                            let h = if p + 1 < kc {
                                *s.add((p + 1) * cs)
                            } else {
                                0.0
                            };
                            *w = pair(*s.add(p * cs), h);
                        }
                    }
                    for (q, &w) in words.iter().enumerate().take(kq) {
                        *d.add(q * R + r) = w;
                    }
                }
            }
            t0 += R;
        }
    }
}

/// Where one register tile reads B and writes C.
#[derive(Clone, Copy)]
struct Tile {
    /// Pairs of k in this block.
    kq: usize,
    /// The packed B panel: word (q, j) at `b + q*NR + j`.
    b: *const u32,
    out: Out,
}

/// The 14x32 microkernel on a packed A panel: word (i, q) at `a + q*14 + i`.
///
/// # Safety
/// The packed panels (kq x 14 and kq x 32 words) and `t.out`'s tile are in
/// bounds (as [`store_tile`] needs); the CPU has AVX-512F and AVX512-BF16.
#[inline(always)]
unsafe fn kernel(t: Tile, a: *const u32) {
    // SAFETY: the loads read the packed A and B panels inside the bounds the
    // caller guarantees; the masked loads and stores touch only C's mr x nr
    // tile. The transmutes reinterpret 512-bit vectors of the same size.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        let mut ao = a;
        let mut bp = t.b;
        macro_rules! step {
            () => {{
                let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp as *const _));
                let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp.add(16) as *const _));
                for (i, row) in acc.iter_mut().enumerate() {
                    let x: __m512bh = std::mem::transmute(_mm512_set1_epi32(*ao.add(i) as i32));
                    row[0] = _mm512_dpbf16_ps(row[0], x, b0);
                    row[1] = _mm512_dpbf16_ps(row[1], x, b1);
                }
                ao = ao.add(MR);
                bp = bp.add(NR);
            }};
        }
        let mut q = 0;
        while q + 2 <= t.kq {
            step!();
            step!();
            q += 2;
        }
        while q < t.kq {
            step!();
            q += 1;
        }
        store_tile(&acc, t.out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Floats that test the rounding: ties both ways, carries into the
    /// exponent, denormals, infinities, NaNs (quiet, signalling, negative),
    /// the largest finite values, and pseudo-random bit patterns.
    fn awkward() -> Vec<f32> {
        let mut v: Vec<f32> = [
            0x3f80_8000u32, // 1 + 2^-8: a tie, to even (down)
            0x3f81_8000,    // a tie, to even (up)
            0x3f80_7fff,
            0x3fff_ffff, // carries into the exponent
            0x7f7f_ffff, // f32::MAX: overflows to infinity
            0xff7f_ffff,
            0x0000_0001, // the smallest denormal
            0x8040_0000, // a negative denormal
            0x007f_ffff,
            0x7f80_0000, // infinity
            0xff80_0000,
            0x7fc0_0000, // quiet NaN
            0x7f80_0001, // signalling NaN
            0xffff_ffff, // negative NaN, all bits set
            0x0000_0000,
            0x8000_0000,
        ]
        .iter()
        .map(|&b| f32::from_bits(b))
        .collect();
        let mut x = 0x1234_5678u32;
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            v.push(f32::from_bits(x));
        }
        v
    }

    /// The vector packers give the scalar `pair` word for word.
    #[test]
    fn vector_pairs_match_scalar_rounding() {
        if !available() {
            eprintln!(
                "NOTE: this CPU lacks AVX-512/AVX512-BF16: the vector packers are not checked here"
            );
            return;
        }
        let v = awkward();
        for kc in [1, 2, 15, 16, 17, 33, v.len()] {
            let want: Vec<u32> = (0..kc.div_ceil(2))
                .map(|q| pair(v[2 * q], if 2 * q + 1 < kc { v[2 * q + 1] } else { 0.0 }))
                .collect();
            let mut got = vec![0u32; kc.div_ceil(2)];
            // SAFETY: `v` has at least `kc` floats, `got` room for the words;
            // the CPU has AVX-512F (checked above).
            unsafe { adjacent_pairs(v.as_ptr(), kc, &mut got) };
            assert_eq!(got, want, "adjacent pairs, kc {kc}");
        }
        let half = v.len() / 2;
        let (lo, hi) = v.split_at(half);
        for n in [1, 7, 14, 16] {
            for with_hi in [true, false] {
                let want: Vec<u32> = (0..n)
                    .map(|j| pair(lo[j], if with_hi { hi[j] } else { 0.0 }))
                    .collect();
                let mut got = vec![7u32; n + 1];
                // SAFETY: `lo` and `hi` have at least 16 floats, `got` room
                // for `n` words; the CPU has AVX-512F.
                unsafe {
                    row_pairs(
                        lo.as_ptr(),
                        with_hi.then_some(hi.as_ptr()),
                        n,
                        got.as_mut_ptr(),
                    )
                };
                assert_eq!(&got[..n], &want[..], "row pairs, n {n}, hi {with_hi}");
                assert_eq!(got[n], 7, "row pairs wrote past n = {n}");
            }
        }
    }
}
