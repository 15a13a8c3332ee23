//! `headsup eval --checkpoint DIR --references FILE`: completes each prompt
//! of a JSONL file of `{"prompt": ..., "reference": ...}` (greedy, or sampled
//! with a seed), scores the completions against the references (corpus
//! BLEU-4, ROUGE-1/2/L, SQuAD token F1 and exact match; [`metrics`]) and
//! measures the perplexity of each reference given its prompt.

pub mod metrics;

use crate::model::infer::{HostModel, KvCache};
use crate::model::pretrained::Pretrained;
use crate::model::sample::generate_within;
use crate::sanitize::{escape, truncate_to_width, width};
use crate::tokenizer::{StreamDecoder, Tokenizer, ENDOFTEXT};
use crate::train::SampleSettings;
use std::path::Path;

/// One line of the references file.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub prompt: String,
    pub reference: String,
}

#[derive(Debug, thiserror::Error)]
#[error("references {path}: {message}")]
pub struct ReferencesError {
    pub path: String,
    pub message: String,
}

/// Reads a JSONL file of `{"prompt": "...", "reference": "..."}` objects
/// (other keys ignored, blank lines skipped).
pub fn read_references(path: &Path) -> Result<Vec<Example>, ReferencesError> {
    let fail = |message: String| ReferencesError {
        path: path.display().to_string(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            "check the path"
        } else {
            "check the file's permissions"
        };
        fail(format!("cannot read: {e}; {hint}"))
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "is not UTF-8 (byte {}); save it as UTF-8 JSONL",
            e.utf8_error().valid_up_to()
        ))
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let n = i + 1;
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| fail(format!("line {n}: not JSON ({e}); each line must be {{\"prompt\": ..., \"reference\": ...}}")))?;
        let field = |k: &str| -> Result<String, ReferencesError> {
            match v.get(k) {
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(fail(format!("line {n}: `{k}` is not a string"))),
                None => Err(fail(format!(
                    "line {n}: no `{k}` key; each line must be {{\"prompt\": ..., \"reference\": ...}}"
                ))),
            }
        };
        if !v.is_object() {
            return Err(fail(format!(
                "line {n}: not a JSON object; each line must be {{\"prompt\": ..., \"reference\": ...}}"
            )));
        }
        out.push(Example {
            prompt: field("prompt")?,
            reference: field("reference")?,
        });
    }
    if out.is_empty() {
        return Err(fail(
            "holds no examples; give one {\"prompt\": ..., \"reference\": ...} object a line"
                .into(),
        ));
    }
    Ok(out)
}

/// How completions are made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Decoding {
    /// 0 = greedy.
    pub temperature: f32,
    pub top_k: usize,
    pub top_p: f32,
    /// Example `i` samples with seed `seed + i` (so a subset reproduces).
    pub seed: u64,
    pub max_new_tokens: usize,
    /// A completion ends before the first occurrence of this text ("" = never),
    /// and always at `<|endoftext|>`.
    pub stop: String,
}

/// One example's completion and scores (all scores in percent).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExampleReport {
    pub prompt: String,
    pub reference: String,
    pub completion: String,
    pub rouge1: f64,
    pub rouge2: f64,
    #[serde(rename = "rougeL")]
    pub rouge_l: f64,
    pub f1: f64,
    pub exact_match: bool,
    /// Reference tokens scored for perplexity, and their summed negative
    /// log-likelihood (nats).
    pub reference_tokens: usize,
    pub reference_nll: f64,
}

/// What `eval --references` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub checkpoint: String,
    pub references: String,
    pub examples: usize,
    /// Every score is in percent (0..100), BLEU as sacreBLEU prints it.
    pub scale: &'static str,
    pub bleu: metrics::Bleu,
    pub rouge1: f64,
    pub rouge2: f64,
    #[serde(rename = "rougeL")]
    pub rouge_l: f64,
    pub f1: f64,
    pub exact_match: f64,
    /// exp(total NLL / reference tokens) of the references given the prompts.
    pub perplexity: f64,
    pub reference_tokens: usize,
    /// Examples whose prompt + reference exceeded n_positions: the prompt was
    /// cut from the left (and the reference's tail dropped if it alone did).
    pub truncated: usize,
    pub cjk: bool,
    /// How each metric tokenised the text.
    pub tokenization: String,
    pub decoding: Decoding,
    pub padding_note: Option<String>,
    pub per_example: Vec<ExampleReport>,
}

/// The context a prompt gives: its ids, or `<|endoftext|>` (else id 0) when
/// it encodes to nothing, as GPT-2 starts unconditioned text.
fn context_ids(tok: &Tokenizer, prompt: &str) -> Vec<usize> {
    let ids: Vec<usize> = tok.encode(prompt).into_iter().map(|t| t as usize).collect();
    if !ids.is_empty() {
        return ids;
    }
    let eot = tok.encode(ENDOFTEXT);
    match eot[..] {
        [id] => vec![id as usize],
        _ => vec![0],
    }
}

