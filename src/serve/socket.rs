//! Where a run's Unix socket lives and who may use it: `RUN/headsup.sock`,
//! mode 0600, inside a directory only its owner can enter; a fallback under
//! `$XDG_RUNTIME_DIR/headsup/` or `/tmp/headsup-UID/` (recorded in
//! `RUN/headsup.sock.path`) when the run's path is too long for a socket
//! address; stale sockets left by a killed process replaced, live ones never
//! stolen; the peer's uid checked with SO_PEERCRED.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// The socket's name inside the run directory.
pub const SOCKET_NAME: &str = "headsup.sock";
/// The file in the run directory naming the socket when it lives elsewhere.
pub const SOCKET_RECORD: &str = "headsup.sock.path";
/// Longest path a socket address holds (`sun_path` is 108 bytes with its NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// This process's user id.
pub fn own_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// The user id of the process at the other end of a connected socket.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: the fd is a live socket owned by `stream`; `cred` and `len`
    // are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// The user id of the process at the other end of a connected socket.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    use std::os::fd::AsRawFd;
    let (mut uid, mut gid) = (0, 0);
    // SAFETY: the fd is a live socket; uid and gid are valid for writes.
    if unsafe { libc::getpeereid(stream.as_raw_fd(), &mut uid, &mut gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(uid)
}

/// Accepts a peer only when it runs as the same user as this process.
pub fn check_peer(peer: u32, own: u32) -> Result<(), String> {
    if peer == own {
        Ok(())
    } else {
        Err(format!(
            "refused: this run belongs to uid {own} and you are uid {peer}; attach as the user who started it"
        ))
    }
}

/// Makes `dir` a directory only its owner can enter: it must belong to this
/// user and not be a symbolic link; group and other permissions are removed.
pub fn make_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let md = std::fs::symlink_metadata(dir)?;
    let err = |m: String| io::Error::new(io::ErrorKind::PermissionDenied, m);
    if !md.is_dir() {
        return Err(err(format!(
            "{} is not a directory (a symbolic link?); remove it",
            dir.display()
        )));
    }
    if md.uid() != own_uid() {
        return Err(err(format!(
            "{} belongs to uid {}, not to you (uid {}); use a directory of your own",
            dir.display(),
            md.uid(),
            own_uid()
        )));
    }
    let mode = md.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

/// A short stable name for a run directory (FNV-1a of its absolute path).
fn path_hash(p: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in p.as_os_str().as_bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn path_len(p: &Path) -> usize {
    use std::os::unix::ffi::OsStrExt;
    p.as_os_str().as_bytes().len()
}

/// The owner-only directory for sockets whose run path is too long.
fn fallback_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty() && Path::new(d).is_dir()) {
        Some(d) => PathBuf::from(d).join("headsup"),
        None => PathBuf::from(format!("/tmp/headsup-{}", own_uid())),
    }
}

/// Chooses the socket path for serving `run` and prepares its directory:
/// `RUN/headsup.sock` when it fits a socket address (the run directory is
/// made owner-only), else a short name in the fallback directory, recorded
/// in `RUN/headsup.sock.path` for clients.
pub fn server_path(run: &Path) -> io::Result<PathBuf> {
    let run = std::path::absolute(run)?;
    let direct = run.join(SOCKET_NAME);
    let record = run.join(SOCKET_RECORD);
    if path_len(&direct) <= MAX_SOCKET_PATH {
        make_private_dir(&run)?;
        if record.exists() {
            std::fs::remove_file(&record)?;
        }
        return Ok(direct);
    }
    let dir = fallback_dir();
    make_private_dir(&dir)?;
    let path = dir.join(format!("{:016x}.sock", path_hash(&run)));
    if path_len(&path) > MAX_SOCKET_PATH {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "socket path {} is longer than {MAX_SOCKET_PATH} bytes; set XDG_RUNTIME_DIR to a short directory",
                path.display()
            ),
        ));
    }
    crate::fsutil::atomic_write(&record, path.as_os_str().as_encoded_bytes())?;
    Ok(path)
}

/// The socket a client should connect to for `run`.
pub fn client_path(run: &Path) -> PathBuf {
    match std::fs::read_to_string(run.join(SOCKET_RECORD)) {
        Ok(p) if !p.trim().is_empty() => PathBuf::from(p.trim()),
        _ => run.join(SOCKET_NAME),
    }
}

/// Whether a process listens on `path` now.
pub fn is_live(path: &Path) -> bool {
    UnixStream::connect(path).is_ok()
}

/// Binds a listening socket at `path` with mode 0600. A socket file left by
/// a process that is gone (nothing accepts on it) is replaced; one a live
/// process listens on is not.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(md) = std::fs::symlink_metadata(path) {
        if !md.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket; move it away",
                    path.display()
                ),
            ));
        }
        match UnixStream::connect(path) {
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "{} is served by another live process; attach to it instead of starting a second trainer on the same run",
                        path.display()
                    ),
                ))
            }
            Err(_) => std::fs::remove_file(path)?,
        }
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_uid_is_accepted() {
        assert!(check_peer(1000, 1000).is_ok());
        let e = check_peer(65534, 1000).unwrap_err();
        assert!(e.contains("uid 1000") && e.contains("uid 65534"), "{e}");
        assert!(check_peer(0, 1000).is_err());
    }

    #[test]
    fn peer_uid_of_a_local_pair_is_our_own() {
        let (a, _b) = UnixStream::pair().unwrap();
        assert_eq!(peer_uid(&a).unwrap(), own_uid());
    }

    #[test]
    fn short_run_path_gets_its_socket_inside_an_owner_only_dir() {
        let t = tempfile::tempdir().unwrap();
        let run = t.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = server_path(&run).unwrap();
        assert_eq!(p, std::path::absolute(run.join(SOCKET_NAME)).unwrap());
        let mode = std::fs::metadata(&run).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let l = bind(&p).unwrap();
        let mode = std::fs::symlink_metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(client_path(&run), run.join(SOCKET_NAME));
        drop(l);
    }

    #[test]
    fn long_run_path_falls_back_to_a_short_recorded_socket() {
        let t = tempfile::tempdir().unwrap();
        let run = t.path().join("r".repeat(60)).join("s".repeat(60));
        std::fs::create_dir_all(&run).unwrap();
        let p = server_path(&run).unwrap();
        assert!(path_len(&p) <= MAX_SOCKET_PATH, "{}", p.display());
        assert!(!p.starts_with(&run));
        assert_eq!(client_path(&run), p);
        let dir = p.parent().unwrap();
        let mode = std::fs::metadata(dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{}", dir.display());
        let _l = bind(&p).unwrap();
        assert!(is_live(&client_path(&run)));
    }

    #[test]
    fn stale_socket_is_replaced_and_a_live_one_is_not_stolen() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("x.sock");
        let live = bind(&p).unwrap();
        let e = bind(&p).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
        assert!(e.to_string().contains("another live process"), "{e}");
        // Dropping a listener leaves the file behind, as a SIGKILL does.
        drop(live);
        assert!(p.exists());
        assert!(!is_live(&p));
        let again = bind(&p).unwrap();
        assert!(is_live(&p));
        drop(again);
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, b"not a socket").unwrap();
        let e = bind(&p).unwrap_err();
        assert!(e.to_string().contains("is not a socket"), "{e}");
    }
}
