//! Writing a checkpoint of the trainer: weights (Hugging Face GPT-2 layout),
//! tokenizer, optimizer moments and trainer state, assembled in a temporary
//! directory and committed by `run_dir`; and reporting the result as an event.
//! Before writing, the free space is checked against the checkpoint's size; a
//! checkpoint that fails leaves nothing behind (its temporary directory is
//! removed at once) and `LATEST` keeps naming the previous complete one.

use super::super::run_dir;
use super::super::Event;
use super::{Trainer, TrainerState};
use crate::errors::one_line;
use crate::fsutil::{atomic_write, dir_size, free_space, human_bytes};
use crate::model::checkpoint::{safetensors_bytes, save_model};
use crate::model::Kernels;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Why a save is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SaveKind {
    /// Every `checkpoint_interval` steps, or asked for (`s`): a failure is
    /// tried again at the next interval.
    Interval,
    /// The run's final save (the end, a stop, a signal): a failure loses the
    /// steps since the previous checkpoint.
    Last,
}

impl<D: Kernels> Trainer<D> {
    /// Writes a complete checkpoint for the current step; returns its directory.
    pub(super) fn save_checkpoint(&mut self, elapsed: f64) -> anyhow::Result<PathBuf> {
        let ck = run_dir::checkpoints_dir(&self.run_dir);
        // A complete checkpoint of this very step holds these same weights and
        // optimizer state (e.g. a stop right after an interval checkpoint, or
        // right after resuming): keep it rather than delete and rewrite it,
        // which would leave a window where a crash loses it.
        let existing = ck.join(run_dir::step_dir_name(self.step));
        if existing.join("trainer_state.json").is_file() {
            atomic_write(
                &ck.join("LATEST"),
                run_dir::step_dir_name(self.step).as_bytes(),
            )?;
            return Ok(existing);
        }
        self.check_free_space(&ck)?;
        let tmp = run_dir::temp_checkpoint_dir(&self.run_dir, self.step)
            .with_context(|| format!("cannot create a directory in {}", ck.display()))?;
        let written = self.write_files(&tmp, elapsed).and_then(|()| {
            run_dir::commit_checkpoint(
                &self.run_dir,
                &tmp,
                self.step,
                self.cfg.train.keep_checkpoints.max(1),
            )
            .with_context(|| format!("cannot move it into place in {}", ck.display()))
        });
        if written.is_err() {
            // Nothing half-written stays behind to hold the space.
            let _ = std::fs::remove_dir_all(&tmp);
        }
        written
    }

    /// Refuses plainly when the checkpoint will not fit: it needs about the
    /// size of the previous one (or of the weights, twice their size of
    /// optimizer moments, and the tokenizer), with room for the file system's
    /// blocks.
    fn check_free_space(&self, ck: &Path) -> anyhow::Result<()> {
        let Some(free) = free_space(if ck.is_dir() { ck } else { &self.run_dir }) else {
            return Ok(());
        };
        let need = self.checkpoint_size_estimate();
        if need > free {
            anyhow::bail!(
                "needs {}, {} free on {}: free space or set train.keep_checkpoints lower",
                human_bytes(need),
                human_bytes(free),
                self.run_dir.display()
            );
        }
        Ok(())
    }

    fn checkpoint_size_estimate(&self) -> u64 {
        let previous = run_dir::latest_checkpoint(&self.run_dir)
            .map(|d| dir_size(&d))
            .unwrap_or(0);
        let tensors = self.model.cfg.n_params() as u64 * 4 * 3;
        let tokenizer = std::fs::metadata(self.run_dir.join("tokenizer.json"))
            .map(|m| m.len())
            .unwrap_or(0);
        // Headers, config.json, trainer_state.json and partly filled blocks.
        previous.max(tensors + tokenizer) + 64 * 1024
    }

    fn write_files(&self, tmp: &Path, elapsed: f64) -> anyhow::Result<()> {
        save_model(&self.model, tmp)?;
        self.tokenizer.save(&tmp.join("tokenizer.json"))?;
        let mut names = Vec::new();
        self.model.visit(|n, p| names.push((n, p.shape())));
        let mut opt_tensors = Vec::new();
        for (i, (n, shape)) in names.iter().enumerate() {
            opt_tensors.push((format!("{n}.exp_avg"), shape.clone(), self.opt.m[i].clone()));
            opt_tensors.push((
                format!("{n}.exp_avg_sq"),
                shape.clone(),
                self.opt.v[i].clone(),
            ));
        }
        let opt_path = tmp.join("optimizer.safetensors");
        atomic_write(&opt_path, &safetensors_bytes(&opt_tensors, None))
            .with_context(|| format!("cannot write {}", opt_path.display()))?;
        let st = TrainerState {
            step: self.step,
            batcher: self.batcher.state(self.cfg.seed),
            adam_t: self.opt.t,
            best_val_loss: self.best_val,
            elapsed_secs: elapsed,
            lr: self.last_lr,
        };
        // trainer_state.json last: its presence marks the directory complete.
        let st_path = tmp.join("trainer_state.json");
        atomic_write(&st_path, serde_json::to_string_pretty(&st)?.as_bytes())
            .with_context(|| format!("cannot write {}", st_path.display()))?;
        Ok(())
    }

    /// Saves (unless the weights went non-finite) and says how it went.
    /// Returns false when the run directory is gone (a `Failed` event was
    /// sent): the run cannot go on.
    pub(super) fn save_and_report(&mut self, started: Instant, kind: SaveKind) -> bool {
        if self.poisoned {
            self.send(Event::Log("not saving: the weights went non-finite; the latest checkpoint is the last good one".into()));
            return true;
        }
        if !self.check_run_dir() {
            return false;
        }
        let el = self.elapsed(started);
        match self.save_checkpoint(el) {
            Ok(path) => self.send(Event::Checkpoint {
                step: self.step,
                path,
            }),
            Err(e) => {
                let interval = self.cfg.train.checkpoint_interval;
                let next_try = (kind == SaveKind::Interval && interval > 0)
                    .then(|| (self.step / interval + 1) * interval)
                    .filter(|&n| n <= self.cfg.train.max_iters);
                let path =
                    run_dir::checkpoints_dir(&self.run_dir).join(run_dir::step_dir_name(self.step));
                self.send(Event::CheckpointFailed {
                    step: self.step,
                    path,
                    error: one_line(&e),
                    latest: run_dir::latest_checkpoint(&self.run_dir)
                        .and_then(|d| run_dir::step_of(&d)),
                    last: kind == SaveKind::Last,
                    next_try,
                });
                if !self.check_run_dir() {
                    return false;
                }
            }
        }
        true
    }

    /// Whether the run directory is still there; when it is gone, says so
    /// (a `Failed` event) and the loop ends.
    pub(super) fn check_run_dir(&self) -> bool {
        if self.run_dir.is_dir() {
            return true;
        }
        let latest = "nothing of the run is left on disk".to_string();
        self.send(Event::Failed {
            step: self.step,
            error: format!(
                "run directory {} was removed while training (at step {}); {latest}: training stopped",
                self.run_dir.display(),
                self.step
            ),
        });
        false
    }
}
