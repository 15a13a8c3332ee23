//! The training engine: the loop, schedule, clipping, evaluation, checkpoints,
//! the run directory, and the event/command types its consumers use.
//! `prepare` checks everything and lays out the run directory; `spawn`
//! starts the trainer thread, whose events go through an [`EventBus`] to
//! `metrics.jsonl` and over a channel to the workbench or the headless printer.

pub mod accumulate;
pub mod batch;
mod device;
pub mod events;
pub mod headless;
pub mod induction;
pub mod masking;
pub mod metrics;
pub mod optim;
pub mod run_dir;
pub mod schedule;
pub mod score;
pub mod sink;
pub mod trainer;
pub use device::load_cpu_model;
pub use events::*;
pub use sink::{EventBus, EventSink};

use crate::config::Config;
use crate::data::{Dataset, TokenSplit};
use crate::tokenizer::Tokenizer;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Everything loaded and checked before the training thread starts, so that a
/// bad input fails before any terminal set-up.
pub struct Prepared {
    pub config: Config,
    pub run_dir: PathBuf,
    pub dataset: Arc<Dataset>,
    pub tokenizer: Arc<Tokenizer>,
    /// The token streams for training and validation.
    pub split: Arc<TokenSplit>,
    /// When resuming: the checkpoint directory to continue from.
    pub resume_from: Option<PathBuf>,
    /// What the trainer says when it starts (e.g. the keys a resume changed).
    pub notes: Vec<String>,
}

/// Where the run directory goes and whether to resume.
#[derive(Debug, Clone, Default)]
pub struct PrepareOptions {
    /// `--out DIR`: the run directory (default: under the user's data dir).
    pub out: Option<PathBuf>,
    /// `--resume RUN`: continue the run in this directory from its latest checkpoint.
    pub resume: Option<PathBuf>,
    /// The experiment itself names `model.block_size` (its config file or a
    /// `--set`): under `train.init_from` the checkpoint's positions are cropped
    /// to it (a larger one is an error) instead of kept.
    pub block_size_explicit: bool,
}

/// The consumer's side of a running trainer.
pub struct TrainerHandle {
    pub commands: Sender<Command>,
    pub events: Receiver<Event>,
    /// Set to ask the trainer to stop (also settable from a signal handler);
    /// it saves a checkpoint and sends `Event::Stopped`.
    pub stop: Arc<AtomicBool>,
    pub thread: JoinHandle<()>,
}

/// Parses `cuda` / `cuda:N` into the device ordinal.
pub fn cuda_ordinal(device: &str) -> Option<usize> {
    match device {
        "cuda" => Some(0),
        d => d.strip_prefix("cuda:").and_then(|n| n.parse().ok()),
    }
}

/// The default parent of run directories: the user's data directory.
pub fn default_runs_dir() -> PathBuf {
    directories::ProjectDirs::from("", "", "headsup")
        .map(|d| d.data_dir().join("runs"))
        .unwrap_or_else(|| PathBuf::from("runs"))
}

/// Where a new run of `config` goes when no `--out` names a directory:
/// `NAME-UNIXTIME` under [`default_runs_dir`].
pub fn new_run_dir(config: &Config) -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    default_runs_dir().join(format!("{}-{stamp}", sanitize_name(&config.name)))
}

/// Loads data and tokenizer, checks everything, and lays out the run directory.
/// Every failure is one line naming the file or key and what to do.
///
/// For a new run `config` is the experiment's. When resuming, it is the
/// run's `config.toml` with the command line's changes; a change a resumed
/// run cannot apply (the model's sizes, the data, the tokenizer, the seed) is
/// an error naming the key, and the ones it applies are written back to
/// `config.toml` and said in `Prepared::notes`.
pub fn prepare(config: Config, opts: &PrepareOptions) -> anyhow::Result<Prepared> {
    prepare_with(config, opts, None)
}

/// Where [`prepare_with`] reports the data preparation and what cancels it.
pub struct PrepareHooks<'a> {
    /// Each progress report (e.g. sent on as [`Event::preparing`]).
    pub progress: &'a mut dyn FnMut(&crate::data::cache::Progress),
    /// Set (a `q` in the workbench, a signal) to stop the preparation; no
    /// half-written cache is left.
    pub cancel: &'a AtomicBool,
}

/// As [`prepare`]; with `hooks`, the data preparation's progress goes to
/// them and their flag cancels it (without, progress lines go to stdout and
/// Ctrl-C cancels).
pub fn prepare_with(
    config: Config,
    opts: &PrepareOptions,
    hooks: Option<PrepareHooks<'_>>,
) -> anyhow::Result<Prepared> {
    begin(config, opts)?.finish(hooks)
}

/// What [`begin`] checked and settled before the data is read: the config
/// as it will run, the run directory, the checkpoint to resume from and the
/// tokenizer a resume or `train.init_from` fixes.
pub struct Begun {
    pub config: Config,
    pub run_dir: PathBuf,
    pub resume_from: Option<PathBuf>,
    notes: Vec<String>,
    config_changed: bool,
    fixed: Option<Tokenizer>,
}

