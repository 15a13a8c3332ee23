//! Checkpoints of the GPT-2 family as transformers writes them: the tiny
//! fixture made by `scripts/make_gpt2_fixtures.py` (base-model tensor names,
//! vocabulary padded to 320 past a 300-token vocab.json + merges.txt) gives
//! the ids transformers and GPT2Tokenizer give; the LM-head name layout and
//! `n_ctx` load too; `eval --references` scores completions; and the bad
//! inputs of this family fail with one clear line.

mod common;

use common::{assert_clean_error, fixture, run};
use headsup::model::checkpoint::{read_safetensors, safetensors_bytes};
use headsup::model::infer::{HostModel, KvCache};
use headsup::model::pretrained;
use headsup::model::sample::{generate, generate_within};
use headsup::tokenizer::Tokenizer;
use headsup::train::SampleSettings;
use std::path::{Path, PathBuf};

fn expected() -> serde_json::Value {
    let text = std::fs::read_to_string(fixture("gpt2_tiny_expected.json"))
        .expect("gpt2_tiny_expected.json");
    serde_json::from_str(&text).expect("JSON")
}

fn ids(v: &serde_json::Value) -> Vec<usize> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("id") as usize)
        .collect()
}

fn greedy(max: usize) -> SampleSettings {
    SampleSettings {
        temperature: 0.0,
        top_k: 0,
        top_p: 1.0,
        max_new_tokens: max,
        seed: 0,
    }
}

/// A copy of the tiny fixture in a temp dir, to spoil one file of.
fn copy_fixture() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("gpt2");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for f in [
        "config.json",
        "model.safetensors",
        "vocab.json",
        "merges.txt",
    ] {
        std::fs::copy(fixture("gpt2_tiny").join(f), dir.join(f)).expect("copy");
    }
    (tmp, dir)
}

fn edit_config(dir: &Path, f: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let p = dir.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("JSON");
    f(v.as_object_mut().expect("object"));
    std::fs::write(&p, serde_json::to_string(&v).expect("JSON")).expect("write");
}

fn greedy_ids(dir: &Path, n: usize) -> Vec<usize> {
    let p = pretrained::open(dir).expect("the checkpoint loads");
    let host = HostModel::from_model(&p.model);
    let prompt = ids(&expected()["prompt_ids"]);
    let mut out = Vec::new();
    generate_within(&host, p.id_limit, &prompt, &greedy(n), true, |id, _| {
        out.push(id);
        true
    });
    out
}

#[test]
fn vocab_and_merges_tokenize_as_gpt2_tokenizer() {
    let ex = expected();
    let tok = Tokenizer::load_dir(&fixture("gpt2_tiny")).expect("vocab.json + merges.txt load");
    assert_eq!(tok.id_limit(), 300);
    let text = ex["mixed_text"].as_str().expect("text");
    let got: Vec<usize> = tok.encode(text).into_iter().map(|i| i as usize).collect();
    assert_eq!(got, ids(&ex["mixed_ids"]), "ids of {text:?}");
    assert_eq!(tok.decode(&tok.encode(text)), text);
    let prompt: Vec<usize> = tok
        .encode(ex["prompt"].as_str().expect("prompt"))
        .into_iter()
        .map(|i| i as usize)
        .collect();
    assert_eq!(prompt, ids(&ex["prompt_ids"]));
    assert_eq!(tok.pieces(text).concat(), text);
}

