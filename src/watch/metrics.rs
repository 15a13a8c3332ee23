//! A run's `metrics.jsonl` as a source of history: [`RunLog`] folds its
//! records (start, step, eval, checkpoint, nonfinite, finished, stopped) into
//! a bounded [`History`] and the run's last known state; [`MetricsFollower`]
//! reads the file as it grows, keeping a torn last line until its newline
//! arrives and starting over when the file is replaced or shrinks (a resumed
//! run rewrites it).

use super::history::{EvalPoint, History, StepPoint};
use serde_json::Value;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The last record that says how a process's run ended, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// A process started (or resumed) and has not written an end yet.
    Open,
    Finished,
    Stopped,
}

/// What a run's `metrics.jsonl` says so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunLog {
    pub history: History,
    /// `max_iters` of the latest start record.
    pub max_iters: Option<usize>,
    pub n_params: Option<usize>,
    pub device: Option<String>,
    /// The step of the latest record of any kind.
    pub last_step: Option<usize>,
    /// Steps of the checkpoints written, in order.
    pub checkpoints: Vec<usize>,
    pub ending: Option<Ending>,
    /// The reason of the latest non-finite record, until a later step.
    pub nonfinite: Option<String>,
    /// Lines that did not parse (a torn line from a crash).
    pub bad_lines: usize,
    pub records: u64,
}

