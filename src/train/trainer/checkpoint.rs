//! Writing a checkpoint of the trainer: weights (Hugging Face GPT-2 layout),
//! tokenizer, optimizer moments and trainer state, assembled in a temporary
//! directory and committed by `run_dir`; and reporting the result as an event.

use super::super::run_dir;
use super::super::Event;
use super::{Trainer, TrainerState};
use crate::fsutil::atomic_write;
use crate::model::checkpoint::{safetensors_bytes, save_model};
use crate::model::Kernels;
use std::path::PathBuf;
use std::time::Instant;

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
        let tmp = run_dir::temp_checkpoint_dir(&self.run_dir, self.step)?;
        save_model(&self.model, &tmp)?;
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
        atomic_write(
            &tmp.join("optimizer.safetensors"),
            &safetensors_bytes(&opt_tensors, None),
        )?;
        let st = TrainerState {
            step: self.step,
            batcher: self.batcher.state(self.cfg.seed),
            adam_t: self.opt.t,
            best_val_loss: self.best_val,
            elapsed_secs: elapsed,
            lr: self.last_lr,
        };
        // trainer_state.json last: its presence marks the directory complete.
        atomic_write(
            &tmp.join("trainer_state.json"),
            serde_json::to_string_pretty(&st)?.as_bytes(),
        )?;
        Ok(run_dir::commit_checkpoint(
            &self.run_dir,
            &tmp,
            self.step,
            self.cfg.train.keep_checkpoints.max(1),
        )?)
    }

    /// Saves (unless the weights went non-finite) and says how it went.
    pub(super) fn save_and_report(&mut self, started: Instant) {
        if self.poisoned {
            self.send(Event::Log("not saving: the weights went non-finite; the latest checkpoint is the last good one".into()));
            return;
        }
        let el = self.elapsed(started);
        match self.save_checkpoint(el) {
            Ok(path) => self.send(Event::Checkpoint {
                step: self.step,
                path,
            }),
            Err(e) => self.send(Event::Log(format!("checkpoint failed: {e:#}"))),
        }
    }
}
