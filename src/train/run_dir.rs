//! The run directory: `config.toml` (the config as used), `metrics.jsonl`,
//! `tokenizer.json`, and `checkpoints/step-NNNNNNN/` (each a Hugging Face GPT-2
//! directory plus optimizer and trainer state), with `checkpoints/LATEST`
//! naming the newest complete one. A checkpoint is written into a temporary
//! directory and renamed into place only when every file is on disk.

use crate::fsutil::{atomic_write, sync_dir};
use std::fs;
use std::path::{Path, PathBuf};

pub const CHECKPOINTS: &str = "checkpoints";

pub fn checkpoints_dir(run: &Path) -> PathBuf {
    run.join(CHECKPOINTS)
}

pub fn step_dir_name(step: usize) -> String {
    format!("step-{step:07}")
}

/// Moves a finished temporary checkpoint directory into place and points
/// `LATEST` at it; only then removes older checkpoints beyond `keep`. When
/// `LATEST` cannot be written (a full disk), the new directory is removed
/// again, so `LATEST` and the newest complete checkpoint stay the previous
/// one and its space comes back.
pub fn commit_checkpoint(
    run: &Path,
    tmp: &Path,
    step: usize,
    keep: usize,
) -> std::io::Result<PathBuf> {
    let ck = checkpoints_dir(run);
    let dst = ck.join(step_dir_name(step));
    if dst.exists() {
        fs::remove_dir_all(&dst)?;
    }
    sync_dir(tmp);
    fs::rename(tmp, &dst)?;
    sync_dir(&ck);
    if let Err(e) = atomic_write(&ck.join("LATEST"), step_dir_name(step).as_bytes()) {
        remove_checkpoint(&dst);
        return Err(e);
    }
    let mut all = list_checkpoints(run);
    all.retain(|(s, _)| *s != step);
    let keep_old = keep.saturating_sub(1);
    if all.len() > keep_old {
        for (_, p) in &all[..all.len() - keep_old] {
            remove_checkpoint(p);
        }
    }
    Ok(dst)
}

/// Removes a checkpoint directory, its completeness marker first, so that a
/// removal cut short by a crash never leaves a "complete" checkpoint with
/// missing files.
fn remove_checkpoint(dir: &Path) {
    let marker = dir.join("trainer_state.json");
    if marker.exists() && fs::remove_file(&marker).is_err() {
        return;
    }
    sync_dir(dir);
    let _ = fs::remove_dir_all(dir);
}

/// Removes what an interrupted run can leave behind: `.tmp-step-*` directories
/// of checkpoints being written, step directories without their
/// `trainer_state.json` marker (a removal cut short), and the temporary files
/// of [`atomic_write`] (`.NAME.tmpPID`). Call before training starts in `run`;
/// best effort.
pub fn remove_stale_temps(run: &Path) {
    // Only the files headsup itself writes there, never a user's own.
    let is_atomic_tmp = |name: &str| {
        ["LATEST", "metrics.jsonl", "config.toml", "tokenizer.json"]
            .iter()
            .any(|f| {
                name.strip_prefix('.')
                    .and_then(|n| n.strip_prefix(f))
                    .and_then(|n| n.strip_prefix(".tmp"))
                    .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
            })
    };
    for dir in [run.to_path_buf(), checkpoints_dir(run)] {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
            let half_written = name.starts_with(".tmp-step-")
                || (name.starts_with("step-") && !path.join("trainer_state.json").exists());
            if dir != run && is_dir && half_written {
                let _ = fs::remove_dir_all(&path);
            } else if !is_dir && is_atomic_tmp(&name) {
                let _ = fs::remove_file(&path);
            }
        }
    }
}

/// A fresh temporary directory for a checkpoint being written. The run
/// directory itself must exist (it is never created again here: a run
/// directory removed while training is an error, not a new empty run).
pub fn temp_checkpoint_dir(run: &Path, step: usize) -> std::io::Result<PathBuf> {
    let ck = checkpoints_dir(run);
    if !ck.is_dir() {
        fs::create_dir(&ck)?;
    }
    let tmp = ck.join(format!(".tmp-{}", step_dir_name(step)));
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    fs::create_dir_all(&tmp)?;
    Ok(tmp)
}

/// The step a checkpoint directory (`step-NNNNNNN`) holds.
pub fn step_of(dir: &Path) -> Option<usize> {
    dir.file_name()?
        .to_str()?
        .strip_prefix("step-")?
        .parse()
        .ok()
}

/// Complete checkpoints, oldest first.
pub fn list_checkpoints(run: &Path) -> Vec<(usize, PathBuf)> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(checkpoints_dir(run)) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(n) = name
                .strip_prefix("step-")
                .and_then(|s| s.parse::<usize>().ok())
            {
                if e.path().join("trainer_state.json").is_file() {
                    out.push((n, e.path()));
                }
            }
        }
    }
    out.sort();
    out
}

/// The newest complete checkpoint: the one `LATEST` names if it is complete,
/// else the highest-numbered complete one.
pub fn latest_checkpoint(run: &Path) -> Option<PathBuf> {
    let ck = checkpoints_dir(run);
    if let Ok(name) = fs::read_to_string(ck.join("LATEST")) {
        let name = name.trim();
        let p = ck.join(name);
        if name.starts_with("step-")
            && !name.contains(['/', '\\'])
            && p.join("trainer_state.json").is_file()
        {
            return Some(p);
        }
    }
    list_checkpoints(run).pop().map(|(_, p)| p)
}

/// Reads `metrics.jsonl`, skipping (and counting) lines that do not parse,
/// such as a last line torn by a crash.
pub fn read_metrics(path: &Path) -> std::io::Result<(Vec<serde_json::Value>, usize)> {
    let text = fs::read_to_string(path)?;
    let mut good = Vec::new();
    let mut bad = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str(line) {
            Ok(v) => good.push(v),
            Err(_) => bad += 1,
        }
    }
    Ok((good, bad))
}

/// On resume from `step`, drops metrics lines past it (they belong to work
/// that was lost) and torn lines, so the file reads as one continuous run.
pub fn truncate_metrics_after(run: &Path, step: usize) -> std::io::Result<usize> {
    let path = run.join("metrics.jsonl");
    if !path.exists() {
        return Ok(0);
    }
    let (lines, bad) = read_metrics(&path)?;
    let kept: Vec<String> = lines
        .into_iter()
        .filter(|v| {
            v.get("step")
                .and_then(|s| s.as_u64())
                .is_none_or(|s| s as usize <= step)
        })
        .map(|v| v.to_string())
        .collect();
    let mut text = kept.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    atomic_write(&path, text.as_bytes())?;
    Ok(bad)
}
