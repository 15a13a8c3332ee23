//! Unit tests of the dataset readers (text, directories, JSONL, JSON, CSV,
//! synthetic tasks), their one-line errors, splits and statistics, and the
//! shared real corpora in `../shared/data`.

use super::*;
use crate::config::{DataConfig, SourceKind, SyntheticTask};
use std::path::{Path, PathBuf};

fn cfg(source: SourceKind, path: &Path) -> DataConfig {
    DataConfig {
        source,
        path: Some(path.to_path_buf()),
        ..DataConfig::default()
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, bytes).unwrap();
    p
}

fn err_of(r: Result<Dataset, DataError>) -> String {
    match r {
        Ok(d) => panic!("expected an error, got {} records", d.records.len()),
        Err(e) => {
            let s = e.to_string();
            assert!(!s.contains('\n'), "error must be one line: {s}");
            s
        }
    }
}

// The same file as tests/common/required.rs (one helper for every test).
#[allow(clippy::duplicate_mod)]
#[path = "../../tests/common/required.rs"]
mod required;
use required::shared_data;

#[test]
fn text_windows_reproduce_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..400 {
        text.push_str(&format!("line {i}: some words here, 漢字 and ü\n"));
        if i % 7 == 6 {
            text.push('\n');
        }
    }
    text.push_str("no trailing newline");
    let p = write(dir.path(), "a.txt", text.as_bytes());
    let ds = Dataset::load(&cfg(SourceKind::Text, &p), 0).unwrap();
    assert!(ds.records.len() > 5);
    assert_eq!(ds.corpus(), text);
    assert_eq!(ds.total_bytes(), text.len());
    for r in &ds.records {
        assert!(r.text.len() <= 2048, "window too big: {}", r.text.len());
        assert!(r.title.starts_with("line"), "{}", r.title);
    }
    for r in &ds.records[..ds.records.len() - 1] {
        assert!(
            r.text.len() >= 1024 - 64,
            "window too small: {}",
            r.text.len()
        );
        assert!(r.text.ends_with('\n'));
    }
    assert!(ds.records[0].title.starts_with("lines 1-"));
}

#[test]
fn text_with_one_huge_line_is_cut_at_char_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let text = "é漢".repeat(3000);
    let p = write(dir.path(), "a.txt", text.as_bytes());
    let ds = Dataset::load(&cfg(SourceKind::Text, &p), 0).unwrap();
    assert!(ds.records.len() > 3);
    assert_eq!(ds.corpus(), text);
    assert_eq!(ds.records[0].title, "line 1");
}

#[test]
fn small_text_is_one_record() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "a.txt", b"hello\nworld\n");
    let ds = Dataset::load(&cfg(SourceKind::Text, &p), 0).unwrap();
    assert_eq!(ds.records.len(), 1);
    assert_eq!(ds.records[0].title, "lines 1-2");
    assert_eq!(ds.corpus(), "hello\nworld\n");
}

#[test]
fn text_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.txt");
    let e = err_of(Dataset::load(&cfg(SourceKind::Text, &missing), 0));
    assert!(
        e.contains("missing.txt") && e.contains("cannot read"),
        "{e}"
    );

    let p = write(dir.path(), "empty.txt", b"");
    let e = err_of(Dataset::load(&cfg(SourceKind::Text, &p), 0));
    assert!(e.contains("empty.txt") && e.contains("is empty"), "{e}");

    let p = write(dir.path(), "bad.txt", b"abc\xff\xfedef");
    let e = err_of(Dataset::load(&cfg(SourceKind::Text, &p), 0));
    assert!(
        e.contains("bad.txt") && e.contains("UTF-8") && e.contains("byte offset 3"),
        "{e}"
    );

    let p = write(dir.path(), "bin.dat", b"ab\0cd");
    let e = err_of(Dataset::load(&cfg(SourceKind::Text, &p), 0));
    assert!(
        e.contains("bin.dat") && e.contains("binary") && e.contains("offset 2"),
        "{e}"
    );

    let e = err_of(Dataset::load(&cfg(SourceKind::Text, dir.path()), 0));
    assert!(e.contains("cannot read"), "{e}");

    let no_path = DataConfig {
        source: SourceKind::Text,
        path: None,
        ..DataConfig::default()
    };
    let e = err_of(Dataset::load(&no_path, 0));
    assert!(e.contains("data.path"), "{e}");
}

