//! Device dispatch: builds the trainer on the configured device (CPU, or
//! CUDA in a build with the `cuda` feature) inside a rayon pool of
//! `train.threads`, wires `metrics.jsonl` to its events, and runs it.

use super::metrics::MetricsSink;
use super::sink::EventBus;
use super::trainer::{Trainer, TrainerOptions};
use super::{Command, Event, Prepared};
use crate::model::checkpoint::load_model;
use crate::model::fused::matmul::thread_pool;
use crate::model::{Gpt, Kernels};
use dfdx::prelude::*;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Receiver;
use std::sync::Arc;

/// Runs the trainer on the configured device, on the calling thread.
pub(crate) fn run_thread(
    p: Prepared,
    events: EventBus,
    commands: Receiver<Command>,
    stop: Arc<AtomicBool>,
) {
    let threads = p.config.train.threads;
    let pool = match thread_pool(threads, p.config.train.precision) {
        Ok(p) => p,
        Err(e) => return fail(&events, format!("cannot start {threads} threads: {e}")),
    };
    pool.install(|| {
        let device = p.config.device.clone();
        if device == "cpu" {
            let dev = Cpu::seed_from_u64(p.config.seed);
            // The precision shows with the device (run line, status bar).
            let name = match p.config.train.precision {
                crate::config::Precision::Fp32 => "cpu",
                crate::config::Precision::Bf16 => "cpu bf16",
            };
            run_on(&dev, &p, name.into(), events, commands, stop);
        } else {
            run_cuda(&p, &device, events, commands, stop)
        }
    });
}

/// Builds the trainer on `dev` and runs it, with `metrics.jsonl` recording
/// its events (opened after a resume has trimmed the file).
fn run_on<D: Kernels>(
    dev: &D,
    p: &Prepared,
    device_name: String,
    events: EventBus,
    commands: Receiver<Command>,
    stop: Arc<AtomicBool>,
) {
    let opts = TrainerOptions::from_config(&p.config, device_name);
    match Trainer::new(dev, p, events.clone(), opts) {
        Ok(t) => {
            events.add_sink(Box::new(MetricsSink::open(&p.run_dir)));
            t.run(commands, stop)
        }
        Err(e) => fail(&events, format!("{e:#}")),
    }
}

fn fail(events: &EventBus, error: String) {
    events.send(Event::Failed { step: 0, error });
}

#[cfg(feature = "cuda")]
fn run_cuda(
    p: &Prepared,
    device: &str,
    events: EventBus,
    commands: Receiver<Command>,
    stop: Arc<AtomicBool>,
) {
    let ordinal = super::cuda_ordinal(device).unwrap_or(0);
    match Cuda::try_build(ordinal, p.config.seed) {
        Ok(dev) => run_on(&dev, p, format!("cuda:{ordinal}"), events, commands, stop),
        Err(e) => fail(
            &events,
            format!(
                "cannot open CUDA device {ordinal}: {e:?}; check nvidia-smi, or use --device cpu"
            ),
        ),
    }
}

#[cfg(not(feature = "cuda"))]
fn run_cuda(
    _: &Prepared,
    device: &str,
    events: EventBus,
    _: Receiver<Command>,
    _: Arc<AtomicBool>,
) {
    fail(
        &events,
        format!("device `{device}` needs a build with CUDA: cargo build --release --features cuda"),
    );
}

/// Loads a checkpoint's model on the CPU (for `generate` and `eval`).
pub fn load_cpu_model(dir: &Path) -> anyhow::Result<Gpt<Cpu>> {
    Ok(load_model(&Cpu::default(), dir)?)
}
