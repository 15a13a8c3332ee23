//! Command line: the clap subcommands and flags, and their conversion into
//! the plain options the rest of the program takes (`Experiment`,
//! `PrepareOptions`, `SampleSettings`, `BenchOptions`). Dispatch is in `main.rs`.

use crate::bench::{BenchOptions, Preset};
use crate::experiment::Experiment;
use crate::model::sample::SampleSettings;
use crate::train::PrepareOptions;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

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
    /// Validation loss, perplexity and next-token accuracy of a checkpoint
    /// (a masked LM: masked loss and top-1/top-5 accuracy).
    Eval(EvalArgs),
    /// Fill every [MASK] of a text with a masked-LM (BERT) checkpoint: top-k with probabilities.
    Fill(FillArgs),
    /// Throughput and memory benchmark; prints JSON.
    Bench(BenchArgs),
    /// List runs: state (live, finished, stopped, crashed), step, best val loss, last activity.
    Runs(RunsArgs),
    /// Open the workbench on a live run (default: the newest live one); `d` detaches.
    Attach(AttachArgs),
    /// Open the workbench on a run from disk (finished, crashed, copied, or a transformers output_dir).
    Watch(WatchArgs),
    /// The token caches of text datasets (`$HEADSUP_CACHE_DIR` or the user's cache dir).
    Cache(CacheArgs),
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// The run directory (default: the newest live run under the data directory).
    pub run: Option<PathBuf>,
    /// Colour theme: dark, light, ansi16, or a file name in the config dir's themes/.
    #[arg(long)]
    pub theme: Option<String>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Run directories or transformers output_dirs.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Colour theme: dark, light, ansi16, or a file name in the config dir's themes/.
    #[arg(long)]
    pub theme: Option<String>,
}

#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub action: CacheAction,
}

#[derive(Debug, Subcommand, Clone, Copy, PartialEq, Eq)]
pub enum CacheAction {
    /// List the cached token files and tokenizers, checked, with their sizes.
    Ls,
    /// Remove them all.
    Clear,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Also list the runs in this directory (or this run); repeatable.
    #[arg(long)]
    pub dir: Vec<PathBuf>,
}

/// The experiment: a config and the overrides on top of it.
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
    /// cpu, cuda or cuda:N (overrides the config's `device`).
    #[arg(long)]
    pub device: Option<String>,
    /// Worker threads for the CPU (overrides train.threads; 0 = all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl ExperimentArgs {
    pub fn experiment(&self) -> Experiment {
        Experiment {
            config: self.config.clone(),
            data: self.data.clone(),
            sets: self.sets.clone(),
            device: self.device.clone(),
            threads: self.threads,
        }
    }
}

/// Where a training run lives.
#[derive(Debug, Args, Clone, Default)]
pub struct RunDirArgs {
    /// Run directory (default: a new one under the user's data directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory from its latest checkpoint.
    #[arg(long)]
    pub resume: Option<PathBuf>,
}

impl RunDirArgs {
    pub fn prepare_options(&self) -> PrepareOptions {
        PrepareOptions {
            out: self.out.clone(),
            resume: self.resume.clone(),
            block_size_explicit: false,
        }
    }
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub exp: ExperimentArgs,
    #[command(flatten)]
    pub run: RunDirArgs,
    /// Internal: the trainer the workbench starts (its output moves to
    /// RUN/train.log once it serves the run; a finished run stays while
    /// viewers are attached).
    #[arg(long, hide = true)]
    pub workbench: bool,
}

