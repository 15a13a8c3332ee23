//! Experiment configuration: a TOML file, defaults for every key, `--set key=value`
//! overrides, and validation. Unknown keys are errors (serde `deny_unknown_fields`).

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Errors a user can cause through a config file or `--set`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}; check the path")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path} is not valid UTF-8; save it as UTF-8 text")]
    Encoding { path: PathBuf },
    #[error("config {path} is UTF-16 text; save it as UTF-8")]
    Utf16 { path: PathBuf },
    #[error("config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("--set {arg}: {message}")]
    Override { arg: String, message: String },
    #[error("config: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Run name, used for the run directory.
    pub name: String,
    /// Master seed: weights, batches and sampling all derive from it.
    pub seed: u64,
    /// `cpu` or `cuda` / `cuda:N`.
    pub device: String,
    pub data: DataConfig,
    pub tokenizer: TokenizerConfig,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub sample: SampleConfig,
    pub ui: UiConfig,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// One plain UTF-8 text file.
    Text,
    /// Every text file under a directory (sorted by path).
    Dir,
    /// One JSON object per line; text in `field`.
    Jsonl,
    /// A JSON document; records found along `json_path`.
    Json,
    /// CSV with a header; text in column `field`.
    Csv,
    /// A task the project generates itself (see `task`).
    Synthetic,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SyntheticTask {
    /// `abcdefgh|abcdefgh`: a random string of fixed length, then again.
    /// Learned in a few hundred steps: the workbench's default.
    Copy,
    /// Random prefix of 4-12 letters, then the same prefix again: needs an
    /// induction head (content-based lookup); a slower, sharper phase change.
    Induction,
    /// `abc>cba`: reverse a random string.
    Reverse,
    /// `12+34=46`: add two numbers.
    Addition,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    pub source: SourceKind,
    /// File or directory for text/dir/jsonl/json/csv.
    pub path: Option<PathBuf>,
    /// JSONL/CSV: the field or column holding the text.
    pub field: String,
    /// JSON: dotted path to the text, e.g. `content.content.paragraphs`;
    /// arrays along the way are walked, string arrays joined with newlines.
    pub json_path: String,
    pub task: SyntheticTask,
    /// Synthetic: number of records generated.
    pub synthetic_records: usize,
    /// Fraction of the data used for training; the rest is validation.
    pub train_fraction: f64,
    /// Width of the ids in the token cache of a text file: `auto` (u16 when
    /// the vocabulary fits), `u16` or `u32`.
    pub token_ids: TokenIds,
}

/// [`DataConfig::token_ids`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum TokenIds {
    #[default]
    Auto,
    U16,
    U32,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TokenizerKind {
    Char,
    Bpe,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TokenizerConfig {
    pub kind: TokenizerKind,
    /// BPE: target vocabulary size.
    pub vocab_size: usize,
    /// Load this tokenizer.json instead of building one.
    pub path: Option<PathBuf>,
    /// BPE on a text file: trained on at most this many MB from its start
    /// (the whole file when smaller).
    pub train_sample_mb: u64,
}

/// `model.arch`: which network is trained.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// The GPT-2 decoder (the default).
    #[default]
    Gpt2,
    /// The BERT encoder with the masked-LM head (`BertForMaskedLM`).
    Bert,
}

/// `train.objective`: what the model learns to predict.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// Causal language modelling: the next token (GPT-2).
    #[default]
    Clm,
    /// Masked language modelling: masked tokens from both sides (BERT).
    Mlm,
}

