//! Work the UI asks for while training goes on: attention probes,
//! generations and per-token scoring run on host snapshots of the weights on
//! their own threads, sending their results through the event bus.

use super::super::{AttentionMap, Event, GenerateRequest, ScoreRequest};
use super::Trainer;
use crate::model::infer::HostModel;
use crate::model::sample::generate_within;
use crate::model::Kernels;
use crate::tokenizer::{StreamDecoder, Tokenizer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

impl<D: Kernels> Trainer<D> {
    fn snapshot(&self) -> Arc<HostModel> {
        Arc::new(HostModel::from_model(&self.model))
    }

    /// Computes attention on the probe text on a worker thread.
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
        std::thread::spawn(move || {
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
        for c in [&self.gen_cancel, &self.detail_cancel, &self.sample_cancel] {
            c.store(true, Ordering::SeqCst);
        }
    }

    /// Scores dataset records on a snapshot on a worker thread
    /// (`train::score`); a newer request of the same kind (detail or
    /// sample) cancels the older one.
    pub(super) fn spawn_score(&mut self, req: ScoreRequest) {
        let slot = if req.detail {
            &mut self.detail_cancel
        } else {
            &mut self.sample_cancel
        };
        slot.store(true, Ordering::SeqCst);
        let cancel = Arc::new(AtomicBool::new(false));
        *slot = cancel.clone();
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

/// Streams the generation `req` asks for from `host`: a `Token` event per
/// token (ids the tokenizer cannot decode, in a padded vocabulary, are never
/// sampled), then `GenerationDone` with the rate. Ends early when `cancel`
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
    generate_within(
        host,
        tok.id_limit(),
        &prompt,
        &req.settings,
        true,
        |id, p| {
            if cancel.load(Ordering::SeqCst) {
                return false;
            }
            n += 1;
            let text = dec.push(tok, id as u32);
            send(Event::Token {
                id: req.id,
                text,
                prob: p,
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
