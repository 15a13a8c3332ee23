//! The BERT encoder (`model.arch = "bert"`) against first principles:
//! gradients of the whole model (post-LayerNorm blocks, bidirectional
//! attention, erf GELU, MLM head) against finite differences, the fused
//! kernels against the plain path within 1e-5, and attention that sees both
//! sides.

use dfdx::prelude::*;
use headsup::model::kernels::{plain, Gelu};
use headsup::model::{Fused, Gpt, GptConfig, Ops, ParamMut, ParamRef, T3};

mod model_support;
use model_support::close;

fn tiny() -> GptConfig {
    GptConfig {
        vocab_size: 13,
        n_positions: 8,
        n_embd: 8,
        n_layer: 2,
        n_head: 2,
        layer_norm_epsilon: 1e-12,
    }
}

/// A BERT model whose every parameter is non-trivial (LayerNorm gains and
/// all biases moved off 1 and 0), so every gradient is exercised.
fn model(seed: u64) -> Gpt<Cpu> {
    let mut m = Gpt::new_bert(&Cpu::default(), tiny(), seed);
    let mut k = 0u32;
    m.visit_mut(|_, mut p| {
        let v: Vec<f32> = match &p {
            ParamMut::One(t) => t.as_vec(),
            ParamMut::Two(t) => t.as_vec(),
        };
        let v: Vec<f32> = v
            .iter()
            .enumerate()
            .map(|(i, x)| x * 8.0 + 0.1 * ((i as f32 * 0.7 + k as f32).sin()))
            .collect();
        p.copy_from(&v);
        k += 1;
    });
    m
}

/// A masked batch: inputs, the flat positions predicted, their targets.
fn batch(v: usize, b: usize, s: usize) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let x: Vec<usize> = (0..b * s).map(|i| (i * 5 + 1) % v).collect();
    let pos: Vec<usize> = (0..b * s).filter(|i| i % 3 == 1).collect();
    let y: Vec<usize> = pos.iter().map(|i| (i * 7 + 2) % v).collect();
    (x, pos, y)
}

fn grads(m: &Gpt<Cpu>, fused: bool) -> (f32, Vec<(String, Vec<f32>)>) {
    let (b, s) = (2, 6);
    let (x, pos, y) = batch(m.cfg.vocab_size, b, s);
    let loss = m.mlm_loss_train(&x, &pos, &y, b, s, m.alloc_grads(), fused);
    let l = loss.as_vec()[0];
    let g = loss.backward();
    let mut out = Vec::new();
    m.visit(|name, p| {
        out.push((
            name,
            match p {
                ParamRef::One(t) => g.get(t).as_vec(),
                ParamRef::Two(t) => g.get(t).as_vec(),
            },
        ))
    });
    (l, out)
}

