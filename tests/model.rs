//! The model against first principles: gradients against finite differences,
//! attention probabilities, checkpoints round-tripping, and the host-side
//! inference path against the dfdx forward pass.

use dfdx::prelude::*;
use headsup::model::checkpoint::{load_model, save_model};
use headsup::model::infer::{HostModel, KvCache};
use headsup::model::{Gpt, GptConfig, ParamMut, ParamRef};

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
