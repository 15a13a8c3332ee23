//! `metrics.jsonl`, written by an [`EventSink`]: one JSON object per start,
//! step log, evaluation, checkpoint, non-finite step, finish and stop,
//! appended and flushed as the event passes. Reading it back and trimming it
//! on resume are in `run_dir`.

use super::events::{Event, NonFinite};
use super::sink::EventSink;
use serde::Serialize;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One line of `metrics.jsonl`. Keys are written sorted (through
/// `serde_json::Value`), `event` names the kind.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Record<'a> {
    Start {
        step: usize,
        max_iters: usize,
        n_params: usize,
        device: &'a str,
    },
    Step {
        step: usize,
        loss: f32,
        lr: f64,
        grad_norm: f32,
        tokens_per_sec: f64,
        elapsed_secs: f64,
    },
    Eval {
        step: usize,
        train_loss: f32,
        val_loss: f32,
        best_val_loss: f32,
        /// Masked-LM runs: `{loss, top1, top5, positions}` on validation.
        #[serde(skip_serializing_if = "Option::is_none")]
        masked: Option<super::events::MaskedEval>,
    },
    Checkpoint {
        step: usize,
        path: &'a Path,
    },
    /// A checkpoint that could not be written (see `Event::CheckpointFailed`).
    #[serde(rename = "checkpoint_failed")]
    CheckpointFailed {
        step: usize,
        path: &'a Path,
        error: &'a str,
        latest: Option<usize>,
        last: bool,
    },
    /// `step` is the step that was tried; loss and norm as text (`NaN`, `inf`).
    Nonfinite {
        step: usize,
        what: NonFinite,
        loss: String,
        grad_norm: String,
    },
    Finished {
        step: usize,
    },
    Stopped {
        step: usize,
    },
}

impl<'a> Record<'a> {
    /// The record an event leaves in `metrics.jsonl`, if any.
    pub fn of(e: &'a Event) -> Option<Record<'a>> {
        Some(match e {
            Event::Started(i) => Record::Start {
                step: i.start_step,
                max_iters: i.max_iters,
                n_params: i.n_params,
                device: &i.device,
            },
            Event::Step(s) => Record::Step {
                step: s.step,
                loss: s.loss,
                lr: s.lr,
                grad_norm: s.grad_norm,
                tokens_per_sec: s.tokens_per_sec,
                elapsed_secs: s.elapsed_secs,
            },
            Event::Eval(e) => Record::Eval {
                step: e.step,
                train_loss: e.train_loss,
                val_loss: e.val_loss,
                best_val_loss: e.best_val_loss,
                masked: e.masked,
            },
            Event::Checkpoint { step, path } => Record::Checkpoint { step: *step, path },
            Event::CheckpointFailed {
                step,
                path,
                error,
                latest,
                last,
                ..
            } => Record::CheckpointFailed {
                step: *step,
                path,
                error,
                latest: *latest,
                last: *last,
            },
            Event::NonFinite {
                step,
                what,
                loss,
                grad_norm,
            } => Record::Nonfinite {
                step: *step,
                what: *what,
                loss: loss.to_string(),
                grad_norm: grad_norm.to_string(),
            },
            Event::Finished { step } => Record::Finished { step: *step },
            Event::Stopped { step } => Record::Stopped { step: *step },
            Event::Attention(_)
            | Event::Induction(_)
            | Event::Token { .. }
            | Event::GenerationDone { .. }
            | Event::Filled(_)
            | Event::Paused { .. }
            | Event::Resumed { .. }
            | Event::Failed { .. }
            | Event::Log(_)
            | Event::Preparing { .. }
            | Event::RecordLoss(_)
            | Event::ScoreDone { .. }
            | Event::Inspecting { .. } => return None,
        })
    }

    /// The line as written (keys sorted, no newline).
    pub fn to_line(&self) -> String {
        serde_json::to_value(self)
            .map(|v| v.to_string())
            .unwrap_or_default()
    }
}

/// How often a metrics writer that keeps failing says so again.
const COMPLAIN_EVERY: Duration = Duration::from_secs(60);

/// Appends one line per recorded event to `RUN/metrics.jsonl`, flushed each
/// time. A write that fails is said once (then at most once a minute, with
/// the count of records lost), training goes on, and the writer keeps
/// trying: when writing works again it says how many records were lost.
pub struct MetricsSink {
    path: PathBuf,
    file: Option<fs::File>,
    /// Since the first failed write: records lost, and when last said.
    failing: Option<(usize, Instant)>,
    /// A failed write may have left part of a line: start the next on a new one.
    torn: bool,
}

impl MetricsSink {
    /// Opens `RUN/metrics.jsonl` for appending (created if missing). Call
    /// after a resume has trimmed the file: the handle follows the file it
    /// opened.
    pub fn open(run: &Path) -> Self {
        let path = run.join("metrics.jsonl");
        // A line torn by a crash must not swallow the next one.
        let torn = fs::read(&path).is_ok_and(|b| !b.is_empty() && b.last() != Some(&b'\n'));
        let mut sink = MetricsSink {
            path,
            file: None,
            failing: None,
            torn,
        };
        sink.file = sink.open_file().ok();
        sink
    }

