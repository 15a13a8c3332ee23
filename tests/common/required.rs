//! Inputs a test needs from outside the repository (`../shared/data`, tmux):
//! the one place that decides what happens when one is missing. Outside CI
//! the test prints a note and is skipped; under `CI=true` it fails, naming
//! the missing file or program, so a missing input never turns into a green
//! run. Used by the integration tests (through `tests/common` and
//! `tests/tmux_support`) and, by `#[path]`, by the library's unit tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// True when the environment says this is a CI run (`CI=true`, as GitHub
/// Actions, GitLab and `.ci/run` set it; `CI=1` too).
pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v.eq_ignore_ascii_case("true") || v == "1")
        .unwrap_or(false)
}

/// Reports that `missing` (a path or a program) is absent, which `test`
/// needs: under CI this panics (the test fails, naming it and `fix`);
/// otherwise it prints a note on stderr and the caller skips.
pub fn absent(missing: &str, test: &str, fix: &str) {
    if in_ci() {
        panic!("{missing} is missing, and {test} needs it (CI=true: not skipped); {fix}");
    }
    eprintln!("note: {missing} is missing; skipping {test} ({fix}; under CI=true this fails)");
}

/// The data directory shared beside the repository (`../shared/data`).
pub fn shared_data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
}

/// The file `name` in `../shared/data`, or `None` after a note when it is
/// absent (a failure under CI, naming the file).
pub fn shared_data(name: &str, test: &str) -> Option<PathBuf> {
    let p = shared_data_dir().join(name);
    if p.exists() {
        return Some(p);
    }
    absent(
        &p.display().to_string(),
        test,
        "put the shared data directory beside the repository (../shared/data)",
    );
    None
}

/// True when `program` runs (`program version_flag` exits 0); otherwise
/// `false` after a note (a failure under CI, naming the program).
pub fn program(program: &str, version_flag: &str, test: &str) -> bool {
    let ok = Command::new(program)
        .arg(version_flag)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        absent(
            &format!("the program `{program}`"),
            test,
            &format!("install it (e.g. apt-get install {program})"),
        );
    }
    ok
}
