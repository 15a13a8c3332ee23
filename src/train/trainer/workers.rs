//! Work the UI asks for while training goes on: attention probes (with the
//! induction probe, `train::induction`), generations and per-token scoring
//! run on host snapshots of the weights on their own threads, sending their
//! results through the event bus.

use super::super::score::Scorer;
use super::super::{
    induction, AttentionMap, Event, FillRequest, GenerateRequest, InductionScores, ScoreRequest,
    TokenAlts,
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
                causal: true,
            }));
            if let Some(s) = induction_probe(&host, tok.id_limit(), cap, step) {
                tx.send(Event::Induction(s));
            }
        });
    }

    /// A BERT model's attention on the probe, full (bidirectional) `n x n`
    /// matrices, and its heads' scores on the induction probe (any other
    /// occurrence counts, `induction::bidirectional_targets`), computed here:
    /// short sequences through the encoder.
    fn probe_bert(&self) {
        let tokens: Vec<usize> = self.probe.iter().map(|&t| t as usize).collect();
        let texts = tokens
            .iter()
            .map(|&i| self.tokenizer.decode(&[i as u32]))
            .collect();
        self.events.send(Event::Attention(AttentionMap {
            step: self.step,
            tokens: texts,
            n_layer: self.model.cfg.n_layer,
            n_head: self.model.cfg.n_head,
            probs: bert_attention(&self.model, &tokens, self.fused),
            causal: false,
        }));
        let len = self.probe_cap().min(self.model.cfg.n_positions);
        let limit = self.tokenizer.id_limit().min(self.model.cfg.vocab_size);
        let ind = induction::probe_tokens(limit, len, induction::SEED);
        if !ind.is_empty() {
            let probs = bert_attention(&self.model, &ind, self.fused);
            self.events.send(Event::Induction(InductionScores {
                step: self.step,
                half: ind.len() / 2,
                n_layer: self.model.cfg.n_layer,
                n_head: self.model.cfg.n_head,
                scores: induction::scores(&probs, &ind, false)
                    .into_iter()
                    .map(|v| (v * 1e4).round() / 1e4)
                    .collect(),
            }));
        }
    }

    /// Fills the `[MASK]`s of a text (a masked LM; a causal one says it
    /// generates instead) on a CPU copy of the weights on a worker thread.
    pub(super) fn spawn_fill(&mut self, req: FillRequest) {
        let model = Arc::new(self.model.to_cpu());
        let tok = self.tokenizer.clone();
        let tx = self.events.clone();
        let (step, fused) = (self.step, self.fused);
        std::thread::spawn(move || {
            let r = crate::train::masking::fill_result(&model, &tok, &req, step, fused);
            tx.send(Event::Filled(r));
        });
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
        let tok = self.tokenizer.clone();
        let ds = self.dataset.clone();
        let tx = self.events.clone();
        let step = self.step;
        if let Some(setup) = self.mlm.filter(|_| self.model.bert.is_some()) {
            // A masked LM: records masked and scored at the chosen positions.
            let model = self.model.to_cpu();
            let (seed, fused) = (self.cfg.seed, self.fused);
            std::thread::spawn(move || {
                let s = Scorer::Masked {
                    model: &model,
                    setup,
                    seed,
                    fused,
                };
                crate::train::score::serve_score(&s, &tok, &ds, step, &req, &cancel, |e| {
                    tx.send(e)
                });
            });
            return;
        }
        let host = self.snapshot();
        std::thread::spawn(move || {
            let s = Scorer::Causal(&host);
            crate::train::score::serve_score(&s, &tok, &ds, step, &req, &cancel, |e| tx.send(e));
        });
    }

    /// Streams a generation from a snapshot on a worker thread; a newer
    /// request cancels an older one. A masked LM does not generate: it says so.
    pub(super) fn spawn_generation(&mut self, req: GenerateRequest) {
        if self.model.bert.is_some() {
            self.events.send(Event::Log(
                "this is a masked-LM (BERT) run: it fills [MASK]s instead of generating; type a text with [MASK] in the playground".into(),
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

/// A masked LM's attention on `tokens`: per layer and head the full
/// (bidirectional) `n x n` matrix. Shared with `headsup watch`'s stand-in.
pub fn bert_attention<D: Kernels>(
    model: &crate::model::Gpt<D>,
    tokens: &[usize],
    fused: bool,
) -> Vec<Vec<Vec<f32>>> {
    let n = tokens.len();
    if n == 0 {
        return Vec::new();
    }
    let out = model.forward_inference(tokens, 1, n, true, fused);
    let h = model.cfg.n_head;
    out.attention
        .iter()
        .map(|layer| {
            layer
                .as_vec()
                .chunks(n * n)
                .take(h)
                .map(|m| m.to_vec())
                .collect()
        })
        .collect()
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
        scores: induction::scores(&probs, &tokens, true)
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
