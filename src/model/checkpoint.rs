//! Checkpoints in Hugging Face GPT-2 layout: `config.json` (GPT2Config keys),
//! `model.safetensors` (GPT-2 tensor names, Conv1D `[in, out]` weights),
//! written atomically; loading checks names, dtypes and shapes.

use super::{Gpt, GptConfig};
use crate::fsutil::atomic_write;
use ::safetensors::tensor::{Dtype as StDtype, TensorView};
use dfdx::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint {path}: {message}")]
    Bad { path: PathBuf, message: String },
    #[error("checkpoint {path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn bad(path: &Path, message: impl Into<String>) -> CheckpointError {
    CheckpointError::Bad {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// `config.json` in the GPT2Config format.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HfConfig {
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default = "gpt2")]
    pub model_type: String,
    pub vocab_size: usize,
    pub n_positions: usize,
    #[serde(default)]
    pub n_ctx: Option<usize>,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    #[serde(default)]
    pub n_inner: Option<usize>,
    #[serde(default = "eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "gelu_new")]
    pub activation_function: String,
    #[serde(default)]
    pub resid_pdrop: f64,
    #[serde(default)]
    pub embd_pdrop: f64,
    #[serde(default)]
    pub attn_pdrop: f64,
    #[serde(default = "init_range")]
    pub initializer_range: f64,
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub torch_dtype: Option<String>,
}

fn gpt2() -> String {
    "gpt2".into()
}
fn eps() -> f64 {
    super::DEFAULT_LAYER_NORM_EPSILON
}
fn gelu_new() -> String {
    "gelu_new".into()
}
/// Defaults of HF config keys shared by the GPT-2 and BERT layouts
/// (`initializer_range`, `tie_word_embeddings`).
pub(super) fn init_range() -> f64 {
    0.02
}
pub(super) fn yes() -> bool {
    true
}

impl HfConfig {
    pub fn from_gpt(cfg: &GptConfig) -> Self {
        HfConfig {
            architectures: vec!["GPT2LMHeadModel".into()],
            model_type: "gpt2".into(),
            vocab_size: cfg.vocab_size,
            n_positions: cfg.n_positions,
            n_ctx: Some(cfg.n_positions),
            n_embd: cfg.n_embd,
            n_layer: cfg.n_layer,
            n_head: cfg.n_head,
            n_inner: None,
            layer_norm_epsilon: cfg.layer_norm_epsilon,
            activation_function: "gelu_new".into(),
            resid_pdrop: 0.0,
            embd_pdrop: 0.0,
            attn_pdrop: 0.0,
            initializer_range: 0.02,
            tie_word_embeddings: true,
            torch_dtype: Some("float32".into()),
        }
    }
    pub fn to_gpt(&self) -> GptConfig {
        GptConfig {
            vocab_size: self.vocab_size,
            n_positions: self.n_positions,
            n_embd: self.n_embd,
            n_layer: self.n_layer,
            n_head: self.n_head,
            layer_norm_epsilon: self.layer_norm_epsilon,
        }
    }
}

/// Serializes named f32 tensors to safetensors bytes.
pub fn safetensors_bytes(
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    meta: Option<BTreeMap<String, String>>,
) -> Vec<u8> {
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                s.clone(),
                d.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = raw
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                TensorView::new(StDtype::F32, s.clone(), b).expect("shape matches data length"),
            )
        })
        .collect();
    let meta = meta.map(|m| m.into_iter().collect());
    ::safetensors::serialize(views, &meta).expect("serializing in-memory tensors")
}

/// Tensors by name: shape and f32 values.
pub type NamedTensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// Reads every tensor of a safetensors file as f32, with clear errors.
pub fn read_safetensors(path: &Path) -> Result<NamedTensors, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|e| bad(path, format!("cannot read: {e}")))?;
    if bytes.is_empty() {
        return Err(bad(
            path,
            "file is empty; the checkpoint is incomplete, use an earlier one",
        ));
    }
    let st = ::safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
        bad(
            path,
            format!("not a valid safetensors file ({e:?}); it may be truncated or corrupt, use an earlier checkpoint"),
        )
    })?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != StDtype::F32 {
            return Err(bad(
                path,
                format!(
                    "tensor `{name}` has dtype {:?}; headsup reads float32 only",
                    view.dtype()
                ),
            ));
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.insert(name, (view.shape().to_vec(), data));
    }
    Ok(out)
}

/// Writes `config.json` and `model.safetensors` of `model` into `dir`.
/// A BERT model is written in `BertForMaskedLM` layout ([`super::bert_io`]).
pub fn save_model<D: Device<f32>>(model: &Gpt<D>, dir: &Path) -> Result<(), CheckpointError> {
    if model.bert.is_some() {
        return super::bert_io::save_bert(model, dir);
    }
    std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Write {
        path: dir.into(),
        source,
    })?;
    let mut hf = HfConfig::from_gpt(&model.cfg);
    hf.embd_pdrop = model.dropout.embd;
    hf.attn_pdrop = model.dropout.attn;
    hf.resid_pdrop = model.dropout.resid;
    let cfg = serde_json::to_string_pretty(&hf).expect("config serializes");
    let cfg_path = dir.join("config.json");
    atomic_write(&cfg_path, cfg.as_bytes()).map_err(|source| CheckpointError::Write {
        path: cfg_path,
        source,
    })?;
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    let bytes = safetensors_bytes(&model.to_host(), Some(meta));
    let st_path = dir.join("model.safetensors");
    atomic_write(&st_path, &bytes).map_err(|source| CheckpointError::Write {
        path: st_path,
        source,
    })
}

