//! The masked-LM objective (`train.objective = "mlm"`): masking statistics,
//! special tokens never chosen, seeded masks, the tokenizer's special tokens
//! and BERT post-processor, a known-answer task learnt to ~100%, and the
//! binary end to end: a BERT run resumes exactly, writes masked accuracy to
//! metrics.jsonl, `eval` reports it, `fill` fills masks, bad inputs are one
//! line.

mod common;
use common::*;
use dfdx::prelude::*;
use headsup::config::TokenizerConfig;
use headsup::model::{Gpt, GptConfig, ParamMut, ParamRef};
use headsup::tokenizer::Tokenizer;
use headsup::train::masking::{mask_rows, rng_for, MaskRule, Replacement, SpecialIds};
use std::fs;

fn specials() -> SpecialIds {
    SpecialIds {
        pad: 40,
        unk: 0,
        cls: 41,
        sep: 42,
        mask: 43,
    }
}

fn rule() -> MaskRule {
    MaskRule {
        probability: 0.15,
        mask_fraction: 0.8,
        random_fraction: 0.1,
    }
}

/// Rows of 64: [CLS], 61 tokens (some [UNK] and [PAD]), [SEP].
fn rows(n_rows: usize) -> Vec<usize> {
    let sp = specials();
    let mut out = Vec::new();
    for r in 0..n_rows {
        out.push(sp.cls);
        for i in 0..61 {
            out.push(match (r * 61 + i) % 97 {
                0 => sp.unk,
                1 => sp.pad,
                k => 1 + k % 39,
            });
        }
        out.push(sp.sep);
    }
    out
}

#[test]
fn masking_statistics_over_100k_positions() {
    let sp = specials();
    let data = rows(1600); // 100_800 positions
    let live = data.iter().filter(|&&t| !sp.contains(t)).count();
    assert!(live > 95_000);
    let mut rng = rng_for(7, 0, 0);
    let (m, how) = mask_rows(&data, 64, 44, &sp, &rule(), &mut rng);
    let chosen = m.positions.len() as f64 / live as f64;
    let frac = |r: Replacement| how.iter().filter(|&&h| h == r).count() as f64 / how.len() as f64;
    let (mk, rd, kp) = (
        frac(Replacement::Mask),
        frac(Replacement::Random),
        frac(Replacement::Kept),
    );
    eprintln!(
        "{} live positions: chosen {chosen:.4}, [MASK] {mk:.4}, random {rd:.4}, kept {kp:.4}",
        live
    );
    assert!((chosen - 0.15).abs() < 0.01, "chosen {chosen}");
    assert!((mk - 0.8).abs() < 0.01, "mask {mk}");
    assert!((rd - 0.1).abs() < 0.01, "random {rd}");
    assert!((kp - 0.1).abs() < 0.01, "kept {kp}");
    // Specials are never chosen, targets are the originals, replacements
    // are what they say.
    for ((&p, &t), &h) in m.positions.iter().zip(&m.targets).zip(&how) {
        assert!(!sp.contains(data[p]), "special at {p} chosen");
        assert_eq!(t, data[p]);
        match h {
            Replacement::Mask => assert_eq!(m.inputs[p], sp.mask),
            Replacement::Kept => assert_eq!(m.inputs[p], data[p]),
            Replacement::Random => assert!(!sp.contains(m.inputs[p]) && m.inputs[p] < 44),
        }
    }
    for (i, (&a, &b)) in data.iter().zip(&m.inputs).enumerate() {
        if !m.positions.contains(&i) {
            assert_eq!(a, b, "unchosen position {i} changed");
        }
    }
    // The same seed, step and micro-batch: the same masks; another step: others.
    let again = mask_rows(&data, 64, 44, &sp, &rule(), &mut rng_for(7, 0, 0)).0;
    assert_eq!(again, m);
    let other = mask_rows(&data, 64, 44, &sp, &rule(), &mut rng_for(7, 1, 0)).0;
    assert_ne!(other.positions, m.positions);
}

