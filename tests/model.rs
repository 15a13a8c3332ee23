//! The model against first principles: gradients against finite differences,
//! attention probabilities, checkpoints round-tripping, and the host-side
//! inference path against the dfdx forward pass.

use dfdx::prelude::*;
use headsup::model::checkpoint::{load_model, save_model};
use headsup::model::infer::{HostModel, KvCache};
use headsup::model::{Gpt, GptConfig, KernelSet, ParamMut, ParamRef};

fn tiny() -> GptConfig {
    GptConfig {
        vocab_size: 11,
        n_positions: 8,
        n_embd: 8,
        n_layer: 2,
        n_head: 2,
        layer_norm_epsilon: 1e-5,
    }
}

fn batch(cfg: &GptConfig, b: usize, s: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut x = Vec::new();
    let mut y = Vec::new();
    let mut r = seed;
    for _ in 0..b * s {
        r = r
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x.push((r >> 33) as usize % cfg.vocab_size);
        r = r
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        y.push((r >> 33) as usize % cfg.vocab_size);
    }
    (x, y)
}

/// Perturbs one element of parameter number `pi` by `delta`.
fn nudge(model: &mut Gpt<Cpu>, pi: usize, j: usize, delta: f32) {
    let mut k = 0;
    model.visit_mut(|_, mut p| {
        if k == pi {
            let mut v = match &p {
                ParamMut::One(t) => t.as_vec(),
                ParamMut::Two(t) => t.as_vec(),
            };
            v[j] += delta;
            p.copy_from(&v);
        }
        k += 1;
    });
}

fn check_gradients(fused: bool) {
    let dev = Cpu::default();
    let cfg = tiny();
    let mut model = Gpt::new(&dev, cfg, 3);
    // Make LayerNorm gains and biases non-trivial so their gradients are tested too.
    let mut k = 0u32;
    model.visit_mut(|_, mut p| {
        if let ParamMut::One(t) = &p {
            let v: Vec<f32> = t
                .as_vec()
                .iter()
                .enumerate()
                .map(|(i, x)| x + 0.1 * ((i as f32 + k as f32).sin()))
                .collect();
            p.copy_from(&v);
        }
        k += 1;
    });
    let (b, s) = (2, 6);
    let (x, y) = batch(&cfg, b, s, 9);
    let loss = model.loss_train(&x, &y, b, s, model.alloc_grads(), fused);
    let grads = loss.backward();
    let mut analytic: Vec<(String, Vec<f32>)> = Vec::new();
    model.visit(|name, p| {
        analytic.push((
            name,
            match p {
                ParamRef::One(t) => grads.get(t).as_vec(),
                ParamRef::Two(t) => grads.get(t).as_vec(),
            },
        ))
    });
    let eps = 1e-2f32;
    let mut checked = 0;
    let mut worst = 0.0f32;
    for (pi, (name, g)) in analytic.iter().enumerate() {
        // A spread of coordinates of every tensor.
        let n = g.len();
        for j in [0, n / 3, n / 2, (2 * n) / 3, n - 1] {
            nudge(&mut model, pi, j, eps);
            let lp = model.loss(&x, &y, b, s, fused) as f64;
            nudge(&mut model, pi, j, -2.0 * eps);
            let lm = model.loss(&x, &y, b, s, fused) as f64;
            nudge(&mut model, pi, j, eps);
            let numeric = ((lp - lm) / (2.0 * eps as f64)) as f32;
            let err = (numeric - g[j]).abs() / (numeric.abs().max(g[j].abs()).max(1e-2));
            worst = worst.max(err);
            assert!(
                err < 2e-2,
                "{name}[{j}]: analytic {} vs numeric {numeric} (rel err {err})",
                g[j]
            );
            checked += 1;
        }
    }
    eprintln!("fused={fused}: {checked} coordinates checked, worst relative error {worst:.2e}");
}

#[test]
fn gradients_match_finite_differences_plain() {
    check_gradients(false);
}

#[test]
fn gradients_match_finite_differences_fused() {
    check_gradients(true);
}

#[test]
fn attention_rows_sum_to_one_and_are_causal() {
    let dev = Cpu::default();
    let cfg = tiny();
    let model = Gpt::new(&dev, cfg, 5);
    let (b, s) = (2, 7);
    let (x, _) = batch(&cfg, b, s, 1);
    for fused in [false, true] {
        let out = model.forward_inference(&x, b, s, true, fused);
        assert_eq!(out.attention.len(), cfg.n_layer);
        for layer in &out.attention {
            assert_eq!(*layer.shape(), (b, cfg.n_head, s, s));
            let v = layer.as_vec();
            for row in v.chunks(s).enumerate() {
                let (r, vals) = row;
                let q = r % s;
                let sum: f32 = vals.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "row sums to {sum}");
                for (k, &p) in vals.iter().enumerate() {
                    if k > q {
                        assert_eq!(p, 0.0, "query {q} attends to future key {k}");
                    } else {
                        assert!(p > 0.0);
                    }
                }
            }
        }
    }
}

