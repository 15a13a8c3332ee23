//! The trainer: owns the device's model, the optimizer and the batches, and
//! runs the loop on its own thread. It talks to the outside only through
//! `Command`s in and `Event`s out (through an [`EventBus`]). The pieces:
//! `step` (one optimizer step, evaluation), `checkpoint` (writing one),
//! `resume` (reading one back), `workers` (generation, attention probes and
//! per-token scoring on weight snapshots, on their own threads).

mod checkpoint;
use checkpoint::SaveKind;
mod resume;
mod step;
mod workers;

pub use resume::TrainerState;
pub use workers::{bert_attention, induction_probe, stream_generation};

use super::batch::Batcher;
use super::optim::AdamW;
use super::run_dir;
use super::sink::EventBus;
use super::*;
use crate::data::TokenSplit;
use crate::model::checkpoint::load_model;
use crate::model::{Gpt, GptConfig, Kernels};
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

/// How a trainer is built, beyond what the prepared experiment says.
#[derive(Debug, Clone)]
pub(crate) struct TrainerOptions {
    /// The device's name in events and metrics (`cpu`, `cuda:0`).
    pub device_name: String,
    /// The fused CPU kernels, or the plain dfdx reference (`false`); the
    /// config's `model.fused` unless a caller (the benchmark) chooses.
    pub fused: bool,
}

impl TrainerOptions {
    /// What the config asks for, on the device named `device_name`.
    pub fn from_config(cfg: &Config, device_name: impl Into<String>) -> Self {
        TrainerOptions {
            device_name: device_name.into(),
            fused: cfg.model.fused,
        }
    }
}

pub(crate) struct Trainer<D: Kernels> {
    cfg: Config,
    fused: bool,
    /// Per parameter (visit order): kept fixed by `train.freeze`.
    frozen: Vec<bool>,
    model: Gpt<D>,
    opt: AdamW,
    batcher: Batcher,
    /// Optimizer steps taken (the step the weights are at).
    step: usize,
    best_val: Option<f32>,
    split: Arc<TokenSplit>,
    tokenizer: Arc<Tokenizer>,
    run_dir: PathBuf,
    events: EventBus,
    /// The token ids attention is probed on.
    probe: Vec<u32>,
    paused: bool,
    /// Set when the run directory went away: the loop ends (a `Failed`
    /// event said why).
    gone: bool,
    /// Set when the non-finite guard tripped: the weights are not saved again.
    poisoned: bool,
    gen_cancel: Arc<AtomicBool>,
    /// Set while a probe's worker runs: a periodic probe due meanwhile is
    /// skipped, so big probes never pile up (each holds a weight snapshot
    /// and its matrices).
    probe_busy: Arc<AtomicBool>,
    /// The record being scored token by token, and the sample being scored.
    scoring: crate::train::score::ScoreSlots,
    /// The records `Command::Score` names (indices into it).
    dataset: Arc<crate::data::Dataset>,
    /// Training seconds of the earlier processes of a resumed run.
    elapsed_before: f64,
    device_name: String,
    last_lr: f64,
    /// Said once the run has started (what a resume changed).
    notes: Vec<String>,
    /// Masked-LM runs: the special ids and masking rule.
    mlm: Option<super::masking::MlmSetup>,
}

/// The model's sizes for a config and vocabulary.
pub(crate) fn gpt_config(cfg: &Config, vocab: usize) -> GptConfig {
    GptConfig {
        vocab_size: vocab,
        n_positions: cfg.model.block_size,
        n_embd: cfg.model.n_embd,
        n_layer: cfg.model.n_layer,
        n_head: cfg.model.n_head,
        layer_norm_epsilon: cfg.model.layer_norm_epsilon,
    }
}

