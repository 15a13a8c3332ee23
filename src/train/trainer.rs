//! The training loop on its own thread. It owns the device, the model and the
//! optimizer; it talks to the outside only through `Command`s in and `Event`s
//! out. Generation and attention probes run on host snapshots of the weights
//! on worker threads, so they never hold up training.

use super::batch::{Batcher, BatcherState};
use super::optim::{clip_global_norm, AdamW, AdamWConfig};
use super::run_dir::{self, MetricsWriter};
use super::schedule::lr_at;
use super::*;
use crate::data::TokenSplit;
use crate::model::checkpoint::{load_model, read_safetensors, safetensors_bytes, save_model};
use crate::model::infer::HostModel;
use crate::model::sample::generate;
use crate::model::{Gpt, GptConfig, Kernels, ParamRef};
use crate::tokenizer::StreamDecoder;
use dfdx::prelude::*;
use serde_json::json;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

/// What is saved beside the weights for an exact resume.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrainerState {
    pub step: usize,
    pub batcher: BatcherState,
    pub adam_t: u64,
    pub best_val_loss: Option<f32>,
    pub elapsed_secs: f64,
    pub lr: f64,
}

pub(crate) struct Trainer<D: Kernels> {
    pub cfg: Config,
    pub model: Gpt<D>,
    pub opt: AdamW,
    pub batcher: Batcher,
    pub step: usize,
    pub best_val: Option<f32>,
    pub split: Arc<TokenSplit>,
    pub tokenizer: Arc<Tokenizer>,
    pub run_dir: PathBuf,
    pub events: Sender<Event>,
    pub metrics: MetricsWriter,
    pub probe: Vec<u32>,
    pub paused: bool,
    /// Set when the non-finite guard tripped: the weights are not saved again.
    pub poisoned: bool,
    pub gen_cancel: Arc<AtomicBool>,
    pub elapsed_before: f64,
    pub device_name: String,
    pub last_lr: f64,
}

pub(crate) fn gpt_config(cfg: &Config, vocab: usize) -> GptConfig {
    GptConfig {
        vocab_size: vocab,
        n_positions: cfg.model.block_size,
        n_embd: cfg.model.n_embd,
        n_layer: cfg.model.n_layer,
        n_head: cfg.model.n_head,
    }
}

