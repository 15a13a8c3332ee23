//! The AVX2/FMA code paths of the fused kernels against their portable
//! paths (plain Rust loops and the `gemm` crate), on one machine, and the
//! parallel split of the products against one thread. One test function: the
//! switch is process-wide, and this file is its own test process.
//!
//! On a CPU without AVX2 and FMA both runs take the portable path, so the
//! comparison is of the portable path with itself (the thread-count checks
//! still hold): the test says so on stderr and passes, also under `CI=true`
//! (CI machines may lack AVX2).

use dfdx::prelude::*;
use headsup::model::fused::set_portable_only;
use headsup::model::{Gpt, GptConfig};

mod model_support;
use model_support::model_grads;

fn in_pool<R: Send>(n: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .expect("thread pool")
        .install(f)
}

/// max|a - b| / max|b|.
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    let num = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    num / b.iter().map(|y| y.abs()).fold(1e-6, f32::max)
}

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
            "portable: this CPU has AVX2 and FMA: comparing the AVX2 path with the portable one"
        );
    } else {
        eprintln!(
            "portable: NOTE: this CPU has no AVX2/FMA, so both runs take the portable path: \
             this compares the portable path with itself (and checks only that the thread \
             count does not change results)"
        );
    }
    // Wide enough (rows 128, width 64) that the products split over threads.
    let cfg = GptConfig {
        vocab_size: 37,
        n_positions: 32,
        n_embd: 64,
        n_layer: 2,
        n_head: 4,
        layer_norm_epsilon: 1e-5,
    };
    let model = Gpt::new(&Cpu::default(), cfg, 11);

    set_portable_only(false);
    let (l1, g1) = in_pool(1, || model_grads(&model, 4, 32, true));
    let (l3, g3) = in_pool(3, || model_grads(&model, 4, 32, true));
    assert_eq!(l1, l3, "loss depends on the thread count");
    assert_eq!(g1, g3, "gradients depend on the thread count");

    set_portable_only(true);
    let (lp, gp) = in_pool(2, || model_grads(&model, 4, 32, true));
    let (lp1, gp1) = in_pool(1, || model_grads(&model, 4, 32, true));
    set_portable_only(false);
    assert_eq!(lp, lp1, "portable loss depends on the thread count");
    assert_eq!(gp, gp1, "portable gradients depend on the thread count");

    let e = rel_err(&[l1], &[lp]);
    assert!(e < 1e-5, "loss: SIMD {l1} vs portable {lp} (relative {e})");
    for (i, (a, b)) in g1.iter().zip(&gp).enumerate() {
        let e = rel_err(a, b);
        assert!(
            e < 1e-5,
            "gradient {i}: SIMD vs portable relative error {e}"
        );
    }
}
