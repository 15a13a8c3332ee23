//! Text-similarity metrics for `headsup eval --references`: corpus BLEU-4 as
//! sacreBLEU computes it, ROUGE-1/2/L F-measure as Google's `rouge-score`
//! does, and SQuAD v1.1's token F1 and exact match, each written to give the
//! reference implementation's numbers (checked against values those packages
//! computed, in `tests/fixtures/eval_metrics.json`).
//!
//! CJK: when any text of a corpus holds CJK characters ([`corpus_is_cjk`]),
//! BLEU tokenises with sacreBLEU's `zh` tokenizer (each Chinese character a
//! token, 13a rules for the rest; headsup also splits kana and hangul), and
//! ROUGE and F1 make each CJK letter a token (their default tokenisations
//! would drop CJK text, or keep a whole sentence as one word).

use std::collections::HashMap;

/// Python's `str.isspace`: Rust's whitespace plus the four ASCII separators
/// (U+001C..U+001F) Python counts too.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.split()`.
fn py_split(s: &str) -> Vec<&str> {
    s.split(py_space).filter(|w| !w.is_empty()).collect()
}

/// A letter or digit of a CJK script (Han, kana, hangul, fullwidth forms):
/// what the CJK modes make a token of its own.
pub fn is_cjk_letter(c: char) -> bool {
    let o = c as u32;
    let cjk = (0x2E80..=0x9FFF).contains(&o)
        || (0xAC00..=0xD7AF).contains(&o)
        || (0xF900..=0xFAFF).contains(&o)
        || (0xFF00..=0xFFEF).contains(&o)
        || (0x20000..=0x2FA1F).contains(&o)
        || (0x1100..=0x11FF).contains(&o);
    cjk && c.is_alphanumeric()
}

/// Whether a corpus is scored in the CJK modes: any text holds a CJK letter.
pub fn corpus_is_cjk<'a>(texts: impl IntoIterator<Item = &'a str>) -> bool {
    texts.into_iter().any(|t| t.chars().any(is_cjk_letter))
}

// ---------------------------------------------------------------- BLEU

/// sacreBLEU's `TokenizerRegexp` (the part 13a and zh share).
fn regexp_tokenize(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    // 1. ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> ' \1 '
    let mut s1: Vec<char> = Vec::with_capacity(chars.len() * 2);
    for &c in &chars {
        let o = c as u32;
        let punct = (0x7B..=0x7E).contains(&o)
            || (0x5B..=0x60).contains(&o)
            || (0x20..=0x26).contains(&o)
            || (0x28..=0x2B).contains(&o)
            || (0x3A..=0x40).contains(&o)
            || c == '/';
        if punct {
            s1.extend([' ', c, ' ']);
        } else {
            s1.push(c);
        }
    }
    let digit = |c: char| c.is_ascii_digit();
    let dot = |c: char| c == '.' || c == ',';
    // 2. ([^0-9])([\.,]) -> '\1 \2 ' (non-overlapping, left to right)
    let mut s2 = Vec::with_capacity(s1.len() * 2);
    let mut i = 0;
    while i < s1.len() {
        if i + 1 < s1.len() && !digit(s1[i]) && dot(s1[i + 1]) {
            s2.extend([s1[i], ' ', s1[i + 1], ' ']);
            i += 2;
        } else {
            s2.push(s1[i]);
            i += 1;
        }
    }
    // 3. ([\.,])([^0-9]) -> ' \1 \2'
    let mut s3 = Vec::with_capacity(s2.len() * 2);
    let mut i = 0;
    while i < s2.len() {
        if i + 1 < s2.len() && dot(s2[i]) && !digit(s2[i + 1]) {
            s3.extend([' ', s2[i], ' ', s2[i + 1]]);
            i += 2;
        } else {
            s3.push(s2[i]);
            i += 1;
        }
    }
    // 4. ([0-9])(-) -> '\1 \2 '
    let mut s4 = Vec::with_capacity(s3.len() * 2);
    let mut i = 0;
    while i < s3.len() {
        if i + 1 < s3.len() && digit(s3[i]) && s3[i + 1] == '-' {
            s4.extend([s3[i], ' ', '-', ' ']);
            i += 2;
        } else {
            s4.push(s3[i]);
            i += 1;
        }
    }
    let s: String = s4.into_iter().collect();
    py_split(&s).join(" ")
}

/// sacreBLEU's default `13a` tokenizer (mteval-v13a).
pub fn tokenize_13a(line: &str) -> String {
    let mut line = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    regexp_tokenize(&format!(" {line} "))
}