/// Reads `config.json` of a checkpoint directory.
/// A BERT checkpoint's sizes come from its BertConfig keys.
pub fn load_config(dir: &Path) -> Result<GptConfig, CheckpointError> {
    if super::bert_io::is_bert_dir(dir) {
        return super::bert_io::load_bert_config(dir).map(|b| b.to_gpt());
    }
    load_hf_config(dir).map(|hf| hf.to_gpt())
}

/// Reads and checks `config.json` of a checkpoint directory, every key kept.
pub fn load_hf_config(dir: &Path) -> Result<HfConfig, CheckpointError> {
    if !dir.is_dir() {
        return Err(bad(dir, "is not a directory; give the checkpoint directory (it holds config.json and model.safetensors)"));
    }
    let p = dir.join("config.json");
    let text = std::fs::read_to_string(&p).map_err(|e| bad(&p, format!("cannot read: {e}")))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| bad(&p, format!("not a GPT-2 config.json: {e}")))?;
    let value = gpt2_family(&p, value)?;
    let hf: HfConfig = serde_json::from_value(value)
        .map_err(|e| bad(&p, format!("not a GPT-2 config.json: {e}")))?;
    let cfg = hf.to_gpt();
    if !(cfg.layer_norm_epsilon.is_finite() && cfg.layer_norm_epsilon > 0.0) {
        return Err(bad(
            &p,
            format!(
                "layer_norm_epsilon must be a positive number, got {}; fix config.json (GPT-2 uses 1e-5)",
                cfg.layer_norm_epsilon
            ),
        ));
    }
    if cfg.n_head == 0
        || !cfg.n_embd.is_multiple_of(cfg.n_head)
        || cfg.n_layer == 0
        || cfg.vocab_size == 0
        || cfg.n_positions == 0
    {
        return Err(bad(
            &p,
            "sizes are inconsistent (n_embd must divide by n_head, all sizes positive)",
        ));
    }
    for (key, v) in [
        ("embd_pdrop", hf.embd_pdrop),
        ("attn_pdrop", hf.attn_pdrop),
        ("resid_pdrop", hf.resid_pdrop),
    ] {
        if !(0.0..1.0).contains(&v) {
            return Err(bad(
                &p,
                format!("{key} must be at least 0 and below 1, got {v}; fix config.json (GPT-2 uses 0.1)"),
            ));
        }
    }
    Ok(hf)
}

/// The GPT-2 variants headsup computes exactly: the checks on `config.json`'s
/// keys before its sizes are read, and `n_ctx` standing in for a missing
/// `n_positions` (older GPT-2 configs).
fn gpt2_family(p: &Path, mut v: serde_json::Value) -> Result<serde_json::Value, CheckpointError> {
    let Some(obj) = v.as_object_mut() else {
        return Err(bad(p, "not a GPT-2 config.json: not a JSON object"));
    };
    let text = |k: &str| {
        obj.get(k).map(|x| {
            x.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| x.to_string())
        })
    };
    if let Some(t) = text("model_type") {
        if t != "gpt2" {
            return Err(bad(
                p,
                format!("model_type `{}` is not supported; headsup reads GPT-2 checkpoints (model_type gpt2)", crate::sanitize::escape(&t)),
            ));
        }
    }
    if let Some(archs) = obj.get("architectures").and_then(|a| a.as_array()) {
        for a in archs {
            let name = a.as_str().unwrap_or("");
            if name != "GPT2LMHeadModel" && name != "GPT2Model" {
                return Err(bad(
                    p,
                    format!(
                        "architectures names `{}`, which is not supported; headsup reads GPT2LMHeadModel and GPT2Model checkpoints",
                        crate::sanitize::escape(&a.as_str().map(str::to_string).unwrap_or_else(|| a.to_string()))
                    ),
                ));
            }
        }
    }
    if let Some(act) = text("activation_function") {
        if act != "gelu_new" && act != "gelu_pytorch_tanh" {
            return Err(bad(
                p,
                format!(
                    "activation_function `{}` is not supported; headsup computes the tanh GELU (gelu_new or gelu_pytorch_tanh)",
                    crate::sanitize::escape(&act)
                ),
            ));
        }
    }
    if let (Some(n_inner), Some(n_embd)) = (
        obj.get("n_inner").and_then(|x| x.as_u64()),
        obj.get("n_embd").and_then(|x| x.as_u64()),
    ) {
        if n_inner != 4 * n_embd {
            return Err(bad(
                p,
                format!("n_inner {n_inner} is not supported; headsup's MLP is 4 x n_embd = {} wide (set n_inner to null)", 4 * n_embd),
            ));
        }
    }
    if obj.get("tie_word_embeddings").and_then(|x| x.as_bool()) == Some(false) {
        return Err(bad(
            p,
            "tie_word_embeddings false is not supported; headsup's LM head is the token embedding (wte), as GPT-2's",
        ));
    }
    if !obj.contains_key("n_positions") {
        match obj.get("n_ctx").cloned() {
            Some(n) => {
                obj.insert("n_positions".into(), n);
            }
            None => {
                return Err(bad(
                    p,
                    "has neither n_positions nor n_ctx; give the model's number of positions",
                ))
            }
        }
    }
    Ok(v)
}