#[test]
fn dir_reads_text_files_sorted_skipping_hidden_and_binary() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "b.txt", b"bee");
    write(dir.path(), "a.txt", b"ay\n");
    write(dir.path(), "sub/c.md", b"sea");
    write(dir.path(), ".hidden", b"secret");
    write(dir.path(), ".git/config", b"secret");
    write(dir.path(), "img.png", b"\x89PNG\0\0");
    let ds = Dataset::load(&cfg(SourceKind::Dir, dir.path()), 0).unwrap();
    let titles: Vec<&str> = ds.records.iter().map(|r| r.title.as_str()).collect();
    let sub = format!("sub{}c.md", std::path::MAIN_SEPARATOR);
    assert_eq!(titles, vec!["a.txt", "b.txt", sub.as_str()]);
    assert_eq!(ds.corpus(), "ay\nbee\nsea\n");
}

#[test]
fn dir_errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = err_of(Dataset::load(&cfg(SourceKind::Dir, dir.path()), 0));
    assert!(e.contains("no files"), "{e}");

    write(dir.path(), "x.bin", b"\0\0");
    write(dir.path(), ".note", b"hidden");
    let e = err_of(Dataset::load(&cfg(SourceKind::Dir, dir.path()), 0));
    assert!(e.contains("no text files"), "{e}");

    write(dir.path(), "latin1.txt", b"caf\xe9");
    let e = err_of(Dataset::load(&cfg(SourceKind::Dir, dir.path()), 0));
    assert!(
        e.contains("latin1.txt") && e.contains("byte offset 3"),
        "{e}"
    );

    let f = write(dir.path(), "file.txt", b"x");
    let e = err_of(Dataset::load(&cfg(SourceKind::Dir, &f), 0));
    assert!(e.contains("not a directory"), "{e}");

    let e = err_of(Dataset::load(
        &cfg(SourceKind::Dir, &dir.path().join("nope")),
        0,
    ));
    assert!(e.contains("nope") && e.contains("cannot read"), "{e}");
}

#[test]
fn jsonl_reads_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "d.jsonl",
        "{\"text\": \"one\", \"title\": \"first\"}\n\n{\"text\": [\"two\", \"lines\"], \"n\": 2}\n"
            .as_bytes(),
    );
    let ds = Dataset::load(&cfg(SourceKind::Jsonl, &p), 0).unwrap();
    assert_eq!(ds.records.len(), 2);
    assert_eq!(ds.records[0].title, "first");
    assert_eq!(ds.records[1].title, "line 3");
    assert_eq!(ds.corpus(), "one\ntwo\nlines\n");
}

#[test]
fn jsonl_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "d.jsonl", b"{\"text\": \"ok\"}\n{not json\n");
    let e = err_of(Dataset::load(&cfg(SourceKind::Jsonl, &p), 0));
    assert!(
        e.contains("d.jsonl") && e.contains("line 2") && e.contains("not JSON"),
        "{e}"
    );

    let p = write(
        dir.path(),
        "f.jsonl",
        b"{\"text\": \"ok\"}\n{\"body\": \"x\", \"id\": 1}\n",
    );
    let e = err_of(Dataset::load(&cfg(SourceKind::Jsonl, &p), 0));
    assert!(
        e.contains("f.jsonl") && e.contains("line 2") && e.contains("`text`"),
        "{e}"
    );
    assert!(e.contains("body, id") || e.contains("id, body"), "{e}");

    let p = write(dir.path(), "g.jsonl", b"[1, 2]\n");
    let e = err_of(Dataset::load(&cfg(SourceKind::Jsonl, &p), 0));
    assert!(
        e.contains("line 1") && e.contains("not a JSON object"),
        "{e}"
    );
}

