//! Faults of the disk (issue 16): a full disk mid-run, at the final save and
//! during a SIGTERM stop; a read-only run directory at start and at resume;
//! the run directory removed while training; metrics that cannot be written;
//! `--resume` with a key a resumed run cannot change.
//!
//! The disk is a real small tmpfs mounted by the test where that is permitted
//! (root, or a user namespace); elsewhere the binary's fault-injecting hook
//! (`HEADSUP_FAULT_DISK`, which acts on the same writes) stands in for it.
//! Each test says on stderr which one ran. Under `CI=true` a test that can
//! run neither fails.

mod common;
use common::proc::Running;
use common::*;
use headsup::train::run_dir::{latest_checkpoint, read_metrics};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);

/// A small filesystem for one test: a tmpfs, or the fault-injecting hook.
struct Disk {
    dir: PathBuf,
    _tmp: tempfile::TempDir,
    mounted: bool,
    /// The hook's limit (`BYTES` or `ro`) when not mounted.
    limit: String,
}

impl Disk {
    /// A tmpfs mounted with `opts` (`size=256k`), or where mounting is not
    /// permitted, the hook with a capacity of `hook_kib` KiB of file bytes
    /// (a tmpfs counts whole pages, the hook counts bytes).
    fn new(opts: &str, hook_kib: u64) -> Disk {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("disk");
        std::fs::create_dir(&dir).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(&dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if mounted {
            eprintln!("io_faults: a real tmpfs ({opts}) at {}", dir.display());
        } else {
            assert!(
                !common::required::in_ci(),
                "CI=true: cannot mount a tmpfs (needs root or CAP_SYS_ADMIN; `mount -t tmpfs` failed); the fault-injecting hook stands in only outside CI"
            );
            eprintln!(
                "io_faults: mounting is not permitted here; the fault-injecting hook (HEADSUP_FAULT_DISK) stands in for a {hook_kib} KiB disk"
            );
        }
        Disk {
            dir,
            _tmp: tmp,
            mounted,
            limit: (hook_kib * 1024).to_string(),
        }
    }

    /// Makes the filesystem read-only from now on.
    fn read_only(&mut self) {
        if self.mounted {
            let ok = Command::new("mount")
                .args(["-o", "remount,ro"])
                .arg(&self.dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "remount,ro failed");
        }
        self.limit = "ro".into();
    }

    /// The binary, with the hook set when there is no real filesystem.
    fn bin(&self) -> Command {
        let mut c = bin();
        if !self.mounted {
            c.env(
                "HEADSUP_FAULT_DISK",
                format!("{}={}", self.dir.display(), self.limit),
            );
        }
        c
    }

    /// Fills the disk with a file (`filler`), as another program would.
    fn fill(&self) -> PathBuf {
        let path = self.dir.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        if self.mounted {
            let block = vec![0u8; 4096];
            while f.write_all(&block).is_ok() {}
            let _ = f.sync_all();
        } else {
            let cap: u64 = self.limit.parse().unwrap();
            let used = dir_bytes(&self.dir);
            f.write_all(&vec![0u8; cap.saturating_sub(used) as usize])
                .unwrap();
        }
        path
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let m = e.metadata().unwrap();
                    if m.is_dir() {
                        dir_bytes(&e.path())
                    } else {
                        m.len()
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// A running training process (the shared one, with panics that name what
/// was awaited).
struct Proc(Running);

impl Proc {
    fn start(cmd: Command, args: &[String]) -> Proc {
        Proc(Running::start_with(cmd, args))
    }

    /// The first new stdout line for which `pred` holds (panics after `WAIT`).
    fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        match self.0.wait_for(WAIT, pred) {
            Some(l) => l,
            None => panic!("no line {what}; seen: {:#?}", self.0.seen),
        }
    }

    fn signal(&self, name: &str) {
        self.0.signal(name)
    }

    /// Waits for the exit (a bounded wait: a process that spins fails the test).
    fn finish(self, within: Duration) -> (ExitStatus, Vec<String>, String) {
        self.0.finish(within)
    }
}

/// `train --out RUN` on the tiny model, a checkpoint every `every` steps,
/// two kept, a step line every 10.
fn train_args(run: &Path, max_iters: u64, every: u64) -> Vec<String> {
    tiny_train_args(
        run,
        &[
            "--set",
            &format!("train.max_iters={max_iters}"),
            "--set",
            &format!("train.checkpoint_interval={every}"),
            "--set",
            "train.keep_checkpoints=2",
            "--set",
            "train.log_interval=10",
            "--set",
            "train.eval_interval=0",
        ],
    )
}

fn step_of_line(l: &str) -> Option<usize> {
    l.strip_prefix("step")?
        .trim_start()
        .split('/')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// LATEST names a complete checkpoint of `step` that loads; nothing half
/// written is left in `checkpoints/`.
fn assert_latest(run: &Path, step: usize) {
    let ck = latest_checkpoint(run).expect("a complete checkpoint");
    assert_eq!(ck, run.join("checkpoints").join(format!("step-{step:07}")));
    let named = std::fs::read_to_string(run.join("checkpoints/LATEST")).unwrap();
    assert_eq!(named.trim(), format!("step-{step:07}"));
    headsup::train::load_cpu_model(&ck).expect("LATEST loads");
    assert_no_temps(run);
}

fn assert_no_temps(run: &Path) {
    for e in std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with(".tmp"), "left behind: {name}");
    }
}

fn one_error_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one error line, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    lines[0]
}

/// A disk that holds the run and two checkpoints of the tiny model (about
/// 56 kB each; the free-space check asks for that and 64 KiB more), not a third.
fn small_disk() -> Disk {
    Disk::new("size=256k", 200)
}

#[test]
fn disk_full_mid_run_is_reported_once_retried_and_recovers_when_space_is_freed() {
    let disk = small_disk();
    let run = disk.dir.join("run");
    let mut p = Proc::start(disk.bin(), &train_args(&run, 1_000_000, 20));
    let failed = p.wait_for("of a failed checkpoint", |l| l.contains("not written"));
    // Which step failed first depends on the disk's block accounting.
    let first: usize = failed
        .strip_prefix("checkpoint step ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{failed}"));
    let kept = first - 20;
    assert!(kept >= 20, "{failed}");
    for needle in [
        "needs ",
        " free on ",
        "free space or set train.keep_checkpoints lower",
        &format!("the latest complete checkpoint stays step {kept}"),
        &format!("training goes on, next try at step {}", first + 20),
    ] {
        assert!(failed.contains(needle), "`{needle}` missing: {failed}");
    }
    assert_eq!(failed.matches("free on").count(), 1, "{failed}");
    assert_latest(&run, kept);
    // Training goes on between failures, and the next interval tries again.
    p.wait_for("of a step after the failure", |l| {
        step_of_line(l).is_some_and(|s| s > first)
    });
    let again = p.wait_for("of the retry", |l| l.contains("not written"));
    assert!(
        again.starts_with(&format!("checkpoint step {} ", first + 20)),
        "{again}"
    );
    assert_latest(&run, kept);
    // Space freed (the older checkpoint removed by hand): the next one works.
    let older = latest_checkpoint(&run)
        .map(|_| {
            run.join("checkpoints")
                .join(format!("step-{:07}", kept - 20))
        })
        .unwrap();
    std::fs::remove_dir_all(&older).unwrap();
    let ok = p.wait_for("of a checkpoint written after space was freed", |l| {
        l.starts_with("checkpoint step ") && !l.contains("not written")
    });
    let now: usize = ok["checkpoint step ".len()..]
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // The first interval after the space came back (training is fast: a
    // few more may have failed before the removal).
    assert!(now >= first + 40 && now.is_multiple_of(20), "{ok}");
    let failed_since =
        p.0.seen
            .iter()
            .filter(|l| l.contains("not written"))
            .count();
    assert_eq!(
        failed_since,
        (now - first) / 20,
        "one line per failed try: {:#?}",
        p.0.seen
    );
    assert_latest(&run, now);
    p.signal("KILL");
}

