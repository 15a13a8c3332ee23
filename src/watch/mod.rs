//! Runs read from disk, with no trainer process: a headsup run directory
//! (`metrics.jsonl`, followed as it grows; `checkpoints/`) or a Hugging Face
//! Trainer output directory (`trainer_state.json`, `checkpoint-N/`), as a
//! bounded loss/eval history and the newest checkpoint to probe locally.

pub mod hf;
pub mod history;
pub mod local;
pub mod metrics;
pub mod replay;

pub use history::{EvalPoint, History, StepPoint};
pub use metrics::{Ending, MetricsFollower, RunLog};

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What kind of directory a watched run is.
#[derive(Debug)]
enum Kind {
    Headsup {
        follower: MetricsFollower,
        log: RunLog,
    },
    Hf {
        run: Option<hf::HfRun>,
        /// mtime of the state file read last, to re-read only on change.
        seen: Option<(PathBuf, SystemTime)>,
    },
}

/// A run on disk, followed by polling.
#[derive(Debug)]
pub struct Watched {
    pub dir: PathBuf,
    kind: Kind,
}

impl Watched {
    /// Opens `dir` as a headsup run directory or a Trainer output directory;
    /// anything else is a one-line error saying what was expected.
    pub fn open(dir: &Path) -> anyhow::Result<Watched> {
        if !dir.is_dir() {
            anyhow::bail!(
                "run {}: no such directory; give a run directory (see `headsup runs`) or a transformers output_dir",
                dir.display()
            );
        }
        let kind = if dir.join("metrics.jsonl").is_file() || dir.join("config.toml").is_file() {
            Kind::Headsup {
                follower: MetricsFollower::new(&dir.join("metrics.jsonl")),
                log: RunLog::default(),
            }
        } else if hf::is_output_dir(dir) {
            Kind::Hf {
                run: None,
                seen: None,
            }
        } else {
            anyhow::bail!(
                "run {}: neither a headsup run (no metrics.jsonl or config.toml) nor a transformers output_dir (no trainer_state.json or checkpoint-N/)",
                dir.display()
            );
        };
        let mut w = Watched {
            dir: dir.to_path_buf(),
            kind,
        };
        w.poll()?;
        Ok(w)
    }

    /// Reads what changed on disk; returns whether the history changed.
    pub fn poll(&mut self) -> anyhow::Result<bool> {
        match &mut self.kind {
            Kind::Headsup { follower, log } => Ok(follower.poll(log)?),
            Kind::Hf { run, seen } => {
                let newest = newest_state_file(&self.dir);
                if newest.is_some() && newest == *seen {
                    return Ok(false);
                }
                match hf::read(&self.dir) {
                    Ok(r) => {
                        *run = Some(r);
                        *seen = newest;
                        Ok(true)
                    }
                    // A state being written: keep the last good one.
                    Err(e) if run.is_none() => Err(e),
                    Err(_) => Ok(false),
                }
            }
        }
    }

    pub fn history(&self) -> Option<&History> {
        match &self.kind {
            Kind::Headsup { log, .. } => Some(&log.history),
            Kind::Hf { run, .. } => run.as_ref().map(|r| &r.history),
        }
    }

    /// The headsup run log, for a headsup run.
    pub fn run_log(&self) -> Option<&RunLog> {
        match &self.kind {
            Kind::Headsup { log, .. } => Some(log),
            Kind::Hf { .. } => None,
        }
    }

    /// The planned number of steps, when known.
    pub fn max_steps(&self) -> Option<usize> {
        match &self.kind {
            Kind::Headsup { log, .. } => log.max_iters,
            Kind::Hf { run, .. } => run.as_ref().and_then(|r| r.max_steps),
        }
    }

    /// The newest checkpoint with weights to probe, and its step.
    pub fn newest_checkpoint(&self) -> Option<(usize, PathBuf)> {
        newest_checkpoint(&self.dir)
    }
}

/// The newest loadable checkpoint of a headsup run or a Trainer output dir.
pub fn newest_checkpoint(dir: &Path) -> Option<(usize, PathBuf)> {
    if let Some(p) = crate::train::run_dir::latest_checkpoint(dir) {
        let step = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("step-"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        return Some((step, p));
    }
    hf::checkpoints(dir).pop()
}

/// The trainer_state.json files of an output dir that could hold the newest
/// state, with the newest modification time among them.
fn newest_state_file(dir: &Path) -> Option<(PathBuf, SystemTime)> {
    let mut files = vec![dir.join("trainer_state.json")];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with("checkpoint-") {
                files.push(e.path().join("trainer_state.json"));
            }
        }
    }
    files
        .into_iter()
        .filter_map(|p| {
            let t = std::fs::metadata(&p).ok()?.modified().ok()?;
            Some((p, t))
        })
        .max_by_key(|(_, t)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_the_transformers_fixture_and_finds_its_checkpoint() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf-trainer");
        let mut w = Watched::open(&dir).unwrap();
        assert_eq!(w.history().unwrap().steps.len(), 12);
        assert_eq!(w.max_steps(), Some(12));
        assert!(!w.poll().unwrap(), "nothing changed");
        let (step, p) = w.newest_checkpoint().unwrap();
        assert_eq!(step, 12);
        assert!(p.ends_with("checkpoint-12"));
    }

    #[test]
    fn not_a_run_says_what_was_expected() {
        let t = tempfile::tempdir().unwrap();
        let e = Watched::open(t.path()).unwrap_err().to_string();
        assert!(e.contains("neither a headsup run"), "{e}");
        let e = Watched::open(&t.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no such directory"), "{e}");
    }
}
