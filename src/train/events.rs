//! The messages between the training thread and its consumers (the TUI, the
//! headless printer, `metrics.jsonl`). Plain data only: numbers, strings,
//! `Vec<f32>`; never tensors. `Event` and `Command` are serde types: their
//! JSON form is the wire format a viewer in another process receives, so it
//! must round-trip (floats that may be NaN or infinite travel as strings).

pub use crate::model::sample::SampleSettings;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What the trainer reports. One channel, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// Sent once before the first step.
    Started(RunInfo),
    /// One optimizer step (sent every `log_interval` steps, and on the last).
    Step(StepStats),
    /// Mean train and validation loss over `eval_iters` batches.
    Eval(EvalStats),
    /// Attention probabilities of every layer and head on the probe text.
    Attention(AttentionMap),
    /// Every head's score on the induction probe (`train::induction`), run
    /// with each attention probe of the same step.
    Induction(InductionScores),
    /// One generated token of the request `id`, with the probability the
    /// model gave it and (since the playground's token cursor; absent in
    /// older recordings) that step's alternatives and entropy.
    Token {
        id: u64,
        text: String,
        #[serde(with = "any_f32")]
        prob: f32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alts: Option<TokenAlts>,
    },
    /// Generation `id` finished.
    GenerationDone {
        id: u64,
        tokens: usize,
        #[serde(with = "any_f64")]
        tokens_per_sec: f64,
    },
    /// A checkpoint was written (completely) at `path`.
    Checkpoint {
        step: usize,
        path: PathBuf,
    },
    /// A checkpoint of `step` could not be written (`error` says why, once).
    /// Nothing of it is left on disk, and the newest complete checkpoint
    /// (`latest`, the step `checkpoints/LATEST` names, if any) is unchanged.
    /// `last`: it was the run's final save (at the end, on stop, on a
    /// signal), so the steps after `latest` are lost when the process ends;
    /// otherwise the next save is tried at `next_try`.
    CheckpointFailed {
        step: usize,
        path: PathBuf,
        error: String,
        latest: Option<usize>,
        last: bool,
        next_try: Option<usize>,
    },
    /// The non-finite guard tripped on the step after `step`: what went
    /// non-finite, with the loss and gradient norm of that step. Nothing was
    /// updated; a `Paused` event with the reason follows.
    NonFinite {
        step: usize,
        what: NonFinite,
        #[serde(with = "any_f32")]
        loss: f32,
        #[serde(with = "any_f32")]
        grad_norm: f32,
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
    /// Per-token losses of one record of a `Command::Score` request.
    RecordLoss(RecordLoss),
    /// Score request `id` ended: `scored` of `total` records, or cut short
    /// (`cancelled`, or `note` says which bound was reached).
    ScoreDone {
        id: u64,
        scored: usize,
        total: usize,
        cancelled: bool,
        note: Option<String>,
    },
    /// A masked LM's answer to `Command::Fill`: each `[MASK]`'s candidates.
    Filled(FillResult),
    /// No trainer: the workbench inspects the checkpoint `checkpoint` (sent
    /// by the stand-in trainer of `headsup tui --checkpoint`).
    Inspecting {
        checkpoint: PathBuf,
    },
    /// The data is being prepared before the first step (reading and
    /// hashing, tokenizer training, tokenization): `done` of `total` bytes
    /// of the step `phase`, `elapsed_secs` since the step began. A consumer
    /// shows a gauge with the rate and ETA until `Started`.
    Preparing {
        phase: String,
        done: u64,
        total: u64,
        #[serde(with = "any_f64")]
        elapsed_secs: f64,
    },
}

impl Event {
    /// The event of a data-preparation progress report.
    pub fn preparing(p: &crate::data::cache::Progress) -> Event {
        Event::Preparing {
            phase: p.phase.to_string(),
            done: p.done,
            total: p.total,
            elapsed_secs: p.started.elapsed().as_secs_f64(),
        }
    }
}

