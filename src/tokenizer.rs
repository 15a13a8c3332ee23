//! Character-level and byte-level BPE tokenizers through the `tokenizers` crate,
//! saved and loaded as Hugging Face `tokenizer.json`.
//!
//! * **Char**: a `WordLevel` model whose vocabulary is `[UNK]` at id 0, then
//!   every distinct character of the corpus in sorted (code point) order at
//!   ids 1.. . A `Split` pre-tokenizer isolates every character (newlines
//!   included) and a `Fuse` decoder concatenates without spaces, so
//!   `decode(encode(s)) == s` for any `s` made of corpus characters; an unseen
//!   character encodes to `[UNK]` (id 0) and decodes to the text `[UNK]`.
//! * **Bpe**: byte-level BPE (GPT-2 style): `ByteLevel` pre-tokenizer without a
//!   prefix space, `ByteLevel` decoder, trained with the 256-byte initial
//!   alphabet, so every string encodes and `decode(encode(s)) == s` always.
//!   GPT-2's own tokenizer files, `vocab.json` + `merges.txt` (what
//!   `GPT2Tokenizer` reads), load into the same pipeline
//!   ([`Tokenizer::from_gpt2_files`]), `<|endoftext|>` a special token.

use crate::config::{TokenizerConfig, TokenizerKind};
use std::path::{Path, PathBuf};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::models::bpe::{BpeTrainer, BPE};
use tokenizers::models::wordlevel::WordLevel;
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{DecoderWrapper, PreTokenizerWrapper, SplitDelimiterBehavior};

/// BERT's special tokens, added (after the corpus tokens, or at their ids
/// when present) for `train.objective = "mlm"`.
pub const BERT_SPECIALS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// The unknown token of the char tokenizer (id [`CHAR_UNK_ID`]).
pub const UNK: &str = "[UNK]";
/// `[UNK]`'s id in a char tokenizer.
pub const CHAR_UNK_ID: u32 = 0;

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("tokenizer {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("tokenizer: {0}")]
    Other(String),
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn other(context: &str, e: impl std::fmt::Display) -> TokenizerError {
    TokenizerError::Other(one_line(&format!("{context}: {e}")))
}

/// How token ids turn back into text, decided once from the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DecodeMode {
    /// Byte-level: each token is raw bytes (GPT-2's byte-to-char table).
    Bytes,
    /// Each token decodes on its own and the texts concatenate (`Fuse`).
    PerToken,
    /// Anything else: decode the whole sequence and diff.
    Whole,
}

/// A trained tokenizer. Cheap to clone? No: wrap in `Arc` to share.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    kind: TokenizerKind,
    mode: DecodeMode,
    /// Fast path for this module's char tokenizers: char -> id, and the
    /// `[UNK]` id (the same ids the `tokenizers` pipeline gives, ~100x faster).
    char_ids: Option<(std::collections::HashMap<char, u32>, u32)>,
    /// True for this module's byte-level BPE shape (see [`bpe_fast_path`]):
    /// `encode` splits ASCII text itself, with the same cuts as the GPT-2
    /// regex, and caches each word's ids.
    bpe_fast: bool,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokenizer({:?}, vocab={})", self.kind, self.vocab_size())
    }
}

impl Tokenizer {
    fn wrap(inner: tokenizers::Tokenizer) -> Tokenizer {
        let kind = match inner.get_model() {
            ModelWrapper::WordLevel(_) => TokenizerKind::Char,
            _ => TokenizerKind::Bpe,
        };
        let mode = match inner.get_decoder() {
            Some(DecoderWrapper::ByteLevel(_)) => DecodeMode::Bytes,
            Some(DecoderWrapper::Fuse(_)) => DecodeMode::PerToken,
            _ => DecodeMode::Whole,
        };
        let char_ids = char_fast_path(&inner);
        let bpe_fast = bpe_fast_path(&inner);
        Tokenizer {
            inner,
            kind,
            mode,
            char_ids,
            bpe_fast,
        }
    }

    /// Builds the tokenizer the config asks for from the corpus text
    /// (or loads `cfg.path`).
    pub fn build(cfg: &TokenizerConfig, corpus: &str) -> Result<Tokenizer, TokenizerError> {
        if let Some(path) = &cfg.path {
            return Self::load(path);
        }
        match cfg.kind {
            TokenizerKind::Char => Self::train_char(corpus),
            TokenizerKind::Bpe => Self::train_bpe(corpus, cfg.vocab_size),
        }
    }

