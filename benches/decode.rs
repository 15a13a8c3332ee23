//! Greedy-decode speed of the host inference path (`model::infer`) at
//! GPT-2-small size (124M parameters: 12 layers, width 768, vocabulary
//! 50257, 1024 positions), 1 and 2 threads: milliseconds per token with the
//! KV cache, and the weight bytes streamed per second that implies (a decode
//! step reads every weight once; at one thread it is bound by memory
//! bandwidth).
//!
//! `cargo bench --bench decode [-- ROUNDS] [THREADS...]` (default 3 rounds,
//! threads 1 2; random weights, seed 0). Prints the CPU's model name and SIMD
//! flags first, then one line per round and thread count.

use dfdx::prelude::*;
use headsup::model::infer::{HostModel, KvCache};
use headsup::model::sample::argmax;
use headsup::model::{Gpt, GptConfig};
use std::time::Instant;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rounds = args.first().copied().unwrap_or(3);
    let threads: Vec<usize> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        vec![1, 2]
    };
    let cfg = GptConfig {
        vocab_size: 50257,
        n_positions: 1024,
        n_embd: 768,
        n_layer: 12,
        n_head: 12,
        layer_norm_epsilon: 1e-5,
    };
    let cpu = headsup::bench::cpu_info();
    println!(
        "cpu: {} [{}], kernels {}",
        cpu["model"], cpu["simd_flags"], cpu["kernels"]
    );
    let host = HostModel::from_model(&Gpt::new(&Cpu::default(), cfg, 0));
    let bytes = cfg.n_params() as f64 * 4.0;
    println!(
        "124M-shape GPT-2, {:.0} MB of weights, prompt 8 tokens, 64 timed decode steps",
        bytes / 1e6
    );
    for round in 0..rounds {
        for &t in &threads {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap();
            let ms = pool.install(|| {
                let mut cache = KvCache::new(&cfg);
                let mut tok = 0usize;
                for i in 0..8 {
                    host.step(&mut cache, i * 7 + 1, None);
                }
                let t0 = Instant::now();
                for _ in 0..64 {
                    let logits = host.step(&mut cache, tok, None);
                    tok = argmax(&logits);
                }
                t0.elapsed().as_secs_f64() * 1e3 / 64.0
            });
            println!(
                "round {round} threads {t}: {ms:.2} ms/token, {:.1} tok/s, {:.1} GB/s of weights",
                1e3 / ms,
                bytes / (ms * 1e-3) / 1e9
            );
        }
    }
}
