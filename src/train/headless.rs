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
        "step {:>6}/{} | loss {:.4} | lr {:.2e} | grad norm {:.3} | {:.0} tok/s | ETA {}",
        s.step,
        max_iters,
        s.loss,
        s.lr,
        s.grad_norm,
        s.tokens_per_sec,
        fmt_duration(s.eta_secs)
    )
}

pub fn eval_line(e: &EvalStats) -> String {
    let line = format!(
        "eval step {}: train loss {:.4}, val loss {:.4} (best {:.4})",
        e.step, e.train_loss, e.val_loss, e.best_val_loss
    );
    match &e.masked {
        // A masked LM's losses are at the masked positions; say how often
        // the right token is the first or among the first five.
        Some(m) => format!(
            "{line}, masked top-1 {:.4}, top-5 {:.4} ({} positions)",
            m.top1, m.top5, m.positions
        ),
        None => line,
    }
}

/// The headless consumer: prints one plain line per event worth a line.
pub struct HeadlessPrinter<W: Write + Send> {
    out: W,
    max_iters: usize,
    /// The step of the last checkpoint reported written: the stop line only
    /// claims a checkpoint when one was written for the step it stopped at.
    saved_step: Option<usize>,
    /// The run's final checkpoint could not be written: what was lost.
    lost: Option<String>,
}

impl<W: Write + Send> HeadlessPrinter<W> {
    pub fn new(out: W, max_iters: usize) -> Self {
        HeadlessPrinter {
            out,
            max_iters,
            saved_step: None,
            lost: None,
        }
    }

    /// When the run's final checkpoint could not be written: the line saying
    /// which step was lost (the exit error).
    pub fn lost(&self) -> Option<&str> {
        self.lost.as_deref()
    }

    /// Whether the checkpoint of `step` was reported written.
    pub fn saved(&self, step: usize) -> bool {
        self.saved_step == Some(step)
    }

    /// The line an event prints, if any.
    fn line(&mut self, ev: &Event) -> Option<String> {
        match ev {
            Event::Started(info) => {
                self.max_iters = info.max_iters;
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
                    escape(&info.run_dir.display().to_string())
                ))
            }
            Event::Step(s) => Some(step_line(s, self.max_iters)),
            Event::Eval(e) => Some(eval_line(e)),
            Event::Checkpoint { step, path } => {
                self.saved_step = Some(*step);
                Some(format!(
                    "checkpoint step {step}: {}",
                    escape(&path.display().to_string())
                ))
            }
            Event::CheckpointFailed {
                step,
                path,
                error,
                latest,
                last,
                next_try,
            } => {
                let line = checkpoint_failed_line(*step, path, error, *latest, *last, *next_try);
                if *last {
                    // Said once, as the exit error.
                    self.lost = Some(format!("final {line}"));
                    None
                } else {
                    Some(escape(&line))
                }
            }
            Event::Finished { step } => Some(format!("finished at step {step}")),
            Event::Paused { step, reason: None } => Some(format!("paused at step {step}")),
            Event::Resumed { step } => Some(format!("resumed at step {step}")),
            Event::Stopped { step } if self.saved(*step) => {
                Some(format!("stopped at step {step} (checkpoint saved)"))
            }
            Event::Log(m) => Some(escape(m)),
            Event::Preparing {
                phase,
                done,
                total,
                elapsed_secs,
            } => Some(escape(
                &preparing_line(phase, *done, *total, *elapsed_secs).0,
            )),
            _ => None,
        }
    }
}

impl<W: Write + Send> EventSink for HeadlessPrinter<W> {
    fn on_event(&mut self, ev: &Event) -> Result<(), String> {
        if let Some(l) = self.line(ev) {
            // stdout gone (a closed pipe) is no reason to stop training.
            let _ = writeln!(self.out, "{l}");
            let _ = self.out.flush();
        }
        Ok(())
    }
}

/// Runs training without a UI until it finishes, stops, or fails.
/// SIGINT, SIGTERM and SIGHUP ask for a clean stop (checkpoint, exit 0).
/// A final checkpoint that could not be written is an error (exit 1) that
/// names the steps lost.
pub fn run_headless(prepared: &Prepared) -> anyhow::Result<()> {
    run_headless_with(prepared, spawn(prepared))
}

/// As [`run_headless`], on a trainer already started (e.g. one whose events
/// are also served to viewers).
pub fn run_headless_with(prepared: &Prepared, handle: TrainerHandle) -> anyhow::Result<()> {
    run_printing(prepared, handle, None)
}