#[test]
fn base_model_names_and_padded_vocab_give_transformers_logits_and_greedy_ids() {
    let ex = expected();
    let p = pretrained::open(&fixture("gpt2_tiny")).expect("the fixture loads");
    assert_eq!(p.model.cfg.vocab_size, 320);
    assert_eq!(p.id_limit, 300);
    let note = p
        .padding_note
        .clone()
        .expect("a padded vocabulary is noted");
    assert!(note.contains("320") && note.contains("300..319"), "{note}");
    let host = HostModel::from_model(&p.model);
    let prompt = ids(&ex["prompt_ids"]);
    let mut cache = KvCache::new(&host.cfg);
    let mut logits = Vec::new();
    for &t in &prompt {
        logits = host.step(&mut cache, t, None);
    }
    let want: Vec<f64> = ex["last_logits"]
        .as_array()
        .expect("logits")
        .iter()
        .map(|x| x.as_f64().unwrap_or(f64::NAN))
        .collect();
    assert_eq!(logits.len(), want.len());
    let worst = logits
        .iter()
        .zip(&want)
        .map(|(a, b)| (*a as f64 - b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst < 1e-4,
        "largest logit difference from transformers {worst}"
    );

    // Masked to the tokenizer's ids: transformers' greedy ids.
    assert_eq!(
        greedy_ids(&fixture("gpt2_tiny"), 20),
        ids(&ex["greedy_ids"])
    );
    // Unmasked, the padded rows win: the mask is what keeps them out.
    let mut unmasked = Vec::new();
    generate(&host, &prompt, &greedy(20), true, |id, _| {
        unmasked.push(id);
        true
    });
    assert_eq!(unmasked, ids(&ex["greedy_unmasked"]));
    assert!(unmasked.iter().any(|&i| i >= 300));
}

#[test]
fn sampling_never_picks_a_padded_id() {
    let p = pretrained::open(&fixture("gpt2_tiny")).expect("loads");
    let host = HostModel::from_model(&p.model);
    let s = SampleSettings {
        temperature: 1.5,
        top_k: 0,
        top_p: 1.0,
        max_new_tokens: 200,
        seed: 7,
    };
    let mut n = 0;
    generate_within(&host, p.id_limit, &[1, 2, 3], &s, true, |id, _| {
        assert!(id < 300, "sampled padded id {id}");
        n += 1;
        true
    });
    assert_eq!(n, 200);
}

#[test]
fn lm_head_names_and_n_ctx_load_alike() {
    let want = ids(&expected()["greedy_ids"]);
    let (_tmp, dir) = copy_fixture();
    let st = dir.join("model.safetensors");
    let tensors = read_safetensors(&st).expect("reads");
    let mut named: Vec<(String, Vec<usize>, Vec<f32>)> = tensors
        .iter()
        .map(|(k, (s, d))| (format!("transformer.{k}"), s.clone(), d.clone()))
        .collect();
    let (s, d) = tensors.get("wte.weight").expect("wte").clone();
    named.push(("lm_head.weight".into(), s, d));
    std::fs::write(&st, safetensors_bytes(&named, None)).expect("write");
    edit_config(&dir, |c| {
        let n = c.remove("n_positions").expect("n_positions");
        c.insert("n_ctx".into(), n);
    });
    assert_eq!(greedy_ids(&dir, 20), want);

    // A head that is not the embedding cannot be computed by a tied model.
    named.last_mut().expect("lm_head").2[0] += 1.0;
    std::fs::write(&st, safetensors_bytes(&named, None)).expect("write");
    let err = pretrained::open(&dir)
        .expect_err("an untied head is refused")
        .to_string();
    assert!(err.contains("lm_head.weight"), "{err}");
}

#[test]
fn generate_prints_transformers_greedy_text_and_notes_the_padding() {
    let ex = expected();
    let dir = fixture("gpt2_tiny");
    let prompt = ex["prompt"].as_str().expect("prompt");
    let out = run(&[
        "generate",
        "--checkpoint",
        dir.to_str().expect("path"),
        "--prompt",
        prompt,
        "--temperature",
        "0",
        "--max-new-tokens",
        "20",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let tok = Tokenizer::load_dir(&dir).expect("tokenizer");
    let want: Vec<u32> = ids(&ex["greedy_ids"])
        .into_iter()
        .map(|i| i as u32)
        .collect();
    let text = String::from_utf8_lossy(&out.stdout);
    let body = text.strip_suffix('\n').unwrap_or(&text);
    let decoded = tok.decode(&want);
    assert_eq!(
        body,
        headsup::sanitize::escape_keep_newlines(&format!("{prompt}{decoded}"))
    );
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains("never sampled"))
            .count(),
        1,
        "{stderr}"
    );
}

fn write_refs(dir: &Path, lines: &[serde_json::Value]) -> PathBuf {
    let p = dir.join("refs.jsonl");
    let text: Vec<String> = lines.iter().map(|v| v.to_string()).collect();
    std::fs::write(&p, text.join("\n") + "\n").expect("write");
    p
}

#[test]
fn eval_references_reports_every_metric() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let refs = write_refs(
        tmp.path(),
        &[
            serde_json::json!({"prompt": "To be, or not", "reference": " to be, that is the question"}),
            serde_json::json!({"prompt": "Whether 'tis nobler", "reference": " in the mind to suffer"}),
            serde_json::json!({"prompt": "", "reference": "the"}),
        ],
    );
    let report = tmp.path().join("report.json");
    let ck = fixture("gpt2_tiny");
    let args = [
        "eval",
        "--checkpoint",
        ck.to_str().expect("path"),
        "--references",
        refs.to_str().expect("path"),
        "--max-new-tokens",
        "12",
        "--json",
        "--report",
        report.to_str().expect("path"),
    ];
    let out = run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report written"))
            .expect("JSON");
    assert_eq!(v, file);
    assert_eq!(v["examples"], 3);
    assert_eq!(v["cjk"], false);
    for k in ["rouge1", "rouge2", "rougeL", "f1", "exact_match"] {
        let x = v[k].as_f64().unwrap_or(-1.0);
        assert!((0.0..=100.0).contains(&x), "{k} = {x}");
    }
    let bleu = v["bleu"]["score"].as_f64().unwrap_or(-1.0);
    assert!((0.0..=100.0).contains(&bleu));
    assert_eq!(v["bleu"]["tokenize"], "13a");
    let ppl = v["perplexity"].as_f64().expect("perplexity");
    assert!(ppl.is_finite() && ppl > 1.0, "{ppl}");
    assert!(v["reference_tokens"].as_u64().unwrap_or(0) >= 8);
    // Greedy completions are the greedy ids decoded (up to the first newline).
    let tok = Tokenizer::load_dir(&ck).expect("tokenizer");
    let want: Vec<u32> = ids(&expected()["greedy_ids"])[..12]
        .iter()
        .map(|&i| i as u32)
        .collect();
    let full = tok.decode(&want);
    let first_line = full.split('\n').next().unwrap_or("").trim();
    assert_eq!(v["per_example"][0]["completion"], first_line);
    // The scores are the metrics' on these strings.
    let completions: Vec<String> = v["per_example"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["completion"].as_str().unwrap_or("").to_string())
        .collect();
    let hyps: Vec<&str> = completions.iter().map(|s| s.as_str()).collect();
    let b = headsup::eval::metrics::corpus_bleu(
        &hyps,
        &[
            " to be, that is the question",
            " in the mind to suffer",
            "the",
        ],
        false,
    );
    assert!((b.score - bleu).abs() < 1e-9);

    // The table names every metric.
    let out = run(&args[..args.len() - 3]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    for k in [
        "BLEU-4",
        "ROUGE-1",
        "ROUGE-2",
        "ROUGE-L",
        "token F1",
        "exact match",
        "perplexity",
        "never sampled",
    ] {
        assert!(table.contains(k), "{k} missing from:\n{table}");
    }
}

#[test]
fn eval_sampling_is_seeded_and_cjk_is_stated() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let refs = write_refs(
        tmp.path(),
        &[serde_json::json!({"prompt": "床前明月光，", "reference": "疑是地上霜。"})],
    );
    let ck = fixture("gpt2_tiny");
    let args = [
        "eval",
        "--checkpoint",
        ck.to_str().expect("path"),
        "--references",
        refs.to_str().expect("path"),
        "--temperature",
        "1.0",
        "--seed",
        "5",
        "--max-new-tokens",
        "8",
        "--stop",
        "",
        "--json",
    ];
    let a = run(&args);
    let b = run(&args);
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert_eq!(a.stdout, b.stdout, "the same seed gives the same report");
    let v: serde_json::Value = serde_json::from_slice(&a.stdout).expect("JSON");
    assert_eq!(v["cjk"], true);
    assert_eq!(v["bleu"]["tokenize"], "zh");
    assert!(v["tokenization"].as_str().unwrap_or("").contains("CJK"));
}

