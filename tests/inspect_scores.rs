//! The heads table's scores and attention rollout against a second, plain
//! implementation: `scripts/make_scores_fixture.py` computed them with
//! transformers' GPT-2 (attention) and numpy (scores) on real probes of the
//! transformers fixture model, stored in tests/fixtures/attention_scores.json;
//! here the workbench's path (host model attention, `app::heads`,
//! `train::induction`) must give the same numbers. Also: the trainer's
//! induction probe scores equal the heads table's copy score on the same
//! tokens.

use dfdx::prelude::Cpu;
use headsup::app::heads::{rollout, score_heads};
use headsup::model::infer::HostModel;
use headsup::tokenizer::Tokenizer;
use headsup::train::{induction, trainer::induction_probe, AttentionMap};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn model() -> (HostModel, Tokenizer) {
    let dir = fixture_dir().join("hf-trainer/checkpoint-12");
    let gpt = headsup::model::checkpoint::load_model(&Cpu::default(), &dir).expect("model");
    let tok = Tokenizer::load(&dir.join("tokenizer.json")).expect("tokenizer");
    (HostModel::from_model(&gpt), tok)
}

fn map(host: &HostModel, ids: &[usize]) -> AttentionMap {
    AttentionMap {
        step: 12,
        tokens: ids.iter().map(|i| i.to_string()).collect(),
        n_layer: host.cfg.n_layer,
        n_head: host.cfg.n_head,
        probs: host.attention(ids),
        causal: true,
    }
}

fn close(a: f32, b: f64, what: &str) {
    assert!(
        (a as f64 - b).abs() < 2e-5,
        "{what}: workbench {a}, reference {b}"
    );
}

#[test]
fn scores_and_rollout_match_the_numpy_reference_on_real_probes() {
    let text = std::fs::read_to_string(fixture_dir().join("attention_scores.json")).unwrap();
    let fx: Value = serde_json::from_str(&text).unwrap();
    let (host, tok) = model();
    let probes = fx["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 2);
    for p in probes {
        let name = p["name"].as_str().unwrap();
        let ids: Vec<usize> = p["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        if let Some(t) = p["text"].as_str() {
            // The same tokens as the workbench's tokenizer makes.
            let ours: Vec<usize> = tok.encode(t).into_iter().map(|i| i as usize).collect();
            assert_eq!(ours, ids, "{name}: token ids");
        }
        let m = map(&host, &ids);
        let scores = score_heads(&m);
        let want = p["scores"].as_array().unwrap();
        assert_eq!(scores.len(), want.len(), "{name}");
        for (s, w) in scores.iter().zip(want) {
            let w: Vec<Value> = w.as_array().unwrap().clone();
            let what = |col: &str| format!("{name} layer {} head {} {col}", s.layer, s.head);
            assert_eq!(
                (s.layer as u64, s.head as u64),
                (w[0].as_u64().unwrap(), w[1].as_u64().unwrap())
            );
            close(s.entropy, w[2].as_f64().unwrap(), &what("entropy"));
            close(s.prev_token, w[3].as_f64().unwrap(), &what("prev"));
            close(s.sink, w[4].as_f64().unwrap(), &what("first"));
            close(s.induction, w[5].as_f64().unwrap(), &what("copy/induction"));
        }
        // The induction function the trainer uses gives the same scores.
        let ind = induction::scores(&m.probs, &ids, true);
        for (s, v) in scores.iter().zip(&ind) {
            assert_eq!(s.induction, *v, "{name}");
        }
        for (l, want) in p["rollout"].as_array().unwrap().iter().enumerate() {
            let r = rollout(&m, l);
            let want = want.as_array().unwrap();
            assert_eq!(r.len(), want.len());
            for (i, (a, b)) in r.iter().zip(want).enumerate() {
                close(
                    *a,
                    b.as_f64().unwrap(),
                    &format!("{name} rollout layer {l} [{i}]"),
                );
            }
        }
    }
}

#[test]
fn the_induction_probe_scores_what_the_table_scores_on_its_tokens() {
    let (host, tok) = model();
    let s = induction_probe(&host, tok.id_limit(), 40, 12).expect("scores");
    assert_eq!((s.half, s.n_layer, s.n_head, s.step), (20, 2, 2, 12));
    let ids = induction::probe_tokens(tok.id_limit(), 40, induction::SEED);
    let table = score_heads(&map(&host, &ids));
    for h in &table {
        let v = s.get(h.layer, h.head);
        assert!((v - h.induction).abs() <= 5e-5, "{v} vs {}", h.induction);
    }
    // Bounded by the model's positions whatever is asked.
    let big = induction_probe(&host, tok.id_limit(), 100_000, 12).unwrap();
    assert_eq!(big.half, 32);
}
