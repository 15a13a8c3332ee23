//! Readers for the file sources: text, dir, jsonl, json and csv. Every error is
//! one line naming the file, the problem and what to do.

use super::{DataError, Dataset, Record};
use serde_json::Value;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Windows of a long text aim at this many bytes before cutting at a blank line...
const WINDOW_MIN: usize = 1024;
/// ...and never grow past this many (unless a single char is longer, impossible).
const WINDOW_MAX: usize = 2048;

/// One text file as a stream of windows of about 1–2 KB at line
/// (preferably paragraph) boundaries, read chunk by chunk (never whole); the
/// windows concatenate to the file exactly.
pub(super) fn text_records(path: &Path, counter: ReadCounter) -> Result<RecordStream, DataError> {
    let mut chunks = super::stream::TextChunks::open(path)?;
    let mut line = 1usize;
    let mut pending: std::collections::VecDeque<Record> = Default::default();
    let mut any = false;
    let path = path.to_path_buf();
    Ok(Box::new(std::iter::from_fn(move || loop {
        if let Some(r) = pending.pop_front() {
            return Some(Ok(r));
        }
        match chunks.next() {
            Some(Ok(c)) => {
                any = true;
                count(&counter, c.text.len() as u64);
                let (recs, next) = windows_from(&c.text, line);
                line = next;
                pending.extend(recs);
            }
            Some(Err(e)) => return Some(Err(e)),
            None if !any => {
                any = true;
                return Some(Err(DataError::file(
                    &path,
                    "is empty; give a file with some text",
                )));
            }
            None => return None,
        }
    })))
}

/// One text file, cut into windows of about 1–2 KB at line (preferably
/// paragraph) boundaries; the windows concatenate to the file exactly.
pub(super) fn load_text(path: &Path) -> Result<Dataset, DataError> {
    Ok(Dataset {
        source: format!("text {}", path.display()),
        records: text_records(path, Default::default())?.collect::<Result<_, _>>()?,
        contiguous: true,
        ..Dataset::default()
    })
}

/// Cuts `text` into consecutive windows titled by their line range.
#[cfg(test)]
pub(super) fn windows(text: &str) -> Vec<Record> {
    windows_from(text, 1).0
}

/// [`windows`] of a text whose first line is line `first`; also returns the
/// number of the line after it.
pub(super) fn windows_from(text: &str, first: usize) -> (Vec<Record>, usize) {
    let mut out = Vec::new();
    let mut chunk = String::new();
    let mut line_no = first; // line of the next piece
    let mut chunk_first = first;
    let mut chunk_last = first;
    let flush = |chunk: &mut String, first: usize, last: usize, out: &mut Vec<Record>| {
        if chunk.is_empty() {
            return;
        }
        let title = if first == last {
            format!("line {first}")
        } else {
            format!("lines {first}-{last}")
        };
        out.push(Record {
            title,
            text: std::mem::take(chunk),
        });
    };
    for line in text.split_inclusive('\n') {
        for piece in split_long(line, WINDOW_MAX) {
            if !chunk.is_empty() && chunk.len() + piece.len() > WINDOW_MAX {
                flush(&mut chunk, chunk_first, chunk_last, &mut out);
            }
            if chunk.is_empty() {
                chunk_first = line_no;
            }
            chunk.push_str(piece);
            chunk_last = line_no;
            if piece.ends_with('\n') {
                line_no += 1;
            }
            let blank = piece.trim().is_empty() && piece.ends_with('\n');
            if chunk.len() >= WINDOW_MAX || (chunk.len() >= WINDOW_MIN && blank) {
                flush(&mut chunk, chunk_first, chunk_last, &mut out);
            }
        }
    }
    flush(&mut chunk, chunk_first, chunk_last, &mut out);
    (out, line_no)
}

