//! The module graph of src/ has no cycle: a top-level module (src/app/,
//! src/tui.rs, ...) never imports, through any chain, a module that imports
//! it back. The same analysis as scripts/module_graph.py, run by cargo test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The source without comments (line and block), so that a doc comment
/// naming another module is not an import.
fn strip_comments(src: &str) -> String {
    let b = src.as_bytes();
    let (mut out, mut i) = (String::with_capacity(src.len()), 0);
    let mut in_str = false;
    while i < b.len() {
        if !in_str && b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if !in_str && b[i..].starts_with(b"/*") {
            while i < b.len() && !b[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else {
            if b[i] == b'"' && (i == 0 || b[i - 1] != b'\\') {
                in_str = !in_str;
            }
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Top-level modules named after `crate::`, including `crate::{a, b::c}`.
fn imports(src: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in src.match_indices("crate::") {
        let rest = &src[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let body = &group[..group.find('}').unwrap_or(group.len())];
            for item in body.split(',') {
                let name = ident(item.trim());
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let module = match rel.components().count() {
            1 => rel.file_stem().unwrap().to_string_lossy().into_owned(),
            _ => rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .into_owned(),
        };
        if module == "main" || module == "lib" {
            continue;
        }
        let text = strip_comments(&std::fs::read_to_string(&f).unwrap());
        let mut deps = imports(&text);
        deps.remove(&module);
        g.entry(module).or_default().extend(deps);
    }
    g
}

/// A path from `to` back to `from`, if there is one.
fn path_back(g: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> Option<Vec<String>> {
    let mut stack = vec![(to.to_string(), vec![to.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((m, path)) = stack.pop() {
        if m == from {
            return Some(path);
        }
        if !seen.insert(m.clone()) {
            continue;
        }
        for d in g.get(&m).into_iter().flatten() {
            let mut p = path.clone();
            p.push(d.clone());
            stack.push((d.clone(), p));
        }
    }
    None
}

#[test]
fn top_level_modules_have_no_import_cycle() {
    let g = graph();
    assert!(g.contains_key("app") && g.contains_key("ui") && g.contains_key("train"));
    let mut cycles = Vec::new();
    for (m, deps) in &g {
        for d in deps {
            if let Some(back) = path_back(&g, m, d) {
                cycles.push(format!("{m} -> {}", back.join(" -> ")));
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles: {cycles:#?}");
}

#[test]
fn the_layers_point_down() {
    let g = graph();
    let forbidden = [
        ("app", "ui"),
        ("app", "tui"),
        ("model", "train"),
        ("bench", "cli"),
        ("train", "app"),
        ("train", "ui"),
        ("data", "train"),
        ("config", "train"),
    ];
    for (a, b) in forbidden {
        assert!(
            !g.get(a).is_some_and(|d| d.contains(b)),
            "{a} imports {b}: the layers are cli -> tui/headless -> app <- ui, train -> model -> kernels"
        );
    }
}

#[test]
fn the_analysis_sees_imports_and_ignores_comments() {
    let src = "use crate::{app::X, ui};\n// crate::tui in a comment\nfn f() { crate::model::g() }";
    let got = imports(&strip_comments(src));
    let want: BTreeSet<String> = ["app", "ui", "model"].map(String::from).into();
    assert_eq!(got, want);
}