#[test]
fn tokenizer_gets_bert_specials_and_post_processor() {
    for kind in ["char", "bpe"] {
        let cfg: TokenizerConfig = toml::from_str(&format!("kind = \"{kind}\"\nvocab_size = 300"))
            .expect("tokenizer config");
        let corpus = "床前明月光，疑是地上霜。举头望明月，低头思故乡。\nhello world\n".repeat(4);
        let plain = Tokenizer::build(&cfg, &corpus).unwrap();
        let before = plain.encode("床前明月光 hello");
        let tok = plain.with_bert_specials().unwrap();
        assert!(tok.has_bert_specials(), "{kind}");
        // Corpus ids are unchanged; data text never matches a special.
        assert_eq!(tok.encode("床前明月光 hello"), before, "{kind}");
        let mask = tok.special_id("[MASK]").unwrap();
        let marked = tok.encode_marked("床前明[MASK]光");
        let mut want = tok.encode("床前明");
        want.push(mask);
        want.extend(tok.encode("光"));
        assert_eq!(marked, want, "{kind}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        tok.save(&path).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(json["post_processor"]["type"], "BertProcessing", "{kind}");
        let added: Vec<&str> = json["added_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["special"] == true)
            .map(|t| t["content"].as_str().unwrap())
            .collect();
        for s in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] {
            assert!(added.contains(&s), "{kind}: {s} not in {added:?}");
        }
        let back = Tokenizer::load(&path).unwrap();
        assert_eq!(back.special_id("[MASK]"), Some(mask));
        assert_eq!(back.encode_marked("床前明[MASK]光"), marked);
    }
}

/// A known answer: rows `[CLS] a b c d e f | a b c d e f [SEP]` with one
/// letter of the copy masked; the encoder must read it from the other half.
/// Top-1 accuracy on fresh rows after training: near 100%.
#[test]
fn copy_task_with_the_copy_masked_is_learnt() {
    let dev = Cpu::default();
    let (letters, half) = (10usize, 6usize);
    // ids: 0..10 letters, 10 '|', 11 [CLS], 12 [SEP], 13 [MASK]
    let (bar, cls, sep, mask) = (10, 11, 12, 13);
    let seq = 2 * half + 3;
    let cfg = GptConfig {
        vocab_size: 14,
        n_positions: seq,
        n_embd: 32,
        n_layer: 2,
        n_head: 2,
        layer_norm_epsilon: 1e-12,
    };
    let mut model = Gpt::new_bert(&dev, cfg, 1);
    let mut seed = 12345u64;
    let mut next = move |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize % n
    };
    let mut batch = |b: usize| {
        let (mut x, mut pos, mut y) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..b {
            let word: Vec<usize> = (0..half).map(|_| next(letters)).collect();
            let at = next(half);
            x.push(cls);
            x.extend(&word);
            x.push(bar);
            for (i, &w) in word.iter().enumerate() {
                x.push(if i == at { mask } else { w });
            }
            x.push(sep);
            pos.push(r * seq + half + 2 + at);
            y.push(word[at]);
        }
        (x, pos, y)
    };
    // Adam, by hand.
    let mut sizes = Vec::new();
    model.visit(|_, p| sizes.push(p.shape().iter().product::<usize>()));
    let mut m1: Vec<Vec<f32>> = sizes.iter().map(|&n| vec![0.0; n]).collect();
    let mut m2 = m1.clone();
    let (lr, b1, b2) = (3e-3f32, 0.9f32, 0.99f32);
    let b = 32;
    let accuracy = |model: &Gpt<Cpu>, (x, pos, y): (Vec<usize>, Vec<usize>, Vec<usize>)| {
        let logits = model.logits_at(&x, &pos, 256, seq, true).as_vec();
        let hits = logits
            .chunks(14)
            .zip(&y)
            .filter(|(row, &t)| row.iter().all(|&z| z <= row[t]))
            .count();
        hits as f64 / 256.0
    };
    let mut acc = 0.0;
    let mut steps = 0;
    for step in 1..=2000 {
        if step % 200 == 0 {
            acc = accuracy(&model, batch(256));
            steps = step;
            eprintln!("step {step}: top-1 accuracy {acc:.3}");
            if acc > 0.97 {
                break;
            }
        }
        let (x, pos, y) = batch(b);
        let loss = model.mlm_loss_train(&x, &pos, &y, b, seq, model.alloc_grads(), true);
        let g = loss.backward();
        let mut grads = Vec::new();
        model.visit(|_, p| {
            grads.push(match p {
                ParamRef::One(t) => g.get(t).as_vec(),
                ParamRef::Two(t) => g.get(t).as_vec(),
            })
        });
        let mut i = 0;
        model.visit_mut(|_, mut p| {
            let mut w = match &p {
                ParamMut::One(t) => t.as_vec(),
                ParamMut::Two(t) => t.as_vec(),
            };
            let moments = m1[i].iter_mut().zip(m2[i].iter_mut());
            for ((wj, &gj), (a, v)) in w.iter_mut().zip(&grads[i]).zip(moments) {
                *a = b1 * *a + (1.0 - b1) * gj;
                *v = b2 * *v + (1.0 - b2) * gj * gj;
                let mh = *a / (1.0 - b1.powi(step));
                let vh = *v / (1.0 - b2.powi(step));
                *wj -= lr * mh / (vh.sqrt() + 1e-8);
            }
            p.copy_from(&w);
            i += 1;
        });
    }
    eprintln!("copy task, copy masked: top-1 accuracy {acc:.3} after {steps} steps (chance 0.1)");
    assert!(acc > 0.95, "accuracy {acc}");
}

const BERT: &[&str] = &["--set", "model.arch=bert", "--set", "train.objective=mlm"];

fn bert_train(out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args: Vec<&str> = BERT.to_vec();
    args.extend(extra);
    tiny_train(out, &args)
}