    fn open_file(&self) -> std::io::Result<fs::File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append(&mut self, line: &str) -> std::io::Result<()> {
        if self.file.is_none() {
            self.file = Some(self.open_file()?);
        }
        let Some(f) = &mut self.file else {
            return Ok(());
        };
        let mut bytes = String::with_capacity(line.len() + 2);
        if self.torn {
            bytes.push('\n');
        }
        bytes.push_str(line);
        bytes.push('\n');
        crate::fsutil::append(f, &self.path, bytes.as_bytes())?;
        self.torn = false;
        Ok(())
    }
}

impl EventSink for MetricsSink {
    fn on_event(&mut self, e: &Event) -> Result<(), String> {
        let Some(r) = Record::of(e) else {
            return Ok(());
        };
        let path = self.path.display().to_string();
        match self.append(&r.to_line()) {
            Ok(()) => match self.failing.take() {
                Some((lost, _)) => Err(format!(
                    "metrics {path}: writing again; {lost} record(s) were lost while it failed"
                )),
                None => Ok(()),
            },
            Err(err) => {
                self.torn = true;
                match &mut self.failing {
                    None => {
                        self.failing = Some((1, Instant::now()));
                        Err(format!(
                            "metrics {path}: cannot write ({err}); training goes on, its records are lost until the file can be written again"
                        ))
                    }
                    Some((lost, said)) => {
                        *lost += 1;
                        if said.elapsed() < COMPLAIN_EVERY {
                            return Ok(());
                        }
                        *said = Instant::now();
                        Err(format!(
                            "metrics {path}: still cannot write ({err}); {lost} record(s) lost so far; training goes on"
                        ))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::events::*;

    #[test]
    fn records_keep_the_field_names_and_sorted_keys() {
        let e = Event::Step(StepStats {
            step: 10,
            loss: 2.5,
            lr: 1e-3,
            grad_norm: 0.25,
            tokens_per_sec: 100.0,
            eta_secs: 9.0,
            elapsed_secs: 1.5,
        });
        assert_eq!(
            Record::of(&e).unwrap().to_line(),
            r#"{"elapsed_secs":1.5,"event":"step","grad_norm":0.25,"loss":2.5,"lr":0.001,"step":10,"tokens_per_sec":100.0}"#
        );
        let e = Event::NonFinite {
            step: 5,
            what: NonFinite::Loss,
            loss: f32::NAN,
            grad_norm: f32::INFINITY,
        };
        assert_eq!(
            Record::of(&e).unwrap().to_line(),
            r#"{"event":"nonfinite","grad_norm":"inf","loss":"NaN","step":5,"what":"loss"}"#
        );
        assert!(Record::of(&Event::Log("x".into())).is_none());
    }

    #[test]
    fn a_failing_file_is_said_once_then_recovery_counts_the_lost() {
        let d = tempfile::tempdir().unwrap();
        let mut m = MetricsSink::open(d.path());
        let fin = |step| Event::Finished { step };
        assert_eq!(m.on_event(&fin(1)), Ok(()));
        // A directory where the file was: every write fails.
        fs::remove_file(m.path()).unwrap();
        fs::create_dir(m.path()).unwrap();
        m.file = None;
        let first = m.on_event(&fin(2)).unwrap_err();
        assert!(
            first.contains("cannot write") && first.contains("training goes on"),
            "{first}"
        );
        for s in 3..50 {
            assert_eq!(m.on_event(&fin(s)), Ok(()), "said again at {s}");
        }
        fs::remove_dir(m.path()).unwrap();
        let back = m.on_event(&fin(50)).unwrap_err();
        assert!(
            back.contains("writing again; 48 record(s) were lost"),
            "{back}"
        );
        assert_eq!(m.on_event(&fin(51)), Ok(()));
        let text = fs::read_to_string(m.path()).unwrap();
        assert_eq!(
            text,
            "\n{\"event\":\"finished\",\"step\":50}\n{\"event\":\"finished\",\"step\":51}\n"
        );
    }
}