    /// A char tokenizer over the distinct characters of `corpus`.
    pub fn train_char(corpus: &str) -> Result<Tokenizer, TokenizerError> {
        let chars: std::collections::BTreeSet<char> = corpus.chars().collect();
        let mut vocab = std::collections::HashMap::with_capacity(chars.len() + 1);
        vocab.insert(UNK.to_string(), CHAR_UNK_ID);
        for (i, c) in chars.into_iter().enumerate() {
            vocab.insert(c.to_string(), i as u32 + 1);
        }
        let model = WordLevel::builder()
            .vocab(vocab)
            .unk_token(UNK.into())
            .build()
            .map_err(|e| other("cannot build the char vocabulary", e))?;
        let split = char_splitter()?;
        let mut inner = tokenizers::Tokenizer::new(model);
        inner.with_pre_tokenizer(Some(split));
        inner.with_decoder(Some(Fuse::new()));
        Ok(Self::wrap(inner))
    }

    /// A byte-level BPE trained on `corpus` to at most `vocab_size` tokens
    /// (256 byte tokens plus merges; fewer when the corpus runs out of pairs).
    pub fn train_bpe(corpus: &str, vocab_size: usize) -> Result<Tokenizer, TokenizerError> {
        if vocab_size < 256 {
            return Err(TokenizerError::Other(format!(
                "vocab_size {vocab_size} is too small for byte-level BPE; use at least 256 (260+ recommended)"
            )));
        }
        let mut inner = tokenizers::Tokenizer::new(BPE::default());
        inner.with_pre_tokenizer(Some(ByteLevel::default().add_prefix_space(false)));
        inner.with_decoder(Some(ByteLevelDecoder::default().add_prefix_space(false)));
        let mut trainer: TrainerWrapper = BpeTrainer::builder()
            .vocab_size(vocab_size)
            .min_frequency(0)
            .show_progress(false)
            .initial_alphabet(ByteLevel::alphabet())
            .build()
            .into();
        inner
            .train(&mut trainer, corpus.split_inclusive('\n'))
            .map_err(|e| other("BPE training failed", e))?;
        Ok(Self::wrap(inner))
    }

