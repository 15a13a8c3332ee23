//! `train.precision = "bf16"`: the model's loss and gradients with bf16
//! matrix products (AVX512-BF16 where the CPU has it, the emulation
//! elsewhere) against fp32, thread-count invariance, and a short training
//! run of the binary whose loss falls as fp32's does.

use headsup::model::fused::matmul::{bf16_engine, set_thread_precision, Precision};

mod model_support;
use model_support::{in_pool, model_grads, rel_err, split_model};

/// A pool thread's start: multiply at `p`.
fn at(p: Precision) -> impl Fn(usize) + Send + Sync + 'static {
    move |_| set_thread_precision(p)
}

mod common;

#[test]
fn bf16_loss_and_gradients_are_near_fp32_and_do_not_depend_on_threads() {
    eprintln!("bf16: products on {}", bf16_engine());
    // Wide enough (rows 128, width 64) that the products split over threads.
    let model = split_model();
    let (lf, gf) = in_pool(1, at(Precision::Fp32), || model_grads(&model, 4, 32, true));
    let (l1, g1) = in_pool(1, at(Precision::Bf16), || model_grads(&model, 4, 32, true));
    let (l3, g3) = in_pool(3, at(Precision::Bf16), || model_grads(&model, 4, 32, true));
    assert_eq!(l1, l3, "bf16 loss depends on the thread count");
    assert_eq!(g1, g3, "bf16 gradients depend on the thread count");
    // bf16 keeps 8 bits of mantissa: each operand is off by at most 2^-9.
    let el = rel_err(&[l1], &[lf]);
    assert!(el < 1e-2, "loss: bf16 {l1} vs fp32 {lf} (relative {el})");
    assert_ne!(
        l1, lf,
        "bf16 gave fp32's loss to the bit: were products rounded at all?"
    );
    let mut worst = 0.0f32;
    for (i, (a, b)) in g1.iter().zip(&gf).enumerate() {
        let e = rel_err(a, b);
        worst = worst.max(e);
        assert!(e < 5e-2, "gradient {i}: bf16 vs fp32 relative error {e}");
    }
    eprintln!("bf16: loss {l1} (fp32 {lf}); worst gradient relative error {worst:.2e}");
    // Back on this thread's default: fp32 again, bit for bit.
    let (l, g) = model_grads(&model, 4, 32, true);
    let (l_again, g_again) = in_pool(1, at(Precision::Fp32), || model_grads(&model, 4, 32, true));
    assert_eq!((l, &g), (l_again, &g_again));
}

/// The binary trains the copy task in bf16: its config records the
/// precision, its validation loss falls, and every logged training loss stays
/// within 5 % of fp32's on the same batches.
#[test]
fn headsup_train_in_bf16_learns_like_fp32() {
    let tmp = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    for p in ["fp32", "bf16"] {
        let dir = tmp.path().join(p);
        let out = common::run(&[
            "train",
            "--config",
            "copy",
            "--set",
            "train.max_iters=300",
            "--set",
            "train.eval_interval=300",
            "--set",
            &format!("train.precision={p}"),
            "--out",
            dir.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{p}: {stderr}");
        let device = if p == "bf16" {
            "device cpu bf16 |"
        } else {
            "device cpu |"
        };
        let all = format!("{}{stderr}", String::from_utf8_lossy(&out.stdout));
        assert!(
            all.contains(device),
            "{p}: the run line lacks `{device}`: {all}"
        );
        let config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
        assert!(
            config.contains(&format!("precision = \"{p}\"")),
            "{p}: config.toml lacks the precision:\n{config}"
        );
        let metrics = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
        let events: Vec<serde_json::Value> = metrics
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let of = |kind: &str, key: &str| -> Vec<f64> {
            events
                .iter()
                .filter(|v| v["event"] == kind)
                .filter_map(|v| v[key].as_f64())
                .collect()
        };
        let (steps, val) = (of("step", "loss"), of("eval", "val_loss"));
        assert!(steps.len() >= 5 && val.len() >= 2, "{p}: {metrics}");
        let (v0, v1) = (val[0], val[val.len() - 1]);
        assert!(
            v1 < 0.8 * v0,
            "{p}: validation loss {v0} -> {v1} did not fall"
        );
        runs.push(steps);
    }
    for (i, (f, b)) in runs[0].iter().zip(&runs[1]).enumerate() {
        assert!(
            (f - b).abs() < 0.05 * f,
            "logged step {i}: fp32 loss {f}, bf16 {b}"
        );
    }
}
