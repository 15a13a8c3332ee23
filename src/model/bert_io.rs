//! BERT checkpoints in Hugging Face `BertForMaskedLM` layout: `config.json`
//! (BertConfig keys), `model.safetensors` with transformers' names (query,
//! key and value apart, every dense weight `[out, in]` as `nn.Linear`
//! stores it), written atomically; loading a checkpoint transformers wrote
//! checks names, dtypes and shapes as the GPT-2 path does.

use super::checkpoint::{read_safetensors, safetensors_bytes, CheckpointError, NamedTensors};
use super::{Gpt, GptConfig};
use crate::fsutil::atomic_write;
use dfdx::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

fn bad(path: &Path, message: impl Into<String>) -> CheckpointError {
    CheckpointError::Bad {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// `config.json` in the BertConfig format (the keys headsup reads and writes).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BertConfig {
    #[serde(default)]
    pub architectures: Vec<String>,
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "gelu")]
    pub hidden_act: String,
    #[serde(default)]
    pub hidden_dropout_prob: f64,
    #[serde(default)]
    pub attention_probs_dropout_prob: f64,
    pub max_position_embeddings: usize,
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    #[serde(default = "super::checkpoint::init_range")]
    pub initializer_range: f64,
    #[serde(default = "eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "absolute")]
    pub position_embedding_type: String,
    #[serde(default)]
    pub is_decoder: bool,
    #[serde(default = "super::checkpoint::yes")]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub torch_dtype: Option<String>,
}

fn gelu() -> String {
    "gelu".into()
}
fn two() -> usize {
    2
}
fn eps() -> f64 {
    1e-12
}
fn absolute() -> String {
    "absolute".into()
}

impl BertConfig {
    pub fn from_gpt(cfg: &GptConfig, type_vocab_size: usize) -> Self {
        BertConfig {
            architectures: vec!["BertForMaskedLM".into()],
            model_type: "bert".into(),
            vocab_size: cfg.vocab_size,
            hidden_size: cfg.n_embd,
            num_hidden_layers: cfg.n_layer,
            num_attention_heads: cfg.n_head,
            intermediate_size: 4 * cfg.n_embd,
            hidden_act: "gelu".into(),
            hidden_dropout_prob: 0.0,
            attention_probs_dropout_prob: 0.0,
            max_position_embeddings: cfg.n_positions,
            type_vocab_size,
            initializer_range: 0.02,
            layer_norm_eps: cfg.layer_norm_epsilon,
            position_embedding_type: "absolute".into(),
            is_decoder: false,
            tie_word_embeddings: true,
            torch_dtype: Some("float32".into()),
        }
    }

    pub fn to_gpt(&self) -> GptConfig {
        GptConfig {
            vocab_size: self.vocab_size,
            n_positions: self.max_position_embeddings,
            n_embd: self.hidden_size,
            n_layer: self.num_hidden_layers,
            n_head: self.num_attention_heads,
            layer_norm_epsilon: self.layer_norm_eps,
        }
    }
}

/// Whether the `config.json` of `dir` describes a BERT model (`model_type`
/// `bert`, or a `Bert...` architecture). Unreadable files say no: the GPT-2
/// path then reports what is wrong with them.
pub fn is_bert_dir(dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join("config.json")) else {
        return false;
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return false;
    };
    v.get("model_type").and_then(|t| t.as_str()) == Some("bert")
        || v.get("architectures")
            .and_then(|a| a.as_array())
            .is_some_and(|a| {
                a.iter()
                    .any(|x| x.as_str().is_some_and(|s| s.starts_with("Bert")))
            })
}

