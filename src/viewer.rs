//! The viewer commands: `headsup attach [RUN]` (the workbench on a run a
//! trainer in another process serves), `headsup watch RUN` (the workbench
//! on a run read from disk, no trainer) and `headsup tui --checkpoint DIR`
//! (the workbench on one checkpoint, no trainer). They build what the
//! workbench needs (config, dataset, tokenizer) and hand `tui` a trainer
//! handle, which it cannot tell from a local one.

use crate::config::Config;
use crate::data::{Dataset, TokenSplit};
use crate::tokenizer::Tokenizer;
use crate::train::Prepared;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The workbench's view of a run directory: its config, and its dataset
/// when it can be loaded here (a run copied from another machine may name
/// data that is not here: the browser is then empty, the rest works).
fn prepared_for(run: &Path, tokenizer: Option<Tokenizer>) -> anyhow::Result<Prepared> {
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
    let dataset = if cfg_path.is_file() {
        match Dataset::load(&config.data, config.seed) {
            Ok(d) => d,
            Err(e) => {
                Dataset::from_records(format!("(dataset not available here: {e})"), Vec::new())
            }
        }
    } else {
        Dataset::from_records("(a transformers run: no dataset)", Vec::new())
    };
    let tokenizer = match tokenizer {
        Some(t) => t,
        None => Tokenizer::load(&run.join("tokenizer.json"))?,
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
    let prepared = prepared_for(&run, None)?;
    let (handle, _snapshot) = crate::serve::run::attach(&run)?;
    crate::tui::run_attached(prepared, handle, theme)
}

/// `headsup watch RUN [RUN...]`.
pub fn watch(runs: &[PathBuf], theme: Option<String>) -> anyhow::Result<()> {
    let Some(run) = runs.first() else {
        anyhow::bail!("watch: name a run directory or a transformers output_dir");
    };
    if runs.len() > 1 {
        anyhow::bail!("watch: overlaying several runs is not done yet; watch one run at a time");
    }
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
    let prepared = prepared_for(run, tok)?;
    let probe = prepared.dataset.records.first().map(|r| {
        r.text
            .chars()
            .take(4 * prepared.config.model.block_size)
            .collect()
    });
    let dataset = prepared.dataset.clone();
    let handle = crate::watch::local::spawn_source(
        crate::watch::local::Source::Run(run.clone()),
        probe,
        dataset,
        Duration::from_millis(500),
    )?;
    crate::tui::run_attached(prepared, handle, theme)
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
    use crate::watch::local::{checkpoint_tokenizer, spawn_source, Source};
    if !dir.is_dir() {
        anyhow::bail!(
            "checkpoint {}: no such directory; give a directory with config.json, model.safetensors and the tokenizer",
            dir.display()
        );
    }
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
    let tokenizer = checkpoint_tokenizer(dir)?;
    let dataset = if has_data {
        Dataset::load(&config.data, config.seed)?
    } else {
        Dataset::from_records("(no data: give --data FILE)", Vec::new())
    };
    let probe = dataset
        .records
        .first()
        .map(|r| r.text.chars().take(4096).collect());
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
    crate::tui::run_workbench(prepared, handle, theme)
}
