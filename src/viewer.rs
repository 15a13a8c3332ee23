//! The viewer commands: `headsup attach [RUN]` (the workbench on a run a
//! trainer in another process serves), `headsup` / `headsup tui` (which
//! start that trainer process first), `headsup watch RUN [RUN...]` (the
//! workbench on a run read from disk, no trainer; further runs' loss curves
//! overlaid) and `headsup tui --checkpoint DIR` (the workbench on one
//! checkpoint, no trainer). They build what the workbench needs (config,
//! dataset, tokenizer) and hand `tui` a trainer handle, which it cannot
//! tell from a local one.

use crate::config::{Config, OnHangup};
use crate::data::{Dataset, TokenSplit};
use crate::serve::process::{spawn_trainer, wait_bounded, TrainerArgs};
use crate::serve::run::Phase;
use crate::tokenizer::Tokenizer;
use crate::train::Prepared;
use crate::tui::{Ending, Role};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The workbench's view of a run directory: its config, and its dataset
/// when it can be found here (a run copied from another machine may name
/// data that is not here: the browser is then empty, the rest works). The
/// records are never read whole: see [`run_dataset`]; `lines`: its
/// progress, if it must tokenize, as lines on stdout (Ctrl-C stops it).
fn prepared_for(run: &Path, tokenizer: Option<Tokenizer>, lines: bool) -> anyhow::Result<Prepared> {
    let cfg_path = run.join("config.toml");
    let config = if cfg_path.is_file() {
        Config::load(&cfg_path)?
    } else {
        Config {
            name: run
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "run".into()),
            ..Config::default()
        }
    };
    let tokenizer = match tokenizer {
        Some(t) => t,
        None => Tokenizer::load(&run.join("tokenizer.json"))?,
    };
    let dataset = if cfg_path.is_file() {
        run_dataset(run, &config, &tokenizer, lines)?
    } else {
        Dataset::from_records("(a transformers run: no dataset)", Vec::new())
    };
    Ok(Prepared {
        config,
        run_dir: run.to_path_buf(),
        dataset: Arc::new(dataset),
        tokenizer: Arc::new(tokenizer),
        split: Arc::new(TokenSplit::new(Vec::new(), 0.9)),
        resume_from: None,
        notes: Vec::new(),
    })
}

/// A run's records for the browser, never read whole: the record index
/// and statistics `RUN/dataset.json` names (written by the trainer), else
/// the token cache of the run's data and tokenizer (found, or built as
/// training builds it: streamed, with its progress as lines on stdout when
/// `lines`), else, for data that is not here, an empty dataset saying why.
/// Only a cancelled preparation (Ctrl-C) is an error.
fn run_dataset(
    run: &Path,
    config: &Config,
    tokenizer: &Tokenizer,
    lines: bool,
) -> anyhow::Result<Dataset> {
    use crate::data::load;
    if let Some(Ok(d)) = crate::data::located::open(run) {
        return Ok(d);
    }
    let fixed = Some(tokenizer.clone());
    let (data, tok) = (&config.data, &config.tokenizer);
    let loaded = if lines {
        load::load(data, tok, fixed, config.seed)
    } else {
        let never = std::sync::atomic::AtomicBool::new(false);
        load::load_with(data, tok, fixed, config.seed, &mut |_| {}, &never)
    };
    match loaded {
        Ok(l) => Ok(l.dataset),
        Err(e) if e.to_string() == load::CANCELLED => Err(e),
        Err(e) => Ok(Dataset::from_records(
            format!("(dataset not available here: {e})"),
            Vec::new(),
        )),
    }
}

/// The run `attach` goes to: the one named, or the newest live one under
/// the data directory.
pub fn attach_target(run: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match run {
        Some(r) => {
            if !r.is_dir() {
                anyhow::bail!(
                    "run {}: no such directory; `headsup runs` lists the runs",
                    r.display()
                );
            }
            Ok(r)
        }
        None => {
            let root = crate::train::default_runs_dir();
            crate::runs::newest_live(std::slice::from_ref(&root))
                .map(|r| r.path)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "no live run under {}; start one with `headsup train`, or name a run: `headsup attach RUN`",
                        root.display()
                    )
                })
        }
    }
}

