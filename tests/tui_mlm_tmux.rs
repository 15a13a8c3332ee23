//! End to end on a masked LM: the real binary trains a tiny BERT
//! (`model.arch = "bert"`, `train.objective = "mlm"`) on a small text file
//! in tmux; the attention pane shows the full (bidirectional) matrix, with
//! keys after the query among the query's top keys, and a text with
//! `[MASK]` typed in the playground comes back filled with its top-k.

mod tmux_support;
use std::time::{Duration, Instant};
use tmux_support::{have_tmux, status_step as step, Tmux};

/// The key indices the attention pane's top-keys panel lists (the lines
/// under "top keys:", each starting with the key's index).
fn top_keys(screen: &str) -> Vec<usize> {
    let lines: Vec<&str> = screen.lines().collect();
    let Some(start) = lines.iter().position(|l| l.contains("top keys:")) else {
        return Vec::new();
    };
    // Columns as chars: the panel starts where "top keys:" does.
    let col = lines[start]
        .chars()
        .collect::<String>()
        .find("top keys:")
        .map(|b| lines[start][..b].chars().count())
        .unwrap_or(0);
    let mut out = Vec::new();
    for l in &lines[start + 1..] {
        let rest: String = l.chars().skip(col.saturating_sub(1)).collect();
        match rest.split_whitespace().next().and_then(|w| w.parse().ok()) {
            Some(k) => out.push(k),
            None => break,
        }
    }
    out
}

#[test]
fn a_masked_lm_fills_masks_and_shows_full_attention_in_tmux() {
    if !have_tmux("the masked-LM terminal test") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("words.txt");
    // Short lines of a few repeated words: enough to train on in seconds.
    let words = ["moon", "light", "frost", "ground", "head", "home"];
    let mut text = String::new();
    for i in 0..400 {
        let a = words[i % words.len()];
        let b = words[(i * 7 + 3) % words.len()];
        text.push_str(&format!("{a} on the {b}, {b} on the {a}.\n"));
    }
    std::fs::write(&data, text).unwrap();
    let config = dir.path().join("mlm.toml");
    std::fs::write(
        &config,
        "name = \"tiny-mlm\"\n[data]\nsource = \"text\"\n[tokenizer]\nkind = \"char\"\n\
         [model]\narch = \"bert\"\nn_layer = 1\nn_head = 2\nn_embd = 32\nblock_size = 32\n\
         [train]\nobjective = \"mlm\"\nbatch_size = 8\nmax_iters = 300\nlearning_rate = 3e-3\n\
         warmup_iters = 20\neval_interval = 100\neval_iters = 4\nlog_interval = 10\n\
         attention_interval = 20\nthreads = 1\n",
    )
    .unwrap();
    let run = dir.path().join("run");
    let bin = env!("CARGO_BIN_EXE_headsup");
    let shell = format!(
        "TERM=xterm-256color {bin} tui --config {cfg} --data {data} --out {run}; echo EXIT=$? > {done}; sleep 60",
        cfg = config.display(),
        data = data.display(),
        run = run.display(),
        done = dir.path().join("exit.txt").display(),
    );
    let t = Tmux::start("mlm", "mlm", 160, 45, &shell);

    // The attention pane: a bidirectional probe, whose query 0 ([CLS] or
    // the first token) lists keys after it (a causal map has only key 0).
    let s = t.wait_for("a bidirectional attention probe", 120, |s| {
        s.contains("bidirectional") && step(s).is_some_and(|n| n > 0)
    });
    let keys = top_keys(&s);
    assert!(
        keys.iter().any(|&k| k > 0),
        "query 0's top keys should include later keys: {keys:?}\n{s}"
    );
    // The loss pane shows masked accuracy after the first evaluation.
    t.wait_for("masked accuracy", 60, |s| s.contains("masked acc top-1"));

    // A text with [MASK] in the playground comes back filled with its top-k.
    t.keys(&["4", "i"]);
    t.literal("moon on the [MASK]ight");
    t.wait_for("the text to be typed", 20, |s| {
        s.contains("> moon on the [MASK]ight")
    });
    t.keys(&["Enter"]);
    let s = t.wait_for("the fill with its top-k", 60, |s| {
        s.contains("[MASK] 1:") && s.contains("= moon on the ")
    });
    let line = s
        .lines()
        .find(|l| l.contains("[MASK] 1:"))
        .unwrap_or_default()
        .to_string();
    // Five candidates, each with a probability.
    let probs = line.matches("0.").count() + line.matches("1.000").count();
    assert!(probs >= 3, "the top-k with probabilities: {line}\n{s}");
    // No [MASK]: a hint, not an error.
    t.literal("no mask here");
    t.keys(&["Enter"]);
    t.wait_for("the hint", 20, |s| s.contains("no [MASK] in the text"));

    // Quit: a run still training asks first (s stops it); a finished one
    // (300 steps go fast) quits at once.
    t.keys(&["Escape", "q"]);
    let start = Instant::now();
    let done = dir.path().join("exit.txt");
    let mut asked = false;
    while std::fs::read_to_string(&done)
        .unwrap_or_default()
        .is_empty()
    {
        if !asked && t.screen().contains("quit?") {
            t.keys(&["s"]);
            asked = true;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "headsup did not exit:\n{}",
            t.screen()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(std::fs::read_to_string(&done).unwrap().trim(), "EXIT=0");
}
