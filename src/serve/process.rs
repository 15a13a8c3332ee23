//! The workbench's trainer as a process of its own, so that a run outlives
//! the terminal it was started from: [`spawn_trainer`] (the workbench side:
//! starts `headsup train ... --workbench` in a new session, stdin null, and
//! waits until it serves the run or fails) and [`become_ready`] (the trainer
//! side: says it is ready, then sends its output to `RUN/train.log`).
//!
//! Start-up goes through a pipe that is the child's stdout and stderr: the
//! child either prints the [`READY`] line and moves its output to
//! `RUN/train.log` (the pipe then reads to its end), or exits with its usual
//! `error: ...` line, which the workbench turns into its own error.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The line the trainer prints once its socket is listening.
pub const READY: &str = "headsup-trainer-ready";

/// What the workbench passes on to its trainer: the experiment's flags as
/// given on the command line (`--config`, `--data`, `--set`, `--device`,
/// `--threads`) and the run directory, chosen by the workbench.
#[derive(Debug, Clone, Default)]
pub struct TrainerArgs {
    pub config: Option<String>,
    pub data: Option<PathBuf>,
    pub sets: Vec<String>,
    pub device: Option<String>,
    pub threads: Option<usize>,
    /// `--resume RUN` when true, else `--out RUN`.
    pub resume: bool,
    pub run: PathBuf,
}

impl TrainerArgs {
    /// The `headsup` arguments that start this trainer.
    pub fn argv(&self) -> Vec<std::ffi::OsString> {
        let mut a: Vec<std::ffi::OsString> = vec!["train".into()];
        if let Some(c) = &self.config {
            a.extend(["--config".into(), c.into()]);
        }
        if let Some(d) = &self.data {
            a.extend(["--data".into(), d.into()]);
        }
        for s in &self.sets {
            a.extend(["--set".into(), s.into()]);
        }
        if let Some(d) = &self.device {
            a.extend(["--device".into(), d.into()]);
        }
        if let Some(t) = self.threads {
            a.extend(["--threads".into(), t.to_string().into()]);
        }
        let flag = if self.resume { "--resume" } else { "--out" };
        a.extend([flag.into(), self.run.clone().into_os_string()]);
        a.push("--workbench".into());
        a
    }
}

/// Starts the trainer process and waits until it serves the run (its socket
/// listening) or has failed: then its error line is this error. The child
/// runs in a session of its own (no controlling terminal: a hangup of the
/// workbench's terminal never reaches it).
pub fn spawn_trainer(args: &TrainerArgs) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().map_err(|e| {
        anyhow::anyhow!("cannot find the headsup executable to start the trainer: {e}")
    })?;
    let (reader, writer) =
        std::io::pipe().map_err(|e| anyhow::anyhow!("cannot start the trainer (a pipe): {e}"))?;
    let mut cmd = Command::new(&exe);
    cmd.args(args.argv())
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer);
    // SAFETY: setsid is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start the trainer {}: {e}", exe.display()))?;
    // The Command holds the pipe's write ends: without them the read ends
    // when the child has moved its output or exited.
    drop(cmd);
    let mut ready = false;
    let mut lines = Vec::new();
    for line in BufReader::new(reader).lines() {
        let Ok(line) = line else { break };
        if line == READY {
            ready = true;
        } else {
            lines.push(line);
        }
    }
    if ready {
        return Ok(child);
    }
    let status = child.wait().ok();
    let error = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .map(str::to_string);
    match error {
        Some(e) => Err(anyhow::anyhow!("{e}")),
        None => Err(anyhow::anyhow!(
            "the trainer ended before it started ({}): {}",
            status.map_or("no status".into(), |s| s.to_string()),
            lines.last().map_or("no output", |l| l.as_str())
        )),
    }
}

/// The trainer side, once its socket listens: prints [`READY`] and moves
/// stdout and stderr to `log` (appended), so that the workbench's start-up
/// pipe ends and the run's output outlives the terminal.
pub fn become_ready(log: &Path) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| anyhow::anyhow!("run log {}: cannot open it: {e}", log.display()))?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{READY}");
    let _ = out.flush();
    for fd in [1, 2] {
        // SAFETY: dup2 onto our own stdout/stderr descriptors.
        if unsafe { libc::dup2(file.as_raw_fd(), fd) } < 0 {
            return Err(anyhow::anyhow!(
                "run log {}: cannot write the output there: {}",
                log.display(),
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Waits (bounded) for the trainer process to end; true when it did.
pub fn wait_bounded(child: &mut Child, limit: std::time::Duration) -> bool {
    let start = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) if start.elapsed() < limit => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            _ => return false,
        }
    }
}
