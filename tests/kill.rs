//! Kill anywhere: `headsup train` is SIGKILLed at random moments (seeded),
//! again and again on one run, resuming each time. After every kill the run
//! must still have a complete, loadable latest checkpoint, `LATEST` must never
//! name a temporary directory, and `metrics.jsonl` must read.

mod common;
use common::proc::Running;
use common::*;
use headsup::train::run_dir::{latest_checkpoint, read_metrics};
use headsup::train::trainer::TrainerState;
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::time::{Duration, Instant};

const KILLS: usize = 24;
const SEED: u64 = 0x6b696c6c;

/// Everything a kill must leave intact; returns the checkpoint's step.
fn check_run(run: &Path, kill: usize) -> usize {
    let ck_dir = run.join("checkpoints");
    let latest = latest_checkpoint(run)
        .unwrap_or_else(|| panic!("kill {kill}: no complete checkpoint left"));
    let name = std::fs::read_to_string(ck_dir.join("LATEST"))
        .unwrap_or_else(|e| panic!("kill {kill}: LATEST unreadable: {e}"));
    let name = name.trim();
    assert!(
        name.starts_with("step-") && !name.contains("tmp"),
        "kill {kill}: LATEST names `{name}`"
    );
    assert!(
        ck_dir.join(name).join("trainer_state.json").is_file(),
        "kill {kill}: LATEST names an incomplete checkpoint {name}"
    );
    assert_eq!(latest, ck_dir.join(name), "kill {kill}");
    // Loads: weights (every tensor checked), tokenizer, optimizer, state.
    let model =
        headsup::train::load_cpu_model(&latest).unwrap_or_else(|e| panic!("kill {kill}: {e}"));
    let tok = headsup::tokenizer::Tokenizer::load(&latest.join("tokenizer.json"))
        .unwrap_or_else(|e| panic!("kill {kill}: {e}"));
    assert_eq!(tok.vocab_size(), model.cfg.vocab_size);
    headsup::model::checkpoint::read_safetensors(&latest.join("optimizer.safetensors"))
        .unwrap_or_else(|e| panic!("kill {kill}: {e}"));
    let st: TrainerState =
        serde_json::from_str(&std::fs::read_to_string(latest.join("trainer_state.json")).unwrap())
            .unwrap_or_else(|e| panic!("kill {kill}: trainer_state.json: {e}"));
    // metrics.jsonl reads; at most the last line is torn.
    let (lines, bad) = read_metrics(&run.join("metrics.jsonl"))
        .unwrap_or_else(|e| panic!("kill {kill}: metrics.jsonl: {e}"));
    assert!(bad <= 1, "kill {kill}: {bad} torn metrics lines");
    assert!(!lines.is_empty(), "kill {kill}: metrics.jsonl is empty");
    st.step
}

fn temp_dirs(run: &Path) -> Vec<String> {
    std::fs::read_dir(run.join("checkpoints"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".tmp-"))
                .collect()
        })
        .unwrap_or_default()
}

fn temp_entries(run: &Path) -> usize {
    temp_dirs(run).len()
}

#[test]
fn sigkill_anywhere_loses_nothing() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(SEED);
    let first = tiny_train_args(
        &run,
        &[
            "--set",
            "train.max_iters=1000000",
            "--set",
            "train.checkpoint_interval=2",
            "--set",
            "train.keep_checkpoints=2",
        ],
    );
    let resume: Vec<String> = vec!["train".into(), "--resume".into(), run.display().to_string()];

    // The first run: wait for its first checkpoint, then kill at a random moment.
    let mut child = Running::start(&first);
    child
        .wait_for(Duration::from_secs(120), |l| {
            l.starts_with("checkpoint step")
        })
        .expect("first checkpoint line");
    std::thread::sleep(Duration::from_millis(rng.gen_range(0..300)));
    child.sigkill();
    let mut step = check_run(&run, 0);
    let mut mid_checkpoint = 0;
    let (mut lowest, mut highest) = (step, step);

    for kill in 1..KILLS {
        let before = temp_dirs(&run);
        let child = Running::start(&resume);
        // From 0 ms (still starting up) to well into training.
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..500)));
        child.sigkill();
        // A temporary checkpoint this process made: killed while writing one.
        if temp_dirs(&run).iter().any(|t| !before.contains(t)) {
            mid_checkpoint += 1;
        }
        let s = check_run(&run, kill);
        assert!(
            s >= step,
            "kill {kill}: checkpoint went back from {step} to {s}"
        );
        step = s;
        lowest = lowest.min(s);
        highest = highest.max(s);
    }

    // The chain continues: a resume reaches a new checkpoint past the last one.
    let mut child = Running::start(&resume);
    let want = step;
    let line = child
        .wait_for(Duration::from_secs(120), |l| {
            l.strip_prefix("checkpoint step ")
                .and_then(|r| r.split(':').next())
                .and_then(|n| n.parse::<usize>().ok())
                .is_some_and(|n| n > want)
        })
        .expect("a checkpoint after resuming");
    assert!(
        child
            .seen
            .iter()
            .any(|l| l.contains(&format!("from step {want}"))),
        "resume did not start from step {want}: {:?}",
        child.seen
    );
    child.sigkill();
    let final_step = check_run(&run, KILLS);
    assert!(final_step > want, "{line}");
    // Stale temporary checkpoints of earlier kills are cleaned up on resume.
    assert!(temp_entries(&run) <= 1, "stale .tmp-* directories pile up");

    // A generate on the final latest checkpoint, as a user would run it.
    let latest = latest_checkpoint(&run).unwrap();
    common::assert_generates(&latest);

    eprintln!(
        "kill test: {} SIGKILLs, {mid_checkpoint} landed with a checkpoint being written, \
         checkpoint steps {lowest}..{final_step}, {:.1}s",
        KILLS,
        t0.elapsed().as_secs_f64()
    );
}

