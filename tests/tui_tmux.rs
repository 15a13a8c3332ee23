//! End to end: the real binary in a real terminal (tmux). The four panes
//! appear, the step counter and the loss advance, a prompt in the playground
//! produces text, `q` then `y` exits cleanly, and the terminal is back in
//! cooked mode. Skips with a note when tmux is not installed.

mod tmux_support;
use std::path::Path;
use std::time::{Duration, Instant};
use tmux_support::{have_tmux, number_after, status_step as step, Tmux};

fn loss(screen: &str) -> Option<String> {
    number_after(screen, "loss ", false)
}

#[test]
fn workbench_in_tmux() {
    if !have_tmux("the end-to-end terminal test") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let stty = dir.path().join("stty.txt");
    let bin = env!("CARGO_BIN_EXE_headsup");
    let shell = format!(
        "TERM=xterm-256color {bin} tui --out {run} --set train.max_iters=100000 --set train.log_interval=5 \
         --set train.eval_interval=50 --set train.attention_interval=10 --set train.threads=1 \
         --set model.n_embd=32 --set model.block_size=32; echo EXIT=$? > {done}; stty -a > {stty}; sleep 60",
        run = run.display(),
        done = dir.path().join("exit.txt").display(),
        stty = stty.display()
    );
    let t = Tmux::start("e2e", "e2e", 120, 40, &shell);

    // The four panes and the status bar.
    let first = t.wait_for("the four panes and a step", 90, |s| {
        ["1 dataset", "2 loss", "3 attention", "4 playground"]
            .iter()
            .all(|p| s.contains(p))
            && step(s).is_some_and(|n| n > 0)
    });
    let (s0, l0) = (step(&first).unwrap(), loss(&first));
    // The step counter and the loss move on.
    let later = t.wait_for("the step counter to advance", 60, |s| {
        step(s).is_some_and(|n| n >= s0 + 20) && loss(s).is_some() && loss(s) != l0
    });
    eprintln!(
        "step {s0} -> {:?}, loss {l0:?} -> {:?}",
        step(&later),
        loss(&later)
    );

    // A prompt in the playground streams text back.
    t.keys(&["4"]);
    t.wait_for("the playground to take focus", 20, |s| {
        s.contains("┏ 4 playground")
    });
    t.keys(&["i"]);
    t.literal("abcdefgh|");
    t.wait_for("the prompt to be typed", 20, |s| s.contains("> abcdefgh|"));
    t.keys(&["Enter"]);
    // The answer streams in and ends with its token count and speed (the
    // prompt line itself may have scrolled out of the pane by then). The
    // summary wraps wherever the generated text ends, so it is looked for in
    // the focused pane's text with the line breaks and spaces taken out.
    t.wait_for("a generation to finish", 60, |s| {
        let text = focused_pane_text(s);
        text.contains("tokens,") && text.contains("tok/s]")
    });

    // Resizing at random between 20x10 and 200x60, 200 times: it keeps
    // drawing, shows "terminal too small" below 60x16, and comes back.
    let mut r: u64 = 0x5eed;
    for i in 0..200 {
        r = r
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let w = 20 + (r >> 33) % 181;
        let h = 10 + (r >> 17) % 51;
        t.resize(w, h);
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    t.resize(40, 12);
    t.wait_for("the too-small message", 20, |s| s.contains("too small"));
    t.resize(120, 40);
    t.wait_for("the layout to come back", 20, |s| {
        s.contains("4 playground") && !s.contains("too small")
    });

    // q asks first, y stops (saving a checkpoint) and exits.
    t.keys(&["Escape", "q"]);
    t.wait_for("the quit question", 20, |s| s.contains("quit?"));
    eprintln!("screen before quitting:\n{}", t.screen());
    t.keys(&["y"]);
    let start = Instant::now();
    while !stty.is_file()
        || std::fs::read_to_string(&stty)
            .unwrap_or_default()
            .is_empty()
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "headsup did not exit; screen:\n{}",
            t.screen()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(300));
    let exit = std::fs::read_to_string(dir.path().join("exit.txt")).unwrap();
    assert_eq!(exit.trim(), "EXIT=0");
    let modes = std::fs::read_to_string(&stty).unwrap();
    // Cooked mode: canonical input and echo are back on.
    assert!(modes.split_whitespace().any(|w| w == "icanon"), "{modes}");
    assert!(modes.split_whitespace().any(|w| w == "echo"), "{modes}");
    assert!(
        headsup_latest(&run).is_some(),
        "no checkpoint saved on quit"
    );
}

fn headsup_latest(run: &Path) -> Option<std::path::PathBuf> {
    headsup::train::run_dir::latest_checkpoint(run)
}

/// The text inside the focused (bold-bordered) pane, lines joined, spaces
/// removed: what a wrapped line says regardless of where it wrapped.
fn focused_pane_text(screen: &str) -> String {
    screen
        .lines()
        .filter_map(|l| {
            let parts: Vec<&str> = l.split('┃').collect();
            (parts.len() >= 3).then(|| parts[parts.len() - 2].to_string())
        })
        .collect::<String>()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}
