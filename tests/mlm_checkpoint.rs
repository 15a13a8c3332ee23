//! BERT checkpoints in `BertForMaskedLM` layout, both ways: the fixture
//! transformers saved (scripts/make_bert_fixtures.py) fills masks as
//! transformers does, and what headsup writes round-trips and has
//! transformers' names and config keys. With `HEADSUP_BERT_EXPORT=DIR` the
//! round-trip test also leaves its checkpoint and logits in DIR for
//! `scripts/make_bert_fixtures.py --check DIR` (the transformers side).

use dfdx::prelude::*;
use headsup::model::checkpoint::{load_model, read_safetensors, save_model};
use headsup::model::sample::argmax;
use headsup::model::{Gpt, GptConfig, ParamMut};
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bert_tiny")
}

fn expected() -> serde_json::Value {
    let text = std::fs::read_to_string(fixture().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn ids(v: &serde_json::Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

#[test]
fn transformers_bert_fills_masks_as_transformers_does() {
    let exp = expected();
    let model = load_model(&Cpu::default(), &fixture()).expect("the fixture loads");
    assert_eq!(model.arch(), headsup::model::bert::Arch::Bert);
    let input = ids(&exp["input_ids"]);
    let positions = ids(&exp["positions"]);
    let v = model.cfg.vocab_size;
    for fused in [true, false] {
        let logits = model
            .logits_at(&input, &positions, 1, input.len(), fused)
            .as_vec();
        let mut worst = 0.0f32;
        for (r, want) in exp["logits"].as_array().unwrap().iter().enumerate() {
            let row = &logits[r * v..(r + 1) * v];
            for (a, b) in row.iter().zip(want.as_array().unwrap()) {
                worst = worst.max((a - b.as_f64().unwrap() as f32).abs());
            }
            assert_eq!(
                argmax(row),
                exp["top5"][r][0].as_u64().unwrap() as usize,
                "top-1 at mask {r}"
            );
        }
        eprintln!("fused={fused}: max |logit - transformers| = {worst:.2e}");
        assert!(worst < 1e-4, "logits differ from transformers by {worst}");
    }
    // The tokenizer saved with it gives transformers' ids.
    let tok = headsup::tokenizer::Tokenizer::load_dir(&fixture()).unwrap();
    let text = exp["text"].as_str().unwrap();
    let got: Vec<usize> = tok.encode(text).iter().map(|&i| i as usize).collect();
    assert_eq!(
        got,
        input[1..input.len() - 1],
        "ids without [CLS] and [SEP]"
    );
}

fn tiny() -> GptConfig {
    GptConfig {
        vocab_size: 17,
        n_positions: 12,
        n_embd: 8,
        n_layer: 2,
        n_head: 2,
        layer_norm_epsilon: 1e-12,
    }
}

#[test]
fn headsup_bert_checkpoint_round_trips_in_transformers_layout() {
    let dev = Cpu::default();
    let mut model = Gpt::new_bert(&dev, tiny(), 4);
    // Weights far from initialisation, so that every tensor matters.
    let mut k = 0u32;
    model.visit_mut(|_, mut p| {
        let v: Vec<f32> = match &p {
            ParamMut::One(t) => t.as_vec(),
            ParamMut::Two(t) => t.as_vec(),
        };
        let v: Vec<f32> = v
            .iter()
            .enumerate()
            .map(|(i, x)| x * 15.0 + 0.1 * ((i as f32 * 1.3 + k as f32).sin()))
            .collect();
        p.copy_from(&v);
        k += 1;
    });
    let export = std::env::var_os("HEADSUP_BERT_EXPORT").map(PathBuf::from);
    let tmp = tempfile::tempdir().unwrap();
    let dir = export.clone().unwrap_or_else(|| tmp.path().join("bert"));
    save_model(&model, &dir).unwrap();

    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["architectures"][0], "BertForMaskedLM");
    assert_eq!(cfg["model_type"], "bert");
    assert_eq!(cfg["hidden_size"], 8);
    assert_eq!(cfg["intermediate_size"], 32);
    assert_eq!(cfg["max_position_embeddings"], 12);
    assert_eq!(cfg["hidden_act"], "gelu");
    let st = read_safetensors(&dir.join("model.safetensors")).unwrap();
    for (name, shape) in [
        ("bert.embeddings.word_embeddings.weight", vec![17, 8]),
        ("bert.embeddings.token_type_embeddings.weight", vec![2, 8]),
        (
            "bert.encoder.layer.0.attention.self.query.weight",
            vec![8, 8],
        ),
        ("bert.encoder.layer.1.attention.self.value.bias", vec![8]),
        (
            "bert.encoder.layer.0.intermediate.dense.weight",
            vec![32, 8],
        ),
        ("bert.encoder.layer.0.output.dense.weight", vec![8, 32]),
        ("cls.predictions.transform.dense.weight", vec![8, 8]),
        ("cls.predictions.bias", vec![17]),
    ] {
        assert_eq!(st.get(name).map(|t| t.0.clone()), Some(shape), "{name}");
    }
    assert!(!st.keys().any(|k| k.contains("qkv")), "{:?}", st.keys());

    let back = load_model(&dev, &dir).unwrap();
    let input: Vec<usize> = vec![2, 5, 9, 4, 11, 16, 4, 7, 3];
    let positions = vec![3, 6];
    let a = model.logits_at(&input, &positions, 1, input.len(), true);
    let b = back.logits_at(&input, &positions, 1, input.len(), true);
    assert_eq!(a.as_vec(), b.as_vec(), "logits after a round trip");
    if export.is_some() {
        let exp = serde_json::json!({
            "input_ids": [input],
            "positions": positions,
            "logits": a.as_vec().chunks(17).map(|r| r.to_vec()).collect::<Vec<_>>(),
        });
        std::fs::write(dir.join("expected.json"), exp.to_string()).unwrap();
    }
}

#[test]
fn bad_bert_config_is_one_line_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("config.json")).unwrap())
            .unwrap();
    cfg["hidden_act"] = "relu".into();
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    std::fs::copy(
        fixture().join("model.safetensors"),
        dir.join("model.safetensors"),
    )
    .unwrap();
    let e = load_model(&Cpu::default(), &dir).unwrap_err().to_string();
    assert!(e.contains("hidden_act `relu`") && !e.contains('\n'), "{e}");
    // A missing tensor is named.
    cfg["hidden_act"] = "gelu".into();
    cfg["num_hidden_layers"] = 3.into();
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    let e = load_model(&Cpu::default(), &dir).unwrap_err().to_string();
    assert!(
        e.contains("bert.encoder.layer.2.") && e.contains("missing"),
        "{e}"
    );
}
