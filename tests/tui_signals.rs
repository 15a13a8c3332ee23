//! The workbench under signals, in a real terminal (tmux): SIGTERM and
//! SIGINT each stop the training (a checkpoint) and exit 0 with the terminal
//! back in cooked mode, and so does SIGHUP with `ui.on_hangup = "stop"`;
//! closing the terminal (a dropped SSH connection) with that setting saves
//! too (by default it detaches: tests/workbench_process.rs); SIGKILL of the
//! trainer process at random moments never leaves an unreadable latest
//! checkpoint, and `headsup tui --resume` carries on. Skips with a note
//! without tmux.

use headsup::train::run_dir::{latest_checkpoint, read_metrics};
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::process::Command;
mod tmux_support;
use std::time::{Duration, Instant};
use tmux_support::{have_tmux, status_step as step, Tmux};

const TINY: &str =
    "--set train.max_iters=1000000 --set train.log_interval=1 --set train.eval_interval=0 \
    --set train.attention_interval=5 --set train.threads=1 --set train.checkpoint_interval=7 \
    --set model.n_embd=16 --set model.n_head=2 --set model.block_size=16 --set train.batch_size=4 \
    --set data.synthetic_records=300";

struct Session {
    tmux: Tmux,
    dir: PathBuf,
}

impl Session {
    /// Starts `headsup tui <args>` in a new tmux session; when it exits, the
    /// shell records its exit status and the terminal modes.
    fn start(tag: &str, dir: &Path, args: &str) -> Session {
        let bin = env!("CARGO_BIN_EXE_headsup");
        let d = dir.display();
        let shell = format!(
            "TERM=xterm-256color {bin} tui {args}; echo $? > {d}/exit.txt; stty -a > {d}/stty.txt; sleep 30"
        );
        let _ = std::fs::remove_file(dir.join("exit.txt"));
        let _ = std::fs::remove_file(dir.join("stty.txt"));
        Session {
            tmux: Tmux::start(&format!("sig-{tag}"), "w", 100, 30, &shell),
            dir: dir.to_path_buf(),
        }
    }
    fn screen(&self) -> String {
        self.tmux.screen()
    }
    /// The pid of the workbench (`trainer`: of its trainer process) whose
    /// command line names `run`.
    fn pid(&self, run: &Path, trainer: bool) -> u32 {
        let want = run.display().to_string();
        let start = Instant::now();
        loop {
            if let Ok(rd) = std::fs::read_dir("/proc") {
                for e in rd.flatten() {
                    let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                        continue;
                    };
                    let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
                    let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                    let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                    if comm.trim() == "headsup"
                        && cmd.contains(&want)
                        && cmd.contains("--workbench") == trainer
                    {
                        return pid;
                    }
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no headsup process for {want}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    /// Waits until the status bar shows a step of at least `n`.
    fn wait_step(&self, n: usize) {
        self.tmux.wait_for(&format!("step {n}"), 90, |s| {
            step(s).is_some_and(|k| k >= n)
        });
    }
    /// Waits for the shell to record the exit; returns (status, stty -a).
    fn wait_exit(&self) -> (String, String) {
        let start = Instant::now();
        loop {
            let stty = std::fs::read_to_string(self.dir.join("stty.txt")).unwrap_or_default();
            if !stty.is_empty() {
                let exit = std::fs::read_to_string(self.dir.join("exit.txt")).unwrap_or_default();
                return (exit.trim().to_string(), stty);
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "headsup did not exit; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn kill(sig: &str, pid: u32) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(ok.success());
}

fn stopped_step(run: &Path) -> Option<u64> {
    let (lines, _) = read_metrics(&run.join("metrics.jsonl")).ok()?;
    lines
        .iter()
        .rev()
        .find(|v| v["event"] == "stopped")
        .and_then(|v| v["step"].as_u64())
}

fn checkpoint_step(run: &Path) -> u64 {
    let ck = latest_checkpoint(run).expect("a checkpoint");
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ck.join("trainer_state.json")).unwrap())
            .unwrap();
    st["step"].as_u64().unwrap()
}

#[test]
fn term_hup_int_save_and_restore_the_terminal() {
    if !have_tmux("the workbench signal tests") {
        return;
    }
    for sig in ["TERM", "HUP", "INT"] {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        // A hangup detaches by default; `stop` keeps the old behaviour.
        let hup = if sig == "HUP" {
            "--set ui.on_hangup=stop"
        } else {
            ""
        };
        let s = Session::start(
            sig,
            dir.path(),
            &format!("--out {} {TINY} {hup}", run.display()),
        );
        s.wait_step(3);
        kill(sig, s.pid(&run, false));
        let (exit, stty) = s.wait_exit();
        assert_eq!(exit, "0", "SIG{sig}: exit status");
        let words: Vec<&str> = stty.split_whitespace().collect();
        assert!(
            words.contains(&"icanon") && words.contains(&"echo"),
            "SIG{sig}: terminal not restored: {stty}"
        );
        let stopped = stopped_step(&run).expect("a stopped event in metrics.jsonl");
        assert_eq!(
            checkpoint_step(&run),
            stopped,
            "SIG{sig}: the checkpoint is of the step it stopped at"
        );
        assert!(
            !run.join("headsup.sock").exists(),
            "SIG{sig}: the trainer process was still there after the workbench exited"
        );
        eprintln!("SIG{sig}: exit 0, cooked mode, checkpoint at step {stopped}");
    }
}

#[test]
fn closing_the_terminal_with_on_hangup_stop_saves_a_checkpoint() {
    if !have_tmux("the workbench signal tests") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let s = Session::start(
        "close",
        dir.path(),
        &format!("--out {} {TINY} --set ui.on_hangup=stop", run.display()),
    );
    s.wait_step(3);
    // The trainer is the process that must save and end.
    let pid = s.pid(&run, true);
    // As a dropped SSH connection: the terminal goes away under the program.
    s.tmux.kill_server();
    let start = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "headsup still running after its terminal closed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let stopped = stopped_step(&run).expect("a stopped event in metrics.jsonl");
    assert_eq!(checkpoint_step(&run), stopped);
    eprintln!("terminal closed: stopped and saved at step {stopped}");
}

#[test]
fn sigkill_at_random_moments_then_resume() {
    if !have_tmux("the workbench signal tests") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut last = 0;
    for i in 0..6 {
        let args = if i == 0 {
            format!("--out {} {TINY}", run.display())
        } else {
            format!("--resume {}", run.display())
        };
        let s = Session::start(&format!("kill{i}"), dir.path(), &args);
        s.wait_step(last as usize + 8);
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..400)));
        // The trainer process (the UI only views it).
        kill("KILL", s.pid(&run, true));
        drop(s);
        let ck = latest_checkpoint(&run).expect("a latest checkpoint after the kill");
        assert!(!ck
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".tmp"));
        let model = headsup::train::load_cpu_model(&ck);
        assert!(
            model.is_ok(),
            "kill {i}: latest checkpoint does not load: {:?}",
            model.err()
        );
        let now = checkpoint_step(&run);
        assert!(now >= last, "checkpoints went backwards: {last} -> {now}");
        read_metrics(&run.join("metrics.jsonl")).expect("metrics.jsonl reads");
        eprintln!("kill {i}: latest checkpoint step {now} loads");
        last = now;
    }
    assert!(last > 0);
}