    /// Loads a Hugging Face `tokenizer.json`.
    pub fn load(path: &Path) -> Result<Tokenizer, TokenizerError> {
        let fail = |message: String| TokenizerError::File {
            path: path.into(),
            message: one_line(&message),
        };
        let bytes = std::fs::read(path).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                "check tokenizer.path"
            } else {
                "check the path and permissions"
            };
            fail(format!("cannot read: {e}; {hint}"))
        })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| fail(format!("is not JSON ({e}); give a tokenizer.json file")))?;
        if !value.get("model").is_some_and(|m| m.is_object()) {
            return Err(fail(
                "is JSON but not a tokenizer (no `model` object); give a Hugging Face tokenizer.json".into(),
            ));
        }
        let inner: tokenizers::Tokenizer = serde_json::from_value(value).map_err(|e| {
            fail(format!(
                "is not a valid tokenizer.json ({e}); give a Hugging Face tokenizer.json"
            ))
        })?;
        Ok(Self::wrap(inner))
    }

    /// The tokenizer of a checkpoint directory: `tokenizer.json`, or else
    /// GPT-2's `vocab.json` + `merges.txt`.
    pub fn load_dir(dir: &Path) -> Result<Tokenizer, TokenizerError> {
        let json = dir.join("tokenizer.json");
        if json.exists() {
            return Self::load(&json);
        }
        let (vocab, merges) = (dir.join("vocab.json"), dir.join("merges.txt"));
        match (vocab.exists(), merges.exists()) {
            (true, true) => Self::from_gpt2_files(&vocab, &merges),
            (true, false) => Err(TokenizerError::File {
                path: merges,
                message: "is missing beside vocab.json; copy the merges.txt that belongs to this vocabulary".into(),
            }),
            (false, true) => Err(TokenizerError::File {
                path: vocab,
                message: "is missing beside merges.txt; copy the vocab.json that belongs to these merges".into(),
            }),
            (false, false) => Err(TokenizerError::File {
                path: dir.into(),
                message: "has no tokenizer: give it tokenizer.json, or GPT-2's vocab.json and merges.txt, from the model it was trained with".into(),
            }),
        }
    }

    /// GPT-2's tokenizer files as `GPT2Tokenizer` reads them: byte-level BPE
    /// with the vocabulary of `vocab.json` (token -> id) and the merges of
    /// `merges.txt` (one `left right` pair a line, by rank, after an optional
    /// `#version` line), no prefix space, `<|endoftext|>` (when present) a
    /// special token.
    pub fn from_gpt2_files(
        vocab_path: &Path,
        merges_path: &Path,
    ) -> Result<Tokenizer, TokenizerError> {
        let fail = |path: &Path, message: String| TokenizerError::File {
            path: path.into(),
            message: one_line(&message),
        };
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|e| {
                fail(
                    path,
                    format!("cannot read: {e}; check the file (UTF-8 text)"),
                )
            })
        };
        let vocab_text = read(vocab_path)?;
        let value: serde_json::Value = serde_json::from_str(&vocab_text).map_err(|e| {
            fail(
                vocab_path,
                format!("is not JSON ({e}); give GPT-2's vocab.json"),
            )
        })?;
        let serde_json::Value::Object(map) = value else {
            return Err(fail(
                vocab_path,
                "is not a JSON object of token -> id; give GPT-2's vocab.json".into(),
            ));
        };
        let mut vocab = std::collections::HashMap::with_capacity(map.len());
        let mut seen = std::collections::HashSet::with_capacity(map.len());
        for (token, id) in map {
            let id = id.as_u64().and_then(|i| u32::try_from(i).ok()).ok_or_else(|| {
                fail(
                    vocab_path,
                    format!("token {token:?} has id {id}, not a non-negative integer; give GPT-2's vocab.json"),
                )
            })?;
            if !seen.insert(id) {
                return Err(fail(
                    vocab_path,
                    format!("id {id} is given to two tokens (one is {token:?}); each id must name one token"),
                ));
            }
            vocab.insert(token, id);
        }
        for b in 0..=255u8 {
            let c = byte_to_char(b);
            if !vocab.contains_key(&c.to_string()) {
                return Err(fail(
                    vocab_path,
                    format!(
                        "has no token for byte 0x{b:02x} ({c:?}); a GPT-2 byte-level vocabulary holds all 256 bytes, so this is not one"
                    ),
                ));
            }
        }
        let merges_text = read(merges_path)?;
        let mut merges = Vec::new();
        for (i, line) in merges_text.lines().enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if (i == 0 && line.starts_with("#version")) || line.trim().is_empty() {
                continue;
            }
            let parts: Vec<&str> = line.split(' ').collect();
            let [left, right] = parts[..] else {
                return Err(fail(
                    merges_path,
                    format!(
                        "line {}: {:?} is not two tokens separated by one space; give GPT-2's merges.txt",
                        i + 1,
                        crate::sanitize::escape(line)
                    ),
                ));
            };
            for t in [left, right, &format!("{left}{right}")] {
                if !vocab.contains_key(t) {
                    return Err(fail(
                        merges_path,
                        format!(
                            "line {}: token {:?} is not in vocab.json; vocab.json and merges.txt do not belong together",
                            i + 1,
                            crate::sanitize::escape(t)
                        ),
                    ));
                }
            }
            merges.push((left.to_string(), right.to_string()));
        }
        let model = BPE::builder()
            .vocab_and_merges(vocab.clone(), merges)
            .build()
            .map_err(|e| fail(merges_path, format!("cannot build the BPE model: {e}")))?;
        let mut inner = tokenizers::Tokenizer::new(model);
        inner.with_pre_tokenizer(Some(ByteLevel::default().add_prefix_space(false)));
        inner.with_decoder(Some(ByteLevelDecoder::default().add_prefix_space(false)));
        if vocab.contains_key(ENDOFTEXT) {
            inner.add_special_tokens(&[tokenizers::AddedToken::from(ENDOFTEXT, true)]);
        }
        Ok(Self::wrap(inner))
    }

    /// One past the largest id the tokenizer can produce or decode (its
    /// size, for a vocabulary without holes).
    pub fn id_limit(&self) -> usize {
        self.inner
            .get_vocab(true)
            .values()
            .map(|&id| id as usize + 1)
            .max()
            .unwrap_or(0)
    }

    /// Writes `tokenizer.json` atomically.
    pub fn save(&self, path: &Path) -> Result<(), TokenizerError> {
        let json = self
            .inner
            .to_string(true)
            .map_err(|e| other("cannot serialize the tokenizer", e))?;
        crate::fsutil::atomic_write(path, json.as_bytes()).map_err(|e| TokenizerError::File {
            path: path.into(),
            message: one_line(&format!("cannot write: {e}; check the directory")),
        })
    }

    /// A hash of the tokenizer's whole definition (its `tokenizer.json`):
    /// equal for tokenizers that encode alike; the token cache's key.
    pub fn fingerprint(&self) -> u64 {
        let json = self.inner.to_string(false).unwrap_or_default();
        let mut h = crate::hash::ContentHash::default();
        h.update(json.as_bytes());
        h.finish()
    }

    /// The tokenizer with BERT's special tokens ([`BERT_SPECIALS`]) and a
    /// BERT post-processor (`[CLS] text [SEP]`, as transformers' fast
    /// tokenizers add them). Existing ids are unchanged; a tokenizer that
    /// has them already is returned as is.
    pub fn with_bert_specials(self) -> Result<Tokenizer, TokenizerError> {
        if self.has_bert_specials() {
            return Ok(self);
        }
        let mut inner = self.inner;
        let toks: Vec<tokenizers::AddedToken> = BERT_SPECIALS
            .iter()
            .map(|t| tokenizers::AddedToken::from(*t, true))
            .collect();
        inner.add_special_tokens(&toks);
        let id = |t: &str| {
            inner
                .token_to_id(t)
                .ok_or_else(|| TokenizerError::Other(format!("cannot add the special token {t}")))
        };
        let (cls, sep) = (id("[CLS]")?, id("[SEP]")?);
        inner.with_post_processor(Some(tokenizers::processors::bert::BertProcessing::new(
            ("[SEP]".into(), sep),
            ("[CLS]".into(), cls),
        )));
        Ok(Self::wrap(inner))
    }

    /// Whether every one of [`BERT_SPECIALS`] is a special token here.
    pub fn has_bert_specials(&self) -> bool {
        BERT_SPECIALS.iter().all(|t| self.special_id(t).is_some())
    }

    /// The id of special (added) token `token`, if the tokenizer has it.
    pub fn special_id(&self, token: &str) -> Option<u32> {
        self.inner
            .get_added_tokens_decoder()
            .into_iter()
            .find(|(_, t)| t.special && t.content == token)
            .map(|(id, _)| id)
    }

    /// [`Tokenizer::encode`] of text typed by a user: the special tokens
    /// written in it (`[MASK]`, ...) become their ids; the text between them
    /// is encoded as usual. (`encode` itself, for data, never matches them.)
    pub fn encode_marked(&self, text: &str) -> Vec<u32> {
        let specials: Vec<(String, u32)> = self
            .inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special)
            .map(|(id, t)| (t.content, id))
            .collect();
        let mut out = Vec::new();
        let mut rest = text;
        loop {
            let next = specials
                .iter()
                .filter_map(|(s, id)| rest.find(s.as_str()).map(|at| (at, s.len(), *id)))
                .min_by_key(|&(at, len, _)| (at, std::cmp::Reverse(len)));
            match next {
                Some((at, len, id)) => {
                    if at > 0 {
                        out.extend(self.encode(&rest[..at]));
                    }
                    out.push(id);
                    rest = &rest[at + len..];
                }
                None => {
                    if !rest.is_empty() {
                        out.extend(self.encode(rest));
                    }
                    return out;
                }
            }
        }
    }

    pub fn kind(&self) -> TokenizerKind {
        self.kind
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn encode(&self, text: &str) -> Vec<u32> {
        if let Some((map, unk)) = &self.char_ids {
            return text
                .chars()
                .map(|c| map.get(&c).copied().unwrap_or(*unk))
                .collect();
        }
        if self.bpe_fast {
            if let ModelWrapper::BPE(model) = self.inner.get_model() {
                return self.encode_bpe(model, text);
            }
        }
        self.encode_slow(text)
    }

    /// Byte-level BPE encoding with the same ids as the pipeline: the text
    /// cut into segments after a newline that a non-space follows (always a
    /// pre-token boundary of the GPT-2 regex); ASCII segments are split by
    /// [`gpt2_split_ascii`] and each distinct word goes through the model
    /// once; the others (rare in most corpora) through the pipeline.
    fn encode_bpe(&self, model: &BPE, text: &str) -> Vec<u32> {
        use tokenizers::Model;
        let bytes = text.as_bytes();
        let table = byte_chars();
        let mut out = Vec::with_capacity(bytes.len() / 3 + 1);
        let mut cache: std::collections::HashMap<&[u8], Vec<u32>> = Default::default();
        let mut word = String::new();
        let mut slow_from: Option<usize> = None;
        let mut start = 0;
        while start < bytes.len() {
            let mut end = start;
            loop {
                match bytes[end..].iter().position(|&b| b == b'\n') {
                    None => {
                        end = bytes.len();
                        break;
                    }
                    Some(p) => {
                        end += p + 1;
                        match text[end..].chars().next() {
                            Some(c) if c.is_whitespace() => continue,
                            _ => break,
                        }
                    }
                }
            }
            let seg = &bytes[start..end];
            if !seg.is_ascii() {
                slow_from.get_or_insert(start);
                start = end;
                continue;
            }
            if let Some(from) = slow_from.take() {
                out.extend(self.encode_slow(&text[from..start]));
            }
            gpt2_split_ascii(seg, |w| {
                if let Some(ids) = cache.get(w) {
                    out.extend_from_slice(ids);
                    return;
                }
                word.clear();
                word.extend(w.iter().map(|&b| table[b as usize]));
                let ids: Vec<u32> = model
                    .tokenize(&word)
                    .map(|ts| ts.into_iter().map(|t| t.id).collect())
                    .unwrap_or_default();
                out.extend_from_slice(&ids);
                cache.insert(w, ids);
            });
            start = end;
        }
        if let Some(from) = slow_from {
            out.extend(self.encode_slow(&text[from..]));
        }
        out
    }

    /// `encode` through the `tokenizers` pipeline, without the char fast path.
    fn encode_slow(&self, text: &str) -> Vec<u32> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_default()
    }

    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, false).unwrap_or_default()
    }

    /// The token's vocabulary string for display: for byte-level BPE the bytes
    /// it stands for (lossy when it is part of a character), e.g. `" the"`.
    pub fn id_to_piece(&self, id: u32) -> Option<String> {
        let token = self.inner.id_to_token(id)?;
        Some(match self.mode {
            DecodeMode::Bytes => String::from_utf8_lossy(&token_bytes(&token)).into_owned(),
            _ => token,
        })
    }

    /// The text of each token of `text`, in order, as the tokenizer cuts it
    /// (concatenated they give `text` back). For display. A character split
    /// over several byte-level tokens goes whole to the last of them (the
    /// others get ""), as a stream decoder would show it.
    pub fn pieces(&self, text: &str) -> Vec<String> {
        let Ok(enc) = self.inner.encode(text, false) else {
            return Vec::new();
        };
        let offsets = enc.get_offsets();
        let mut out = Vec::with_capacity(offsets.len());
        let mut cursor = 0usize;
        for (i, &(_, end)) in offsets.iter().enumerate() {
            let mut end = end.clamp(cursor, text.len());
            if let Some(&(next_start, _)) = offsets.get(i + 1) {
                // The next token shares the tail of this one: a split character.
                if next_start < end {
                    end = next_start.max(cursor);
                }
            } else {
                end = text.len();
            }
            while end > cursor && !text.is_char_boundary(end) {
                end -= 1;
            }
            out.push(text[cursor..end].to_string());
            cursor = end;
        }
        if cursor < text.len() {
            match out.last_mut() {
                Some(last) => last.push_str(&text[cursor..]),
                None => out.push(text[cursor..].to_string()),
            }
        }
        out
    }
}