/// `tokenizing 45.0/223.0 MB (20%), 12.3 MB/s, ETA 14s` for an
/// [`Event::Preparing`]'s figures; also `(fraction, rate in MB/s, ETA in s)`.
pub fn preparing_line(
    phase: &str,
    done: u64,
    total: u64,
    elapsed_secs: f64,
) -> (String, f64, f64, Option<f64>) {
    let frac = if total == 0 {
        1.0
    } else {
        (done as f64 / total as f64).clamp(0.0, 1.0)
    };
    let rate = done as f64 / elapsed_secs.max(1e-9);
    let eta = (rate > 0.0 && total >= done).then(|| (total - done) as f64 / rate);
    let line = format!(
        "{phase} {:.1}/{:.1} MB ({:.0}%), {:.1} MB/s, ETA {}",
        done as f64 / 1e6,
        total as f64 / 1e6,
        frac * 100.0,
        rate / 1e6,
        eta.map(|e| format!("{e:.0}s"))
            .unwrap_or_else(|| "?".into())
    );
    (line, frac, rate / 1e6, eta)
}

/// What `Command::Score` asks: the per-token losses of dataset records
/// (by index) under the current weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreRequest {
    pub id: u64,
    /// Dataset record indices.
    pub records: Vec<usize>,
    /// Send each token's piece and loss (the selected record); otherwise
    /// only each record's mean (a sample, for sorting).
    pub detail: bool,
}

/// The per-token losses of one record (see `train::score` for which tokens
/// are scored and with how much context).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordLoss {
    /// The request.
    pub id: u64,
    /// The dataset record.
    pub record: usize,
    /// The step of the weights that scored it.
    pub step: usize,
    /// Tokens scored (every token but the first).
    pub tokens: usize,
    /// Mean loss (nats) over the scored tokens.
    #[serde(with = "any_f32")]
    pub mean: f32,
    /// With `detail`: the record's tokens as text (raw; escape before display).
    pub pieces: Vec<String>,
    /// With `detail`: the loss of `pieces[i + 1]` given the tokens before it
    /// (non-finite losses are sent as `f32::MAX`).
    pub losses: Vec<f32>,
    /// Records of the request done so far, and in all.
    pub done: usize,
    pub total: usize,
    /// A masked LM's detail (absent otherwise and in older recordings):
    /// `pieces` are the record's first window as the masking saw it (no
    /// `losses`), `mean` the loss over the chosen positions, and here what
    /// was done at each chosen position and what the model predicted there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masked: Option<Vec<MaskedToken>>,
}

/// What the masking did to a chosen position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskKind {
    /// Replaced by `[MASK]`.
    Mask,
    /// Replaced by a random token.
    Random,
    /// Left as it was (still predicted).
    Kept,
}

/// One chosen position of a masked record and the model's prediction there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaskedToken {
    /// Index into the record's `pieces`.
    pub at: usize,
    pub kind: MaskKind,
    /// What the model saw there (`[MASK]`, the random token, or the token).
    pub input: String,
    /// The model's most likely token there and its probability.
    pub top1: String,
    #[serde(with = "any_f32")]
    pub prob: f32,
    /// The probability of the original token.
    #[serde(with = "any_f32")]
    pub target_prob: f32,
    /// The top-1 is the original token.
    pub correct: bool,
}

/// What went non-finite in a training step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NonFinite {
    /// The loss of the batch.
    Loss,
    /// The global norm of the gradients.
    GradNorm,
    /// A weight after the update (the loss and gradients were finite).
    Weights,
}

/// The text a consumer shows for a failed checkpoint: what, why, what is
/// still safe, and what happens next.
pub fn checkpoint_failed_line(
    step: usize,
    path: &std::path::Path,
    error: &str,
    latest: Option<usize>,
    last: bool,
    next_try: Option<usize>,
) -> String {
    let kept = match latest {
        Some(l) => format!("the latest complete checkpoint stays step {l}"),
        None => "there is no complete checkpoint yet".to_string(),
    };
    let then = if last {
        match latest {
            Some(l) if l < step => format!("; steps {}..{step} are lost", l + 1),
            Some(_) => String::new(),
            None => format!("; steps 1..{step} are lost"),
        }
    } else {
        match next_try {
            Some(n) => format!("; training goes on, next try at step {n}"),
            None => "; training goes on".to_string(),
        }
    };
    format!(
        "checkpoint step {step} not written ({}): {error}; {kept}{then}",
        path.display()
    )
}