/// The first half of [`prepare`]: every check that needs no pass over the
/// data (the config, a resume's changes, `train.init_from`, the device), so
/// that a process can fail fast before it starts the long part,
/// [`Begun::finish`]. Writes nothing.
pub fn begin(mut config: Config, opts: &PrepareOptions) -> anyhow::Result<Begun> {
    let mut resume_from = None;
    let mut notes = Vec::new();
    let mut config_changed = false;
    let run_dir;
    if let Some(run) = &opts.resume {
        let cfg_path = run.join("config.toml");
        let stored = Config::load(&cfg_path)?;
        let ck = run_dir::latest_checkpoint(run).ok_or_else(|| {
            anyhow::anyhow!(
                "run {}: no complete checkpoint to resume from; start it again without --resume",
                run.display()
            )
        })?;
        let at = run_dir::step_of(&ck).unwrap_or(0);
        notes = resume_changes(&stored, &config, at, run)?;
        config_changed = stored != config;
        resume_from = Some(ck);
        run_dir = run.clone();
    } else {
        run_dir = match &opts.out {
            Some(o) => o.clone(),
            None => new_run_dir(&config),
        };
    }
    config.validate()?;
    #[cfg(not(feature = "cuda"))]
    if config.device != "cpu" {
        anyhow::bail!(
            "device `{}`: this build has no CUDA support; rebuild with `cargo build --release --features cuda` or use --device cpu",
            config.device
        );
    }
    if let Some(p) = &config.data.path {
        if let Ok(abs) = std::fs::canonicalize(p) {
            config.data.path = Some(abs);
        }
    }
    let fixed = if let Some(ck) = &resume_from {
        Some(Tokenizer::load(&ck.join("tokenizer.json"))?)
    } else if let Some(init) = &config.train.init_from {
        let gcfg = crate::model::checkpoint::load_config(init)?;
        config.model.n_layer = gcfg.n_layer;
        config.model.n_head = gcfg.n_head;
        config.model.n_embd = gcfg.n_embd;
        config.model.layer_norm_epsilon = gcfg.layer_norm_epsilon;
        if !opts.block_size_explicit {
            config.model.block_size = gcfg.n_positions;
        } else if config.model.block_size > gcfg.n_positions {
            anyhow::bail!(
                "model.block_size {} is larger than the n_positions {} of train.init_from {}; a position table cannot grow: set model.block_size to at most {} (it is cropped, as nanoGPT's crop_block_size)",
                config.model.block_size,
                gcfg.n_positions,
                init.display(),
                gcfg.n_positions
            );
        }
        let tok = Tokenizer::load_dir(init)?;
        crate::model::pretrained::check_vocab(init, tok.id_limit(), gcfg.vocab_size)?;
        Some(tok)
    } else {
        None
    };
    // The data's first record: a missing or unreadable file fails now.
    if let Some(source) = crate::data::tokens::Source::from_config(&config.data) {
        source.check_start()?;
    }
    Ok(Begun {
        config,
        run_dir,
        resume_from,
        notes,
        config_changed,
        fixed,
    })
}

impl Begun {
    /// The second half of [`prepare`]: reads and tokenizes the data
    /// (through the token cache; with `hooks`, reporting to them and
    /// stopped by their flag), checks it is long enough, and lays out the
    /// run directory.
    pub fn finish(self, hooks: Option<PrepareHooks<'_>>) -> anyhow::Result<Prepared> {
        use anyhow::Context;
        let Begun {
            config,
            run_dir,
            resume_from,
            notes,
            config_changed,
            fixed,
        } = self;
        let loaded = match hooks {
            None => crate::data::load::load(&config.data, &config.tokenizer, fixed, config.seed)?,
            Some(h) => crate::data::load::load_with(
                &config.data,
                &config.tokenizer,
                fixed,
                config.seed,
                h.progress,
                h.cancel,
            )?,
        };
        for note in &loaded.notes {
            println!("{note}");
        }
        let (dataset, mut tokenizer, split) = (loaded.dataset, loaded.tokenizer, loaded.split);
        if config.train.objective == crate::config::Objective::Mlm {
            // Added after the corpus ids, which stay as encoded.
            tokenizer = tokenizer.with_bert_specials()?;
        }
        let need = config.model.block_size + 1;
        let what = config
            .data
            .path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| format!("synthetic {:?}", config.data.task).to_lowercase());
        if split.train.len() < need || split.val.len() < need {
            anyhow::bail!(
            "data {what}: too short: {} tokens give {} for training and {} for validation, each needs at least model.block_size + 1 = {need}; use more text or a smaller block_size",
            split.train.len() + split.val.len(),
            split.train.len(),
            split.val.len()
        );
        }
        std::fs::create_dir_all(&run_dir).with_context(|| {
            format!(
                "run directory {}: cannot create it; choose another with --out",
                run_dir.display()
            )
        })?;
        // Checkpoints and metrics go there: find out now, not at the first save.
        for dir in [run_dir.clone(), run_dir::checkpoints_dir(&run_dir)] {
            if dir.is_dir() {
                crate::fsutil::probe_writable(&dir).map_err(|e| {
                let what = if resume_from.is_some() {
                    "a resumed run writes its checkpoints and metrics there; make it writable, or copy the run elsewhere and resume the copy"
                } else {
                    "choose another with --out, or make it writable"
                };
                anyhow::anyhow!("run directory {}: cannot write in it ({e}); {what}", dir.display())
            })?;
            }
        }
        // A new run, or a resumed one whose config changed (`--set`).
        if config_changed || resume_from.is_none() {
            crate::fsutil::atomic_write(
                &run_dir.join("config.toml"),
                config.to_toml_string().as_bytes(),
            )
            .with_context(|| {
                format!(
                    "run directory {}: cannot write config.toml",
                    run_dir.display()
                )
            })?;
        }
        if resume_from.is_none() {
            tokenizer.save(&run_dir.join("tokenizer.json"))?;
        }
        // Where the records are, for viewers (best effort: without it a viewer
        // finds them through the token cache).
        let _ = crate::data::located::save(&run_dir, &dataset);
        Ok(Prepared {
            config,
            run_dir,
            dataset: Arc::new(dataset),
            tokenizer: Arc::new(tokenizer),
            split: Arc::new(split),
            resume_from,
            notes,
        })
    }
}