/// `train.precision`: the number format of the fused kernels' matrix
/// products (weights, gradients and optimizer state stay fp32 either way).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// fp32 throughout (the default).
    #[default]
    Fp32,
    /// Mixed precision as PyTorch's CPU autocast: the operands of every
    /// matrix product rounded to bf16, products accumulated in fp32, all
    /// else fp32. AVX512-BF16 where the CPU has it, emulated elsewhere.
    Bf16,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// `gpt2` (the default) or `bert`.
    pub arch: Arch,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_embd: usize,
    /// Context length (GPT-2's n_positions).
    pub block_size: usize,
    pub layer_norm_epsilon: f64,
    /// Use the fused CPU kernels (false: the plain dfdx reference path).
    pub fused: bool,
    /// Dropout probability in training (embeddings, attention, residual
    /// branches: GPT-2's embd_pdrop, attn_pdrop, resid_pdrop). Unset: 0 for
    /// a new model, the checkpoint's three values under `train.init_from`.
    pub dropout: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub batch_size: usize,
    pub max_iters: usize,
    pub learning_rate: f64,
    pub min_lr: f64,
    pub warmup_iters: usize,
    /// Cosine decay reaches `min_lr` here (default: `max_iters`).
    pub lr_decay_iters: Option<usize>,
    pub beta1: f64,
    pub beta2: f64,
    pub weight_decay: f64,
    /// Global-norm clipping; 0 disables.
    pub grad_clip: f64,
    pub eval_interval: usize,
    /// Also evaluate before the first step of a fresh run (nanoGPT does;
    /// `false` evaluates only every `eval_interval` steps and at the end).
    pub eval_on_start: bool,
    pub eval_iters: usize,
    pub log_interval: usize,
    /// Save a checkpoint every N steps (0: only at the end and on stop).
    pub checkpoint_interval: usize,
    /// How many step checkpoints to keep (the latest is always kept).
    pub keep_checkpoints: usize,
    /// Fine-tune from this checkpoint directory.
    pub init_from: Option<PathBuf>,
    /// Micro-batches of `batch_size` whose gradients are averaged into one
    /// optimizer step (the effective batch is their product).
    pub grad_accum_steps: usize,
    /// Parameter groups not trained: GPT-2 names without `transformer.`,
    /// a group and everything under it (`wte`, `wpe`, `h.0`, `h.3.attn`, `ln_f`).
    pub freeze: Vec<String>,
    /// Worker threads for the CPU kernels (0: all cores).
    pub threads: usize,
    /// Send attention probabilities of the probe every N steps (0: never).
    pub attention_interval: usize,
    /// `clm` (next token, the default) or `mlm` (masked tokens; needs
    /// `model.arch = "bert"`).
    pub objective: Objective,
    /// MLM: the fraction of (non-special) positions chosen for prediction.
    pub mlm_probability: f64,
    /// MLM: of the chosen positions, the fraction replaced by `[MASK]`.
    pub mlm_mask_fraction: f64,
    /// MLM: of the chosen positions, the fraction replaced by a random
    /// token (the rest keep their token).
    pub mlm_random_fraction: f64,
    /// Attention probes read at most this many tokens (0: the block size):
    /// their matrices grow with the square of it, per layer and head.
    pub probe_len: usize,
    /// `fp32` (the default) or `bf16` (mixed precision: bf16 products,
    /// fp32 accumulation and master weights; CPU, fused kernels).
    pub precision: Precision,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SampleConfig {
    pub temperature: f64,
    pub top_k: usize,
    pub top_p: f64,
    pub max_new_tokens: usize,
    pub seed: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    pub theme: String,
    /// Frame cap for redraws.
    pub max_fps: u32,
    /// Key bindings: action name -> key (e.g. `pause = "space"`), patched over defaults.
    pub keys: std::collections::BTreeMap<String, String>,
    /// What the local workbench does when its terminal goes away (SIGHUP, a
    /// dropped SSH link, a closed tmux window): leave the trainer running
    /// (`detach`, the default) or stop it with a checkpoint (`stop`).
    pub on_hangup: OnHangup,
}

/// `ui.on_hangup`: what a dropped terminal does to the workbench's training.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnHangup {
    /// The workbench closes; training goes on (`headsup attach` comes back).
    #[default]
    Detach,
    /// The training stops, saving a checkpoint, as `q` then `s` would.
    Stop,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "copy".into(),
            seed: 1337,
            device: "cpu".into(),
            data: DataConfig::default(),
            tokenizer: TokenizerConfig::default(),
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            sample: SampleConfig::default(),
            ui: UiConfig::default(),
        }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            source: SourceKind::Synthetic,
            path: None,
            field: "text".into(),
            json_path: String::new(),
            task: SyntheticTask::Copy,
            synthetic_records: 2000,
            train_fraction: 0.9,
            token_ids: TokenIds::Auto,
        }
    }
}