fn char_splitter() -> Result<Split, TokenizerError> {
    // `[\s\S]` is one code point, newlines included (`.` skips them).
    Split::new(
        SplitPattern::Regex(r"[\s\S]".into()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(|e| other("cannot build the char splitter", e))
}

/// The char -> id table when `inner` is exactly a char tokenizer of this
/// module (WordLevel with single-char tokens, our splitter, no normalizer,
/// no added tokens), so `encode` may skip the pipeline.
fn char_fast_path(
    inner: &tokenizers::Tokenizer,
) -> Option<(std::collections::HashMap<char, u32>, u32)> {
    let ModelWrapper::WordLevel(model) = inner.get_model() else {
        return None;
    };
    if inner.get_normalizer().is_some() || !only_bert_specials(inner) {
        return None;
    }
    let ours = serde_json::to_value(PreTokenizerWrapper::from(char_splitter().ok()?)).ok()?;
    if serde_json::to_value(inner.get_pre_tokenizer()?).ok()? != ours {
        return None;
    }
    let vocab = inner.get_vocab(false);
    let unk = *vocab.get(&model.unk_token)?;
    let mut map = std::collections::HashMap::with_capacity(vocab.len());
    for (token, id) in vocab {
        let mut chars = token.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            map.insert(c, id);
        }
    }
    Some((map, unk))
}

/// True when `inner` has no added tokens but (some of) [`BERT_SPECIALS`]:
/// `encode` of data never matches those, so the fast paths stay exact.
fn only_bert_specials(inner: &tokenizers::Tokenizer) -> bool {
    inner
        .get_added_tokens_decoder()
        .values()
        .all(|t| t.special && BERT_SPECIALS.contains(&t.content.as_str()))
}

/// True when `inner` is a byte-level BPE of the shape `train_bpe` makes (or
/// GPT-2's): a BPE model without dropout, no normalizer, no added tokens, and
/// the `ByteLevel` pre-tokenizer with the GPT-2 regex and no prefix space.
fn bpe_fast_path(inner: &tokenizers::Tokenizer) -> bool {
    let ModelWrapper::BPE(model) = inner.get_model() else {
        return false;
    };
    model.dropout.is_none()
        && inner.get_normalizer().is_none()
        && only_bert_specials(inner)
        && matches!(
            inner.get_pre_tokenizer(),
            Some(PreTokenizerWrapper::ByteLevel(b)) if !b.add_prefix_space && b.use_regex
        )
}

/// GPT-2's byte-to-char table: the char a byte-level token uses for each byte.
fn byte_chars() -> &'static [char; 256] {
    static TABLE: std::sync::OnceLock<[char; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = ['\0'; 256];
        for c in ByteLevel::alphabet() {
            if let Some(b) = char_to_byte(c) {
                t[b as usize] = c;
            }
        }
        t
    })
}

