//! What to run: the config an experiment names (a TOML file or a built-in
//! sample) with the command line's overrides applied, and its preparation
//! for training (data, tokenizer, run directory) through `train::prepare`.
//! Plain data in, plain data out: the clap types live in `cli`.

use crate::config::{Config, ConfigError, SourceKind};
use crate::train::{self, PrepareOptions, Prepared};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The configs in `samples/`, built into the binary so that `headsup` runs
/// anywhere with no arguments and no download.
pub const BUILTIN_SAMPLES: &[(&str, &str)] = &[
    ("copy", include_str!("../samples/copy.toml")),
    ("induction", include_str!("../samples/induction.toml")),
    ("reverse", include_str!("../samples/reverse.toml")),
    ("addition", include_str!("../samples/addition.toml")),
    (
        "shakespeare-char",
        include_str!("../samples/shakespeare-char.toml"),
    ),
    ("tang-bpe", include_str!("../samples/tang-bpe.toml")),
];

/// The sample run when no config is named.
pub const DEFAULT_SAMPLE: &str = "copy";

/// An experiment as the command line names it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Experiment {
    /// A config file, or the name of a built-in sample; `None`: [`DEFAULT_SAMPLE`].
    pub config: Option<String>,
    /// The dataset (sets `data.path`; a `.txt` file implies `data.source = "text"`).
    pub data: Option<PathBuf>,
    /// `key=value` overrides, applied in order.
    pub sets: Vec<String>,
    /// Overrides the config's `device`.
    pub device: Option<String>,
    /// Overrides `train.threads`.
    pub threads: Option<usize>,
}

impl Experiment {
    /// Whether anything on the command line changes the named config.
    pub fn has_overrides(&self) -> bool {
        !self.sets.is_empty() || self.device.is_some() || self.threads.is_some()
    }
}

