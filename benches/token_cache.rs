//! The data layer at scale: a text file scanned (hash, characters),
//! a tokenizer made (char: from the scan; BPE: trained on the first
//! SAMPLE_MB), the token cache built in parallel, then a second run that
//! reuses it. Prints seconds, MB/s, tokens and the peak RSS of the process.
//!
//! `cargo bench --bench token_cache -- FILE char|bpe [VOCAB] [SAMPLE_MB]`
//! (make FILE with `scripts/make_corpus.sh 200 /tmp/big.txt`). The cache
//! goes to `$HEADSUP_CACHE_DIR` or a temporary directory, removed after.
//! With `TOKENIZER_OUT=PATH` the tokenizer is saved there (for
//! `scripts/tokenize_python.py`, the same encoding in Python's `tokenizers`).

use headsup::data::cache::Progress;
use headsup::data::tokens::{cached_tokens, sample_text, scan_text, CacheUse, Tokens};
use headsup::tokenizer::Tokenizer;
use std::path::PathBuf;
use std::time::Instant;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let usage = "usage: cargo bench --bench token_cache -- FILE char|bpe [VOCAB] [SAMPLE_MB]";
    let file = PathBuf::from(args.first().unwrap_or_else(|| fail(usage)));
    let kind = args.get(1).map(|s| s.as_str()).unwrap_or("char");
    let vocab: usize = args
        .get(2)
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| fail("VOCAB must be an integer"))
        })
        .unwrap_or(2048);
    let sample_mb: u64 = args
        .get(3)
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| fail("SAMPLE_MB must be an integer"))
        })
        .unwrap_or(16);
    let tmp = tempfile::tempdir().unwrap_or_else(|e| fail(&format!("temporary dir: {e}")));
    let dir = std::env::var_os("HEADSUP_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    println!(
        "{}: {kind}, {} rayon threads, cache in {}",
        file.display(),
        rayon::current_num_threads(),
        dir.display()
    );
    let mut last = Instant::now();
    let mut progress = |p: &Progress| {
        if last.elapsed().as_secs_f64() >= 5.0 || p.done == p.total {
            println!("  {}", p.line());
            last = Instant::now();
        }
    };
    for round in 1..=2 {
        let t0 = Instant::now();
        let scan = scan_text(&file, kind == "char", None, &mut progress)
            .unwrap_or_else(|e| fail(&e.to_string()));
        let t_scan = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let tok = match kind {
            "char" => {
                let chars: String = scan.chars.clone().unwrap_or_default().into_iter().collect();
                Tokenizer::train_char(&chars)
            }
            "bpe" => {
                let sample =
                    sample_text(&file, sample_mb << 20).unwrap_or_else(|e| fail(&e.to_string()));
                println!(
                    "  BPE trained on the first {:.1} MB of {:.1} MB",
                    sample.len() as f64 / 1e6,
                    scan.bytes as f64 / 1e6
                );
                Tokenizer::train_bpe(&sample, vocab)
            }
            k => fail(&format!("unknown kind `{k}`; use char or bpe")),
        }
        .unwrap_or_else(|e| fail(&e.to_string()));
        let t_tok = t1.elapsed().as_secs_f64();
        if let Some(out) = std::env::var_os("TOKENIZER_OUT") {
            tok.save(std::path::Path::new(&out))
                .unwrap_or_else(|e| fail(&e.to_string()));
        }
        let t2 = Instant::now();
        let cached = cached_tokens(&dir, &scan, &tok, None, None, &mut progress)
            .unwrap_or_else(|e| fail(&e.to_string()));
        let (cache, how) = (cached.tokens, cached.how);
        let t_cache = t2.elapsed().as_secs_f64();
        let tokens = Tokens::mapped(cache.clone());
        // Touch a few windows as training would.
        let mut w = Vec::new();
        for i in 0..1000 {
            tokens.extend_window((i * 7919 * 64) % (tokens.len() - 65), 65, &mut w);
            w.clear();
        }
        let mb = scan.bytes as f64 / 1e6;
        println!(
            "round {round}: scan {t_scan:.2} s ({:.0} MB/s), tokenizer {t_tok:.2} s, cache {} in {t_cache:.2} s ({:.1} MB/s): {} tokens, vocab {}, {:?}, {:.0} MB file; total {:.2} s; peak RSS {:.0} MB",
            mb / t_scan,
            match how {
                CacheUse::Reused => "reused",
                CacheUse::Built => "built",
                CacheUse::Rebuilt(_) => "rebuilt",
            },
            mb / t_cache,
            cache.len(),
            tok.vocab_size(),
            cache.width(),
            std::fs::metadata(cache.path()).map(|m| m.len()).unwrap_or(0) as f64 / 1e6,
            t0.elapsed().as_secs_f64(),
            peak_rss_mb()
        );
    }
}