/// sacreBLEU's `zh` ranges, as its code compares them: Python compares the
/// one-character string with the range ends, and three ends written as
/// `'\u20000'` are two characters (`'\u2000' + '0'`), so those ranges are in
/// effect U+2001..U+2A6D and U+2F81..U+2FA1.
fn sacrebleu_zh_char(c: char) -> bool {
    const RANGES: &[(u32, u32)] = &[
        (0x3400, 0x4DB5),
        (0x4E00, 0x9FA5),
        (0x9FA6, 0x9FBB),
        (0xF900, 0xFA2D),
        (0xFA30, 0xFA6A),
        (0xFA70, 0xFAD9),
        (0x2001, 0x2A6D),
        (0x2F81, 0x2FA1),
        (0xFF00, 0xFFEF),
        (0x2E80, 0x2EFF),
        (0x3000, 0x303F),
        (0x31C0, 0x31EF),
        (0x2F00, 0x2FDF),
        (0x2FF0, 0x2FFF),
        (0x3100, 0x312F),
        (0x31A0, 0x31BF),
        (0xFE10, 0xFE1F),
        (0xFE30, 0xFE4F),
        (0x2600, 0x26FF),
        (0x2700, 0x27BF),
        (0x3200, 0x32FF),
        (0x3300, 0x33FF),
    ];
    let o = c as u32;
    RANGES.iter().any(|&(a, b)| (a..=b).contains(&o))
}

/// sacreBLEU's `zh` tokenizer, extended to split kana and hangul as well
/// (identical to sacreBLEU's on text without them).
pub fn tokenize_zh(line: &str) -> String {
    let mut s = String::with_capacity(line.len() * 3);
    for c in line.trim_matches(py_space).chars() {
        let o = c as u32;
        let kana_hangul = (0x3040..=0x30FF).contains(&o)
            || (0xAC00..=0xD7AF).contains(&o)
            || (0x1100..=0x11FF).contains(&o);
        if sacrebleu_zh_char(c) || kana_hangul {
            s.push(' ');
            s.push(c);
            s.push(' ');
        } else {
            s.push(c);
        }
    }
    regexp_tokenize(&s)
}

/// Corpus BLEU and its parts, as sacreBLEU's `BLEUScore`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Bleu {
    /// 0..100.
    pub score: f64,
    /// n-gram precisions 1..4 in percent (with sacreBLEU's 'exp' smoothing).
    pub precisions: [f64; 4],
    pub brevity_penalty: f64,
    pub sys_len: usize,
    pub ref_len: usize,
    /// `13a` or `zh`.
    pub tokenize: &'static str,
}

fn ngrams(tokens: &[&str], max_n: usize) -> HashMap<Vec<String>, usize> {
    let mut out = HashMap::new();
    for n in 1..=max_n {
        for w in tokens.windows(n) {
            *out.entry(w.iter().map(|s| s.to_string()).collect())
                .or_insert(0) += 1;
        }
    }
    out
}

/// Corpus BLEU-4 of `hyps` against one reference each, as
/// `sacrebleu.corpus_bleu(hyps, [refs])` with its defaults (13a, or `zh`
/// when `cjk`; smooth_method 'exp'; no lowercasing).
pub fn corpus_bleu(hyps: &[&str], refs: &[&str], cjk: bool) -> Bleu {
    let tok = |s: &str| {
        let s = s.trim_end_matches(py_space);
        if cjk {
            tokenize_zh(s)
        } else {
            tokenize_13a(s)
        }
    };
    let mut correct = [0usize; 4];
    let mut total = [0usize; 4];
    let (mut sys_len, mut ref_len) = (0usize, 0usize);
    for (h, r) in hyps.iter().zip(refs) {
        let (h, r) = (tok(h), tok(r));
        let (ht, rt) = (py_split(&h), py_split(&r));
        sys_len += ht.len();
        ref_len += rt.len();
        let rn = ngrams(&rt, 4);
        for (g, count) in ngrams(&ht, 4) {
            let n = g.len() - 1;
            total[n] += count;
            if let Some(&rc) = rn.get(&g) {
                correct[n] += count.min(rc);
            }
        }
    }
    let bp = if sys_len < ref_len {
        if sys_len > 0 {
            (1.0 - ref_len as f64 / sys_len as f64).exp()
        } else {
            0.0
        }
    } else {
        1.0
    };
    let mut precisions = [0.0f64; 4];
    let tokenize = if cjk { "zh" } else { "13a" };
    if correct.iter().all(|&c| c == 0) {
        return Bleu {
            score: 0.0,
            precisions,
            brevity_penalty: bp,
            sys_len,
            ref_len,
            tokenize,
        };
    }
    let mut smooth = 1.0f64;
    for n in 0..4 {
        if total[n] == 0 {
            break;
        }
        if correct[n] == 0 {
            smooth *= 2.0;
            precisions[n] = 100.0 / (smooth * total[n] as f64);
        } else {
            precisions[n] = 100.0 * correct[n] as f64 / total[n] as f64;
        }
    }
    // sacreBLEU's my_log: log(0) is -9999999999, so a missing order gives 0.
    let log = |p: f64| if p == 0.0 { -9_999_999_999.0 } else { p.ln() };
    let score = bp * (precisions.iter().map(|&p| log(p)).sum::<f64>() / 4.0).exp();
    Bleu {
        score,
        precisions,
        brevity_penalty: bp,
        sys_len,
        ref_len,
        tokenize,
    }
}