/// Splits `s` into pieces of at most `max` bytes at char boundaries.
fn split_long(s: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while rest.len() > max {
        let mut cut = max;
        while cut > 0 && !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if cut == 0 {
            break;
        }
        let (a, b) = rest.split_at(cut);
        out.push(a);
        rest = b;
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().starts_with('.')
}

/// Records one at a time, as a source yields them (the first error ends it).
pub type RecordStream = Box<dyn Iterator<Item = Result<Record, DataError>> + Send>;

/// Bytes of the source read so far (for progress), shared with the reader.
pub type ReadCounter = std::sync::Arc<std::sync::atomic::AtomicU64>;

fn count(c: &ReadCounter, n: u64) {
    c.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
}

/// A reader that adds what it reads to a [`ReadCounter`].
struct Counting<R> {
    inner: R,
    counter: ReadCounter,
}

impl<R: std::io::Read> std::io::Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        count(&self.counter, n as u64);
        Ok(n)
    }
}

/// Opens `path` for reading with the hints every source gives.
pub(super) fn open_file(path: &Path) -> Result<File, DataError> {
    let f = File::open(path).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::NotFound => "check data.path (or --data PATH)",
            std::io::ErrorKind::PermissionDenied => "check the file's permissions",
            _ => "check data.path",
        };
        DataError::file(path, format!("cannot read: {e}; {hint}"))
    })?;
    if f.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(DataError::file(
            path,
            "cannot read: it is a directory; use data.source = \"dir\"",
        ));
    }
    Ok(f)
}

/// Checks the start of a structured file (empty, binary) before it is
/// streamed, so that those errors read as for a text file.
fn check_start(path: &Path) -> Result<(), DataError> {
    use std::io::Read;
    let mut head = Vec::with_capacity(8192);
    open_file(path)?
        .take(8192)
        .read_to_end(&mut head)
        .map_err(|e| DataError::file(path, format!("cannot read: {e}; check the file")))?;
    if head.is_empty() {
        return Err(DataError::file(
            path,
            "is empty; give a file with some text",
        ));
    }
    if let Some(pos) = head.iter().position(|&b| b == 0) {
        return Err(DataError::file(
            path,
            format!(
                "looks like a binary file (NUL byte at byte offset {pos}); give a UTF-8 text file"
            ),
        ));
    }
    Ok(())
}

/// The files a `dir` source reads: every regular, non-hidden file under
/// `root`, recursively, sorted by path.
fn dir_files(root: &Path) -> Result<Vec<PathBuf>, DataError> {
    let meta = std::fs::metadata(root).map_err(|e| {
        DataError::file(
            root,
            format!("cannot read: {e}; check data.path (or --data PATH)"),
        )
    })?;
    if !meta.is_dir() {
        return Err(DataError::file(
            root,
            "is not a directory; use data.source = \"text\" for a single file",
        ));
    }
    let mut files = Vec::new();
    collect_files(root, &mut files)?;
    files.sort();
    Ok(files)
}

/// The text files under `root` as records (one file in memory at a time),
/// titled by their path under `root`; empty and binary files are skipped.
pub(super) fn dir_records(root: &Path, counter: ReadCounter) -> Result<RecordStream, DataError> {
    let files = dir_files(root)?;
    let n_files = files.len();
    let root = root.to_path_buf();
    let mut files = files.into_iter();
    let mut skipped = 0usize;
    let mut found = 0usize;
    let mut done = false;
    Ok(Box::new(std::iter::from_fn(move || {
        if done {
            return None;
        }
        for file in files.by_ref() {
            let bytes = match std::fs::read(&file) {
                Ok(b) => {
                    count(&counter, b.len() as u64);
                    b
                }
                Err(e) => {
                    done = true;
                    return Some(Err(DataError::file(
                        &file,
                        format!("cannot read: {e}; check the file's permissions"),
                    )));
                }
            };
            if bytes.is_empty() || bytes.contains(&0) {
                // Empty and binary files (images, archives...) are not text: skip them.
                skipped += 1;
                continue;
            }
            let text = match String::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => {
                    done = true;
                    return Some(Err(DataError::file(
                        &file,
                        format!(
                            "is not valid UTF-8 (byte offset {}); save it as UTF-8 or move it out of {}",
                            e.utf8_error().valid_up_to(),
                            root.display()
                        ),
                    )));
                }
            };
            let title = file
                .strip_prefix(&root)
                .unwrap_or(&file)
                .to_string_lossy()
                .into_owned();
            found += 1;
            return Some(Ok(Record { title, text }));
        }
        done = true;
        if found == 0 {
            let what = if n_files == 0 {
                "has no files (hidden files are ignored)".to_string()
            } else {
                format!("has no text files ({skipped} empty or binary files skipped)")
            };
            return Some(Err(DataError::file(
                &root,
                format!("directory {what}; put UTF-8 text files in it"),
            )));
        }
        None
    })))
}

