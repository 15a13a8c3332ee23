//! Each fused CPU kernel against the plain dfdx reference on fresh random
//! inputs: values and gradients (loss = sum of outputs x random weights).

use dfdx::prelude::*;
use headsup::model::kernels::plain;
use headsup::model::{Block, Fused, Gpt, GptConfig, Ops, Param, Plain, T1, T2, T3};

mod model_support;
use model_support::{close, model_grads};

fn dev(seed: u64) -> Cpu {
    Cpu::seed_from_u64(seed)
}

fn randn3(d: &Cpu, s: (usize, usize, usize)) -> T3<Cpu> {
    d.sample_normal_like(&s)
}

fn randn2(d: &Cpu, s: (usize, usize)) -> T2<Cpu> {
    d.sample_normal_like(&s)
}

fn randn1(d: &Cpu, n: usize) -> T1<Cpu> {
    d.sample_normal_like(&(n,))
}

fn weighted3(y: T3<Cpu, OwnedTape<f32, Cpu>>, w: &T3<Cpu>) -> Gradients<f32, Cpu> {
    (y * w.clone()).sum().backward()
}

#[test]
fn gelu_matches_plain() {
    for (seed, shape) in [(1, (2, 5, 7)), (2, (3, 17, 64))] {
        let d = dev(seed);
        let x = randn3(&d, shape) * 2.0;
        let w = randn3(&d, shape);
        let yf = <Fused as Ops<Cpu>>::gelu(x.leaky_trace());
        let yp = x.leaky_trace().fast_gelu();
        close("gelu y", &yf.as_vec(), &yp.as_vec());
        let gf = weighted3(yf, &w);
        let gp = weighted3(yp, &w);
        close("gelu dx", &gf.get(&x).as_vec(), &gp.get(&x).as_vec());
    }
}

#[test]
fn layer_norm_matches_plain() {
    for (seed, shape) in [(3, (2, 3, 8)), (4, (4, 33, 128))] {
        let d = dev(seed);
        let x = randn3(&d, shape) * 3.0 + 1.0;
        let g = randn1(&d, shape.2);
        let b = randn1(&d, shape.2);
        let w = randn3(&d, shape);
        let yf = <Fused as Ops<Cpu>>::layer_norm(x.leaky_trace(), &g, &b, 1e-5);
        let yp = plain::layer_norm(x.leaky_trace(), &g, &b, 1e-5);
        close("ln y", &yf.as_vec(), &yp.as_vec());
        let gf = weighted3(yf, &w);
        let gp = weighted3(yp, &w);
        close("ln dx", &gf.get(&x).as_vec(), &gp.get(&x).as_vec());
        close("ln dg", &gf.get(&g).as_vec(), &gp.get(&g).as_vec());
        close("ln db", &gf.get(&b).as_vec(), &gp.get(&b).as_vec());
    }
}

#[test]
fn attention_matches_plain() {
    for (seed, (b, s, h, hd)) in [(5, (2, 5, 2, 4)), (6, (3, 40, 4, 16)), (7, (1, 70, 2, 64))] {
        let d = dev(seed);
        let c = h * hd;
        let qkv = randn3(&d, (b, s, 3 * c));
        let w = randn3(&d, (b, s, c));
        let (yf, pf) = <Fused as Ops<Cpu>>::causal_attention(qkv.leaky_trace(), h, true);
        let (yp, pp) = plain::causal_attention(qkv.leaky_trace(), h, true);
        close("attn y", &yf.as_vec(), &yp.as_vec());
        let (pf, pp) = (pf.expect("fused probs"), pp.expect("plain probs"));
        assert_eq!(pf.shape(), pp.shape());
        close("attn probs", &pf.as_vec(), &pp.as_vec());
        let gf = weighted3(yf, &w);
        let gp = weighted3(yp, &w);
        close("attn dqkv", &gf.get(&qkv).as_vec(), &gp.get(&qkv).as_vec());
    }
}