/// ASCII whitespace as the regex's `\s` has it (tab, LF, VT, FF, CR, space).
fn ascii_space(b: u8) -> bool {
    b == b' ' || (0x09..=0x0d).contains(&b)
}

/// Splits ASCII `s` exactly as GPT-2's pre-tokenizer regex
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
/// does, calling `emit` with each piece in order.
fn gpt2_split_ascii<'a>(s: &'a [u8], mut emit: impl FnMut(&'a [u8])) {
    let letter = |b: u8| b.is_ascii_alphabetic();
    let digit = |b: u8| b.is_ascii_digit();
    let other = |b: u8| !ascii_space(b) && !b.is_ascii_alphanumeric();
    let n = s.len();
    let mut i = 0;
    while i < n {
        if s[i] == b'\'' {
            let rest = &s[i + 1..];
            let len =
                if rest.starts_with(b"re") || rest.starts_with(b"ve") || rest.starts_with(b"ll") {
                    3
                } else if matches!(rest.first(), Some(b's' | b't' | b'm' | b'd')) {
                    2
                } else {
                    0
                };
            if len > 0 {
                emit(&s[i..i + len]);
                i += len;
                continue;
            }
        }
        // ` ?` then a run of one class.
        let j = if s[i] == b' ' && i + 1 < n && !ascii_space(s[i + 1]) {
            i + 1
        } else {
            i
        };
        if !ascii_space(s[j]) {
            let c = s[j];
            let class: &dyn Fn(u8) -> bool = if letter(c) {
                &letter
            } else if digit(c) {
                &digit
            } else {
                &other
            };
            let mut k = j + 1;
            while k < n && class(s[k]) {
                k += 1;
            }
            emit(&s[i..k]);
            i = k;
            continue;
        }
        // A run of whitespace: to the end, or all but its last char before
        // a non-space (`\s+(?!\S)`), or that last char alone (`\s+`; a
        // last space goes with the next word instead, above).
        let mut k = i;
        while k < n && ascii_space(s[k]) {
            k += 1;
        }
        if k < n && k - i >= 2 {
            k -= 1;
        }
        emit(&s[i..k]);
        i = k;
    }
}

