//! Helpers for driving the real binary as a process.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_headsup"));
    c.env("NO_COLOR", "1");
    c
}

/// Settings for a model small enough to train in a blink.
pub const TINY: &[&str] = &[
    "--set",
    "model.n_layer=1",
    "--set",
    "model.n_head=2",
    "--set",
    "model.n_embd=16",
    "--set",
    "model.block_size=16",
    "--set",
    "train.batch_size=4",
    "--set",
    "train.eval_iters=2",
    "--set",
    "train.eval_interval=10",
    "--set",
    "train.log_interval=1",
    "--set",
    "train.threads=1",
    "--set",
    "data.synthetic_records=300",
];

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("running headsup")
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Asserts a clean failure: non-zero exit, one `error:` line on stderr that
/// mentions every `needle`, and no panic.
pub fn assert_clean_error(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {stderr}"
    );
    assert_ne!(
        out.status.code(),
        Some(101),
        "exit code 101 means a panic: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "panicked: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    for n in needles {
        assert!(lines[0].contains(n), "`{n}` missing from: {stderr}");
    }
}

/// Losses by step from a run's metrics.jsonl.
pub fn step_losses(run: &Path) -> Vec<(u64, f64)> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).expect("metrics.jsonl");
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "step")
        .map(|v| (v["step"].as_u64().unwrap(), v["loss"].as_f64().unwrap()))
        .collect()
}

pub mod proc;
pub mod required;

/// `train --out RUN` with the TINY settings and `extra`, as owned args.
pub fn tiny_train_args(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec!["train".into(), "--out".into(), out.display().to_string()];
    args.extend(TINY.iter().map(|s| s.to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Runs `train --out RUN` with the TINY settings and `extra`.
pub fn tiny_train(out: &Path, extra: &[&str]) -> Output {
    let args = tiny_train_args(out, extra);
    let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    run(&refs)
}

/// Copies the files of directory `from` (not recursive: a checkpoint) into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Asserts that `headsup generate` runs on checkpoint `ck`, as a user would.
pub fn assert_generates(ck: &Path) {
    let ck = ck.to_str().expect("UTF-8 path");
    let out = run(&["generate", "--checkpoint", ck, "--max-new-tokens", "3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