/// The flash-style backward (probabilities recomputed per block of rows
/// from each row's maximum and inverse sum) against the plain path, causal
/// (GPT-2) and not (BERT), at lengths that are, and are not, multiples of
/// the row block; and against the fused path that keeps the probabilities,
/// bit for bit (the same scores and softmax, recomputed).
#[test]
fn attention_recomputing_probs_matches_plain_and_keeping() {
    use headsup::model::fused::attention::{attention_with, Probs};
    for (seed, (b, s, h, hd)) in [
        (21, (2, 64, 2, 16)),
        (22, (1, 256, 2, 32)),
        (23, (2, 70, 3, 8)),
    ] {
        for causal in [true, false] {
            let d = dev(seed);
            let c = h * hd;
            let qkv = randn3(&d, (b, s, 3 * c));
            let w = randn3(&d, (b, s, c));
            let what = format!("s {s} causal {causal}");
            let (yr, none) = attention_with(qkv.leaky_trace(), h, causal, false, Probs::Recompute);
            assert!(none.is_none(), "{what}: probabilities not asked for");
            let (yk, _) = attention_with(qkv.leaky_trace(), h, causal, false, Probs::Keep);
            let (yp, _) = plain::attention(qkv.leaky_trace(), h, causal, false);
            close(&format!("{what}: y"), &yr.as_vec(), &yp.as_vec());
            assert_eq!(yr.as_vec(), yk.as_vec(), "{what}: y, recompute vs keep");
            let gr = weighted3(yr, &w).get(&qkv).as_vec();
            let gk = weighted3(yk, &w).get(&qkv).as_vec();
            let gp = weighted3(yp, &w).get(&qkv).as_vec();
            close(&format!("{what}: dqkv"), &gr, &gp);
            assert!(
                gr.iter().zip(&gk).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{what}: dqkv, recompute vs keep"
            );
            // Asked for, the probabilities still come back whole.
            let (_, pr) = attention_with(qkv.leaky_trace(), h, causal, true, Probs::Recompute);
            let (_, pp) = plain::attention(qkv.leaky_trace(), h, causal, true);
            close(
                &format!("{what}: probs"),
                &pr.expect("fused probs").as_vec(),
                &pp.expect("plain probs").as_vec(),
            );
        }
    }
}

#[test]
fn attention_without_probs_gives_none() {
    let d = dev(8);
    let qkv = randn3(&d, (1, 4, 12));
    let (_, p) = <Fused as Ops<Cpu>>::causal_attention(qkv, 2, false);
    assert!(p.is_none());
}

#[test]
fn cross_entropy_matches_plain() {
    for (seed, (n, v)) in [(9, (5, 3)), (10, (77, 65)), (11, (40, 300))] {
        let d = dev(seed);
        let logits = randn2(&d, (n, v)) * 3.0;
        let tg: Vec<usize> = (0..n).map(|i| (i * 7 + 3) % v).collect();
        let t: Tensor<(usize,), usize, Cpu> = d.tensor_from_vec(tg, (n,));
        let lf = <Fused as Ops<Cpu>>::cross_entropy(logits.leaky_trace(), t.clone());
        let lp = plain::cross_entropy(logits.leaky_trace(), t);
        close("ce loss", &lf.as_vec(), &lp.as_vec());
        let gf = (lf * 1.7).backward();
        let gp = (lp * 1.7).backward();
        close(
            "ce dlogits",
            &gf.get(&logits).as_vec(),
            &gp.get(&logits).as_vec(),
        );
    }
}

#[test]
fn embedding_matches_plain() {
    let d = dev(12);
    let (v, c, n) = (13, 24, 50);
    let wte = randn2(&d, (v, c));
    // Repeated ids exercise the scatter-add.
    let ids: Vec<usize> = (0..n).map(|i| (i * i + 1) % v).collect();
    let idx: Tensor<(usize,), usize, Cpu> = d.tensor_from_vec(ids, (n,));
    let w = randn2(&d, (n, c));
    let yf = <Fused as Ops<Cpu>>::embedding(wte.leaky_trace(), idx.clone());
    let yp = plain::embedding(wte.leaky_trace(), idx);
    close("emb y", &yf.as_vec(), &yp.as_vec());
    let gf = (yf * w.clone()).sum().backward();
    let gp = (yp * w).sum().backward();
    close("emb dwte", &gf.get(&wte).as_vec(), &gp.get(&wte).as_vec());
}