#[test]
fn disk_full_at_the_final_save_exits_non_zero_naming_the_lost_steps() {
    let disk = small_disk();
    let run = disk.dir.join("run");
    let p = Proc::start(disk.bin(), &train_args(&run, 130, 20));
    let (status, lines, stderr) = p.finish(WAIT);
    assert_eq!(status.code(), Some(1), "{stderr}");
    let err = one_error_line(&stderr);
    let latest = latest_checkpoint(&run).expect("a checkpoint");
    let kept = headsup::train::run_dir::step_of(&latest).unwrap();
    for needle in [
        "final checkpoint step 130 not written",
        "free space or set train.keep_checkpoints lower",
        &format!("the latest complete checkpoint stays step {kept}"),
        &format!("steps {}..130 are lost", kept + 1),
    ] {
        assert!(err.contains(needle), "`{needle}` missing: {err}");
    }
    assert!(
        lines.iter().any(|l| l == "finished at step 130"),
        "{lines:#?}"
    );
    assert_latest(&run, kept);
    // The loss is in metrics.jsonl too (the disk still had room for a line).
    let (records, _) = read_metrics(&run.join("metrics.jsonl")).unwrap();
    let lost = records
        .iter()
        .find(|r| r["event"] == "checkpoint_failed" && r["last"] == true)
        .expect("a checkpoint_failed record");
    assert_eq!(lost["step"], 130);
    assert_eq!(lost["latest"], kept);
}