impl NonFinite {
    /// What went non-finite, in words ("gradient norm").
    pub fn describe(self) -> &'static str {
        match self {
            NonFinite::Loss => "loss",
            NonFinite::GradNorm => "gradient norm",
            NonFinite::Weights => "weights after the update",
        }
    }

    /// The sentence a user reads: what, its value, at which step, and what to do.
    pub fn reason(self, step: usize, loss: f32, grad_norm: f32) -> String {
        let value = match self {
            NonFinite::Loss => format!(" ({loss})"),
            NonFinite::GradNorm => format!(" ({grad_norm})"),
            NonFinite::Weights => String::new(),
        };
        format!(
            "non-finite {}{value} at step {step}; the update was not applied and the latest checkpoint is the last good one; lower train.learning_rate and resume",
            self.describe()
        )
    }
}

/// What the consumer asks of the trainer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// A finished run goes on until step `max_iters` (past its end; the
    /// learning-rate schedule extends as `train.lr_decay_iters` says). The
    /// trainer answers with `Event::Started` (the new end) and trains on.
    Continue {
        max_iters: usize,
    },
    /// Per-token losses of dataset records on a worker: `Event::RecordLoss`
    /// per record, then `Event::ScoreDone`. A newer detail request cancels
    /// an older one; a newer sample request cancels an older sample.
    Score(ScoreRequest),
    /// Cancels the sample being scored (answered by its `ScoreDone`).
    CancelScore,
    /// A masked LM fills every `[MASK]` of a text (one forward pass,
    /// bidirectional); answered by `Event::Filled` with the same id.
    Fill(FillRequest),
}

/// What `Command::Fill` asks: the `k` best tokens for each `[MASK]` of `text`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FillRequest {
    pub id: u64,
    pub text: String,
    pub k: usize,
}

/// The answer to a [`FillRequest`]: the text's tokens (raw; escape before
/// display; without `[CLS]`/`[SEP]`), and for each `[MASK]` among them its
/// index in `pieces` and its candidates, most likely first. `error` says
/// why there is nothing (no `[MASK]`, too long, not a masked LM).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FillResult {
    pub id: u64,
    /// The step of the weights that filled it.
    pub step: usize,
    pub pieces: Vec<String>,
    pub masks: Vec<MaskFill>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One `[MASK]` of a [`FillResult`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaskFill {
    /// Index into `pieces`.
    pub at: usize,
    pub top: Vec<Alt>,
}

impl FillResult {
    /// The text with every mask replaced by its best candidate.
    pub fn filled(&self) -> String {
        let mut out = String::new();
        for (i, p) in self.pieces.iter().enumerate() {
            match self
                .masks
                .iter()
                .find(|m| m.at == i)
                .and_then(|m| m.top.first())
            {
                Some(best) => out.push_str(&best.text),
                None => out.push_str(p),
            }
        }
        out
    }
}

/// One generation step, compactly: the entropy (nats) of the distribution
/// the token was drawn from and its few most likely tokens with their
/// probabilities (rounded to 4 decimals), highest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenAlts {
    #[serde(rename = "h", with = "any_f32")]
    pub entropy: f32,
    pub top: Vec<Alt>,
}

/// A candidate token: its text (raw; escape before display) and probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alt {
    #[serde(rename = "t")]
    pub text: String,
    #[serde(rename = "p", with = "any_f32")]
    pub prob: f32,
}

impl TokenAlts {
    /// Alternatives sent per generated token.
    pub const K: usize = 5;

