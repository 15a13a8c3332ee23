//! The AVX-512 and AVX2/FMA code paths of the fused kernels against their
//! portable paths (plain Rust loops and the `gemm` crate), on one machine,
//! and the parallel split of the products against one thread. One test function: the
//! switch is process-wide, and this file is its own test process.
//!
//! A level the CPU lacks is skipped with a note on stderr (without AVX2 the
//! portable path is compared with nothing but itself across thread counts);
//! the test still passes, also under `CI=true` (CI machines may lack AVX2 or
//! AVX-512).

use headsup::model::simd::{cpu_simd_level, reset_max_simd, set_max_simd, SimdLevel};

mod model_support;
use model_support::{in_pool, model_grads, rel_err, split_model};

/// A loss and the gradient of every parameter.
type LossGrads = (f32, Vec<Vec<f32>>);

/// Whether this CPU runs the AVX2 + FMA paths at all.
fn cpu_has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[test]
fn simd_and_portable_paths_agree_and_threads_do_not_change_results() {
    if cpu_has_avx2_fma() {
        eprintln!(
            "portable: this CPU has AVX2 and FMA: comparing the SIMD paths with the portable one"
        );
    } else {
        eprintln!(
            "portable: NOTE: this CPU has no AVX2/FMA, so both runs take the portable path: \
             this compares the portable path with itself (and checks only that the thread \
             count does not change results)"
        );
    }
    // Wide enough (rows 128, width 64) that the products split over threads.
    let model = split_model();

    // Each level the CPU has: thread count never changes a result, and
    // every SIMD path is within 1e-5 of the portable one (loss and every
    // gradient). AVX-512 (kernels and matrix product forced to it) and AVX2
    // compute the same operations in the same order: bit-identical.
    let mut runs: Vec<(SimdLevel, LossGrads)> = Vec::new();
    for level in [SimdLevel::Portable, SimdLevel::Avx2, SimdLevel::Avx512] {
        if cpu_simd_level() < level {
            eprintln!(
                "portable: NOTE: this CPU lacks {}: that path is not checked here",
                level.name()
            );
            continue;
        }
        set_max_simd(level);
        let r1 = in_pool(1, |_| {}, || model_grads(&model, 4, 32, true));
        let r3 = in_pool(3, |_| {}, || model_grads(&model, 4, 32, true));
        let name = level.name();
        assert_eq!(r1.0, r3.0, "{name}: loss depends on the thread count");
        assert_eq!(r1.1, r3.1, "{name}: gradients depend on the thread count");
        eprintln!("portable: {name}: loss {} at 1 and 3 threads", r1.0);
        runs.push((level, r1));
    }
    reset_max_simd();
    let (_, (lp, gp)) = &runs[0];
    for (level, (l, g)) in &runs[1..] {
        let name = level.name();
        let e = rel_err(&[*l], &[*lp]);
        assert!(e < 1e-5, "loss: {name} {l} vs portable {lp} (relative {e})");
        for (i, (a, b)) in g.iter().zip(gp).enumerate() {
            let e = rel_err(a, b);
            assert!(
                e < 1e-5,
                "gradient {i}: {name} vs portable relative error {e}"
            );
        }
    }
    if runs.len() == 3 {
        assert_eq!(runs[1].1 .0, runs[2].1 .0, "loss: AVX-512 vs AVX2");
        assert_eq!(runs[1].1 .1, runs[2].1 .1, "gradients: AVX-512 vs AVX2");
        eprintln!("portable: AVX-512 and AVX2: bit-identical loss and gradients");
    }
}
