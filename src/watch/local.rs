//! The stand-in for a trainer when there is none: a thread that turns a run
//! on disk (`headsup watch`) into the events a workbench folds (the run
//! info, the history, new steps as `metrics.jsonl` or `trainer_state.json`
//! grows), or opens one checkpoint directory (`headsup tui --checkpoint`),
//! and answers attention probes, generations and per-token scoring from the
//! checkpoint's weights, loaded locally (in a run: the newest checkpoint,
//! reloaded when a newer one appears); a masked LM's (BERT) probes are
//! bidirectional, it fills `[MASK]`s instead of generating, and its records
//! are scored masked. It hands back the same `TrainerHandle` a training
//! thread does.

use super::replay::history_events;
use super::{Ending, Watched};
use crate::data::Dataset;
use crate::model::infer::HostModel;
use crate::model::sample::generate;
use crate::model::Gpt;
use crate::tokenizer::Tokenizer;
use crate::train::trainer::{bert_attention, induction_probe, stream_generation};
use crate::train::{
    induction, AttentionMap, Command, Event, FillRequest, GenerateRequest, InductionScores,
    RunInfo, ScoreRequest, TrainerHandle,
};
use dfdx::prelude::Cpu;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The state line of a run with no trainer.
pub const NO_TRAINER: &str =
    "watching from disk: no trainer process (pause, save and stop do nothing here)";

/// What pause, save and the other training keys say on a checkpoint opened
/// for inspection.
pub const INSPECTING: &str = "no trainer: inspecting a checkpoint";

/// What the stand-in serves.
#[derive(Debug, Clone)]
pub enum Source {
    /// A run directory or a transformers output_dir, followed on disk.
    Run(PathBuf),
    /// One checkpoint directory (any GPT-2 directory), opened once.
    Checkpoint(PathBuf),
}

/// A checkpoint loaded for probing.
struct Loaded {
    step: usize,
    path: PathBuf,
    model: Arc<HostModel>,
    tokenizer: Arc<Tokenizer>,
    /// A masked LM (BERT): the model itself, which probes, fills and
    /// scores (the host copy is GPT-2's inference path).
    bert: Option<Arc<Gpt<Cpu>>>,
}

impl Loaded {
    fn new(step: usize, path: &Path, model: Gpt<Cpu>, tokenizer: Tokenizer) -> Loaded {
        let host = Arc::new(HostModel::from_model(&model));
        Loaded {
            step,
            path: path.to_path_buf(),
            model: host,
            tokenizer: Arc::new(tokenizer),
            bert: model.bert.is_some().then(|| Arc::new(model)),
        }
    }
}

fn load(step: usize, path: &Path, run: &Path) -> anyhow::Result<Loaded> {
    let model = crate::model::checkpoint::load_model(&Cpu::default(), path)?;
    let tok_path = [path.join("tokenizer.json"), run.join("tokenizer.json")]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "checkpoint {}: no tokenizer.json there or in the run; save the tokenizer with the model",
                path.display()
            )
        })?;
    let tokenizer = Tokenizer::load(&tok_path)?;
    // A padded vocabulary is valid (its extra ids are never sampled); a
    // tokenizer larger than the model is not.
    crate::model::pretrained::check_vocab(path, tokenizer.id_limit(), model.cfg.vocab_size)?;
    Ok(Loaded::new(step, path, model, tokenizer))
}

/// Starts watching `dir` (checked before the thread starts); `probe` is the
/// default attention probe text (e.g. the start of the dataset), `None` to
/// let the model write its own. `poll` is how often the disk is read.
pub fn spawn(dir: &Path, probe: Option<String>, poll: Duration) -> anyhow::Result<TrainerHandle> {
    let empty = Arc::new(Dataset::from_records("(none)", Vec::new()));
    spawn_source(Source::Run(dir.to_path_buf()), probe, empty, poll)
}