#[test]
fn host_model_matches_dfdx_forward() {
    let dev = Cpu::default();
    let cfg = tiny();
    let model = Gpt::new(&dev, cfg, 11);
    let s = 8;
    let (x, _) = batch(&cfg, 1, s, 4);
    let out = model.forward_inference(&x, 1, s, true, false);
    let logits = out.logits.as_vec();
    let host = HostModel::from_model(&model);
    let mut cache = KvCache::new(&cfg);
    for (t, &tok) in x.iter().enumerate() {
        let l = host.step(&mut cache, tok, None);
        for (a, b) in l
            .iter()
            .zip(&logits[t * cfg.vocab_size..(t + 1) * cfg.vocab_size])
        {
            assert!((a - b).abs() < 1e-4, "position {t}: {a} vs {b}");
        }
    }
    let att = host.attention(&x);
    for (l, layer) in out.attention.iter().enumerate() {
        let v = layer.as_vec();
        for h in 0..cfg.n_head {
            for i in 0..s * s {
                assert!((att[l][h][i] - v[h * s * s + i]).abs() < 1e-5);
            }
        }
    }
}

/// The decode step splits its products over threads (blocks of 256 output
/// columns, blocks of 512 vocabulary rows): widths and a vocabulary past
/// those blocks, and the logits must be bit-identical at 1 and 3 threads
/// and match the dfdx forward pass.
#[test]
fn host_model_decode_is_identical_at_any_thread_count() {
    let dev = Cpu::default();
    let cfg = GptConfig {
        vocab_size: 1100,
        n_positions: 16,
        n_embd: 128,
        n_layer: 2,
        n_head: 4,
        layer_norm_epsilon: 1e-5,
    };
    let model = Gpt::new(&dev, cfg, 5);
    let host = HostModel::from_model(&model);
    let (x, _) = batch(&cfg, 1, 12, 9);
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let mut cache = KvCache::new(&cfg);
                x.iter()
                    .flat_map(|&t| host.step(&mut cache, t, None))
                    .collect::<Vec<f32>>()
            })
    };
    let one = run(1);
    assert_eq!(one, run(3), "logits differ between 1 and 3 threads");
    let want = model
        .forward_inference(&x, 1, x.len(), false, KernelSet::Fused)
        .logits
        .as_vec();
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, (a, b)) in one.iter().zip(&want).enumerate() {
        assert!(
            (a - b).abs() <= 1e-5 * scale.max(1.0),
            "logit {i}: {a} vs {b}"
        );
    }
}

#[test]
fn checkpoint_round_trip_gives_identical_logits() {
    let dev = Cpu::default();
    let cfg = tiny();
    let model = Gpt::new(&dev, cfg, 21);
    let dir = tempfile::tempdir().unwrap();
    save_model(&model, dir.path()).unwrap();
    let back: Gpt<Cpu> = load_model(&dev, dir.path()).unwrap();
    let (x, _) = batch(&cfg, 2, 8, 2);
    let a = model
        .forward_inference(&x, 2, 8, false, false)
        .logits
        .as_vec();
    let b = back
        .forward_inference(&x, 2, 8, false, false)
        .logits
        .as_vec();
    assert_eq!(a, b);
}

/// max|a - b| / max|b|.
fn rel_err(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let num = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y).abs())
        .fold(0.0, f64::max);
    num / b.iter().map(|y| y.abs()).fold(1e-12, f64::max)
}

