//! `headsup bench`: training throughput, generation speed and peak memory, as JSON.
//!
//! Training goes through the real trainer step (batching, forward, backward,
//! clipping, AdamW) on the data the experiment names, in a throw-away run
//! directory; generation uses the host inference path with and without the
//! KV cache on a model of the same widths with 256 positions.

use crate::config::Config;
use crate::model::infer::HostModel;
use crate::model::sample::{generate, SampleSettings};
use crate::model::{Gpt, GptConfig};
use crate::train::trainer::{gpt_config, Trainer, TrainerOptions};
use crate::train::{EventBus, PrepareOptions, Prepared};
use anyhow::Context;
use dfdx::prelude::*;
use serde_json::json;
use std::time::Instant;

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchOptions {
    /// Timed training steps on the fused kernels (after 3 warm-up steps).
    pub steps: usize,
    /// Timed training steps on the plain (unfused) path; 0 skips it.
    pub plain_steps: usize,
    /// Timed training steps on the fused kernels' portable path; 0 skips it.
    pub portable_steps: usize,
    /// Measure generation speed too.
    pub generate: bool,
    /// The preset the config came from, reported with the figures.
    pub preset: Option<Preset>,
}

/// A named shape to measure (`headsup bench --preset NAME`): a built-in
/// config and the overrides that give the shapes issue 18 compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// nanoGPT's baby config: 4 layers, 4 heads, width 128, block 64, batch 12.
    Baby,
    /// GPT-2-small's shapes: 12 layers, 12 heads, width 768, block 256, batch 4.
    Gpt2Small,
}

impl Preset {
    /// The names `--preset` accepts.
    pub const NAMES: [&'static str; 2] = ["baby", "gpt2-small"];

    pub fn from_name(name: &str) -> Option<Preset> {
        match name {
            "baby" => Some(Preset::Baby),
            "gpt2-small" => Some(Preset::Gpt2Small),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Preset::Baby => "baby",
            Preset::Gpt2Small => "gpt2-small",
        }
    }

    /// The built-in config it starts from (character-level tinyshakespeare;
    /// `--data` names the text).
    pub fn config(self) -> &'static str {
        "shakespeare-char"
    }

