//! Command line: clap subcommands and flags, and their dispatch.

use crate::config::Config;
use crate::model::infer::HostModel;
use crate::model::sample::generate;
use crate::sanitize::escape_keep_newlines;
use crate::tokenizer::{StreamDecoder, Tokenizer};
use crate::train::{self, PrepareOptions, SampleSettings};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::io::{IsTerminal, Write};
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

#[derive(Debug, Parser)]
#[command(
    name = "headsup",
    version,
    about = "Train and inspect small GPT-style language models in the terminal.\n\nWith no command: opens the workbench on the built-in copy task."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Train headless: a progress line per log interval, an eval line per eval.
    Train(TrainArgs),
    /// Open the workbench (four live panes) on an experiment.
    Tui(TuiArgs),
    /// Generate text from a checkpoint.
    Generate(GenerateArgs),
    /// Validation loss, perplexity and next-token accuracy of a checkpoint.
    Eval(EvalArgs),
    /// Throughput and memory benchmark; prints JSON.
    Bench(crate::bench::BenchArgs),
    /// List runs: state (live, finished, stopped, crashed), step, best val loss, last activity.
    Runs(RunsArgs),
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Also list the runs in this directory (or this run); repeatable.
    #[arg(long)]
    pub dir: Vec<PathBuf>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ExperimentArgs {
    /// Config file (TOML), or the name of a built-in sample (copy, induction, reverse,
    /// addition, shakespeare-char, tang-bpe).
    #[arg(long, short)]
    pub config: Option<String>,
    /// Dataset path (sets data.path; a .txt file implies data.source = "text").
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Override a config key: --set train.max_iters=100 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Run directory (default: a new one under the user's data directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory from its latest checkpoint.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// cpu, cuda or cuda:N (overrides the config's `device`).
    #[arg(long)]
    pub device: Option<String>,
    /// Worker threads for the CPU (overrides train.threads; 0 = all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub exp: ExperimentArgs,
}