/// GPT-2's end-of-text token, special in `GPT2Tokenizer`.
pub const ENDOFTEXT: &str = "<|endoftext|>";

/// GPT-2's byte-to-char table: the char a byte-level token uses for `b`.
fn byte_to_char(b: u8) -> char {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let b = u32::from(b);
    if printable(b) {
        return char::from_u32(b).unwrap_or('?');
    }
    let below = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + below).unwrap_or('?')
}

/// GPT-2's byte-to-char table, inverted: the char a byte-level token uses
/// for each byte, back to the byte.
fn char_to_byte(c: char) -> Option<u8> {
    static TABLE: std::sync::OnceLock<std::collections::HashMap<char, u8>> =
        std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let printable = |b: u32| {
            (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b)
        };
        let mut map = std::collections::HashMap::with_capacity(256);
        let mut extra = 256u32;
        for b in 0u32..256 {
            let code = if printable(b) {
                b
            } else {
                extra += 1;
                extra - 1
            };
            if let (Some(c), Ok(byte)) = (char::from_u32(code), u8::try_from(b)) {
                map.insert(c, byte);
            }
        }
        map
    });
    table.get(&c).copied()
}

/// The raw bytes of a byte-level token (as the `ByteLevel` decoder does:
/// a token with a char outside the table stands for its own UTF-8).
fn token_bytes(token: &str) -> Vec<u8> {
    token
        .chars()
        .map(char_to_byte)
        .collect::<Option<Vec<u8>>>()
        .unwrap_or_else(|| token.as_bytes().to_vec())
}