#[test]
fn bad_references_files_fail_with_one_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ck = fixture("gpt2_tiny");
    let cases: &[(&str, &[&str])] = &[
        (
            "{\"prompt\": \"a\", \"reference\": \"b\"}\nnot json\n",
            &["line 2", "not JSON"],
        ),
        ("{\"prompt\": \"a\"}\n", &["line 1", "reference"]),
        (
            "{\"prompt\": 3, \"reference\": \"b\"}\n",
            &["line 1", "prompt", "not a string"],
        ),
        ("\n\n", &["no examples"]),
    ];
    for (i, (text, needles)) in cases.iter().enumerate() {
        let p = tmp.path().join(format!("r{i}.jsonl"));
        std::fs::write(&p, text).expect("write");
        let out = run(&[
            "eval",
            "--checkpoint",
            ck.to_str().expect("path"),
            "--references",
            p.to_str().expect("path"),
        ]);
        let mut all = vec!["references"];
        all.extend_from_slice(needles);
        assert_clean_error(&out, &all);
    }
}

/// `generate` on a spoiled copy of the fixture fails with one line naming
/// all of `needles`.
fn assert_refused(dir: &Path, needles: &[&str]) {
    let out = run(&[
        "generate",
        "--checkpoint",
        dir.to_str().expect("path"),
        "--max-new-tokens",
        "2",
    ]);
    assert_clean_error(&out, needles);
}

