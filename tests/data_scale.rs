//! The dataset browser on a large corpus, in a real terminal (tmux): a
//! generated ~24 MB text file is tokenized into the token cache, the pane
//! lists its records lazily from the record index (the first screen comes
//! up and training starts), End scrolls to the last record, a search finds
//! a line near the end (the worker's progress and count in the search
//! line), and the process's peak resident memory stays far below what
//! holding the corpus as records and ids would take. Sizes stay small
//! enough for a 2-core CI runner; nothing here depends on timing.

mod tmux_support;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};
use tmux_support::{have_tmux, status_step, Tmux};

/// Lines of the generated corpus (about 40 bytes each).
const LINES: usize = 600_000;
const MARKER: &str = "zebra-marker-4711";

fn write_corpus(path: &Path) -> u64 {
    write_lines(path, LINES)
}

fn write_lines(path: &Path, lines: usize) -> u64 {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..lines {
        if i == lines - 1000 {
            writeln!(f, "near the end: {MARKER} once").unwrap();
        }
        writeln!(f, "line {i}: the quick brown fox, {}", i % 97).unwrap();
        if i % 40 == 39 {
            writeln!(f).unwrap();
        }
    }
    f.flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

/// The peak resident set (kB) of process `pid`, from /proc.
fn peak_rss_kb(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn browser_lists_scrolls_and_searches_a_large_corpus() {
    if !have_tmux("the large-corpus browser test") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("big.txt");
    let bytes = write_corpus(&corpus);
    assert!(bytes > 20_000_000, "{bytes}");
    let pid_file = dir.path().join("pid");
    let bin = env!("CARGO_BIN_EXE_headsup");
    let shell = format!(
        "echo $$ > {pid}; TERM=xterm-256color HEADSUP_CACHE_DIR={cache} exec {bin} tui --data {corpus} \
         --out {run} --set train.max_iters=100000000 --set train.log_interval=5 --set train.eval_interval=1000 \
         --set train.threads=1 --set model.n_layer=1 --set model.n_embd=16 --set model.n_head=2 \
         --set model.block_size=16 --set train.batch_size=4 --set train.eval_iters=2",
        pid = pid_file.display(),
        cache = dir.path().join("cache").display(),
        corpus = corpus.display(),
        run = dir.path().join("run").display(),
    );
    let t = Tmux::start("scale", "scale", 200, 60, &shell);
    let started = Instant::now();
    let first = t.wait_for("the browser and a training step", 300, |s| {
        s.contains("1 dataset") && s.contains("records") && status_step(s).is_some_and(|n| n > 0)
    });
    eprintln!(
        "{:.1} MB corpus: first screen with a step after {:.1} s (2-core runner, not a timing assertion)",
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    // "dataset N of N records": thousands of windows, listed lazily.
    let total: usize = first
        .split("dataset ")
        .nth(1)
        .and_then(|r| r.split(" of ").next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no record count on screen:\n{first}"));
    assert!(total > 10_000, "{total} records\n{first}");
    assert!(first.contains("lines 1-"), "{first}");

    // End: the last record, whose title names the last lines.
    t.keys(&["1", "End"]);
    let last_line = LINES + LINES / 40 + 1;
    t.wait_for("the last record", 30, |s| {
        s.contains(&format!("{:>4} lines", total - 1)) && s.contains(&format!("{last_line}"))
    });

    // A search for a line near the end: found by the worker, shown with its count.
    t.keys(&["/"]);
    t.literal(MARKER);
    t.keys(&["Enter"]);
    let found = t.wait_for("the search to find the marker", 120, |s| {
        s.contains("dataset 1 of")
    });
    assert!(found.contains("near the end"), "{found}");
    // Esc clears the filter: every record again.
    t.keys(&["/", "Escape"]);
    t.wait_for("every record again", 30, |s| {
        s.contains(&format!("dataset {total} of {total}"))
    });

    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let peak = peak_rss_kb(pid.trim()).expect("the peak RSS of headsup");
    eprintln!(
        "peak RSS {:.0} MB for a {:.0} MB corpus",
        peak as f64 / 1024.0,
        bytes as f64 / 1e6
    );
    // Records in memory would hold the text (24 MB) plus a String per
    // record, the ids as u32 (96 MB) and the corpus string while encoding:
    // well over 200 MB. Streamed and mapped it stays under that.
    assert!(peak < 200 * 1024, "peak RSS {peak} kB");

    t.keys(&["q"]);
    t.wait_for("the quit question", 20, |s| s.contains("quit?"));
    t.keys(&["y"]);
    let start = Instant::now();
    while Path::new(&format!("/proc/{}", pid.trim())).exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "headsup did not exit; screen:\n{}",
            t.screen()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The pid of the workbench's trainer process for run directory `run`
/// (`headsup train ... --out RUN --workbench`), from /proc.
fn trainer_pid(run: &Path) -> Option<i32> {
    let run = run.to_str()?;
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmd.split(|&b| b == 0).collect();
        let has = |a: &str| args.contains(&a.as_bytes());
        (has("--workbench") && has(run)).then_some(pid)
    })
}

/// `q` in the workbench while its trainer prepares the data: the status
/// bar shows the preparation's gauge; `q` asks, `s` stops; the trainer
/// cancels the preparation and exits, the workbench exits 0 with the
/// terminal restored, and neither a token cache nor a temporary file is
/// left in the cache directory (nor the run directory the trainer made).
/// Not timing-dependent: the trainer is paused (SIGSTOP) as soon as the
/// gauge shows, and resumed only after the stop was asked for, so it cannot
/// finish its preparation in between.
#[test]
fn q_during_preparation_cancels_it_and_leaves_no_cache() {
    if !have_tmux("the preparation-cancel test") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("big.txt");
    let bytes = write_lines(&corpus, 1_100_000);
    assert!(bytes > 40_000_000 && bytes < 50_000_000, "{bytes}");
    let cache = dir.path().join("cache");
    let run = dir.path().join("run");
    let bin = env!("CARGO_BIN_EXE_headsup");
    let shell = format!(
        "TERM=xterm-256color HEADSUP_CACHE_DIR={cache} RAYON_NUM_THREADS=1 {bin} tui --data {corpus} \
         --out {run} --set train.threads=1 --set model.n_layer=1 --set model.n_embd=16 \
         --set model.n_head=2 --set model.block_size=16; echo EXIT=$?; sleep 60",
        cache = cache.display(),
        corpus = corpus.display(),
        run = run.display(),
    );
    let t = Tmux::start("prepcancel", "prepcancel", 120, 30, &shell);
    let gauge = t.wait_for("the preparation gauge", 300, |s| {
        s.contains("preparing data") && s.contains("MB/s")
    });
    let pid = trainer_pid(&run).expect("the trainer process");
    // SAFETY: signals to the trainer this test started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let phase = ["hashing", "tokenizing"]
        .into_iter()
        .find(|p| gauge.contains(p))
        .unwrap_or("another step");
    eprintln!("the gauge showed {phase} when the trainer was paused");
    t.keys(&["q"]);
    t.wait_for("the quit question", 30, |s| {
        s.contains("quit?") && s.contains("preparing the data")
    });
    t.keys(&["s"]);
    t.wait_for("the workbench to ask for the stop", 30, |s| {
        !s.contains("quit?")
    });
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let end = t.wait_for("the workbench to exit", 120, |s| s.contains("EXIT="));
    assert!(end.contains("EXIT=0"), "{end}");
    assert!(end.contains("preparation cancelled"), "{end}");
    let start = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the trainer {pid} did not exit"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let left: Vec<String> = std::fs::read_dir(&cache)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "left in the cache directory: {left:?}");
    assert!(
        !run.exists(),
        "the run directory the trainer made is still there"
    );
}