/// Every regular, non-hidden text file under `root`, recursively, sorted by path.
pub(super) fn load_dir(root: &Path) -> Result<Dataset, DataError> {
    let files = dir_files(root)?;
    let records: Vec<Record> = dir_records(root, Default::default())?.collect::<Result<_, _>>()?;
    let mut source = format!("dir {} ({} files", root.display(), records.len());
    let skipped = files.len() - records.len();
    if skipped > 0 {
        source.push_str(&format!(", {skipped} empty or binary skipped"));
    }
    source.push(')');
    Ok(Dataset::from_records(source, records))
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        DataError::file(
            dir,
            format!("cannot list directory: {e}; check its permissions"),
        )
    })?;
    for entry in entries {
        let entry =
            entry.map_err(|e| DataError::file(dir, format!("cannot list directory: {e}")))?;
        if is_hidden(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        let ft = entry
            .file_type()
            .map_err(|e| DataError::file(&path, format!("cannot stat: {e}")))?;
        if ft.is_dir() {
            collect_files(&path, out)?;
        } else if ft.is_file() {
            out.push(path);
        } else if ft.is_symlink()
            && std::fs::metadata(&path)
                .map(|m| m.is_file())
                .unwrap_or(false)
        {
            // Symlinked files count; symlinked directories are not followed (no cycles).
            out.push(path);
        }
    }
    Ok(())
}

/// The title of a JSON object: its `title` (or `chapter`/`name`) string field.
fn object_title(map: &serde_json::Map<String, Value>) -> Option<String> {
    ["title", "chapter", "name"]
        .iter()
        .find_map(|k| match map.get(*k) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            _ => None,
        })
}

fn keys_of(map: &serde_json::Map<String, Value>) -> String {
    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
    if keys.is_empty() {
        "none".into()
    } else {
        keys.join(", ")
    }
}

/// Text of a JSON value used as a record's text: a string, or an array of
/// strings joined with "\n".
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_string) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        _ => None,
    }
}

/// The record of one JSONL line (`n` counts from 1), `None` for a blank line.
fn jsonl_line(path: &Path, line: &str, n: usize, field: &str) -> Result<Option<Record>, DataError> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let v: Value = serde_json::from_str(line).map_err(|e| {
        DataError::file(
            path,
            format!("line {n}: not JSON ({e}); each line must be one JSON object"),
        )
    })?;
    let Value::Object(map) = &v else {
        return Err(DataError::file(
            path,
            format!("line {n}: not a JSON object; each line must be one object like {{\"{field}\": \"...\"}}"),
        ));
    };
    let text = map.get(field).and_then(value_text).ok_or_else(|| {
        let problem = if map.contains_key(field) {
            format!("field `{field}` is not text")
        } else {
            format!("no field `{field}` (fields: {})", keys_of(map))
        };
        DataError::file(
            path,
            format!("line {n}: {problem}; set data.field to the text field"),
        )
    })?;
    let title = object_title(map).unwrap_or_else(|| format!("line {n}"));
    Ok(Some(Record { title, text }))
}