#[test]
fn disk_full_during_a_sigterm_stop_exits_non_zero() {
    let disk = small_disk();
    let run = disk.dir.join("run");
    let mut p = Proc::start(disk.bin(), &train_args(&run, 1_000_000, 20));
    p.wait_for("of a failed checkpoint", |l| l.contains("not written"));
    let kept = headsup::train::run_dir::step_of(&latest_checkpoint(&run).unwrap()).unwrap();
    p.signal("TERM");
    let (status, _, stderr) = p.finish(WAIT);
    assert_eq!(status.code(), Some(1), "{stderr}");
    let err = one_error_line(&stderr);
    assert!(err.contains("error: final checkpoint step "), "{err}");
    assert!(
        err.contains(&format!("stays step {kept}; steps {}..", kept + 1)),
        "{err}"
    );
    assert_latest(&run, kept);
}

#[test]
fn a_checkpoint_that_fails_half_written_leaves_nothing_behind() {
    // Few inodes: the free-space check passes, the third checkpoint's files
    // do not all fit (ENOSPC in the middle of writing it).
    // (Where only the hook runs, the free-space check refuses it instead.)
    let disk = Disk::new("size=4m,nr_inodes=24", 200);
    let run = disk.dir.join("run");
    let p = Proc::start(disk.bin(), &train_args(&run, 60, 20));
    let (status, _, stderr) = p.finish(WAIT);
    let err = one_error_line(&stderr);
    assert_eq!(status.code(), Some(1), "{stderr}");
    let latest = latest_checkpoint(&run).unwrap();
    let kept = headsup::train::run_dir::step_of(&latest).unwrap();
    assert!(
        err.contains("final checkpoint step 60 not written"),
        "{err}"
    );
    if disk.mounted {
        assert_eq!(
            err.matches("No space left on device (os error 28)").count(),
            1,
            "the cause once: {err}"
        );
    }
    assert_latest(&run, kept);
}

#[test]
fn a_read_only_run_directory_is_refused_before_training() {
    let mut disk = Disk::new("size=1m", 1024);
    let run = disk.dir.join("run");
    let out = disk.bin().args(train_args(&run, 20, 10)).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    disk.read_only();
    // At resume.
    let out = disk
        .bin()
        .args(["train", "--resume", &run.display().to_string()])
        .output()
        .unwrap();
    assert_clean_error(
        &out,
        &[
            &run.display().to_string(),
            "cannot write in it",
            "Read-only file system",
            "a resumed run writes its checkpoints and metrics there",
        ],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).is_empty(),
        "training started"
    );
    // At start, in an existing directory and in a new one.
    let out = disk.bin().args(train_args(&run, 20, 10)).output().unwrap();
    assert_clean_error(&out, &[&run.display().to_string(), "Read-only file system"]);
    let new = disk.dir.join("new");
    let out = disk.bin().args(train_args(&new, 20, 10)).output().unwrap();
    assert_clean_error(&out, &[&new.display().to_string(), "Read-only file system"]);
}

#[test]
fn a_file_in_the_way_or_no_permission_is_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let run = file.join("run");
    let out = bin().args(train_args(&run, 20, 10)).output().unwrap();
    assert_clean_error(&out, &[&run.display().to_string(), "cannot create it"]);
    // Permissions: root ignores them, so run as nobody where that is possible.
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    let exe = env!("CARGO_BIN_EXE_headsup");
    let can_drop = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            exe,
            "--version",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !can_drop {
        eprintln!("io_faults: setpriv cannot run the binary as nobody here; the permission case is left to the read-only mount");
        return;
    }
    // The temporary directory is private to root: let nobody reach `locked`.
    for d in [dir.path(), &locked] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let run = locked.join("run");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", exe])
        .args(train_args(&run, 20, 10))
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert_clean_error(&out, &[&run.display().to_string(), "Permission denied"]);
}