/// `headsup attach [RUN]`.
pub fn attach(run: Option<PathBuf>, theme: Option<String>) -> anyhow::Result<()> {
    let run = attach_target(run)?;
    let (handle, snapshot) = crate::serve::run::attach(&run)?;
    if snapshot.info.is_none() && snapshot.phase == Phase::Starting {
        // The trainer is still preparing its data.
        let cfg_path = run.join("config.toml");
        let config = if cfg_path.is_file() {
            Config::load(&cfg_path)?
        } else {
            Config {
                name: run_name(&run),
                ..Config::default()
            }
        };
        let late = late_data(&run);
        return crate::tui::run_attached_preparing(config, run, late, handle, theme, Role::Viewer)
            .map(|_| ());
    }
    let prepared = match prepared_for(&run, None, true) {
        Ok(p) => p,
        Err(e) => {
            // Detach: closing the commands ends the connection.
            drop(handle.commands);
            return Err(e);
        }
    };
    crate::tui::run_attached(prepared, handle, theme, Role::Viewer, None).map(|_| ())
}

/// The run directory's name (a run's name when it has no config yet).
fn run_name(run: &Path) -> String {
    run.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into())
}

/// Loads `run`'s data once its trainer has prepared it (quietly: the
/// workbench is on the terminal then).
fn late_data(run: &Path) -> crate::tui::LateData {
    let run = run.to_path_buf();
    Box::new(move || prepared_for(&run, None, false))
}

/// `headsup` / `headsup tui` on a terminal: starts the trainer as a process
/// of its own (its output to `RUN/train.log`), then attaches to it as
/// `headsup attach` does. Its start-up errors are this command's. After a
/// stop, waits for the trainer process to end; after a detach, leaves it.
pub fn workbench(
    args: &TrainerArgs,
    config: Config,
    theme: Option<String>,
    on_hangup: OnHangup,
) -> anyhow::Result<()> {
    // Ready once it serves the run: it prepares the data after, with its
    // progress in the status bar and `q` able to cancel it.
    let mut child = spawn_trainer(args)?;
    let role = Role::Owner(on_hangup);
    let ending = crate::serve::run::attach(&args.run).and_then(|(handle, snapshot)| {
        if snapshot.info.is_none() {
            let late = late_data(&args.run);
            crate::tui::run_attached_preparing(config, args.run.clone(), late, handle, theme, role)
        } else {
            let prepared = prepared_for(&args.run, None, false)?;
            crate::tui::run_attached(prepared, handle, theme, role, None)
        }
    });
    match ending {
        Ok(Ending::Left) => Ok(()),
        Ok(Ending::Ended) => {
            wait_bounded(&mut child, Duration::from_secs(120));
            Ok(())
        }
        Err(e) => {
            // The workbench failed: its trainer stops (SIGTERM: checkpoint,
            // then exit) rather than run on with nobody told about it.
            terminate(&mut child);
            Err(e)
        }
    }
}

/// Asks the trainer process to stop (SIGTERM: it saves a checkpoint) and
/// waits (bounded) for it.
fn terminate(child: &mut std::process::Child) {
    if let Ok(None) = child.try_wait() {
        // SAFETY: a signal to our own child, which has not been reaped.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        wait_bounded(child, Duration::from_secs(120));
    }
}

/// `headsup watch RUN [RUN...]`.
pub fn watch(runs: &[PathBuf], theme: Option<String>) -> anyhow::Result<()> {
    let Some(run) = runs.first() else {
        anyhow::bail!("watch: name a run directory or a transformers output_dir");
    };
    // The other runs: their loss curves over the first's (checked now,
    // before the terminal changes).
    let others = runs[1..]
        .iter()
        .map(|d| crate::watch::Watched::open(d))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let overlay = (!others.is_empty()).then(|| overlay_source(others));
    // The tokenizer: the run's, else the newest checkpoint's.
    let tok = if run.join("tokenizer.json").is_file() {
        None
    } else {
        let (_, ck) = crate::watch::newest_checkpoint(run).ok_or_else(|| {
            anyhow::anyhow!(
                "run {}: no tokenizer.json and no checkpoint with one; nothing to probe",
                run.display()
            )
        })?;
        Some(Tokenizer::load(&ck.join("tokenizer.json"))?)
    };
    let prepared = prepared_for(run, tok, true)?;
    let probe = prepared
        .dataset
        .text_prefix(0, 16 * prepared.config.model.block_size)
        .map(|t| {
            t.chars()
                .take(4 * prepared.config.model.block_size)
                .collect()
        });
    let dataset = prepared.dataset.clone();
    let handle = crate::watch::local::spawn_source(
        crate::watch::local::Source::Run(run.to_path_buf()),
        probe,
        dataset,
        Duration::from_millis(500),
    )?;
    crate::tui::run_attached(prepared, handle, theme, Role::Viewer, overlay).map(|_| ())
}

