//! The one-shot subcommands that use a checkpoint: `generate` (stream text
//! from it), `fill` (a masked LM's candidates for each `[MASK]`) and `eval`
//! (validation loss, perplexity, next-token accuracy, or a masked LM's masked
//! loss and accuracy; or, with `--references`, completions scored with BLEU,
//! ROUGE, F1 and exact match).

use crate::cli::{EvalArgs, FillArgs, GenerateArgs};
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
    if p.model.bert.is_some() {
        bail!(
            "checkpoint {}: is a masked LM (BERT), which fills [MASK]s instead of generating; use headsup fill --checkpoint DIR --text \"...[MASK]...\"",
            a.checkpoint.display()
        );
    }
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

/// One mask's candidates: `(id, probability)`, best first.
pub type Candidates = Vec<(u32, f32)>;

/// A masked LM's `k` best fills for every `[MASK]` of `text` (wrapped in
/// `[CLS] ... [SEP]`): the ids, the masks' token positions and candidates
/// (`train::masking::fill_masks`, which the workbench's playground uses too).
/// Ids at or past `id_limit` (a padded vocabulary) are never proposed.
pub fn fill_masks(
    p: &crate::model::pretrained::Pretrained,
    text: &str,
    k: usize,
) -> Result<(Vec<usize>, Vec<usize>, Vec<Candidates>)> {
    use train::masking::FillError;
    match train::masking::fill_masks(&p.model, &p.tokenizer, p.id_limit, text, k, true) {
        Ok(f) => Ok((f.ids, f.positions, f.candidates)),
        Err(FillError::NoMask) => bail!("--text has no [MASK]; write [MASK] where a token is to be filled, e.g. \"床前明[MASK]光\""),
        Err(FillError::TooLong { tokens, max }) => bail!(
            "--text is {tokens} tokens with [CLS] and [SEP], more than the model's {max} positions; shorten it"
        ),
        Err(e) => bail!("{e}"),
    }
}

/// `headsup fill`: each `[MASK]`'s top-k candidates with probabilities, then
/// the text with every mask replaced by its best candidate.
pub fn run_fill(a: &FillArgs) -> Result<()> {
    let p = crate::model::pretrained::open(&a.checkpoint)?;
    if p.model.bert.is_none() {
        bail!(
            "checkpoint {}: is a causal LM (GPT-2); fill needs a masked LM (trained with model.arch = \"bert\"); use headsup generate for this one",
            a.checkpoint.display()
        );
    }
    let (ids, positions, cands) = fill_masks(&p, &a.text, a.top_k)?;
    let tok = &p.tokenizer;
    let piece = |id: u32| crate::sanitize::escape(&tok.decode(&[id]));
    let mut out = std::io::stdout();
    for (m, (pos, c)) in positions.iter().zip(&cands).enumerate() {
        let list: Vec<String> = c
            .iter()
            .map(|&(id, pr)| format!("{} {pr:.4}", piece(id)))
            .collect();
        let _ = writeln!(out, "[MASK] {} (token {pos}): {}", m + 1, list.join("  "));
    }
    let mut filled = ids.clone();
    for (pos, c) in positions.iter().zip(&cands) {
        filled[*pos] = c[0].0 as usize;
    }
    let inner: Vec<u32> = filled[1..filled.len() - 1]
        .iter()
        .map(|&i| i as u32)
        .collect();
    let _ = writeln!(
        out,
        "filled: {}",
        crate::sanitize::escape(&tok.decode(&inner))
    );
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
    if model.bert.is_some() {
        return eval_masked(&model, &tok, &cfg, &split.val, a.batches.max(1));
    }
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

/// `headsup eval` of a masked LM: masked loss, top-1 and top-5 accuracy on
/// validation windows masked as in training (seeded: the same every time).
fn eval_masked(
    model: &crate::model::Gpt<dfdx::prelude::Cpu>,
    tok: &Tokenizer,
    cfg: &crate::config::Config,
    val: &crate::data::Tokens,
    batches: usize,
) -> Result<()> {
    use train::masking::{score, MaskRule, MlmSetup, SpecialIds};
    let block = model.cfg.n_positions;
    if val.len() < block + 1 {
        bail!(
            "data: the validation split has {} tokens, fewer than block_size + 1 = {}",
            val.len(),
            block + 1
        );
    }
    let setup = MlmSetup {
        specials: SpecialIds::of(tok).map_err(|e| anyhow::anyhow!("tokenizer: {e}"))?,
        rule: MaskRule::of(&cfg.train),
        vocab: tok.id_limit().min(model.cfg.vocab_size),
    };
    let b = cfg.train.batch_size.max(1);
    let v = model.cfg.vocab_size;
    let mut bt = train::batch::Batcher::new(cfg.seed ^ 0x7661_6c21);
    let (mut loss, mut top1, mut top5, mut n) = (0.0f64, 0usize, 0usize, 0usize);
    for i in 0..batches {
        let m = setup.draw(&mut bt, val, b, block, cfg.seed, u64::MAX, i as u64);
        let logits = model
            .logits_at(&m.inputs, &m.positions, b, block, cfg.model.fused)
            .as_vec();
        let (l, h1, h5) = score(&logits, &m.targets, v);
        loss += l;
        top1 += h1;
        top5 += h5;
        n += m.targets.len();
    }
    let nf = n.max(1) as f64;
    println!(
        "{{\"masked_loss\": {:.4}, \"masked_top1\": {:.4}, \"masked_top5\": {:.4}, \"masked_positions\": {n}}}",
        loss / nf,
        top1 as f64 / nf,
        top5 as f64 / nf
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
