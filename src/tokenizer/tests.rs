//! Unit tests of the tokenizers: round trips, pieces, streaming decode,
//! save/load, errors, and BPE on the shared tinyshakespeare text.

use super::*;

// The same file as tests/common/required.rs (one helper for every test).
#[allow(clippy::duplicate_mod)]
#[path = "../../tests/common/required.rs"]
mod required;

const CORPUS: &str = "First Citizen:\nBefore we proceed any further, hear me speak.\n\n\
All:\nSpeak, speak.\n\n床前明月光，疑是地上霜。\n舉頭望明月，低頭思故鄉。\n\
emoji 😀 and café — résumé\n\tTabs\r\nand CRLF lines\n";

fn char_tok() -> Tokenizer {
    Tokenizer::build(&TokenizerConfig::default(), CORPUS).unwrap()
}

fn bpe_tok(vocab_size: usize) -> Tokenizer {
    let cfg = TokenizerConfig {
        kind: TokenizerKind::Bpe,
        vocab_size,
        path: None,
    };
    Tokenizer::build(&cfg, &CORPUS.repeat(3)).unwrap()
}

fn stream(tok: &Tokenizer, ids: &[u32]) -> (Vec<String>, String) {
    let mut d = StreamDecoder::new();
    let pushes: Vec<String> = ids.iter().map(|&id| d.push(tok, id)).collect();
    let tail = d.finish(tok);
    (pushes, tail)
}

#[test]
fn char_round_trip_and_vocab() {
    let tok = char_tok();
    assert_eq!(tok.kind(), TokenizerKind::Char);
    let distinct: std::collections::BTreeSet<char> = CORPUS.chars().collect();
    assert_eq!(tok.vocab_size(), distinct.len() + 1);
    let ids = tok.encode(CORPUS);
    assert_eq!(ids.len(), CORPUS.chars().count());
    assert!(!ids.contains(&CHAR_UNK_ID));
    assert_eq!(tok.decode(&ids), CORPUS);
    // Ids follow sorted char order after [UNK] at 0.
    let first = *distinct.iter().next().unwrap();
    assert_eq!(tok.encode(&first.to_string()), vec![1]);
    assert_eq!(tok.id_to_piece(0).as_deref(), Some(UNK));
    assert_eq!(tok.id_to_piece(1), Some(first.to_string()));
    assert_eq!(tok.encode("\n\n").len(), 2);
}

#[test]
fn char_unknown_chars_become_unk() {
    let tok = char_tok();
    let ids = tok.encode("a𝄞b");
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[1], CHAR_UNK_ID);
    assert_eq!(tok.decode(&ids), "a[UNK]b");
    assert_eq!(tok.pieces("a𝄞b"), vec!["a", "𝄞", "b"]);
}

#[test]
fn char_fast_path_matches_the_pipeline() {
    let tok = char_tok();
    assert!(tok.char_ids.is_some());
    let text = format!("{CORPUS}unseen 𝄞 [UNK] \u{0}\r\n 漢字");
    assert_eq!(tok.encode(&text), tok.encode_slow(&text));
    assert_eq!(tok.encode(""), Vec::<u32>::new());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    tok.save(&path).unwrap();
    let back = Tokenizer::load(&path).unwrap();
    assert!(
        back.char_ids.is_some(),
        "a saved char tokenizer keeps the fast path"
    );
    assert!(bpe_tok(260).char_ids.is_none());
}

#[test]
fn char_pieces_and_stream() {
    let tok = char_tok();
    let text = "Speak, 明月\n";
    let pieces = tok.pieces(text);
    assert_eq!(pieces.len(), text.chars().count());
    assert_eq!(pieces.concat(), text);
    let ids = tok.encode(text);
    let (pushes, tail) = stream(&tok, &ids);
    assert_eq!(pushes.concat() + &tail, text);
    assert!(tail.is_empty());
}

