//! Attach, detach and watch, driving the real binary: a headless `headsup
//! train` served on its socket, `headsup attach` in tmux (history from
//! before the attach, steps advancing, the playground streaming, a pause
//! shown in the headless log and in a second attached client, `d` detaching
//! to a cooked terminal while training goes on, a re-attach), a dropped
//! terminal (the tmux server killed) leaving training running, SIGKILL of
//! the trainer (the client says so, `headsup runs` says crashed, `--resume`
//! continues), and `headsup watch` on a finished run, a growing run and the
//! transformers fixture.

mod common;
mod tmux_support;

use common::proc::Running;
use common::*;
use std::path::Path;
use std::time::{Duration, Instant};
use tmux_support::{status_step, Tmux};

/// tmux is needed; missing, the test says so, and fails under CI=true.
fn need_tmux(what: &str) -> bool {
    if tmux_support::have_tmux(what) {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true: tmux is not installed, and {what} needs it"
    );
    false
}

fn headless(run: &Path, extra: &[&str]) -> Running {
    let mut args = tiny_train_args(
        run,
        &[
            "--set",
            "train.max_iters=1000000",
            "--set",
            "train.attention_interval=10",
            "--set",
            "train.checkpoint_interval=50",
        ],
    );
    args.extend(extra.iter().map(|s| s.to_string()));
    Running::start(&args)
}

/// The step of a `step N/M` progress line.
fn line_step(l: &str) -> Option<usize> {
    l.strip_prefix("step")?
        .trim_start()
        .split('/')
        .next()?
        .parse()
        .ok()
}

fn wait_step(p: &mut Running, at_least: usize) -> usize {
    let l = p
        .wait_for(Duration::from_secs(120), |l| {
            line_step(l).is_some_and(|s| s >= at_least)
        })
        .unwrap_or_else(|| panic!("no step {at_least}; saw {:?}", p.seen));
    line_step(&l).unwrap()
}

fn attach_shell(dir: &Path, run: &Path, tag: &str) -> String {
    let bin = env!("CARGO_BIN_EXE_headsup");
    format!(
        "TERM=xterm-256color {bin} attach {run}; echo EXIT=$? > {d}/{tag}.exit; stty -a > {d}/{tag}.stty; sleep 60",
        run = run.display(),
        d = dir.display()
    )
}

fn panes(s: &str) -> bool {
    ["1 dataset", "2 loss", "3 attention", "4 playground"]
        .iter()
        .all(|p| s.contains(p))
}

/// The loss chart's x-axis labels (first and last step shown).
fn loss_axis(screen: &str) -> Option<(usize, usize)> {
    screen.lines().find_map(|l| {
        let right: String = l.chars().skip(60).collect();
        let nums: Vec<usize> = right
            .trim_matches(|c: char| c == '│' || c == ' ')
            .split_whitespace()
            .map(|w| w.parse().ok())
            .collect::<Option<Vec<_>>>()?;
        match nums[..] {
            [a, b] if a < b => Some((a, b)),
            _ => None,
        }
    })
}