    /// `key=value` overrides, applied before the command line's own `--set`s.
    pub fn sets(self) -> Vec<String> {
        let kv: &[(&str, usize)] = match self {
            Preset::Baby => &[
                ("model.n_layer", 4),
                ("model.n_head", 4),
                ("model.n_embd", 128),
                ("model.block_size", 64),
                ("train.batch_size", 12),
            ],
            Preset::Gpt2Small => &[
                ("model.n_layer", 12),
                ("model.n_head", 12),
                ("model.n_embd", 768),
                ("model.block_size", 256),
                ("train.batch_size", 4),
            ],
        };
        kv.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

/// The CPU every figure is measured on: its model name (Linux
/// `/proc/cpuinfo`), the SIMD flags that matter to the kernels, and the
/// kernel levels headsup runs at on it.
pub fn cpu_info() -> serde_json::Value {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| {
        info.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let wanted = [
        "avx2",
        "fma",
        "avx512f",
        "avx512bw",
        "avx512dq",
        "avx512vl",
        "avx512_vnni",
        "avx512_bf16",
        "amx_tile",
        "amx_bf16",
    ];
    let flags: Vec<&str> = field("flags")
        .map(|f| {
            let have: Vec<String> = f.split_whitespace().map(str::to_string).collect();
            wanted
                .iter()
                .copied()
                .filter(|w| have.iter().any(|h| h == w))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "model": field("model name").unwrap_or_else(|| "unknown".into()),
        "simd_flags": flags.join(" "),
        "kernels": crate::model::simd::simd_level().name(),
        "sgemm": crate::model::simd::sgemm_level().name(),
    })
}

/// Peak resident set size of this process in MB (`VmHWM`), if readable.
pub fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

/// Tokens per second over `steps` timed steps after 3 warm-up steps, of a
/// fresh trainer on the fused kernels or the plain path; and the last loss.
fn train_tps(p: &Prepared, fused: bool, steps: usize) -> anyhow::Result<(f64, f64, f32)> {
    let dev = Cpu::seed_from_u64(p.config.seed);
    // Events go nowhere: no metrics, no consumer.
    let (tx, _rx) = std::sync::mpsc::channel();
    let opts = TrainerOptions {
        fused,
        ..TrainerOptions::from_config(&p.config, "cpu")
    };
    let mut tr = Trainer::new(&dev, p, EventBus::new(tx), opts)?;
    let tokens = tr.tokens_per_step() as f64;
    for _ in 0..3 {
        tr.train_step();
    }
    let mut per_step = Vec::with_capacity(steps);
    let t0 = Instant::now();
    let mut loss = 0.0;
    for _ in 0..steps {
        let t = Instant::now();
        loss = tr.train_step().loss;
        per_step.push(t.elapsed().as_secs_f64());
    }
    let total = t0.elapsed().as_secs_f64().max(1e-9);
    let med = median(per_step).max(1e-9);
    Ok((tokens * steps as f64 / total, tokens / med, loss))
}

/// Mean seconds per generated token for a total length `len` (1-token prompt).
fn gen_secs_per_token(host: &HostModel, len: usize, use_cache: bool) -> f64 {
    let s = SampleSettings {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        max_new_tokens: len.saturating_sub(1).max(1),
        seed: 7,
    };
    let t0 = Instant::now();
    let mut n = 0usize;
    generate(host, &[0], &s, use_cache, |_, _| {
        n += 1;
        true
    });
    t0.elapsed().as_secs_f64() / n.max(1) as f64
}

/// Measures the experiment `cfg` names (on the CPU, in a throw-away run
/// directory) and prints the figures as one JSON object.
pub fn run(mut cfg: Config, a: &BenchOptions) -> anyhow::Result<()> {
    cfg.device = "cpu".into();
    cfg.train.eval_interval = 0;
    let threads = if cfg.train.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        cfg.train.threads
    };
    let pool = crate::model::fused::matmul::thread_pool(threads, cfg.train.precision)
        .with_context(|| format!("cannot start {threads} threads"))?;
    let dir = std::env::temp_dir().join(format!("headsup-bench-{}", std::process::id()));
    let prepared = crate::train::prepare(
        cfg,
        &PrepareOptions {
            out: Some(dir.clone()),
            resume: None,
            block_size_explicit: false,
        },
    );
    let result = prepared.and_then(|p| pool.install(|| measure(a, &p, threads)));
    let _ = std::fs::remove_dir_all(&dir);
    println!("{}", serde_json::to_string(&result?)?);
    Ok(())
}

fn measure(a: &BenchOptions, p: &Prepared, threads: usize) -> anyhow::Result<serde_json::Value> {
    let cfg = &p.config;
    let dev = Cpu::seed_from_u64(cfg.seed);
    let fused_cfg = cfg.model.fused;
    let steps = a.steps.max(1);
    let (fused_tps, fused_tps_median, fused_loss) = train_tps(p, true, steps)?;
    let rss_train = peak_rss_mb();
    let plain = if a.plain_steps > 0 {
        let (tps, tps_med, _) = train_tps(p, false, a.plain_steps)?;
        Some((tps, tps_med))
    } else {
        None
    };
    let portable = if a.portable_steps > 0 {
        crate::model::fused::set_portable_only(true);
        let r = train_tps(p, true, a.portable_steps);
        crate::model::fused::set_portable_only(false);
        let r = r?;
        Some((r.0, r.1))
    } else {
        None
    };
    let gen = if !a.generate {
        serde_json::Value::Null
    } else {
        let gcfg = GptConfig {
            vocab_size: p.tokenizer.vocab_size(),
            n_positions: 256,
            n_embd: cfg.model.n_embd,
            n_layer: cfg.model.n_layer,
            n_head: cfg.model.n_head,
            layer_norm_epsilon: cfg.model.layer_norm_epsilon,
        };
        let host = HostModel::from_model(&Gpt::new(&dev, gcfg, cfg.seed));
        let c64 = gen_secs_per_token(&host, 64, true);
        let c256 = gen_secs_per_token(&host, 256, true);
        let n64 = gen_secs_per_token(&host, 64, false);
        let n256 = gen_secs_per_token(&host, 256, false);
        json!({
            "model_positions": 256,
            "cached_tokens_per_sec": {"64": 1.0 / c64, "256": 1.0 / c256},
            "uncached_tokens_per_sec": {"64": 1.0 / n64, "256": 1.0 / n256},
            "cached_ms_per_token": {"64": c64 * 1e3, "256": c256 * 1e3},
            "cached_256_over_64": c256 / c64,
        })
    };
    let main_tps = if fused_cfg {
        fused_tps
    } else {
        plain.map_or(0.0, |p| p.0)
    };
    Ok(json!({
        "config": {
            "name": cfg.name,
            "n_layer": cfg.model.n_layer,
            "n_head": cfg.model.n_head,
            "n_embd": cfg.model.n_embd,
            "block_size": cfg.model.block_size,
            "batch_size": cfg.train.batch_size,
            "vocab_size": p.tokenizer.vocab_size(),
            "n_params": gpt_config(cfg, p.tokenizer.vocab_size()).n_params(),
            "fused": fused_cfg,
            "data": cfg.data.path.as_ref().map(|d| d.display().to_string()).unwrap_or_else(|| "synthetic".into()),
        },
        "preset": a.preset.map(Preset::name),
        "cpu": cpu_info(),
        "threads": threads,
        "precision": match cfg.train.precision {
            crate::config::Precision::Fp32 => "fp32".to_string(),
            crate::config::Precision::Bf16 => {
                format!("bf16 ({})", crate::model::fused::matmul::bf16_engine())
            }
        },
        "steps": steps,
        "tokens_per_sec": main_tps,
        "train_tokens_per_sec": {
            "fused": fused_tps,
            "fused_median_step": fused_tps_median,
            "plain": plain.map(|p| p.0),
            "plain_median_step": plain.map(|p| p.1),
            "fused_over_plain": plain.map(|p| fused_tps / p.0.max(1e-9)),
            "fused_portable": portable.map(|p| p.0),
            "fused_portable_median_step": portable.map(|p| p.1),
        },
        "final_loss": fused_loss,
        "generation": gen,
        "peak_rss_mb_after_fused_training": rss_train,
        "peak_rss_mb": peak_rss_mb(),
    }))
}