/// Reads and checks `config.json` of a BERT checkpoint directory.
pub fn load_bert_config(dir: &Path) -> Result<BertConfig, CheckpointError> {
    let p = dir.join("config.json");
    let text = std::fs::read_to_string(&p).map_err(|e| bad(&p, format!("cannot read: {e}")))?;
    let hf: BertConfig =
        serde_json::from_str(&text).map_err(|e| bad(&p, format!("not a BERT config.json: {e}")))?;
    let esc = crate::sanitize::escape;
    if hf.model_type != "bert" {
        return Err(bad(
            &p,
            format!(
                "model_type `{}` is not supported; headsup reads BERT checkpoints with model_type bert",
                esc(&hf.model_type)
            ),
        ));
    }
    for a in &hf.architectures {
        if a != "BertForMaskedLM" && a != "BertModel" && a != "BertForPreTraining" {
            return Err(bad(
                &p,
                format!(
                    "architectures names `{}`; headsup reads BertForMaskedLM checkpoints",
                    esc(a)
                ),
            ));
        }
    }
    if hf.hidden_act != "gelu" {
        return Err(bad(
            &p,
            format!(
                "hidden_act `{}` is not supported; headsup's BERT computes the exact GELU (gelu)",
                esc(&hf.hidden_act)
            ),
        ));
    }
    if hf.position_embedding_type != "absolute" || hf.is_decoder {
        return Err(bad(
            &p,
            "only absolute position embeddings in an encoder are supported (position_embedding_type absolute, is_decoder false)",
        ));
    }
    if !hf.tie_word_embeddings {
        return Err(bad(
            &p,
            "tie_word_embeddings false is not supported; headsup's MLM decoder is the word embedding",
        ));
    }
    if !(hf.layer_norm_eps.is_finite() && hf.layer_norm_eps > 0.0) {
        return Err(bad(
            &p,
            format!(
                "layer_norm_eps must be a positive number, got {}; fix config.json (BERT uses 1e-12)",
                hf.layer_norm_eps
            ),
        ));
    }
    let c = hf.to_gpt();
    if c.n_head == 0
        || !c.n_embd.is_multiple_of(c.n_head)
        || c.n_layer == 0
        || c.vocab_size == 0
        || c.n_positions == 0
        || hf.type_vocab_size == 0
    {
        return Err(bad(
            &p,
            "sizes are inconsistent (hidden_size must divide by num_attention_heads, all sizes positive)",
        ));
    }
    if hf.intermediate_size != 4 * hf.hidden_size {
        return Err(bad(
            &p,
            format!(
                "intermediate_size {} is not supported; headsup's MLP is 4 x hidden_size = {} wide",
                hf.intermediate_size,
                4 * hf.hidden_size
            ),
        ));
    }
    let big = (c.vocab_size as u128 + c.n_positions as u128) * c.n_embd as u128
        + c.n_layer as u128 * 12 * (c.n_embd as u128).pow(2);
    if big > 1 << 34 {
        return Err(bad(
            &p,
            "sizes are too large for headsup (over 16 G parameters)",
        ));
    }
    Ok(hf)
}

/// `[rows, cols]` row-major to `[cols, rows]`.
fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}

/// The model's tensors under transformers' names and layouts.
pub fn to_hf_tensors<D: Storage<f32>>(model: &Gpt<D>) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let c = model.cfg.n_embd;
    let mut out = Vec::new();
    model.visit(|name, p| {
        let shape = p.shape();
        let data = p.to_vec();
        if let Some(rest) = name.strip_suffix("attention.self.qkv.weight") {
            // [C, 3C] (in, out): columns j*C..(j+1)*C are query, key, value.
            let t = transpose(&data, c, 3 * c); // [3C, C]: rows per output
            for (j, part) in ["query", "key", "value"].iter().enumerate() {
                out.push((
                    format!("{rest}attention.self.{part}.weight"),
                    vec![c, c],
                    t[j * c * c..(j + 1) * c * c].to_vec(),
                ));
            }
        } else if let Some(rest) = name.strip_suffix("attention.self.qkv.bias") {
            for (j, part) in ["query", "key", "value"].iter().enumerate() {
                out.push((
                    format!("{rest}attention.self.{part}.bias"),
                    vec![c],
                    data[j * c..(j + 1) * c].to_vec(),
                ));
            }
        } else if name.ends_with("dense.weight") {
            // Stored [in, out]; nn.Linear keeps [out, in].
            out.push((
                name,
                vec![shape[1], shape[0]],
                transpose(&data, shape[0], shape[1]),
            ));
        } else {
            out.push((name, shape, data));
        }
    });
    out
}

/// Writes `config.json` and `model.safetensors` of a BERT `model` into `dir`.
pub fn save_bert<D: Storage<f32>>(model: &Gpt<D>, dir: &Path) -> Result<(), CheckpointError> {
    let b = model.bert.as_ref().expect("save_bert on a BERT model");
    std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Write {
        path: dir.into(),
        source,
    })?;
    let mut hf = BertConfig::from_gpt(&model.cfg, b.token_type.shape().0);
    hf.hidden_dropout_prob = model.dropout.resid;
    hf.attention_probs_dropout_prob = model.dropout.attn;
    let cfg = serde_json::to_string_pretty(&hf).expect("config serializes");
    let cfg_path = dir.join("config.json");
    atomic_write(&cfg_path, cfg.as_bytes()).map_err(|source| CheckpointError::Write {
        path: cfg_path,
        source,
    })?;
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    let bytes = safetensors_bytes(&to_hf_tensors(model), Some(meta));
    let st_path = dir.join("model.safetensors");
    atomic_write(&st_path, &bytes).map_err(|source| CheckpointError::Write {
        path: st_path,
        source,
    })
}

