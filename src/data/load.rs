//! From a config to what training needs: the dataset for the browser, the
//! tokenizer and the train/validation token streams. A file source (text,
//! dir, jsonl, json, csv) goes through the token cache: one streamed scan, a
//! tokenizer trained on a sample, then one pass that tokenizes the records
//! as they stream by into memory-mapped ids, a record index and the
//! statistics (progress to a callback: lines on stdout, or events; a cancel
//! flag or Ctrl-C leaving no cache behind). Memory does not grow with the
//! corpus. Synthetic data is generated and tokenized in memory.

use super::cache::{self, CacheError, Progress, Width};
use super::tokens::{self, CacheUse, Source, Tokens};
use super::{Dataset, TokenSplit};
use crate::config::{DataConfig, TokenIds, TokenizerConfig, TokenizerKind};
use crate::tokenizer::Tokenizer;
use std::io::{IsTerminal, Write};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A corpus at least this large says when its cache was reused.
const SAY_REUSE_BYTES: u64 = 64 << 20;

/// What [`load`] made.
pub struct Loaded {
    pub dataset: Dataset,
    pub tokenizer: Tokenizer,
    pub split: TokenSplit,
    /// Lines worth telling the user (what was sampled, cache reuse).
    pub notes: Vec<String>,
}

/// Progress lines on stdout for long steps: none for a step under a second;
/// then, on a terminal, one line redrawn in place, otherwise a plain line
/// every 2 seconds and the last one.
pub struct ProgressLines {
    started: Instant,
    last: Option<Instant>,
    tty: bool,
    open: bool,
}

impl Default for ProgressLines {
    fn default() -> Self {
        ProgressLines {
            started: Instant::now(),
            last: None,
            tty: std::io::stdout().is_terminal(),
            open: false,
        }
    }
}