impl<D: Kernels> Trainer<D> {
    /// Builds the trainer on `dev`: fresh, fine-tuned (`init_from`) or resumed.
    pub fn new(
        dev: &D,
        p: &Prepared,
        events: Sender<Event>,
        device_name: String,
    ) -> anyhow::Result<Self> {
        let cfg = p.config.clone();
        let gcfg = gpt_config(&cfg, p.tokenizer.vocab_size());
        let mut model = Gpt::new(dev, gcfg, cfg.seed);
        if let Some(init) = &cfg.train.init_from {
            if p.resume_from.is_none() {
                model = load_model(dev, init)?;
            }
        }
        let sizes: Vec<usize> = {
            let mut s = Vec::new();
            model.visit(|_, p| s.push(p.shape().iter().product()));
            s
        };
        let mut opt = AdamW::new(&sizes);
        let mut batcher = Batcher::new(cfg.seed);
        let mut step = 0;
        let mut best_val = None;
        let mut elapsed_before = 0.0;
        let mut last_lr = 0.0;
        if let Some(ck) = &p.resume_from {
            model = load_model(dev, ck)?;
            let st_path = ck.join("trainer_state.json");
            let text = std::fs::read_to_string(&st_path).map_err(|e| {
                anyhow::anyhow!("checkpoint {}: cannot read: {e}", st_path.display())
            })?;
            let st: TrainerState = serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!("checkpoint {}: not a trainer state: {e}", st_path.display())
            })?;
            let opt_path = ck.join("optimizer.safetensors");
            let tensors = read_safetensors(&opt_path)?;
            let mut names = Vec::new();
            model.visit(|n, _| names.push(n));
            for (i, n) in names.iter().enumerate() {
                for (slot, suffix) in [(&mut opt.m, "exp_avg"), (&mut opt.v, "exp_avg_sq")] {
                    let key = format!("{n}.{suffix}");
                    let (_, data) = tensors.get(&key).ok_or_else(|| {
                        anyhow::anyhow!(
                            "checkpoint {}: optimizer tensor `{key}` is missing",
                            opt_path.display()
                        )
                    })?;
                    if data.len() != sizes[i] {
                        anyhow::bail!(
                            "checkpoint {}: optimizer tensor `{key}` has {} values, the model needs {}",
                            opt_path.display(),
                            data.len(),
                            sizes[i]
                        );
                    }
                    slot[i] = data.clone();
                }
            }
            opt.t = st.adam_t;
            batcher = Batcher::from_state(st.batcher);
            step = st.step;
            best_val = st.best_val_loss;
            elapsed_before = st.elapsed_secs;
            last_lr = st.lr;
            let _ = run_dir::truncate_metrics_after(&p.run_dir, step);
        }
        if model.cfg != gcfg {
            anyhow::bail!(
                "checkpoint sizes {:?} differ from the config's {:?}; set the model keys to match the checkpoint",
                model.cfg,
                gcfg
            );
        }
        let n = cfg.model.block_size.min(p.split.val.len());
        let probe = p.split.val.to_vec(0..n);
        run_dir::remove_stale_temps(&p.run_dir);
        Ok(Trainer {
            metrics: MetricsWriter::open(&p.run_dir),
            cfg,
            model,
            opt,
            batcher,
            step,
            best_val,
            split: p.split.clone(),
            tokenizer: p.tokenizer.clone(),
            run_dir: p.run_dir.clone(),
            events,
            probe,
            paused: false,
            poisoned: false,
            gen_cancel: Arc::new(AtomicBool::new(false)),
            elapsed_before,
            device_name,
            last_lr,
        })
    }

    fn send(&self, e: Event) {
        let _ = self.events.send(e);
    }

    fn fused(&self) -> bool {
        self.cfg.model.fused
    }

    /// One optimizer step on a fresh batch; returns (loss, grad norm, lr, what
    /// went non-finite). When the loss, the gradient norm or any updated weight
    /// is not finite, nothing is updated (model, optimizer and step unchanged).
    pub fn train_step(&mut self) -> (f32, f32, f64, Option<&'static str>) {
        let t = &self.cfg.train;
        let (b, s) = (t.batch_size, self.cfg.model.block_size);
        let (x, y) = self.batcher.draw(&self.split.train, b, s);
        let lr = lr_at(
            self.step,
            t.learning_rate,
            t.min_lr,
            t.warmup_iters,
            self.cfg.lr_decay_iters(),
        );
        let grads = self.model.alloc_grads();
        let loss = self.model.loss_train(&x, &y, b, s, grads, self.fused());
        let loss_value = loss.as_vec()[0];
        let mut grads = loss.backward();
        let mut gvecs: Vec<Vec<f32>> = Vec::new();
        self.model.visit(|_, p| {
            gvecs.push(match p {
                ParamRef::One(t) => D::grad_to_host(&mut grads, t),
                ParamRef::Two(t) => D::grad_to_host(&mut grads, t),
            })
        });
        drop(grads);
        let norm = clip_global_norm(&mut gvecs, t.grad_clip as f32);
        if !loss_value.is_finite() {
            return (loss_value, norm, lr, Some("loss"));
        }
        if !norm.is_finite() {
            return (loss_value, norm, lr, Some("gradient norm"));
        }
        let c = AdamWConfig {
            lr: lr as f32,
            beta1: t.beta1 as f32,
            beta2: t.beta2 as f32,
            eps: 1e-8,
            weight_decay: t.weight_decay as f32,
        };
        // The update is computed on copies and applied only when every new
        // weight is finite: a huge learning rate can overflow the weights even
        // though the loss and gradients were finite, and such weights must
        // never reach the model, the optimizer state or a checkpoint.
        let mut new_opt = self.opt.clone();
        new_opt.t += 1;
        let mut updated: Vec<Vec<f32>> = Vec::with_capacity(gvecs.len());
        let mut decay: Vec<bool> = Vec::with_capacity(gvecs.len());
        self.model.visit(|_, p| {
            decay.push(matches!(p, ParamRef::Two(_)));
            updated.push(match p {
                ParamRef::One(t) => D::param_to_host(t),
                ParamRef::Two(t) => D::param_to_host(t),
            })
        });
        new_opt.update_all(&mut updated, &gvecs, &decay, &c);
        let finite = {
            use rayon::prelude::*;
            updated.par_iter().all(|d| d.iter().all(|x| x.is_finite()))
        };
        if !finite {
            return (loss_value, norm, lr, Some("weights after the update"));
        }
        self.opt = new_opt;
        let mut i = 0;
        self.model.visit_mut(|_, mut p| {
            p.copy_from(&updated[i]);
            i += 1;
        });
        self.step += 1;
        self.last_lr = lr;
        (loss_value, norm, lr, None)
    }

    /// Mean loss over `eval_iters` batches of each split (same batches every time).
    pub fn evaluate(&self) -> (f32, f32) {
        let t = &self.cfg.train;
        let (b, s) = (t.batch_size, self.cfg.model.block_size);
        let mean = |data: &crate::data::Tokens, salt: u64| {
            let mut bt = Batcher::new(self.cfg.seed ^ salt);
            let mut sum = 0.0;
            for _ in 0..t.eval_iters {
                let (x, y) = bt.draw(data, b, s);
                sum += self.model.loss(&x, &y, b, s, self.fused());
            }
            sum / t.eval_iters as f32
        };
        (
            mean(&self.split.train, 0x7261_696e),
            mean(&self.split.val, 0x7661_6c21),
        )
    }

    /// Writes a complete checkpoint for the current step; returns its directory.
    pub fn save_checkpoint(&mut self, elapsed: f64) -> anyhow::Result<PathBuf> {
        // A complete checkpoint of this very step holds these same weights and
        // optimizer state (e.g. a stop right after an interval checkpoint, or
        // right after resuming): keep it rather than delete and rewrite it,
        // which would leave a window where a crash loses it.
        let existing =
            run_dir::checkpoints_dir(&self.run_dir).join(run_dir::step_dir_name(self.step));
        if existing.join("trainer_state.json").is_file() {
            crate::fsutil::atomic_write(
                &run_dir::checkpoints_dir(&self.run_dir).join("LATEST"),
                run_dir::step_dir_name(self.step).as_bytes(),
            )?;
            return Ok(existing);
        }
        let tmp = run_dir::temp_checkpoint_dir(&self.run_dir, self.step)?;
        save_model(&self.model, &tmp)?;
        self.tokenizer.save(&tmp.join("tokenizer.json"))?;
        let mut names = Vec::new();
        self.model.visit(|n, p| names.push((n, p.shape())));
        let mut opt_tensors = Vec::new();
        for (i, (n, shape)) in names.iter().enumerate() {
            opt_tensors.push((format!("{n}.exp_avg"), shape.clone(), self.opt.m[i].clone()));
            opt_tensors.push((
                format!("{n}.exp_avg_sq"),
                shape.clone(),
                self.opt.v[i].clone(),
            ));
        }
        crate::fsutil::atomic_write(
            &tmp.join("optimizer.safetensors"),
            &safetensors_bytes(&opt_tensors, None),
        )?;
        let st = TrainerState {
            step: self.step,
            batcher: self.batcher.state(self.cfg.seed),
            adam_t: self.opt.t,
            best_val_loss: self.best_val,
            elapsed_secs: elapsed,
            lr: self.last_lr,
        };
        // trainer_state.json last: its presence marks the directory complete.
        crate::fsutil::atomic_write(
            &tmp.join("trainer_state.json"),
            serde_json::to_string_pretty(&st)?.as_bytes(),
        )?;
        let dst = run_dir::commit_checkpoint(
            &self.run_dir,
            &tmp,
            self.step,
            self.cfg.train.keep_checkpoints.max(1),
        )?;
        self.metrics
            .write(&json!({"event": "checkpoint", "step": self.step, "path": dst}));
        Ok(dst)
    }

    fn snapshot(&self) -> Arc<HostModel> {
        Arc::new(HostModel::from_model(&self.model))
    }

    /// Computes attention on the probe text on a worker thread.
    fn spawn_probe(&self) {
        if self.probe.is_empty() {
            return;
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
            let _ = tx.send(Event::Attention(AttentionMap {
                step,
                tokens: texts,
                n_layer: host.cfg.n_layer,
                n_head: host.cfg.n_head,
                probs,
            }));
        });
    }

    /// Streams a generation from a snapshot on a worker thread; a newer
    /// request cancels an older one.
    fn spawn_generation(&mut self, req: GenerateRequest) {
        self.gen_cancel.store(true, Ordering::SeqCst);
        let cancel = Arc::new(AtomicBool::new(false));
        self.gen_cancel = cancel.clone();
        let host = self.snapshot();
        let tok = self.tokenizer.clone();
        let tx = self.events.clone();
        std::thread::spawn(move || {
            let prompt: Vec<usize> = tok
                .encode(&req.prompt)
                .into_iter()
                .map(|t| t as usize)
                .collect();
            let mut dec = StreamDecoder::new();
            let start = Instant::now();
            let mut n = 0;
            generate(&host, &prompt, &req.settings, true, |id, p| {
                if cancel.load(Ordering::SeqCst) {
                    return false;
                }
                n += 1;
                let text = dec.push(&tok, id as u32);
                tx.send(Event::Token {
                    id: req.id,
                    text,
                    prob: p,
                })
                .is_ok()
            });
            let secs = start.elapsed().as_secs_f64().max(1e-9);
            let _ = tx.send(Event::GenerationDone {
                id: req.id,
                tokens: n,
                tokens_per_sec: n as f64 / secs,
            });
        });
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
            Command::Save => self.save_and_report(started),
            Command::Probe { text } => {
                if let Some(t) = text {
                    let ids = self.tokenizer.encode(&t);
                    let n = ids.len().min(self.cfg.model.block_size);
                    self.probe = ids[..n].to_vec();
                }
                self.spawn_probe();
            }
            Command::Generate(req) => self.spawn_generation(req),
            Command::Stop => return true,
        }
        false
    }

    fn elapsed(&self, started: Instant) -> f64 {
        self.elapsed_before + started.elapsed().as_secs_f64()
    }

    fn save_and_report(&mut self, started: Instant) {
        if self.poisoned {
            self.send(Event::Log("not saving: the weights went non-finite; the latest checkpoint is the last good one".into()));
            return;
        }
        let el = self.elapsed(started);
        match self.save_checkpoint(el) {
            Ok(path) => self.send(Event::Checkpoint {
                step: self.step,
                path,
            }),
            Err(e) => self.send(Event::Log(format!("checkpoint failed: {e:#}"))),
        }
    }

    fn log_eval(&mut self) {
        let (tr, va) = self.evaluate();
        if va.is_finite() && self.best_val.is_none_or(|b| va < b) {
            self.best_val = Some(va);
        }
        let best = self.best_val.unwrap_or(va);
        self.metrics.write(&json!({"event": "eval", "step": self.step, "train_loss": tr, "val_loss": va, "best_val_loss": best}));
        self.send(Event::Eval(EvalStats {
            step: self.step,
            train_loss: tr,
            val_loss: va,
            best_val_loss: best,
        }));
    }

    /// The loop. Returns when done, stopped, or failed (the event says which).
    pub fn run(mut self, commands: Receiver<Command>, stop: Arc<AtomicBool>) {
        let started = Instant::now();
        let t = self.cfg.train.clone();
        let tokens_per_step = t.batch_size * self.cfg.model.block_size;
        self.send(Event::Started(RunInfo {
            name: self.cfg.name.clone(),
            run_dir: self.run_dir.clone(),
            device: self.device_name.clone(),
            max_iters: t.max_iters,
            start_step: self.step,
            n_params: self.model.cfg.n_params(),
            n_layer: self.model.cfg.n_layer,
            n_head: self.model.cfg.n_head,
            n_embd: self.model.cfg.n_embd,
            block_size: self.model.cfg.n_positions,
            vocab_size: self.model.cfg.vocab_size,
            tokens_per_step,
        }));
        self.metrics.write(&json!({"event": "start", "step": self.step, "max_iters": t.max_iters, "n_params": self.model.cfg.n_params(), "device": self.device_name}));
        if self.step == 0 && t.eval_interval > 0 {
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
            if stop.load(Ordering::SeqCst) {
                self.gen_cancel.store(true, Ordering::SeqCst);
                self.save_and_report(started);
                self.metrics
                    .write(&json!({"event": "stopped", "step": self.step}));
                self.send(Event::Stopped { step: self.step });
                return;
            }
            if self.step >= t.max_iters {
                self.save_and_report(started);
                self.metrics
                    .write(&json!({"event": "finished", "step": self.step}));
                self.send(Event::Finished { step: self.step });
                // Stay for commands (generation, probes) until told to stop.
                self.paused = true;
                loop {
                    match commands.recv_timeout(Duration::from_millis(200)) {
                        Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                        Ok(Command::Save) | Ok(Command::Pause) | Ok(Command::Resume) => {}
                        Ok(c) => {
                            self.handle(c, started);
                        }
                        Err(RecvTimeoutError::Timeout) => {
                            if stop.load(Ordering::SeqCst) {
                                return;
                            }
                        }
                    }
                }
            }
            let t0 = Instant::now();
            let (loss, norm, lr, nonfinite) = self.train_step();
            if let Some(what) = nonfinite {
                self.poisoned = true;
                self.paused = true;
                let value = match what {
                    "loss" => format!(" ({loss})"),
                    "gradient norm" => format!(" ({norm})"),
                    _ => String::new(),
                };
                let reason = format!(
                    "non-finite {what}{value} at step {}; the update was not applied and the latest checkpoint is the last good one; lower train.learning_rate and resume",
                    self.step + 1
                );
                self.metrics.write(&json!({"event": "nonfinite", "step": self.step + 1, "loss": loss.to_string(), "grad_norm": norm.to_string()}));
                self.send(Event::Paused {
                    step: self.step,
                    reason: Some(reason),
                });
                continue;
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
                let elapsed = self.elapsed(started);
                self.metrics.write(&json!({"event": "step", "step": self.step, "loss": loss, "lr": lr, "grad_norm": norm, "tokens_per_sec": tps, "elapsed_secs": elapsed}));
                self.send(Event::Step(StepStats {
                    step: self.step,
                    loss,
                    lr,
                    grad_norm: norm,
                    tokens_per_sec: tps,
                    eta_secs: eta,
                    elapsed_secs: elapsed,
                }));
            }
            if t.eval_interval > 0 && (self.step.is_multiple_of(t.eval_interval) || last) {
                self.log_eval();
                window_start = Instant::now();
            }
            if t.attention_interval > 0 && self.step.is_multiple_of(t.attention_interval) {
                self.spawn_probe();
            }
            if t.checkpoint_interval > 0 && self.step.is_multiple_of(t.checkpoint_interval) && !last
            {
                self.save_and_report(started);
                window_start = Instant::now();
            }
        }
    }
}

