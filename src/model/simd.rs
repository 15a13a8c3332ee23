//! The SIMD helpers every CPU kernel shares (the fused model kernels and the
//! optimizer): `simd_fn!` (one body compiled for plain x86-64, AVX2 + FMA and
//! AVX-512, the widest the CPU has chosen at run time), the run-time feature
//! switch ([`simd_level`], [`set_max_simd`], `HEADSUP_SIMD`), the eight-accumulator
//! reductions (`reduce8!`, `sum8`, `dot8`, ...) and the branch-free
//! `fast_exp` / `fast_tanh`.

/// Defines `fn $name(args) -> ret` three times: as written, compiled for
/// AVX2 + FMA and compiled for AVX-512 (x86-64), choosing at run time the
/// widest the CPU has and [`simd_level`] allows. The body must not call
/// `mul_add` (so every version rounds alike: the results are the same on
/// every path) and must only call `#[inline(always)]` helpers (so they are
/// compiled into the SIMD versions too). Rayon closures do not inherit target
/// features: use this for the per-chunk loops, not around `par_*` calls.
macro_rules! simd_fn {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                fn avx512($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                match $crate::model::simd::simd_level() {
                    // SAFETY: `simd_level` returns `Avx512` only where the CPU
                    // has AVX-512 F/BW/DQ/VL, AVX2 and FMA (checked at run time).
                    $crate::model::simd::SimdLevel::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: `simd_level` returns `Avx2` only where the CPU
                    // has AVX2 and FMA (checked at run time).
                    $crate::model::simd::SimdLevel::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::model::simd::SimdLevel::Portable => {}
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use simd_fn;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

/// The instruction sets a kernel may use, narrowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdLevel {
    /// Plain Rust (what the default x86-64 target gives: SSE2) and the `gemm`
    /// crate for products.
    Portable,
    /// AVX2 + FMA: the 6x16 sgemm kernel and 256-bit element-wise loops.
    Avx2,
    /// AVX-512 (F, BW, DQ, VL) + AVX2 + FMA: the 14x32 sgemm kernel and
    /// 512-bit element-wise loops.
    Avx512,
}

impl SimdLevel {
    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::Portable => "portable",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Avx512 => "avx512",
        }
    }
}

/// The widest level this CPU supports (std caches the feature checks).
pub fn cpu_simd_level() -> SimdLevel {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        let avx512 = std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512dq")
            && std::is_x86_feature_detected!("avx512vl");
        if avx2 && avx512 {
            SimdLevel::Avx512
        } else if avx2 {
            SimdLevel::Avx2
        } else {
            SimdLevel::Portable
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        SimdLevel::Portable
    }
}

/// The cap set by [`set_max_simd`]; `u8::MAX` until the first use reads
/// `HEADSUP_SIMD`.
static MAX_LEVEL: AtomicU8 = AtomicU8::new(u8::MAX);

/// The cap from the environment, `HEADSUP_SIMD=portable|avx2|avx512` (for
/// A/B runs of whole processes; `avx512` also forces the AVX-512 matrix
/// product, see [`sgemm_level`]), and whether it was set to `avx512`.
fn env_cap() -> (SimdLevel, bool) {
    static CAP: OnceLock<(SimdLevel, bool)> = OnceLock::new();
    *CAP.get_or_init(|| match std::env::var("HEADSUP_SIMD").as_deref() {
        Ok("portable") => (SimdLevel::Portable, false),
        Ok("avx2") => (SimdLevel::Avx2, false),
        Ok("avx512") => (SimdLevel::Avx512, true),
        _ => (SimdLevel::Avx512, false),
    })
}

fn from_u8(v: u8) -> SimdLevel {
    match v {
        0 => SimdLevel::Portable,
        1 => SimdLevel::Avx2,
        _ => SimdLevel::Avx512,
    }
}

