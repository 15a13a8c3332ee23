//! The local workbench's trainer is a process of its own, driving the real
//! binary in tmux: `d` detaches (exit 0, cooked terminal, steps go on in
//! metrics.jsonl, `headsup attach` comes back), a killed tmux window
//! (SIGHUP) leaves training running, `q` asks (Esc cancels, leave keeps the
//! trainer, stop ends it with a final record), `c` continues a finished run
//! (a second attached client sees it), and `train --resume --set
//! train.max_iters=N` goes past the old end with the learning rate the
//! README states (the cosine re-stretched to the new end).

mod common;
mod tmux_support;

use common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tmux_support::{have_tmux, status_step, Tmux};

const TINY_TUI: &str = "--set train.log_interval=1 --set train.eval_interval=0 \
    --set train.attention_interval=5 --set train.threads=1 --set train.checkpoint_interval=50 \
    --set model.n_layer=1 --set model.n_embd=16 --set model.n_head=2 --set model.block_size=16 \
    --set train.batch_size=4 --set data.synthetic_records=300";

struct Bench {
    tmux: Tmux,
    dir: PathBuf,
    tag: String,
}

impl Bench {
    /// `headsup <cmd>` in tmux; the shell records its exit status and
    /// `stty -a` in DIR/TAG.exit and DIR/TAG.stty.
    fn start(tag: &str, dir: &Path, cmd: &str) -> Bench {
        let bin = env!("CARGO_BIN_EXE_headsup");
        let d = dir.display();
        let shell = format!(
            "TERM=xterm-256color {bin} {cmd}; echo $? > {d}/{tag}.exit; stty -a > {d}/{tag}.stty; sleep 60"
        );
        Bench {
            tmux: Tmux::start(&format!("wb-{tag}"), "w", 100, 30, &shell),
            dir: dir.to_path_buf(),
            tag: tag.into(),
        }
    }
    fn tui(tag: &str, dir: &Path, run: &Path, extra: &str) -> Bench {
        Bench::start(
            tag,
            dir,
            &format!("tui --out {} {TINY_TUI} {extra}", run.display()),
        )
    }
    fn attach(tag: &str, dir: &Path, run: &Path) -> Bench {
        Bench::start(tag, dir, &format!("attach {}", run.display()))
    }
    fn wait_step(&self, n: usize) -> usize {
        let s = self.tmux.wait_for(&format!("step {n}"), 120, |s| {
            status_step(s).is_some_and(|k| k >= n)
        });
        status_step(&s).unwrap()
    }
    /// (exit status, stty -a) once the command has ended.
    fn wait_exit(&self) -> (String, String) {
        let t = Instant::now();
        loop {
            let stty = std::fs::read_to_string(self.dir.join(format!("{}.stty", self.tag)))
                .unwrap_or_default();
            if !stty.is_empty() {
                let exit = std::fs::read_to_string(self.dir.join(format!("{}.exit", self.tag)))
                    .unwrap_or_default();
                return (exit.trim().to_string(), stty);
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "the workbench did not exit; screen:\n{}",
                self.tmux.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn cooked(stty: &str) -> bool {
    let w: Vec<&str> = stty.split_whitespace().collect();
    w.contains(&"icanon") && w.contains(&"echo")
}

fn metrics_step(run: &Path) -> u64 {
    if !run.join("metrics.jsonl").exists() {
        return 0;
    }
    step_losses(run).last().map(|x| x.0).unwrap_or(0)
}

/// Waits until metrics.jsonl has a step at least `n` past `from`.
fn steps_go_on(run: &Path, from: u64, n: u64, what: &str) -> u64 {
    let t = Instant::now();
    loop {
        let s = metrics_step(run);
        if s >= from + n {
            return s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "{what}: stuck at step {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn records(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The pid of the workbench's trainer process for `run` (its command line
/// is `headsup train ... --out RUN --workbench`).
fn trainer_pid(run: &Path) -> Option<u32> {
    let want = run.display().to_string();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains("--workbench") && cmd.contains(&want) && !cmd.contains("sh -c") {
            // A zombie is gone for our purposes.
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            if stat.split_whitespace().nth(2) != Some("Z") {
                return Some(pid);
            }
        }
    }
    None
}

fn wait_gone(run: &Path, what: &str) {
    let t = Instant::now();
    while trainer_pid(run).is_some() {
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "{what}: the trainer process is still there"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Ends a trainer left running (SIGTERM: checkpoint, exit) and waits for it.
fn stop_trainer(run: &Path) {
    if let Some(pid) = trainer_pid(run) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        wait_gone(run, "after SIGTERM");
    }
}

#[test]
fn d_detaches_to_a_cooked_terminal_training_goes_on_and_attach_comes_back() {
    if !have_tmux("the workbench process tests") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let run = t.path().join("run");
    let w = Bench::tui("d", t.path(), &run, "--set train.max_iters=1000000");
    w.wait_step(5);
    assert!(trainer_pid(&run).is_some(), "no trainer process of its own");
    w.tmux.keys(&["d"]);
    let (exit, stty) = w.wait_exit();
    assert_eq!(exit, "0");
    assert!(cooked(&stty), "terminal not restored: {stty}");
    let at = metrics_step(&run);
    let later = steps_go_on(&run, at, 30, "after d");
    let log = std::fs::read_to_string(run.join("train.log")).unwrap();
    assert!(
        log.contains("step "),
        "train.log has the progress lines: {log}"
    );
    let a = Bench::attach("d-again", t.path(), &run);
    let seen = a.wait_step(later as usize);
    eprintln!("detached at step {at}; training went on to {later}; attach sees {seen}");
    drop(a);
    stop_trainer(&run);
    assert_eq!(records(&run).last().unwrap()["event"], "stopped");
}

#[test]
fn a_killed_tmux_window_leaves_training_running_and_attach_works() {
    if !have_tmux("the workbench process tests") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let run = t.path().join("run");
    let w = Bench::tui("hup", t.path(), &run, "--set train.max_iters=1000000");
    w.wait_step(5);
    // As a dropped SSH link: the terminal goes away (SIGHUP).
    w.tmux.kill_server();
    let at = metrics_step(&run);
    let later = steps_go_on(&run, at, 30, "after the window was killed");
    let ui_left = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        !std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            cmd.contains(" tui --out ")
                && cmd.contains(&run.display().to_string())
                && !cmd.contains("sh -c")
        })
    });
    assert!(
        ui_left,
        "the workbench UI is still there after its terminal went away"
    );
    let a = Bench::attach("hup-again", t.path(), &run);
    a.wait_step(later as usize);
    drop(a);
    stop_trainer(&run);
}

#[test]
fn q_asks_esc_cancels_leave_keeps_the_trainer_stop_ends_it() {
    if !have_tmux("the workbench process tests") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let run = t.path().join("run");
    let w = Bench::tui("q", t.path(), &run, "--set train.max_iters=1000000");
    w.wait_step(3);
    w.tmux.keys(&["q"]);
    w.tmux
        .wait_for("the quit question", 30, |s| s.contains("leave (detach)"));
    w.tmux.keys(&["Escape"]);
    let s = w.tmux.wait_for("the question gone", 30, |s| {
        !s.contains("leave (detach)") && s.contains("running")
    });
    let s0 = status_step(&s).unwrap();
    w.wait_step(s0 + 5);
    // Leave: the UI ends, the trainer goes on.
    w.tmux.keys(&["q", "l"]);
    let (exit, stty) = w.wait_exit();
    assert_eq!(exit, "0");
    assert!(cooked(&stty));
    let at = metrics_step(&run);
    steps_go_on(&run, at, 20, "after q, leave");
    // Stop, from an attached workbench: the trainer ends with a final record.
    let a = Bench::attach("q-stop", t.path(), &run);
    a.wait_step(at as usize);
    a.tmux.keys(&["q"]);
    a.tmux
        .wait_for("the quit question", 30, |s| s.contains("leave (detach)"));
    a.tmux.keys(&["s"]);
    let (exit, _) = a.wait_exit();
    assert_eq!(exit, "0");
    wait_gone(&run, "after q, stop");
    let last = records(&run).last().cloned().unwrap();
    assert_eq!(last["event"], "stopped", "{last}");
    eprintln!("q, stop: the trainer ended with {last}");
}

#[test]
fn q_stop_in_the_local_workbench_waits_for_its_trainer() {
    if !have_tmux("the workbench process tests") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let run = t.path().join("run");
    let w = Bench::tui("qs", t.path(), &run, "--set train.max_iters=1000000");
    w.wait_step(3);
    w.tmux.keys(&["q", "Enter"]);
    let (exit, stty) = w.wait_exit();
    assert_eq!(exit, "0");
    assert!(cooked(&stty));
    // The workbench waited for its trainer: nothing is left running.
    assert!(trainer_pid(&run).is_none(), "the trainer outlived q, stop");
    assert_eq!(records(&run).last().unwrap()["event"], "stopped");
    assert!(
        !run.join("headsup.sock").exists(),
        "a socket was left behind"
    );
}

#[test]
fn c_continues_a_finished_run_and_a_second_client_sees_it() {
    if !have_tmux("the workbench process tests") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let run = t.path().join("run");
    let w = Bench::tui("c", t.path(), &run, "--set train.max_iters=20");
    w.tmux
        .wait_for("the run to finish", 120, |s| s.contains("│ finished │"));
    let b = Bench::attach("c-viewer", t.path(), &run);
    b.tmux
        .wait_for("the second client on the finished run", 60, |s| {
            s.contains("│ finished │") && s.contains("step 20/20")
        });
    w.tmux.keys(&["c"]);
    w.tmux.wait_for("the continue question", 30, |s| {
        s.contains("More steps: 20")
    });
    // 20 more steps (the default offered is the run's own length).
    w.tmux.keys(&["BSpace", "BSpace", "3", "0", "Enter"]);
    w.tmux
        .wait_for("the run to go on and finish at 50", 120, |s| {
            s.contains("step 50/50") && s.contains("│ finished │")
        });
    b.tmux.wait_for("the second client seeing it", 60, |s| {
        s.contains("step 50/50")
    });
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        cfg.contains("max_iters = 50"),
        "config.toml keeps the new end"
    );
    let steps: Vec<u64> = step_losses(&run).iter().map(|x| x.0).collect();
    assert_eq!(steps.last(), Some(&50));
    // q on a finished run leaves without asking; the trainer ends by itself
    // once no viewer is left (not waited for here).
    w.tmux.keys(&["q"]);
    assert_eq!(w.wait_exit().0, "0");
    drop(b);
    stop_trainer(&run);
}

#[test]
fn resume_past_the_end_continues_with_the_cosine_restretched() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("run");
    let sched = [
        "--set",
        "train.log_interval=1",
        "--set",
        "train.warmup_iters=5",
        "--set",
        "train.learning_rate=1e-2",
        "--set",
        "train.min_lr=1e-3",
    ];
    let mut first = sched.to_vec();
    first.extend(["--set", "train.max_iters=30"]);
    let out = tiny_train(&dir, &first);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(step_losses(&dir).last().unwrap().0, 30);
    let out = run(&[
        "train",
        "--resume",
        dir.to_str().unwrap(),
        "--set",
        "train.max_iters=60",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("finished at step 60"), "{stdout}");
    // The learning rate of each step past the old end follows the
    // schedule with its decay end moved to 60.
    let lrs: Vec<(u64, f64)> = records(&dir)
        .iter()
        .filter(|v| v["event"] == "step" && v["step"].as_u64().unwrap() > 30)
        .map(|v| (v["step"].as_u64().unwrap(), v["lr"].as_f64().unwrap()))
        .collect();
    assert_eq!(lrs.len(), 30, "{lrs:?}");
    for (step, lr) in lrs {
        // The step's rate is the schedule at the step before it (0-based).
        let want = headsup::train::schedule::lr_at(step as usize - 1, 1e-2, 1e-3, 5, 60);
        assert!(
            (lr - want).abs() <= 1e-6 * want,
            "step {step}: lr {lr}, the re-stretched cosine says {want}"
        );
    }
}
