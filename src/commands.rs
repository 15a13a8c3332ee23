//! The one-shot subcommands that use a checkpoint: `generate` (stream text
//! from it) and `eval` (validation loss, perplexity, next-token accuracy; or,
//! with `--references`, completions scored with BLEU, ROUGE, F1 and exact match).

use crate::cli::{EvalArgs, GenerateArgs};
use crate::experiment::load_experiment;
use crate::model::infer::HostModel;
use crate::model::sample::generate_within;
use crate::sanitize::escape_keep_newlines;
use crate::tokenizer::{StreamDecoder, Tokenizer};
use crate::train;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;

/// `headsup generate`: the prompt, then the tokens as they come.
pub fn run_generate(a: &GenerateArgs) -> Result<()> {
    let p = crate::model::pretrained::open(&a.checkpoint)?;
    if let Some(note) = &p.padding_note {
        let _ = writeln!(std::io::stderr(), "{}", crate::sanitize::escape(note));
    }
    let tok = &p.tokenizer;
    let host = HostModel::from_model(&p.model);
    let settings = a.settings();
    let prompt: Vec<usize> = tok
        .encode(&a.prompt)
        .into_iter()
        .map(|t| t as usize)
        .collect();
    let mut out = std::io::stdout();
    let _ = write!(out, "{}", escape_keep_newlines(&a.prompt));
    let mut dec = StreamDecoder::new();
    generate_within(
        &host,
        p.id_limit,
        &prompt,
        &settings,
        !a.no_cache,
        |id, _| {
            let piece = dec.push(tok, id as u32);
            let _ = write!(out, "{}", escape_keep_newlines(&piece));
            let _ = out.flush();
            true
        },
    );
    let _ = writeln!(out);
    Ok(())
}

/// `headsup eval`: one JSON line.
pub fn run_eval(a: &EvalArgs) -> Result<()> {
    if let Some(refs) = &a.references {
        return run_eval_references(a, refs);
    }
    let model = train::load_cpu_model(&a.checkpoint)?;
    let mut exp = a.exp.experiment();
    if exp.config.is_none() {
        // checkpoints live in RUN/checkpoints/step-N: use RUN/config.toml.
        let run_cfg = a
            .checkpoint
            .parent()
            .and_then(|p| p.parent())
            .map(|r| r.join("config.toml"));
        match run_cfg.filter(|p| p.is_file()) {
            Some(p) => exp.config = Some(p.display().to_string()),
            None if exp.data.is_none() => bail!(
                "checkpoint {}: not inside a run directory, so give the data to evaluate on with --data PATH (and --config)",
                a.checkpoint.display()
            ),
            None => {}
        }
    }
    let cfg = load_experiment(&exp)?;
    let tok = Tokenizer::load_dir(&a.checkpoint)?;
    let ds = crate::data::Dataset::load(&cfg.data, cfg.seed)?;
    let split = crate::data::TokenSplit::new(tok.encode(&ds.corpus()), cfg.data.train_fraction);
    let block = model.cfg.n_positions;
    if split.val.len() < block + 1 {
        bail!(
            "data: the validation split has {} tokens, fewer than block_size + 1 = {}",
            split.val.len(),
            block + 1
        );
    }
    let b = cfg.train.batch_size.max(1);
    let mut bt = train::batch::Batcher::new(cfg.seed ^ 0x7661_6c21);
    let (mut loss_sum, mut correct, mut total) = (0.0f64, 0usize, 0usize);
    for _ in 0..a.batches.max(1) {
        let (x, y) = bt.draw(&split.val, b, block);
        let out = model.forward_inference(&x, b, block, false, cfg.model.fused);
        let logits = out.logits.as_vec();
        let v = model.cfg.vocab_size;
        for (i, &t) in y.iter().enumerate() {
            let row = &logits[i * v..(i + 1) * v];
            let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let lse = max + row.iter().map(|&l| (l - max).exp()).sum::<f32>().ln();
            loss_sum += (lse - row[t]) as f64;
            let arg = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|x| x.0)
                .unwrap_or(0);
            correct += (arg == t) as usize;
            total += 1;
        }
    }
    let loss = loss_sum / total as f64;
    println!(
        "{{\"val_loss\": {loss:.4}, \"perplexity\": {:.3}, \"next_token_accuracy\": {:.4}, \"tokens\": {total}}}",
        loss.exp(),
        correct as f64 / total as f64
    );
    Ok(())
}

/// `eval --references`: completions scored against references.
fn run_eval_references(a: &EvalArgs, refs: &Path) -> Result<()> {
    let examples = crate::eval::read_references(refs)?;
    let p = crate::model::pretrained::open(&a.checkpoint)?;
    let decoding = crate::eval::Decoding {
        temperature: a.temperature,
        top_k: a.top_k,
        top_p: a.top_p,
        seed: a.seed,
        max_new_tokens: a.max_new_tokens,
        stop: a.stop.replace("\\n", "\n"),
    };
    let report = crate::eval::evaluate(&p, &a.checkpoint, refs, &examples, decoding);
    let json = report.to_json();
    if let Some(path) = &a.report {
        crate::fsutil::atomic_write(path, json.as_bytes()).with_context(|| {
            format!(
                "report {}: cannot write it; check the directory",
                path.display()
            )
        })?;
    }
    let mut out = std::io::stdout();
    if a.json {
        let _ = writeln!(out, "{json}");
    } else {
        let cols = crossterm::terminal::size()
            .map(|s| s.0 as usize)
            .unwrap_or(100);
        let _ = write!(out, "{}", report.table(cols));
    }
    Ok(())
}
