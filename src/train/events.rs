//! The messages between the training thread and its consumers (the TUI, the
//! headless printer). Plain data only: numbers, strings, `Vec<f32>`; never tensors.

use std::path::PathBuf;

/// What the trainer reports. One channel, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Sent once before the first step.
    Started(RunInfo),
    /// One optimizer step (sent every `log_interval` steps, and on the last).
    Step(StepStats),
    /// Mean train and validation loss over `eval_iters` batches.
    Eval(EvalStats),
    /// Attention probabilities of every layer and head on the probe text.
    Attention(AttentionMap),
    /// One generated token of the request `id`.
    Token {
        id: u64,
        text: String,
        prob: f32,
    },
    /// Generation `id` finished.
    GenerationDone {
        id: u64,
        tokens: usize,
        tokens_per_sec: f64,
    },
    /// A checkpoint was written (completely) at `path`.
    Checkpoint {
        step: usize,
        path: PathBuf,
    },
    /// Training paused (by command, or by the non-finite guard with a reason).
    Paused {
        step: usize,
        reason: Option<String>,
    },
    Resumed {
        step: usize,
    },
    /// All `max_iters` steps done (a final checkpoint was saved).
    Finished {
        step: usize,
    },
    /// Stopped on request (a checkpoint was saved).
    Stopped {
        step: usize,
    },
    /// A fatal error; the thread has ended.
    Failed {
        step: usize,
        error: String,
    },
    /// A non-fatal message (e.g. "checkpoint saved", "skipped a torn line").
    Log(String),
}

/// What the consumer asks of the trainer.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Pause,
    Resume,
    /// Save a checkpoint now.
    Save,
    /// Recompute the attention probe now, optionally on new text.
    Probe {
        text: Option<String>,
    },
    /// Generate from the current weights; tokens come back as `Event::Token { id }`.
    Generate(GenerateRequest),
    /// Save a checkpoint and end the thread (answers with `Event::Stopped`).
    Stop,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GenerateRequest {
    pub id: u64,
    pub prompt: String,
    pub settings: SampleSettings,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleSettings {
    /// 0 means greedy.
    pub temperature: f32,
    /// 0 means no top-k cut.
    pub top_k: usize,
    /// 1.0 means no nucleus cut.
    pub top_p: f32,
    pub max_new_tokens: usize,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub name: String,
    pub run_dir: PathBuf,
    pub device: String,
    pub max_iters: usize,
    /// First step of this process (non-zero when resuming).
    pub start_step: usize,
    pub n_params: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_embd: usize,
    pub block_size: usize,
    pub vocab_size: usize,
    pub tokens_per_step: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    pub step: usize,
    pub loss: f32,
    pub lr: f64,
    pub grad_norm: f32,
    pub tokens_per_sec: f64,
    /// Seconds left at the current rate.
    pub eta_secs: f64,
    pub elapsed_secs: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalStats {
    pub step: usize,
    pub train_loss: f32,
    pub val_loss: f32,
    pub best_val_loss: f32,
}

/// `probs[layer][head]` is a row-major `n x n` matrix (query rows, key columns),
/// n = `tokens.len()`; entries above the diagonal are 0 and each row sums to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionMap {
    pub step: usize,
    /// The probe's tokens as text (raw; escape before display).
    pub tokens: Vec<String>,
    pub n_layer: usize,
    pub n_head: usize,
    pub probs: Vec<Vec<Vec<f32>>>,
}

impl AttentionMap {
    pub fn len(&self) -> usize {
        self.tokens.len()
    }
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
    /// Weight of `query` on `key` in one layer and head.
    pub fn weight(&self, layer: usize, head: usize, query: usize, key: usize) -> f32 {
        let n = self.tokens.len();
        self.probs
            .get(layer)
            .and_then(|l| l.get(head))
            .and_then(|h| h.get(query * n + key))
            .copied()
            .unwrap_or(0.0)
    }
}