#[test]
fn linear_matches_plain() {
    let d = dev(13);
    let (b, s, i, o) = (3, 9, 16, 40);
    let x = randn3(&d, (b, s, i));
    let wt = randn2(&d, (i, o));
    let bias = randn1(&d, o);
    let w = randn3(&d, (b, s, o));
    let yf = <Fused as Ops<Cpu>>::linear(x.leaky_trace(), &wt, &bias);
    let yp = plain::linear(x.leaky_trace(), &wt, &bias);
    close("linear y", &yf.as_vec(), &yp.as_vec());
    let gf = weighted3(yf, &w);
    let gp = weighted3(yp, &w);
    close("linear dx", &gf.get(&x).as_vec(), &gp.get(&x).as_vec());
    close("linear dw", &gf.get(&wt).as_vec(), &gp.get(&wt).as_vec());
    close(
        "linear db",
        &gf.get(&bias).as_vec(),
        &gp.get(&bias).as_vec(),
    );
}

#[test]
fn linear_residual_matches_plain() {
    let d = dev(15);
    let (b, s, c) = (2, 7, 24);
    let x = randn3(&d, (b, s, c));
    let wt = randn2(&d, (c, c));
    let bias = randn1(&d, c);
    let w = randn3(&d, (b, s, c));
    // The residual is another tensor on the same tape (0.5 x), so the
    // gradient of x collects both paths.
    let run = |fused: bool| {
        let xt = x.leaky_trace();
        let res = xt.retaped::<OwnedTape<f32, Cpu>>() * 0.5f32;
        let y = if fused {
            <Fused as Ops<Cpu>>::linear_residual(res, xt, &wt, &bias)
        } else {
            plain::linear_residual(res, xt, &wt, &bias)
        };
        (y.as_vec(), weighted3(y, &w))
    };
    let (yf, gf) = run(true);
    let (yp, gp) = run(false);
    close("linear_residual y", &yf, &yp);
    close(
        "linear_residual dx",
        &gf.get(&x).as_vec(),
        &gp.get(&x).as_vec(),
    );
    close(
        "linear_residual dw",
        &gf.get(&wt).as_vec(),
        &gp.get(&wt).as_vec(),
    );
    close(
        "linear_residual db",
        &gf.get(&bias).as_vec(),
        &gp.get(&bias).as_vec(),
    );
}

#[test]
fn linear_gelu_matches_plain() {
    let d = dev(17);
    let (b, s, i, o) = (3, 9, 16, 40);
    let x = randn3(&d, (b, s, i));
    let wt = randn2(&d, (i, o));
    let bias = randn1(&d, o);
    let w = randn3(&d, (b, s, o));
    let yf = <Fused as Ops<Cpu>>::linear_gelu(x.leaky_trace(), &wt, &bias);
    let yp = plain::linear_gelu(x.leaky_trace(), &wt, &bias);
    close("linear_gelu y", &yf.as_vec(), &yp.as_vec());
    let gf = weighted3(yf, &w);
    let gp = weighted3(yp, &w);
    close("linear_gelu dx", &gf.get(&x).as_vec(), &gp.get(&x).as_vec());
    close(
        "linear_gelu dw",
        &gf.get(&wt).as_vec(),
        &gp.get(&wt).as_vec(),
    );
    close(
        "linear_gelu db",
        &gf.get(&bias).as_vec(),
        &gp.get(&bias).as_vec(),
    );
}