/// Resuming a masked-LM run from the checkpoint at step 10 reproduces the
/// uninterrupted run's losses at steps 11..20 exactly; its metrics carry
/// the masked accuracy; eval and fill work on its checkpoint.
#[test]
fn bert_run_resumes_exactly_and_its_checkpoint_fills_and_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let out = bert_train(
        &a,
        &[
            "--set",
            "train.max_iters=20",
            "--set",
            "train.checkpoint_interval=10",
            "--set",
            "train.keep_checkpoints=5",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let full = step_losses(&a);
    assert_eq!(full.len(), 20);
    let metrics = fs::read_to_string(a.join("metrics.jsonl")).unwrap();
    let eval: Vec<serde_json::Value> = metrics
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "eval")
        .collect();
    assert!(!eval.is_empty(), "{metrics}");
    for e in &eval {
        let top1 = e["masked"]["top1"].as_f64().expect("masked.top1");
        let top5 = e["masked"]["top5"].as_f64().expect("masked.top5");
        assert!((0.0..=1.0).contains(&top1) && top5 >= top1, "{e}");
    }
    let tok: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(a.join("tokenizer.json")).unwrap()).unwrap();
    assert_eq!(tok["post_processor"]["type"], "BertProcessing");
    let ck = a.join("checkpoints/step-0000010");
    let cfg: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(ck.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["architectures"][0], "BertForMaskedLM");

    let b = dir.path().join("b");
    fs::create_dir_all(b.join("checkpoints")).unwrap();
    for f in ["config.toml", "tokenizer.json", "metrics.jsonl"] {
        fs::copy(a.join(f), b.join(f)).unwrap();
    }
    copy_dir(&ck, &b.join("checkpoints/step-0000010"));
    fs::write(b.join("checkpoints/LATEST"), "step-0000010").unwrap();
    let out = run(&["train", "--resume", b.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resumed = step_losses(&b);
    assert_eq!(resumed.len(), 20, "metrics after resume: {resumed:?}");
    for k in 10..20 {
        assert_eq!(resumed[k], full[k], "step {}", k + 1);
    }

    let last = a.join("checkpoints/step-0000020");
    let ck_s = last.to_str().unwrap();
    let out = run(&["eval", "--checkpoint", ck_s, "--batches", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["masked_loss"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["masked_top1"].as_f64().unwrap() <= v["masked_top5"].as_f64().unwrap());
    assert!(v["masked_positions"].as_u64().unwrap() > 0);

    let out = run(&[
        "fill",
        "--checkpoint",
        ck_s,
        "--text",
        "abc[MASK]ef|abcdef",
        "--top-k",
        "3",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("[MASK] 1 (token 4): "), "{text}");
    let (_, list) = lines[0].split_once(": ").unwrap();
    let probs: Vec<f64> = list
        .split_whitespace()
        .filter_map(|w| w.parse::<f64>().ok())
        .collect();
    assert_eq!(probs.len(), 3, "{text}");
    assert!(
        probs.windows(2).all(|w| w[0] >= w[1]) && probs[0] <= 1.0,
        "{text}"
    );
    assert!(
        lines[1].starts_with("filled: abc") && !lines[1].contains("[MASK]"),
        "{text}"
    );

    // Bad inputs: one line each.
    let out = run(&["fill", "--checkpoint", ck_s, "--text", "abcdef"]);
    assert_clean_error(&out, &["[MASK]"]);
    let long = format!("{}[MASK]", "a".repeat(40));
    let out = run(&["fill", "--checkpoint", ck_s, "--text", &long]);
    assert_clean_error(&out, &["positions", "shorten"]);
    let out = run(&["generate", "--checkpoint", ck_s]);
    assert_clean_error(&out, &["masked LM", "headsup fill"]);
}

#[test]
fn bad_mlm_settings_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = tiny_train(&dir.path().join("r1"), &["--set", "model.arch=roberta"]);
    assert_clean_error(&out, &["model.arch", "roberta"]);
    let out = tiny_train(&dir.path().join("r2"), &["--set", "train.objective=span"]);
    assert_clean_error(&out, &["train.objective", "span"]);
    let out = tiny_train(&dir.path().join("r3"), &["--set", "model.arch=bert"]);
    assert_clean_error(&out, &["model.arch", "train.objective"]);
    let out = tiny_train(&dir.path().join("r4"), &["--set", "train.objective=mlm"]);
    assert_clean_error(&out, &["train.objective", "model.arch"]);
    let out = bert_train(
        &dir.path().join("r5"),
        &["--set", "train.mlm_probability=0"],
    );
    assert_clean_error(&out, &["train.mlm_probability"]);
    let out = bert_train(
        &dir.path().join("r6"),
        &["--set", "train.mlm_mask_fraction=0.95"],
    );
    assert_clean_error(&out, &["train.mlm_mask_fraction"]);
    // fill on a GPT-2 checkpoint
    let out = tiny_train(&dir.path().join("g"), &["--set", "train.max_iters=1"]);
    assert!(out.status.success());
    let ck = dir.path().join("g/checkpoints/step-0000001");
    let out = run(&[
        "fill",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--text",
        "a[MASK]",
    ]);
    assert_clean_error(&out, &["causal", "headsup generate"]);
}