#[test]
fn json_nested_paths() {
    let dir = tempfile::tempdir().unwrap();
    let doc = r#"{"title": "book", "content": [
        {"type": "a", "content": [
            {"chapter": "c1", "paragraphs": ["x1", "y1"]},
            {"chapter": "c2", "paragraphs": ["x2"]}]},
        {"type": "b", "content": [
            {"paragraphs": ["x3", "y3"]}]}]}"#;
    let p = write(dir.path(), "n.json", doc.as_bytes());
    let mut c = cfg(SourceKind::Json, &p);
    c.json_path = "content.content.paragraphs".into();
    let ds = Dataset::load(&c, 0).unwrap();
    let titles: Vec<&str> = ds.records.iter().map(|r| r.title.as_str()).collect();
    assert_eq!(titles, vec!["c1", "c2", "#1.0"]);
    assert_eq!(ds.corpus(), "x1\ny1\nx2\nx3\ny3\n");

    let arr = r#"[{"title": "t0", "body": "zero"}, {"body": "one"}]"#;
    let p = write(dir.path(), "a.json", arr.as_bytes());
    let mut c = cfg(SourceKind::Json, &p);
    c.json_path = "body".into();
    let ds = Dataset::load(&c, 0).unwrap();
    let titles: Vec<&str> = ds.records.iter().map(|r| r.title.as_str()).collect();
    assert_eq!(titles, vec!["t0", "#1"]);
    // An empty json_path falls back to data.field.
    c.json_path = String::new();
    c.field = "body".into();
    assert_eq!(Dataset::load(&c, 0).unwrap().records.len(), 2);
}

#[test]
fn json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "x.json", br#"{"a": {"b": 3, "c": "s"}}"#);
    let mut c = cfg(SourceKind::Json, &p);
    c.json_path = "a.d".into();
    let e = err_of(Dataset::load(&c, 0));
    assert!(e.starts_with("data "), "{e}");
    assert!(e.contains("x.json: json_path `a.d` matched no text"), "{e}");
    assert!(e.contains("no key `d`") && e.contains("b, c"), "{e}");

    c.json_path = "a.b".into();
    let e = err_of(Dataset::load(&c, 0));
    assert!(e.contains("a number"), "{e}");

    let p = write(dir.path(), "bad.json", b"{\"a\": ");
    let mut c = cfg(SourceKind::Json, &p);
    c.json_path = "a".into();
    let e = err_of(Dataset::load(&c, 0));
    assert!(
        e.contains("bad.json") && e.contains("not valid JSON"),
        "{e}"
    );
}

#[test]
fn csv_reads_column() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "d.csv",
        b"id,text,title\n1,\"hello, world\",greeting\n2,\"multi\nline\",\n",
    );
    let ds = Dataset::load(&cfg(SourceKind::Csv, &p), 0).unwrap();
    assert_eq!(ds.records.len(), 2);
    assert_eq!(ds.records[0].title, "greeting");
    assert!(
        ds.records[1].title.starts_with("row 2"),
        "{}",
        ds.records[1].title
    );
    assert_eq!(ds.corpus(), "hello, world\nmulti\nline\n");
}

#[test]
fn csv_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "d.csv", b"id,body\n1,x\n");
    let e = err_of(Dataset::load(&cfg(SourceKind::Csv, &p), 0));
    assert!(
        e.contains("d.csv") && e.contains("no column `text`") && e.contains("id, body"),
        "{e}"
    );

    let p = write(dir.path(), "r.csv", b"id,text\n1,x\n2,y,z\n");
    let e = err_of(Dataset::load(&cfg(SourceKind::Csv, &p), 0));
    assert!(e.contains("r.csv") && e.contains("row 2"), "{e}");

    let p = write(dir.path(), "h.csv", b"id,text\n");
    let e = err_of(Dataset::load(&cfg(SourceKind::Csv, &p), 0));
    assert!(e.contains("no rows"), "{e}");
}

