//! Resuming: the trainer state saved beside the weights, and reading a
//! checkpoint's optimizer moments and batch position back, so that a resumed
//! run takes the same steps as an uninterrupted one.

use super::super::batch::{Batcher, BatcherState};
use super::super::optim::AdamW;
use crate::model::checkpoint::read_safetensors;
use std::path::Path;

/// What is saved beside the weights for an exact resume
/// (`trainer_state.json`; its presence marks a checkpoint complete).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrainerState {
    pub step: usize,
    pub batcher: BatcherState,
    pub adam_t: u64,
    pub best_val_loss: Option<f32>,
    pub elapsed_secs: f64,
    pub lr: f64,
}

/// Where a resumed run continues from.
pub(super) struct Restored {
    pub opt: AdamW,
    pub batcher: Batcher,
    pub state: TrainerState,
}

/// Reads the trainer state and the optimizer moments of checkpoint `ck` for
/// a model whose parameters are `params` (name, number of values) in order.
pub(super) fn restore(ck: &Path, params: &[(String, usize)]) -> anyhow::Result<Restored> {
    let st_path = ck.join("trainer_state.json");
    let text = std::fs::read_to_string(&st_path)
        .map_err(|e| anyhow::anyhow!("checkpoint {}: cannot read: {e}", st_path.display()))?;
    let state: TrainerState = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!("checkpoint {}: not a trainer state: {e}", st_path.display())
    })?;
    let opt_path = ck.join("optimizer.safetensors");
    let tensors = read_safetensors(&opt_path)?;
    let sizes: Vec<usize> = params.iter().map(|p| p.1).collect();
    let mut opt = AdamW::new(&sizes);
    for (i, (n, size)) in params.iter().enumerate() {
        for (slot, suffix) in [(&mut opt.m, "exp_avg"), (&mut opt.v, "exp_avg_sq")] {
            let key = format!("{n}.{suffix}");
            let (_, data) = tensors.get(&key).ok_or_else(|| {
                anyhow::anyhow!(
                    "checkpoint {}: optimizer tensor `{key}` is missing",
                    opt_path.display()
                )
            })?;
            if data.len() != *size {
                anyhow::bail!(
                    "checkpoint {}: optimizer tensor `{key}` has {} values, the model needs {size}",
                    opt_path.display(),
                    data.len(),
                );
            }
            slot[i] = data.clone();
        }
    }
    opt.t = state.adam_t;
    Ok(Restored {
        opt,
        batcher: Batcher::from_state(state.batcher),
        state,
    })
}