#[derive(Debug, Args, Default)]
pub struct TuiArgs {
    #[command(flatten)]
    pub exp: ExperimentArgs,
    /// Colour theme: dark, light, ansi16, or a file name in the config dir's themes/.
    #[arg(long)]
    pub theme: Option<String>,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Checkpoint directory (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    pub checkpoint: PathBuf,
    #[arg(long, default_value = "")]
    pub prompt: String,
    #[arg(long, default_value_t = 200)]
    pub max_new_tokens: usize,
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f32,
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Re-read the whole context for every token (slow; for comparison).
    #[arg(long)]
    pub no_cache: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Checkpoint directory.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The experiment whose validation split to use (default: the config.toml
    /// of the run the checkpoint belongs to).
    #[command(flatten)]
    pub exp: ExperimentArgs,
    /// Batches of validation windows to average over.
    #[arg(long, default_value_t = 50)]
    pub batches: usize,
}

/// Loads the config an experiment names, with `--data`, `--set`, `--device`
/// and `--threads` applied. No `--config`: the built-in induction sample.
pub fn load_experiment(exp: &ExperimentArgs) -> Result<Config> {
    let mut cfg =
        match &exp.config {
            None => builtin("copy").context("built-in sample")?,
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
                        BUILTIN_SAMPLES.iter().map(|s| s.0).collect::<Vec<_>>().join(", ")
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
        if cfg.data.source == crate::config::SourceKind::Synthetic {
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
            None => "config (built-in induction sample)".to_string(),
        };
        if !exp.sets.is_empty() || exp.device.is_some() || exp.threads.is_some() {
            from.push_str(" with the command-line overrides");
        }
        match e {
            crate::config::ConfigError::Invalid(m) => bail!("{from}: {m}"),
            e => return Err(e.into()),
        }
    }
    Ok(cfg)
}

fn builtin(name: &str) -> Option<Config> {
    BUILTIN_SAMPLES
        .iter()
        .find(|s| s.0 == name)
        .and_then(|s| Config::from_toml_str(s.1).ok())
}

fn guess_source(p: &Path) -> crate::config::SourceKind {
    use crate::config::SourceKind::*;
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

fn prepare(exp: &ExperimentArgs) -> Result<train::Prepared> {
    prepare_config(load_experiment(exp)?, exp)
}

fn prepare_config(cfg: Config, exp: &ExperimentArgs) -> Result<train::Prepared> {
    train::prepare(
        cfg,
        &PrepareOptions {
            out: exp.out.clone(),
            resume: exp.resume.clone(),
        },
    )
}

/// Parses the command line and runs it.
pub fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => run_tui(TuiArgs::default()),
        Some(Cmd::Tui(a)) => run_tui(a),
        Some(Cmd::Train(a)) => {
            let p = prepare(&a.exp)?;
            train::headless::run_headless(&p)
        }
        Some(Cmd::Generate(a)) => run_generate(&a),
        Some(Cmd::Eval(a)) => run_eval(&a),
        Some(Cmd::Bench(a)) => crate::bench::run(&a),
        Some(Cmd::Runs(a)) => crate::runs::run(&a.dir),
    }
}

fn run_tui(a: TuiArgs) -> Result<()> {
    // The theme and key bindings are checked first, before any training
    // starts, and whether or not the output is a terminal.
    let cfg = load_experiment(&a.exp)?;
    let theme = a.theme.clone().unwrap_or_else(|| cfg.ui.theme.clone());
    crate::ui::Theme::load(
        &theme,
        crate::ui::Theme::user_dir().as_deref(),
        crate::ui::ColorDepth::detect(),
    )?;
    crate::app::KeyMap::from_config(&cfg.ui.keys)?;
    let p = prepare_config(cfg, &a.exp)?;
    if !std::io::stdout().is_terminal() {
        // Not a terminal: the plain progress lines instead of drawing.
        return train::headless::run_headless(&p);
    }
    crate::app::run_workbench_or_headless(p, a.theme)
}

fn run_generate(a: &GenerateArgs) -> Result<()> {
    let model = train::trainer::load_cpu_model(&a.checkpoint)?;
    let tok = Tokenizer::load(&a.checkpoint.join("tokenizer.json"))?;
    if tok.vocab_size() != model.cfg.vocab_size {
        bail!(
            "checkpoint {}: tokenizer.json has {} tokens but config.json says vocab_size {}; they do not belong together",
            a.checkpoint.display(),
            tok.vocab_size(),
            model.cfg.vocab_size
        );
    }
    let host = HostModel::from_model(&model);
    let settings = SampleSettings {
        temperature: a.temperature,
        top_k: a.top_k,
        top_p: a.top_p,
        max_new_tokens: a.max_new_tokens,
        seed: a.seed,
    };
    let prompt: Vec<usize> = tok
        .encode(&a.prompt)
        .into_iter()
        .map(|t| t as usize)
        .collect();
    let mut out = std::io::stdout();
    let _ = write!(out, "{}", escape_keep_newlines(&a.prompt));
    let mut dec = StreamDecoder::new();
    generate(&host, &prompt, &settings, !a.no_cache, |id, _| {
        let piece = dec.push(&tok, id as u32);
        let _ = write!(out, "{}", escape_keep_newlines(&piece));
        let _ = out.flush();
        true
    });
    let _ = writeln!(out);
    Ok(())
}

fn run_eval(a: &EvalArgs) -> Result<()> {
    let model = train::trainer::load_cpu_model(&a.checkpoint)?;
    let mut exp = a.exp.clone();
    if exp.config.is_none() {
        // checkpoints live in RUN/checkpoints/step-N: use RUN/config.toml.
        let run_cfg = a
            .checkpoint
            .parent()
            .and_then(|p| p.parent())
            .map(|r| r.join("config.toml"));
        match run_cfg.filter(|p| p.is_file()) {
            Some(p) => exp.config = Some(p.display().to_string()),
            None if exp.data.is_none() => bail!(
                "checkpoint {}: not inside a run directory, so give the data to evaluate on with --data PATH (and --config)",
                a.checkpoint.display()
            ),
            None => {}
        }
    }
    let cfg = load_experiment(&exp)?;
    let tok = Tokenizer::load(&a.checkpoint.join("tokenizer.json"))?;
    let ds = crate::data::Dataset::load(&cfg.data, cfg.seed)?;
    let split = crate::data::TokenSplit::new(tok.encode(&ds.corpus()), cfg.data.train_fraction);
    let block = model.cfg.n_positions;
    if split.val.len() < block + 1 {
        bail!(
            "data: the validation split has {} tokens, fewer than block_size + 1 = {}",
            split.val.len(),
            block + 1
        );
    }
    let b = cfg.train.batch_size.max(1);
    let mut bt = train::batch::Batcher::new(cfg.seed ^ 0x7661_6c21);
    let (mut loss_sum, mut correct, mut total) = (0.0f64, 0usize, 0usize);
    for _ in 0..a.batches.max(1) {
        let (x, y) = bt.draw(&split.val, b, block);
        let out = model.forward_inference(&x, b, block, false, cfg.model.fused);
        let logits = out.logits.as_vec();
        let v = model.cfg.vocab_size;
        for (i, &t) in y.iter().enumerate() {
            let row = &logits[i * v..(i + 1) * v];
            let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let lse = max + row.iter().map(|&l| (l - max).exp()).sum::<f32>().ln();
            loss_sum += (lse - row[t]) as f64;
            let arg = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|x| x.0)
                .unwrap_or(0);
            correct += (arg == t) as usize;
            total += 1;
        }
    }
    let loss = loss_sum / total as f64;
    println!(
        "{{\"val_loss\": {loss:.4}, \"perplexity\": {:.3}, \"next_token_accuracy\": {:.4}, \"tokens\": {total}}}",
        loss.exp(),
        correct as f64 / total as f64
    );
    Ok(())
}