/// Runs the trainer on the configured device, on the calling thread.
pub(crate) fn run_thread(
    p: Prepared,
    events: Sender<Event>,
    commands: Receiver<Command>,
    stop: Arc<AtomicBool>,
) {
    let fail = |events: &Sender<Event>, e: String| {
        let _ = events.send(Event::Failed { step: 0, error: e });
    };
    let threads = p.config.train.threads;
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(p) => p,
        Err(e) => return fail(&events, format!("cannot start {threads} threads: {e}")),
    };
    pool.install(|| {
        let device = p.config.device.clone();
        if device == "cpu" {
            let dev = Cpu::seed_from_u64(p.config.seed);
            match Trainer::new(&dev, &p, events.clone(), "cpu".into()) {
                Ok(t) => t.run(commands, stop),
                Err(e) => fail(&events, format!("{e:#}")),
            }
        } else {
            run_cuda(&p, &device, events.clone(), commands, stop)
        }
    });
}

#[cfg(feature = "cuda")]
fn run_cuda(
    p: &Prepared,
    device: &str,
    events: Sender<Event>,
    commands: Receiver<Command>,
    stop: Arc<AtomicBool>,
) {
    let ordinal = super::cuda_ordinal(device).unwrap_or(0);
    match Cuda::try_build(ordinal, p.config.seed) {
        Ok(dev) => match Trainer::new(&dev, p, events.clone(), format!("cuda:{ordinal}")) {
            Ok(t) => t.run(commands, stop),
            Err(e) => {
                let _ = events.send(Event::Failed {
                    step: 0,
                    error: format!("{e:#}"),
                });
            }
        },
        Err(e) => {
            let _ = events.send(Event::Failed {
                step: 0,
                error: format!("cannot open CUDA device {ordinal}: {e:?}; check nvidia-smi, or use --device cpu"),
            });
        }
    }
}

#[cfg(not(feature = "cuda"))]
fn run_cuda(
    _: &Prepared,
    device: &str,
    events: Sender<Event>,
    _: Receiver<Command>,
    _: Arc<AtomicBool>,
) {
    let _ = events.send(Event::Failed {
        step: 0,
        error: format!(
            "device `{device}` needs a build with CUDA: cargo build --release --features cuda"
        ),
    });
}

/// Loads a checkpoint's model on the CPU (for `generate` and `eval`).
pub fn load_cpu_model(dir: &Path) -> anyhow::Result<Gpt<Cpu>> {
    Ok(load_model(&Cpu::default(), dir)?)
}
