//! Shared by the kernel tests: the loss and every parameter gradient of a
//! model on a fixed batch, the relative error they are compared by, and
//! thread pools to run them in.
#![allow(dead_code)]

use dfdx::prelude::*;
use headsup::model::{Gpt, GptConfig, ParamRef};

/// A 2-layer, width-64 model (seed 11) whose products on a 4 x 32 batch
/// (128 rows) are wide enough to split over threads.
pub fn split_model() -> Gpt<Cpu> {
    let cfg = GptConfig {
        vocab_size: 37,
        n_positions: 32,
        n_embd: 64,
        n_layer: 2,
        n_head: 4,
        layer_norm_epsilon: 1e-5,
    };
    Gpt::new(&Cpu::default(), cfg, 11)
}

/// Loss and gradients (in `Gpt::visit` order) on a `b x s` batch of fixed
/// token patterns, through the fused kernels or the plain path.
pub fn model_grads(model: &Gpt<Cpu>, b: usize, s: usize, fused: bool) -> (f32, Vec<Vec<f32>>) {
    let v = model.cfg.vocab_size;
    let x: Vec<usize> = (0..b * s).map(|i| (i * 5 + 1) % v).collect();
    let y: Vec<usize> = (0..b * s).map(|i| (i * 3 + 2) % v).collect();
    let loss = model.loss_train(&x, &y, b, s, model.alloc_grads(), fused);
    let l = loss.as_vec()[0];
    let grads = loss.backward();
    let mut out = Vec::new();
    model.visit(|_, p| {
        out.push(match p {
            ParamRef::One(t) => grads.get(t).as_vec(),
            ParamRef::Two(t) => grads.get(t).as_vec(),
        })
    });
    (l, out)
}

/// max|a - b| / max(max|b|, 1e-6).
pub fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let num = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    let den = b.iter().map(|y| y.abs()).fold(0.0f32, f32::max).max(1e-6);
    num / den
}

/// Asserts `a` is finite and within 1e-5 of `b` ([`rel_err`]).
pub fn close(what: &str, a: &[f32], b: &[f32]) {
    assert!(a.iter().all(|x| x.is_finite()), "{what}: non-finite");
    let e = rel_err(a, b);
    assert!(e < 1e-5, "{what}: relative error {e}");
}

/// Runs `f` in a new pool of `n` threads (whose threads run `start` first).
pub fn in_pool<R: Send>(
    n: usize,
    start: impl Fn(usize) + Send + Sync + 'static,
    f: impl FnOnce() -> R + Send,
) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .start_handler(start)
        .build()
        .expect("thread pool")
        .install(f)
}
