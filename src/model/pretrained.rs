//! Opening a checkpoint directory for inference (`generate`, `eval`, the
//! workbench without a trainer): the model, its tokenizer (`tokenizer.json`,
//! or GPT-2's `vocab.json` + `merges.txt`), and which ids the tokenizer can
//! decode when the model's vocabulary is padded past it.

use super::checkpoint::{load_config, load_model, CheckpointError};
use super::Gpt;
use crate::tokenizer::Tokenizer;
use dfdx::prelude::Cpu;
use std::path::Path;

/// A checkpoint ready to generate from.
#[derive(Debug)]
pub struct Pretrained {
    pub model: Gpt<Cpu>,
    pub tokenizer: Tokenizer,
    /// Ids at or past this are never sampled: the tokenizer cannot decode
    /// them (the model's vocabulary is padded, as nanoGPT's 50304).
    pub id_limit: usize,
    /// Said once when the vocabulary is padded; `None` otherwise.
    pub padding_note: Option<String>,
}

/// Checks that a tokenizer fits a model: a model vocabulary at least as
/// large as the tokenizer's is valid (padded, ids past the tokenizer's are
/// masked in generation, the returned note says so); a larger tokenizer is
/// an error, since the model cannot embed its ids.
pub fn check_vocab(
    dir: &Path,
    tokenizer_ids: usize,
    model_vocab: usize,
) -> Result<Option<String>, CheckpointError> {
    if tokenizer_ids > model_vocab {
        return Err(CheckpointError::Bad {
            path: dir.into(),
            message: format!(
                "the tokenizer has {tokenizer_ids} ids but config.json says vocab_size {model_vocab}, so ids {model_vocab}..{} have no embedding; use the tokenizer this model was trained with",
                tokenizer_ids - 1
            ),
        });
    }
    Ok((tokenizer_ids < model_vocab).then(|| {
        format!(
            "note: checkpoint {}: the model's vocabulary ({model_vocab}) is padded past the tokenizer's ({tokenizer_ids}); ids {tokenizer_ids}..{} are never sampled",
            dir.display(),
            model_vocab - 1
        )
    }))
}

/// Loads the model and tokenizer of `dir` on the CPU (config.json and the
/// tokenizer are checked before the weights are read).
pub fn open(dir: &Path) -> anyhow::Result<Pretrained> {
    let cfg = load_config(dir)?;
    let tokenizer = Tokenizer::load_dir(dir)?;
    let id_limit = tokenizer.id_limit();
    let padding_note = check_vocab(dir, id_limit, cfg.vocab_size)?;
    let model = load_model(&Cpu::default(), dir)?;
    Ok(Pretrained {
        model,
        tokenizer,
        id_limit,
        padding_note,
    })
}