#[test]
fn lm_head_matches_plain() {
    let d = dev(16);
    let (n, c, v) = (37, 24, 29);
    let x = randn2(&d, (n, c));
    let wte = randn2(&d, (v, c));
    let w = randn2(&d, (n, v));
    let run = |fused: bool| {
        let y = if fused {
            <Fused as Ops<Cpu>>::lm_head(x.leaky_trace(), &wte)
        } else {
            plain::lm_head(x.leaky_trace(), &wte)
        };
        (y.as_vec(), (y * w.clone()).sum().backward())
    };
    let (yf, gf) = run(true);
    let (yp, gp) = run(false);
    close("lm_head y", &yf, &yp);
    close("lm_head dx", &gf.get(&x).as_vec(), &gp.get(&x).as_vec());
    close(
        "lm_head dwte",
        &gf.get(&wte).as_vec(),
        &gp.get(&wte).as_vec(),
    );
}

#[test]
fn add_positions_matches_plain() {
    let d = dev(14);
    let (b, s, c, npos) = (3, 6, 8, 10);
    let tok = randn2(&d, (b * s, c));
    let wpe = randn2(&d, (npos, c));
    let w = randn3(&d, (b, s, c));
    let yf = <Fused as Ops<Cpu>>::add_positions(tok.leaky_trace(), &wpe, b, s);
    let yp = plain::add_positions(tok.leaky_trace(), &wpe, b, s);
    close("pos y", &yf.as_vec(), &yp.as_vec());
    let gf = weighted3(yf, &w);
    let gp = weighted3(yp, &w);
    close("pos dtok", &gf.get(&tok).as_vec(), &gp.get(&tok).as_vec());
    close("pos dwpe", &gf.get(&wpe).as_vec(), &gp.get(&wpe).as_vec());
}

/// A block of random parameters (matrices scaled by 1/sqrt(fan-in)).
fn rand_block(d: &Cpu, c: usize, hidden: usize) -> Block<Cpu> {
    let m = |i: usize, o: usize| randn2(d, (i, o)) * (1.0 / (i as f32).sqrt());
    Block {
        ln_1_g: randn1(d, c),
        ln_1_b: randn1(d, c),
        c_attn_w: m(c, 3 * c),
        c_attn_b: randn1(d, 3 * c),
        attn_proj_w: m(c, c),
        attn_proj_b: randn1(d, c),
        ln_2_g: randn1(d, c),
        ln_2_b: randn1(d, c),
        c_fc_w: m(c, hidden),
        c_fc_b: randn1(d, hidden),
        mlp_proj_w: m(hidden, c),
        mlp_proj_b: randn1(d, c),
    }
}

/// The gradients of the parameters of `blk` whose names start with one of `names`.
fn block_grads(g: &Gradients<f32, Cpu>, blk: &Block<Cpu>, names: &[&str]) -> Vec<Vec<f32>> {
    blk.params()
        .into_iter()
        .filter(|(n, _)| names.iter().any(|p| n.starts_with(p)))
        .map(|(_, p)| match p {
            Param::One(t) => g.get(t).as_vec(),
            Param::Two(t) => g.get(t).as_vec(),
        })
        .collect()
}

type Tp = OwnedTape<f32, Cpu>;

#[test]
fn ln_linear_matches_plain_and_the_separate_fused_ops() {
    let d = dev(21);
    let (b, s, c) = (3, 11, 24);
    let blk = rand_block(&d, c, 2 * c);
    let x = randn3(&d, (b, s, c)) * 2.0 + 0.5;
    let w = randn3(&d, (b, s, 3 * c));
    // 0: fused as one op, 1: plain, 2: the fused ops one after the other.
    let run = |k: u8| {
        let (g, bb, wt, bias) = (&blk.ln_1_g, &blk.ln_1_b, &blk.c_attn_w, &blk.c_attn_b);
        let y = match k {
            0 => <Fused as Ops<Cpu>>::ln_linear(x.leaky_trace(), g, bb, 1e-5, wt, bias),
            1 => <Plain as Ops<Cpu>>::ln_linear(x.leaky_trace(), g, bb, 1e-5, wt, bias),
            _ => {
                let a = <Fused as Ops<Cpu>>::layer_norm(x.leaky_trace(), g, bb, 1e-5);
                <Fused as Ops<Cpu>>::linear(a, wt, bias)
            }
        };
        let yv = y.as_vec();
        let gr = weighted3(y, &w);
        let mut out = vec![yv, gr.get(&x).as_vec()];
        out.extend(block_grads(&gr, &blk, &["ln_1", "attn.c_attn"]));
        out
    };
    let (f, p, sep) = (run(0), run(1), run(2));
    assert_eq!(f.len(), 6);
    for (i, ((a, b), c)) in f.iter().zip(&p).zip(&sep).enumerate() {
        close(&format!("ln_linear output/gradient {i}"), a, b);
        assert_eq!(
            a, c,
            "ln_linear output/gradient {i}: fused vs separate fused ops"
        );
    }
}

