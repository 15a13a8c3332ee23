//! Property tests that feed arbitrary and mutated input to every parser of
//! user files: config (TOML and `--set`), the dataset readers, tokenizer.json
//! and checkpoints. Errors are fine; a panic is a failure.
//!
//! Cases per property: `PROPTEST_CASES` (default 64), e.g.
//! `PROPTEST_CASES=20000 cargo test --test fuzz`.

use dfdx::prelude::Cpu;
use headsup::config::{Config, DataConfig, SourceKind};
use headsup::data::Dataset;
use headsup::model::checkpoint::{load_model, read_safetensors, save_model};
use headsup::model::{Gpt, GptConfig};
use headsup::tokenizer::Tokenizer;
use proptest::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(64),
        ..ProptestConfig::default()
    }
}

/// Byte-level mutations of a valid file: flips, overwrites, truncation, insertion.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Digit(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), b'0'..=b'9').prop_map(|(i, d)| Mutation::Digit(i, d)),
    ]
}

fn mutate(mut bytes: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
    for m in ms {
        let n = bytes.len().max(1);
        match m {
            Mutation::Flip(i, b) => {
                if !bytes.is_empty() {
                    bytes[i % n] ^= b;
                }
            }
            Mutation::Set(i, b) => {
                if !bytes.is_empty() {
                    bytes[i % n] = *b;
                }
            }
            Mutation::Truncate(i) => bytes.truncate(i % n),
            Mutation::Insert(i, b) => {
                let at = i % (bytes.len() + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            Mutation::Digit(i, d) => {
                // Replace a digit: sizes in JSON headers and configs change.
                let digits: Vec<usize> = (0..bytes.len())
                    .filter(|&j| bytes[j].is_ascii_digit())
                    .collect();
                if !digits.is_empty() {
                    bytes[digits[i % digits.len()]] = *d;
                }
            }
        }
    }
    bytes
}

const SAMPLE_TOML: &str = include_str!("../samples/shakespeare-char.toml");

fn toml_like() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("[model]\n".to_string()),
            Just("[train]\n".to_string()),
            Just("[data]\n".to_string()),
            Just("[tokenizer]\n".to_string()),
            Just("[sample]\n".to_string()),
            Just("[ui.keys]\n".to_string()),
            "[a-z_]{1,16} = [-0-9.e+]{1,24}\n",
            "[a-z_]{1,16} = \"[^\"\\\\]{0,12}\"\n",
            "(n_layer|n_head|n_embd|block_size|batch_size|max_iters|learning_rate|train_fraction|device|source|kind|vocab_size|threads|temperature|top_p) = [-0-9.einf\"a-z]{1,24}\n",
            any::<String>(),
        ],
        0..12,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn config_parser_never_panics(text in any::<String>()) {
        let _ = Config::from_toml_str(&text);
    }

    #[test]
    fn config_like_text_never_panics(text in toml_like()) {
        if let Ok(c) = Config::from_toml_str(&text) {
            let _ = c.validate();
            let _ = Config::from_toml_str(&c.to_toml_string());
        }
    }

    #[test]
    fn mutated_sample_config_never_panics(ms in prop::collection::vec(mutation(), 1..6)) {
        let bytes = mutate(SAMPLE_TOML.as_bytes().to_vec(), &ms);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, &bytes).unwrap();
        if let Ok(c) = Config::load(&p) {
            let _ = c.validate();
        }
    }

    #[test]
    fn overrides_never_panic(
        sets in prop::collection::vec(
            prop_oneof![
                any::<String>(),
                "(model|train|data|tokenizer|sample|ui|ui\\.keys|name|seed|device|x)?\\.?[a-z_.]{0,20}=.{0,24}",
                "(model\\.n_layer|model\\.n_embd|train\\.max_iters|train\\.learning_rate|data\\.train_fraction|tokenizer\\.kind|data\\.source)=[-0-9.e\"\\[\\]{}a-z ]{0,16}",
            ],
            0..5,
        )
    ) {
        let mut c = Config::default();
        if c.apply_overrides(&sets).is_ok() {
            let _ = c.validate();
            let _ = c.to_toml_string();
            let _ = c.lr_decay_iters();
        }
    }

    #[test]
    fn dataset_readers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..3000), field in "[a-z]{0,5}") {
        let dir = tempfile::tempdir().unwrap();
        for (kind, name) in [
            (SourceKind::Text, "d.txt"),
            (SourceKind::Jsonl, "d.jsonl"),
            (SourceKind::Json, "d.json"),
            (SourceKind::Csv, "d.csv"),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, &bytes).unwrap();
            for f in ["text", field.as_str()] {
                load_data(kind, &p, f);
            }
        }
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/x.txt"), &bytes).unwrap();
        load_data(SourceKind::Dir, dir.path(), "text");
    }

    #[test]
    fn structured_data_never_panics(
        ms in prop::collection::vec(mutation(), 0..6),
        which in 0usize..3,
    ) {
        let valid = [
            (SourceKind::Jsonl, "d.jsonl", "{\"text\": \"hello\", \"title\": \"a\"}\n{\"text\": [\"x\", \"y\"]}\n\n{\"text\": 3}\n"),
            (SourceKind::Json, "d.json", "{\"text\": [{\"text\": \"a\"}, \"b\", [\"c\", {\"text\": null}]], \"n\": 1.5e3}"),
            (SourceKind::Csv, "d.csv", "title,text\na,\"hello, world\"\nb,\"multi\nline\"\n"),
        ];
        let (kind, name, text) = valid[which];
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, mutate(text.as_bytes().to_vec(), &ms)).unwrap();
        load_data(kind, &p, "text");
    }

    #[test]
    fn tokenizer_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokenizer.json");
        std::fs::write(&p, &bytes).unwrap();
        if let Ok(t) = Tokenizer::load(&p) {
            exercise_tokenizer(&t);
        }
    }

    #[test]
    fn mutated_tokenizer_never_panics(ms in prop::collection::vec(mutation(), 1..6), bpe in any::<bool>()) {
        let (c, b) = valid_tokenizers();
        let bytes = mutate(if bpe { b.clone() } else { c.clone() }, &ms);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokenizer.json");
        std::fs::write(&p, &bytes).unwrap();
        if let Ok(t) = Tokenizer::load(&p) {
            exercise_tokenizer(&t);
        }
    }

    #[test]
    fn safetensors_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4000)) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("model.safetensors");
        std::fs::write(&p, &bytes).unwrap();
        let _ = read_safetensors(&p);
    }

    #[test]
    fn mutated_checkpoint_never_panics(
        ms in prop::collection::vec(mutation(), 1..5),
        target in 0usize..3,
    ) {
        let (cfg_json, weights) = valid_checkpoint();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (cfg_bytes, w_bytes) = match target {
            0 => (cfg_json.clone(), mutate(weights.clone(), &ms)),
            1 => (mutate(cfg_json.clone(), &ms), weights.clone()),
            // Small mutations of the safetensors header (sizes, offsets, names).
            _ => {
                let n = u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize + 8;
                let mut w = weights.clone();
                let header = mutate(w[..n].to_vec(), &ms);
                w.splice(..n, header);
                (cfg_json.clone(), w)
            }
        };
        std::fs::write(d.join("config.json"), &cfg_bytes).unwrap();
        std::fs::write(d.join("model.safetensors"), &w_bytes).unwrap();
        if let Ok(m) = load_model(&Cpu::default(), d) {
            let _ = m.cfg.n_params();
        }
    }
}