/// One JSON object per line, text in `field`, read line by line.
pub(super) fn jsonl_records(
    path: &Path,
    field: &str,
    counter: ReadCounter,
) -> Result<RecordStream, DataError> {
    check_start(path)?;
    let mut reader = BufReader::with_capacity(1 << 20, open_file(path)?);
    let path = path.to_path_buf();
    let field = field.to_string();
    let mut buf = Vec::new();
    let mut n = 0usize;
    let mut offset = 0u64;
    let mut any = false;
    let mut done = false;
    Ok(Box::new(std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut fail = |e: DataError| {
            done = true;
            Some(Err(e))
        };
        loop {
            buf.clear();
            let got = match reader.read_until(b'\n', &mut buf) {
                Ok(g) => g,
                Err(e) => {
                    return fail(DataError::file(
                        &path,
                        format!("cannot read: {e}; check the file"),
                    ))
                }
            };
            if got == 0 {
                done = true;
                if !any {
                    return Some(Err(DataError::file(
                        &path,
                        "has no JSON lines (only blank lines); give one object per line",
                    )));
                }
                return None;
            }
            n += 1;
            count(&counter, got as u64);
            let at = offset;
            offset += got as u64;
            if let Some(pos) = buf.iter().position(|&b| b == 0) {
                return fail(DataError::file(
                    &path,
                    format!("looks like a binary file (NUL byte at byte offset {}); give a UTF-8 text file", at + pos as u64),
                ));
            }
            let line = match std::str::from_utf8(&buf) {
                Ok(l) => l,
                Err(e) => {
                    return fail(DataError::file(
                        &path,
                        format!(
                        "is not valid UTF-8 (first bad byte at byte offset {}); save it as UTF-8",
                        at + e.valid_up_to() as u64
                    ),
                    ))
                }
            };
            match jsonl_line(&path, line.trim_end_matches(['\n', '\r']), n, &field) {
                Ok(Some(r)) => {
                    any = true;
                    return Some(Ok(r));
                }
                Ok(None) => continue,
                Err(e) => return fail(e),
            }
        }
    })))
}

/// One JSON object per line, text in `field`.
pub(super) fn load_jsonl(path: &Path, field: &str) -> Result<Dataset, DataError> {
    Ok(Dataset::from_records(
        format!("jsonl {} (field `{field}`)", path.display()),
        jsonl_records(path, field, Default::default())?.collect::<Result<_, _>>()?,
    ))
}