/// Loads the config an experiment names, with `--data`, `--set`, `--device`
/// and `--threads` applied. No config named: the built-in copy task.
pub fn load_experiment(exp: &Experiment) -> Result<Config> {
    let mut cfg = match &exp.config {
        None => builtin(DEFAULT_SAMPLE).context("built-in copy sample")?,
        Some(c) => {
            let path = Path::new(c);
            if path.exists() || c.contains('/') || c.ends_with(".toml") {
                let mut cfg = Config::load(path)?;
                // Paths inside a config file are relative to the file.
                if let (Some(p), Some(dir)) = (&cfg.data.path, path.parent()) {
                    if p.is_relative() {
                        cfg.data.path = Some(dir.join(p));
                    }
                }
                cfg
            } else {
                builtin(c).ok_or_else(|| {
                    anyhow::anyhow!(
                        "config {c}: no such file, and not a built-in sample ({}); check the path",
                        BUILTIN_SAMPLES
                            .iter()
                            .map(|s| s.0)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?
            }
        }
    };
    if let Some(d) = &exp.data {
        if !d.exists() {
            bail!(
                "data {}: no such file or directory; check the path",
                d.display()
            );
        }
        cfg.data.path = Some(d.clone());
        if cfg.data.source == SourceKind::Synthetic {
            cfg.data.source = guess_source(d);
        }
    }
    cfg.apply_overrides(&exp.sets)?;
    if let Some(dev) = &exp.device {
        cfg.device = dev.clone();
    }
    if let Some(t) = exp.threads {
        cfg.train.threads = t;
    }
    // Values that parse but cannot work, named with where they came from.
    if let Err(e) = cfg.validate() {
        let mut from = match &exp.config {
            Some(c) => format!("config {c}"),
            None => format!("config (built-in {DEFAULT_SAMPLE} sample)"),
        };
        if exp.has_overrides() {
            from.push_str(" with the command-line overrides");
        }
        match e {
            ConfigError::Invalid(m) => bail!("{from}: {m}"),
            e => return Err(e.into()),
        }
    }
    Ok(cfg)
}

/// The config of a run: the experiment's for a new run; for `--resume RUN`,
/// `RUN/config.toml` with `--set`, `--device` and `--threads` applied
/// (`train::prepare` then refuses a key a resumed run cannot change).
pub fn load_config(exp: &Experiment, run: &PrepareOptions) -> Result<Config> {
    let Some(dir) = &run.resume else {
        return load_experiment(exp);
    };
    let cfg_path = dir.join("config.toml");
    if exp.config.is_some() || exp.data.is_some() {
        let flag = if exp.config.is_some() {
            "--config"
        } else {
            "--data"
        };
        bail!(
            "{flag} with --resume {}: a resumed run keeps its own config.toml and data; drop {flag} (change keys with --set)",
            dir.display()
        );
    }
    if !cfg_path.is_file() {
        bail!(
            "run {}: no config.toml there; --resume takes a run directory made by `headsup train`",
            dir.display()
        );
    }
    let mut cfg = Config::load(&cfg_path)?;
    if let Err(ConfigError::Invalid(m)) = cfg.validate() {
        bail!("config {}: {m}", cfg_path.display());
    }
    cfg.apply_overrides(&exp.sets)?;
    if let Some(dev) = &exp.device {
        cfg.device = dev.clone();
    }
    if let Some(t) = exp.threads {
        cfg.train.threads = t;
    }
    if let Err(ConfigError::Invalid(m)) = cfg.validate() {
        bail!(
            "config {} with the command-line overrides: {m}",
            cfg_path.display()
        );
    }
    Ok(cfg)
}

/// Whether the experiment names `model.block_size` itself: a `--set`, or the
/// config file or built-in sample given with `--config` (not the default
/// sample used when none is given).
pub fn names_block_size(exp: &Experiment) -> bool {
    let set = exp.sets.iter().any(|s| {
        s.split_once('=')
            .is_some_and(|(k, _)| k.trim() == "model.block_size")
    });
    let Some(c) = &exp.config else {
        return set;
    };
    let text = match std::fs::read_to_string(c) {
        Ok(t) => Some(t),
        Err(_) => BUILTIN_SAMPLES
            .iter()
            .find(|s| s.0 == c)
            .map(|s| s.1.to_string()),
    };
    set || text
        .and_then(|t| t.parse::<toml::Table>().ok())
        .is_some_and(|t| t.get("model").and_then(|m| m.get("block_size")).is_some())
}

/// Loads the experiment (or the run to resume) and prepares it for training
/// in the run directory `run` names.
pub fn prepare(exp: &Experiment, run: &PrepareOptions) -> Result<Prepared> {
    let mut run = run.clone();
    run.block_size_explicit = names_block_size(exp);
    prepare_config(load_config(exp, &run)?, &run)
}

/// As [`prepare`], the checks only ([`train::begin`]): the data is read
/// by [`train::Begun::finish`].
pub fn begin(exp: &Experiment, run: &PrepareOptions) -> Result<train::Begun> {
    let mut run = run.clone();
    run.block_size_explicit = names_block_size(exp);
    train::begin(load_config(exp, &run)?, &run)
}

/// Prepares a config from [`load_config`] for training.
pub fn prepare_config(cfg: Config, run: &PrepareOptions) -> Result<Prepared> {
    train::prepare(cfg, run)
}

fn builtin(name: &str) -> Option<Config> {
    BUILTIN_SAMPLES
        .iter()
        .find(|s| s.0 == name)
        .and_then(|s| Config::from_toml_str(s.1).ok())
}

fn guess_source(p: &Path) -> SourceKind {
    use SourceKind::*;
    if p.is_dir() {
        return Dir;
    }
    match p.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "jsonl" => Jsonl,
        "json" => Json,
        "csv" => Csv,
        _ => Text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_sample_parses() {
        for (name, _) in BUILTIN_SAMPLES {
            let cfg = builtin(name).unwrap_or_else(|| panic!("sample {name} does not parse"));
            // The text samples name their data with --data.
            if cfg.data.source == SourceKind::Synthetic {
                cfg.validate()
                    .unwrap_or_else(|e| panic!("sample {name} is invalid: {e}"));
            }
        }
    }

    #[test]
    fn no_config_loads_the_copy_task() {
        let cfg = load_experiment(&Experiment::default()).unwrap();
        assert_eq!(cfg.name, "copy");
        assert_eq!(cfg.data.task, crate::config::SyntheticTask::Copy);
    }

    #[test]
    fn an_invalid_override_names_the_default_sample() {
        let exp = Experiment {
            sets: vec!["model.n_layer=0".into()],
            ..Default::default()
        };
        let e = format!("{:#}", load_experiment(&exp).unwrap_err());
        assert!(
            e.starts_with("config (built-in copy sample) with the command-line overrides:"),
            "{e}"
        );
    }
}
