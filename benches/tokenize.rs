//! Tokenizer speed on a real text: training the byte-level BPE, encoding and
//! decoding with the character and the BPE tokenizer. Prints seconds and MB/s
//! (median and best of the rounds) and checks each decode gives the text back.
//!
//! `cargo bench --bench tokenize [-- ROUNDS [FILE]]` (default 3 rounds on
//! `../shared/data/tinyshakespeare.txt`).

use headsup::tokenizer::Tokenizer;
use std::path::PathBuf;
use std::time::Instant;

/// (median, best) of seconds.
fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2], v[0])
}

fn main() {
    // `cargo bench` passes `--bench`; the rest are ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let rounds: usize = match args.first().map(|r| r.parse()) {
        None => 3,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!(
                "error: ROUNDS must be a positive integer, got `{}`",
                args[0]
            );
            std::process::exit(2);
        }
    };
    let path = args.get(1).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/tinyshakespeare.txt")
    });
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "error: cannot read {}: {e}; pass a UTF-8 text file as the second argument",
                path.display()
            );
            std::process::exit(1);
        }
    };
    let mb = text.len() as f64 / 1e6;
    println!(
        "{}: {:.2} MB, {} rounds, {} rayon threads",
        path.display(),
        mb,
        rounds,
        rayon::current_num_threads()
    );

    let mut train = Vec::new();
    let mut bpe = None;
    for _ in 0..rounds {
        let t = Instant::now();
        bpe = Some(Tokenizer::train_bpe(&text, 512).expect("training BPE"));
        train.push(t.elapsed().as_secs_f64());
    }
    let (med, best) = stats(train);
    println!("train BPE 512: median {med:.3} s, best {best:.3} s");

    let char_tok = Tokenizer::train_char(&text).expect("char tokenizer");
    for (name, tok) in [("char", &char_tok), ("BPE 512", bpe.as_ref().unwrap())] {
        let (mut enc, mut dec) = (Vec::new(), Vec::new());
        let mut n_ids = 0;
        let mut round_trip = true;
        for _ in 0..rounds {
            let t = Instant::now();
            let ids = tok.encode(&text);
            enc.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let back = tok.decode(&ids);
            dec.push(t.elapsed().as_secs_f64());
            n_ids = ids.len();
            round_trip &= back == text;
        }
        let (em, eb) = stats(enc);
        let (dm, db) = stats(dec);
        println!(
            "{name:>7}: {n_ids} ids; encode median {em:.3} s ({:.1} MB/s), best {eb:.3} s; \
             decode median {dm:.3} s ({:.1} MB/s), best {db:.3} s; round trip {}",
            mb / em,
            mb / dm,
            if round_trip { "ok" } else { "DIFFERS" }
        );
    }
}