#[test]
fn bpe_round_trips_any_string() {
    let tok = bpe_tok(300);
    assert_eq!(tok.kind(), TokenizerKind::Bpe);
    assert!(
        tok.vocab_size() > 256 && tok.vocab_size() <= 300,
        "{}",
        tok.vocab_size()
    );
    for s in [
        CORPUS,
        "床前明月光",
        "unseen: 日本語のテキスト 🦀🎉 ñ ß Ω \u{0} \u{7f} ok",
        "",
        " leading space and  double  spaces ",
        "\n\n\r\n\t",
    ] {
        let ids = tok.encode(s);
        assert_eq!(tok.decode(&ids), s, "round trip of {s:?}");
        assert_eq!(tok.pieces(s).concat(), s, "pieces of {s:?}");
    }
    // Merges make the training text shorter than its bytes.
    assert!(tok.encode(CORPUS).len() < CORPUS.len());
}

#[test]
fn bpe_pieces_split_characters_go_to_the_last_token() {
    let tok = bpe_tok(260);
    let text = "x🦀y";
    let ids = tok.encode(text);
    assert!(ids.len() >= 4, "the crab is several byte tokens: {ids:?}");
    let pieces = tok.pieces(text);
    assert_eq!(pieces.len(), ids.len());
    assert_eq!(pieces.concat(), text);
    assert!(pieces.contains(&"🦀".to_string()), "{pieces:?}");
}

#[test]
fn bpe_stream_never_emits_replacement_mid_character() {
    let tok = bpe_tok(300);
    let text = "床前明月光 unseen 🦀🎉 日本語 café\n";
    let ids = tok.encode(text);
    let (pushes, tail) = stream(&tok, &ids);
    for p in &pushes {
        assert!(!p.contains('\u{FFFD}'), "{pushes:?}");
    }
    assert!(tail.is_empty());
    assert_eq!(pushes.concat(), tok.decode(&ids));
    assert_eq!(pushes.concat(), text);
}

#[test]
fn bpe_stream_matches_decode_on_garbage() {
    let tok = bpe_tok(260);
    // Byte tokens of: a lone continuation byte, a truncated 3-byte char, 'a',
    // then an unfinished 4-byte char at the end.
    let byte_id = |b: u8| -> u32 {
        let ids = (0..tok.vocab_size() as u32)
            .find(|&id| tok.inner.id_to_token(id).map(|t| token_bytes(&t)) == Some(vec![b]));
        ids.unwrap()
    };
    let ids: Vec<u32> = [0x80u8, 0xe6, 0x97, b'a', 0xf0, 0x9f]
        .iter()
        .map(|&b| byte_id(b))
        .collect();
    let (pushes, tail) = stream(&tok, &ids);
    let all = tok.decode(&ids);
    assert_eq!(pushes.concat() + &tail, all);
    assert_eq!(all, "\u{FFFD}\u{FFFD}a\u{FFFD}");
}

#[test]
fn id_to_piece_shows_bytes() {
    let tok = bpe_tok(300);
    let ids = tok.encode(" speak");
    let shown: String = ids.iter().filter_map(|&id| tok.id_to_piece(id)).collect();
    assert_eq!(shown, " speak");
    assert!(tok.id_to_piece(1_000_000).is_none());
}

#[test]
fn save_load_identical_encodings() {
    let dir = tempfile::tempdir().unwrap();
    for tok in [char_tok(), bpe_tok(300)] {
        let path = dir
            .path()
            .join(format!("{:?}", tok.kind()))
            .join("tokenizer.json");
        tok.save(&path).unwrap();
        let back = Tokenizer::load(&path).unwrap();
        assert_eq!(back.kind(), tok.kind());
        assert_eq!(back.vocab_size(), tok.vocab_size());
        for s in [CORPUS, "Speak 明月 🦀"] {
            assert_eq!(back.encode(s), tok.encode(s));
            assert_eq!(back.decode(&back.encode(s)), tok.decode(&tok.encode(s)));
        }
        // build() with a path loads instead of training.
        let cfg = TokenizerConfig {
            kind: TokenizerKind::Char,
            vocab_size: 512,
            path: Some(path.clone()),
        };
        let built = Tokenizer::build(&cfg, "xyz").unwrap();
        assert_eq!(built.encode(CORPUS), tok.encode(CORPUS));
    }
}