impl ProgressLines {
    pub fn report(&mut self, p: &Progress) {
        let finished = p.done >= p.total;
        if p.started.elapsed() < Duration::from_secs(1) && !(finished && self.last.is_some()) {
            return;
        }
        let every = if self.tty { 0.2 } else { 2.0 };
        if !finished && self.last.is_some_and(|t| t.elapsed().as_secs_f64() < every) {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = if self.tty {
            write!(out, "\r{}\x1b[K", p.line())
        } else {
            writeln!(out, "{}", p.line())
        };
        let _ = out.flush();
        self.open = self.tty && !finished;
        if self.tty && finished {
            let _ = writeln!(out);
        }
        self.last = Some(Instant::now());
        let _ = self.started;
    }
}

impl Drop for ProgressLines {
    fn drop(&mut self) {
        if self.open {
            println!();
        }
    }
}

/// Sets a flag on SIGINT/SIGTERM/SIGHUP while alive (the default action,
/// ending the process, comes back when dropped), so a long tokenization stops
/// cleanly and removes its temporary file.
struct CancelOnSignal {
    flag: Arc<AtomicBool>,
    ids: Vec<signal_hook::SigId>,
}

impl CancelOnSignal {
    fn new() -> CancelOnSignal {
        let flag = Arc::new(AtomicBool::new(false));
        let ids = [
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ]
        .into_iter()
        .filter_map(|s| signal_hook::flag::register(s, flag.clone()).ok())
        .collect();
        CancelOnSignal { flag, ids }
    }
}

impl Drop for CancelOnSignal {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

fn width(ids: TokenIds) -> Option<Width> {
    match ids {
        TokenIds::Auto => None,
        TokenIds::U16 => Some(Width::U16),
        TokenIds::U32 => Some(Width::U32),
    }
}

/// The error of a preparation stopped by its cancel flag (a signal, a `q`
/// in the workbench).
pub const CANCELLED: &str =
    "data: preparation cancelled; no token cache was written (run again to start over)";

fn cache_err(e: CacheError) -> anyhow::Error {
    match e {
        CacheError::Cancelled => anyhow::anyhow!(CANCELLED),
        e => anyhow::anyhow!(e.to_string()),
    }
}

/// Loads the data `data` names and tokenizes it: with `fixed` (a resumed
/// run's or an initial checkpoint's tokenizer) or the one `tok_cfg` asks
/// for. `seed` drives synthetic data. Progress lines go to stdout; Ctrl-C
/// (SIGINT, SIGTERM, SIGHUP) cancels.
pub fn load(
    data: &DataConfig,
    tok_cfg: &TokenizerConfig,
    fixed: Option<Tokenizer>,
    seed: u64,
) -> anyhow::Result<Loaded> {
    let cancel = CancelOnSignal::new();
    let mut lines = ProgressLines::default();
    load_with(
        data,
        tok_cfg,
        fixed,
        seed,
        &mut |p: &Progress| lines.report(p),
        &cancel.flag,
    )
}

/// As [`load`], with the progress going to `progress` and `cancel` (set by
/// the caller: a signal, a `q` in the workbench) stopping the preparation
/// with no cache written.
pub fn load_with(
    data: &DataConfig,
    tok_cfg: &TokenizerConfig,
    fixed: Option<Tokenizer>,
    seed: u64,
    progress: &mut dyn FnMut(&Progress),
    cancel: &AtomicBool,
) -> anyhow::Result<Loaded> {
    let Some(source) = Source::from_config(data) else {
        let dataset = Dataset::load(data, seed)?;
        let corpus = dataset.corpus();
        let tokenizer = match fixed {
            Some(t) => t,
            None => Tokenizer::build(tok_cfg, &corpus)?,
        };
        let ids = tokenizer.encode(&corpus);
        return Ok(Loaded {
            dataset,
            tokenizer,
            split: TokenSplit::new(ids, data.train_fraction),
            notes: Vec::new(),
        });
    };
    let mut notes = Vec::new();
    let fixed = match (fixed, &tok_cfg.path) {
        (Some(t), _) => Some(t),
        (None, Some(p)) => Some(Tokenizer::load(p)?),
        (None, None) => None,
    };
    let want_chars = fixed.is_none() && tok_cfg.kind == TokenizerKind::Char;
    let scan = tokens::scan(&source, want_chars, Some(cancel), progress).map_err(cache_err)?;
    let dir = cache::cache_dir();
    let tokenizer = match fixed {
        Some(t) => t,
        None => match tok_cfg.kind {
            TokenizerKind::Char => {
                let chars: String = scan.chars.iter().flatten().collect();
                Tokenizer::train_char(&chars)?
            }
            TokenizerKind::Bpe => {
                let budget = tok_cfg.train_sample_mb.saturating_mul(1 << 20);
                // The trainer reports no progress of its own: the step is
                // said at its start (0 of the sample) and at its end.
                let started = Instant::now();
                let sample = scan.bytes.min(budget);
                let mut report = |done| {
                    progress(&Progress {
                        phase: "training the tokenizer",
                        done,
                        total: sample,
                        started,
                    })
                };
                report(0);
                let (t, s) =
                    tokens::cached_bpe(&dir, &scan, tok_cfg.vocab_size, budget, Some(cancel))
                        .map_err(cache_err)?;
                report(sample);
                if s.sampled < s.total || s.reused {
                    notes.push(s.describe(tok_cfg.vocab_size));
                }
                t
            }
        },
    };
    let cached = tokens::cached_tokens(
        &dir,
        &scan,
        &tokenizer,
        width(data.token_ids),
        Some(cancel),
        progress,
    )
    .map_err(cache_err)?;
    let mb = scan.bytes as f64 / 1e6;
    match &cached.how {
        CacheUse::Reused if scan.bytes >= SAY_REUSE_BYTES => notes.push(format!(
            "token cache reused: {} ({} tokens of {mb:.1} MB)",
            cached.tokens.path().display(),
            cached.tokens.len()
        )),
        CacheUse::Rebuilt(why) => notes.push(format!("token cache rebuilt: {why}")),
        _ => {}
    }
    let mut source_line = source.describe();
    if source.kind == crate::config::SourceKind::Dir {
        source_line = format!("{source_line} ({} text files)", cached.stats.records);
    }
    let dataset = Dataset {
        source: source_line,
        records: Vec::new(),
        contiguous: source.contiguous(),
        store: Some(cached.records.clone()),
        stats: Some(cached.stats.clone()),
    };
    let all = Tokens::mapped(cached.tokens.clone());
    let (train, val) = all.split(data.train_fraction);
    Ok(Loaded {
        dataset,
        tokenizer,
        split: TokenSplit { train, val },
        notes,
    })
}
