//! The binary driven as a process: training runs headless, checkpoints
//! resume exactly, generate and eval work. (Bad inputs, each failing with one
//! line, are all in `bad_inputs.rs`.)

mod common;
use common::*;
use std::fs;

/// A fresh checkpoint generates and evaluates. (Its broken variants are in
/// `bad_inputs.rs`, section checkpoints.)
#[test]
fn checkpoint_generates_and_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let out = tiny_train(&run_dir, &["--set", "train.max_iters=2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ck = run_dir.join("checkpoints/step-0000002");
    assert!(ck.join("model.safetensors").is_file());
    let out = run(&[
        "generate",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--prompt",
        "ab",
        "--max-new-tokens",
        "5",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&[
        "eval",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--batches",
        "2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["val_loss"].as_f64().unwrap() > 0.0);
    assert!(v["perplexity"].as_f64().unwrap() > 1.0);
}

#[test]
fn headless_output_is_plain_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out = tiny_train(&dir.path().join("run"), &["--set", "train.max_iters=10"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains('\x1b'), "escape sequences in piped output");
    assert!(stdout.contains("step     10/10 | loss "), "{stdout}");
    assert!(stdout.contains("eval step 10: train loss"), "{stdout}");
    assert!(stdout.contains("finished at step 10"), "{stdout}");
    let run = dir.path().join("run");
    for f in [
        "config.toml",
        "metrics.jsonl",
        "tokenizer.json",
        "checkpoints/LATEST",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "optimizer.safetensors",
        "trainer_state.json",
    ] {
        assert!(
            run.join("checkpoints/step-0000010").join(f).is_file(),
            "{f} missing"
        );
    }
}

/// A fresh run evaluates before its first step (nanoGPT's habit) unless
/// `train.eval_on_start = false`; the evaluations on the interval and at
/// the end happen either way.
#[test]
fn eval_on_start_decides_the_step_zero_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, want) in [("true", vec![0, 10, 15]), ("false", vec![10, 15])] {
        let run = dir.path().join(format!("run-{flag}"));
        let set = format!("train.eval_on_start={flag}");
        let out = tiny_train(&run, &["--set", "train.max_iters=15", "--set", &set]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let steps: Vec<usize> = stdout
            .lines()
            .filter_map(|l| l.strip_prefix("eval step "))
            .map(|l| l.split(':').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(steps, want, "eval_on_start={flag}: {stdout}");
    }
}

/// Resuming from the checkpoint at step k reproduces the uninterrupted run's
/// losses at steps k+1..k+10 exactly (same seed, same threads).
#[test]
fn resume_reproduces_losses_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let out = tiny_train(
        &a,
        &[
            "--set",
            "train.max_iters=20",
            "--set",
            "train.checkpoint_interval=10",
            "--set",
            "train.keep_checkpoints=5",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let full = step_losses(&a);
    assert_eq!(full.len(), 20);

    // The same run, interrupted after the step-10 checkpoint.
    let b = dir.path().join("b");
    fs::create_dir_all(b.join("checkpoints")).unwrap();
    for f in ["config.toml", "tokenizer.json", "metrics.jsonl"] {
        fs::copy(a.join(f), b.join(f)).unwrap();
    }
    copy_dir(
        &a.join("checkpoints/step-0000010"),
        &b.join("checkpoints/step-0000010"),
    );
    fs::write(b.join("checkpoints/LATEST"), "step-0000010").unwrap();
    let out = run(&["train", "--resume", b.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resumed = step_losses(&b);
    assert_eq!(resumed.len(), 20, "metrics after resume: {resumed:?}");
    for k in 10..20 {
        assert_eq!(resumed[k], full[k], "step {}", k + 1);
    }
}

#[test]
fn cuda_without_the_feature_is_a_clear_error() {
    if cfg!(feature = "cuda") {
        return;
    }
    let out = run(&["train", "--device", "cuda"]);
    assert_clean_error(&out, &["cuda", "--features cuda"]);
}

/// A text file trains from a token cache that `headsup cache ls` lists and
/// `headsup cache clear` removes; a second run uses the same cache file.
#[test]
fn token_cache_ls_and_clear() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let with_cache = |args: &[&str]| {
        bin()
            .env("HEADSUP_CACHE_DIR", &cache)
            .args(args)
            .output()
            .expect("running headsup")
    };
    let data = fixture("small.txt");
    for run in ["a", "b"] {
        let mut args = tiny_train_args(&dir.path().join(run), &["--set", "train.max_iters=2"]);
        args.extend(["--data".into(), data.display().to_string()]);
        let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let out = with_cache(&refs);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = with_cache(&["cache", "ls"]);
    let ls = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{ls}");
    assert!(ls.contains(&cache.display().to_string()), "{ls}");
    assert!(ls.contains(" tokens "), "{ls}");
    // The ids, their record index and statistics (a text file is its own corpus).
    assert!(
        ls.contains("record index") && ls.contains("statistics"),
        "{ls}"
    );
    assert!(ls.contains("3 files"), "{ls}");
    let out = with_cache(&["cache", "clear"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("removed 3 files"), "{said}");
    let out = with_cache(&["cache", "ls"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 files"));
}