impl<D: Kernels> Trainer<D> {
    /// Builds the trainer on `dev`: fresh, fine-tuned (`init_from`) or resumed
    /// (then `metrics.jsonl` is trimmed to the resumed step). Sends nothing.
    pub fn new(
        dev: &D,
        p: &Prepared,
        events: EventBus,
        opts: TrainerOptions,
    ) -> anyhow::Result<Self> {
        let cfg = p.config.clone();
        // A checkpoint's vocabulary may be padded past its tokenizer's: the
        // model's is the checkpoint's when one is loaded.
        let vocab = match p.resume_from.as_ref().or(cfg.train.init_from.as_ref()) {
            Some(dir) => crate::model::checkpoint::load_config(dir)?.vocab_size,
            None => p.tokenizer.vocab_size(),
        };
        let gcfg = gpt_config(&cfg, vocab);
        let bert = cfg.model.arch == crate::config::Arch::Bert;
        let mut model = if bert {
            Gpt::new_bert(dev, gcfg, cfg.seed)
        } else {
            Gpt::new(dev, gcfg, cfg.seed)
        };
        if let Some(init) = &cfg.train.init_from {
            if p.resume_from.is_none() {
                model = load_model(dev, init)?;
                // An explicit model.block_size (prepare kept it only when
                // not larger): nanoGPT's crop_block_size.
                model.crop_positions(cfg.model.block_size);
            }
        }
        // model.dropout when set; else a new model's 0 and a loaded one's
        // config.json keys (a resumed run's are what it trained with).
        if let Some(d) = cfg.model.dropout {
            model.dropout = crate::model::dropout::Dropout::all(d);
        }
        let mut opt = None;
        let mut batcher = Batcher::new(cfg.seed);
        let mut state = None;
        if let Some(ck) = &p.resume_from {
            model = load_model(dev, ck)?;
            let mut params = Vec::new();
            model.visit(|n, t| params.push((n, t.shape().iter().product())));
            let r = resume::restore(ck, &params)?;
            opt = Some(r.opt);
            batcher = r.batcher;
            let _ = run_dir::truncate_metrics_after(&p.run_dir, r.state.step);
            state = Some(r.state);
        }
        if model.arch() != cfg.model.arch {
            anyhow::bail!(
                "the checkpoint is a {:?} model but model.arch is {:?}; set model.arch to match it",
                model.arch(),
                cfg.model.arch
            );
        }
        let mlm = match cfg.train.objective {
            crate::config::Objective::Mlm => Some(super::masking::MlmSetup {
                specials: super::masking::SpecialIds::of(&p.tokenizer)
                    .map_err(|e| anyhow::anyhow!("train.objective = \"mlm\": {e}"))?,
                rule: super::masking::MaskRule::of(&cfg.train),
                vocab: p.tokenizer.id_limit().min(gcfg.vocab_size),
            }),
            crate::config::Objective::Clm => None,
        };
        if model.cfg != gcfg {
            anyhow::bail!(
                "checkpoint sizes {:?} differ from the config's {:?}; set the model keys to match the checkpoint",
                model.cfg,
                gcfg
            );
        }
        let frozen = super::accumulate::frozen(&model, &cfg.train.freeze)
            .map_err(|e| anyhow::anyhow!("config: {e}"))?;
        let opt = opt.unwrap_or_else(|| {
            let mut sizes = Vec::new();
            model.visit(|_, t| sizes.push(t.shape().iter().product()));
            AdamW::new(&sizes)
        });
        let n = probe_cap(&cfg).min(p.split.val.len());
        let probe = p.split.val.to_vec(0..n);
        run_dir::remove_stale_temps(&p.run_dir);
        Ok(Trainer {
            fused: opts.fused,
            frozen,
            cfg,
            model,
            opt,
            batcher,
            step: state.as_ref().map_or(0, |s| s.step),
            best_val: state.as_ref().and_then(|s| s.best_val_loss),
            split: p.split.clone(),
            tokenizer: p.tokenizer.clone(),
            run_dir: p.run_dir.clone(),
            events,
            probe,
            paused: false,
            gone: false,
            poisoned: false,
            gen_cancel: Arc::new(AtomicBool::new(false)),
            probe_busy: Arc::new(AtomicBool::new(false)),
            scoring: Default::default(),
            dataset: p.dataset.clone(),
            elapsed_before: state.as_ref().map_or(0.0, |s| s.elapsed_secs),
            device_name: opts.device_name,
            last_lr: state.as_ref().map_or(0.0, |s| s.lr),
            notes: p.notes.clone(),
            mlm,
        })
    }

    /// The most tokens an attention probe reads.
    fn probe_cap(&self) -> usize {
        probe_cap(&self.cfg)
    }

    fn send(&self, e: Event) {
        self.events.send(e);
    }

    /// Tokens in one optimizer step's batch.
    pub fn tokens_per_step(&self) -> usize {
        self.cfg.train.batch_size * self.cfg.model.block_size
    }

    fn elapsed(&self, started: Instant) -> f64 {
        self.elapsed_before + started.elapsed().as_secs_f64()
    }

