//! `headsup runs`: the run directories under the data directory (and any
//! `--dir`), each with its state (live: a process answers on its socket;
//! finished / stopped: the last record of `metrics.jsonl` says so; crashed:
//! no process and no final record), step / total, best validation loss, last
//! activity and path.

use crate::watch::{Ending, RunLog};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Live,
    Finished,
    Stopped,
    /// The process is gone without a final record.
    Crashed,
}

impl RunState {
    pub fn name(self) -> &'static str {
        match self {
            RunState::Live => "live",
            RunState::Finished => "finished",
            RunState::Stopped => "stopped",
            RunState::Crashed => "crashed",
        }
    }
}

/// One run as `headsup runs` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub name: String,
    pub path: PathBuf,
    pub state: RunState,
    pub step: Option<usize>,
    pub total: Option<usize>,
    pub best_val_loss: Option<f32>,
    /// The step of the newest complete checkpoint.
    pub checkpoint_step: Option<usize>,
    pub last_activity: Option<SystemTime>,
}

/// Whether `dir` is a headsup run directory.
pub fn is_run_dir(dir: &Path) -> bool {
    let started = dir.join("config.toml").is_file()
        && (dir.join("metrics.jsonl").is_file()
            || dir.join(crate::train::run_dir::CHECKPOINTS).is_dir());
    // A workbench's trainer still preparing its data: its log, and a
    // process answering on the run's socket.
    started
        || (dir.join("train.log").is_file()
            && crate::serve::socket::is_live(&crate::serve::socket::client_path(dir)))
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).ok()?.modified().ok()
}

/// Reads one run directory.
pub fn summarize(dir: &Path) -> RunSummary {
    let log = RunLog::read(&dir.join("metrics.jsonl")).unwrap_or_default();
    let live = crate::serve::socket::is_live(&crate::serve::socket::client_path(dir));
    let state = if live {
        RunState::Live
    } else {
        match log.ending {
            Some(Ending::Finished) => RunState::Finished,
            Some(Ending::Stopped) => RunState::Stopped,
            Some(Ending::Open) | None => RunState::Crashed,
        }
    };
    let checkpoint_step = crate::watch::newest_checkpoint(dir).map(|(s, _)| s);
    let total = log.max_iters.or_else(|| {
        let text = std::fs::read_to_string(dir.join("config.toml")).ok()?;
        let v: toml::Value = toml::from_str(&text).ok()?;
        v.get("train")?
            .get("max_iters")?
            .as_integer()
            .map(|n| n as usize)
    });
    let last_activity = [
        dir.join("metrics.jsonl"),
        dir.join("train.log"),
        dir.join("checkpoints").join("LATEST"),
        dir.join("config.toml"),
    ]
    .iter()
    .filter_map(|p| mtime(p))
    .max();
    RunSummary {
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string()),
        path: dir.to_path_buf(),
        state,
        step: log.last_step.or(checkpoint_step),
        total,
        best_val_loss: log.history.best_val_loss(),
        checkpoint_step,
        last_activity,
    }
}