/// `GptConfig::n_params` without overflow, for sizes read from files.
fn params_u128(cfg: &GptConfig) -> u128 {
    let c = cfg.n_embd as u128;
    let per_block = 12 * c * c + 13 * c;
    (cfg.vocab_size as u128 + cfg.n_positions as u128) * c + cfg.n_layer as u128 * per_block + 2 * c
}

/// Loads a model from a checkpoint directory, checking every tensor.
/// A BERT checkpoint (`model_type` bert) loads as a BERT model.
pub fn load_model<D: Device<f32>>(dev: &D, dir: &Path) -> Result<Gpt<D>, CheckpointError> {
    if super::bert_io::is_bert_dir(dir) {
        return super::bert_io::load_bert(dev, dir);
    }
    let hf = load_hf_config(dir)?;
    let cfg = hf.to_gpt();
    let st_path = dir.join("model.safetensors");
    if !st_path.exists() {
        if dir.join("pytorch_model.bin").exists() {
            return Err(bad(
                dir,
                format!(
                    "has pytorch_model.bin but no model.safetensors, and headsup reads safetensors only; convert it with transformers: python -c \"from transformers import GPT2LMHeadModel as M; M.from_pretrained('{0}').save_pretrained('{0}', safe_serialization=True)\"",
                    dir.display()
                ),
            ));
        }
        if dir.join("model.safetensors.index.json").exists() {
            return Err(bad(
                dir,
                "holds a sharded model (model.safetensors.index.json); headsup reads one model.safetensors: save it unsharded with transformers (save_pretrained(DIR, max_shard_size=\"100GB\"))",
            ));
        }
    }
    let mut tensors = read_safetensors(&st_path)?;
    // Accept GPT2Model names without the `transformer.` prefix too.
    let keys: Vec<String> = tensors.keys().cloned().collect();
    for k in keys {
        if !k.starts_with("transformer.") && !k.starts_with("lm_head.") {
            if let Some(v) = tensors.remove(&k) {
                tensors.insert(format!("transformer.{k}"), v);
            }
        }
    }
    // Before allocating a large model of config.json's sizes: the file must
    // hold at least that many values (a corrupt or foreign config.json could
    // ask for terabytes). Small mismatches get the per-tensor message below.
    let have: u128 = tensors.values().map(|(_, d)| d.len() as u128).sum();
    let need = params_u128(&cfg);
    if need > have && need > 1 << 24 {
        return Err(bad(
            &st_path,
            format!(
                "config.json implies {need} parameters but the file holds {have} values; the weights do not match config.json"
            ),
        ));
    }
    let mut model = Gpt::new(dev, cfg, 0);
    model.dropout = super::dropout::Dropout {
        embd: hf.embd_pdrop,
        attn: hf.attn_pdrop,
        resid: hf.resid_pdrop,
    };
    let mut err = None;
    model.visit_mut(|name, mut p| {
        if err.is_some() {
            return;
        }
        let want = p.shape();
        match tensors.remove(&name) {
            None => {
                err = Some(bad(
                    &st_path,
                    format!("tensor `{name}` is missing; the file does not match config.json"),
                ))
            }
            Some((shape, data)) => {
                if shape != want {
                    err = Some(bad(
                        &st_path,
                        format!(
                            "tensor `{name}` has shape {shape:?} but config.json implies {want:?}"
                        ),
                    ));
                } else {
                    p.copy_from(&data);
                }
            }
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    // GPT2LMHeadModel's head is tied to wte; a file that holds it must agree.
    if let Some((shape, data)) = tensors.remove("lm_head.weight") {
        let wte = model.wte.as_vec();
        if shape != [cfg.vocab_size, cfg.n_embd] || data != wte {
            return Err(bad(
                &st_path,
                "lm_head.weight differs from transformer.wte.weight; headsup ties the LM head to the token embedding, as GPT-2 does",
            ));
        }
    }
    tensors.retain(|k, _| !(k.ends_with(".attn.bias") || k.ends_with(".attn.masked_bias")));
    if let Some(extra) = tensors.keys().next() {
        return Err(bad(
            &st_path,
            format!("unexpected tensor `{extra}`; is this a GPT-2 checkpoint?"),
        ));
    }
    Ok(model)
}