#[test]
fn block_tail_matches_plain_and_the_separate_fused_ops() {
    let d = dev(22);
    let (b, s, c, hidden) = (2, 13, 16, 40);
    let blk = rand_block(&d, c, hidden);
    let x = randn3(&d, (b, s, c));
    let y = randn3(&d, (b, s, c));
    let w = randn3(&d, (b, s, c));
    let run = |k: u8| {
        let (xt, yt) = (x.leaky_trace(), y.leaky_trace());
        let out = match k {
            0 => <Fused as Ops<Cpu>>::block_tail(xt, yt, &blk, 1e-5),
            1 => <Plain as Ops<Cpu>>::block_tail(xt, yt, &blk, 1e-5),
            _ => {
                type F = Fused;
                let x1 =
                    <F as Ops<Cpu>>::linear_residual(xt, yt, &blk.attn_proj_w, &blk.attn_proj_b);
                let m =
                    <F as Ops<Cpu>>::layer_norm(x1.retaped::<Tp>(), &blk.ln_2_g, &blk.ln_2_b, 1e-5);
                let m = <F as Ops<Cpu>>::linear_gelu(m, &blk.c_fc_w, &blk.c_fc_b);
                <F as Ops<Cpu>>::linear_residual(x1, m, &blk.mlp_proj_w, &blk.mlp_proj_b)
            }
        };
        let ov = out.as_vec();
        let gr = weighted3(out, &w);
        let mut v = vec![ov, gr.get(&x).as_vec(), gr.get(&y).as_vec()];
        v.extend(block_grads(&gr, &blk, &["attn.c_proj", "ln_2", "mlp"]));
        v
    };
    let (f, p, sep) = (run(0), run(1), run(2));
    assert_eq!(f.len(), 11);
    for (i, ((a, b), c)) in f.iter().zip(&p).zip(&sep).enumerate() {
        close(&format!("block_tail output/gradient {i}"), a, b);
        assert_eq!(
            a, c,
            "block_tail output/gradient {i}: fused vs separate fused ops"
        );
    }
}

#[test]
fn whole_model_fused_matches_plain() {
    let cfg = GptConfig {
        vocab_size: 23,
        n_positions: 16,
        n_embd: 32,
        n_layer: 2,
        n_head: 4,
        layer_norm_epsilon: 1e-5,
    };
    let model = Gpt::new(&Cpu::default(), cfg, 5);
    let (lf, gf) = model_grads(&model, 3, 12, true);
    let (lp, gp) = model_grads(&model, 3, 12, false);
    close("model loss", &[lf], &[lp]);
    for (i, (a, b)) in gf.iter().zip(&gp).enumerate() {
        close(&format!("model grad {i}"), a, b);
    }
}

#[test]
fn fused_gradients_do_not_depend_on_thread_count() {
    let cfg = GptConfig {
        vocab_size: 19,
        n_positions: 16,
        n_embd: 32,
        n_layer: 1,
        n_head: 2,
        layer_norm_epsilon: 1e-5,
    };
    let model = Gpt::new(&Cpu::default(), cfg, 6);
    let run = |n: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .expect("thread pool")
            .install(|| model_grads(&model, 3, 12, true))
    };
    let (l1, g1) = run(1);
    let (l3, g3) = run(3);
    assert_eq!(l1, l3);
    assert_eq!(g1, g3);
}
