//! Terminal safety: control sequences, bidi overrides and zero-width
//! characters in the data, in prompts and in generated text never reach the
//! terminal raw: headless output, `generate` output and error lines escape them.

mod common;
use common::*;

const NASTY: &str = "plain \x1b[31mred\x1b[0m \x1b]0;owned\x07 back\x08\x08 cr\rret \u{202E}evil\u{202C} zw\u{200B}sp \u{9b}2J tab\there\n";

/// Fails when `bytes` hold a raw ESC, CSI (C1), BEL, CR, BS, U+202E or U+200B.
fn assert_safe(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for (c, name) in [
        ('\x1b', "ESC"),
        ('\x07', "BEL"),
        ('\r', "CR"),
        ('\x08', "BS"),
        ('\u{9b}', "CSI"),
        ('\u{202E}', "RLO"),
        ('\u{202C}', "PDF"),
        ('\u{200B}', "ZWSP"),
    ] {
        assert!(!text.contains(c), "{what}: raw {name} in output: {text:?}");
    }
}

#[test]
fn hostile_text_is_escaped_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nasty.txt");
    std::fs::write(&data, NASTY.repeat(20)).unwrap();
    let run = dir.path().join("run");
    let name = "run\x1b[2Jname";
    let args = tiny_train_args(
        &run,
        &[
            "--data",
            data.to_str().unwrap(),
            "--set",
            "train.max_iters=30",
            "--set",
            "train.learning_rate=0.01",
            "--set",
            &format!("name=\"{name}\""),
        ],
    );
    let out = common::run(&args.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_safe("train stdout", &out.stdout);
    assert_safe("train stderr", &out.stderr);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\\e[2J"),
        "name shown escaped"
    );

    let ck = run.join("checkpoints/step-0000030");
    for seed in ["1", "2", "3"] {
        let out = common::run(&[
            "generate",
            "--checkpoint",
            ck.to_str().unwrap(),
            "--prompt",
            NASTY,
            "--max-new-tokens",
            "200",
            "--temperature",
            "1.5",
            "--top-k",
            "0",
            "--top-p",
            "1.0",
            "--seed",
            seed,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_safe("generate stdout", &out.stdout);
        assert_safe("generate stderr", &out.stderr);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("\\e[31m") && text.contains("\\u{202e}"),
            "prompt shown escaped: {text}"
        );
    }
}

/// Error lines quote keys, values and paths from user data: escaped too.
#[test]
fn error_lines_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("keys.jsonl");
    std::fs::write(&jsonl, "{\"\\u001b]0;pwned\\u0007\\u202e\": \"x\"}\n").unwrap();
    let out = common::run(&["train", "--data", jsonl.to_str().unwrap()]);
    assert_clean_error(&out, &["keys.jsonl", "line 1"]);
    assert_safe("jsonl error", &out.stderr);

    let out = common::run(&["train", "--set", "train.max_iters=\x1b[31m"]);
    assert_clean_error(&out, &["max_iters"]);
    assert_safe("--set error", &out.stderr);

    let weird = dir.path().join("bad\x1b[1mname\u{202E}.txt");
    let out = common::run(&["train", "--data", weird.to_str().unwrap()]);
    assert_clean_error(&out, &["no such file"]);
    assert_safe("path error", &out.stderr);
}
