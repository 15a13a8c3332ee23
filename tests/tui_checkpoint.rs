//! `headsup tui --checkpoint DIR [--data FILE]`: the workbench on a
//! checkpoint with no trainer. In a real terminal (tmux) on the tiny GPT-2
//! fixture: attention and the playground work, the selected record is
//! scored token by token, nothing trains (the step stays 0, no run directory
//! appears, the checkpoint is left as it was), training keys say there is no
//! trainer, `q` exits at once without asking and the terminal is cooked
//! again. And its bad inputs, run as a process: a one-line error and exit 1.

mod common;
mod tmux_support;
use common::*;
use std::path::Path;
use std::time::{Duration, Instant};
use tmux_support::{have_tmux, Tmux};

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn inspecting_a_checkpoint_in_tmux() {
    if !have_tmux("the tui --checkpoint terminal test") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    copy_dir(&fixture("gpt2_tiny"), &ck);
    let before = files(&ck);
    let data = dir.path().join("data.txt");
    std::fs::write(
        &data,
        "The quick brown fox jumps over the lazy dog.\nPack my box with five dozen liquor jugs.\n",
    )
    .unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let stty = dir.path().join("stty.txt");
    let exit = dir.path().join("exit.txt");
    let bin = env!("CARGO_BIN_EXE_headsup");
    let shell = format!(
        "HOME={home} XDG_DATA_HOME={home}/data TERM=xterm-256color {bin} tui --checkpoint {ck} --data {data}; \
         echo EXIT=$? > {exit}; stty -a > {stty}; sleep 60",
        home = home.display(),
        ck = ck.display(),
        data = data.display(),
        exit = exit.display(),
        stty = stty.display()
    );
    let t = Tmux::start("ckpt", "ckpt", 120, 40, &shell);
    let first = t.wait_for("the workbench on the checkpoint", 60, |s| {
        s.contains("inspecting a checkpoint, no trainer")
            && s.contains("no training: inspecting a checkpoint")
            && s.contains("layer 1/2 head 1/4")
    });
    assert!(first.contains("2 layers · 4 heads · width 32 · 64 positions · vocab 320"));
    // The selected record coloured by loss.
    t.wait_for("the record's per-token losses", 30, |s| {
        s.contains("mean loss ") && s.contains("hardest:")
    });
    // Training keys say there is no trainer.
    t.keys(&["Space"]);
    // (The status bar's message is cut at the width: its start.)
    t.wait_for("the no-trainer message", 10, |s| {
        s.contains("│ no trainer: inspecting")
    });
    // A sample of the records is scored at once: the loss pane shows the
    // data's loss.
    t.wait_for("the data's loss", 30, |s| s.contains("loss of the data: "));
    // The playground answers a prompt.
    t.keys(&["4", "i"]);
    t.literal("The quick");
    t.wait_for("the prompt", 10, |s| s.contains("> The quick"));
    t.keys(&["Enter"]);
    let s = t.wait_for("a generation to finish", 60, |s| {
        let text = focused_pane_text(s);
        text.contains("tokens,") && text.contains("tok/s]")
    });
    assert!(s.contains("step 0/0"), "{s}");
    eprintln!("screen:\n{s}");
    // q quits at once, without asking.
    t.keys(&["Escape", "q"]);
    let asked = Instant::now();
    while std::fs::read_to_string(&stty)
        .unwrap_or_default()
        .is_empty()
    {
        assert!(
            !t.screen().contains("quit?"),
            "q asked first:\n{}",
            t.screen()
        );
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "headsup did not exit; screen:\n{}",
            t.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("exited {:?} after q", asked.elapsed());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(std::fs::read_to_string(&exit).unwrap().trim(), "EXIT=0");
    let modes = std::fs::read_to_string(&stty).unwrap();
    assert!(modes.split_whitespace().any(|w| w == "icanon"), "{modes}");
    assert!(modes.split_whitespace().any(|w| w == "echo"), "{modes}");
    // Nothing trained: no run directory, the checkpoint as it was.
    assert!(
        !home.join("data").exists(),
        "a data directory appeared: {:?}",
        files(&home.join("data"))
    );
    assert_eq!(files(&ck), before);
}

#[test]
fn bad_inputs_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let good = fixture("gpt2_tiny");
    let no_config = tmp.join("no_config");
    copy_dir(&good, &no_config);
    std::fs::remove_file(no_config.join("config.json")).unwrap();
    let no_weights = tmp.join("no_weights");
    copy_dir(&good, &no_weights);
    std::fs::remove_file(no_weights.join("model.safetensors")).unwrap();
    let no_tok = tmp.join("no_tokenizer");
    copy_dir(&good, &no_tok);
    std::fs::remove_file(no_tok.join("vocab.json")).unwrap();
    std::fs::remove_file(no_tok.join("merges.txt")).unwrap();
    // A model vocabulary smaller than the tokenizer's: they do not belong together.
    let small_vocab = tmp.join("small_vocab");
    copy_dir(&good, &small_vocab);
    let c = std::fs::read_to_string(small_vocab.join("config.json")).unwrap();
    std::fs::write(
        small_vocab.join("config.json"),
        c.replace("\"vocab_size\": 320", "\"vocab_size\": 100"),
    )
    .unwrap();
    let g = good.display().to_string();
    let cases: Vec<(&str, Vec<String>, Vec<&str>)> = vec![
        (
            "missing directory",
            vec![tmp.join("nope").display().to_string()],
            vec!["nope", "no such directory"],
        ),
        (
            "no config.json",
            vec![no_config.display().to_string()],
            vec!["no_config", "config.json"],
        ),
        (
            "no weights",
            vec![no_weights.display().to_string()],
            vec!["no_weights", "model.safetensors"],
        ),
        (
            "no tokenizer",
            vec![no_tok.display().to_string()],
            vec!["no_tokenizer", "tokenizer"],
        ),
        (
            "tokenizer larger than the model",
            vec![small_vocab.display().to_string()],
            vec!["small_vocab", "vocab_size 100"],
        ),
        (
            "missing --data",
            vec![
                g.clone(),
                "--data".into(),
                tmp.join("none.txt").display().to_string(),
            ],
            vec!["none.txt", "no such file"],
        ),
        (
            "binary --data",
            vec![
                g.clone(),
                "--data".into(),
                fixture("binary.txt").display().to_string(),
            ],
            vec!["binary.txt"],
        ),
    ];
    let mut failures = Vec::new();
    for (name, extra, needles) in &cases {
        let mut args = vec!["tui", "--checkpoint"];
        args.extend(extra.iter().map(|s| s.as_str()));
        let out = run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let r = std::panic::catch_unwind(|| {
            assert_eq!(out.status.code(), Some(1), "exit status; stderr: {stderr}");
            assert_clean_error(&out, needles);
        });
        match r {
            Ok(()) => eprintln!("ok   {name}: {}", stderr.trim()),
            Err(_) => failures.push(format!("{name}: {stderr}")),
        }
    }
    // Run as a process the output is not a terminal: said so, after the
    // inputs were checked.
    let out = run(&["tui", "--checkpoint", &g]);
    assert_eq!(out.status.code(), Some(1));
    assert_clean_error(&out, &["not a terminal", "generate --checkpoint"]);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
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
        .split_whitespace()
        .collect()
}