/// Caps the instruction set every kernel uses at `level` (process-wide), so
/// tests and benchmarks can compare the paths on one machine; the CPU's own
/// limit still applies. Overrides `HEADSUP_SIMD`; `Avx512` also forces the
/// AVX-512 matrix product where it is not the default ([`sgemm_level`]).
pub fn set_max_simd(level: SimdLevel) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Back to the default: the CPU's widest level, capped by `HEADSUP_SIMD`.
pub fn reset_max_simd() {
    MAX_LEVEL.store(u8::MAX, Ordering::Relaxed);
}

/// Makes every fused kernel take its portable path (no AVX2/AVX-512 code,
/// the `gemm` crate for products) even where the CPU has more (`true`), or
/// goes back to the default (`false`, [`reset_max_simd`]). Process-wide.
pub fn set_portable_only(on: bool) {
    if on {
        set_max_simd(SimdLevel::Portable);
    } else {
        reset_max_simd();
    }
}

/// The level the kernels run at now: the CPU's, capped by [`set_max_simd`]
/// (or, before any call to it, by `HEADSUP_SIMD`).
#[inline]
pub fn simd_level() -> SimdLevel {
    let cap = match MAX_LEVEL.load(Ordering::Relaxed) {
        u8::MAX => env_cap().0,
        v => from_u8(v),
    };
    cpu_simd_level().min(cap)
}

/// The level the matrix product runs at: [`simd_level`], except on CPUs
/// whose 512-bit FMAs are executed as two 256-bit halves (AMD Zen 4, CPU
/// family 0x19), where the 6x16 AVX2 kernel measured faster than the 14x32
/// AVX-512 one (docs/performance.md) and is used unless AVX-512 is asked for
/// explicitly (`HEADSUP_SIMD=avx512` or `set_max_simd(SimdLevel::Avx512)`).
/// The two kernels give bit-identical results.
pub fn sgemm_level() -> SimdLevel {
    let level = simd_level();
    if level < SimdLevel::Avx512 {
        return level;
    }
    let explicit = match MAX_LEVEL.load(Ordering::Relaxed) {
        u8::MAX => env_cap().1,
        v => from_u8(v) == SimdLevel::Avx512,
    };
    if explicit || !half_width_avx512() {
        SimdLevel::Avx512
    } else {
        SimdLevel::Avx2
    }
}