#[test]
fn unsupported_activation_is_refused_naming_the_key() {
    let (_tmp, dir) = copy_fixture();
    edit_config(&dir, |c| {
        c.insert("activation_function".into(), "relu".into());
    });
    assert_refused(&dir, &["activation_function", "relu", "gelu_new"]);
}

#[test]
fn other_architectures_are_refused_naming_the_key() {
    let (_tmp, dir) = copy_fixture();
    edit_config(&dir, |c| {
        c.insert("model_type".into(), "llama".into());
    });
    assert_refused(&dir, &["model_type", "llama", "GPT-2"]);
    let (_tmp, dir) = copy_fixture();
    edit_config(&dir, |c| {
        c.insert(
            "architectures".into(),
            serde_json::json!(["GPT2ForSequenceClassification"]),
        );
    });
    assert_refused(&dir, &["architectures", "GPT2ForSequenceClassification"]);
}

#[test]
fn a_tokenizer_larger_than_the_model_is_refused() {
    let (_tmp, dir) = copy_fixture();
    edit_config(&dir, |c| {
        c.insert("vocab_size".into(), 280.into());
    });
    assert_refused(&dir, &["300 ids", "vocab_size 280", "280..299"]);
}

#[test]
fn pytorch_bin_only_says_how_to_convert() {
    let (_tmp, dir) = copy_fixture();
    std::fs::remove_file(dir.join("model.safetensors")).expect("rm");
    std::fs::write(dir.join("pytorch_model.bin"), b"PK\x03\x04 not really").expect("write");
    assert_refused(
        &dir,
        &[
            "pytorch_model.bin",
            "safetensors",
            "save_pretrained",
            "safe_serialization=True",
        ],
    );
}

#[test]
fn malformed_merges_are_refused_with_the_line() {
    let (_tmp, dir) = copy_fixture();
    let merges = dir.join("merges.txt");
    let text = std::fs::read_to_string(&merges).expect("read");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(3, "a b c");
    std::fs::write(&merges, lines.join("\n")).expect("write");
    assert_refused(&dir, &["merges.txt", "line 4", "two tokens"]);

    std::fs::write(&merges, "#version: 0.2\nĠ t\nzz qq\n").expect("write");
    assert_refused(&dir, &["merges.txt", "line 3", "zz", "not in vocab.json"]);

    std::fs::remove_file(&merges).expect("rm");
    assert_refused(&dir, &["merges.txt", "missing"]);
}

#[test]
fn a_vocab_without_the_byte_alphabet_is_refused() {
    let (_tmp, dir) = copy_fixture();
    let p = dir.join("vocab.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("JSON");
    v.as_object_mut().expect("object").remove("!");
    std::fs::write(&p, v.to_string()).expect("write");
    assert_refused(&dir, &["vocab.json", "byte 0x21", "not"]);
}

#[test]
fn a_directory_without_any_tokenizer_says_what_it_needs() {
    let (_tmp, dir) = copy_fixture();
    std::fs::remove_file(dir.join("vocab.json")).expect("rm");
    std::fs::remove_file(dir.join("merges.txt")).expect("rm");
    assert_refused(&dir, &["tokenizer.json", "vocab.json", "merges.txt"]);
}