/// Takes tensor `name` of `shape` out of `t`, with a clear error.
fn take(
    t: &mut NamedTensors,
    path: &Path,
    name: &str,
    shape: &[usize],
) -> Result<Vec<f32>, CheckpointError> {
    match t.remove(name) {
        None => Err(bad(
            path,
            format!("tensor `{name}` is missing; the file does not match config.json"),
        )),
        Some((s, _)) if s != shape => Err(bad(
            path,
            format!("tensor `{name}` has shape {s:?} but config.json implies {shape:?}"),
        )),
        Some((_, d)) => Ok(d),
    }
}

/// Loads a BERT checkpoint (headsup's or one transformers wrote).
pub fn load_bert<D: Device<f32>>(dev: &D, dir: &Path) -> Result<Gpt<D>, CheckpointError> {
    let hf = load_bert_config(dir)?;
    let cfg = hf.to_gpt();
    let st_path = dir.join("model.safetensors");
    if !st_path.exists() && dir.join("pytorch_model.bin").exists() {
        return Err(bad(
            dir,
            format!(
                "has pytorch_model.bin but no model.safetensors, and headsup reads safetensors only; convert it with transformers: python -c \"from transformers import BertForMaskedLM as M; M.from_pretrained('{0}').save_pretrained('{0}', safe_serialization=True)\"",
                dir.display()
            ),
        ));
    }
    let mut t = read_safetensors(&st_path)?;
    let (c, v) = (cfg.n_embd, cfg.vocab_size);
    let have: u128 = t.values().map(|(_, d)| d.len() as u128).sum();
    let need = (v as u128 + cfg.n_positions as u128) * c as u128
        + cfg.n_layer as u128 * 12 * (c as u128).pow(2);
    if need > have && need > 1 << 24 {
        return Err(bad(
            &st_path,
            format!("config.json implies {need} parameters but the file holds {have} values; the weights do not match config.json"),
        ));
    }
    let mut model = Gpt::new_bert(dev, cfg, 0);
    let types = hf.type_vocab_size;
    if let Some(b) = model.bert.as_mut() {
        b.token_type = dev.tensor_from_vec(vec![0.0; types * c], (types, c));
    }
    model.dropout = super::dropout::Dropout {
        embd: hf.hidden_dropout_prob,
        attn: hf.attention_probs_dropout_prob,
        resid: hf.hidden_dropout_prob,
    };
    // transformers' layout back to headsup's, by headsup's names.
    let mut host: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    let mut wanted: Vec<(String, Vec<usize>)> = Vec::new();
    model.visit(|name, p| wanted.push((name, p.shape())));
    for (name, shape) in &wanted {
        let data = if let Some(rest) = name.strip_suffix("attention.self.qkv.weight") {
            // Rows of [3C, C] (out, in) are query, key, value; then [C, 3C].
            let mut rows = Vec::with_capacity(3 * c * c);
            for part in ["query", "key", "value"] {
                let n = format!("{rest}attention.self.{part}.weight");
                rows.extend(take(&mut t, &st_path, &n, &[c, c])?);
            }
            transpose(&rows, 3 * c, c)
        } else if let Some(rest) = name.strip_suffix("attention.self.qkv.bias") {
            let mut all = Vec::with_capacity(3 * c);
            for part in ["query", "key", "value"] {
                let n = format!("{rest}attention.self.{part}.bias");
                all.extend(take(&mut t, &st_path, &n, &[c])?);
            }
            all
        } else if name.ends_with("dense.weight") {
            let d = take(&mut t, &st_path, name, &[shape[1], shape[0]])?;
            transpose(&d, shape[1], shape[0])
        } else {
            take(&mut t, &st_path, name, shape)?
        };
        host.insert(name.clone(), data);
    }
    model.visit_mut(|name, mut p| {
        if let Some(d) = host.get(&name) {
            p.copy_from(d);
        }
    });
    // Tied copies a file may hold must agree; buffers and the pooler and
    // next-sentence head (not part of the masked LM) are left out.
    if let Some((_, d)) = t.remove("cls.predictions.decoder.weight") {
        if d != model.wte.as_vec() {
            return Err(bad(
                &st_path,
                "cls.predictions.decoder.weight differs from bert.embeddings.word_embeddings.weight; headsup ties the decoder to the word embeddings",
            ));
        }
    }
    if let Some((_, d)) = t.remove("cls.predictions.decoder.bias") {
        let bias = model.bert.as_ref().map(|b| b.decoder_bias.as_vec());
        if Some(d) != bias {
            return Err(bad(
                &st_path,
                "cls.predictions.decoder.bias differs from cls.predictions.bias; headsup ties them",
            ));
        }
    }
    t.retain(|k, _| {
        !(k == "bert.embeddings.position_ids"
            || k.starts_with("bert.pooler.")
            || k.starts_with("cls.seq_relationship."))
    });
    if let Some(extra) = t.keys().next() {
        return Err(bad(
            &st_path,
            format!("unexpected tensor `{extra}`; is this a BertForMaskedLM checkpoint?"),
        ));
    }
    Ok(model)
}