/// Opens a checkpoint directory for inspection: the model and its tokenizer
/// (`tokenizer.json`, or `vocab.json` + `merges.txt`), checked together.
fn load_checkpoint(dir: &Path) -> anyhow::Result<Loaded> {
    check_checkpoint_dir(dir)?;
    let p = crate::model::pretrained::open(dir)?;
    Ok(Loaded::new(0, dir, p.model, p.tokenizer))
}

/// A checkpoint directory exists, or the one-line error saying what to give.
pub fn check_checkpoint_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        anyhow::bail!(
            "checkpoint {}: no such directory; give a directory with config.json, model.safetensors and the tokenizer",
            dir.display()
        );
    }
    Ok(())
}

/// [`spawn`] for either source. Records named by `Command::Score` are
/// indices into `dataset`. A checkpoint is loaded (and refused with a
/// one-line error) before the thread starts.
pub fn spawn_source(
    source: Source,
    probe: Option<String>,
    dataset: Arc<Dataset>,
    poll: Duration,
) -> anyhow::Result<TrainerHandle> {
    let origin = match &source {
        Source::Run(dir) => Origin::Run(Box::new(Watched::open(dir)?)),
        Source::Checkpoint(dir) => Origin::Checkpoint(load_checkpoint(dir)?),
    };
    let (ctx, crx) = mpsc::channel::<Command>();
    let (etx, erx) = mpsc::channel::<Event>();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let thread = std::thread::Builder::new()
        .name("watch".into())
        .spawn(move || run(origin, probe, dataset, poll, crx, etx, stop2))?;
    Ok(TrainerHandle {
        commands: ctx,
        events: erx,
        stop,
        thread,
    })
}

/// A source, opened.
enum Origin {
    Run(Box<Watched>),
    Checkpoint(Loaded),
}

/// The run info of an inspected checkpoint.
fn checkpoint_info(l: &Loaded) -> RunInfo {
    let c = l.model.cfg;
    RunInfo {
        name: l
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| l.path.display().to_string()),
        run_dir: l.path.clone(),
        device: "checkpoint".into(),
        max_iters: 0,
        start_step: 0,
        n_params: c.n_params(),
        n_layer: c.n_layer,
        n_head: c.n_head,
        n_embd: c.n_embd,
        block_size: c.n_positions,
        vocab_size: c.vocab_size,
        tokens_per_step: 0,
        masked_lm: l.bert.is_some(),
    }
}

/// Scores records on a worker thread (`train::score`).
fn spawn_score(
    l: &Loaded,
    dataset: &Arc<Dataset>,
    req: ScoreRequest,
    tx: Sender<Event>,
    cancel: Arc<AtomicBool>,
) {
    let model = l.model.clone();
    let bert = l.bert.clone();
    let tok = l.tokenizer.clone();
    let ds = dataset.clone();
    let step = l.step;
    std::thread::spawn(move || {
        use crate::train::masking::{MaskRule, MlmSetup, SpecialIds};
        use crate::train::score::Scorer;
        let send = |e| tx.send(e).is_ok();
        match (&bert, SpecialIds::of(&tok)) {
            // The masking of a run's defaults (the run's own config is not
            // read here), seeded by the default seed.
            (Some(m), Ok(specials)) => {
                let cfg = crate::config::Config::default();
                let s = Scorer::Masked {
                    model: m,
                    setup: MlmSetup {
                        specials,
                        rule: MaskRule::of(&cfg.train),
                        vocab: tok.id_limit().min(m.cfg.vocab_size),
                    },
                    seed: cfg.seed,
                    fused: true,
                };
                crate::train::score::serve_score(&s, &tok, &ds, step, &req, &cancel, send);
            }
            (Some(_), Err(e)) => {
                send(Event::ScoreDone {
                    id: req.id,
                    scored: 0,
                    total: req.records.len(),
                    cancelled: false,
                    note: Some(format!("cannot mask records: {e}")),
                });
            }
            (None, _) => {
                let s = Scorer::Causal(&model);
                crate::train::score::serve_score(&s, &tok, &ds, step, &req, &cancel, send);
            }
        }
    });
}

