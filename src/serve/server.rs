//! Serves a run to its viewers over the run's Unix socket. The producer (the
//! trainer) calls [`Server::publish`], which never blocks: a fan-out thread
//! folds each event into the run's [`Snapshot`] state (what a new viewer is
//! sent on `hello`) and hands the encoded frame to every viewer's bounded
//! queue; each viewer has its own writer and reader threads. A viewer whose
//! queue fills is resynchronised from the snapshot, and dropped with a `bye`
//! when it keeps falling behind or stalls a write. Bad frames get an error
//! reply and a (rate-limited) log line; commands are rate-limited per viewer.

use super::protocol::{
    encode, parse_msg, read_frame, ClientMsg, ErrorCode, Frame, ServerMsg, CLIENT_TYPES,
    MAX_CLIENT_FRAME, MAX_SERVER_FRAME, PROTOCOL_VERSION,
};
use super::socket;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The state a server keeps for new viewers, updated by every event.
pub trait Snapshot<E>: Serialize + Send + 'static {
    fn apply(&mut self, event: &E);
}

/// Limits of a server; the defaults suit a trainer and a few viewers.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Frames queued per viewer before it counts as behind.
    pub queue: usize,
    pub max_clients: usize,
    /// Commands per second a viewer may send (a burst of the same size is allowed).
    pub commands_per_sec: f64,
    /// A write to a viewer that takes longer drops it.
    pub write_timeout: Duration,
    /// Time a new connection has to send `hello`.
    pub hello_timeout: Duration,
    /// Resyncs within `resync_window` before a viewer is dropped.
    pub max_resyncs: usize,
    pub resync_window: Duration,
    /// Bad frames from one viewer before it is disconnected.
    pub max_bad_frames: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            queue: 512,
            max_clients: 16,
            commands_per_sec: 50.0,
            write_timeout: Duration::from_secs(10),
            hello_timeout: Duration::from_secs(5),
            max_resyncs: 3,
            resync_window: Duration::from_secs(30),
            max_bad_frames: 100,
        }
    }
}

type Log = Arc<dyn Fn(&str) + Send + Sync>;

struct Viewer {
    id: u64,
    queue: SyncSender<Arc<[u8]>>,
    /// Set by the fan-out when the queue was full: the writer resyncs.
    behind: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
}

struct Hub<S> {
    state: S,
    viewers: Vec<Viewer>,
}

struct Shared<S> {
    hub: Mutex<Hub<S>>,
    shutdown: AtomicBool,
    clients: AtomicUsize,
    next_id: AtomicU64,
    opts: ServeOptions,
    log: Log,
}

/// What the fan-out does with a published event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Folded into the snapshot and sent to every viewer.
    All,
    /// Only folded into the snapshot (a new or resynchronised viewer sees
    /// it there): an event the viewers need not get one by one.
    SnapshotOnly,
    /// Only sent to the viewers: it was folded into the snapshot before.
    ViewersOnly,
}

/// A run served on its socket. Dropping it stops accepting, says `bye` to
/// the viewers and removes the socket file.
pub struct Server<E> {
    path: PathBuf,
    events: Sender<(E, Delivery)>,
    shared_flags: Arc<dyn ServerFlags>,
}

trait ServerFlags: Send + Sync {
    fn shutdown(&self);
    fn clients(&self) -> usize;
}

impl<S: Send> ServerFlags for Shared<S> {
    fn shutdown(&self) {
        // The writers see it within a quarter second and say bye.
        self.shutdown.store(true, Ordering::SeqCst);
    }
    fn clients(&self) -> usize {
        self.clients.load(Ordering::SeqCst)
    }
}

