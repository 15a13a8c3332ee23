//! `metrics.jsonl`, written by an [`EventSink`]: one JSON object per start,
//! step log, evaluation, checkpoint, non-finite step, finish and stop,
//! appended and flushed as the event passes. Reading it back and trimming it
//! on resume are in `run_dir`.

use super::events::{Event, NonFinite};
use super::sink::EventSink;
use serde::Serialize;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

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
    },
    Checkpoint {
        step: usize,
        path: &'a Path,
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
            },
            Event::Checkpoint { step, path } => Record::Checkpoint { step: *step, path },
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
            | Event::Token { .. }
            | Event::GenerationDone { .. }
            | Event::Paused { .. }
            | Event::Resumed { .. }
            | Event::Failed { .. }
            | Event::Log(_) => return None,
        })
    }

    /// The line as written (keys sorted, no newline).
    pub fn to_line(&self) -> String {
        serde_json::to_value(self)
            .map(|v| v.to_string())
            .unwrap_or_default()
    }
}

/// Appends one line per recorded event to `RUN/metrics.jsonl`, flushed each time.
pub struct MetricsSink {
    path: PathBuf,
    file: Option<fs::File>,
}

impl MetricsSink {
    /// Opens `RUN/metrics.jsonl` for appending (created if missing). Call
    /// after a resume has trimmed the file: the handle follows the file it
    /// opened.
    pub fn open(run: &Path) -> Self {
        let path = run.join("metrics.jsonl");
        // A line torn by a crash must not swallow the next one.
        if let Ok(bytes) = fs::read(&path) {
            if !bytes.is_empty() && bytes.last() != Some(&b'\n') {
                if let Ok(mut f) = OpenOptions::new().append(true).open(&path) {
                    let _ = f.write_all(b"\n");
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .ok();
        MetricsSink { path, file }
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl EventSink for MetricsSink {
    fn on_event(&mut self, e: &Event) -> Result<(), String> {
        let (Some(f), Some(r)) = (&mut self.file, Record::of(e)) else {
            return Ok(());
        };
        let mut line = r.to_line();
        line.push('\n');
        let _ = f.write_all(line.as_bytes());
        let _ = f.flush();
        Ok(())
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
}