    /// Handles one command; returns true when the loop must end (Stop).
    fn handle(&mut self, cmd: Command, started: Instant) -> bool {
        match cmd {
            Command::Pause => {
                if !self.paused {
                    self.paused = true;
                    self.send(Event::Paused {
                        step: self.step,
                        reason: None,
                    });
                }
            }
            Command::Resume => {
                if self.paused && !self.poisoned {
                    self.paused = false;
                    self.send(Event::Resumed { step: self.step });
                }
            }
            Command::Save => {
                if !self.save_and_report(started, SaveKind::Interval) {
                    self.gone = true;
                    return true;
                }
            }
            Command::Probe { text } => {
                if let Some(t) = text {
                    let ids = self.tokenizer.encode(&t);
                    let n = ids.len().min(probe_cap(&self.cfg));
                    self.probe = ids[..n].to_vec();
                }
                self.spawn_probe();
            }
            Command::Generate(req) => self.spawn_generation(req),
            Command::Fill(req) => self.spawn_fill(req),
            Command::Score(req) => self.spawn_score(req),
            Command::CancelScore => self.scoring.cancel_sample(),
            Command::Stop => return true,
            Command::Continue { .. } => self.send(Event::Log(
                "continue: the run has not finished yet; it can go on past its end once it has"
                    .into(),
            )),
        }
        false
    }

    /// Moves the run's end to `max_iters` (a finished run goes on): the
    /// config.toml of the run says so too, so a later `--resume` keeps it.
    /// The schedule follows `lr_decay_iters()` (re-stretched to the new end
    /// unless `train.lr_decay_iters` is set). Returns whether it moved.
    fn extend(&mut self, max_iters: usize) -> bool {
        if max_iters <= self.step || max_iters == self.cfg.train.max_iters {
            self.send(Event::Log(format!(
                "continue: step {max_iters} is not past step {}; give a later step",
                self.step
            )));
            return false;
        }
        let old = self.cfg.train.max_iters;
        let lr_before = self.schedule_lr();
        self.cfg.train.max_iters = max_iters;
        let path = self.run_dir.join("config.toml");
        if let Err(e) = crate::fsutil::atomic_write(&path, self.cfg.to_toml_string().as_bytes()) {
            self.cfg.train.max_iters = old;
            self.send(Event::Log(format!(
                "continue: cannot write {}: {e}; the run still ends at step {old}",
                path.display()
            )));
            return false;
        }
        self.send(Event::Started(self.run_info()));
        self.send(Event::Log(format!(
            "continuing to step {max_iters} (was {old}); learning rate at step {} {:.2e} -> {:.2e}, cosine decay to {:.2e} at step {}",
            self.step,
            lr_before,
            self.schedule_lr(),
            self.cfg.train.min_lr,
            self.cfg.lr_decay_iters()
        )));
        true
    }

    /// The schedule's learning rate at the current step.
    fn schedule_lr(&self) -> f64 {
        let t = &self.cfg.train;
        super::schedule::lr_at(
            self.step,
            t.learning_rate,
            t.min_lr,
            t.warmup_iters,
            self.cfg.lr_decay_iters(),
        )
    }

    fn log_eval(&mut self) {
        let (tr, va, masked) = self.evaluate_all();
        if va.is_finite() && self.best_val.is_none_or(|b| va < b) {
            self.best_val = Some(va);
        }
        self.send(Event::Eval(EvalStats {
            step: self.step,
            train_loss: tr,
            val_loss: va,
            best_val_loss: self.best_val.unwrap_or(va),
            masked,
        }));
    }

    fn run_info(&self) -> RunInfo {
        RunInfo {
            name: self.cfg.name.clone(),
            run_dir: self.run_dir.clone(),
            device: self.device_name.clone(),
            max_iters: self.cfg.train.max_iters,
            start_step: self.step,
            n_params: self.model.n_params(),
            n_layer: self.model.cfg.n_layer,
            n_head: self.model.cfg.n_head,
            n_embd: self.model.cfg.n_embd,
            block_size: self.model.cfg.n_positions,
            vocab_size: self.model.cfg.vocab_size,
            tokens_per_step: self.tokens_per_step(),
            masked_lm: self.model.bert.is_some(),
        }
    }