impl<E: Serialize + Send + 'static> Server<E> {
    /// Serves `run` on its socket: commands from viewers go to `commands`,
    /// log lines (refused peers, bad frames, dropped viewers) to `log`.
    pub fn bind<C, S>(
        run: &Path,
        state: S,
        commands: Sender<C>,
        log: impl Fn(&str) + Send + Sync + 'static,
        opts: ServeOptions,
    ) -> std::io::Result<Server<E>>
    where
        C: DeserializeOwned + Send + 'static,
        S: Snapshot<E>,
    {
        let path = socket::server_path(run)?;
        Self::bind_at(&path, state, commands, log, opts)
    }

    /// As [`Server::bind`], at an explicit socket path (its directory must
    /// already be private).
    pub fn bind_at<C, S>(
        path: &Path,
        state: S,
        commands: Sender<C>,
        log: impl Fn(&str) + Send + Sync + 'static,
        opts: ServeOptions,
    ) -> std::io::Result<Server<E>>
    where
        C: DeserializeOwned + Send + 'static,
        S: Snapshot<E>,
    {
        let listener = socket::bind(path)?;
        // Unbounded: the producer never waits and no event is lost from the
        // snapshot; the fan-out only folds and enqueues, so it keeps up.
        let (tx, rx) = mpsc::channel::<(E, Delivery)>();
        let shared = Arc::new(Shared {
            hub: Mutex::new(Hub {
                state,
                viewers: Vec::new(),
            }),
            shutdown: AtomicBool::new(false),
            clients: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            opts,
            log: Arc::new(log),
        });
        let s2 = shared.clone();
        std::thread::Builder::new()
            .name("serve-fanout".into())
            .spawn(move || fan_out(rx, s2))?;
        let s3 = shared.clone();
        std::thread::Builder::new()
            .name("serve-accept".into())
            .spawn(move || accept_loop(listener, s3, commands))?;
        Ok(Server {
            path: path.to_path_buf(),
            events: tx,
            shared_flags: shared,
        })
    }

    /// Hands an event to the viewers. Never blocks.
    pub fn publish(&self, event: E) {
        self.publish_as(event, Delivery::All);
    }

    /// Hands an event to the snapshot, the viewers or both. Never blocks.
    pub fn publish_as(&self, event: E, delivery: Delivery) {
        let _ = self.events.send((event, delivery));
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Viewers connected now (past the handshake).
    pub fn clients(&self) -> usize {
        self.shared_flags.clients()
    }

    /// A function that says [`Server::clients`], usable after the server
    /// has moved (it says 0 once the server has shut down).
    pub fn viewer_count(&self) -> Box<dyn Fn() -> usize + Send + Sync> {
        let flags = self.shared_flags.clone();
        Box::new(move || flags.clients())
    }
}

impl<E> Drop for Server<E> {
    fn drop(&mut self) {
        self.shared_flags.shutdown();
        // Wake the accept loop so it sees the flag.
        let _ = UnixStream::connect(&self.path);
        let _ = std::fs::remove_file(&self.path);
    }
}

fn fan_out<E: Serialize, S: Snapshot<E>>(rx: Receiver<(E, Delivery)>, shared: Arc<Shared<S>>) {
    loop {
        let event = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(e) => Some(e),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let Some((event, delivery)) = event else {
            if shared.shutdown.load(Ordering::SeqCst) {
                break;
            }
            continue;
        };
        let Ok(mut hub) = shared.hub.lock() else {
            break;
        };
        if delivery != Delivery::ViewersOnly {
            hub.state.apply(&event);
        }
        if hub.viewers.is_empty() || delivery == Delivery::SnapshotOnly {
            continue;
        }
        let frame: Arc<[u8]> = match encode(&ServerMsg::<&E, ()>::Event { event: &event }) {
            Ok(f) if f.len() <= MAX_SERVER_FRAME => f.into(),
            Ok(f) => {
                (shared.log)(&format!(
                    "serve: an event of {} bytes is over the {MAX_SERVER_FRAME}-byte frame limit; not sent",
                    f.len()
                ));
                continue;
            }
            Err(e) => {
                (shared.log)(&format!("serve: cannot encode an event: {e}"));
                continue;
            }
        };
        hub.viewers
            .retain(|v| match v.queue.try_send(frame.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    v.behind.store(true, Ordering::SeqCst);
                    v.dropped.fetch_add(1, Ordering::SeqCst);
                    true
                }
                Err(TrySendError::Disconnected(_)) => false,
            });
    }
    shared.shutdown.store(true, Ordering::SeqCst);
    if let Ok(mut hub) = shared.hub.lock() {
        hub.viewers.clear();
    }
}