    /// Rounds what travels: probabilities to 4 decimals, entropy to 3.
    pub fn rounded(entropy: f32, top: impl IntoIterator<Item = (String, f32)>) -> TokenAlts {
        let round = |v: f32, scale: f32| {
            if v.is_finite() {
                (v * scale).round() / scale
            } else {
                v
            }
        };
        TokenAlts {
            entropy: round(entropy, 1e3),
            top: top
                .into_iter()
                .map(|(text, p)| Alt {
                    text,
                    prob: round(p, 1e4),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    pub id: u64,
    pub prompt: String,
    pub settings: SampleSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// A masked LM (`model.arch = "bert"`): the playground fills `[MASK]`s
    /// instead of generating (absent in older recordings: a causal LM).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub masked_lm: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    pub step: usize,
    #[serde(with = "any_f32")]
    pub loss: f32,
    #[serde(with = "any_f64")]
    pub lr: f64,
    #[serde(with = "any_f32")]
    pub grad_norm: f32,
    #[serde(with = "any_f64")]
    pub tokens_per_sec: f64,
    /// Seconds left at the current rate.
    #[serde(with = "any_f64")]
    pub eta_secs: f64,
    #[serde(with = "any_f64")]
    pub elapsed_secs: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalStats {
    pub step: usize,
    #[serde(with = "any_f32")]
    pub train_loss: f32,
    #[serde(with = "any_f32")]
    pub val_loss: f32,
    #[serde(with = "any_f32")]
    pub best_val_loss: f32,
    /// Masked-LM runs: loss and accuracy at the masked positions of the
    /// validation split (`None` for a causal LM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masked: Option<MaskedEval>,
}

/// Masked-LM evaluation: mean loss over the chosen positions and the
/// fraction whose target is the top-1 / among the top-5 predictions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MaskedEval {
    #[serde(with = "any_f32")]
    pub loss: f32,
    pub top1: f32,
    pub top5: f32,
    /// How many positions were scored.
    pub positions: usize,
}

/// `probs[layer][head]` is a row-major `n x n` matrix (query rows, key columns),
/// n = `tokens.len()`; each row sums to 1. A causal model's entries above the
/// diagonal are 0; a bidirectional one's (`causal: false`, a BERT encoder)
/// are not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttentionMap {
    pub step: usize,
    /// The probe's tokens as text (raw; escape before display).
    pub tokens: Vec<String>,
    pub n_layer: usize,
    pub n_head: usize,
    pub probs: Vec<Vec<Vec<f32>>>,
    /// Queries see only earlier keys (absent in older recordings: causal).
    #[serde(default = "causal_default", skip_serializing_if = "is_true")]
    pub causal: bool,
}

fn causal_default() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// Each head's induction score on the induction probe: `half` random
/// tokens repeated twice; `scores[layer * n_head + head]`, NaN where nothing
/// could be measured, rounded to 4 decimals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InductionScores {
    pub step: usize,
    pub half: usize,
    pub n_layer: usize,
    pub n_head: usize,
    #[serde(with = "any_f32_vec")]
    pub scores: Vec<f32>,
}

impl InductionScores {
    /// The score of one head, NaN when absent.
    pub fn get(&self, layer: usize, head: usize) -> f32 {
        if head >= self.n_head {
            return f32::NAN;
        }
        self.scores
            .get(layer * self.n_head + head)
            .copied()
            .unwrap_or(f32::NAN)
    }
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

/// Serde for floats that may be NaN or infinite. JSON has no such numbers
/// (serde_json writes `null` and cannot read it back), so they travel as
/// the strings `"NaN"`, `"inf"` and `"-inf"`; finite values as numbers.
macro_rules! any_float {
    ($name:ident, $t:ty, $ser:ident) => {
        pub(crate) mod $name {
            use serde::{Deserialize, Deserializer, Serializer};

            pub fn serialize<S: Serializer>(v: &$t, s: S) -> Result<S::Ok, S::Error> {
                if v.is_finite() {
                    s.$ser(*v)
                } else if v.is_nan() {
                    s.serialize_str("NaN")
                } else if *v > 0.0 {
                    s.serialize_str("inf")
                } else {
                    s.serialize_str("-inf")
                }
            }

            #[derive(Deserialize)]
            #[serde(untagged)]
            enum Repr {
                Number($t),
                Text(String),
            }

            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                match Repr::deserialize(d)? {
                    Repr::Number(v) => Ok(v),
                    Repr::Text(t) => match t.as_str() {
                        "NaN" => Ok(<$t>::NAN),
                        "inf" => Ok(<$t>::INFINITY),
                        "-inf" => Ok(<$t>::NEG_INFINITY),
                        _ => Err(serde::de::Error::custom(format!(
                            "expected a number, \"NaN\", \"inf\" or \"-inf\", found \"{t}\""
                        ))),
                    },
                }
            }
        }
    };
}
any_float!(any_f32, f32, serialize_f32);

/// Serde for a list of floats that may be NaN or infinite (each as `any_f32`).
pub(crate) mod any_f32_vec {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Item(#[serde(with = "super::any_f32")] f32);

    pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|&x| Item(x)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        Ok(Vec::<Item>::deserialize(d)?
            .into_iter()
            .map(|i| i.0)
            .collect())
    }
}
any_float!(any_f64, f64, serialize_f64);

#[cfg(test)]
mod tests {
    use super::*;

    /// One of every event and command, with the awkward values: NaN and
    /// infinities, control characters and non-ASCII text, empty collections.
    fn samples() -> (Vec<Event>, Vec<Command>) {
        let settings = SampleSettings {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            max_new_tokens: 200,
            seed: u64::MAX,
        };
        let events = vec![
            Event::Started(RunInfo {
                name: "copy \u{1b}[2J é".into(),
                run_dir: "/tmp/runs/copy-1".into(),
                device: "cpu".into(),
                max_iters: 60,
                start_step: 20,
                n_params: 105_152,
                n_layer: 2,
                n_head: 4,
                n_embd: 64,
                block_size: 64,
                vocab_size: 15,
                tokens_per_step: 1024,
                masked_lm: true,
            }),
            Event::Step(StepStats {
                step: 10,
                loss: 2.654_255_6,
                lr: 5.882_352_941_176_47e-4,
                grad_norm: f32::INFINITY,
                tokens_per_sec: 58_396.957_550_447_456,
                eta_secs: f64::NAN,
                elapsed_secs: 0.218_161_588,
            }),
            Event::Eval(EvalStats {
                step: 0,
                train_loss: f32::NEG_INFINITY,
                val_loss: 2.729_154,
                best_val_loss: f32::MIN_POSITIVE,
                masked: None,
            }),
            Event::Attention(AttentionMap {
                step: 25,
                tokens: vec!["a".into(), "\n".into(), "中".into()],
                n_layer: 1,
                n_head: 1,
                probs: vec![vec![vec![1.0, 0.0, 0.0, 0.5, 0.5, 0.0, 0.2, 0.3, 0.5]]],
                causal: true,
            }),
            Event::Attention(AttentionMap {
                step: 3,
                tokens: vec!["[CLS]".into(), "月".into()],
                n_layer: 1,
                n_head: 1,
                probs: vec![vec![vec![0.25, 0.75, 0.5, 0.5]]],
                causal: false,
            }),
            Event::Filled(FillResult {
                id: 7,
                step: 250,
                pieces: vec!["明".into(), "[MASK]".into(), "光".into()],
                masks: vec![MaskFill {
                    at: 1,
                    top: vec![
                        Alt {
                            text: "月".into(),
                            prob: 0.5,
                        },
                        Alt {
                            text: "\u{1b}[2J".into(),
                            prob: f32::NAN,
                        },
                    ],
                }],
                error: None,
            }),
            Event::Filled(FillResult {
                id: 8,
                step: 0,
                pieces: vec![],
                masks: vec![],
                error: Some("no [MASK] in the text".into()),
            }),
            Event::RecordLoss(RecordLoss {
                id: 2,
                record: 5,
                step: 9,
                tokens: 1,
                mean: 2.5,
                pieces: vec!["a".into(), "b".into()],
                losses: vec![],
                done: 1,
                total: 1,
                masked: Some(vec![MaskedToken {
                    at: 1,
                    kind: MaskKind::Random,
                    input: "z".into(),
                    top1: "b".into(),
                    prob: 0.4,
                    target_prob: 0.4,
                    correct: true,
                }]),
            }),
            Event::Attention(AttentionMap {
                step: 0,
                tokens: vec![],
                n_layer: 0,
                n_head: 0,
                probs: vec![],
                causal: true,
            }),
            Event::Induction(InductionScores {
                step: 25,
                half: 32,
                n_layer: 1,
                n_head: 3,
                scores: vec![0.5, f32::NAN, 1.0],
            }),
            Event::Token {
                id: 3,
                text: "\u{202e}x\r".into(),
                prob: 0.125,
                alts: None,
            },
            Event::Token {
                id: 4,
                text: "b".into(),
                prob: 0.5,
                alts: Some(TokenAlts::rounded(
                    f32::NAN,
                    [("b".to_string(), 0.5), ("\u{1b}[2J".to_string(), 0.123_456)],
                )),
            },
            Event::GenerationDone {
                id: 3,
                tokens: 0,
                tokens_per_sec: 0.0,
            },
            Event::Checkpoint {
                step: 20,
                path: "/tmp/runs/copy-1/checkpoints/step-0000020".into(),
            },
            Event::CheckpointFailed {
                step: 300,
                path: "/tmp/runs/copy-1/checkpoints/step-0000300".into(),
                error: "needs 1.3 MB, 412.0 kB free on /tmp/runs/copy-1".into(),
                latest: Some(200),
                last: false,
                next_try: Some(400),
            },
            Event::CheckpointFailed {
                step: 7,
                path: "ck/step-0000007".into(),
                error: String::new(),
                latest: None,
                last: true,
                next_try: None,
            },
            Event::NonFinite {
                step: 62,
                what: NonFinite::Loss,
                loss: f32::NAN,
                grad_norm: f32::NAN,
            },
            Event::NonFinite {
                step: 5,
                what: NonFinite::Weights,
                loss: 1.0,
                grad_norm: 2.0,
            },
            Event::Paused {
                step: 61,
                reason: Some("non-finite loss (NaN) at step 62".into()),
            },
            Event::Paused {
                step: 61,
                reason: None,
            },
            Event::Resumed { step: 61 },
            Event::Finished { step: 60 },
            Event::Stopped { step: 105 },
            Event::Failed {
                step: 0,
                error: "data x: too short".into(),
            },
            Event::Log("checkpoint failed: \"quoted\"".into()),
        ];
        let commands = vec![
            Command::Pause,
            Command::Resume,
            Command::Save,
            Command::Probe { text: None },
            Command::Probe {
                text: Some("abc|".into()),
            },
            Command::Generate(GenerateRequest {
                id: 9,
                prompt: "qwertyui|".into(),
                settings,
            }),
            Command::Stop,
            Command::Continue { max_iters: 2000 },
            Command::Fill(FillRequest {
                id: 3,
                text: "床前明[MASK]光".into(),
                k: 5,
            }),
        ];
        (events, commands)
    }

    /// Equal, with NaN equal to NaN (compared through the debug form, which
    /// prints every field).
    fn same<T: std::fmt::Debug>(a: &T, b: &T) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    #[test]
    fn every_event_and_command_round_trips_through_json() {
        let (events, commands) = samples();
        for e in &events {
            let text = serde_json::to_string(e).unwrap();
            assert!(!text.contains('\n'), "one line per event: {text}");
            let back: Event = serde_json::from_str(&text).unwrap();
            assert!(same(e, &back), "{e:?}\n -> {text}\n -> {back:?}");
        }
        for c in &commands {
            let text = serde_json::to_string(c).unwrap();
            let back: Command = serde_json::from_str(&text).unwrap();
            assert_eq!(c, &back, "{text}");
        }
    }

    #[test]
    fn a_token_carries_its_alternatives_compactly_and_old_tokens_still_read() {
        let e = Event::Token {
            id: 2,
            text: "a".into(),
            prob: 0.612_345,
            alts: Some(TokenAlts::rounded(
                1.234_567,
                [("a".to_string(), 0.612_345), ("b".to_string(), 0.2)],
            )),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"Token":{"id":2,"text":"a","prob":0.612345,"alts":{"h":1.235,"top":[{"t":"a","p":0.6123},{"t":"b","p":0.2}]}}}"#
        );
        // A recording from before the alternatives: no `alts`.
        let old = r#"{"Token":{"id":2,"text":"a","prob":0.5}}"#;
        let back: Event = serde_json::from_str(old).unwrap();
        assert_eq!(
            back,
            Event::Token {
                id: 2,
                text: "a".into(),
                prob: 0.5,
                alts: None
            }
        );
        assert_eq!(serde_json::to_string(&back).unwrap(), old);
    }

    #[test]
    fn older_recordings_read_as_a_causal_lm() {
        // Before the masked LM: no `causal` on a map, no `masked_lm` in the
        // run info, no `masked` on a record's losses.
        let old =
            r#"{"Attention":{"step":1,"tokens":["a"],"n_layer":1,"n_head":1,"probs":[[[1.0]]]}}"#;
        let Event::Attention(m) = serde_json::from_str::<Event>(old).unwrap() else {
            panic!()
        };
        assert!(m.causal);
        // A causal map is written as before (no new key).
        assert_eq!(serde_json::to_string(&Event::Attention(m)).unwrap(), old);
        let (events, _) = samples();
        let Event::Started(mut info) = events[0].clone() else {
            panic!()
        };
        info.masked_lm = false;
        let text = serde_json::to_string(&info).unwrap();
        assert!(!text.contains("masked_lm"), "{text}");
        let back: RunInfo = serde_json::from_str(&text).unwrap();
        assert!(!back.masked_lm);
        let old = r#"{"RecordLoss":{"id":1,"record":0,"step":0,"tokens":1,"mean":1.0,"pieces":[],"losses":[],"done":1,"total":1}}"#;
        let Event::RecordLoss(r) = serde_json::from_str::<Event>(old).unwrap() else {
            panic!()
        };
        assert_eq!(r.masked, None);
    }

    #[test]
    fn a_fill_result_puts_each_best_candidate_in_its_mask() {
        let r = FillResult {
            id: 1,
            step: 0,
            pieces: vec!["明".into(), "[MASK]".into(), "光".into(), "[MASK]".into()],
            masks: vec![
                MaskFill {
                    at: 1,
                    top: vec![Alt {
                        text: "月".into(),
                        prob: 0.5,
                    }],
                },
                MaskFill {
                    at: 3,
                    top: vec![Alt {
                        text: "。".into(),
                        prob: 0.9,
                    }],
                },
            ],
            error: None,
        };
        assert_eq!(r.filled(), "明月光。");
    }

    #[test]
    fn a_failed_checkpoint_says_what_is_kept_and_what_is_lost() {
        let p = std::path::Path::new("run/checkpoints/step-0000600");
        assert_eq!(
            checkpoint_failed_line(600, p, "disk full", Some(200), true, None),
            "checkpoint step 600 not written (run/checkpoints/step-0000600): disk full; the latest complete checkpoint stays step 200; steps 201..600 are lost"
        );
        assert_eq!(
            checkpoint_failed_line(300, p, "disk full", None, false, Some(400)),
            "checkpoint step 300 not written (run/checkpoints/step-0000600): disk full; there is no complete checkpoint yet; training goes on, next try at step 400"
        );
    }

    #[test]
    fn non_finite_floats_travel_as_strings() {
        let e = Event::NonFinite {
            step: 62,
            what: NonFinite::GradNorm,
            loss: f32::NEG_INFINITY,
            grad_norm: f32::NAN,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"NonFinite":{"step":62,"what":"grad_norm","loss":"-inf","grad_norm":"NaN"}}"#
        );
        let bad = r#"{"NonFinite":{"step":62,"what":"loss","loss":"lots","grad_norm":1}}"#;
        let err = serde_json::from_str::<Event>(bad).unwrap_err().to_string();
        assert!(
            err.contains("did not match any variant") || err.contains("lots"),
            "{err}"
        );
    }

    #[test]
    fn the_non_finite_reason_names_what_its_value_and_the_step() {
        assert_eq!(
            NonFinite::Loss.reason(62, f32::NAN, 1.0),
            "non-finite loss (NaN) at step 62; the update was not applied and the latest checkpoint is the last good one; lower train.learning_rate and resume"
        );
        assert!(NonFinite::GradNorm
            .reason(3, 1.0, f32::INFINITY)
            .starts_with("non-finite gradient norm (inf) at step 3;"));
        assert!(NonFinite::Weights
            .reason(5, 1.0, 2.0)
            .starts_with("non-finite weights after the update at step 5;"));
    }
}