fn num(v: &Value, k: &str) -> Option<f64> {
    match v.get(k)? {
        Value::Number(n) => n.as_f64(),
        // Non-finite values are written as text ("NaN", "inf").
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

impl RunLog {
    /// Folds one line of `metrics.jsonl`; lines that are not JSON objects
    /// with an `event` are counted as bad and skipped.
    pub fn push_line(&mut self, line: &[u8]) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        match serde_json::from_slice::<Value>(line) {
            Ok(v) if v.get("event").and_then(Value::as_str).is_some() => self.push(&v),
            _ => self.bad_lines += 1,
        }
    }

    /// Folds one record.
    pub fn push(&mut self, v: &Value) {
        self.records += 1;
        let step = num(v, "step").map(|s| s.max(0.0) as usize);
        if let Some(s) = step {
            self.last_step = Some(s);
        }
        match v.get("event").and_then(Value::as_str).unwrap_or("") {
            "start" => {
                self.max_iters = num(v, "max_iters").map(|x| x as usize);
                self.n_params = num(v, "n_params").map(|x| x as usize);
                self.device = v.get("device").and_then(Value::as_str).map(String::from);
                self.ending = Some(Ending::Open);
                self.nonfinite = None;
                // A resume from an earlier step drops the later points.
                if let Some(s) = step {
                    self.checkpoints.retain(|&c| c <= s);
                }
            }
            "step" => {
                let point = (num(v, "step"), num(v, "loss").filter(|l| l.is_finite()));
                if let (Some(s), Some(loss)) = point {
                    self.history.push_step(StepPoint {
                        step: s,
                        loss: loss as f32,
                        lr: num(v, "lr").unwrap_or(0.0),
                        grad_norm: num(v, "grad_norm").unwrap_or(0.0) as f32,
                        tokens_per_sec: num(v, "tokens_per_sec").unwrap_or(0.0),
                    });
                    self.nonfinite = None;
                }
            }
            "eval" => {
                if let (Some(s), Some(val)) = (step, num(v, "val_loss")) {
                    self.history.push_eval(EvalPoint {
                        step: s,
                        train_loss: num(v, "train_loss").map(|x| x as f32),
                        val_loss: val as f32,
                        masked: v
                            .get("masked")
                            .and_then(|m| serde_json::from_value(m.clone()).ok()),
                    });
                }
            }
            "checkpoint" => {
                if let Some(s) = step {
                    self.checkpoints.retain(|&c| c != s);
                    self.checkpoints.push(s);
                }
            }
            "nonfinite" => {
                let what = v.get("what").and_then(Value::as_str).unwrap_or("value");
                self.nonfinite = Some(format!(
                    "non-finite {} at step {}",
                    what.replace('_', " "),
                    step.unwrap_or(0)
                ));
            }
            "finished" => self.ending = Some(Ending::Finished),
            "stopped" => self.ending = Some(Ending::Stopped),
            _ => {}
        }
    }

    /// Reads a whole `metrics.jsonl`.
    pub fn read(path: &Path) -> io::Result<RunLog> {
        let mut f = MetricsFollower::new(path);
        let mut log = RunLog::default();
        f.poll(&mut log)?;
        Ok(log)
    }
}

/// Follows a growing `metrics.jsonl`.
#[derive(Debug)]
pub struct MetricsFollower {
    path: PathBuf,
    offset: u64,
    /// The bytes of a last line whose newline has not arrived yet.
    partial: Vec<u8>,
    /// (device, inode) of the file being read.
    id: Option<(u64, u64)>,
}

/// Longest line kept while waiting for its newline; longer ones are skipped.
const MAX_LINE: usize = 1 << 20;

impl MetricsFollower {
    pub fn new(path: &Path) -> MetricsFollower {
        MetricsFollower {
            path: path.to_path_buf(),
            offset: 0,
            partial: Vec::new(),
            id: None,
        }
    }

    /// Reads what was appended since the last call and folds it into `log`.
    /// When the file was replaced or truncated, `log` is reset and the file
    /// read from its start. Returns whether anything new was folded. A file
    /// that does not exist (yet) is no error.
    pub fn poll(&mut self, log: &mut RunLog) -> io::Result<bool> {
        use std::os::unix::fs::MetadataExt;
        let mut f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let md = f.metadata()?;
        let id = (md.dev(), md.ino());
        let restarted = self.id.is_some_and(|old| old != id) || md.len() < self.offset;
        if restarted {
            *log = RunLog::default();
            self.offset = 0;
            self.partial.clear();
        }
        self.id = Some(id);
        if md.len() == self.offset {
            return Ok(restarted);
        }
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        f.take(md.len() - self.offset).read_to_end(&mut buf)?;
        self.offset += buf.len() as u64;
        let mut rest = &buf[..];
        let mut any = restarted;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                log.push_line(&rest[..i]);
            } else {
                self.partial.extend_from_slice(&rest[..i]);
                let line = std::mem::take(&mut self.partial);
                log.push_line(&line);
            }
            rest = &rest[i + 1..];
            any = true;
        }
        if self.partial.len() + rest.len() > MAX_LINE {
            log.bad_lines += 1;
            self.partial.clear();
        } else {
            self.partial.extend_from_slice(rest);
        }
        Ok(any)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(p: &Path, s: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap();
        f.write_all(s.as_bytes()).unwrap();
    }

    #[test]
    fn follows_growth_holding_a_torn_line_until_it_is_complete() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("metrics.jsonl");
        let mut f = MetricsFollower::new(&p);
        let mut log = RunLog::default();
        assert!(!f.poll(&mut log).unwrap(), "no file yet is no error");
        append(&p, "{\"event\":\"start\",\"step\":0,\"max_iters\":100,\"n_params\":5,\"device\":\"cpu\"}\n{\"event\":\"step\",\"step\":10,\"loss\":2.5,\"lr\":0.001,\"grad_norm\":0.5,\"tokens_per_sec\":10.0,\"elapsed_secs\":1.0}\n{\"event\":\"step\",\"st");
        assert!(f.poll(&mut log).unwrap());
        assert_eq!(log.history.steps.len(), 1);
        assert_eq!(log.max_iters, Some(100));
        assert_eq!(log.ending, Some(Ending::Open));
        assert_eq!(log.bad_lines, 0);
        append(&p, "ep\":20,\"loss\":2.0}\n{\"event\":\"eval\",\"step\":20,\"train_loss\":2.1,\"val_loss\":2.2,\"best_val_loss\":2.2}\n");
        assert!(f.poll(&mut log).unwrap());
        assert_eq!(log.history.steps.len(), 2);
        assert_eq!(log.history.last_step(), Some(20));
        assert_eq!(log.history.best_val_loss(), Some(2.2));
        assert!(!f.poll(&mut log).unwrap());
        append(&p, "{\"event\":\"checkpoint\",\"step\":20,\"path\":\"x\"}\n{\"event\":\"finished\",\"step\":20}\n");
        f.poll(&mut log).unwrap();
        assert_eq!(log.checkpoints, vec![20]);
        assert_eq!(log.ending, Some(Ending::Finished));
    }

    #[test]
    fn a_replaced_file_is_read_again_from_its_start() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("metrics.jsonl");
        append(&p, "{\"event\":\"step\",\"step\":10,\"loss\":2.5}\n{\"event\":\"step\",\"step\":20,\"loss\":2.4}\n{\"event\":\"stopped\",\"step\":20}\n");
        let mut f = MetricsFollower::new(&p);
        let mut log = RunLog::default();
        f.poll(&mut log).unwrap();
        assert_eq!(log.ending, Some(Ending::Stopped));
        // As a resume does: rewrite the file through a rename, then append.
        let tmp = t.path().join("x");
        std::fs::write(&tmp, "{\"event\":\"step\",\"step\":10,\"loss\":2.5}\n").unwrap();
        std::fs::rename(&tmp, &p).unwrap();
        append(&p, "{\"event\":\"start\",\"step\":10,\"max_iters\":50}\n");
        assert!(f.poll(&mut log).unwrap());
        assert_eq!(log.history.steps.len(), 1);
        assert_eq!(log.ending, Some(Ending::Open));
        assert_eq!(log.max_iters, Some(50));
    }

    #[test]
    fn garbage_and_torn_lines_are_counted_not_fatal() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("metrics.jsonl");
        append(&p, "not json\n{\"no_event\":1}\n\n{\"event\":\"nonfinite\",\"step\":7,\"what\":\"grad_norm\",\"loss\":\"NaN\",\"grad_norm\":\"inf\"}\n{\"event\":\"step\",\"step\":3,\"loss\":\"NaN\"}\n");
        let log = RunLog::read(&p).unwrap();
        assert_eq!(log.bad_lines, 2);
        assert_eq!(
            log.nonfinite.as_deref(),
            Some("non-finite grad norm at step 7")
        );
        // A NaN loss is not a point on the chart.
        assert!(log.history.steps.is_empty());
        assert_eq!(log.last_step, Some(3));
    }
}
