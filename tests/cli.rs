//! The binary driven as a process: bad inputs fail cleanly with one line,
//! training runs headless, checkpoints resume exactly, generate and eval work.

mod common;
use common::*;
use std::fs;

fn tiny_train(out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args: Vec<String> = vec!["train".into(), "--out".into(), out.display().to_string()];
    args.extend(TINY.iter().map(|s| s.to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    run(&refs)
}

#[test]
fn missing_data_file() {
    let out = run(&["train", "--data", "/nonexistent/corpus.txt"]);
    assert_clean_error(&out, &["/nonexistent/corpus.txt", "no such file"]);
}

#[test]
fn empty_data_file() {
    let p = fixture("empty.txt");
    let out = run(&["train", "--data", p.to_str().unwrap()]);
    assert_clean_error(&out, &["empty.txt", "empty"]);
}

#[test]
fn corpus_shorter_than_a_block() {
    let p = fixture("short.txt");
    let out = run(&["train", "--data", p.to_str().unwrap()]);
    assert_clean_error(&out, &["short.txt", "block_size"]);
}

#[test]
fn invalid_utf8() {
    let p = fixture("latin1.txt");
    let out = run(&["train", "--data", p.to_str().unwrap()]);
    assert_clean_error(&out, &["latin1.txt", "UTF-8"]);
}

#[test]
fn unknown_config_key() {
    let p = fixture("unknown_key.toml");
    let out = run(&["train", "--config", p.to_str().unwrap()]);
    assert_clean_error(&out, &["unknown_key.toml", "max_iterz"]);
}

#[test]
fn wrong_value_type() {
    let p = fixture("wrong_type.toml");
    let out = run(&["train", "--config", p.to_str().unwrap()]);
    assert_clean_error(&out, &["wrong_type.toml", "max_iters"]);
}

#[test]
fn malformed_toml() {
    let p = fixture("malformed.toml");
    let out = run(&["train", "--config", p.to_str().unwrap()]);
    assert_clean_error(&out, &["malformed.toml"]);
}

#[test]
fn missing_config_file() {
    let out = run(&["train", "--config", "/nonexistent/x.toml"]);
    assert_clean_error(&out, &["/nonexistent/x.toml"]);
}

#[test]
fn set_with_unknown_key() {
    let out = run(&["train", "--set", "train.nope=3"]);
    assert_clean_error(&out, &["--set", "nope"]);
    let out = run(&["train", "--set", "nosection.x=3"]);
    assert_clean_error(&out, &["--set", "nosection"]);
    let out = run(&["train", "--set", "train.max_iters"]);
    assert_clean_error(&out, &["--set", "key=value"]);
}

#[test]
fn checkpoint_errors_mismatch_and_truncation() {
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

    // Shapes that disagree with config.json.
    let bad = dir.path().join("mismatch");
    copy_dir(&ck, &bad);
    let cfg = fs::read_to_string(bad.join("config.json")).unwrap();
    fs::write(
        bad.join("config.json"),
        cfg.replace("\"n_embd\": 16", "\"n_embd\": 32"),
    )
    .unwrap();
    let out = run(&[
        "generate",
        "--checkpoint",
        bad.to_str().unwrap(),
        "--prompt",
        "ab",
    ]);
    assert_clean_error(&out, &["model.safetensors", "shape"]);

    // A truncated weights file.
    let trunc = dir.path().join("truncated");
    copy_dir(&ck, &trunc);
    let bytes = fs::read(trunc.join("model.safetensors")).unwrap();
    fs::write(trunc.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    let out = run(&[
        "generate",
        "--checkpoint",
        trunc.to_str().unwrap(),
        "--prompt",
        "ab",
    ]);
    assert_clean_error(&out, &["model.safetensors", "truncated"]);

    // Not a checkpoint at all.
    let out = run(&["generate", "--checkpoint", "/nonexistent/ck"]);
    assert_clean_error(&out, &["/nonexistent/ck"]);

    // The good one generates and evaluates.
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

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
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