fn accept_loop<C, E, S>(listener: UnixListener, shared: Arc<Shared<S>>, commands: Sender<C>)
where
    C: DeserializeOwned + Send + 'static,
    S: Snapshot<E>,
{
    for conn in listener.incoming() {
        if shared.shutdown.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = conn else { continue };
        let shared = shared.clone();
        let commands = commands.clone();
        let _ = std::thread::Builder::new()
            .name("serve-viewer".into())
            .spawn(move || serve_viewer(stream, shared, commands));
    }
    if let Ok(mut hub) = shared.hub.lock() {
        hub.viewers.clear();
    }
}

/// Writes one frame directly (before the viewer has a writer thread).
fn reply(stream: &mut UnixStream, msg: &ServerMsg<(), ()>) {
    if let Ok(f) = encode(msg) {
        let _ = stream.write_all(&f);
    }
}

fn error_frame(code: ErrorCode, message: String) -> Arc<[u8]> {
    encode(&ServerMsg::<(), ()>::Error { code, message })
        .unwrap_or_default()
        .into()
}

/// Logs at most a few lines per viewer for bad input, then one summary.
struct LogBudget {
    left: usize,
}

impl LogBudget {
    fn log(&mut self, log: &Log, id: u64, msg: &str) {
        match self.left {
            0 => {}
            1 => log(&format!(
                "serve: viewer {id}: more bad frames; not logging them"
            )),
            _ => log(&format!("serve: viewer {id}: {msg}")),
        }
        self.left = self.left.saturating_sub(1);
    }
}

fn serve_viewer<C, E, S>(stream: UnixStream, shared: Arc<Shared<S>>, commands: Sender<C>)
where
    C: DeserializeOwned + Send + 'static,
    S: Snapshot<E>,
{
    let opts = shared.opts.clone();
    let log = shared.log.clone();
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    let mut w = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let _ = w.set_write_timeout(Some(opts.write_timeout));
    match socket::peer_uid(&stream) {
        Ok(uid) => {
            if let Err(m) = socket::check_peer(uid, socket::own_uid()) {
                log(&format!("serve: refused a connection from uid {uid}"));
                reply(
                    &mut w,
                    &ServerMsg::Error {
                        code: ErrorCode::Refused,
                        message: m,
                    },
                );
                return;
            }
        }
        Err(e) => {
            log(&format!("serve: cannot read a peer's credentials: {e}"));
            return;
        }
    }
    let _ = stream.set_read_timeout(Some(opts.hello_timeout));
    let mut r = BufReader::new(stream);
    // The handshake: the first frame must be a hello of our version.
    let hello = match read_frame(&mut r, MAX_CLIENT_FRAME) {
        Ok(Frame::Line(l)) => parse_msg::<ClientMsg<serde::de::IgnoredAny>>(&l, CLIENT_TYPES),
        Ok(Frame::Oversized(n)) => Err(super::protocol::Rejected {
            code: ErrorCode::Oversized,
            message: format!("a frame of {n} bytes; the limit is {MAX_CLIENT_FRAME}"),
        }),
        _ => return,
    };
    let client = match hello {
        Ok(ClientMsg::Hello { protocol, client }) if protocol == PROTOCOL_VERSION => client,
        Ok(ClientMsg::Hello { protocol, .. }) => {
            log(&format!(
                "serve: refused a viewer speaking protocol {protocol}"
            ));
            reply(&mut w, &ServerMsg::Error {
                code: ErrorCode::Version,
                message: format!("this trainer speaks protocol {PROTOCOL_VERSION}, the viewer {protocol}; use the same headsup version for both"),
            });
            return;
        }
        Ok(_) => {
            reply(
                &mut w,
                &ServerMsg::Error {
                    code: ErrorCode::NotHello,
                    message: "the first message must be {\"type\":\"hello\",..}".into(),
                },
            );
            return;
        }
        Err(rej) => {
            log(&format!("serve: bad handshake: {}", rej.message));
            reply(
                &mut w,
                &ServerMsg::Error {
                    code: rej.code,
                    message: rej.message,
                },
            );
            return;
        }
    };
    let client: String = crate::sanitize::escape(&client.chars().take(40).collect::<String>());
    let (qtx, qrx) = mpsc::sync_channel::<Arc<[u8]>>(opts.queue.max(1));
    let behind = Arc::new(AtomicBool::new(false));
    let dropped = Arc::new(AtomicU64::new(0));
    // Register and take the snapshot under one lock, so that the viewer gets
    // every event after the snapshot and none before it.
    let welcome = {
        let Ok(mut hub) = shared.hub.lock() else {
            return;
        };
        if hub.viewers.len() >= opts.max_clients {
            drop(hub);
            reply(
                &mut w,
                &ServerMsg::Error {
                    code: ErrorCode::Busy,
                    message: format!(
                        "this trainer already has {} viewers; detach one first",
                        opts.max_clients
                    ),
                },
            );
            return;
        }
        let msg = ServerMsg::<(), &S>::Welcome {
            protocol: PROTOCOL_VERSION,
            server: format!("headsup {}", env!("CARGO_PKG_VERSION")),
            pid: std::process::id(),
            snapshot: &hub.state,
        };
        let Ok(f) = encode(&msg) else { return };
        hub.viewers.push(Viewer {
            id,
            queue: qtx.clone(),
            behind: behind.clone(),
            dropped: dropped.clone(),
        });
        f
    };
    shared.clients.fetch_add(1, Ordering::SeqCst);
    log(&format!("serve: viewer {id} ({client}) attached"));
    let shared_w = shared.clone();
    let writer = std::thread::Builder::new()
        .name("serve-writer".into())
        .spawn(move || write_loop(w, welcome, qrx, behind, dropped, shared_w, id));
    let _ = r.get_ref().set_read_timeout(None);
    read_loop(r, qtx, commands, &shared, id);
    // Unregistered, the viewer's queue closes and its writer ends.
    if let Ok(mut hub) = shared.hub.lock() {
        hub.viewers.retain(|v| v.id != id);
    }
    if let Ok(h) = writer {
        let _ = h.join();
    }
    shared.clients.fetch_sub(1, Ordering::SeqCst);
    log(&format!("serve: viewer {id} detached"));
}