#[test]
fn synthetic_tasks() {
    for task in [
        SyntheticTask::Copy,
        SyntheticTask::Induction,
        SyntheticTask::Reverse,
        SyntheticTask::Addition,
    ] {
        let c = DataConfig {
            source: SourceKind::Synthetic,
            task,
            synthetic_records: 300,
            ..DataConfig::default()
        };
        let a = Dataset::load(&c, 7).unwrap();
        let b = Dataset::load(&c, 7).unwrap();
        let other = Dataset::load(&c, 8).unwrap();
        assert_eq!(a, b, "same seed, same data");
        assert_ne!(a.records, other.records);
        assert_eq!(a.records.len(), 300);
        for r in &a.records {
            let line = r.text.strip_suffix('\n').expect("ends with newline");
            assert!(!line.contains('\n'));
            match task {
                SyntheticTask::Copy => {
                    let (x, y) = line.split_once('|').unwrap();
                    assert_eq!(x, y);
                    assert_eq!(x.len(), crate::data::synthetic::COPY_LEN);
                }
                SyntheticTask::Induction => {
                    let (x, y) = line.split_once('|').unwrap();
                    assert_eq!(x, y);
                    assert!((4..=12).contains(&x.len()));
                    assert!(x.bytes().all(|b| b.is_ascii_lowercase()));
                }
                SyntheticTask::Reverse => {
                    let (x, y) = line.split_once('>').unwrap();
                    assert_eq!(x.chars().rev().collect::<String>(), y);
                    assert!(!x.is_empty());
                }
                SyntheticTask::Addition => {
                    let (lhs, sum) = line.split_once('=').unwrap();
                    let (x, y) = lhs.split_once('+').unwrap();
                    let (x, y, sum): (u32, u32, u32) =
                        (x.parse().unwrap(), y.parse().unwrap(), sum.parse().unwrap());
                    assert!(x < 1000 && y < 1000);
                    assert_eq!(x + y, sum);
                }
            }
        }
        assert_eq!(a.corpus().lines().count(), 300);
    }
    let none = DataConfig {
        source: SourceKind::Synthetic,
        synthetic_records: 0,
        ..DataConfig::default()
    };
    let e = err_of(Dataset::load(&none, 1));
    assert!(e.contains("synthetic_records"), "{e}");
}

#[test]
fn stats_and_histogram() {
    // Records of 2..=40 bytes ("é" is 2 bytes, 1 char).
    let recs = (1..=20)
        .map(|i| Record {
            title: format!("{i}"),
            text: "é".repeat(i),
        })
        .collect();
    let ds = Dataset::from_records("t", recs);
    let s = ds.stats(None, 0.9);
    assert_eq!(s.records, 20);
    assert_eq!(s.bytes, 420);
    // Without a tokenizer a token is a char, the vocabulary the distinct chars.
    assert_eq!(s.tokens, 210);
    assert!(!s.tokens_estimated);
    assert_eq!(s.vocab_size, 1);
    assert_eq!((s.train_tokens, s.val_tokens), (189, 21));
    assert_eq!(s.hist_max, 40);
    assert_eq!(s.length_hist.len(), HIST_BUCKETS);
    assert_eq!(s.length_hist.iter().sum::<u64>(), 20);
    // Bucket of a length l: l * 24 / 41. 2 bytes -> 1, 40 bytes -> 23.
    assert_eq!(s.length_hist[0], 0);
    assert_eq!(s.length_hist[1], 1);
    assert_eq!(s.length_hist[23], 1);

    let one = Dataset::from_records(
        "t",
        vec![Record {
            title: "a".into(),
            text: "abc".into(),
        }],
    )
    .stats(None, f64::NAN);
    assert_eq!((one.hist_max, one.vocab_size), (3, 3));
    // A non-finite fraction splits 0.9 / 0.1.
    assert_eq!((one.train_tokens, one.val_tokens), (3, 0));
    assert_eq!(one.length_hist[3 * HIST_BUCKETS / 4], 1);
    let empty = Dataset::from_records("t", vec![]).stats(None, 0.9);
    assert_eq!((empty.records, empty.bytes, empty.tokens), (0, 0, 0));
    assert!(empty.length_hist.iter().all(|&c| c == 0));
}

#[test]
fn stats_count_tokens_with_the_tokenizer() {
    let ds = Dataset::from_records(
        "t",
        vec![
            Record {
                title: "a".into(),
                text: "abab".into(),
            },
            Record {
                title: "b".into(),
                text: "ba".into(),
            },
        ],
    );
    let tok = crate::tokenizer::Tokenizer::train_char(&ds.corpus()).unwrap();
    let s = ds.stats(Some(&tok), 0.5);
    assert_eq!(s.tokens, 6);
    assert_eq!(s.vocab_size, tok.vocab_size());
    assert_eq!((s.train_tokens, s.val_tokens), (3, 3));
}

#[test]
fn token_split_fractions() {
    let s = TokenSplit::new((0..10).collect(), 0.9);
    assert_eq!(s.train.len(), 9);
    assert_eq!(s.val.to_vec(0..s.val.len()), vec![9]);
    let s = TokenSplit::new((0..10).collect(), f64::NAN);
    assert_eq!(s.train.len(), 10);
}