fn run_info(w: &Watched, loaded: Option<&Loaded>) -> RunInfo {
    let cfg = loaded.map(|l| l.model.cfg);
    let last = w.history().and_then(|h| h.last_step()).unwrap_or(0);
    RunInfo {
        name: w
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| w.dir.display().to_string()),
        run_dir: w.dir.clone(),
        device: "disk".into(),
        max_iters: w.max_steps().unwrap_or(last).max(last),
        start_step: 0,
        n_params: cfg.as_ref().map(|c| c.n_params()).unwrap_or(0),
        n_layer: cfg.as_ref().map(|c| c.n_layer).unwrap_or(0),
        n_head: cfg.as_ref().map(|c| c.n_head).unwrap_or(0),
        n_embd: cfg.as_ref().map(|c| c.n_embd).unwrap_or(0),
        block_size: cfg.as_ref().map(|c| c.n_positions).unwrap_or(0),
        vocab_size: cfg.as_ref().map(|c| c.vocab_size).unwrap_or(0),
        tokens_per_step: 0,
        masked_lm: loaded.is_some_and(|l| l.bert.is_some()),
    }
}

fn state_event(w: &Watched, step: usize) -> Event {
    match w.run_log().and_then(|l| l.ending) {
        Some(Ending::Finished) => Event::Finished { step },
        Some(Ending::Stopped) => Event::Stopped { step },
        _ => Event::Paused {
            step,
            reason: Some(NO_TRAINER.into()),
        },
    }
}

/// Attention of the loaded model on `text` (or on text it writes itself),
/// then its heads' scores on the induction probe.
fn probe(l: &Loaded, text: Option<&str>, tx: &Sender<Event>) {
    let block = l.model.cfg.n_positions.max(1);
    let mut ids: Vec<usize> = match text {
        Some(t) if !t.is_empty() => l
            .tokenizer
            .encode(t)
            .into_iter()
            .map(|t| t as usize)
            .collect(),
        _ => Vec::new(),
    };
    if ids.is_empty() {
        // No text given: the model's own greedy continuation of token 0.
        let s = crate::train::SampleSettings {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            max_new_tokens: block.min(48) - 1,
            seed: 0,
        };
        ids.push(0);
        generate(&l.model, &[0], &s, true, |id, _| {
            ids.push(id);
            true
        });
    }
    ids.truncate(block);
    if let Some(m) = &l.bert {
        return probe_bert(l, m, &ids, tx);
    }
    let probs = l.model.attention(&ids);
    let tokens = ids
        .iter()
        .map(|&i| l.tokenizer.decode(&[i as u32]))
        .collect();
    let _ = tx.send(Event::Attention(AttentionMap {
        step: l.step,
        tokens,
        n_layer: l.model.cfg.n_layer,
        n_head: l.model.cfg.n_head,
        probs,
        causal: true,
    }));
    if let Some(s) = induction_probe(&l.model, l.tokenizer.id_limit(), block, l.step) {
        let _ = tx.send(Event::Induction(s));
    }
}

/// A masked LM's probe: full (bidirectional) matrices, and the induction
/// probe scored with any other occurrence counting.
fn probe_bert(l: &Loaded, m: &Gpt<Cpu>, ids: &[usize], tx: &Sender<Event>) {
    let _ = tx.send(Event::Attention(AttentionMap {
        step: l.step,
        tokens: ids
            .iter()
            .map(|&i| l.tokenizer.decode(&[i as u32]))
            .collect(),
        n_layer: m.cfg.n_layer,
        n_head: m.cfg.n_head,
        probs: bert_attention(m, ids, true),
        causal: false,
    }));
    let limit = l.tokenizer.id_limit().min(m.cfg.vocab_size);
    let ind = induction::probe_tokens(limit, m.cfg.n_positions, induction::SEED);
    if !ind.is_empty() {
        let probs = bert_attention(m, &ind, true);
        let _ = tx.send(Event::Induction(InductionScores {
            step: l.step,
            half: ind.len() / 2,
            n_layer: m.cfg.n_layer,
            n_head: m.cfg.n_head,
            scores: induction::scores(&probs, &ind, false)
                .into_iter()
                .map(|v| (v * 1e4).round() / 1e4)
                .collect(),
        }));
    }
}

