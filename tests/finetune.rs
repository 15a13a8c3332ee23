//! Fine-tuning (issue 13): gradient accumulation equals a larger batch,
//! dropout is seeded, training-only and the same on the fused and plain
//! kernels, freezing keeps parameters fixed, and `train.init_from` honours an
//! explicit `model.block_size` (cropping the positions), reads GPT-2's tokenizer
//! files and dropout keys, and resumes exactly.

mod common;

use common::{assert_clean_error, fixture, run, step_losses};
use dfdx::prelude::*;
use headsup::model::checkpoint::{load_hf_config, read_safetensors};
use headsup::model::dropout::Dropout;
use headsup::model::{Gpt, GptConfig, KernelSet};
use headsup::train::accumulate::{accumulate, frozen, MicroBatches};
use headsup::train::batch::Batcher;
use std::path::Path;

fn tiny() -> GptConfig {
    GptConfig {
        vocab_size: 13,
        n_positions: 16,
        n_embd: 16,
        n_layer: 2,
        n_head: 2,
        layer_norm_epsilon: 1e-5,
    }
}

fn data() -> headsup::data::Tokens {
    headsup::data::Tokens::owned((0..2000u32).map(|i| (i * 7 + i / 13) % 13).collect())
}

fn micro(
    batch: usize,
    count: usize,
    kernels: KernelSet,
    dropout: Dropout,
    seed: u64,
) -> MicroBatches {
    MicroBatches {
        batch,
        block: 16,
        count,
        kernels,
        dropout,
        seed,
        step: 3,
    }
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}

#[test]
fn four_micro_batches_equal_one_batch_four_times_larger() {
    let dev = Cpu::default();
    let model = Gpt::new(&dev, tiny(), 3);
    for kernels in [KernelSet::Plain, KernelSet::Fused] {
        let off = Dropout::default();
        let a = accumulate(
            &model,
            &mut Batcher::new(9),
            &data(),
            &micro(2, 4, kernels, off, 1),
        );
        let b = accumulate(
            &model,
            &mut Batcher::new(9),
            &data(),
            &micro(8, 1, kernels, off, 1),
        );
        assert!(
            (a.loss - b.loss).abs() < 1e-5,
            "{kernels:?}: loss {} vs {}",
            a.loss,
            b.loss
        );
        let d = max_diff(&a.grads, &b.grads);
        assert!(d < 1e-5, "{kernels:?}: largest gradient difference {d}");
        assert!(a.grads.iter().flatten().any(|&g| g != 0.0));
    }
}

#[test]
fn dropout_is_seeded_and_the_same_on_fused_and_plain_kernels() {
    let dev = Cpu::default();
    let model = Gpt::new(&dev, tiny(), 3);
    let p = Dropout::all(0.1);
    let run = |k, seed| {
        accumulate(
            &model,
            &mut Batcher::new(9),
            &data(),
            &micro(4, 2, k, p, seed),
        )
    };
    let (a, b) = (run(KernelSet::Fused, 1), run(KernelSet::Fused, 1));
    assert_eq!(a.loss, b.loss);
    assert_eq!(a.grads, b.grads, "the same seed gives the same masks");
    let plain = run(KernelSet::Plain, 1);
    assert!(
        (a.loss - plain.loss).abs() < 1e-5,
        "fused {} vs plain {}",
        a.loss,
        plain.loss
    );
    let d = max_diff(&a.grads, &plain.grads);
    assert!(d < 1e-5, "fused and plain gradients differ by {d}");
    let other = run(KernelSet::Fused, 2);
    assert_ne!(a.loss, other.loss, "another seed drops other units");
    let none = accumulate(
        &model,
        &mut Batcher::new(9),
        &data(),
        &micro(4, 2, KernelSet::Fused, Dropout::default(), 1),
    );
    assert_ne!(a.loss, none.loss, "dropout 0.1 changes the training loss");
}

#[test]
fn dropout_is_off_in_evaluation_and_generation() {
    let dev = Cpu::default();
    let mut model = Gpt::new(&dev, tiny(), 3);
    let (x, y) = Batcher::new(4).draw(&data(), 2, 16);
    let before = model.loss(&x, &y, 2, 16, KernelSet::Fused);
    let logits = model
        .forward_inference(&x, 2, 16, true, KernelSet::Fused)
        .logits
        .as_vec();
    model.dropout = Dropout::all(0.5);
    assert_eq!(model.loss(&x, &y, 2, 16, KernelSet::Fused), before);
    assert_eq!(
        model
            .forward_inference(&x, 2, 16, true, KernelSet::Fused)
            .logits
            .as_vec(),
        logits
    );
    // Dropout off in training is the path without dropout, bit for bit.
    let off = accumulate(
        &model,
        &mut Batcher::new(9),
        &data(),
        &micro(2, 1, KernelSet::Fused, Dropout::default(), 1),
    );
    let (x, y) = Batcher::new(9).draw(&data(), 2, 16);
    let plain_loss = model
        .loss_train(&x, &y, 2, 16, model.alloc_grads(), KernelSet::Fused)
        .as_vec()[0];
    assert_eq!(off.loss, plain_loss);
}