/// A checkpoint written by transformers (`scripts/make_eps_fixture.py`) with
/// `layer_norm_epsilon` 1e-6 and LayerNorm inputs of variance near 1e-6:
/// headsup's three forward paths give transformers' logits (float64
/// reference), and the same weights with GPT-2's 1e-5 are far off, so the
/// value from `config.json` is what makes them agree.
#[test]
fn transformers_checkpoint_with_eps_1e6_gives_reference_logits() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gpt2_eps1e-6");
    let text = std::fs::read_to_string(dir.join("reference.json")).expect("reference.json");
    let reference: serde_json::Value = serde_json::from_str(&text).expect("reference JSON");
    let tokens: Vec<usize> = reference["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| t.as_u64().expect("token id") as usize)
        .collect();
    let want: Vec<f64> = reference["logits"]
        .as_array()
        .expect("logits")
        .iter()
        .flat_map(|row| row.as_array().expect("logits row").clone())
        .map(|v| v.as_f64().expect("logit"))
        .collect();
    let dev = Cpu::default();
    let model: Gpt<Cpu> = load_model(&dev, &dir).expect("loading the transformers checkpoint");
    assert_eq!(
        model.cfg.layer_norm_epsilon, 1e-6,
        "epsilon from config.json"
    );
    let s = tokens.len();
    let v = model.cfg.vocab_size;
    for kernels in [KernelSet::Plain, KernelSet::Fused] {
        let got = model
            .forward_inference(&tokens, 1, s, false, kernels)
            .logits
            .as_vec();
        let e = rel_err(&got, &want);
        eprintln!("{kernels:?}: relative error against transformers {e:.2e}");
        assert!(
            e < 1e-4,
            "{kernels:?} logits vs transformers: relative error {e}"
        );
    }
    let host = HostModel::from_model(&model);
    let mut cache = KvCache::new(&model.cfg);
    let mut got = Vec::new();
    for &t in &tokens {
        got.extend(host.step(&mut cache, t, None));
    }
    let e = rel_err(&got, &want);
    eprintln!("host model (KV cache): relative error against transformers {e:.2e}");
    assert!(
        e < 1e-4,
        "host model logits vs transformers: relative error {e}"
    );
    assert_eq!(got.len(), s * v);

    // The same weights with the default epsilon: the test can tell them apart.
    let mut wrong = model.clone();
    wrong.cfg.layer_norm_epsilon = 1e-5;
    let off = wrong
        .forward_inference(&tokens, 1, s, false, KernelSet::Fused)
        .logits
        .as_vec();
    let e = rel_err(&off, &want);
    eprintln!("same weights with epsilon 1e-5: relative error {e:.2e}");
    assert!(
        e > 1e-2,
        "epsilon 1e-5 should be far off, relative error {e}"
    );
}

/// Saving writes the model's epsilon to `config.json`, and loading reads it back.
#[test]
fn checkpoint_keeps_layer_norm_epsilon() {
    let dev = Cpu::default();
    let cfg = GptConfig {
        layer_norm_epsilon: 1e-6,
        ..tiny()
    };
    let model = Gpt::new(&dev, cfg, 2);
    let dir = tempfile::tempdir().unwrap();
    save_model(&model, dir.path()).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(json["layer_norm_epsilon"].as_f64(), Some(1e-6));
    let back: Gpt<Cpu> = load_model(&dev, dir.path()).unwrap();
    assert_eq!(back.cfg.layer_norm_epsilon, 1e-6);
}

/// A config.json with a non-positive epsilon is a one-line error naming the key.
#[test]
fn checkpoint_with_bad_epsilon_is_refused() {
    let dev = Cpu::default();
    let dir = tempfile::tempdir().unwrap();
    save_model(&Gpt::new(&dev, tiny(), 2), dir.path()).unwrap();
    let p = dir.path().join("config.json");
    let text = std::fs::read_to_string(&p).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut json = json.as_object().unwrap().clone();
    json.insert("layer_norm_epsilon".into(), serde_json::json!(-1.0));
    std::fs::write(&p, serde_json::to_string(&json).unwrap()).unwrap();
    let err = load_model::<Cpu>(&dev, dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("config.json") && err.contains("layer_norm_epsilon") && !err.contains('\n'),
        "{err}"
    );
}

/// `headsup train --set model.layer_norm_epsilon=1e-6` trains with it and
/// writes it to the checkpoint's `config.json`.
#[test]
fn training_writes_layer_norm_epsilon_to_config_json() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_headsup"))
        .env("NO_COLOR", "1")
        .args(["train", "--config", "copy", "--out"])
        .arg(&run)
        .args([
            "--set",
            "model.layer_norm_epsilon=1e-6",
            "--set",
            "train.max_iters=2",
            "--set",
            "model.n_layer=1",
            "--set",
            "model.n_embd=16",
            "--set",
            "model.block_size=16",
            "--set",
            "train.batch_size=2",
            "--set",
            "train.eval_iters=1",
            "--set",
            "train.threads=1",
            "--set",
            "data.synthetic_records=100",
        ])
        .output()
        .expect("running headsup");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ck = run.join("checkpoints");
    let latest = std::fs::read_to_string(ck.join("LATEST")).expect("checkpoints/LATEST");
    let cfg = ck.join(latest.trim()).join("config.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg).expect("config.json")).unwrap();
    assert_eq!(json["layer_norm_epsilon"].as_f64(), Some(1e-6), "{json}");
}