#[test]
fn the_run_directory_removed_while_training_ends_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut p = Proc::start(bin(), &train_args(&run, 1_000_000, 20));
    p.wait_for("of a checkpoint", |l| l.starts_with("checkpoint step "));
    // Moved away then removed, as `rm -rf` would while files are being
    // written into it.
    let away = dir.path().join("removed");
    std::fs::rename(&run, &away).unwrap();
    let _ = std::fs::remove_dir_all(&away);
    let (status, _, stderr) = p.finish(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{stderr}");
    let err = one_error_line(&stderr);
    assert!(
        err.contains(&format!(
            "run directory {} was removed while training",
            run.display()
        )),
        "{err}"
    );
    assert!(!run.exists(), "the run directory was made again");
}

#[test]
fn metrics_that_cannot_be_written_are_said_once_and_training_goes_on() {
    let disk = Disk::new("size=1m", 1024);
    let run = disk.dir.join("run");
    let mut args = train_args(&run, 1_000_000, 0);
    args.extend(["--set".into(), "train.log_interval=1".into()]);
    let mut p = Proc::start(disk.bin(), &args);
    p.wait_for("of a first step", |l| step_of_line(l).is_some());
    let filler = disk.fill();
    let said = p.wait_for("about metrics", |l| l.starts_with("metrics "));
    assert!(
        said.contains("cannot write") && said.contains("training goes on"),
        "{said}"
    );
    // Training goes on, and it is said once (not once per record).
    let after = p.0.seen.len();
    for _ in 0..20 {
        p.wait_for("of a step while metrics fail", |l| {
            step_of_line(l).is_some()
        });
    }
    assert!(
        !p.0.seen[after..].iter().any(|l| l.starts_with("metrics ")),
        "said again: {:#?}",
        &p.0.seen[after..]
    );
    std::fs::remove_file(filler).unwrap();
    let back = p.wait_for("about metrics writing again", |l| l.starts_with("metrics "));
    assert!(
        back.contains("writing again;") && back.contains("record(s) were lost"),
        "{back}"
    );
    p.signal("TERM");
    let (status, lines, stderr) = p.finish(WAIT);
    assert!(status.success(), "{stderr}");
    assert!(
        lines.last().unwrap().ends_with("(checkpoint saved)"),
        "{lines:#?}"
    );
    let (records, _) = read_metrics(&run.join("metrics.jsonl")).unwrap();
    assert_eq!(records.last().unwrap()["event"], "stopped");
}

#[test]
fn resume_refuses_a_key_it_cannot_change_and_extends_max_iters() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = bin().args(train_args(&run, 30, 10)).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = run.display().to_string();
    for (set, needle) in [
        ("model.n_embd=32", "--set model.n_embd with --resume"),
        (
            "data.synthetic_records=50",
            "--set data.synthetic_records with --resume",
        ),
        ("seed=7", "--set seed with --resume"),
        ("train.max_iters=20", "the run is at step 30 already"),
    ] {
        let out = bin()
            .args(["train", "--resume", &r, "--set", set])
            .output()
            .unwrap();
        assert_clean_error(&out, &[needle, &r]);
    }
    let out = bin()
        .args(["train", "--resume", &r, "--config", "copy"])
        .output()
        .unwrap();
    assert_clean_error(&out, &["--config with --resume", "drop --config"]);
    // max_iters is applied: the run goes on to 50, says what the schedule does,
    // and remembers it for the next resume.
    let out = bin()
        .args(["train", "--resume", &r, "--set", "train.max_iters=50"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "resume: train.max_iters 30 -> 50; the learning rate now decays until step 50"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("set train.lr_decay_iters=30 to keep the old schedule"),
        "{stdout}"
    );
    assert!(stdout.contains("finished at step 50"), "{stdout}");
    assert_latest(&run, 50);
    let cfg = headsup::config::Config::load(&run.join("config.toml")).unwrap();
    assert_eq!(cfg.train.max_iters, 50);
}