#[test]
fn load_errors_are_one_line_and_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let check = |path: &Path, want: &str| {
        let e = Tokenizer::load(path).unwrap_err().to_string();
        assert!(!e.contains('\n'), "{e}");
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains(want), "{e}");
    };
    check(&dir.path().join("missing.json"), "cannot read");
    let p = dir.path().join("notjson.json");
    std::fs::write(&p, "this is { not json").unwrap();
    check(&p, "is not JSON");
    let p = dir.path().join("other.json");
    std::fs::write(&p, r#"{"name": "a config", "n": 3}"#).unwrap();
    check(&p, "not a tokenizer");
    let p = dir.path().join("broken.json");
    std::fs::write(&p, r#"{"model": {"type": "Nope"}}"#).unwrap();
    check(&p, "not a valid tokenizer.json");
}

#[test]
fn bpe_vocab_too_small_is_an_error() {
    let cfg = TokenizerConfig {
        kind: TokenizerKind::Bpe,
        vocab_size: 100,
        path: None,
    };
    let e = Tokenizer::build(&cfg, CORPUS).unwrap_err().to_string();
    assert!(e.contains("too small"), "{e}");
}

#[test]
fn byte_table_is_a_bijection() {
    let alphabet = ByteLevel::alphabet();
    assert_eq!(alphabet.len(), 256);
    let mut bytes: Vec<u8> = alphabet.iter().filter_map(|&c| char_to_byte(c)).collect();
    bytes.sort_unstable();
    bytes.dedup();
    assert_eq!(bytes.len(), 256);
}

/// BPE trained on tinyshakespeare: the asked vocabulary, a lossless round
/// trip, and real compression. (How fast it trains and encodes is measured by
/// `cargo bench --bench tokenize`, not asserted here.)
#[test]
fn bpe_on_tinyshakespeare_compresses() {
    let test = "bpe_on_tinyshakespeare_compresses";
    let Some(p) = required::shared_data("tinyshakespeare.txt", test) else {
        return;
    };
    let text = std::fs::read_to_string(&p).unwrap();
    let tok = Tokenizer::train_bpe(&text, 512).unwrap();
    assert_eq!(tok.vocab_size(), 512);
    let sample = &text[..5000];
    assert_eq!(tok.decode(&tok.encode(sample)), sample);
    let n = tok.encode(sample).len();
    assert!(
        n * 10 < sample.len() * 7,
        "{n} tokens for {} bytes",
        sample.len()
    );
}

fn shared_bpe() -> &'static Tokenizer {
    static TOK: std::sync::OnceLock<Tokenizer> = std::sync::OnceLock::new();
    TOK.get_or_init(|| bpe_tok(320))
}

fn shared_char() -> &'static Tokenizer {
    static TOK: std::sync::OnceLock<Tokenizer> = std::sync::OnceLock::new();
    TOK.get_or_init(char_tok)
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn bpe_round_trip_pieces_and_stream(s in any::<String>()) {
            let tok = shared_bpe();
            let ids = tok.encode(&s);
            prop_assert_eq!(tok.decode(&ids), s.clone());
            prop_assert_eq!(tok.pieces(&s).concat(), s.clone());
            let (pushes, tail) = stream(tok, &ids);
            prop_assert!(tail.is_empty());
            let clean = pushes.iter().all(|p| !p.contains(char::REPLACEMENT_CHARACTER))
                || s.contains(char::REPLACEMENT_CHARACTER);
            prop_assert!(clean, "replacement char mid-stream: {:?}", pushes);
            prop_assert_eq!(pushes.concat(), s);
        }

        #[test]
        fn bpe_stream_equals_decode_for_any_ids(ids in proptest::collection::vec(0u32..320, 0..40)) {
            let tok = shared_bpe();
            let (pushes, tail) = stream(tok, &ids);
            prop_assert_eq!(pushes.concat() + &tail, tok.decode(&ids));
        }

        #[test]
        fn char_round_trip(idx in proptest::collection::vec(0usize..1000, 0..60)) {
            let tok = shared_char();
            let chars: Vec<char> = CORPUS.chars().collect();
            let s: String = idx.iter().map(|&i| chars[i % chars.len()]).collect();
            let ids = tok.encode(&s);
            prop_assert_eq!(ids.len(), s.chars().count());
            prop_assert_eq!(tok.decode(&ids), s.clone());
            prop_assert_eq!(tok.pieces(&s).concat(), s);
        }
    }
}