impl Default for TokenizerConfig {
    fn default() -> Self {
        TokenizerConfig {
            kind: TokenizerKind::Char,
            vocab_size: 512,
            path: None,
            train_sample_mb: 64,
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            arch: Arch::Gpt2,
            n_layer: 2,
            n_head: 4,
            n_embd: 64,
            block_size: 64,
            layer_norm_epsilon: 1e-5,
            fused: true,
            dropout: None,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            batch_size: 16,
            max_iters: 2000,
            learning_rate: 1e-3,
            min_lr: 1e-4,
            warmup_iters: 100,
            lr_decay_iters: None,
            beta1: 0.9,
            beta2: 0.99,
            weight_decay: 0.1,
            grad_clip: 1.0,
            eval_interval: 100,
            eval_on_start: true,
            eval_iters: 20,
            log_interval: 10,
            checkpoint_interval: 500,
            keep_checkpoints: 2,
            init_from: None,
            grad_accum_steps: 1,
            freeze: Vec::new(),
            threads: 0,
            attention_interval: 25,
            objective: Objective::Clm,
            mlm_probability: 0.15,
            mlm_mask_fraction: 0.8,
            mlm_random_fraction: 0.1,
            probe_len: 256,
            precision: Precision::Fp32,
        }
    }
}

impl Default for SampleConfig {
    fn default() -> Self {
        SampleConfig {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            max_new_tokens: 200,
            seed: 42,
        }
    }
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            theme: "dark".into(),
            max_fps: 30,
            keys: Default::default(),
            on_hangup: OnHangup::Detach,
        }
    }
}

