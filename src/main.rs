//! `headsup`: parse the command line and dispatch; errors become one line and
//! a non-zero exit.

use anyhow::Result;
use clap::Parser;
use headsup::cli::{Cli, Cmd, TuiArgs};
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
            let p = experiment::prepare(&a.exp.experiment(), &a.run.prepare_options())?;
            train::headless::run_headless(&p)
        }
        Some(Cmd::Generate(a)) => headsup::commands::run_generate(&a),
        Some(Cmd::Eval(a)) => headsup::commands::run_eval(&a),
        Some(Cmd::Runs(a)) => headsup::runs::run(&a.dir),
        Some(Cmd::Bench(a)) => headsup::bench::run(load_experiment(&a.experiment())?, &a.options()),
    }
}

fn run_tui(a: TuiArgs) -> Result<()> {
    // The theme and key bindings are checked first, before any training
    // starts, and whether or not the output is a terminal.
    let run = a.run.prepare_options();
    let cfg = experiment::load_config(&a.exp.experiment(), &run)?;
    let theme = a.theme.clone().unwrap_or_else(|| cfg.ui.theme.clone());
    headsup::ui::Theme::load(
        &theme,
        headsup::ui::Theme::user_dir().as_deref(),
        headsup::ui::ColorDepth::detect(),
    )?;
    headsup::app::KeyMap::from_config(&cfg.ui.keys)?;
    let p = experiment::prepare_config(cfg, &run)?;
    if !std::io::stdout().is_terminal() {
        // Not a terminal: the plain progress lines instead of drawing.
        return train::headless::run_headless(&p);
    }
    headsup::tui::spawn_and_run(p, a.theme)
}
