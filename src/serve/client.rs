//! A viewer's end of a run's socket: connect (checking that the trainer runs
//! as the same user), say hello, receive the welcome snapshot, then commands
//! out through a `Sender` and server messages in through a `Receiver`, the
//! same shapes as the in-process channel to a trainer thread.

use super::protocol::{
    encode, parse_msg, read_frame, ClientMsg, ErrorCode, Frame, ServerMsg, MAX_SERVER_FRAME,
    PROTOCOL_VERSION, SERVER_TYPES,
};
use super::socket;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

/// What a viewer receives after the welcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming<E, S> {
    Event(E),
    /// The viewer fell behind; redraw from this snapshot.
    Resync {
        snapshot: S,
        dropped: u64,
    },
    /// An error reply to something this viewer sent.
    Error {
        code: ErrorCode,
        message: String,
    },
    /// The connection ended; the reason as one line.
    Closed(String),
}

/// A connected viewer.
pub struct Connection<C, E, S> {
    /// The snapshot sent on welcome.
    pub snapshot: S,
    /// The trainer's process id.
    pub pid: u32,
    pub commands: Sender<C>,
    pub incoming: Receiver<Incoming<E, S>>,
}

/// Why a viewer could not attach; the message is one line saying what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AttachError(pub String);

/// Connects to the trainer serving `run`; `client` names the viewer in the
/// trainer's log.
pub fn connect<C, E, S>(
    run: &Path,
    client: &str,
    timeout: Duration,
) -> Result<Connection<C, E, S>, AttachError>
where
    C: Serialize + Send + 'static,
    E: DeserializeOwned + Send + 'static,
    S: DeserializeOwned + Send + 'static,
{
    let path = socket::client_path(run);
    let r = run.display();
    let stream = UnixStream::connect(&path).map_err(|e| {
        AttachError(match e.kind() {
            std::io::ErrorKind::NotFound => format!(
                "run {r}: no trainer is serving it (no {}); `headsup watch {r}` shows it from disk",
                path.display()
            ),
            std::io::ErrorKind::ConnectionRefused => format!(
                "run {r}: its trainer is gone (a stale socket); `headsup watch {r}` shows it, `headsup train --resume {r}` continues it"
            ),
            std::io::ErrorKind::PermissionDenied => format!(
                "run {r}: permission denied on {}; attach as the user who started the run",
                path.display()
            ),
            _ => format!("run {r}: cannot connect to {}: {e}", path.display()),
        })
    })?;
    match socket::peer_uid(&stream) {
        Ok(uid) if uid == socket::own_uid() => {}
        Ok(uid) => {
            return Err(AttachError(format!(
                "run {r}: the process on {} runs as uid {uid}, not as you; not attaching",
                path.display()
            )))
        }
        Err(e) => return Err(AttachError(format!("run {r}: {e}"))),
    }
    let mut w = stream
        .try_clone()
        .map_err(|e| AttachError(format!("run {r}: {e}")))?;
    let hello = ClientMsg::<()>::Hello {
        protocol: PROTOCOL_VERSION,
        client: client.to_string(),
    };
    let io = |e: std::io::Error| AttachError(format!("run {r}: the trainer hung up: {e}"));
    w.write_all(&encode(&hello).map_err(|e| AttachError(e.to_string()))?)
        .map_err(io)?;
    let _ = stream.set_read_timeout(Some(timeout));
    let mut reader = BufReader::new(stream);
    let first = match read_frame(&mut reader, MAX_SERVER_FRAME).map_err(io)? {
        Frame::Line(l) => parse_msg::<ServerMsg<serde::de::IgnoredAny, S>>(&l, SERVER_TYPES)
            .map_err(|e| AttachError(format!("run {r}: bad welcome: {}", e.message)))?,
        _ => {
            return Err(AttachError(format!(
                "run {r}: the trainer closed the connection before its welcome"
            )))
        }
    };
    let (snapshot, pid) = match first {
        ServerMsg::Welcome {
            protocol,
            snapshot,
            pid,
            ..
        } if protocol == PROTOCOL_VERSION => (snapshot, pid),
        ServerMsg::Welcome { protocol, .. } => {
            return Err(AttachError(format!(
                "run {r}: the trainer speaks protocol {protocol}, this viewer {PROTOCOL_VERSION}; use the same headsup version"
            )))
        }
        ServerMsg::Error { message, .. } | ServerMsg::Bye { reason: message } => {
            return Err(AttachError(format!(
                "run {r}: {}",
                crate::sanitize::escape(&message)
            )))
        }
        _ => {
            return Err(AttachError(format!(
                "run {r}: the trainer did not start with a welcome"
            )))
        }
    };
    let _ = reader.get_ref().set_read_timeout(None);
    let (in_tx, in_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("attach-reader".into())
        .spawn(move || {
            let reason = loop {
                match read_frame(&mut reader, MAX_SERVER_FRAME) {
                    Ok(Frame::Line(l)) => {
                        let msg = match parse_msg::<ServerMsg<E, S>>(&l, SERVER_TYPES) {
                            Ok(ServerMsg::Event { event }) => Incoming::Event(event),
                            Ok(ServerMsg::Resync { snapshot, dropped }) => {
                                Incoming::Resync { snapshot, dropped }
                            }
                            Ok(ServerMsg::Error { code, message }) => {
                                Incoming::Error { code, message }
                            }
                            Ok(ServerMsg::Bye { reason }) => break reason,
                            Ok(ServerMsg::Welcome { .. }) => continue,
                            // A newer trainer's message this viewer does not know.
                            Err(_) => continue,
                        };
                        if in_tx.send(msg).is_err() {
                            return;
                        }
                    }
                    Ok(Frame::Oversized(n)) => {
                        break format!("the trainer sent a frame of {n} bytes, over the limit")
                    }
                    Ok(_) | Err(_) => break "the trainer is gone".to_string(),
                }
            };
            let _ = in_tx.send(Incoming::Closed(reason));
        })
        .map_err(|e| AttachError(e.to_string()))?;
    let (cmd_tx, cmd_rx) = mpsc::channel::<C>();
    std::thread::Builder::new()
        .name("attach-writer".into())
        .spawn(move || {
            for c in cmd_rx {
                let Ok(f) = encode(&ClientMsg::Command { command: c }) else {
                    continue;
                };
                if w.write_all(&f).is_err() {
                    return;
                }
            }
            if let Ok(f) = encode(&ClientMsg::<()>::Bye) {
                let _ = w.write_all(&f);
            }
            let _ = w.shutdown(std::net::Shutdown::Both);
        })
        .map_err(|e| AttachError(e.to_string()))?;
    Ok(Connection {
        snapshot,
        pid,
        commands: cmd_tx,
        incoming: in_rx,
    })
}