/// The completion of one prompt: text up to the stop string or `<|endoftext|>`.
fn complete(p: &Pretrained, host: &HostModel, ctx: &[usize], d: &Decoding, seed: u64) -> String {
    let tok = &p.tokenizer;
    let eot = match tok.encode(ENDOFTEXT)[..] {
        [id] => Some(id as usize),
        _ => None,
    };
    let n_pos = host.cfg.n_positions;
    let ctx = &ctx[ctx.len().saturating_sub(n_pos.saturating_sub(1).max(1))..];
    let settings = SampleSettings {
        temperature: d.temperature,
        top_k: d.top_k,
        top_p: d.top_p,
        max_new_tokens: d.max_new_tokens,
        seed,
    };
    let mut dec = StreamDecoder::new();
    let mut text = String::new();
    let mut stopped = false;
    generate_within(host, p.id_limit, ctx, &settings, true, |id, _| {
        if Some(id) == eot {
            stopped = true;
            return false;
        }
        text.push_str(&dec.push(tok, id as u32));
        if !d.stop.is_empty() {
            if let Some(at) = text.find(&d.stop) {
                text.truncate(at);
                stopped = true;
                return false;
            }
        }
        true
    });
    if !stopped {
        text.push_str(&dec.finish(tok));
    }
    text.trim().to_string()
}

/// Summed NLL (nats) of `reference` after `ctx`, the number of reference
/// tokens scored, and whether the window had to be cut.
fn reference_nll(host: &HostModel, ctx: &[usize], reference: &[usize]) -> (f64, usize, bool) {
    if reference.is_empty() {
        return (0.0, 0, false);
    }
    let n_pos = host.cfg.n_positions;
    let mut truncated = false;
    // At least one context token; the reference's head kept first.
    let reference = if reference.len() > n_pos - 1 {
        truncated = true;
        &reference[..n_pos - 1]
    } else {
        reference
    };
    let room = n_pos - reference.len();
    let ctx = if ctx.len() > room {
        truncated = true;
        &ctx[ctx.len() - room..]
    } else {
        ctx
    };
    let seq: Vec<usize> = ctx.iter().chain(reference).copied().collect();
    let mut cache = KvCache::new(&host.cfg);
    let mut nll = 0.0f64;
    for i in 0..seq.len() - 1 {
        let logits = host.step(&mut cache, seq[i], None);
        if i + 1 >= ctx.len() {
            let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
            let lse = max
                + logits
                    .iter()
                    .map(|&l| (l as f64 - max).exp())
                    .sum::<f64>()
                    .ln();
            nll += lse - logits[seq[i + 1]] as f64;
        }
    }
    (nll, reference.len(), truncated)
}

/// Completes and scores every example.
pub fn evaluate(
    p: &Pretrained,
    checkpoint: &Path,
    references: &Path,
    examples: &[Example],
    decoding: Decoding,
) -> Report {
    let host = HostModel::from_model(&p.model);
    let tok = &p.tokenizer;
    let mut rows = Vec::with_capacity(examples.len());
    let mut truncated = 0;
    for (i, ex) in examples.iter().enumerate() {
        let ctx = context_ids(tok, &ex.prompt);
        let completion = complete(
            p,
            &host,
            &ctx,
            &decoding,
            decoding.seed.wrapping_add(i as u64),
        );
        let ref_ids: Vec<usize> = tok
            .encode(&ex.reference)
            .into_iter()
            .map(|t| t as usize)
            .collect();
        let (nll, n, cut) = reference_nll(&host, &ctx, &ref_ids);
        truncated += cut as usize;
        rows.push(ExampleReport {
            prompt: ex.prompt.clone(),
            reference: ex.reference.clone(),
            completion,
            rouge1: 0.0,
            rouge2: 0.0,
            rouge_l: 0.0,
            f1: 0.0,
            exact_match: false,
            reference_tokens: n,
            reference_nll: nll,
        });
    }
    let cjk = metrics::corpus_is_cjk(
        rows.iter()
            .flat_map(|r| [r.completion.as_str(), r.reference.as_str()]),
    );
    for r in rows.iter_mut() {
        let rg = metrics::rouge(&r.completion, &r.reference, cjk);
        r.rouge1 = 100.0 * rg.rouge1;
        r.rouge2 = 100.0 * rg.rouge2;
        r.rouge_l = 100.0 * rg.rouge_l;
        r.f1 = 100.0 * metrics::squad_f1(&r.completion, &r.reference, cjk);
        r.exact_match = metrics::squad_exact(&r.completion, &r.reference);
    }
    let hyps: Vec<&str> = rows.iter().map(|r| r.completion.as_str()).collect();
    let refs: Vec<&str> = rows.iter().map(|r| r.reference.as_str()).collect();
    let bleu = metrics::corpus_bleu(&hyps, &refs, cjk);
    let n = rows.len().max(1) as f64;
    let mean = |f: &dyn Fn(&ExampleReport) -> f64| rows.iter().map(f).sum::<f64>() / n;
    let tokens: usize = rows.iter().map(|r| r.reference_tokens).sum();
    let nll: f64 = rows.iter().map(|r| r.reference_nll).sum();
    let tokenization = if cjk {
        "CJK text: BLEU with sacreBLEU's zh tokenizer (each CJK character a token, 13a for the rest); ROUGE and F1 with each CJK character a token"
    } else {
        "BLEU: sacreBLEU 13a; ROUGE: rouge-score's default tokenizer, no stemming; F1/EM: SQuAD v1.1 normalisation"
    };
    Report {
        checkpoint: checkpoint.display().to_string(),
        references: references.display().to_string(),
        examples: rows.len(),
        scale: "percent",
        bleu,
        rouge1: mean(&|r| r.rouge1),
        rouge2: mean(&|r| r.rouge2),
        rouge_l: mean(&|r| r.rouge_l),
        f1: mean(&|r| r.f1),
        exact_match: mean(&|r| 100.0 * r.exact_match as u8 as f64),
        perplexity: if tokens > 0 {
            (nll / tokens as f64).exp()
        } else {
            f64::NAN
        },
        reference_tokens: tokens,
        truncated,
        cjk,
        tokenization: tokenization.into(),
        decoding,
        padding_note: p.padding_note.clone(),
        per_example: rows,
    }
}