fn read(p: &Path) -> String {
    let t = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(p) {
            if !s.is_empty() {
                return s;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{} never written",
            p.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn metrics_step(run: &Path) -> u64 {
    step_losses(run).last().map(|x| x.0).unwrap_or(0)
}

#[test]
fn attach_to_a_headless_run_pause_from_two_clients_detach_and_come_back() {
    if !need_tmux("attaching in a terminal") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let run = t.path().join("run");
    let mut p = headless(&run, &[]);
    let before = wait_step(&mut p, 30);

    let a = Tmux::start("attach-a", "a", 120, 40, &attach_shell(t.path(), &run, "a"));
    let s = a.wait_for("the four panes and a step", 60, |s| {
        panes(s) && status_step(s).is_some_and(|n| n > before)
    });
    // The history starts at the run's beginning, not at the attach.
    let first = a.wait_for("the loss axis", 30, |s| {
        loss_axis(s).is_some_and(|(f, _)| f < before)
    });
    let (first, last) = loss_axis(&first).unwrap();
    eprintln!("attached at step {before}; loss axis {first}..{last}");
    let s0 = status_step(&s).unwrap();
    a.wait_for("the step to advance", 60, |s| {
        status_step(s).is_some_and(|n| n >= s0 + 10)
    });

    // The playground streams from the trainer's weights.
    a.keys(&["4", "i"]);
    a.literal("abcdefgh|");
    a.keys(&["Enter"]);
    a.wait_for("a generation to finish", 60, |s| s.contains(" tokens, "));
    a.keys(&["Escape"]);

    // A second client; a pause from the first shows in it and in the log.
    let b = Tmux::start("attach-b", "b", 100, 30, &attach_shell(t.path(), &run, "b"));
    b.wait_for("the second client", 60, |s| {
        panes(s) && s.contains("running")
    });
    a.keys(&["Space"]);
    p.wait_for(Duration::from_secs(30), |l| l.starts_with("paused at step"))
        .expect("the headless log shows the pause");
    b.wait_for("the pause in the other client", 30, |s| {
        s.contains("│ paused │")
    });
    b.keys(&["Space"]);
    p.wait_for(Duration::from_secs(30), |l| {
        l.starts_with("resumed at step")
    })
    .expect("the headless log shows the resume");
    a.wait_for("the resume in the first client", 30, |s| {
        s.contains("│ running │")
    });

    // d detaches: exit 0, the terminal cooked, training goes on.
    a.keys(&["d"]);
    assert_eq!(read(&t.path().join("a.exit")).trim(), "EXIT=0");
    let stty = read(&t.path().join("a.stty"));
    assert!(stty.contains(" icanon") && stty.contains(" echo"), "{stty}");
    let at_detach = metrics_step(&run);
    let t0 = Instant::now();
    while metrics_step(&run) < at_detach + 20 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "training stopped after detach"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Coming back sees the new steps.
    let c = Tmux::start("attach-c", "c", 120, 40, &attach_shell(t.path(), &run, "c"));
    c.wait_for("the re-attached workbench", 60, |s| {
        panes(s) && status_step(s).is_some_and(|n| n as u64 >= at_detach + 20)
    });
    drop((b, c));
    p.signal("TERM");
    let (status, _, _) = p.finish(Duration::from_secs(60));
    assert!(status.success());
}

#[test]
fn a_dropped_terminal_detaches_and_a_killed_trainer_is_reported_then_resumed() {
    if !need_tmux("attaching in a terminal") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let run = t.path().join("run");
    let mut p = headless(&run, &[]);
    wait_step(&mut p, 10);
    let a = Tmux::start("hup", "a", 120, 40, &attach_shell(t.path(), &run, "a"));
    a.wait_for("the workbench", 60, |s| {
        panes(s) && status_step(s).is_some()
    });
    // The terminal goes away (SIGHUP to the workbench): training goes on.
    a.kill_server();
    let s = metrics_step(&run);
    let t0 = Instant::now();
    while metrics_step(&run) < s + 20 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "training stopped with the terminal"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Attach works afterwards; then the trainer is killed under it.
    let b = Tmux::start("kill", "b", 120, 40, &attach_shell(t.path(), &run, "b"));
    b.wait_for("the workbench again", 60, |s| {
        panes(s) && status_step(s).is_some()
    });
    wait_step(&mut p, 60);
    p.sigkill();
    b.wait_for("the client saying the trainer is gone", 30, |s| {
        s.contains("the trainer is gone") && s.contains("headsup watch")
    });
    let out = run_cmd(&["runs", "--dir", t.path().to_str().unwrap()]);
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("crashed (checkpoint "), "{listing}");
    // --resume continues it.
    let mut r = Running::start(&["train".into(), "--resume".into(), run.display().to_string()]);
    let from = r
        .wait_for(Duration::from_secs(60), |l| l.contains("from step"))
        .expect("the resumed run's first line");
    assert!(!from.contains("from step 0 "), "{from}");
    wait_step(&mut r, 70);
    r.signal("TERM");
    let (status, _, _) = r.finish(Duration::from_secs(60));
    assert!(status.success());
}

fn run_cmd(args: &[&str]) -> std::process::Output {
    bin().args(args).output().expect("running headsup")
}

fn watch_shell(dir: &Path, target: &Path) -> String {
    let bin = env!("CARGO_BIN_EXE_headsup");
    format!(
        "TERM=xterm-256color {bin} watch {}; echo EXIT=$? > {}/w.exit; sleep 60",
        target.display(),
        dir.display()
    )
}

#[test]
fn watch_a_finished_run_a_growing_run_and_a_transformers_output_dir() {
    if !need_tmux("watching in a terminal") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    // A finished run: curves, and attention from its checkpoint.
    let done = t.path().join("done");
    let args = tiny_train_args(&done, &["--set", "train.max_iters=30"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let w = Tmux::start("watch-done", "w", 120, 40, &watch_shell(t.path(), &done));
    w.wait_for("the finished run", 60, |s| {
        panes(s) && s.contains("finished") && s.contains("step 30/30") && s.contains("· step 30")
    });
    // The playground answers from the checkpoint.
    w.keys(&["4", "i"]);
    w.literal("abc");
    w.keys(&["Enter"]);
    w.wait_for("a generation", 60, |s| s.contains(" tokens, "));
    w.keys(&["Escape", "d"]);
    assert_eq!(read(&t.path().join("w.exit")).trim(), "EXIT=0");
    drop(w);
    std::fs::remove_file(t.path().join("w.exit")).unwrap();

    // A run whose metrics.jsonl grows while watched.
    let growing = t.path().join("growing");
    let mut p = headless(&growing, &[]);
    wait_step(&mut p, 5);
    let w = Tmux::start("watch-grow", "w", 120, 40, &watch_shell(t.path(), &growing));
    let s = w.wait_for("the growing run", 60, |s| {
        panes(s) && status_step(s).is_some()
    });
    let s0 = status_step(&s).unwrap();
    w.wait_for("new steps from the file", 60, |s| {
        status_step(s).is_some_and(|n| n >= s0 + 20)
    });
    drop(w);
    p.signal("TERM");
    let _ = p.finish(Duration::from_secs(60));

    // The transformers Trainer fixture.
    let hf = fixture("hf-trainer");
    let w = Tmux::start("watch-hf", "w", 120, 40, &watch_shell(t.path(), &hf));
    w.wait_for("the transformers run", 60, |s| {
        panes(s)
            && s.contains("step 12/12")
            && s.contains("· step 12")
            && s.contains("best val 2.5")
    });
}