#[test]
fn freeze_names_groups_and_refuses_unknown_ones() {
    let dev = Cpu::default();
    let model = Gpt::new(&dev, tiny(), 3);
    let mut names = Vec::new();
    model.visit(|n, _| names.push(n));
    let f = frozen(&model, &["wte".into(), "h.0".into()]).expect("known groups");
    for (n, &fz) in names.iter().zip(&f) {
        let want = n == "transformer.wte.weight" || n.starts_with("transformer.h.0.");
        assert_eq!(fz, want, "{n}");
    }
    let f = frozen(&model, &["h.1.attn".into()]).expect("a sub-group");
    assert_eq!(f.iter().filter(|&&x| x).count(), 4);
    let err = frozen(&model, &["h.7".into()]).expect_err("no h.7 in 2 layers");
    assert!(err.contains("train.freeze") && err.contains("h.7"), "{err}");
}

fn tiny_finetune_args(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "train",
        "--out",
        out.to_str().expect("path"),
        "--data",
        fixture("small.txt").to_str().expect("path"),
        "--set",
        &format!("train.init_from=\"{}\"", fixture("gpt2_tiny").display()),
        "--set",
        "train.batch_size=2",
        "--set",
        "train.max_iters=6",
        "--set",
        "train.eval_iters=1",
        "--set",
        "train.eval_interval=3",
        "--set",
        "train.log_interval=1",
        "--set",
        "train.threads=1",
        "--set",
        "train.warmup_iters=0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dst = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).expect("copy");
        }
    }
}

fn run_owned(args: &[String]) -> std::process::Output {
    let v: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    run(&v)
}

#[test]
fn init_from_crops_to_an_explicit_block_size_and_keeps_the_checkpoints_otherwise() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cropped = tmp.path().join("cropped");
    let out = run_owned(&tiny_finetune_args(
        &cropped,
        &[
            "--set",
            "model.block_size=16",
            "--set",
            "train.grad_accum_steps=2",
            "--set",
            "model.dropout=0.1",
        ],
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ck = headsup::train::run_dir::latest_checkpoint(&cropped).expect("a checkpoint");
    let hf = load_hf_config(&ck).expect("config.json");
    assert_eq!(hf.n_positions, 16);
    assert_eq!(
        (hf.embd_pdrop, hf.attn_pdrop, hf.resid_pdrop),
        (0.1, 0.1, 0.1)
    );
    assert_eq!(hf.vocab_size, 320, "the padded vocabulary is kept");
    let st = read_safetensors(&ck.join("model.safetensors")).expect("weights");
    assert_eq!(st["transformer.wpe.weight"].0, vec![16, 32]);
    let losses = step_losses(&cropped);
    assert_eq!(losses.len(), 6);

    // Not set: the checkpoint's 64 positions and its dropout keys (0.1 from
    // transformers' GPT2Config) carry over.
    let kept = tmp.path().join("kept");
    let out = run_owned(&tiny_finetune_args(&kept, &[]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ck = headsup::train::run_dir::latest_checkpoint(&kept).expect("a checkpoint");
    assert_eq!(load_hf_config(&ck).expect("config").n_positions, 64);

    // Larger than the checkpoint's: refused, naming the key.
    let out = run_owned(&tiny_finetune_args(
        &tmp.path().join("big"),
        &["--set", "model.block_size=128"],
    ));
    assert_clean_error(&out, &["model.block_size", "128", "64"]);
}

#[test]
fn a_fine_tune_with_accumulation_and_dropout_resumes_exactly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let extra = [
        "--set",
        "model.block_size=16",
        "--set",
        "train.grad_accum_steps=2",
        "--set",
        "model.dropout=0.1",
        "--set",
        "train.checkpoint_interval=3",
    ];
    let whole = tmp.path().join("whole");
    let out = run_owned(&tiny_finetune_args(&whole, &extra));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The same run stopped at step 3: its step-3 checkpoint is the latest.
    let part = tmp.path().join("part");
    copy_tree(&whole, &part);
    let cks = part.join("checkpoints");
    std::fs::remove_dir_all(cks.join("step-0000006")).expect("rm step 6");
    std::fs::write(cks.join("LATEST"), "step-0000003").expect("LATEST");
    let out = run(&["train", "--resume", part.to_str().expect("path")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (a, b) = (step_losses(&whole), step_losses(&part));
    assert_eq!(a.len(), 6);
    assert_eq!(
        a, b,
        "steps 4..6 after the resume give the uninterrupted run's losses"
    );
}

#[test]
fn frozen_groups_do_not_move() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = tmp.path().join("frozen");
    let out = run_owned(&tiny_finetune_args(
        &r,
        &["--set", "train.freeze=[\"wte\", \"h.0\"]"],
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ck = headsup::train::run_dir::latest_checkpoint(&r).expect("a checkpoint");
    let after = read_safetensors(&ck.join("model.safetensors")).expect("weights");
    let before =
        read_safetensors(&fixture("gpt2_tiny").join("model.safetensors")).expect("weights");
    assert_eq!(after["transformer.wte.weight"].1, before["wte.weight"].1);
    assert_eq!(
        after["transformer.h.0.mlp.c_fc.weight"].1,
        before["h.0.mlp.c_fc.weight"].1
    );
    assert_ne!(
        after["transformer.h.1.mlp.c_fc.weight"].1,
        before["h.1.mlp.c_fc.weight"].1
    );
    let out = run_owned(&tiny_finetune_args(
        &tmp.path().join("bad"),
        &["--set", "train.freeze=[\"h.9\"]"],
    ));
    assert_clean_error(&out, &["train.freeze", "h.9"]);
}
