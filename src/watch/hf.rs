//! A Hugging Face `Trainer` output directory as a run to watch: the
//! `log_history` of `trainer_state.json` (Trainer writes one into every
//! `checkpoint-N/`, and at the top level only when `save_state()` is called)
//! gives loss, learning rate and gradient norm by step and `eval_loss` per
//! evaluation; `checkpoint-N/` directories with a GPT-2 `config.json` and
//! `model.safetensors` give the weights to probe.

use super::history::{EvalPoint, History, StepPoint};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// What an output directory says so far.
#[derive(Debug, Clone, PartialEq)]
pub struct HfRun {
    pub history: History,
    /// `global_step` of the newest trainer state.
    pub global_step: usize,
    /// `max_steps`, when Trainer knew it.
    pub max_steps: Option<usize>,
    /// The trainer_state.json the history came from.
    pub state_file: PathBuf,
}

/// Whether `dir` looks like a Trainer output directory.
pub fn is_output_dir(dir: &Path) -> bool {
    dir.join("trainer_state.json").is_file() || !checkpoint_dirs(dir).is_empty()
}

/// The `checkpoint-N` directories, oldest first (any content).
fn checkpoint_dirs(dir: &Path) -> Vec<(usize, PathBuf)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(n) = name
                .strip_prefix("checkpoint-")
                .and_then(|s| s.parse::<usize>().ok())
            {
                if e.path().is_dir() {
                    out.push((n, e.path()));
                }
            }
        }
    }
    out.sort();
    out
}

/// Checkpoints with weights headsup can load (config.json and
/// model.safetensors), oldest first.
pub fn checkpoints(dir: &Path) -> Vec<(usize, PathBuf)> {
    checkpoint_dirs(dir)
        .into_iter()
        .filter(|(_, p)| p.join("config.json").is_file() && p.join("model.safetensors").is_file())
        .collect()
}

/// Reads the newest trainer state of an output directory: the top-level
/// one or the newest checkpoint's, whichever has the higher `global_step`.
pub fn read(dir: &Path) -> anyhow::Result<HfRun> {
    let mut candidates: Vec<PathBuf> = checkpoint_dirs(dir)
        .into_iter()
        .map(|(_, p)| p.join("trainer_state.json"))
        .filter(|p| p.is_file())
        .collect();
    let top = dir.join("trainer_state.json");
    if top.is_file() {
        candidates.push(top);
    }
    if candidates.is_empty() {
        anyhow::bail!(
            "{}: no trainer_state.json at the top or in a checkpoint-N/ directory; is it a transformers Trainer output_dir?",
            dir.display()
        );
    }
    let mut best: Option<HfRun> = None;
    let mut last_err = None;
    // Newest checkpoint first; a torn file (being written) falls back to an older one.
    for path in candidates.iter().rev() {
        match read_state(path) {
            Ok(r) => {
                if best.as_ref().is_none_or(|b| r.global_step > b.global_step) {
                    best = Some(r);
                }
            }
            Err(e) => last_err = Some(e),
        }
    }
    best.ok_or_else(|| {
        last_err.unwrap_or_else(|| anyhow::anyhow!("{}: no trainer state", dir.display()))
    })
}

fn num(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(Value::as_f64)
}

/// Reads one `trainer_state.json`.
pub fn read_state(path: &Path) -> anyhow::Result<HfRun> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: not JSON ({e}); is it being written? try again",
            path.display()
        )
    })?;
    let log = v
        .get("log_history")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{}: no log_history array; not a transformers trainer state",
                path.display()
            )
        })?;
    let mut history = History::default();
    for entry in log {
        let Some(step) = num(entry, "step") else {
            continue;
        };
        if let Some(loss) = num(entry, "loss") {
            history.push_step(StepPoint {
                step,
                loss: loss as f32,
                lr: num(entry, "learning_rate").unwrap_or(0.0),
                grad_norm: num(entry, "grad_norm").unwrap_or(0.0) as f32,
                tokens_per_sec: 0.0,
            });
        }
        if let Some(val) = num(entry, "eval_loss") {
            history.push_eval(EvalPoint {
                step: step as usize,
                train_loss: None,
                val_loss: val as f32,
                masked: None,
            });
        }
    }
    Ok(HfRun {
        history,
        global_step: num(&v, "global_step").unwrap_or(0.0) as usize,
        max_steps: num(&v, "max_steps").map(|m| m as usize).filter(|&m| m > 0),
        state_file: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf-trainer")
    }

    #[test]
    fn reads_the_fixture_made_by_transformers() {
        let dir = fixture();
        assert!(is_output_dir(&dir));
        let run = read(&dir).unwrap();
        assert_eq!(run.global_step, 12);
        assert_eq!(run.max_steps, Some(12));
        assert_eq!(run.history.steps.len(), 12);
        assert_eq!(run.history.steps[0].step, 1.0);
        assert!(run
            .history
            .steps
            .iter()
            .all(|p| p.loss > 2.0 && p.loss < 3.0));
        assert!(run
            .history
            .steps
            .iter()
            .any(|p| p.lr > 0.0 && p.grad_norm > 0.0));
        let evals: Vec<usize> = run.history.evals.iter().map(|e| e.step).collect();
        assert_eq!(evals, vec![4, 8, 12]);
        let ck = checkpoints(&dir);
        assert_eq!(ck.len(), 1);
        assert_eq!(ck[0].0, 12);
    }

    #[test]
    fn a_checkpoint_state_newer_than_the_top_level_one_wins() {
        let t = tempfile::tempdir().unwrap();
        let write = |p: &Path, step: usize| {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            let log: Vec<Value> = (1..=step)
                .map(|s| serde_json::json!({"step": s, "loss": 1.0, "learning_rate": 1e-3}))
                .collect();
            std::fs::write(
                p,
                serde_json::json!({"global_step": step, "max_steps": 100, "log_history": log})
                    .to_string(),
            )
            .unwrap();
        };
        write(&t.path().join("trainer_state.json"), 10);
        write(&t.path().join("checkpoint-20/trainer_state.json"), 20);
        // Being written: torn.
        std::fs::create_dir_all(t.path().join("checkpoint-30")).unwrap();
        std::fs::write(t.path().join("checkpoint-30/trainer_state.json"), "{\"glo").unwrap();
        let run = read(t.path()).unwrap();
        assert_eq!(run.global_step, 20);
        assert_eq!(run.history.last_step(), Some(20));
        // No weights in them: nothing to probe.
        assert!(checkpoints(t.path()).is_empty());
    }

    #[test]
    fn a_directory_without_trainer_state_says_what_it_expected() {
        let t = tempfile::tempdir().unwrap();
        let e = read(t.path()).unwrap_err().to_string();
        assert!(e.contains("no trainer_state.json"), "{e}");
        std::fs::write(t.path().join("trainer_state.json"), "{\"x\":1}").unwrap();
        let e = read(t.path()).unwrap_err().to_string();
        assert!(e.contains("no log_history"), "{e}");
    }
}