/// Fills a text's `[MASK]`s on a worker (a causal LM answers that it
/// generates instead).
fn spawn_fill(l: &Loaded, req: FillRequest, tx: Sender<Event>) {
    let bert = l.bert.clone();
    let tok = l.tokenizer.clone();
    let step = l.step;
    std::thread::spawn(move || {
        let r = match &bert {
            Some(m) => crate::train::masking::fill_result(m, &tok, &req, step, true),
            None => crate::train::FillResult {
                id: req.id,
                step,
                pieces: Vec::new(),
                masks: Vec::new(),
                error: Some(crate::train::masking::FillError::NotMasked.to_string()),
            },
        };
        let _ = tx.send(Event::Filled(r));
    });
}

fn spawn_generation(l: &Loaded, req: GenerateRequest, tx: Sender<Event>, cancel: Arc<AtomicBool>) {
    let model = l.model.clone();
    let tok = l.tokenizer.clone();
    std::thread::spawn(move || {
        stream_generation(&model, &tok, &req, &cancel, |e| tx.send(e).is_ok());
    });
}

fn run(
    origin: Origin,
    default_probe: Option<String>,
    dataset: Arc<Dataset>,
    poll: Duration,
    commands: mpsc::Receiver<Command>,
    tx: Sender<Event>,
    stop: Arc<AtomicBool>,
) {
    let (mut w, mut loaded) = match origin {
        Origin::Run(w) => (Some(*w), None),
        Origin::Checkpoint(l) => (None, Some(l)),
    };
    let load_newest = |loaded: &mut Option<Loaded>, w: &Watched, tx: &Sender<Event>| -> bool {
        let Some((step, path)) = w.newest_checkpoint() else {
            return false;
        };
        if loaded.as_ref().is_some_and(|l| l.path == path) {
            return false;
        }
        match load(step, &path, &w.dir) {
            Ok(l) => {
                let _ = tx.send(Event::Log(format!(
                    "loaded checkpoint step {step} for probes and the playground"
                )));
                *loaded = Some(l);
                true
            }
            Err(e) => {
                let _ = tx.send(Event::Log(format!("{e:#}")));
                false
            }
        }
    };
    let mut last_sent: Option<usize> = None;
    let send_history = |w: &Watched, last_sent: &mut Option<usize>| {
        if let Some(h) = w.history() {
            for e in history_events(h, *last_sent) {
                if let Event::Step(s) = &e {
                    *last_sent = Some(s.step);
                }
                let _ = tx.send(e);
            }
        }
    };
    let mut ending = None;
    match &w {
        Some(w) => {
            load_newest(&mut loaded, w, &tx);
            let _ = tx.send(Event::Started(run_info(w, loaded.as_ref())));
            send_history(w, &mut last_sent);
            ending = w.run_log().and_then(|l| l.ending);
            let _ = tx.send(state_event(w, last_sent.unwrap_or(0)));
        }
        None => {
            if let Some(l) = &loaded {
                let _ = tx.send(Event::Started(checkpoint_info(l)));
                let _ = tx.send(Event::Inspecting {
                    checkpoint: l.path.clone(),
                });
            }
        }
    }
    let mut probe_text = default_probe;
    if let Some(l) = &loaded {
        probe(l, probe_text.as_deref(), &tx);
    }
    let mut cancel = Arc::new(AtomicBool::new(false));
    let mut scoring = crate::train::score::ScoreSlots::default();
    let no_trainer = if w.is_some() { NO_TRAINER } else { INSPECTING };
    let mut next_poll = Instant::now() + poll;
    loop {
        if stop.load(Ordering::SeqCst) {
            cancel.store(true, Ordering::SeqCst);
            scoring.cancel_all();
            let _ = tx.send(Event::Stopped {
                step: last_sent.unwrap_or(0),
            });
            return;
        }
        match commands.recv_timeout(Duration::from_millis(100)) {
            Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => {
                stop.store(true, Ordering::SeqCst);
                continue;
            }
            Ok(Command::Probe { text }) => {
                if text.is_some() {
                    probe_text = text;
                }
                match &loaded {
                    Some(l) => probe(l, probe_text.as_deref(), &tx),
                    None => {
                        let _ = tx.send(Event::Log("no checkpoint to probe yet".into()));
                    }
                }
            }
            Ok(Command::Generate(req)) => {
                cancel.store(true, Ordering::SeqCst);
                cancel = Arc::new(AtomicBool::new(false));
                match &loaded {
                    Some(l) if l.bert.is_some() => {
                        let _ = tx.send(Event::GenerationDone {
                            id: req.id,
                            tokens: 0,
                            tokens_per_sec: 0.0,
                        });
                        let _ = tx.send(Event::Log(
                            "a masked LM (BERT) fills [MASK]s instead of generating; type a text with [MASK]".into(),
                        ));
                    }
                    Some(l) => spawn_generation(l, req, tx.clone(), cancel.clone()),
                    None => {
                        let _ = tx.send(Event::GenerationDone {
                            id: req.id,
                            tokens: 0,
                            tokens_per_sec: 0.0,
                        });
                        let _ = tx.send(Event::Log("no checkpoint to generate from yet".into()));
                    }
                }
            }
            Ok(Command::Score(req)) => {
                let flag = scoring.start(req.detail);
                match &loaded {
                    Some(l) => spawn_score(l, &dataset, req, tx.clone(), flag),
                    None => {
                        let _ = tx.send(Event::ScoreDone {
                            id: req.id,
                            scored: 0,
                            total: req.records.len(),
                            cancelled: false,
                            note: Some("no checkpoint to score with yet".into()),
                        });
                    }
                }
            }
            Ok(Command::CancelScore) => scoring.cancel_sample(),
            Ok(Command::Fill(req)) => match &loaded {
                Some(l) => spawn_fill(l, req, tx.clone()),
                None => {
                    let _ = tx.send(Event::Filled(crate::train::FillResult {
                        id: req.id,
                        step: 0,
                        pieces: Vec::new(),
                        masks: Vec::new(),
                        error: Some("no checkpoint to fill with yet".into()),
                    }));
                }
            },
            Ok(Command::Pause | Command::Resume | Command::Save | Command::Continue { .. }) => {
                let _ = tx.send(Event::Log(no_trainer.into()));
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        let Some(w) = w.as_mut() else {
            continue;
        };
        if Instant::now() >= next_poll {
            next_poll = Instant::now() + poll;
            match w.poll() {
                Ok(true) => {
                    let before = last_sent;
                    send_history(w, &mut last_sent);
                    let now = w.run_log().and_then(|l| l.ending);
                    if now != ending || (before != last_sent && now == Some(Ending::Open)) {
                        ending = now;
                        let _ = tx.send(state_event(w, last_sent.unwrap_or(0)));
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    let _ = tx.send(Event::Log(format!("reading the run: {e:#}")));
                }
            }
            if load_newest(&mut loaded, w, &tx) {
                if let Some(l) = &loaded {
                    probe(l, probe_text.as_deref(), &tx);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv_until(h: &TrainerHandle, mut pred: impl FnMut(&Event) -> bool) -> Vec<Event> {
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let e = h
                .events
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no matching event; saw {seen:?}"));
            let done = pred(&e);
            seen.push(e);
            if done {
                return seen;
            }
        }
    }

    #[test]
    fn a_bert_checkpoint_probes_both_ways_fills_masks_and_scores_records_masked() {
        // The BertForMaskedLM transformers wrote (tests/fixtures/bert_tiny).
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bert_tiny");
        let ds = Arc::new(Dataset::from_records(
            "poems",
            vec![crate::data::Record {
                title: "静夜思".into(),
                text: "床前明月光，疑是地上霜。举头望明月，低头思故乡。".into(),
            }],
        ));
        let h = spawn_source(
            Source::Checkpoint(dir),
            Some("床前明月光".into()),
            ds,
            Duration::from_millis(50),
        )
        .unwrap();
        let seen = recv_until(&h, |e| matches!(e, Event::Induction(_)));
        let Some(Event::Started(info)) = seen.iter().find(|e| matches!(e, Event::Started(_)))
        else {
            panic!("{seen:?}")
        };
        assert!(info.masked_lm);
        let Some(Event::Attention(a)) = seen.iter().find(|e| matches!(e, Event::Attention(_)))
        else {
            panic!("{seen:?}")
        };
        // Bidirectional: query 0 puts weight on later keys; rows sum to 1.
        assert!(!a.causal);
        let n = a.len();
        let row0: f32 = (1..n).map(|k| a.weight(0, 0, 0, k)).sum();
        assert!(row0 > 0.01, "{row0}");
        let s: f32 = (0..n).map(|k| a.weight(0, 0, 0, k)).sum();
        assert!((s - 1.0).abs() < 1e-4, "{s}");
        // Fill: the fixture's text, the same top-1 as headsup fill gives.
        let text = "床前明[MASK]光，疑是地上[MASK]。";
        h.commands
            .send(Command::Fill(FillRequest {
                id: 4,
                text: text.into(),
                k: 3,
            }))
            .unwrap();
        let seen = recv_until(&h, |e| matches!(e, Event::Filled(_)));
        let Some(Event::Filled(r)) = seen.last() else {
            panic!("{seen:?}")
        };
        assert_eq!(r.error, None);
        assert_eq!(r.masks.len(), 2);
        assert_eq!(
            r.masks.iter().map(|m| m.at).collect::<Vec<_>>(),
            vec![3, 10]
        );
        assert!(r.masks.iter().all(|m| m.top.len() == 3));
        let p = crate::model::pretrained::open(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bert_tiny"),
        )
        .unwrap();
        let f =
            crate::train::masking::fill_masks(&p.model, &p.tokenizer, p.id_limit, text, 3, true)
                .unwrap();
        for (m, c) in r.masks.iter().zip(&f.candidates) {
            assert_eq!(m.top[0].text, p.tokenizer.decode(&[c[0].0]));
        }
        // A text without a mask: the error, one line.
        h.commands
            .send(Command::Fill(FillRequest {
                id: 5,
                text: "床前".into(),
                k: 3,
            }))
            .unwrap();
        let seen = recv_until(&h, |e| matches!(e, Event::Filled(r) if r.id == 5));
        let Some(Event::Filled(r)) = seen.last() else {
            panic!()
        };
        assert!(
            r.error.as_deref().unwrap_or("").starts_with("no [MASK]"),
            "{r:?}"
        );
        // The record, masked and predicted.
        h.commands
            .send(Command::Score(ScoreRequest {
                id: 9,
                records: vec![0],
                detail: true,
            }))
            .unwrap();
        let seen = recv_until(&h, |e| matches!(e, Event::ScoreDone { id: 9, .. }));
        let Some(Event::RecordLoss(r)) = seen.iter().find(|e| matches!(e, Event::RecordLoss(_)))
        else {
            panic!("{seen:?}")
        };
        let chosen = r.masked.as_ref().expect("masked detail");
        assert!(!chosen.is_empty());
        assert!(chosen.iter().all(|m| m.at < r.pieces.len()));
        assert_eq!(r.tokens, chosen.len());
        assert!(r.mean.is_finite() && r.mean > 0.0);
        h.stop.store(true, Ordering::SeqCst);
    }

    #[test]
    fn the_transformers_fixture_gives_curves_attention_and_generations() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf-trainer");
        let h = spawn(
            &dir,
            Some("abcdefgh|abcdefgh".into()),
            Duration::from_millis(50),
        )
        .unwrap();
        let seen = recv_until(&h, |e| matches!(e, Event::Attention(_)));
        let steps = seen.iter().filter(|e| matches!(e, Event::Step(_))).count();
        let evals = seen.iter().filter(|e| matches!(e, Event::Eval(_))).count();
        assert_eq!((steps, evals), (12, 3));
        let Some(Event::Started(info)) = seen.iter().find(|e| matches!(e, Event::Started(_)))
        else {
            panic!("{seen:?}")
        };
        assert_eq!(
            (info.max_iters, info.n_layer, info.n_embd, info.vocab_size),
            (12, 2, 32, 15)
        );
        let Some(Event::Attention(a)) = seen.last() else {
            panic!("expected attention last: {seen:?}")
        };
        assert_eq!(a.step, 12);
        assert_eq!(a.tokens.len(), 17);
        assert_eq!((a.n_layer, a.n_head), (2, 2));
        // The induction probe follows, on the same step: 32 tokens twice
        // (half the model's 64 positions).
        let seen = recv_until(&h, |e| matches!(e, Event::Induction(_)));
        let Some(Event::Induction(s)) = seen.last() else {
            panic!("{seen:?}")
        };
        assert_eq!((s.step, s.half, s.scores.len()), (12, 32, 4));
        h.commands
            .send(Command::Generate(GenerateRequest {
                id: 7,
                prompt: "abc".into(),
                settings: crate::train::SampleSettings {
                    temperature: 0.0,
                    top_k: 0,
                    top_p: 1.0,
                    max_new_tokens: 5,
                    seed: 1,
                },
            }))
            .unwrap();
        let seen = recv_until(&h, |e| matches!(e, Event::GenerationDone { id: 7, .. }));
        let tokens: Vec<_> = seen
            .iter()
            .filter(|e| matches!(e, Event::Token { id: 7, .. }))
            .collect();
        assert_eq!(tokens.len(), 5);
        // Each token carries its step's alternatives: greedy, so the token
        // is the most likely one, with the probability it was given; the
        // alternatives are in order and the entropy is in [0, ln vocab].
        for e in tokens {
            let Event::Token {
                text,
                prob,
                alts: Some(a),
                ..
            } = e
            else {
                panic!("no alternatives: {e:?}")
            };
            assert_eq!(a.top.len(), crate::train::TokenAlts::K, "{a:?}");
            assert_eq!(&a.top[0].text, text, "{a:?}");
            assert!((a.top[0].prob - prob).abs() <= 5e-5, "{a:?} {prob}");
            assert!(a.top.windows(2).all(|w| w[0].prob >= w[1].prob), "{a:?}");
            assert!(
                a.entropy >= 0.0 && a.entropy <= (15f32).ln() + 1e-3,
                "{a:?}"
            );
        }
        h.commands.send(Command::Stop).unwrap();
        recv_until(&h, |e| matches!(e, Event::Stopped { .. }));
        h.thread.join().unwrap();
    }

    #[test]
    fn a_growing_metrics_file_streams_new_steps_and_the_end() {
        let t = tempfile::tempdir().unwrap();
        let m = t.path().join("metrics.jsonl");
        std::fs::write(t.path().join("config.toml"), "name = \"x\"\n").unwrap();
        std::fs::write(&m, "{\"event\":\"start\",\"step\":0,\"max_iters\":30}\n{\"event\":\"step\",\"step\":10,\"loss\":2.0}\n").unwrap();
        let h = spawn(t.path(), None, Duration::from_millis(20)).unwrap();
        let seen = recv_until(&h, |e| matches!(e, Event::Paused { .. }));
        assert!(seen
            .iter()
            .any(|e| matches!(e, Event::Step(s) if s.step == 10)));
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&m).unwrap();
        f.write_all(b"{\"event\":\"step\",\"step\":20,\"loss\":1.5}\n{\"event\":\"step\",\"st")
            .unwrap();
        recv_until(&h, |e| matches!(e, Event::Step(s) if s.step == 20));
        f.write_all(b"ep\":30,\"loss\":1.0}\n{\"event\":\"finished\",\"step\":30}\n")
            .unwrap();
        recv_until(&h, |e| matches!(e, Event::Step(s) if s.step == 30));
        recv_until(&h, |e| matches!(e, Event::Finished { step: 30 }));
        drop(h.commands);
        h.thread.join().unwrap();
    }
}
