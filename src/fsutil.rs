//! Crash-safe file writing: temporary file in the same directory, fsync, rename,
//! fsync of the directory. A reader never sees a half-written file. Also the
//! free space of a filesystem, and a fault-injecting hook for the tests that
//! cannot mount a small filesystem (`HEADSUP_FAULT_DISK`).

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    fault::check(path, bytes.len() as u64)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    sync_dir(dir);
    Ok(())
}

/// fsyncs a directory so that a rename in it is durable (best effort).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Bytes available to this user on the filesystem holding `path`, when the
/// platform says (Linux); `None` elsewhere or when it cannot be asked.
pub fn free_space(path: &Path) -> Option<u64> {
    let real = statvfs_available(path);
    match fault::free(path) {
        Some(sim) => Some(real.map_or(sim, |r| r.min(sim))),
        None => real,
    }
}

/// Appends `bytes` to an open file at `path` (the metrics log).
pub fn append(file: &mut File, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    fault::check(path, bytes.len() as u64)?;
    file.write_all(bytes)?;
    file.flush()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn statvfs_available(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `st` points to writable
    // memory of the right size; statvfs fills it when it returns 0.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it initialised `st`.
    let st = unsafe { st.assume_init() };
    // Both are u64 on 64-bit glibc and narrower on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    let (blocks, size) = (u64::from(st.f_bavail), u64::from(st.f_frsize));
    Some(blocks.saturating_mul(size))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn statvfs_available(_: &Path) -> Option<u64> {
    None
}

/// Bytes of the files under `dir` (recursively; 0 when unreadable).
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

/// `1.3 MB`, `412.0 kB`, `17 B` (decimal units, as `df -H`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1000.0;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Checks that `dir` can be written: creates, syncs and removes a small
/// probe file there. The error is the operating system's (permissions, a
/// read-only mount, no space).
pub fn probe_writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".headsup-write-probe{}", std::process::id()));
    fault::check(&probe, 5)?;
    let result = File::create(&probe).and_then(|mut f| {
        f.write_all(b"probe")?;
        f.sync_all()
    });
    let _ = fs::remove_file(&probe);
    result
}

/// The fault-injecting hook, for tests on machines where a small filesystem
/// cannot be mounted: `HEADSUP_FAULT_DISK=DIR=BYTES` makes everything under
/// DIR behave as a filesystem of BYTES (a write that would take the files
/// under DIR past it fails with ENOSPC, and the free space says so);
/// `HEADSUP_FAULT_DISK=DIR=ro` makes DIR read-only (EROFS). It acts on the
/// same calls as a real filesystem would: `atomic_write`, `append`,
/// `probe_writable` and `free_space`.
mod fault {
    use std::path::{Path, PathBuf};
    use std::sync::OnceLock;

    enum Limit {
        Bytes(u64),
        ReadOnly,
    }

    fn config() -> Option<&'static (PathBuf, Limit)> {
        static CONFIG: OnceLock<Option<(PathBuf, Limit)>> = OnceLock::new();
        CONFIG
            .get_or_init(|| {
                let v = std::env::var("HEADSUP_FAULT_DISK").ok()?;
                let (dir, limit) = v.rsplit_once('=')?;
                let limit = match limit {
                    "ro" => Limit::ReadOnly,
                    n => Limit::Bytes(n.parse().ok()?),
                };
                let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| PathBuf::from(dir));
                Some((dir, limit))
            })
            .as_ref()
    }

    /// The hook's directory and limit when `path` lies under it.
    fn applies(path: &Path) -> Option<&'static (PathBuf, Limit)> {
        let c = config()?;
        let abs = std::path::absolute(path).ok()?;
        // Compare through the nearest existing ancestor (symlinks resolved).
        let mut base = abs.as_path();
        let mut rest = Vec::new();
        while !base.exists() {
            rest.push(base.file_name()?.to_owned());
            base = base.parent()?;
        }
        let mut full = std::fs::canonicalize(base).ok()?;
        full.extend(rest.iter().rev());
        full.starts_with(&c.0).then_some(c)
    }

    pub fn check(path: &Path, len: u64) -> std::io::Result<()> {
        match applies(path) {
            Some((_, Limit::ReadOnly)) => Err(std::io::Error::from_raw_os_error(30)),
            Some((dir, Limit::Bytes(cap))) if super::dir_size(dir) + len > *cap => {
                Err(std::io::Error::from_raw_os_error(28))
            }
            _ => Ok(()),
        }
    }

    pub fn free(path: &Path) -> Option<u64> {
        match applies(path)? {
            (_, Limit::ReadOnly) => Some(0),
            (dir, Limit::Bytes(cap)) => Some(cap.saturating_sub(super::dir_size(dir))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_reads_as_df_does() {
        assert_eq!(human_bytes(17), "17 B");
        assert_eq!(human_bytes(412_000), "412.0 kB");
        assert_eq!(human_bytes(1_300_000), "1.3 MB");
        assert_eq!(human_bytes(1_100_000_000), "1.1 GB");
    }

    #[test]
    fn free_space_and_sizes_of_a_real_directory() {
        let d = tempfile::tempdir().unwrap();
        atomic_write(&d.path().join("a/b.bin"), &[0u8; 1234]).unwrap();
        assert_eq!(dir_size(d.path()), 1234);
        probe_writable(d.path()).unwrap();
        assert_eq!(
            fs::read_dir(d.path()).unwrap().count(),
            1,
            "probe left behind"
        );
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            assert!(free_space(d.path()).is_some_and(|b| b > 0));
        }
    }
}