/// The runs in `roots` (each a run itself, or a directory of runs), newest
/// activity first. A root that does not exist is an error naming it.
pub fn list(roots: &[PathBuf]) -> anyhow::Result<Vec<RunSummary>> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for root in roots {
        if !root.is_dir() {
            anyhow::bail!(
                "runs directory {}: no such directory; check the --dir path",
                root.display()
            );
        }
        if is_run_dir(root) {
            dirs.push(root.clone());
            continue;
        }
        let rd = std::fs::read_dir(root).map_err(|e| {
            anyhow::anyhow!("runs directory {}: cannot read it: {e}", root.display())
        })?;
        for e in rd.flatten() {
            if is_run_dir(&e.path()) {
                dirs.push(e.path());
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    dirs.retain(|d| seen.insert(std::fs::canonicalize(d).unwrap_or_else(|_| d.clone())));
    let mut runs: Vec<RunSummary> = dirs.iter().map(|d| summarize(d)).collect();
    runs.sort_by_key(|r| std::cmp::Reverse(r.last_activity));
    Ok(runs)
}

/// The newest live run in `roots`.
pub fn newest_live(roots: &[PathBuf]) -> Option<RunSummary> {
    list(roots)
        .ok()?
        .into_iter()
        .find(|r| r.state == RunState::Live)
}

/// "12s ago", "5m ago", "3h ago", "2d ago".
pub fn ago(t: SystemTime, now: SystemTime) -> String {
    let s = now.duration_since(t).map(|d| d.as_secs()).unwrap_or(0);
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=172_799 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

/// The table `headsup runs` prints: a header and one line per run, columns
/// aligned by display width, names and paths escaped.
pub fn table(runs: &[RunSummary], now: SystemTime) -> String {
    use crate::sanitize::{escape, width};
    let mut rows: Vec<[String; 6]> = vec![[
        "NAME".into(),
        "STATE".into(),
        "STEP".into(),
        "BEST VAL".into(),
        "LAST ACTIVITY".into(),
        "PATH".into(),
    ]];
    for r in runs {
        let state = match (r.state, r.checkpoint_step) {
            (RunState::Crashed, Some(c)) => format!("crashed (checkpoint {c})"),
            (RunState::Crashed, None) => "crashed (no checkpoint)".into(),
            (s, _) => s.name().into(),
        };
        let step = match (r.step, r.total) {
            (Some(s), Some(t)) => format!("{s}/{t}"),
            (Some(s), None) => s.to_string(),
            (None, Some(t)) => format!("0/{t}"),
            (None, None) => "-".into(),
        };
        rows.push([
            escape(&r.name),
            state,
            step,
            r.best_val_loss
                .map(|v| format!("{v:.4}"))
                .unwrap_or_else(|| "-".into()),
            r.last_activity
                .map(|t| ago(t, now))
                .unwrap_or_else(|| "-".into()),
            escape(&r.path.display().to_string()),
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(c));
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            line.push_str(c);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(widths[i] - width(c) + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `headsup runs`: the runs under the data directory and under `dirs`.
pub fn run(dirs: &[PathBuf]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut roots: Vec<PathBuf> = Vec::new();
    let default = crate::train::default_runs_dir();
    if default.is_dir() {
        roots.push(default.clone());
    }
    roots.extend(dirs.iter().cloned());
    let runs = list(&roots)?;
    let mut out = std::io::stdout().lock();
    if runs.is_empty() {
        let wh: Vec<String> = if roots.is_empty() {
            vec![default.display().to_string()]
        } else {
            roots.iter().map(|r| r.display().to_string()).collect()
        };
        let _ = writeln!(
            out,
            "no runs under {}; start one with `headsup` or `headsup train`",
            crate::sanitize::escape(&wh.join(", "))
        );
        return Ok(());
    }
    let _ = write!(out, "{}", table(&runs, SystemTime::now()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_dir(root: &Path, name: &str, metrics: &str, ck: Option<usize>) -> PathBuf {
        let d = root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("config.toml"),
            "name = \"x\"\n[train]\nmax_iters = 300\n",
        )
        .unwrap();
        std::fs::write(d.join("metrics.jsonl"), metrics).unwrap();
        if let Some(s) = ck {
            let c = d.join("checkpoints").join(format!("step-{s:07}"));
            std::fs::create_dir_all(&c).unwrap();
            std::fs::write(c.join("trainer_state.json"), "{}").unwrap();
        }
        d
    }

    const START: &str = "{\"event\":\"start\",\"step\":0,\"max_iters\":200}\n";

    #[test]
    fn states_come_from_the_last_record_and_the_socket() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        run_dir(r, "done", &format!("{START}{{\"event\":\"eval\",\"step\":200,\"val_loss\":1.5,\"train_loss\":1.4}}\n{{\"event\":\"step\",\"step\":200,\"loss\":1.2}}\n{{\"event\":\"finished\",\"step\":200}}\n"), Some(200));
        run_dir(r, "halted", &format!("{START}{{\"event\":\"step\",\"step\":50,\"loss\":2}}\n{{\"event\":\"stopped\",\"step\":50}}\n"), Some(50));
        // Killed: steps past its newest checkpoint, no final record, a torn line.
        run_dir(
            r,
            "killed",
            &format!("{START}{{\"event\":\"step\",\"step\":120,\"loss\":2}}\n{{\"event\":\"st"),
            Some(100),
        );
        let live = run_dir(r, "live", START, None);
        let _server =
            crate::serve::socket::bind(&crate::serve::socket::server_path(&live).unwrap()).unwrap();
        std::fs::create_dir_all(r.join("not-a-run")).unwrap();
        let runs = list(&[r.to_path_buf()]).unwrap();
        let by = |n: &str| runs.iter().find(|x| x.name == n).unwrap().clone();
        assert_eq!(runs.len(), 4);
        let done = by("done");
        assert_eq!(done.state, RunState::Finished);
        assert_eq!((done.step, done.total), (Some(200), Some(200)));
        assert_eq!(done.best_val_loss, Some(1.5));
        assert_eq!(by("halted").state, RunState::Stopped);
        let killed = by("killed");
        assert_eq!(killed.state, RunState::Crashed);
        assert_eq!(killed.checkpoint_step, Some(100));
        assert_eq!(killed.step, Some(120));
        assert_eq!(by("live").state, RunState::Live);
        let text = table(&runs, SystemTime::now());
        assert!(text.starts_with("NAME"), "{text}");
        assert!(text.contains("crashed (checkpoint 100)"), "{text}");
        assert!(text.contains("200/200"), "{text}");
        assert!(text.contains("1.5000"), "{text}");
        assert!(text.contains("0s ago") || text.contains("1s ago"), "{text}");
        // A run given directly is listed too, once.
        let again = list(&[r.to_path_buf(), r.join("done")]).unwrap();
        assert_eq!(again.len(), 4);
    }

    #[test]
    fn a_missing_dir_is_an_error_naming_it() {
        let e = list(&[PathBuf::from("/nonexistent/runs")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent/runs") && e.contains("no such directory"),
            "{e}"
        );
    }

    #[test]
    fn hostile_names_are_escaped_in_the_table() {
        let t = tempfile::tempdir().unwrap();
        let d = run_dir(t.path(), "evil\u{1b}[2Jname", START, None);
        let text = table(&[summarize(&d)], SystemTime::now());
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.contains("evil\\e[2Jname"), "{text}");
    }

    #[test]
    fn ago_reads_naturally() {
        let now = SystemTime::now();
        let s = |n: u64| ago(now - std::time::Duration::from_secs(n), now);
        assert_eq!(s(5), "5s ago");
        assert_eq!(s(300), "5m ago");
        assert_eq!(s(7200), "2h ago");
        assert_eq!(s(3 * 86_400), "3d ago");
    }
}