fn load_data(kind: SourceKind, path: &Path, field: &str) {
    let cfg = DataConfig {
        source: kind,
        path: Some(path.to_path_buf()),
        field: field.to_string(),
        ..DataConfig::default()
    };
    if let Ok(ds) = Dataset::load(&cfg, 1) {
        let _ = ds.corpus();
        let _ = ds.stats(None, 0.9);
    }
}

fn exercise_tokenizer(t: &Tokenizer) {
    let ids = t.encode("hello wörld 床前\n\x1b[31m");
    let _ = t.decode(&ids);
    let _ = t.pieces("hello");
    for id in 0..(t.vocab_size() as u32 + 2).min(300) {
        let _ = t.id_to_piece(id);
        let _ = t.decode(&[id]);
    }
}

fn valid_tokenizers() -> &'static (Vec<u8>, Vec<u8>) {
    static T: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    T.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let corpus = "the quick brown fox jumps over the lazy dog\n床前明月光\n".repeat(20);
        let c = Tokenizer::train_char(&corpus).unwrap();
        c.save(&dir.path().join("c.json")).unwrap();
        let b = Tokenizer::train_bpe(&corpus, 280).unwrap();
        b.save(&dir.path().join("b.json")).unwrap();
        (
            std::fs::read(dir.path().join("c.json")).unwrap(),
            std::fs::read(dir.path().join("b.json")).unwrap(),
        )
    })
}

fn valid_checkpoint() -> &'static (Vec<u8>, Vec<u8>) {
    static C: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    C.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let cfg = GptConfig {
            vocab_size: 11,
            n_positions: 8,
            n_embd: 8,
            n_layer: 1,
            n_head: 2,
            layer_norm_epsilon: 1e-5,
        };
        let m = Gpt::new(&Cpu::default(), cfg, 3);
        save_model(&m, dir.path()).unwrap();
        (
            std::fs::read(dir.path().join("config.json")).unwrap(),
            std::fs::read(dir.path().join("model.safetensors")).unwrap(),
        )
    })
}