fn json_segs(json_path: &str) -> Vec<String> {
    json_path
        .split('.')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A JSON document's records along the dotted `json_path`, streamed: a
/// thread runs serde_json's deserializer over the file (arrays element by
/// element, objects key by key, only the innermost object that holds the
/// text read whole) and hands the records over a bounded channel. A
/// document is held whole only for an empty `json_path` and, when nothing
/// matched, to say why.
pub(super) fn json_records(
    path: &Path,
    json_path: &str,
    counter: ReadCounter,
) -> Result<RecordStream, DataError> {
    check_start(path)?;
    let file = open_file(path)?;
    let segs = json_segs(json_path);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Record, DataError>>(256);
    let p = path.to_path_buf();
    let s2 = segs.clone();
    std::thread::Builder::new()
        .name("json-records".into())
        .spawn(move || {
            let reader = BufReader::with_capacity(
                1 << 20,
                Counting {
                    inner: file,
                    counter,
                },
            );
            let mut de = serde_json::Deserializer::from_reader(reader);
            let mut index = Vec::new();
            let mut emit = |r: Record| tx.send(Ok(r)).is_ok();
            let walk = json_stream::Walk {
                segs: &s2,
                index: &mut index,
                out: &mut emit,
            };
            use serde::de::DeserializeSeed;
            let r = walk.deserialize(&mut de).and_then(|()| de.end());
            if let Err(e) = r {
                if e.to_string() != json_stream::STOPPED {
                    let _ = tx.send(Err(DataError::file(
                        &p,
                        format!("is not valid JSON ({e}); check the file"),
                    )));
                }
            }
        })
        .map_err(|e| DataError::file(path, format!("cannot start a reader thread: {e}")))?;
    let path = path.to_path_buf();
    let json_path = json_path.to_string();
    let mut any = false;
    let mut rx = rx.into_iter();
    let mut done = false;
    Ok(Box::new(std::iter::from_fn(move || {
        if done {
            return None;
        }
        match rx.next() {
            Some(Ok(r)) => {
                any = true;
                Some(Ok(r))
            }
            Some(Err(e)) => {
                done = true;
                Some(Err(e))
            }
            None => {
                done = true;
                if any {
                    return None;
                }
                let why = json_no_match(&path, &segs);
                Some(Err(DataError::file(
                    &path,
                    format!(
                        "json_path `{json_path}` matched no text; {why}; set data.json_path to the dotted path of the text (e.g. `paragraphs`)"
                    ),
                )))
            }
        }
    })))
}

/// Why `segs` matched nothing in the JSON file `path` (read whole, so only
/// for a file of at most 256 MB; a larger one gets a general hint).
fn json_no_match(path: &Path, segs: &[String]) -> String {
    let small = std::fs::metadata(path).is_ok_and(|m| m.len() <= 256 << 20);
    let doc = small
        .then(|| std::fs::read(path).ok())
        .flatten()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    match doc {
        Some(doc) => {
            let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
            diagnose_json(&doc, &segs)
        }
        None => "no string or array of strings is found along it".into(),
    }
}

/// A JSON document; records found along the dotted `json_path`.
pub(super) fn load_json(path: &Path, json_path: &str) -> Result<Dataset, DataError> {
    Ok(Dataset::from_records(
        format!("json {} (path `{json_path}`)", path.display()),
        json_records(path, json_path, Default::default())?.collect::<Result<_, _>>()?,
    ))
}

/// The JSON walk done by serde's visitors, for [`json_records`]: the same
/// records, titles and order as [`walk_json`] on the whole document.
mod json_stream {
    use super::{walk_json, Record};
    use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde_json::Value;
    use std::fmt;

    /// The error a walk returns when the consumer went away.
    pub const STOPPED: &str = "headsup: the reader stopped";

    pub struct Walk<'a> {
        pub segs: &'a [String],
        pub index: &'a mut Vec<usize>,
        pub out: &'a mut dyn FnMut(Record) -> bool,
    }

    fn emit<E: de::Error>(
        v: &Value,
        segs: &[String],
        index: &mut Vec<usize>,
        out: &mut dyn FnMut(Record) -> bool,
    ) -> Result<(), E> {
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let mut recs = Vec::new();
        walk_json(v, &segs, None, index, &mut recs);
        for r in recs {
            if !out(r) {
                return Err(E::custom(STOPPED));
            }
        }
        Ok(())
    }

    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            if self.segs.is_empty() {
                // The text itself (a string or an array of strings joined):
                // read whole.
                let v = <Value as de::Deserialize>::deserialize(d)?;
                return emit(&v, self.segs, self.index, self.out);
            }
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0;
            loop {
                self.index.push(i);
                let got = seq.next_element_seed(Walk {
                    segs: self.segs,
                    index: self.index,
                    out: self.out,
                })?;
                self.index.pop();
                if got.is_none() {
                    return Ok(());
                }
                i += 1;
            }
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            if self.segs.len() == 1 {
                // The object holding the text (and its title): read whole.
                let mut m = serde_json::Map::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    m.insert(k, v);
                }
                return emit(&Value::Object(m), self.segs, self.index, self.out);
            }
            while let Some(k) = map.next_key::<String>()? {
                if k == self.segs[0] {
                    map.next_value_seed(Walk {
                        segs: &self.segs[1..],
                        index: self.index,
                        out: self.out,
                    })?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(())
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_none<E: de::Error>(self) -> Result<(), E> {
            Ok(())
        }
    }
}