/// Turns a stream of token ids into text pieces, holding back incomplete
/// UTF-8 (a byte-level BPE token can be half a character). The pushes, then
/// [`StreamDecoder::finish`], concatenate to `decode` of all the ids; the
/// pushes alone already do when the ids end on a whole character.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    /// Byte-level: bytes not yet emitted (an incomplete character).
    pending: Vec<u8>,
    /// Whole-sequence mode: the ids so far and the bytes of text emitted.
    ids: Vec<u32>,
    emitted: usize,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one token; returns the newly complete text (may be empty).
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> String {
        match tok.mode {
            DecodeMode::Bytes => {
                if let Some(token) = tok.inner.id_to_token(id) {
                    self.pending.extend(token_bytes(&token));
                }
                self.drain(false)
            }
            DecodeMode::PerToken => tok.decode(&[id]),
            DecodeMode::Whole => {
                self.ids.push(id);
                let text = tok.decode(&self.ids);
                if text.ends_with('\u{FFFD}')
                    || !text.is_char_boundary(self.emitted.min(text.len()))
                {
                    return String::new();
                }
                let new = text.get(self.emitted..).unwrap_or("").to_string();
                self.emitted = text.len();
                new
            }
        }
    }

    /// Ends the stream: the held-back bytes of an unfinished character, as
    /// U+FFFD (what `decode` shows for them); "" when nothing is held back.
    pub fn finish(&mut self, tok: &Tokenizer) -> String {
        match tok.mode {
            DecodeMode::Bytes => self.drain(true),
            DecodeMode::PerToken => String::new(),
            DecodeMode::Whole => {
                let text = tok.decode(&self.ids);
                let new = text.get(self.emitted..).unwrap_or("").to_string();
                self.emitted = text.len();
                new
            }
        }
    }

    /// Emits the valid UTF-8 prefix of `pending` (invalid sequences as U+FFFD,
    /// exactly like `String::from_utf8_lossy`); keeps an incomplete tail
    /// unless `all`.
    fn drain(&mut self, all: bool) -> String {
        let mut out = String::new();
        let mut start = 0usize;
        loop {
            match std::str::from_utf8(&self.pending[start..]) {
                Ok(s) => {
                    out.push_str(s);
                    start = self.pending.len();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    let chunk = &self.pending[start..start + valid];
                    out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
                    start += valid;
                    match e.error_len() {
                        Some(n) => {
                            out.push('\u{FFFD}');
                            start += n;
                        }
                        None => {
                            if all {
                                out.push('\u{FFFD}');
                                start = self.pending.len();
                            }
                            break;
                        }
                    }
                }
            }
        }
        self.pending.drain(..start);
        out
    }
}

#[cfg(test)]
mod tests;