/// Whether this CPU runs AVX-512 on 256-bit units (AMD family 0x19: Zen 4).
fn half_width_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HALF: OnceLock<bool> = OnceLock::new();
        *HALF.get_or_init(|| {
            use std::arch::x86_64::__cpuid;
            let v = __cpuid(0);
            let amd = (v.ebx, v.edx, v.ecx) == (0x6874_7541, 0x6974_6e65, 0x444d_4163);
            let f = __cpuid(1).eax;
            let family = ((f >> 8) & 0xf) + ((f >> 20) & 0xff);
            amd && family == 0x19
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Reductions with eight independent accumulators, combined in a fixed order:
/// they vectorise (a single running sum is a dependency chain the compiler
/// may not reorder), and the result does not depend on the machine or the
/// number of threads. `reduce8!(n, init, op, |j| term)` folds `term` for
/// `j` in `0..n` with `op`.
macro_rules! reduce8 {
    ($n:expr, $init:expr, $op:expr, |$j:ident| $term:expr) => {{
        let n = $n;
        let op = $op;
        let mut acc = [$init; 8];
        let full = n / 8 * 8;
        let mut base = 0;
        while base < full {
            for k in 0..8 {
                let $j = base + k;
                acc[k] = op(acc[k], $term);
            }
            base += 8;
        }
        let mut tail = $init;
        for $j in full..n {
            tail = op(tail, $term);
        }
        op(
            op(
                op(op(acc[0], acc[4]), op(acc[1], acc[5])),
                op(op(acc[2], acc[6]), op(acc[3], acc[7])),
            ),
            tail,
        )
    }};
}

pub(crate) use reduce8;

/// Σ x.
#[inline(always)]
pub(crate) fn sum8(x: &[f32]) -> f32 {
    reduce8!(x.len(), 0.0f32, |a: f32, b: f32| a + b, |j| x[j])
}

/// Σ a b.
#[inline(always)]
pub(crate) fn dot8(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    reduce8!(n, 0.0f32, |p: f32, q: f32| p + q, |j| a[j] * b[j])
}

/// Σ a b c.
#[inline(always)]
pub(crate) fn dot3_8(a: &[f32], b: &[f32], c: &[f32]) -> f32 {
    let n = a.len().min(b.len()).min(c.len());
    let (a, b, c) = (&a[..n], &b[..n], &c[..n]);
    reduce8!(n, 0.0f32, |p: f32, q: f32| p + q, |j| a[j] * b[j] * c[j])
}

/// Σ (x - m)².
#[inline(always)]
pub(crate) fn sq_dev8(x: &[f32], m: f32) -> f32 {
    reduce8!(x.len(), 0.0f32, |p: f32, q: f32| p + q, |j| (x[j] - m)
        * (x[j] - m))
}

/// max x (NEG_INFINITY when empty; NaNs ignored, as `f32::max` does).
#[inline(always)]
pub(crate) fn max8(x: &[f32]) -> f32 {
    reduce8!(x.len(), f32::NEG_INFINITY, f32::max, |j| x[j])
}

/// Σ exp(x - m).
#[inline(always)]
pub(crate) fn sum_exp8(x: &[f32], m: f32) -> f32 {
    reduce8!(x.len(), 0.0f32, |p: f32, q: f32| p + q, |j| fast_exp(
        x[j] - m
    ))
}

/// `exp(x)` for f32 without a libm call, branch-free and conversion-free so
/// loops over it vectorise: range reduction by ln 2 and a degree-6 polynomial
/// (Cephes `expf`), within about 2 ulp of `f32::exp` on [-87, 88]; 0 below
/// that (so `exp(-inf) = 0`, as the causal mask needs); NaN stays NaN.
#[inline(always)]
pub(crate) fn fast_exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding it rounds to the nearest integer, which then sits
    // in the low mantissa bits (no float-to-int conversion, which Rust
    // saturates lane by lane and so keeps out of SIMD registers).
    const MAGIC: f32 = 12_582_912.0;
    let under = x < -87.0;
    let x = x.clamp(-87.0, 88.0);
    let big = x * LOG2E + MAGIC;
    let n = big - MAGIC;
    let ni = (big.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let r = x - n * LN2_HI - n * LN2_LO;
    let r2 = r * r;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e = p * r2 + r + 1.0;
    let scale = f32::from_bits((ni.wrapping_add(127) as u32) << 23);
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
    fn eight_lane_reductions_match_f64_sums() {
        for n in [0usize, 1, 7, 8, 9, 63, 64, 130] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 37 % 17) as f32 - 8.0) * 0.3).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 11 % 13) as f32 - 6.0) * 0.7).collect();
            let c: Vec<f32> = (0..n).map(|i| 1.0 + (i % 5) as f32).collect();
            let f = |v: f64, w: f64| {
                assert!((v - w).abs() <= 1e-5 * (1.0 + w.abs()), "n={n}: {v} vs {w}")
            };
            f(sum8(&a) as f64, a.iter().map(|&x| x as f64).sum());
            f(
                dot8(&a, &b) as f64,
                a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum(),
            );
            f(
                dot3_8(&a, &b, &c) as f64,
                (0..n)
                    .map(|j| a[j] as f64 * b[j] as f64 * c[j] as f64)
                    .sum(),
            );
            f(
                sq_dev8(&a, 0.25) as f64,
                a.iter().map(|&x| (x as f64 - 0.25).powi(2)).sum(),
            );
            f(
                sum_exp8(&a, 1.0) as f64,
                a.iter().map(|&x| (x as f64 - 1.0).exp()).sum(),
            );
            let m = a.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(max8(&a), m, "n={n}");
        }
        assert_eq!(max8(&[1.0, f32::NAN, 3.0]), 3.0);
    }

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
        assert!(fast_exp(f32::NAN).is_nan() && fast_tanh(f32::NAN).is_nan());
        assert!((fast_exp(88.0) - 88.0f32.exp()).abs() <= 4e-7 * 88.0f32.exp());
        assert_eq!(fast_exp(-100.0), 0.0);
    }
}