    /// The loop. Returns when done, stopped, or failed (the event says which).
    pub fn run(mut self, commands: Receiver<Command>, stop: Arc<AtomicBool>) {
        let started = Instant::now();
        let mut t = self.cfg.train.clone();
        let tokens_per_step = self.tokens_per_step();
        self.send(Event::Started(self.run_info()));
        for note in std::mem::take(&mut self.notes) {
            self.send(Event::Log(note));
        }
        if self.step == 0 && t.eval_interval > 0 && t.eval_on_start {
            self.log_eval();
        }
        if t.attention_interval > 0 {
            self.spawn_probe();
        }
        let mut window_start = Instant::now();
        let mut window_steps = 0usize;
        let mut step_secs_ema: Option<f64> = None;
        loop {
            // Commands first; while paused, wait for them.
            loop {
                let cmd = if self.paused && !stop.load(Ordering::SeqCst) {
                    match commands.recv_timeout(Duration::from_millis(100)) {
                        Ok(c) => Some(c),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => Some(Command::Stop),
                    }
                } else {
                    commands.try_recv().ok()
                };
                match cmd {
                    Some(c) => {
                        if self.handle(c, started) {
                            stop.store(true, Ordering::SeqCst);
                        }
                    }
                    None if self.paused && !stop.load(Ordering::SeqCst) => continue,
                    None => break,
                }
            }
            if self.gone {
                self.cancel_workers();
                return;
            }
            if stop.load(Ordering::SeqCst) {
                self.cancel_workers();
                if self.save_and_report(started, SaveKind::Last) {
                    self.send(Event::Stopped { step: self.step });
                }
                return;
            }
            if self.step >= t.max_iters {
                if !self.save_and_report(started, SaveKind::Last) {
                    return;
                }
                self.send(Event::Finished { step: self.step });
                if !self.serve_finished(&commands, &stop, started) {
                    return;
                }
                // Continued past the end: the new end, and the speed
                // window starts afresh.
                t = self.cfg.train.clone();
                window_start = Instant::now();
                window_steps = 0;
                continue;
            }
            let t0 = Instant::now();
            let out = self.train_step();
            if let Some(what) = out.non_finite {
                self.poisoned = true;
                self.paused = true;
                let tried = self.step + 1;
                self.send(Event::NonFinite {
                    step: tried,
                    what,
                    loss: out.loss,
                    grad_norm: out.grad_norm,
                });
                self.send(Event::Paused {
                    step: self.step,
                    reason: Some(what.reason(tried, out.loss, out.grad_norm)),
                });
                continue;
            }
            if !self.check_run_dir() {
                self.cancel_workers();
                return;
            }
            let dt = t0.elapsed().as_secs_f64();
            step_secs_ema = Some(match step_secs_ema {
                None => dt,
                Some(e) => 0.9 * e + 0.1 * dt,
            });
            window_steps += 1;
            let last = self.step == t.max_iters;
            if self.step.is_multiple_of(t.log_interval.max(1)) || last {
                let secs = window_start.elapsed().as_secs_f64().max(1e-9);
                let tps = (window_steps * tokens_per_step) as f64 / secs;
                window_start = Instant::now();
                window_steps = 0;
                let eta = step_secs_ema.unwrap_or(0.0) * (t.max_iters - self.step) as f64;
                self.send(Event::Step(StepStats {
                    step: self.step,
                    loss: out.loss,
                    lr: out.lr,
                    grad_norm: out.grad_norm,
                    tokens_per_sec: tps,
                    eta_secs: eta,
                    elapsed_secs: self.elapsed(started),
                }));
            }
            if t.eval_interval > 0 && (self.step.is_multiple_of(t.eval_interval) || last) {
                self.log_eval();
                window_start = Instant::now();
            }
            if t.attention_interval > 0
                && self.step.is_multiple_of(t.attention_interval)
                && (last || !self.probe_busy.load(Ordering::SeqCst))
            {
                self.spawn_probe();
            }
            if t.checkpoint_interval > 0 && self.step.is_multiple_of(t.checkpoint_interval) && !last
            {
                if !self.save_and_report(started, SaveKind::Interval) {
                    self.cancel_workers();
                    return;
                }
                window_start = Instant::now();
            }
        }
    }

    /// After the last step: stays for commands (generation, probes) until
    /// told to stop (false) or to continue past the end (true); saving,
    /// pausing and resuming no longer apply.
    fn serve_finished(
        &mut self,
        commands: &Receiver<Command>,
        stop: &AtomicBool,
        started: Instant,
    ) -> bool {
        self.paused = true;
        loop {
            match commands.recv_timeout(Duration::from_millis(200)) {
                Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => return false,
                Ok(Command::Save) | Ok(Command::Pause) | Ok(Command::Resume) => {}
                Ok(Command::Continue { max_iters }) => {
                    if self.extend(max_iters) {
                        self.paused = false;
                        return true;
                    }
                }
                Ok(c) => {
                    self.handle(c, started);
                }
                Err(RecvTimeoutError::Timeout) => {
                    if stop.load(Ordering::SeqCst) {
                        return false;
                    }
                }
            }
        }
    }
}

/// The most tokens an attention probe reads: the block size, cut by
/// `train.probe_len` (0: no cut).
fn probe_cap(cfg: &Config) -> usize {
    match cfg.train.probe_len {
        0 => cfg.model.block_size,
        n => n.min(cfg.model.block_size),
    }
}
