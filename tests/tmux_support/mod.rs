//! Driving the real binary in a real terminal: a tmux server of its own (one
//! socket per test, killed on drop), screen capture, keys, and reading the
//! workbench's status bar.
#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

#[allow(clippy::duplicate_mod)]
#[path = "../common/required.rs"]
mod required;

/// True when tmux is installed; otherwise `false` after a note saying `what`
/// is skipped, or, under `CI=true`, a failure naming tmux (`required`).
pub fn have_tmux(what: &str) -> bool {
    required::program("tmux", "-V", what)
}

/// A tmux server with one session `target` running `shell`.
pub struct Tmux {
    socket: String,
    target: &'static str,
}

impl Tmux {
    /// Starts `shell` in a detached `width x height` session.
    pub fn start(tag: &str, target: &'static str, width: u16, height: u16, shell: &str) -> Tmux {
        let t = Tmux {
            socket: format!("headsup-{tag}-{}", std::process::id()),
            target,
        };
        let (w, h) = (width.to_string(), height.to_string());
        let out = t.cmd(&["new-session", "-d", "-s", target, "-x", &w, "-y", &h, shell]);
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t
    }

    pub fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("running tmux")
    }

    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", self.target]).stdout)
            .into_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.cmd(&["send-keys", "-t", self.target, k]);
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    pub fn literal(&self, text: &str) {
        self.cmd(&["send-keys", "-t", self.target, "-l", text]);
    }

    pub fn resize(&self, width: u64, height: u64) {
        self.cmd(&[
            "resize-window",
            "-t",
            self.target,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
        ]);
    }

    /// Polls the screen until `pred` holds; panics with the screen after `secs`.
    pub fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if start.elapsed() > Duration::from_secs(secs) {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Ends the server now (as a terminal going away under the program).
    pub fn kill_server(&self) {
        self.cmd(&["kill-server"]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.kill_server();
    }
}

/// The number after the first `word` that is followed by a number (and, with
/// `slash`, by `/`): `step 120/1000` in the status bar, `loss 1.234` in the
/// loss pane's header.
pub fn number_after(screen: &str, word: &str, slash: bool) -> Option<String> {
    for (i, _) in screen.match_indices(word) {
        let rest = &screen[i + word.len()..];
        let v: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        if !v.is_empty() && (!slash || rest[v.len()..].starts_with('/')) {
            return Some(v);
        }
    }
    None
}

/// The step in the status bar (`step N/M`).
pub fn status_step(screen: &str) -> Option<usize> {
    number_after(screen, "step ", true)?.parse().ok()
}