// ---------------------------------------------------------------- ROUGE

/// rouge-score's default tokenizer (no stemmer): lowercase, runs of
/// `[a-z0-9]`; with `cjk`, each CJK letter is a token too.
pub fn rouge_tokens(text: &str, cjk: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in text.to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        if cjk && is_cjk_letter(c) {
            out.push(c.to_string());
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// ROUGE-1, ROUGE-2 and ROUGE-L F-measures of one prediction against its
/// target, as `RougeScorer(['rouge1','rouge2','rougeL']).score(target, pred)`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Rouge {
    pub rouge1: f64,
    pub rouge2: f64,
    #[serde(rename = "rougeL")]
    pub rouge_l: f64,
}

fn fmeasure(p: f64, r: f64) -> f64 {
    if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    }
}

fn count_ngrams(t: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut m: HashMap<&[String], usize> = HashMap::new();
    for w in t.windows(n) {
        *m.entry(w).or_insert(0) += 1;
    }
    m
}

fn rouge_n(target: &[String], pred: &[String], n: usize) -> f64 {
    let (tn, pn) = (count_ngrams(target, n), count_ngrams(pred, n));
    let inter: usize = tn
        .iter()
        .map(|(g, &c)| c.min(pn.get(g).copied().unwrap_or(0)))
        .sum();
    let tc: usize = tn.values().sum();
    let pc: usize = pn.values().sum();
    fmeasure(
        inter as f64 / pc.max(1) as f64,
        inter as f64 / tc.max(1) as f64,
    )
}