pub(super) fn walk_json(
    v: &Value,
    segs: &[&str],
    title: Option<&str>,
    index: &mut Vec<usize>,
    out: &mut Vec<Record>,
) {
    if segs.is_empty() {
        if let Some(text) = value_text(v) {
            let title = match title {
                Some(t) => t.to_string(),
                None if index.is_empty() => "#0".to_string(),
                None => format!(
                    "#{}",
                    index
                        .iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(".")
                ),
            };
            out.push(Record { title, text });
            return;
        }
    }
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                index.push(i);
                walk_json(item, segs, title, index, out);
                index.pop();
            }
        }
        Value::Object(map) => {
            if let Some((first, rest)) = segs.split_first() {
                if let Some(child) = map.get(*first) {
                    let own = if rest.is_empty() {
                        object_title(map)
                    } else {
                        None
                    };
                    walk_json(child, rest, own.as_deref().or(title), index, out);
                }
            }
        }
        _ => {}
    }
}

/// Says where `segs` stops matching, following the first element of arrays.
fn diagnose_json(doc: &Value, segs: &[&str]) -> String {
    let mut v = doc;
    let mut at = String::from("the top level");
    let mut i = 0;
    loop {
        match v {
            Value::Array(items) => match items.first() {
                Some(first) => v = first,
                None => return format!("{at} is an empty array"),
            },
            Value::Object(map) => {
                let Some(seg) = segs.get(i) else {
                    return format!("{at} is an object (keys: {}), not text", keys_of(map));
                };
                match map.get(*seg) {
                    Some(child) => {
                        at = format!("`{}`", segs[..=i].join("."));
                        v = child;
                        i += 1;
                    }
                    None => return format!("{at} has no key `{seg}` (keys: {})", keys_of(map)),
                }
            }
            other => {
                let kind = match other {
                    Value::Null => "null",
                    Value::Bool(_) => "a boolean",
                    Value::Number(_) => "a number",
                    Value::String(_) => "a string",
                    _ => "a value",
                };
                return if i < segs.len() {
                    format!("{at} is {kind}, so it has no key `{}`", segs[i])
                } else {
                    format!("{at} is {kind}, not text or an array of strings")
                };
            }
        }
    }
}

/// CSV with a header row; text in column `field`, read row by row.
pub(super) fn csv_records(
    path: &Path,
    field: &str,
    counter: ReadCounter,
) -> Result<RecordStream, DataError> {
    check_start(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(BufReader::with_capacity(
            1 << 20,
            Counting {
                inner: open_file(path)?,
                counter,
            },
        ));
    let headers = reader
        .headers()
        .map_err(|e| DataError::file(path, format!("cannot read the CSV header: {e}")))?
        .clone();
    let col = headers
        .iter()
        .position(|h| h.trim() == field)
        .ok_or_else(|| {
            let cols: Vec<&str> = headers.iter().collect();
            DataError::file(
                path,
                format!(
                    "has no column `{field}`; the columns are: {}; set data.field to one of them",
                    cols.join(", ")
                ),
            )
        })?;
    let title_col = headers
        .iter()
        .position(|h| h.trim() == "title")
        .filter(|&c| c != col);
    let path = path.to_path_buf();
    let mut rows = reader.into_records().enumerate();
    let mut any = false;
    let mut done = false;
    Ok(Box::new(std::iter::from_fn(move || {
        if done {
            return None;
        }
        let Some((i, row)) = rows.next() else {
            done = true;
            return (!any).then(|| {
                Err(DataError::file(
                    &path,
                    "has a header but no rows; add some data rows",
                ))
            });
        };
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                done = true;
                return Some(Err(DataError::file(
                    &path,
                    format!("CSV row {}: {e}; check the quoting and column count", i + 1),
                )));
            }
        };
        any = true;
        let line = row.position().map(|p| p.line()).unwrap_or(i as u64 + 2);
        let text = row.get(col).unwrap_or_default().to_string();
        let title = title_col
            .and_then(|c| row.get(c))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| format!("row {} (line {line})", i + 1));
        Some(Ok(Record { title, text }))
    })))
}

/// CSV with a header row; text in column `field`.
pub(super) fn load_csv(path: &Path, field: &str) -> Result<Dataset, DataError> {
    Ok(Dataset::from_records(
        format!("csv {} (column `{field}`)", path.display()),
        csv_records(path, field, Default::default())?.collect::<Result<_, _>>()?,
    ))
}
