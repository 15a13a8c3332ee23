//! A running `headsup` child whose stdout lines arrive on a channel, killed
//! when dropped (so a failing test leaves no process behind).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Running {
    pub child: Child,
    pub lines: Receiver<String>,
    /// Every stdout line seen so far (also those consumed by `wait_for`).
    pub seen: Vec<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Running {
    pub fn start(args: &[String]) -> Running {
        Running::start_with(super::bin(), args)
    }

    /// As [`Running::start`], with a command of the caller's (environment
    /// set, or run as another user).
    pub fn start_with(mut cmd: std::process::Command, args: &[String]) -> Running {
        let mut child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning headsup");
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Running {
            child,
            lines: rx,
            seen: Vec::new(),
            stderr: Some(stderr),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (up to `timeout`) for a stdout line for which `pred` holds.
    pub fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if pred(&l) {
                        return Some(l);
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return None
                }
            }
        }
    }

    /// Sends a signal by name (`TERM`, `HUP`, `INT`) with the `kill` command.
    pub fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("running kill")
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// Waits for exit (up to `timeout`, then SIGKILL and panic); returns the
    /// status, all stdout lines and stderr.
    pub fn finish(mut self, timeout: Duration) -> (ExitStatus, Vec<String>, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("headsup did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The reader thread ends at EOF; collect what is left.
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(10)) {
            self.seen.push(l);
        }
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        (status, std::mem::take(&mut self.seen), stderr)
    }

    /// SIGKILL now (std's `Child::kill` is SIGKILL on Unix) and reap.
    pub fn sigkill(mut self) -> ExitStatus {
        let _ = self.child.kill();
        self.child.wait().expect("wait")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
