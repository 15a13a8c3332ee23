//! Readers for the file sources: text, dir, jsonl, json and csv. Every error is
//! one line naming the file, the problem and what to do.

use super::{DataError, Dataset, Record};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Windows of a long text aim at this many bytes before cutting at a blank line...
const WINDOW_MIN: usize = 1024;
/// ...and never grow past this many (unless a single char is longer, impossible).
const WINDOW_MAX: usize = 2048;

/// Why a file's bytes are not usable text, if they are not.
fn text_problem(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() {
        return Some("is empty; give a file with some text".into());
    }
    if let Some(pos) = bytes.iter().position(|&b| b == 0) {
        return Some(format!(
            "looks like a binary file (NUL byte at byte offset {pos}); give a UTF-8 text file"
        ));
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        return Some(format!(
            "is not valid UTF-8 (first bad byte at byte offset {}); save it as UTF-8",
            e.valid_up_to()
        ));
    }
    None
}

/// Reads a whole file as UTF-8 text with the checks every source shares.
pub(super) fn read_text_file(path: &Path) -> Result<String, DataError> {
    let bytes = std::fs::read(path).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::NotFound => "check data.path (or --data PATH)",
            std::io::ErrorKind::PermissionDenied => "check the file's permissions",
            _ if path.is_dir() => "it is a directory; use data.source = \"dir\"",
            _ => "check data.path",
        };
        DataError::file(path, format!("cannot read: {e}; {hint}"))
    })?;
    if let Some(problem) = text_problem(&bytes) {
        return Err(DataError::file(path, problem));
    }
    String::from_utf8(bytes).map_err(|e| {
        DataError::file(
            path,
            format!(
                "is not valid UTF-8 (byte offset {}); save it as UTF-8",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// One text file, cut into windows of about 1–2 KB at line (preferably
/// paragraph) boundaries; the windows concatenate to the file exactly.
pub(super) fn load_text(path: &Path) -> Result<Dataset, DataError> {
    let text = read_text_file(path)?;
    Ok(Dataset {
        source: format!("text {}", path.display()),
        records: windows(&text),
        contiguous: true,
    })
}

/// Cuts `text` into consecutive windows titled by their line range.
pub(super) fn windows(text: &str) -> Vec<Record> {
    let mut out = Vec::new();
    let mut chunk = String::new();
    let mut line_no = 1usize; // line of the next piece
    let mut chunk_first = 1usize;
    let mut chunk_last = 1usize;
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
    out
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

/// Every regular, non-hidden text file under `root`, recursively, sorted by path.
pub(super) fn load_dir(root: &Path) -> Result<Dataset, DataError> {
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
    let mut records = Vec::new();
    let mut skipped = 0usize;
    for file in &files {
        let bytes = std::fs::read(file).map_err(|e| {
            DataError::file(
                file,
                format!("cannot read: {e}; check the file's permissions"),
            )
        })?;
        if bytes.is_empty() || bytes.contains(&0) {
            // Empty and binary files (images, archives...) are not text: skip them.
            skipped += 1;
            continue;
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            DataError::file(
                file,
                format!(
                    "is not valid UTF-8 (byte offset {}); save it as UTF-8 or move it out of {}",
                    e.utf8_error().valid_up_to(),
                    root.display()
                ),
            )
        })?;
        let title = file
            .strip_prefix(root)
            .unwrap_or(file)
            .to_string_lossy()
            .into_owned();
        records.push(Record { title, text });
    }
    if records.is_empty() {
        let what = if files.is_empty() {
            "has no files (hidden files are ignored)".to_string()
        } else {
            format!("has no text files ({skipped} empty or binary files skipped)")
        };
        return Err(DataError::file(
            root,
            format!("directory {what}; put UTF-8 text files in it"),
        ));
    }
    let mut source = format!("dir {} ({} files", root.display(), records.len());
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

/// One JSON object per line, text in `field`.
pub(super) fn load_jsonl(path: &Path, field: &str) -> Result<Dataset, DataError> {
    let text = read_text_file(path)?;
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
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
        records.push(Record { title, text });
    }
    if records.is_empty() {
        return Err(DataError::file(
            path,
            "has no JSON lines (only blank lines); give one object per line",
        ));
    }
    Ok(Dataset::from_records(
        format!("jsonl {} (field `{field}`)", path.display()),
        records,
    ))
}

/// A JSON document; records found along the dotted `json_path`.
pub(super) fn load_json(path: &Path, json_path: &str) -> Result<Dataset, DataError> {
    let text = read_text_file(path)?;
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| DataError::file(path, format!("is not valid JSON ({e}); check the file")))?;
    let segs: Vec<&str> = json_path
        .split('.')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut records = Vec::new();
    walk_json(&doc, &segs, None, &mut Vec::new(), &mut records);
    if records.is_empty() {
        return Err(DataError::file(
            path,
            format!(
                "json_path `{json_path}` matched no text; {}; set data.json_path to the dotted path of the text (e.g. `paragraphs`)",
                diagnose_json(&doc, &segs)
            ),
        ));
    }
    Ok(Dataset::from_records(
        format!("json {} (path `{json_path}`)", path.display()),
        records,
    ))
}

fn walk_json(
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

/// CSV with a header row; text in column `field`.
pub(super) fn load_csv(path: &Path, field: &str) -> Result<Dataset, DataError> {
    let text = read_text_file(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
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
    let mut records = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(|e| {
            DataError::file(
                path,
                format!("CSV row {}: {e}; check the quoting and column count", i + 1),
            )
        })?;
        let line = row.position().map(|p| p.line()).unwrap_or(i as u64 + 2);
        let text = row.get(col).unwrap_or_default().to_string();
        let title = title_col
            .and_then(|c| row.get(c))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| format!("row {} (line {line})", i + 1));
        records.push(Record { title, text });
    }
    if records.is_empty() {
        return Err(DataError::file(
            path,
            "has a header but no rows; add some data rows",
        ));
    }
    Ok(Dataset::from_records(
        format!("csv {} (column `{field}`)", path.display()),
        records,
    ))
}