impl Report {
    /// The report as JSON (a NaN perplexity, with no reference tokens, as null).
    pub fn to_json(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if !self.perplexity.is_finite() {
            v["perplexity"] = serde_json::Value::Null;
        }
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }

    /// A table for the terminal: the corpus scores, then each example's
    /// completion (escaped, cut to `cols` display columns).
    pub fn table(&self, cols: usize) -> String {
        let mut out = String::new();
        let b = &self.bleu;
        let d = &self.decoding;
        let how = if d.temperature <= 0.0 {
            "greedy".to_string()
        } else {
            format!(
                "sampled (temperature {}, top_k {}, top_p {}, seed {})",
                d.temperature, d.top_k, d.top_p, d.seed
            )
        };
        out.push_str(&format!(
            "{} examples from {}, {how}, at most {} new tokens\n",
            self.examples,
            escape(&self.references),
            d.max_new_tokens
        ));
        let lines = [
            (
                "BLEU-4",
                format!("{:6.2}", b.score),
                format!(
                    "{:.1}/{:.1}/{:.1}/{:.1} BP {:.3} hyp {} ref {} ({})",
                    b.precisions[0],
                    b.precisions[1],
                    b.precisions[2],
                    b.precisions[3],
                    b.brevity_penalty,
                    b.sys_len,
                    b.ref_len,
                    b.tokenize
                ),
            ),
            ("ROUGE-1 F", format!("{:6.2}", self.rouge1), String::new()),
            ("ROUGE-2 F", format!("{:6.2}", self.rouge2), String::new()),
            ("ROUGE-L F", format!("{:6.2}", self.rouge_l), String::new()),
            ("token F1", format!("{:6.2}", self.f1), String::new()),
            (
                "exact match",
                format!("{:6.2}", self.exact_match),
                String::new(),
            ),
            (
                "perplexity",
                if self.perplexity.is_finite() {
                    format!("{:6.3}", self.perplexity)
                } else {
                    "     -".into()
                },
                format!(
                    "{} reference tokens given the prompts{}",
                    self.reference_tokens,
                    if self.truncated > 0 {
                        format!(", {} cut to n_positions", self.truncated)
                    } else {
                        String::new()
                    }
                ),
            ),
        ];
        out.push_str("metric       value   detail\n");
        for (name, value, detail) in lines {
            let line = format!("{name:<12} {value}  {detail}");
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.push_str(&format!("scores in percent; {}\n", self.tokenization));
        if let Some(note) = &self.padding_note {
            out.push_str(&escape(note));
            out.push('\n');
        }
        for (i, r) in self.per_example.iter().enumerate() {
            let head = format!("#{:<3} F1 {:5.1} ", i + 1, r.f1);
            let room = cols.saturating_sub(width(&head)).max(10);
            let text = format!(
                "{} → {} (ref: {})",
                escape(&r.prompt),
                escape(&r.completion),
                escape(&r.reference)
            );
            out.push_str(&head);
            out.push_str(&truncate_to_width(&text, room));
            out.push('\n');
        }
        out
    }
}
