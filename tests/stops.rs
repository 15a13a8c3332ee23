//! Clean stops (SIGTERM, SIGHUP, SIGINT: exit 0, a checkpoint of the step
//! reached) and the non-finite guard (exit non-zero, one line naming the step,
//! the latest checkpoint still good).

mod common;
use common::proc::Running;
use common::*;
use headsup::train::run_dir::latest_checkpoint;
use headsup::train::trainer::TrainerState;
use std::path::Path;
use std::time::Duration;

fn state(ck: &Path) -> TrainerState {
    serde_json::from_str(&std::fs::read_to_string(ck.join("trainer_state.json")).unwrap()).unwrap()
}

fn stop_with(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut child = Running::start(&tiny_train_args(
        &run,
        &[
            "--set",
            "train.max_iters=1000000",
            "--set",
            "train.checkpoint_interval=0",
        ],
    ));
    child
        .wait_for(Duration::from_secs(120), |l| l.starts_with("step "))
        .expect("a first step line");
    child.signal(signal);
    let (status, lines, stderr) = child.finish(Duration::from_secs(120));
    assert!(
        status.success(),
        "SIG{signal}: {status:?}; stderr: {stderr}"
    );
    let last = lines.last().cloned().unwrap_or_default();
    let n: usize = last
        .strip_prefix("stopped at step ")
        .and_then(|r| r.strip_suffix(" (checkpoint saved)"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("SIG{signal}: last line `{last}`"));
    assert!(n >= 1);
    let ck = latest_checkpoint(&run).expect("a checkpoint");
    assert_eq!(ck, run.join("checkpoints").join(format!("step-{n:07}")));
    assert_eq!(state(&ck).step, n);
    headsup::train::load_cpu_model(&ck).unwrap();
    assert!(stderr.trim().is_empty(), "SIG{signal}: stderr: {stderr}");
}

#[test]
fn sigterm_stops_cleanly() {
    stop_with("TERM");
}

#[test]
fn sighup_stops_cleanly() {
    stop_with("HUP");
}

#[test]
fn sigint_stops_cleanly() {
    stop_with("INT");
}

/// Trains 4 good steps, then resumes with a learning rate that blows up.
fn blow_up(lr: f64) -> (std::path::PathBuf, tempfile::TempDir, std::process::Output) {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let args = tiny_train_args(
        &run,
        &[
            "--set",
            "train.max_iters=4",
            "--set",
            "train.checkpoint_interval=1",
        ],
    );
    let out = common::run(&args.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut cfg = headsup::config::Config::load(&run.join("config.toml")).unwrap();
    cfg.train.max_iters = 50;
    cfg.train.learning_rate = lr;
    cfg.train.min_lr = lr;
    cfg.train.warmup_iters = 0;
    std::fs::write(run.join("config.toml"), cfg.to_toml_string()).unwrap();
    let out = common::run(&["train", "--resume", run.to_str().unwrap()]);
    (run, dir, out)
}

fn check_guard(lr: f64, what: &str) {
    let (run, _dir, out) = blow_up(lr);
    assert_clean_error(&out, &["non-finite", what, "at step "]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let bad_step: usize = stderr
        .split("at step ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no step in {stderr}"));
    assert!(bad_step >= 5, "{stderr}");
    let ck = latest_checkpoint(&run).unwrap();
    let st = state(&ck);
    assert!(
        st.step < bad_step,
        "checkpoint step {} not before bad step {bad_step}",
        st.step
    );
    let weights =
        headsup::model::checkpoint::read_safetensors(&ck.join("model.safetensors")).unwrap();
    for (name, (_, data)) in &weights {
        assert!(
            data.iter().all(|x| x.is_finite()),
            "{name} is not finite in {}",
            ck.display()
        );
    }
    let opt =
        headsup::model::checkpoint::read_safetensors(&ck.join("optimizer.safetensors")).unwrap();
    for (name, (_, data)) in &opt {
        assert!(data.iter().all(|x| x.is_finite()), "{name} is not finite");
    }
    // It still generates.
    common::assert_generates(&ck);
}

/// lr 1e30: the first update gives huge but finite weights, the next loss is
/// not finite.
#[test]
fn nonfinite_loss_stops_with_an_error_and_keeps_the_good_checkpoint() {
    check_guard(1e30, "non-finite");
}

/// lr 1e39 (infinite as f32): loss and gradients are finite, but the update itself overflows
/// the weights; it must not be applied nor saved.
#[test]
fn nonfinite_weights_are_never_applied_nor_saved() {
    check_guard(1e39, "weights");
}
