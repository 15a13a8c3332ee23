//! Shared by the kernel tests: the loss and every parameter gradient of a
//! model on a fixed batch.

use dfdx::prelude::*;
use headsup::model::{Gpt, ParamRef};

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