fn read_loop<C, S>(
    mut r: BufReader<UnixStream>,
    queue: SyncSender<Arc<[u8]>>,
    commands: Sender<C>,
    shared: &Shared<S>,
    id: u64,
) where
    C: DeserializeOwned,
{
    let opts = &shared.opts;
    let mut budget = LogBudget { left: 10 };
    let mut bad = 0usize;
    let rate = opts.commands_per_sec.max(0.1);
    let mut tokens = rate;
    let mut last = Instant::now();
    let mut reject = |code: ErrorCode, message: String, bad: &mut usize| {
        budget.log(&shared.log, id, &message);
        *bad += 1;
        let _ = queue.try_send(error_frame(code, message));
    };
    loop {
        if shared.shutdown.load(Ordering::SeqCst) {
            break;
        }
        let frame = match read_frame(&mut r, MAX_CLIENT_FRAME) {
            Ok(f) => f,
            Err(_) => break,
        };
        match frame {
            Frame::Eof | Frame::Truncated(_) => break,
            Frame::Oversized(n) => reject(
                ErrorCode::Oversized,
                format!("a frame of {n} bytes; the limit is {MAX_CLIENT_FRAME}"),
                &mut bad,
            ),
            Frame::Line(l) if l.iter().all(u8::is_ascii_whitespace) => {}
            Frame::Line(l) => match parse_msg::<ClientMsg<C>>(&l, CLIENT_TYPES) {
                Ok(ClientMsg::Command { command }) => {
                    let now = Instant::now();
                    tokens = (tokens + now.duration_since(last).as_secs_f64() * rate).min(rate);
                    last = now;
                    if tokens >= 1.0 {
                        tokens -= 1.0;
                        if commands.send(command).is_err() {
                            break;
                        }
                    } else {
                        reject(
                            ErrorCode::RateLimited,
                            format!("more than {rate} commands per second; this one was ignored"),
                            &mut bad,
                        );
                    }
                }
                Ok(ClientMsg::Bye) => break,
                Ok(ClientMsg::Hello { .. }) => reject(
                    ErrorCode::Malformed,
                    "hello was already received".into(),
                    &mut bad,
                ),
                Err(rej) => reject(rej.code, rej.message, &mut bad),
            },
        }
        if bad >= opts.max_bad_frames {
            shared.log.as_ref()(&format!(
                "serve: viewer {id}: {bad} bad frames; disconnected"
            ));
            let _ = queue.try_send(
                encode(&ServerMsg::<(), ()>::Bye {
                    reason: format!("{bad} bad frames"),
                })
                .unwrap_or_default()
                .into(),
            );
            break;
        }
    }
    // Closing the queue ends the writer.
    if let Ok(s) = r.get_ref().try_clone() {
        let _ = s.shutdown(std::net::Shutdown::Read);
    }
}

