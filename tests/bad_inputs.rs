//! The bad-input catalogue: every case runs the real binary and must fail
//! with exit status 1 and exactly one `error: ...` line naming the file or key
//! (and never panic). Command-line syntax errors are clap's (exit 2, its own
//! format), which only have to be non-zero and not a panic.
//! One `#[test]` per section (themes, config files, flags, datasets,
//! tokenizer files, checkpoints, resumed runs), so a failure names its
//! section; each lists every failing case of its section at once.
//! Fixture files are in `tests/fixtures/`; the checkpoint cases are made from
//! a freshly trained tiny checkpoint, and large inputs are generated here.

mod common;
use common::*;
use headsup::model::checkpoint::{read_safetensors, safetensors_bytes};
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, PartialEq)]
enum Expect {
    /// Exit 1, one `error:` line containing every needle.
    Error,
    /// clap's usage error: exit 2, `error:` on stderr, no panic.
    Usage,
    /// Accepted (not bad after all): exit 0.
    Ok,
}

struct Case {
    name: &'static str,
    args: Vec<String>,
    needles: Vec<String>,
    expect: Expect,
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn fx(name: &str) -> String {
    fixture(name).display().to_string()
}

fn train_data(name: &str, needles: &[&str]) -> (Vec<String>, Vec<String>) {
    (s(&["train", "--data", &fx(name)]), s(needles))
}

/// The cases of one section, in order.
#[derive(Default)]
struct Cases(Vec<Case>);

impl Cases {
    fn add(
        &mut self,
        name: &'static str,
        (args, needles): (Vec<String>, Vec<String>),
        expect: Expect,
    ) {
        self.0.push(Case {
            name,
            args,
            needles,
            expect,
        })
    }
}

/// `generate` on checkpoint `d`, three tokens.
fn gen(d: &Path) -> Vec<String> {
    s(&[
        "generate",
        "--checkpoint",
        &d.display().to_string(),
        "--max-new-tokens",
        "3",
    ])
}

/// A tiny run of two steps in `tmp/good` (its checkpoint is
/// `checkpoints/step-0000002`), from which the checkpoint and resume cases
/// are made.
fn good_run(tmp: &Path) -> PathBuf {
    let good_run = tmp.join("good");
    let out = tiny_train(&good_run, &["--set", "train.max_iters=2"]);
    assert!(
        out.status.success(),
        "training the good run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    good_run
}

/// Runs every case of `section`; fails listing each case that did not fail
/// as expected.
fn check(section: &str, cases: Cases) {
    let all = cases.0;
    assert!(!all.is_empty(), "{section}: no cases");
    let mut failures = Vec::new();
    for c in &all {
        let args: Vec<&str> = c.args.iter().map(|x| x.as_str()).collect();
        let out = run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let check = std::panic::catch_unwind(|| match c.expect {
            Expect::Error => {
                assert_eq!(out.status.code(), Some(1), "exit status; stderr: {stderr}");
                let needles: Vec<&str> = c.needles.iter().map(|x| x.as_str()).collect();
                assert_clean_error(&out, &needles);
            }
            Expect::Usage => {
                assert_eq!(out.status.code(), Some(2), "exit status; stderr: {stderr}");
                assert!(!stderr.contains("panicked"), "{stderr}");
                assert!(stderr.starts_with("error: "), "{stderr}");
                for n in &c.needles {
                    assert!(stderr.contains(n.as_str()), "`{n}` missing: {stderr}");
                }
            }
            Expect::Ok => assert!(out.status.success(), "expected success: {stderr}"),
        });
        match check {
            Ok(()) => eprintln!("ok   {}: {}", c.name, stderr.lines().next().unwrap_or("")),
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{}: {msg}", c.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{section}: {} of {} cases failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

/// A copy of the good checkpoint, changed by `f`.
fn variant(root: &Path, good: &Path, name: &str, f: impl FnOnce(&Path)) -> PathBuf {
    let d = root.join(name);
    copy_dir(good, &d);
    f(&d);
    d
}

fn rewrite_weights(dir: &Path, f: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<f32>)>)) {
    let p = dir.join("model.safetensors");
    let mut t: Vec<(String, Vec<usize>, Vec<f32>)> = read_safetensors(&p)
        .unwrap()
        .into_iter()
        .map(|(n, (s, d))| (n, s, d))
        .collect();
    f(&mut t);
    fs::write(&p, safetensors_bytes(&t, None)).unwrap();
}

/// Themes and key bindings, checked before training starts.
#[test]
fn themes_and_key_bindings() {
    use Expect::*;
    let mut c = Cases::default();
    c.add(
        "unknown theme",
        (
            s(&["tui", "--theme", "nonexistent"]),
            s(&["nonexistent", "available"]),
        ),
        Error,
    );
    c.add(
        "theme with a bad colour",
        (
            s(&["tui", "--theme", &fx("theme_bad_colour.toml")]),
            s(&["theme_bad_colour.toml", "zzzzzz"]),
        ),
        Error,
    );
    c.add(
        "malformed theme",
        (
            s(&["tui", "--theme", &fx("theme_malformed.toml")]),
            s(&["theme_malformed.toml"]),
        ),
        Error,
    );
    c.add(
        "theme with an unknown key",
        (
            s(&["tui", "--theme", &fx("theme_unknown_key.toml")]),
            s(&["theme_unknown_key.toml", "colours"]),
        ),
        Error,
    );
    c.add(
        "missing theme file",
        (
            s(&["tui", "--theme", "/nonexistent/t.toml"]),
            s(&["/nonexistent/t.toml"]),
        ),
        Error,
    );
    c.add(
        "unknown key action",
        (
            s(&["tui", "--set", "ui.keys.fly=x"]),
            s(&["ui.keys", "fly"]),
        ),
        Error,
    );
    c.add(
        "unparsable key",
        (
            s(&["tui", "--set", "ui.keys.pause=ctrl-???"]),
            s(&["ui.keys.pause", "not a key"]),
        ),
        Error,
    );
    check("themes and key bindings", c);
}

/// Config files (and the UTF-8 BOM one that is fine).
#[test]
fn config_files() {
    use Expect::*;
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let mut c = Cases::default();
    let cfg = |f: &str, needles: &[&str]| (s(&["train", "--config", &fx(f)]), s(needles));
    c.add(
        "unknown key",
        cfg("unknown_key.toml", &["unknown_key.toml", "max_iterz"]),
        Error,
    );
    c.add(
        "wrong type",
        cfg("wrong_type.toml", &["wrong_type.toml", "max_iters"]),
        Error,
    );
    c.add(
        "malformed toml",
        cfg("malformed.toml", &["malformed.toml"]),
        Error,
    );
    c.add(
        "negative size",
        cfg("negative_size.toml", &["negative_size.toml", "n_embd"]),
        Error,
    );
    c.add(
        "zero layers",
        cfg("zero_layers.toml", &["zero_layers.toml", "n_layer"]),
        Error,
    );
    c.add(
        "zero batch",
        cfg("zero_batch.toml", &["zero_batch.toml", "batch_size"]),
        Error,
    );
    c.add(
        "n_embd not divisible by n_head",
        cfg(
            "heads_indivisible.toml",
            &["heads_indivisible.toml", "n_embd (30)", "n_head (4)"],
        ),
        Error,
    );
    c.add(
        "bad device",
        cfg("bad_device.toml", &["bad_device.toml", "tpu"]),
        Error,
    );
    c.add(
        "train_fraction > 1",
        cfg(
            "train_fraction_high.toml",
            &["train_fraction_high.toml", "train_fraction", "1.5"],
        ),
        Error,
    );
    c.add(
        "train_fraction = 0",
        cfg(
            "train_fraction_zero.toml",
            &["train_fraction_zero.toml", "train_fraction"],
        ),
        Error,
    );
    c.add(
        "negative learning rate",
        cfg("negative_lr.toml", &["negative_lr.toml", "learning_rate"]),
        Error,
    );
    c.add(
        "model far too large",
        cfg("huge_model.toml", &["huge_model.toml", "too large"]),
        Error,
    );
    c.add(
        "unknown enum value",
        cfg("bad_enum.toml", &["bad_enum.toml", "parquet"]),
        Error,
    );
    c.add(
        "text source without path",
        cfg(
            "text_without_path.toml",
            &["text_without_path.toml", "data.path"],
        ),
        Error,
    );
    c.add(
        "integer overflow",
        cfg("overflow_int.toml", &["overflow_int.toml"]),
        Error,
    );
    c.add(
        "UTF-16 config",
        cfg("utf16.toml", &["utf16.toml", "UTF-16"]),
        Error,
    );
    c.add(
        "missing config file",
        (
            s(&["train", "--config", "/nonexistent/x.toml"]),
            s(&["/nonexistent/x.toml"]),
        ),
        Error,
    );
    c.add(
        "unknown built-in sample",
        (
            s(&["train", "--config", "nosuchsample"]),
            s(&["nosuchsample", "built-in"]),
        ),
        Error,
    );
    let mut bom = s(&[
        "train",
        "--config",
        &fx("bom.toml"),
        "--out",
        &tmp.join("bom-run").display().to_string(),
    ]);
    bom.extend(TINY.iter().map(|x| x.to_string()));
    c.add("UTF-8 BOM config is accepted", (bom, vec![]), Ok);
    check("config files", c);
}

/// Command-line flags: `--set`, `--device`, clap's usage errors.
#[test]
fn command_line_flags() {
    use Expect::*;
    let mut c = Cases::default();
    c.add(
        "--set without =",
        (
            s(&["train", "--set", "train.max_iters"]),
            s(&["--set", "key=value"]),
        ),
        Error,
    );
    c.add(
        "--set unknown key",
        (
            s(&["train", "--set", "train.nope=3"]),
            s(&["--set", "nope"]),
        ),
        Error,
    );
    c.add(
        "--set unknown section",
        (
            s(&["train", "--set", "nosection.x=3"]),
            s(&["--set", "nosection"]),
        ),
        Error,
    );
    c.add(
        "--set wrong type",
        (
            s(&["train", "--set", "model.n_layer=abc"]),
            s(&["--set", "n_layer"]),
        ),
        Error,
    );
    c.add(
        "--set invalid value",
        (
            s(&["train", "--set", "model.n_head=3"]),
            s(&["n_head (3)", "overrides"]),
        ),
        Error,
    );
    c.add(
        "--set train.precision unknown",
        (
            s(&["train", "--set", "train.precision=fp16"]),
            s(&["precision", "fp16", "bf16"]),
        ),
        Error,
    );
    c.add(
        "--set train.precision=bf16 on the plain path",
        (
            s(&[
                "train",
                "--set",
                "train.precision=bf16",
                "--set",
                "model.fused=false",
            ]),
            s(&["train.precision = \"bf16\"", "model.fused"]),
        ),
        Error,
    );
    c.add(
        "--set train.precision=bf16 on CUDA",
        (
            s(&["train", "--set", "train.precision=bf16", "--device", "cuda"]),
            s(&["train.precision = \"bf16\"", "CPU"]),
        ),
        Error,
    );
    c.add(
        "--set empty key",
        (s(&["train", "--set", "=3"]), s(&["--set"])),
        Error,
    );
    c.add(
        "--device tpu",
        (s(&["train", "--device", "tpu"]), s(&["tpu", "cpu"])),
        Error,
    );
    c.add(
        "--threads abc",
        (s(&["train", "--threads", "abc"]), s(&["--threads"])),
        Usage,
    );
    c.add(
        "--max-new-tokens -1",
        (
            s(&["generate", "--checkpoint", "x", "--max-new-tokens", "-1"]),
            s(&["'-1'"]),
        ),
        Usage,
    );
    c.add(
        "unknown subcommand",
        (s(&["frobnicate"]), s(&["frobnicate"])),
        Usage,
    );
    c.add(
        "unknown flag",
        (s(&["train", "--frobnicate"]), s(&["--frobnicate"])),
        Usage,
    );
    c.add(
        "generate without --checkpoint",
        (s(&["generate"]), s(&["--checkpoint"])),
        Usage,
    );
    check("command line flags", c);
}

/// Dataset files and directories (and one huge line that is fine).
#[test]
fn datasets() {
    use Expect::*;
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let mut c = Cases::default();
    c.add(
        "missing data file",
        (
            s(&["train", "--data", "/nonexistent/corpus.txt"]),
            s(&["/nonexistent/corpus.txt", "no such file"]),
        ),
        Error,
    );
    c.add(
        "empty text",
        train_data("empty.txt", &["empty.txt", "empty"]),
        Error,
    );
    c.add(
        "shorter than a block",
        train_data("short.txt", &["short.txt", "block_size"]),
        Error,
    );
    c.add(
        "latin-1 text",
        train_data("latin1.txt", &["latin1.txt", "UTF-8"]),
        Error,
    );
    c.add(
        "binary file",
        train_data("binary.txt", &["binary.txt", "binary"]),
        Error,
    );
    c.add(
        "JSONL with a bad line",
        train_data("bad_line.jsonl", &["bad_line.jsonl", "line 2", "not JSON"]),
        Error,
    );
    c.add(
        "JSONL line not an object",
        train_data(
            "not_object.jsonl",
            &["not_object.jsonl", "line 1", "object"],
        ),
        Error,
    );
    c.add(
        "CSV without the column",
        train_data("no_column.csv", &["no_column.csv", "text"]),
        Error,
    );
    c.add(
        "CSV with bad quoting",
        train_data("bad_quote.csv", &["bad_quote.csv"]),
        Error,
    );
    c.add(
        "JSON path that does not exist",
        (
            s(&[
                "train",
                "--data",
                &fx("wrong_path.json"),
                "--set",
                "data.json_path=poems.text",
            ]),
            s(&["wrong_path.json", "poems.text"]),
        ),
        Error,
    );
    c.add(
        "JSON not valid",
        train_data("not_json.json", &["not_json.json", "JSON"]),
        Error,
    );
    c.add(
        "directory with no text files",
        train_data("no_text_dir", &["no_text_dir", "no text files"]),
        Error,
    );
    let huge = tmp.join("huge_line.txt");
    let line: String = (0..2 * 1024 * 1024)
        .map(|i| (b'a' + (i * 7 % 26) as u8) as char)
        .collect();
    fs::write(&huge, line).unwrap();
    let mut a = s(&[
        "train",
        "--data",
        &huge.display().to_string(),
        "--out",
        &tmp.join("huge-run").display().to_string(),
        "--set",
        "train.max_iters=2",
    ]);
    a.extend(TINY.iter().map(|x| x.to_string()));
    c.add("one 2 MB line is accepted", (a, vec![]), Ok);
    let dir_no_files = tmp.join("empty_dir");
    fs::create_dir_all(&dir_no_files).unwrap();
    c.add(
        "empty directory",
        (
            s(&["train", "--data", &dir_no_files.display().to_string()]),
            s(&["empty_dir", "no files"]),
        ),
        Error,
    );
    check("datasets", c);
}

/// Tokenizer files given by `tokenizer.path` or found in a checkpoint.
#[test]
fn tokenizer_files() {
    use Expect::*;
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let good_run = good_run(tmp);
    let good = good_run.join("checkpoints/step-0000002");
    let mut c = Cases::default();
    let tok = |f: &str, needles: &[&str]| {
        (
            s(&["train", "--set", &format!("tokenizer.path=\"{}\"", fx(f))]),
            s(needles),
        )
    };
    c.add(
        "tokenizer not JSON",
        tok(
            "tokenizer_not_json.json",
            &["tokenizer_not_json.json", "not JSON"],
        ),
        Error,
    );
    c.add(
        "tokenizer wrong structure",
        tok(
            "tokenizer_wrong_structure.json",
            &["tokenizer_wrong_structure.json", "model"],
        ),
        Error,
    );
    c.add(
        "tokenizer bad model",
        tok(
            "tokenizer_bad_model.json",
            &["tokenizer_bad_model.json", "tokenizer"],
        ),
        Error,
    );
    c.add(
        "tokenizer missing",
        tok(
            "no_such_tokenizer.json",
            &["no_such_tokenizer.json", "tokenizer.path"],
        ),
        Error,
    );
    let other_tok = variant(tmp, &good, "ck_other_tokenizer", |d| {
        // More ids than the model embeds (a smaller tokenizer is a padded
        // vocabulary, which is valid).
        let t = headsup::tokenizer::Tokenizer::train_char(
            "a tokenizer with many more letters than the copy task: ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789",
        )
        .unwrap();
        t.save(&d.join("tokenizer.json")).unwrap();
    });
    c.add(
        "tokenizer larger than the checkpoint's vocabulary",
        (
            gen(&other_tok),
            s(&["ck_other_tokenizer", "vocab_size", "no embedding"]),
        ),
        Error,
    );
    check("tokenizer files", c);
}

/// Checkpoints, each a broken copy of a good one.
#[test]
fn checkpoints() {
    use Expect::*;
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let good_run = good_run(tmp);
    let good = good_run.join("checkpoints/step-0000002");
    let mut c = Cases::default();
    let d = variant(tmp, &good, "ck_missing_tensor", |d| {
        rewrite_weights(d, |t| t.retain(|x| !x.0.ends_with("ln_f.weight")))
    });
    c.add(
        "missing tensor",
        (
            gen(&d),
            s(&[
                "ck_missing_tensor",
                "model.safetensors",
                "ln_f.weight",
                "missing",
            ]),
        ),
        Error,
    );
    let d = variant(tmp, &good, "ck_wrong_shape", |d| {
        rewrite_weights(d, |t| {
            let w = t.iter_mut().find(|x| x.0.ends_with("wpe.weight")).unwrap();
            let n = w.2.len();
            w.1 = vec![n];
        })
    });
    c.add(
        "wrong shape",
        (gen(&d), s(&["ck_wrong_shape", "wpe.weight", "shape"])),
        Error,
    );
    let d = variant(tmp, &good, "ck_f16", |d| {
        use safetensors::tensor::{Dtype, TensorView};
        let t = read_safetensors(&d.join("model.safetensors")).unwrap();
        let raw: Vec<(String, Vec<usize>, Vec<u8>)> = t
            .into_iter()
            .map(|(n, (s, v))| (n, s, vec![0u8; v.len() * 2]))
            .collect();
        let views: Vec<(String, TensorView)> = raw
            .iter()
            .map(|(n, s, b)| {
                (
                    n.clone(),
                    TensorView::new(Dtype::F16, s.clone(), b).unwrap(),
                )
            })
            .collect();
        fs::write(
            d.join("model.safetensors"),
            safetensors::serialize(views, &None).unwrap(),
        )
        .unwrap();
    });
    c.add(
        "F16 weights",
        (gen(&d), s(&["ck_f16", "dtype F16", "float32"])),
        Error,
    );
    let d = variant(tmp, &good, "ck_truncated", |d| {
        let b = fs::read(d.join("model.safetensors")).unwrap();
        fs::write(d.join("model.safetensors"), &b[..b.len() / 2]).unwrap();
    });
    c.add(
        "truncated weights",
        (gen(&d), s(&["ck_truncated", "truncated"])),
        Error,
    );
    let d = variant(tmp, &good, "ck_disagree", |d| {
        let c = fs::read_to_string(d.join("config.json")).unwrap();
        fs::write(
            d.join("config.json"),
            c.replace("\"n_embd\": 16", "\"n_embd\": 32"),
        )
        .unwrap();
    });
    c.add(
        "config.json and weights disagree",
        (gen(&d), s(&["ck_disagree", "model.safetensors", "shape"])),
        Error,
    );
    let d = variant(tmp, &good, "ck_huge_config", |d| {
        let c = fs::read_to_string(d.join("config.json")).unwrap();
        fs::write(
            d.join("config.json"),
            c.replace("\"n_embd\": 16", "\"n_embd\": 4000000")
                .replace("\"n_head\": 2", "\"n_head\": 1"),
        )
        .unwrap();
    });
    c.add(
        "config.json far larger than the weights",
        (gen(&d), s(&["ck_huge_config", "parameters"])),
        Error,
    );
    let d = variant(tmp, &good, "ck_empty", |d| {
        fs::write(d.join("model.safetensors"), b"").unwrap()
    });
    c.add(
        "empty weights file",
        (gen(&d), s(&["ck_empty", "empty"])),
        Error,
    );
    let d = variant(tmp, &good, "ck_no_config", |d| {
        fs::remove_file(d.join("config.json")).unwrap()
    });
    c.add(
        "missing config.json",
        (gen(&d), s(&["ck_no_config", "config.json"])),
        Error,
    );
    let d = variant(tmp, &good, "ck_bad_config", |d| {
        fs::write(d.join("config.json"), b"{\"n_embd\": ").unwrap()
    });
    c.add(
        "config.json not JSON",
        (gen(&d), s(&["ck_bad_config", "config.json"])),
        Error,
    );
    let d = variant(tmp, &good, "ck_zero_heads", |d| {
        let c = fs::read_to_string(d.join("config.json")).unwrap();
        fs::write(
            d.join("config.json"),
            c.replace("\"n_head\": 2", "\"n_head\": 0"),
        )
        .unwrap();
    });
    c.add(
        "config.json with n_head 0",
        (gen(&d), s(&["ck_zero_heads", "n_head"])),
        Error,
    );
    let d = variant(tmp, &good, "ck_no_tokenizer", |d| {
        fs::remove_file(d.join("tokenizer.json")).unwrap()
    });
    c.add(
        "missing tokenizer.json",
        (gen(&d), s(&["ck_no_tokenizer", "tokenizer.json"])),
        Error,
    );
    c.add(
        "checkpoint directory missing",
        (
            s(&["generate", "--checkpoint", "/nonexistent/ck"]),
            s(&["/nonexistent/ck"]),
        ),
        Error,
    );
    c.add(
        "checkpoint is a file",
        (gen(&fixture("small.txt")), s(&["small.txt", "directory"])),
        Error,
    );
    check("checkpoints", c);
}

/// Runs resumed with `--resume`, each a broken copy of a good run.
#[test]
fn resumed_runs() {
    use Expect::*;
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let good_run = good_run(tmp);
    let good = good_run.join("checkpoints/step-0000002");
    let mut c = Cases::default();
    c.add(
        "resume a directory that is not a run",
        (
            s(&[
                "train",
                "--resume",
                &fixture("no_text_dir").display().to_string(),
            ]),
            s(&["no_text_dir", "config.toml"]),
        ),
        Error,
    );
    let mk_run = |name: &str, f: &dyn Fn(&Path)| {
        let r = tmp.join(name);
        fs::create_dir_all(r.join("checkpoints")).unwrap();
        for f in ["config.toml", "tokenizer.json", "metrics.jsonl"] {
            fs::copy(good_run.join(f), r.join(f)).unwrap();
        }
        copy_dir(&good, &r.join("checkpoints/step-0000002"));
        fs::write(r.join("checkpoints/LATEST"), "step-0000002").unwrap();
        f(&r.join("checkpoints/step-0000002"));
        r
    };
    let resume = |r: &Path| s(&["train", "--resume", &r.display().to_string()]);
    let r = mk_run("run_bad_state", &|d| {
        fs::write(d.join("trainer_state.json"), b"{\"step\": \"two\"}").unwrap()
    });
    c.add(
        "resume with a corrupt trainer_state.json",
        (
            resume(&r),
            s(&["trainer_state.json", "not a trainer state"]),
        ),
        Error,
    );
    let r = mk_run("run_bad_optimizer", &|d| {
        let b = fs::read(d.join("optimizer.safetensors")).unwrap();
        fs::write(d.join("optimizer.safetensors"), &b[..b.len() - 7]).unwrap();
    });
    c.add(
        "resume with a truncated optimizer.safetensors",
        (resume(&r), s(&["optimizer.safetensors"])),
        Error,
    );
    let r = mk_run("run_no_checkpoint", &|d| {
        fs::remove_file(d.join("trainer_state.json")).unwrap()
    });
    c.add(
        "resume with no complete checkpoint",
        (
            resume(&r),
            s(&["run_no_checkpoint", "no complete checkpoint"]),
        ),
        Error,
    );
    let r = mk_run("run_bad_config", &|_| ());
    fs::write(r.join("config.toml"), "[model]\nn_head = 3\n").unwrap();
    c.add(
        "resume with an invalid config.toml",
        (resume(&r), s(&["run_bad_config", "config.toml", "n_head"])),
        Error,
    );
    check("resumed runs", c);
}