/// Reads the overlaid runs again (new lines of metrics.jsonl, a newer
/// trainer_state.json) and hands them over when something changed.
fn overlay_source(mut runs: Vec<crate::watch::Watched>) -> crate::tui::OverlaySource {
    let tokens: Vec<Option<f64>> = runs
        .iter()
        .map(|w| {
            Config::load(&w.dir.join("config.toml"))
                .ok()
                .map(|c| (c.train.batch_size * c.model.block_size) as f64)
        })
        .collect();
    let mut names: Vec<String> = Vec::new();
    for w in &runs {
        let base = w
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| w.dir.display().to_string());
        let n = names
            .iter()
            .filter(|x| x.split(" #").next() == Some(&base))
            .count();
        names.push(if n == 0 {
            base
        } else {
            format!("{base} #{}", n + 1)
        });
    }
    let mut first = true;
    Box::new(move || {
        let mut changed = std::mem::take(&mut first);
        for w in runs.iter_mut() {
            changed |= w.poll().unwrap_or(false);
        }
        changed.then(|| {
            runs.iter()
                .zip(&names)
                .zip(&tokens)
                .map(|((w, name), tok)| {
                    let h = w.history();
                    crate::app::OverlayRun {
                        name: name.clone(),
                        tokens_per_step: *tok,
                        train: h
                            .map(|h| h.steps.iter().map(|p| (p.step, p.loss as f64)).collect())
                            .unwrap_or_default(),
                        val: h
                            .map(|h| {
                                h.evals
                                    .iter()
                                    .map(|e| (e.step as f64, e.val_loss as f64))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    }
                })
                .collect()
        })
    })
}

/// `headsup tui --checkpoint DIR [--data FILE]`: the workbench on a
/// checkpoint with no trainer (`watch::local`'s stand-in serves probes,
/// generations and per-token losses from its weights). Every input is
/// checked, and the model loaded, before the terminal changes.
pub fn inspect(
    dir: &Path,
    exp: &crate::experiment::Experiment,
    theme: Option<String>,
) -> anyhow::Result<()> {
    use crate::watch::local::{check_checkpoint_dir, spawn_source, Source};
    check_checkpoint_dir(dir)?;
    // Data: --data (or a --config naming data), read as `train` reads it.
    let has_data = exp.data.is_some() || exp.config.is_some();
    let mut config = if has_data {
        crate::experiment::load_experiment(exp)?
    } else {
        Config::default()
    };
    config.name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkpoint".into());
    // The workbench's view of the records (the stand-in scores with the same).
    let tokenizer = Tokenizer::load_dir(dir)?;
    let dataset = if has_data {
        Dataset::load(&config.data, config.seed)?
    } else {
        Dataset::from_records("(no data: give --data FILE)", Vec::new())
    };
    let probe = dataset
        .text_prefix(0, 16384)
        .map(|t| t.chars().take(4096).collect());
    let prepared = Prepared {
        config,
        run_dir: dir.to_path_buf(),
        dataset: Arc::new(dataset),
        tokenizer: Arc::new(tokenizer),
        split: Arc::new(TokenSplit::new(Vec::new(), 0.9)),
        resume_from: None,
        notes: Vec::new(),
    };
    let handle = spawn_source(
        Source::Checkpoint(dir.to_path_buf()),
        probe,
        prepared.dataset.clone(),
        Duration::from_millis(500),
    )?;
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        handle.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        anyhow::bail!(
            "tui --checkpoint: the output is not a terminal; for scripts use `headsup generate --checkpoint` or `headsup eval --checkpoint`"
        );
    }
    crate::tui::run_attached(prepared, handle, theme, Role::Viewer, None).map(|_| ())
}