fn nudge(m: &mut Gpt<Cpu>, pi: usize, j: usize, delta: f32) {
    let mut k = 0;
    m.visit_mut(|_, mut p| {
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

fn mlm_loss(m: &Gpt<Cpu>, fused: bool) -> f64 {
    let (b, s) = (2, 6);
    let (x, pos, y) = batch(m.cfg.vocab_size, b, s);
    let logits = m.logits_at(&x, &pos, b, s, fused).as_vec();
    let v = m.cfg.vocab_size;
    let mut sum = 0.0f64;
    for (r, &t) in y.iter().enumerate() {
        let row = &logits[r * v..(r + 1) * v];
        let mx = row.iter().cloned().fold(f32::MIN, f32::max) as f64;
        let lse = row.iter().map(|&z| (z as f64 - mx).exp()).sum::<f64>().ln() + mx;
        sum += lse - row[t] as f64;
    }
    sum / y.len() as f64
}

fn check_gradients(fused: bool) {
    let mut m = model(5);
    let (loss, analytic) = grads(&m, fused);
    assert!(
        (loss as f64 - mlm_loss(&m, fused)).abs() < 1e-4,
        "the training loss is the cross-entropy of logits_at at the masked positions"
    );
    let eps = 4e-3f32;
    let (mut checked, mut worst) = (0, 0.0f32);
    for (pi, (name, g)) in analytic.iter().enumerate() {
        let n = g.len();
        // Token type 1 and positions past the batch get no gradient: check
        // the used rows (type 0 is row 0).
        let coords: Vec<usize> = if name.contains("token_type") {
            vec![0, 3, 7]
        } else {
            vec![0, n / 3, n / 2, (2 * n) / 3, n - 1]
        };
        for j in coords {
            nudge(&mut m, pi, j, eps);
            let lp = mlm_loss(&m, fused);
            nudge(&mut m, pi, j, -2.0 * eps);
            let lm = mlm_loss(&m, fused);
            nudge(&mut m, pi, j, eps);
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
    assert!(checked > 100, "checked only {checked} coordinates");
    eprintln!(
        "bert fused={fused}: {checked} coordinates checked, worst relative error {worst:.2e}"
    );
}

#[test]
fn bert_gradients_match_finite_differences_plain() {
    check_gradients(false);
}

#[test]
fn bert_gradients_match_finite_differences_fused() {
    check_gradients(true);
}

#[test]
fn bert_fused_matches_plain() {
    let m = model(9);
    let (lf, gf) = grads(&m, true);
    let (lp, gp) = grads(&m, false);
    close("bert loss", &[lf], &[lp]);
    for ((name, a), (_, b)) in gf.iter().zip(&gp) {
        close(name, a, b);
    }
    let (x, _, _) = batch(13, 2, 6);
    let f = m.forward_inference(&x, 2, 6, true, true);
    let p = m.forward_inference(&x, 2, 6, true, false);
    close("bert logits", &f.logits.as_vec(), &p.logits.as_vec());
    for (a, b) in f.attention.iter().zip(&p.attention) {
        close("bert attention", &a.as_vec(), &b.as_vec());
    }
}

#[test]
fn bert_names_are_bert_for_masked_lm_names() {
    let m = model(1);
    let mut names = Vec::new();
    m.visit(|n, _| names.push(n));
    for want in [
        "bert.embeddings.word_embeddings.weight",
        "bert.embeddings.position_embeddings.weight",
        "bert.embeddings.token_type_embeddings.weight",
        "bert.embeddings.LayerNorm.weight",
        "bert.encoder.layer.1.attention.output.dense.weight",
        "bert.encoder.layer.0.intermediate.dense.bias",
        "cls.predictions.transform.dense.weight",
        "cls.predictions.transform.LayerNorm.bias",
        "cls.predictions.bias",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    assert_eq!(m.arch(), headsup::model::bert::Arch::Bert);
    assert_eq!(
        Gpt::new(&Cpu::default(), tiny(), 1).arch(),
        headsup::model::bert::Arch::Gpt2
    );
}

#[test]
fn bert_attention_sees_both_sides() {
    let m = model(3);
    let (b, s) = (1, 6);
    let x: Vec<usize> = vec![1, 2, 3, 4, 5, 6];
    let out = m.forward_inference(&x, b, s, true, true);
    let v = m.cfg.vocab_size;
    for p in &out.attention {
        let a = p.as_vec();
        for row in a.chunks(s) {
            let sum: f32 = row.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "row sums to {sum}");
        }
        // Row 0 (the first query) attends to later keys: not causal.
        assert!(a[1..s].iter().all(|&w| w > 0.0), "first row {:?}", &a[..s]);
    }
    // Changing the last token changes the first position's logits.
    let mut y = x.clone();
    y[5] = 9;
    let out2 = m.forward_inference(&y, b, s, false, true);
    let (l1, l2) = (out.logits.as_vec(), out2.logits.as_vec());
    let d: f32 = l1[..v]
        .iter()
        .zip(&l2[..v])
        .map(|(a, b)| (a - b).abs())
        .sum();
    assert!(d > 1e-4, "position 0 ignores position 5 (diff {d})");
}

fn randn3(d: &Cpu, s: (usize, usize, usize)) -> T3<Cpu> {
    d.sample_normal_like(&s)
}

#[test]
fn bidirectional_attention_fused_matches_plain() {
    for (seed, (b, s, h, hd)) in [(5, (2, 5, 2, 4)), (6, (3, 40, 4, 16)), (7, (1, 70, 2, 64))] {
        let d = Cpu::seed_from_u64(seed);
        let c = h * hd;
        let qkv = randn3(&d, (b, s, 3 * c));
        let w = randn3(&d, (b, s, c));
        let (yf, pf) = <Fused as Ops<Cpu>>::attention(qkv.leaky_trace(), h, false, true);
        let (yp, pp) = plain::attention(qkv.leaky_trace(), h, false, true);
        close("attn y", &yf.as_vec(), &yp.as_vec());
        let (pf, pp) = (pf.expect("fused probs"), pp.expect("plain probs"));
        close("attn probs", &pf.as_vec(), &pp.as_vec());
        // Every probability is positive: no mask.
        assert!(pf.as_vec().iter().all(|&p| p > 0.0));
        let gf = (yf * w.clone()).sum().backward();
        let gp = (yp * w.clone()).sum().backward();
        close("attn dqkv", &gf.get(&qkv).as_vec(), &gp.get(&qkv).as_vec());
    }
}

#[test]
fn erf_gelu_fused_matches_plain_and_finite_differences() {
    let d = Cpu::seed_from_u64(11);
    let (bsz, s, i, o) = (2, 7, 16, 24);
    let x = randn3(&d, (bsz, s, i));
    let wt = d.sample_normal_like(&(i, o));
    let bias = d.sample_normal_like(&(o,));
    let w = randn3(&d, (bsz, s, o));
    let yf = <Fused as Ops<Cpu>>::linear_act(x.leaky_trace(), &wt, &bias, Gelu::Erf);
    let yp = plain::linear_act(x.leaky_trace(), &wt, &bias, Gelu::Erf);
    close("erf gelu y", &yf.as_vec(), &yp.as_vec());
    let gf = (yf * w.clone()).sum().backward();
    let gp = (yp * w.clone()).sum().backward();
    close("erf gelu dx", &gf.get(&x).as_vec(), &gp.get(&x).as_vec());
    close("erf gelu dw", &gf.get(&wt).as_vec(), &gp.get(&wt).as_vec());
    close(
        "erf gelu db",
        &gf.get(&bias).as_vec(),
        &gp.get(&bias).as_vec(),
    );
    // The element-wise derivative against finite differences (f64 reference
    // of x Φ(x)), on the plain path: Φ(x) + x φ(x).
    let xs: Vec<f32> = (-40..=40).map(|k| k as f32 * 0.1).collect();
    let n = xs.len();
    let xt: T3<Cpu> = d.tensor_from_vec(xs.clone(), (1, 1, n));
    let y = plain::gelu_erf(xt.leaky_trace());
    let g = y.sum().backward();
    let dx = g.get(&xt).as_vec();
    for (k, &x) in xs.iter().enumerate() {
        let x = x as f64;
        let phi = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let cdf = 0.5 * (1.0 + libm::erf(x / std::f64::consts::SQRT_2));
        let want = cdf + x * phi;
        assert!(
            (dx[k] as f64 - want).abs() < 1e-5,
            "gelu'({x}) = {} but want {want}",
            dx[k]
        );
    }
}