#[derive(Debug, Args, Default)]
pub struct TuiArgs {
    #[command(flatten)]
    pub exp: ExperimentArgs,
    #[command(flatten)]
    pub run: RunDirArgs,
    /// Colour theme: dark, light, ansi16, or a file name in the config dir's themes/.
    #[arg(long)]
    pub theme: Option<String>,
    /// Inspect this checkpoint directory without training: attention, heads,
    /// playground, and with --data the dataset with per-token losses.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "resume"])]
    pub checkpoint: Option<PathBuf>,
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

impl GenerateArgs {
    pub fn settings(&self) -> SampleSettings {
        SampleSettings {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            max_new_tokens: self.max_new_tokens,
            seed: self.seed,
        }
    }
}

#[derive(Debug, Args)]
pub struct FillArgs {
    /// Masked-LM checkpoint directory (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The text, with [MASK] where a token is to be filled, e.g. "床前明[MASK]光".
    #[arg(long)]
    pub text: String,
    /// Candidates shown per mask.
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
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
    /// Instead of validation loss: complete each prompt of this JSONL file of
    /// {"prompt": ..., "reference": ...} and score the completions (BLEU-4,
    /// ROUGE-1/2/L, token F1, exact match) and the references' perplexity.
    #[arg(long)]
    pub references: Option<PathBuf>,
    /// With --references: print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// With --references: also write the JSON report to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// With --references: tokens to generate at most per prompt.
    #[arg(long, default_value_t = 64)]
    pub max_new_tokens: usize,
    /// With --references: 0 is greedy; above 0 samples (seeded).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Example i samples with seed + i.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// A completion ends before this text ("" for never); always at <|endoftext|>.
    #[arg(long, default_value = "\n")]
    pub stop: String,
}

#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    #[command(flatten)]
    pub exp: ExperimentArgs,
    /// Timed training steps (after 3 warm-up steps).
    #[arg(long, default_value_t = 30)]
    pub steps: usize,
    /// Timed training steps on the plain (unfused) path; 0 skips it.
    #[arg(long, default_value_t = 10)]
    pub plain_steps: usize,
    /// Timed training steps on the fused kernels' portable path (no AVX2/FMA
    /// code, the `gemm` crate for products); 0 skips it.
    #[arg(long, default_value_t = 0)]
    pub portable_steps: usize,
    /// Skip the generation measurements.
    #[arg(long)]
    pub no_generate: bool,
    /// Measure a named shape: baby (4L/4H/128, block 64, batch 12) or
    /// gpt2-small (12L/12H/768, block 256, batch 4), from the shakespeare-char
    /// sample unless --config names another; --set still overrides.
    #[arg(long, value_parser = Preset::NAMES)]
    pub preset: Option<String>,
}

impl BenchArgs {
    pub fn options(&self) -> BenchOptions {
        BenchOptions {
            steps: self.steps,
            plain_steps: self.plain_steps,
            portable_steps: self.portable_steps,
            generate: !self.no_generate,
            preset: self.preset(),
        }
    }

    fn preset(&self) -> Option<Preset> {
        self.preset.as_deref().and_then(Preset::from_name)
    }

    /// The experiment to measure: the preset's config and overrides (if
    /// any), then the command line's.
    pub fn experiment(&self) -> Experiment {
        let mut exp = self.exp.experiment();
        if let Some(p) = self.preset() {
            if exp.config.is_none() {
                exp.config = Some(p.config().into());
            }
            let mut sets = p.sets();
            sets.append(&mut exp.sets);
            exp.sets = sets;
        }
        exp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn train_flags_become_an_experiment_and_a_run_directory() {
        let cli = Cli::try_parse_from([
            "headsup",
            "train",
            "--config",
            "copy",
            "--set",
            "train.max_iters=5",
            "--threads",
            "1",
            "--out",
            "runs/x",
        ])
        .unwrap();
        let Some(Cmd::Train(a)) = cli.command else {
            panic!("not train")
        };
        assert_eq!(
            a.exp.experiment(),
            Experiment {
                config: Some("copy".into()),
                sets: vec!["train.max_iters=5".into()],
                threads: Some(1),
                ..Default::default()
            }
        );
        assert_eq!(a.run.prepare_options().out, Some(PathBuf::from("runs/x")));
    }

    #[test]
    fn tui_checkpoint_takes_data_but_no_run_directory() {
        let cli = Cli::try_parse_from(["headsup", "tui", "--checkpoint", "ck", "--data", "d.txt"])
            .unwrap();
        let Some(Cmd::Tui(a)) = cli.command else {
            panic!("not tui")
        };
        assert_eq!(a.checkpoint, Some(PathBuf::from("ck")));
        assert_eq!(a.exp.data, Some(PathBuf::from("d.txt")));
        for flag in ["--out", "--resume"] {
            let e = Cli::try_parse_from(["headsup", "tui", "--checkpoint", "ck", flag, "x"])
                .unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict, "{flag}");
        }
    }

    #[test]
    fn bench_and_eval_take_no_run_directory() {
        for cmd in ["bench", "eval"] {
            let mut args = vec!["headsup", cmd, "--out", "x"];
            if cmd == "eval" {
                args.extend(["--checkpoint", "ck"]);
            }
            let e = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument, "{cmd}");
        }
    }
}
