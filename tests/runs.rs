//! `headsup runs` as a process: a finished run, a SIGKILLed one (crashed,
//! with the step of its newest checkpoint), a missing `--dir`, no runs.

mod common;

use common::proc::Running;
use common::*;
use std::path::Path;
use std::time::Duration;

fn runs(xdg: &Path, args: &[&str]) -> std::process::Output {
    bin()
        .env("XDG_DATA_HOME", xdg)
        .arg("runs")
        .args(args)
        .output()
        .expect("running headsup runs")
}

#[test]
fn lists_finished_and_crashed_runs_with_their_steps() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("runs");
    let xdg = t.path().join("xdg");
    let done = root.join("done");
    let args = tiny_train_args(&done, &["--set", "train.max_iters=20"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let killed = root.join("killed");
    let mut p = Running::start(&tiny_train_args(
        &killed,
        &[
            "--set",
            "train.max_iters=1000000",
            "--set",
            "train.checkpoint_interval=10",
        ],
    ));
    let line = p
        .wait_for(Duration::from_secs(120), |l| {
            l.starts_with("checkpoint step 20:")
        })
        .expect("a checkpoint at step 20");
    assert!(line.contains("step-0000020"), "{line}");
    p.sigkill();

    let out = runs(&xdg, &["--dir", root.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("BEST VAL"),
        "{stdout}"
    );
    let row = |name: &str| {
        *lines
            .iter()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing: {stdout}"))
    };
    let d = row("done");
    assert!(d.contains("finished") && d.contains("20/20"), "{d}");
    assert!(d.contains(&done.display().to_string()), "{d}");
    let k = row("killed");
    // Killed after checkpoint 20: crashed, its newest checkpoint at 20 or later.
    assert!(k.contains("crashed (checkpoint "), "{k}");
    assert!(k.contains("/1000000"), "{k}");
    // The newest activity first.
    assert!(lines[1].starts_with("killed"), "{stdout}");
}

#[test]
fn a_missing_dir_is_one_clean_error_and_no_runs_is_said() {
    let t = tempfile::tempdir().unwrap();
    let out = runs(t.path(), &["--dir", "/nonexistent/headsup-runs"]);
    assert_clean_error(&out, &["/nonexistent/headsup-runs", "no such directory"]);
    let out = runs(t.path(), &[]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("no runs under "), "{stdout}");
}