fn run_cmd(args: &[&str]) -> std::process::Output {
    common::run(args)
}

/// The states a kill can leave mid-checkpoint, made by hand (no timing): a
/// half-written `.tmp-step-*` directory, a step directory without its
/// `trainer_state.json` marker, and stale temp files of `atomic_write`. The
/// latest checkpoint is still the complete one, and resume works and cleans up.
#[test]
fn half_written_checkpoints_are_ignored_and_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = run_cmd(
        &tiny_train_args(&run, &["--set", "train.max_iters=4"])
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ck = run.join("checkpoints");
    let good = ck.join("step-0000004");
    // A temp dir of a later step with some files, and a step dir without marker.
    std::fs::create_dir_all(ck.join(".tmp-step-0000006")).unwrap();
    std::fs::write(ck.join(".tmp-step-0000006/model.safetensors"), b"partial").unwrap();
    std::fs::create_dir_all(ck.join("step-0000005")).unwrap();
    std::fs::copy(
        good.join("config.json"),
        ck.join("step-0000005/config.json"),
    )
    .unwrap();
    std::fs::write(ck.join(".LATEST.tmp99999"), b"step-00").unwrap();
    std::fs::write(run.join(".metrics.jsonl.tmp99999"), b"{").unwrap();
    // A torn last metrics line.
    let mut m = std::fs::read(run.join("metrics.jsonl")).unwrap();
    m.extend_from_slice(b"{\"event\": \"step\", \"st");
    std::fs::write(run.join("metrics.jsonl"), m).unwrap();

    assert_eq!(latest_checkpoint(&run).unwrap(), good);
    let (_, bad) = read_metrics(&run.join("metrics.jsonl")).unwrap();
    assert_eq!(bad, 1);
    // LATEST lost entirely: the highest complete one is found.
    std::fs::remove_file(ck.join("LATEST")).unwrap();
    assert_eq!(latest_checkpoint(&run).unwrap(), good);
    // LATEST naming a temp dir (never written so, but must not be trusted).
    std::fs::write(ck.join("LATEST"), ".tmp-step-0000006").unwrap();
    assert_eq!(latest_checkpoint(&run).unwrap(), good);

    // Resume: continues from step 4 and cleans the debris up.
    let mut cfg = headsup::config::Config::load(&run.join("config.toml")).unwrap();
    cfg.train.max_iters = 6;
    std::fs::write(run.join("config.toml"), cfg.to_toml_string()).unwrap();
    let out = run_cmd(&["train", "--resume", run.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("from step 4"), "{stdout}");
    assert!(stdout.contains("finished at step 6"), "{stdout}");
    assert_eq!(latest_checkpoint(&run).unwrap(), ck.join("step-0000006"));
    assert!(!ck.join(".tmp-step-0000006").exists());
    assert!(!ck.join(".LATEST.tmp99999").exists());
    assert!(!run.join(".metrics.jsonl.tmp99999").exists());
    let (lines, bad) = read_metrics(&run.join("metrics.jsonl")).unwrap();
    assert_eq!(bad, 0, "resume drops the torn line");
    assert!(lines.iter().any(|v| v["step"] == 6));
}