#[test]
fn tang300_nested_json() {
    let Some(p) = shared_data("tang300.json", "tang300_nested_json") else {
        return;
    };
    let mut c = cfg(SourceKind::Json, &p);
    c.json_path = "content.content.paragraphs".into();
    let ds = Dataset::load(&c, 0).unwrap();
    assert!(ds.records.len() >= 300, "{} poems", ds.records.len());
    assert_eq!(ds.records[0].title, "行宮");
    assert_eq!(
        ds.records[0].text,
        "寥落古行宮，宮花寂寞紅。\n白頭宮女在，閒坐說玄宗。"
    );
    let s = ds.stats(None, 0.9);
    assert!(s.vocab_size > 1000);
}

#[test]
fn poet_tang_array_json() {
    let Some(p) = shared_data("poet.tang.0.json", "poet_tang_array_json") else {
        return;
    };
    let mut c = cfg(SourceKind::Json, &p);
    c.json_path = "paragraphs".into();
    let ds = Dataset::load(&c, 0).unwrap();
    assert_eq!(ds.records.len(), 1000);
    assert_eq!(ds.records[0].title, "帝京篇十首 一");
    assert!(ds.records[0]
        .text
        .starts_with("秦川雄帝宅，函谷壯皇居。\n綺殿"));
}

/// The JSON reader streams (serde's visitors over a reader); the records,
/// titles and order are those of the walk over the whole document.
fn assert_streamed_json_as_whole(p: &Path, json_path: &str) -> usize {
    let mut c = cfg(SourceKind::Json, p);
    c.json_path = json_path.into();
    let ds = Dataset::load(&c, 0).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    let segs: Vec<&str> = json_path.split('.').filter(|s| !s.is_empty()).collect();
    let mut want = Vec::new();
    sources::walk_json(&doc, &segs, None, &mut Vec::new(), &mut want);
    assert_eq!(ds.records, want, "{}", p.display());
    want.len()
}

#[test]
fn json_streamed_as_the_whole_document_walk() {
    let dir = tempfile::tempdir().unwrap();
    let doc = r#"{"x": {"n": [1, 2.5, null, true]}, "a": [
        {"b": {"title": "one", "c": ["l1", "l2"]}},
        {"b": [{"c": "two", "name": "t2"}, {"c": 3}, {"d": "no"}]},
        [[{"b": {"c": "deep", "chapter": "ch"}}]],
        {"b": {"c": ["x"], "title": "   "}}
    ], "a2": "ignored"}"#;
    let p = write(dir.path(), "n.json", doc.as_bytes());
    assert_eq!(assert_streamed_json_as_whole(&p, "a.b.c"), 4);
    assert_eq!(assert_streamed_json_as_whole(&p, "a2"), 1);
    for (name, path) in [
        ("poet.tang.0.json", "paragraphs"),
        ("tang300.json", "content.content.paragraphs"),
    ] {
        let Some(p) = shared_data(name, "json_streamed_as_the_whole_document_walk") else {
            return;
        };
        assert!(assert_streamed_json_as_whole(&p, path) >= 300);
    }
}

#[test]
fn tinyshakespeare_text_roundtrip() {
    let Some(p) = shared_data("tinyshakespeare.txt", "tinyshakespeare_text_roundtrip") else {
        return;
    };
    let ds = Dataset::load(&cfg(SourceKind::Text, &p), 0).unwrap();
    let raw = std::fs::read_to_string(&p).unwrap();
    assert_eq!(ds.corpus(), raw);
    assert!(ds.records.len() > 500);
}

mod props {
    use super::super::sources::windows;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(100))]

        #[test]
        fn windows_concatenate_to_the_text(
            lines in proptest::collection::vec("[a-zé漢 ]{0,300}", 0..40),
            long in "[a-zé漢🦀]{0,3000}",
        ) {
            let mut text = lines.join("\n");
            text.push_str(&long);
            let recs = windows(&text);
            let joined: String = recs.iter().map(|r| r.text.as_str()).collect();
            prop_assert_eq!(joined, text);
            prop_assert!(recs.iter().all(|r| !r.text.is_empty() && r.text.len() <= 2048));
        }
    }
}