fn write_loop<S>(
    mut w: UnixStream,
    welcome: Vec<u8>,
    queue: Receiver<Arc<[u8]>>,
    behind: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
    shared: Arc<Shared<S>>,
    id: u64,
) where
    S: Serialize,
{
    let log = shared.log.clone();
    let opts = shared.opts.clone();
    let bye = |w: &mut UnixStream, reason: String| {
        log(&format!("serve: viewer {id}: {reason}"));
        if let Ok(f) = encode(&ServerMsg::<(), ()>::Bye { reason }) {
            let _ = w.write_all(&f);
        }
        let _ = w.shutdown(std::net::Shutdown::Both);
    };
    let write_failed = |w: &mut UnixStream, e: std::io::Error| {
        if matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) {
            bye(
                w,
                format!(
                    "stopped reading for {:.1} s; dropped",
                    opts.write_timeout.as_secs_f64()
                ),
            );
        }
        let _ = w.shutdown(std::net::Shutdown::Both);
    };
    if w.write_all(&welcome).is_err() {
        let _ = w.shutdown(std::net::Shutdown::Both);
        return;
    }
    drop(welcome);
    let mut resyncs: Vec<Instant> = Vec::new();
    loop {
        if shared.shutdown.load(Ordering::SeqCst) {
            // Deliver what the fan-out still forwards (the trainer's last
            // events, e.g. `Stopped`), then say goodbye: the fan-out ends
            // within its poll after the shutdown and closes the queue.
            while let Ok(frame) = queue.recv_timeout(Duration::from_millis(500)) {
                if w.write_all(&frame).is_err() {
                    break;
                }
            }
            bye(&mut w, "the trainer is shutting down".into());
            return;
        }
        if behind.swap(false, Ordering::SeqCst) {
            let now = Instant::now();
            resyncs.retain(|t| now.duration_since(*t) < opts.resync_window);
            resyncs.push(now);
            if resyncs.len() > opts.max_resyncs {
                bye(
                    &mut w,
                    format!(
                        "fell behind {} times in {} s; dropped (attach again)",
                        resyncs.len(),
                        opts.resync_window.as_secs()
                    ),
                );
                return;
            }
            // The snapshot and an empty queue under one lock: no event is
            // both in the snapshot and sent after it.
            let frame = {
                let Ok(hub) = shared.hub.lock() else { return };
                while queue.try_recv().is_ok() {}
                let n = dropped.swap(0, Ordering::SeqCst);
                encode(&ServerMsg::<(), &S>::Resync {
                    snapshot: &hub.state,
                    dropped: n,
                })
            };
            let Ok(frame) = frame else { return };
            if let Err(e) = w.write_all(&frame) {
                return write_failed(&mut w, e);
            }
            continue;
        }
        match queue.recv_timeout(Duration::from_millis(250)) {
            Ok(frame) => {
                if let Err(e) = w.write_all(&frame) {
                    return write_failed(&mut w, e);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            // The fan-out ended: the server is shutting down (its flag may
            // be seen here before the check above) or the trainer's event
            // stream closed. Either way the viewer is told why.
            Err(RecvTimeoutError::Disconnected) => {
                bye(&mut w, "the trainer is shutting down".into());
                return;
            }
        }
    }
}