impl Config {
    /// Reads a config file: defaults for absent keys, errors for unknown ones.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
            return Err(ConfigError::Utf16 {
                path: path.to_path_buf(),
            });
        }
        // A UTF-8 byte order mark (Windows editors add one) is not an error.
        let bytes = match bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
            Some(rest) => rest.to_vec(),
            None => bytes,
        };
        let text = String::from_utf8(bytes).map_err(|_| ConfigError::Encoding {
            path: path.to_path_buf(),
        })?;
        Self::from_toml_str(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses TOML text; the error is one line naming the key or position.
    pub fn from_toml_str(text: &str) -> Result<Config, String> {
        toml::from_str::<Config>(text).map_err(|e| one_line_toml_error(&e, text))
    }

    /// The dotted keys (`train.max_iters`) whose values differ between
    /// `self` and `other`, with the old and new values as TOML (`-` where
    /// absent), in the order the config writes them.
    pub fn changed_keys(&self, other: &Config) -> Vec<(String, String, String)> {
        fn flatten(prefix: &str, v: &toml::Value, out: &mut Vec<(String, toml::Value)>) {
            match v.as_table() {
                Some(t) => {
                    for (k, v) in t {
                        let key = if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        flatten(&key, v, out);
                    }
                }
                None => out.push((prefix.to_string(), v.clone())),
            }
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        if let (Ok(x), Ok(y)) = (toml::Value::try_from(self), toml::Value::try_from(other)) {
            flatten("", &x, &mut a);
            flatten("", &y, &mut b);
        }
        let text = |v: Option<&toml::Value>| v.map_or("-".to_string(), |v| v.to_string());
        let mut keys = Vec::new();
        for (k, v) in a.iter() {
            let new = b.iter().find(|(kb, _)| kb == k).map(|(_, vb)| vb);
            if new != Some(v) {
                keys.push((k.clone(), text(Some(v)), text(new)));
            }
        }
        for (k, v) in b.iter() {
            if !a.iter().any(|(ka, _)| ka == k) {
                keys.push((k.clone(), text(None), text(Some(v))));
            }
        }
        keys
    }

    /// Whether a resumed run can take a new value of `key`: keys that change
    /// how training goes on (steps, schedule, intervals, threads, device,
    /// sampling, the workbench) can; keys that define what was trained (the
    /// model's sizes, the data, the tokenizer, the seed, `init_from`) cannot, since
    /// the checkpoint holds their old values.
    pub fn resume_applies(key: &str) -> bool {
        const FIXED: &[&str] = &["name", "seed", "train.init_from"];
        let model = key.starts_with("model.") && key != "model.fused";
        !(FIXED.contains(&key)
            || model
            || key.starts_with("data.")
            || key.starts_with("tokenizer."))
    }

    /// Applies `key=value` overrides, `key` dotted (`train.max_iters=100`).
    /// The value is parsed as TOML, falling back to a string.
    pub fn apply_overrides(&mut self, sets: &[String]) -> Result<(), ConfigError> {
        if sets.is_empty() {
            return Ok(());
        }
        let mut doc =
            toml::Value::try_from(&*self).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        for arg in sets {
            let err = |message: String| ConfigError::Override {
                arg: arg.clone(),
                message,
            };
            let (key, raw) = arg
                .split_once('=')
                .ok_or_else(|| err("expected key=value, e.g. train.max_iters=100".into()))?;
            let key = key.trim();
            let raw = raw.trim();
            let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(raw.to_string()));
            let parts: Vec<&str> = key.split('.').collect();
            let (leaf, sections) = parts.split_last().ok_or_else(|| err("empty key".into()))?;
            let mut node = &mut doc;
            for part in sections {
                node = node
                    .as_table_mut()
                    .and_then(|t| t.get_mut(*part))
                    .filter(|v| v.is_table())
                    .ok_or_else(|| {
                        err(format!(
                            "unknown section `{part}`; see samples/*.toml for the keys"
                        ))
                    })?;
            }
            // Optional keys (init_from, path, ...) are absent from the serialized
            // defaults, so the leaf is inserted as is; an unknown leaf key is
            // caught by deny_unknown_fields when the result is parsed below.
            node.as_table_mut()
                .ok_or_else(|| err(format!("`{}` is not a section", sections.join("."))))?
                .insert(leaf.to_string(), value);
        }
        let text = toml::to_string(&doc).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let parsed = Self::from_toml_str(&text).map_err(|message| ConfigError::Override {
            arg: sets.join(" "),
            // Line numbers refer to the re-serialized config, not to anything
            // the user wrote: drop them.
            message: strip_line_numbers(&message),
        })?;
        *self = parsed;
        Ok(())
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let m = &self.model;
        let t = &self.train;
        let bad = |s: String| Err(ConfigError::Invalid(s));
        if m.n_layer == 0 || m.n_head == 0 || m.n_embd == 0 || m.block_size == 0 {
            return bad(
                "model.n_layer, n_head, n_embd and block_size must all be at least 1".into(),
            );
        }
        // Far beyond what headsup trains, and each would overflow or exhaust
        // memory when the model is allocated.
        let per_layer = 12u128 * (m.n_embd as u128) * (m.n_embd as u128);
        if m.n_embd > 1 << 16
            || m.n_layer > 1 << 10
            || m.block_size > 1 << 20
            || per_layer * m.n_layer as u128 > 1 << 36
        {
            return bad(format!(
                "model sizes n_layer={}, n_embd={}, block_size={} are far too large (at most 2^36 weights, n_embd <= 65536, n_layer <= 1024, block_size <= 2^20)",
                m.n_layer, m.n_embd, m.block_size
            ));
        }
        if !(m.layer_norm_epsilon.is_finite() && m.layer_norm_epsilon > 0.0) {
            return bad(format!(
                "model.layer_norm_epsilon must be a positive number, got {} (GPT-2 uses 1e-5)",
                m.layer_norm_epsilon
            ));
        }
        if !m.n_embd.is_multiple_of(m.n_head) {
            return bad(format!(
                "model.n_embd ({}) must be divisible by model.n_head ({})",
                m.n_embd, m.n_head
            ));
        }
        if t.batch_size == 0 {
            return bad("train.batch_size must be at least 1".into());
        }
        if t.grad_accum_steps == 0 || t.grad_accum_steps > 1 << 16 {
            return bad(format!(
                "train.grad_accum_steps must be between 1 and 65536, got {}",
                t.grad_accum_steps
            ));
        }
        if let Some(p) = m.dropout {
            if !(0.0..1.0).contains(&p) {
                return bad(format!(
                    "model.dropout must be at least 0 and below 1, got {p} (GPT-2 uses 0.1)"
                ));
            }
        }
        if t.batch_size as u128 * m.block_size as u128 > 1 << 30 {
            return bad(format!(
                "train.batch_size ({}) times model.block_size ({}) is far too large (at most 2^30 tokens a step)",
                t.batch_size, m.block_size
            ));
        }
        if !(t.learning_rate.is_finite() && t.learning_rate > 0.0) {
            return bad(format!(
                "train.learning_rate must be positive, got {}",
                t.learning_rate
            ));
        }
        if !(self.data.train_fraction > 0.0 && self.data.train_fraction < 1.0) {
            return bad(format!(
                "data.train_fraction must be between 0 and 1 (exclusive), got {}",
                self.data.train_fraction
            ));
        }
        if t.eval_iters == 0 {
            return bad("train.eval_iters must be at least 1".into());
        }
        match (m.arch, t.objective) {
            (Arch::Bert, Objective::Clm) => {
                return bad(
                    "model.arch = \"bert\" is trained with train.objective = \"mlm\"; set it"
                        .into(),
                )
            }
            (Arch::Gpt2, Objective::Mlm) => return bad(
                "train.objective = \"mlm\" needs model.arch = \"bert\" (GPT-2 is causal); set it"
                    .into(),
            ),
            _ => {}
        }
        if t.precision == Precision::Bf16 {
            if !m.fused {
                return bad("train.precision = \"bf16\" needs the fused CPU kernels (model.fused = true); set that, or precision = \"fp32\"".into());
            }
            if self.device != "cpu" {
                return bad(format!("train.precision = \"bf16\" runs on the CPU only (device = \"{}\"); use device = \"cpu\", or precision = \"fp32\"", self.device));
            }
        }
        if t.objective == Objective::Mlm {
            let (p, mf, rf) = (
                t.mlm_probability,
                t.mlm_mask_fraction,
                t.mlm_random_fraction,
            );
            if !(p > 0.0 && p <= 1.0) {
                return bad(format!(
                    "train.mlm_probability must be above 0 and at most 1, got {p} (BERT uses 0.15)"
                ));
            }
            if !(mf >= 0.0 && rf >= 0.0 && mf + rf <= 1.0) {
                return bad(format!(
                    "train.mlm_mask_fraction ({mf}) and train.mlm_random_fraction ({rf}) must be at least 0 and sum to at most 1 (BERT uses 0.8 and 0.1)"
                ));
            }
            if m.block_size < 3 {
                return bad("model.block_size must be at least 3 for train.objective = \"mlm\" ([CLS], a token, [SEP])".into());
            }
            if m.dropout.is_some_and(|d| d > 0.0) {
                return bad(
                    "model.dropout is not supported with model.arch = \"bert\"; remove it".into(),
                );
            }
        }
        if self.tokenizer.kind == TokenizerKind::Bpe
            && self.data.token_ids == TokenIds::U16
            && self.tokenizer.vocab_size > 1 << 16
        {
            return bad(format!(
                "tokenizer.vocab_size {} does not fit data.token_ids = \"u16\" (at most 65536 ids); use \"u32\" or \"auto\"",
                self.tokenizer.vocab_size
            ));
        }
        if self.tokenizer.kind == TokenizerKind::Bpe && self.tokenizer.train_sample_mb == 0 {
            return bad("tokenizer.train_sample_mb must be at least 1".into());
        }
        if self.tokenizer.kind == TokenizerKind::Bpe && self.tokenizer.vocab_size < 260 {
            return bad(format!(
                "tokenizer.vocab_size must be at least 260 for byte-level BPE, got {}",
                self.tokenizer.vocab_size
            ));
        }
        if self.sample.temperature.is_nan()
            || self.sample.temperature < 0.0
            || !(self.sample.top_p > 0.0 && self.sample.top_p <= 1.0)
        {
            return bad("sample.temperature must be >= 0 and sample.top_p in (0, 1]".into());
        }
        if self.device != "cpu" && !self.device.starts_with("cuda") {
            return bad(format!(
                "device `{}` is unknown; use cpu, cuda or cuda:N",
                self.device
            ));
        }
        if self.data.source != SourceKind::Synthetic && self.data.path.is_none() {
            return bad(format!(
                "data.source = {:?} needs data.path (or --data PATH)",
                self.data.source
            ));
        }
        Ok(())
    }

    pub fn to_toml_string(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    pub fn lr_decay_iters(&self) -> usize {
        self.train.lr_decay_iters.unwrap_or(self.train.max_iters)
    }
}

fn one_line_toml_error(e: &toml::de::Error, text: &str) -> String {
    let msg = e.message().replace('\n', " ");
    let Some(span) = e.span() else { return msg };
    let start = span.start.min(text.len());
    let before = text.get(..start).unwrap_or("");
    let line_no = before.matches('\n').count() + 1;
    // The key on the error's line, dotted with the last [section] above it.
    let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"'))
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    let section = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim());
    match (key, section) {
        (Some(k), Some(s)) if !s.is_empty() => format!("key `{s}.{k}` (line {line_no}): {msg}"),
        (Some(k), _) => format!("key `{k}` (line {line_no}): {msg}"),
        _ => format!("line {line_no}: {msg}"),
    }
}

/// Removes ` (line N)` from a message.
fn strip_line_numbers(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find(" (line ") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 7..];
        match after.find(')') {
            Some(j) if after[..j].chars().all(|c| c.is_ascii_digit()) => rest = &after[j + 1..],
            _ => {
                out.push_str(" (line ");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}
