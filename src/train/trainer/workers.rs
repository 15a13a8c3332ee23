//! Work the UI asks for while training goes on: attention probes (with the
//! induction probe, `train::induction`), generations and per-token scoring
//! run on host snapshots of the weights on their own threads, sending their
//! results through the event bus.

use super::super::{
    induction, AttentionMap, Event, GenerateRequest, InductionScores, ScoreRequest, TokenAlts,
};
use super::Trainer;
use crate::model::infer::HostModel;
use crate::model::sample::{generate_observed, top_alternatives};
use crate::model::Kernels;
use crate::tokenizer::{StreamDecoder, Tokenizer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Marks a probe in flight until the worker that holds it ends (or
/// unwinds).
struct BusyGuard(Arc<AtomicBool>);

impl BusyGuard {
    fn new(flag: Arc<AtomicBool>) -> Self {
        flag.store(true, Ordering::SeqCst);
        BusyGuard(flag)
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl<D: Kernels> Trainer<D> {
    fn snapshot(&self) -> Arc<HostModel> {
        Arc::new(HostModel::from_model(&self.model))
    }

    /// Computes attention on the probe text on a worker thread, then the
    /// heads' scores on the induction probe.
    pub(super) fn spawn_probe(&self) {
        if self.probe.is_empty() {
            return;
        }
        if self.model.bert.is_some() {
            return self.probe_bert();
        }
        let host = self.snapshot();
        let tokens: Vec<usize> = self.probe.iter().map(|&t| t as usize).collect();
        let tok = self.tokenizer.clone();
        let tx = self.events.clone();
        let step = self.step;
        let cap = self.probe_cap();
        let busy = BusyGuard::new(self.probe_busy.clone());
        std::thread::spawn(move || {
            let _busy = busy;
            let probs = host.attention(&tokens);
            let ids: Vec<u32> = tokens.iter().map(|&t| t as u32).collect();
            let texts = ids.iter().map(|&i| tok.decode(&[i])).collect();
            tx.send(Event::Attention(AttentionMap {
                step,
                tokens: texts,
                n_layer: host.cfg.n_layer,
                n_head: host.cfg.n_head,
                probs,
            }));
            if let Some(s) = induction_probe(&host, tok.id_limit(), cap, step) {
                tx.send(Event::Induction(s));
            }
        });
    }

    /// A BERT model's attention on the probe, full (bidirectional) `n x n`
    /// matrices, computed here: one short sequence through the encoder.
    fn probe_bert(&self) {
        let tokens: Vec<usize> = self.probe.iter().map(|&t| t as usize).collect();
        let n = tokens.len();
        let out = self
            .model
            .forward_inference(&tokens, 1, n, true, self.fused);
        let h = self.model.cfg.n_head;
        let probs = out
            .attention
            .iter()
            .map(|layer| {
                layer
                    .as_vec()
                    .chunks(n * n)
                    .take(h)
                    .map(|m| m.to_vec())
                    .collect()
            })
            .collect();
        let texts = tokens
            .iter()
            .map(|&i| self.tokenizer.decode(&[i as u32]))
            .collect();
        self.events.send(Event::Attention(AttentionMap {
            step: self.step,
            tokens: texts,
            n_layer: self.model.cfg.n_layer,
            n_head: h,
            probs,
        }));
    }

    /// Cancels the generation and scoring workers (the loop is ending).
    pub(super) fn cancel_workers(&self) {
        self.gen_cancel.store(true, Ordering::SeqCst);
        self.scoring.cancel_all();
    }

    /// Scores dataset records on a snapshot on a worker thread
    /// (`train::score`); a newer request of the same kind (detail or
    /// sample) cancels the older one.
    pub(super) fn spawn_score(&mut self, req: ScoreRequest) {
        let cancel = self.scoring.start(req.detail);
        let host = self.snapshot();
        let tok = self.tokenizer.clone();
        let ds = self.dataset.clone();
        let tx = self.events.clone();
        let step = self.step;
        std::thread::spawn(move || {
            crate::train::score::serve_score(&host, &tok, &ds, step, &req, &cancel, |e| tx.send(e));
        });
    }

    /// Streams a generation from a snapshot on a worker thread; a newer
    /// request cancels an older one. A masked LM does not generate: it says so.
    pub(super) fn spawn_generation(&mut self, req: GenerateRequest) {
        if self.model.bert.is_some() {
            self.events.send(Event::Log(
                "this is a masked-LM (BERT) run: it fills [MASK]s instead of generating; try `headsup fill --checkpoint DIR --text \"...[MASK]...\"`".into(),
            ));
            return;
        }
        self.gen_cancel.store(true, Ordering::SeqCst);
        let cancel = Arc::new(AtomicBool::new(false));
        self.gen_cancel = cancel.clone();
        let host = self.snapshot();
        let tok = self.tokenizer.clone();
        let tx = self.events.clone();
        std::thread::spawn(move || {
            stream_generation(&host, &tok, &req, &cancel, |e| tx.send(e));
        });
    }
}

/// Runs the induction probe (`train::induction::probe_tokens`, at most
/// `max_len` tokens) through `host` and scores every head on it; None when
/// the model is too small for a repeat. Shared with `headsup watch`.
pub fn induction_probe(
    host: &HostModel,
    id_limit: usize,
    max_len: usize,
    step: usize,
) -> Option<InductionScores> {
    let len = max_len.min(host.cfg.n_positions);
    let tokens = induction::probe_tokens(id_limit.min(host.cfg.vocab_size), len, induction::SEED);
    if tokens.is_empty() {
        return None;
    }
    let probs = host.attention(&tokens);
    let round = |v: f32| (v * 1e4).round() / 1e4;
    Some(InductionScores {
        step,
        half: tokens.len() / 2,
        n_layer: host.cfg.n_layer,
        n_head: host.cfg.n_head,
        scores: induction::scores(&probs, &tokens)
            .into_iter()
            .map(round)
            .collect(),
    })
}

/// Streams the generation `req` asks for from `host`: a `Token` event per
/// token (ids the tokenizer cannot decode, in a padded vocabulary, are never
/// sampled) with that step's `TokenAlts::K` most likely tokens and its
/// entropy, then `GenerationDone` with the rate. Ends early when `cancel`
/// is set or `send` returns false (nobody listens). Shared by the trainer's
/// workers and `headsup watch`'s stand-in trainer.
pub fn stream_generation(
    host: &HostModel,
    tok: &Tokenizer,
    req: &GenerateRequest,
    cancel: &AtomicBool,
    mut send: impl FnMut(Event) -> bool,
) {
    let prompt: Vec<usize> = tok
        .encode(&req.prompt)
        .into_iter()
        .map(|t| t as usize)
        .collect();
    let mut dec = StreamDecoder::new();
    let start = Instant::now();
    let mut n = 0;
    generate_observed(
        host,
        tok.id_limit(),
        &prompt,
        &req.settings,
        true,
        |id, p, logits| {
            if cancel.load(Ordering::SeqCst) {
                return false;
            }
            n += 1;
            let text = dec.push(tok, id as u32);
            let (top, entropy) = top_alternatives(logits, req.settings.temperature, TokenAlts::K);
            let top = top.into_iter().map(|(i, q)| (tok.decode(&[i as u32]), q));
            send(Event::Token {
                id: req.id,
                text,
                prob: p,
                alts: Some(TokenAlts::rounded(entropy, top)),
            })
        },
    );
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    send(Event::GenerationDone {
        id: req.id,
        tokens: n,
        tokens_per_sec: n as f64 / secs,
    });
}