fn lcs_len(a: &[String], b: &[String]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                prev[j + 1].max(cur[j])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

pub fn rouge(prediction: &str, target: &str, cjk: bool) -> Rouge {
    let t = rouge_tokens(target, cjk);
    let p = rouge_tokens(prediction, cjk);
    let rouge_l = if t.is_empty() || p.is_empty() {
        0.0
    } else {
        let l = lcs_len(&t, &p) as f64;
        fmeasure(l / p.len() as f64, l / t.len() as f64)
    };
    Rouge {
        rouge1: rouge_n(&t, &p, 1),
        rouge2: rouge_n(&t, &p, 2),
        rouge_l,
    }
}

// ---------------------------------------------------------------- SQuAD

/// SQuAD v1.1's `normalize_answer`: lowercase, drop ASCII punctuation, drop
/// the words a/an/the, collapse whitespace.
pub fn squad_normalize(s: &str) -> String {
    let lower = s.to_lowercase();
    let no_punct: String = lower
        .chars()
        .filter(|c| !c.is_ascii_punctuation())
        .collect();
    // re.sub(r'\b(a|an|the)\b', ' ', text): whole words only; a word is a run
    // of Python's \w (letters, digits, underscore).
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(no_punct.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if matches!(run.as_str(), "a" | "an" | "the") {
            out.push(' ');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in no_punct.chars() {
        if word(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    py_split(&out).join(" ")
}

/// Normalised tokens: whitespace words, each CJK letter on its own when `cjk`.
fn squad_tokens(s: &str, cjk: bool) -> Vec<String> {
    let norm = squad_normalize(s);
    let mut out = Vec::new();
    for w in py_split(&norm) {
        if !cjk {
            out.push(w.to_string());
            continue;
        }
        let mut word = String::new();
        for c in w.chars() {
            if is_cjk_letter(c) {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                out.push(c.to_string());
            } else {
                word.push(c);
            }
        }
        if !word.is_empty() {
            out.push(word);
        }
    }
    out
}

/// SQuAD v1.1's `f1_score` (CJK letters as tokens when `cjk`).
pub fn squad_f1(prediction: &str, truth: &str, cjk: bool) -> f64 {
    let p = squad_tokens(prediction, cjk);
    let t = squad_tokens(truth, cjk);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for w in &t {
        *counts.entry(w).or_insert(0) += 1;
    }
    let mut same = 0usize;
    for w in &p {
        if let Some(c) = counts.get_mut(w.as_str()) {
            if *c > 0 {
                *c -= 1;
                same += 1;
            }
        }
    }
    if same == 0 {
        return 0.0;
    }
    let precision = same as f64 / p.len() as f64;
    let recall = same as f64 / t.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// SQuAD v1.1's `exact_match_score`.
pub fn squad_exact(prediction: &str, truth: &str) -> bool {
    squad_normalize(prediction) == squad_normalize(truth)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> serde_json::Value {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/eval_metrics.json"
        );
        let text = std::fs::read_to_string(p).expect("tests/fixtures/eval_metrics.json");
        serde_json::from_str(&text).expect("fixture is JSON")
    }

    fn f(v: &serde_json::Value) -> f64 {
        v.as_f64().expect("a number")
    }

    #[test]
    fn bleu_matches_sacrebleu() {
        let fx = fixture();
        let corpora = fx["corpora"].as_object().expect("corpora");
        assert!(corpora.len() >= 3);
        for (name, c) in corpora {
            let pairs = c["pairs"].as_array().expect("pairs");
            let hyps: Vec<&str> = pairs
                .iter()
                .filter_map(|p| p["prediction"].as_str())
                .collect();
            let refs: Vec<&str> = pairs
                .iter()
                .filter_map(|p| p["reference"].as_str())
                .collect();
            let cjk = corpus_is_cjk(hyps.iter().chain(&refs).copied());
            assert_eq!(
                cjk,
                c["cjk"].as_bool().unwrap_or(false),
                "{name}: CJK detection"
            );
            let b = corpus_bleu(&hyps, &refs, cjk);
            assert!(
                (b.score - f(&c["bleu"])).abs() < 0.01,
                "{name}: BLEU {} vs sacreBLEU {}",
                b.score,
                c["bleu"]
            );
            assert_eq!(
                b.sys_len as u64,
                c["sys_len"].as_u64().unwrap_or(0),
                "{name}"
            );
            assert_eq!(
                b.ref_len as u64,
                c["ref_len"].as_u64().unwrap_or(0),
                "{name}"
            );
            assert!(
                (b.brevity_penalty - f(&c["bleu_bp"])).abs() < 1e-9,
                "{name}"
            );
            for (n, want) in c["bleu_precisions"]
                .as_array()
                .expect("precisions")
                .iter()
                .enumerate()
            {
                assert!(
                    (b.precisions[n] - f(want)).abs() < 1e-9,
                    "{name}: p{}",
                    n + 1
                );
            }
        }
    }

    #[test]
    fn rouge_matches_rouge_score() {
        let fx = fixture();
        for (name, c) in fx["corpora"].as_object().expect("corpora") {
            let cjk = c["cjk"].as_bool().unwrap_or(false);
            for p in c["pairs"].as_array().expect("pairs") {
                let (pred, r) = (
                    p["prediction"].as_str().unwrap_or(""),
                    p["reference"].as_str().unwrap_or(""),
                );
                let got = rouge(pred, r, cjk);
                for (key, v) in [
                    ("rouge1", got.rouge1),
                    ("rouge2", got.rouge2),
                    ("rougeL", got.rouge_l),
                ] {
                    assert!(
                        (v - f(&p[key])).abs() < 0.001,
                        "{name}: {key} of {pred:?} vs {r:?}: {v} vs rouge-score {}",
                        p[key]
                    );
                }
            }
        }
    }

    #[test]
    fn f1_and_exact_match_match_squad() {
        let fx = fixture();
        let mut checked = 0;
        for (name, c) in fx["corpora"].as_object().expect("corpora") {
            let cjk = c["cjk"].as_bool().unwrap_or(false);
            for p in c["pairs"].as_array().expect("pairs") {
                let (pred, r) = (
                    p["prediction"].as_str().unwrap_or(""),
                    p["reference"].as_str().unwrap_or(""),
                );
                let got = squad_f1(pred, r, cjk);
                assert!(
                    (got - f(&p["f1"])).abs() < 1e-9,
                    "{name}: F1 of {pred:?} vs {r:?}: {got} vs {}",
                    p["f1"]
                );
                assert_eq!(
                    squad_exact(pred, r),
                    p["em"].as_bool().unwrap_or(false),
                    "{name}: EM of {pred:?}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 10);
    }

    #[test]
    fn squad_normalisation_by_hand() {
        assert_eq!(squad_normalize("The  Cat, an apple & a-b!"), "cat apple ab");
        assert_eq!(squad_normalize("another theme"), "another theme");
        assert!(squad_exact("the Eiffel Tower.", "Eiffel tower"));
        assert_eq!(squad_f1("", "x", false), 0.0);
    }

    #[test]
    fn tokenizers_by_hand() {
        assert_eq!(
            tokenize_13a("Hello, world! It's 3.5 km-long (1990-2000)."),
            "Hello , world ! It's 3.5 km-long ( 1990 - 2000 ) ."
        );
        assert_eq!(tokenize_zh("我爱 Paris."), "我 爱 Paris .");
        assert_eq!(
            rouge_tokens("Don't STOP 2me", false),
            ["don", "t", "stop", "2me"]
        );
        assert_eq!(rouge_tokens("北京 ok，", true), ["北", "京", "ok"]);
        assert!(rouge_tokens("北京", false).is_empty());
    }
}
