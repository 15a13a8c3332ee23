//! The headless consumer of trainer events: one plain line per log interval
//! and per evaluation, for terminals, pipes and logs.

use super::*;
use crate::sanitize::escape;
use std::io::Write;

/// Formats seconds as `1h02m`, `3m12s` or `45s`.
pub fn fmt_duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "?".into();
    }
    let s = secs.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

pub fn step_line(s: &StepStats, max_iters: usize) -> String {
    format!(
        "step {:>6}/{} | loss {:.4} | lr {:.2e} | {:.0} tok/s | ETA {}",
        s.step,
        max_iters,
        s.loss,
        s.lr,
        s.tokens_per_sec,
        fmt_duration(s.eta_secs)
    )
}

pub fn eval_line(e: &EvalStats) -> String {
    format!(
        "eval step {}: train loss {:.4}, val loss {:.4} (best {:.4})",
        e.step, e.train_loss, e.val_loss, e.best_val_loss
    )
}

/// Runs training without a UI until it finishes, stops, or fails.
/// SIGINT, SIGTERM and SIGHUP ask for a clean stop (checkpoint, exit 0).
pub fn run_headless(prepared: &Prepared) -> anyhow::Result<()> {
    let handle = spawn(prepared);
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        let _ = signal_hook::flag::register(sig, handle.stop.clone());
    }
    let mut out = std::io::stdout();
    let mut max_iters = prepared.config.train.max_iters;
    let mut result = Ok(());
    // The step of the last checkpoint reported written: the stop line only
    // claims a checkpoint when one was written for the step it stopped at.
    let mut saved_step = None;
    for ev in handle.events.iter() {
        let line = match &ev {
            Event::Started(info) => {
                max_iters = info.max_iters;
                Some(format!(
                    "run {} | {} params | {} layers, {} heads, width {}, block {}, vocab {} | device {} | from step {} | dir {}",
                    escape(&info.name),
                    info.n_params,
                    info.n_layer,
                    info.n_head,
                    info.n_embd,
                    info.block_size,
                    info.vocab_size,
                    info.device,
                    info.start_step,
                    info.run_dir.display()
                ))
            }
            Event::Step(s) => Some(step_line(s, max_iters)),
            Event::Eval(e) => Some(eval_line(e)),
            Event::Checkpoint { step, path } => {
                saved_step = Some(*step);
                Some(format!("checkpoint step {step}: {}", path.display()))
            }
            Event::Paused {
                reason: Some(r), ..
            } => {
                result = Err(anyhow::anyhow!("training stopped: {r}"));
                let _ = handle.commands.send(Command::Stop);
                None
            }
            Event::Finished { step } => {
                let _ = handle.commands.send(Command::Stop);
                let _ = writeln!(out, "finished at step {step}");
                break;
            }
            Event::Stopped { step } => {
                if result.is_ok() {
                    if saved_step == Some(*step) {
                        let _ = writeln!(out, "stopped at step {step} (checkpoint saved)");
                    } else {
                        result = Err(anyhow::anyhow!(
                            "stopped at step {step}, but its checkpoint could not be saved (see above); the latest complete checkpoint is an earlier one"
                        ));
                    }
                }
                break;
            }
            Event::Failed { error, .. } => {
                result = Err(anyhow::anyhow!("{error}"));
                break;
            }
            Event::Log(m) => Some(escape(m)),
            _ => None,
        };
        if let Some(l) = line {
            let _ = writeln!(out, "{l}");
            let _ = out.flush();
        }
    }
    let _ = handle.commands.send(Command::Stop);
    let _ = handle.thread.join();
    result
}
