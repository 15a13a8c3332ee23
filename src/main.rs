//! `headsup`: parse the command line and dispatch; errors become one line and
//! a non-zero exit.

use anyhow::Result;
use clap::Parser;
use headsup::cli::{CacheAction, Cli, Cmd, TuiArgs};
use headsup::experiment::{self, load_experiment};
use headsup::train;
use std::io::{IsTerminal, Write};

fn main() {
    headsup::memory::tune_allocator();
    if let Err(e) = run(Cli::parse()) {
        // One line: the chain of causes joined, each said once.
        // Escaped: messages quote file names, keys and values from user data,
        // which must not reach the terminal as control sequences.
        let msg = headsup::errors::one_line(&e);
        // Not eprintln!, which panics when stderr is gone.
        let _ = writeln!(
            std::io::stderr(),
            "error: {}",
            headsup::sanitize::escape(&msg)
        );
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        None => run_tui(TuiArgs::default()),
        Some(Cmd::Tui(a)) => run_tui(a),
        Some(Cmd::Train(a)) => {
            if a.workbench {
                // Serves the run while it prepares the data (its progress
                // in the workbench, a stop there cancels), then trains.
                use headsup::serve::preparing::{prepare_served, Served};
                let begun = experiment::begin(&a.exp.experiment(), &a.run.prepare_options())?;
                let served = prepare_served(begun, stderr_line, |run| {
                    headsup::serve::process::become_ready(&run.join("train.log"))
                })?;
                return match served {
                    Served::Training(t) => {
                        let (p, handle, viewers) = *t;
                        train::headless::run_for_viewers(&p, handle, &*viewers, TRAINER_LINGER)
                    }
                    Served::Cancelled => Ok(()),
                };
            }
            let p = experiment::prepare(&a.exp.experiment(), &a.run.prepare_options())?;
            let handle = headsup::serve::run::spawn_served(&p, stderr_line)?;
            train::headless::run_headless_with(&p, handle)
        }
        Some(Cmd::Generate(a)) => headsup::commands::run_generate(&a),
        Some(Cmd::Eval(a)) => headsup::commands::run_eval(&a),
        Some(Cmd::Fill(a)) => headsup::commands::run_fill(&a),
        Some(Cmd::Runs(a)) => headsup::runs::run(&a.dir),
        Some(Cmd::Cache(a)) => headsup::data::cache::run_command(a.action == CacheAction::Clear),
        Some(Cmd::Bench(a)) => headsup::bench::run(load_experiment(&a.experiment())?, &a.options()),
        Some(Cmd::Attach(a)) => headsup::viewer::attach(a.run, a.theme),
        Some(Cmd::Watch(a)) => headsup::viewer::watch(&a.runs, a.theme),
    }
}

/// A line on stderr (never panics when stderr is gone).
fn stderr_line(m: &str) {
    let _ = writeln!(std::io::stderr(), "{}", headsup::sanitize::escape(m));
}

fn run_tui(a: TuiArgs) -> Result<()> {
    if let Some(dir) = &a.checkpoint {
        return headsup::viewer::inspect(dir, &a.exp.experiment(), a.theme.clone());
    }
    // The theme and key bindings are checked first, before any training
    // starts, and whether or not the output is a terminal.
    let mut run = a.run.prepare_options();
    run.block_size_explicit = experiment::names_block_size(&a.exp.experiment());
    let cfg = experiment::load_config(&a.exp.experiment(), &run)?;
    let theme = a.theme.clone().unwrap_or_else(|| cfg.ui.theme.clone());
    headsup::ui::Theme::load(
        &theme,
        headsup::ui::Theme::user_dir().as_deref(),
        headsup::ui::ColorDepth::detect(),
    )?;
    headsup::app::KeyMap::from_config(&cfg.ui.keys)?;
    if !std::io::stdout().is_terminal() {
        // Not a terminal: the plain progress lines instead of drawing.
        let p = experiment::prepare_config(cfg, &run)?;
        let handle = headsup::serve::run::spawn_served(&p, stderr_line)?;
        return train::headless::run_headless_with(&p, handle);
    }
    // The trainer is a process of its own, so that the run outlives this
    // terminal (`d` detaches, a hangup does what ui.on_hangup says).
    let exp = a.exp.experiment();
    let args = headsup::serve::process::TrainerArgs {
        config: exp.config,
        data: exp.data,
        sets: exp.sets,
        device: exp.device,
        threads: exp.threads,
        resume: run.resume.is_some(),
        run: run
            .resume
            .clone()
            .or(run.out.clone())
            .unwrap_or_else(|| train::new_run_dir(&cfg)),
    };
    let on_hangup = cfg.ui.on_hangup;
    headsup::viewer::workbench(&args, cfg, a.theme, on_hangup)
}

/// How long the workbench's trainer stays after its run finished (or was
/// paused by a non-finite step) once no viewer is attached.
const TRAINER_LINGER: std::time::Duration = std::time::Duration::from_secs(60);