/// The trainer behind a workbench (a process of its own): as
/// [`run_headless_with`], but a finished run, or one paused by a non-finite
/// step, stays (for probes, generations, `Continue`) while viewers are
/// attached, and ends `linger` after the last one left.
pub fn run_for_viewers(
    prepared: &Prepared,
    handle: TrainerHandle,
    viewers: &dyn Fn() -> usize,
    linger: std::time::Duration,
) -> anyhow::Result<()> {
    run_printing(prepared, handle, Some((viewers, linger)))
}

fn run_printing(
    prepared: &Prepared,
    handle: TrainerHandle,
    viewers: Option<(&dyn Fn() -> usize, std::time::Duration)>,
) -> anyhow::Result<()> {
    use std::sync::mpsc::RecvTimeoutError;
    use std::time::{Duration, Instant};
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        let _ = signal_hook::flag::register(sig, handle.stop.clone());
    }
    let mut printer = HeadlessPrinter::new(std::io::stdout(), prepared.config.train.max_iters);
    let mut result = Ok(());
    // Since when a run that no longer trains (finished, or paused by a
    // non-finite step) has had no viewer.
    let mut idle: Option<Option<Instant>> = None;
    let mut asked_stop = false;
    loop {
        let ev = match handle.events.recv_timeout(Duration::from_millis(250)) {
            Ok(ev) => ev,
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                if let (Some((count, linger)), Some(since)) = (viewers, idle.as_mut()) {
                    if count() > 0 {
                        *since = None;
                    } else {
                        let t = *since.get_or_insert_with(Instant::now);
                        if t.elapsed() >= linger && !asked_stop {
                            let _ = writeln!(
                                std::io::stdout(),
                                "no viewer for {}: the trainer ends",
                                fmt_duration(linger.as_secs_f64())
                            );
                            let _ = handle.commands.send(Command::Stop);
                            asked_stop = true;
                        }
                    }
                }
                continue;
            }
        };
        let _ = printer.on_event(&ev);
        match &ev {
            Event::Started(_) | Event::Resumed { .. } => idle = None,
            Event::Paused {
                reason: Some(r), ..
            } => {
                result = Err(anyhow::anyhow!("training stopped: {r}"));
                if viewers.is_some() {
                    idle = Some(None);
                } else {
                    let _ = handle.commands.send(Command::Stop);
                }
            }
            Event::Finished { .. } => {
                if let Some(lost) = printer.lost() {
                    result = Err(anyhow::anyhow!("{lost}"));
                }
                if viewers.is_some() {
                    idle = Some(None);
                    if result.is_ok() {
                        continue;
                    }
                }
                break;
            }
            Event::Stopped { step } => {
                if let (Ok(()), Some(lost)) = (&result, printer.lost()) {
                    result = Err(anyhow::anyhow!("{lost}"));
                } else if result.is_ok() && !printer.saved(*step) {
                    result = Err(anyhow::anyhow!(
                        "stopped at step {step}, but its checkpoint could not be saved (see above); the latest complete checkpoint is an earlier one"
                    ));
                }
                break;
            }
            Event::Failed { error, .. } => {
                result = Err(anyhow::anyhow!("{error}"));
                break;
            }
            _ => {}
        }
    }
    let _ = handle.commands.send(Command::Stop);
    let _ = handle.thread.join();
    // The trainer has ended; the channel closes once whatever sits between
    // it and us (the run's socket server) has shut down and removed its
    // socket, so a finished run leaves none behind. Bounded: a run whose
    // directory vanished must still exit.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        if handle.events.recv_timeout(left).is_err() {
            break;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_step_line_shows_the_gradient_norm() {
        let s = StepStats {
            step: 10,
            loss: 2.65432,
            lr: 5.88e-4,
            grad_norm: 0.40644,
            tokens_per_sec: 58397.0,
            eta_secs: 1.0,
            elapsed_secs: 0.2,
        };
        assert_eq!(
            step_line(&s, 60),
            "step     10/60 | loss 2.6543 | lr 5.88e-4 | grad norm 0.406 | 58397 tok/s | ETA 1s"
        );
    }

    #[test]
    fn the_printer_claims_a_saved_stop_only_after_its_checkpoint() {
        let mut out = Vec::new();
        {
            let mut p = HeadlessPrinter::new(&mut out, 100);
            p.on_event(&Event::Stopped { step: 7 }).unwrap();
            p.on_event(&Event::Checkpoint {
                step: 8,
                path: "ck/step-8".into(),
            })
            .unwrap();
            p.on_event(&Event::Stopped { step: 8 }).unwrap();
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "checkpoint step 8: ck/step-8\nstopped at step 8 (checkpoint saved)\n"
        );
    }
}
