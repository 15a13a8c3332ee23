//! headsup's sgemm (`model::fused::matmul`) against the `gemm` crate (dfdx
//! 0.13's matmul engine) on the baby config's or GPT-2-small's training
//! shapes, 1 and 2 threads.
//! Prints GFLOP/s per shape: the median and the best of the timed batches,
//! each implementation timed back to back in every round.
//!
//! `cargo bench --bench sgemm [-- ROUNDS] [gpt2] [bf16]` (default 5 rounds;
//! `gpt2`: GPT-2-small's shapes instead; `bf16`: headsup's products in
//! `train.precision = "bf16"`, the gemm crate's still fp32). `HEADSUP_SIMD=avx2` (or `portable`) caps
//! the kernels, for A/B runs on an AVX-512 CPU.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use headsup::model::fused::matmul::{sgemm, Mat};
use std::time::Instant;

fn lcg_vec(seed: &mut u64, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// GFLOP/s of `f` over 5 batches of ~2 ms each, appended to `out`.
fn time_it(mut f: impl FnMut(), flops: f64, out: &mut Vec<f64>) {
    f();
    f();
    let t = Instant::now();
    let mut iters = 0;
    while t.elapsed().as_secs_f64() < 0.002 {
        f();
        iters += 1;
    }
    let iters = iters.max(1);
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        out.push(flops * iters as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
}

/// (median, best).
fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2], v[v.len() - 1])
}

/// ((ours median, best), (gemm crate median, best)) for `m x k x n`,
/// A and/or B transposed in memory.
fn bench(
    shape: (usize, usize, usize),
    ta: bool,
    tb: bool,
    threads: usize,
    rounds: usize,
) -> ((f64, f64), (f64, f64)) {
    let (m, k, n) = shape;
    let mut seed = 7u64;
    let a = lcg_vec(&mut seed, m * k);
    let b = lcg_vec(&mut seed, k * n);
    let mut c = vec![0.0f32; m * n];
    let am = if ta { Mat::t(&a, m) } else { Mat::rows(&a, k) };
    let bm = if tb { Mat::t(&b, k) } else { Mat::rows(&b, n) };
    let flops = 2.0 * (m * n * k) as f64;
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    let (mut ours, mut theirs) = (vec![], vec![]);
    for _ in 0..rounds {
        time_it(
            || sgemm(m, n, k, 1.0, am, bm, &mut c, n, false, threads),
            flops,
            &mut ours,
        );
        time_it(
            // SAFETY: a, b, c hold exactly the m x k, k x n, m x n elements the strides reach.
            || unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    c.as_mut_ptr(),
                    1,
                    n as isize,
                    false,
                    a.as_ptr(),
                    am.cs as isize,
                    am.rs as isize,
                    b.as_ptr(),
                    bm.cs as isize,
                    bm.rs as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    par,
                )
            },
            flops,
            &mut theirs,
        );
    }
    (stats(ours), stats(theirs))
}

/// The CPU's model name (Linux `/proc/cpuinfo`), or "unknown".
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// A shape `m x k x n`, A transposed, B transposed, its label, threads.
struct Case {
    shape: (usize, usize, usize),
    ta: bool,
    tb: bool,
    name: &'static str,
    threads: usize,
}

impl Case {
    /// `shape` with neither operand transposed (NN), A transposed (TN) and
    /// B transposed (NT).
    fn each_layout(shape: (usize, usize, usize), threads: usize) -> impl Iterator<Item = Case> {
        [
            (false, false, "NN"),
            (true, false, "TN"),
            (false, true, "NT"),
        ]
        .into_iter()
        .map(move |(ta, tb, name)| Case {
            shape,
            ta,
            tb,
            name,
            threads,
        })
    }
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    rayon::ThreadPoolBuilder::new()
        .num_threads(cores.max(2))
        .build_global()
        .ok();
    println!(
        "{:<14} {:>3} {:>3} | {:>8} {:>8} {:>6} | {:>8} {:>8} {:>6}",
        "m x k x n", "tr", "thr", "ours med", "gemm med", "ratio", "ours max", "gemm max", "ratio"
    );
    let level = headsup::model::simd::simd_level();
    println!(
        "cpu: {} | kernels: {} (HEADSUP_SIMD caps it: portable, avx2, avx512)",
        cpu_model(),
        level.name()
    );
    let gpt2 = std::env::args().any(|a| a == "gpt2");
    if std::env::args().any(|a| a == "bf16") {
        use headsup::model::fused::matmul::{bf16_engine, set_thread_precision, Precision};
        set_thread_precision(Precision::Bf16);
        println!("ours: bf16 products, fp32 accumulation ({})", bf16_engine());
    }
    let mut cases = Vec::new();
    if gpt2 {
        // GPT-2-small at batch 4, block 256: 1024 rows, width 768, as the
        // linear layers call the product: forward `x W` (NN), input
        // gradient `dy Wᵀ` (NT) and weight gradient `xᵀ dy` (TN), for the
        // qkv (768 -> 2304), attention output (768 -> 768), MLP up
        // (768 -> 3072) and down (3072 -> 768) layers; then the attention
        // products of one head (256 keys, head width 64).
        for (i, o) in [(768, 2304), (768, 768), (768, 3072), (3072, 768)] {
            for (shape, ta, tb, name) in [
                ((1024, i, o), false, false, "NN"),
                ((1024, o, i), false, true, "NT"),
                ((i, 1024, o), true, false, "TN"),
            ] {
                for threads in [1, 2] {
                    cases.push(Case {
                        shape,
                        ta,
                        tb,
                        name,
                        threads,
                    });
                }
            }
        }
        for shape in [(256, 64, 256), (256, 256, 64)] {
            cases.extend(Case::each_layout(shape, 1));
        }
    } else {
        let shapes: &[(usize, usize, usize)] = &[
            (768, 128, 384),
            (768, 128, 512),
            (768, 512, 128),
            (128, 768, 384),
            (768, 384, 128),
            (128, 768, 512),
            (64, 32, 64),
            (64, 64, 32),
        ];
        for &shape in shapes {
            cases.extend(Case::each_layout(shape, 1));
        }
        for shape in [(768, 128, 512), (768, 512, 128)] {
            cases.push(Case {
                shape,
                ta: false,
                tb: false,
                name: "NN",
                threads: 2,
            });
        }
    }
    let mut log_ratios = Vec::new();
    for Case {
        shape: s,
        ta,
        tb,
        name,
        threads,
    } in cases
    {
        let ((om, ox), (gm, gx)) = bench(s, ta, tb, threads, rounds);
        if threads == 1 {
            log_ratios.push((om / gm).ln());
        }
        println!(
            "{:<14} {:>3} {:>3} | {:>8.1} {:>8.1} {:>6.2} | {:>8.1} {:>8.1} {:>6.2}",
            format!("{}x{}x{}", s.0, s.1, s.2),
            name,
            threads,
            om,
            gm,
            om / gm,
            ox,
            gx,
            ox / gx
        );
    }
    let g = (log_ratios.iter().sum::<f64>() / log_ratios.len() as f64).exp();
    println!("geometric mean of the 1-thread median ratios: {g:.2}");
}