/// Checks what a resume changes against the run's stored config: a key a
/// resumed run cannot apply is an error naming it; for the others, one line
/// each saying what changes (with the learning-rate schedule when
/// `max_iters` moves it).
fn resume_changes(
    stored: &Config,
    new: &Config,
    at: usize,
    run: &std::path::Path,
) -> anyhow::Result<Vec<String>> {
    let keys = stored.changed_keys(new);
    if let Some((k, _, _)) = keys.iter().find(|(k, _, _)| !Config::resume_applies(k)) {
        anyhow::bail!(
            "--set {k} with --resume {}: a resumed run keeps the {k} its checkpoints were made with; start a new run (without --resume) to change it",
            run.display()
        );
    }
    let (old_t, new_t) = (&stored.train, &new.train);
    if new_t.max_iters < at {
        anyhow::bail!(
            "--set train.max_iters={} with --resume {}: the run is at step {at} already; give at least {at}",
            new_t.max_iters,
            run.display()
        );
    }
    let mut notes = Vec::new();
    for (k, old, new_value) in &keys {
        if k == "train.max_iters" {
            let mut line = format!(
                "resume: train.max_iters {} -> {}",
                old_t.max_iters, new_t.max_iters
            );
            let lr = |c: &Config| {
                schedule::lr_at(
                    at,
                    c.train.learning_rate,
                    c.train.min_lr,
                    c.train.warmup_iters,
                    c.lr_decay_iters(),
                )
            };
            if stored.lr_decay_iters() != new.lr_decay_iters() {
                let (now, before) = (format!("{:.2e}", lr(new)), format!("{:.2e}", lr(stored)));
                let at_step = if now == before {
                    format!("the rate at step {at} stays {now}")
                } else {
                    format!("{now} at step {at} instead of {before}")
                };
                line.push_str(&format!(
                    "; the learning rate now decays until step {} (train.lr_decay_iters follows max_iters): {at_step}; set train.lr_decay_iters={} to keep the old schedule",
                    new.lr_decay_iters(),
                    stored.lr_decay_iters()
                ));
            }
            notes.push(line);
        } else {
            notes.push(format!("resume: {k} {old} -> {new_value}"));
        }
    }
    Ok(notes)
}

fn sanitize_name(s: &str) -> String {
    let n: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if n.is_empty() {
        "run".into()
    } else {
        n
    }
}

/// Starts the training thread.
pub fn spawn(prepared: &Prepared) -> TrainerHandle {
    let (ctx, crx) = std::sync::mpsc::channel();
    let (etx, erx) = std::sync::mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let p = Prepared {
        config: prepared.config.clone(),
        run_dir: prepared.run_dir.clone(),
        dataset: prepared.dataset.clone(),
        tokenizer: prepared.tokenizer.clone(),
        split: prepared.split.clone(),
        resume_from: prepared.resume_from.clone(),
        notes: prepared.notes.clone(),
    };
    let stop2 = stop.clone();
    let thread = std::thread::Builder::new()
        .name("trainer".into())
        .spawn(move || {
            let bus = EventBus::new(etx);
            let events = bus.clone();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                device::run_thread(p, bus, crx, stop2)
            }));
            if let Err(panic) = result {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                let _ = events.send(Event::Failed {
                    step: 0,
                    error: format!("internal error in the trainer: {msg}"),
                });
            }
        })
        .expect("spawning the trainer thread");
    TrainerHandle {
        commands: ctx,
        events: erx,
        stop,
        thread,
    }
}
