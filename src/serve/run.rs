//! The trainer's `Event`/`Command` on the run socket: [`RunSnapshot`] (what a
//! new viewer is sent: run info, the downsampled loss/eval history, the
//! latest attention map, the state), [`serve`] (puts a socket server on a
//! trainer handle, between the trainer and its local consumer) and
//! [`attach`] (a trainer handle whose channels lead to a trainer in another
//! process, so the workbench cannot tell the two apart).

use super::client::{connect, Incoming};
use super::pace::ProbePace;
use super::server::{Delivery, ServeOptions, Server, Snapshot};
use crate::train::{AttentionMap, Command, Event, Prepared, RunInfo, StepStats, TrainerHandle};
use crate::watch::replay::history_events;
use crate::watch::{EvalPoint, History, StepPoint};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the run stands, as a viewer shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Starting,
    Running,
    Paused { reason: Option<String> },
    Finished,
    Stopped,
    Failed { error: String },
}

/// What a viewer needs to draw a run it joins late.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSnapshot {
    pub info: Option<RunInfo>,
    pub phase: Phase,
    pub step: usize,
    pub history: History,
    /// The newest step as sent (with its ETA and elapsed time).
    pub last: Option<StepStats>,
    pub best_val_loss: Option<f32>,
    pub attention: Option<AttentionMap>,
    pub last_checkpoint: Option<usize>,
    /// The newest `Event::Preparing` while the data is prepared (before
    /// `Started`), so a viewer that joins then shows the gauge at once.
    #[serde(default)]
    pub preparing: Option<Event>,
}

impl Default for RunSnapshot {
    fn default() -> Self {
        RunSnapshot {
            info: None,
            phase: Phase::Starting,
            step: 0,
            history: History::default(),
            last: None,
            best_val_loss: None,
            attention: None,
            last_checkpoint: None,
            preparing: None,
        }
    }
}

impl Snapshot<Event> for RunSnapshot {
    fn apply(&mut self, e: &Event) {
        match e {
            Event::Preparing { .. } => self.preparing = Some(e.clone()),
            Event::Started(info) => {
                self.preparing = None;
                self.step = info.start_step;
                self.info = Some(info.clone());
                self.phase = Phase::Running;
            }
            Event::Step(s) => {
                self.step = s.step;
                self.last = Some(*s);
                self.history.push_step(StepPoint {
                    step: s.step as f64,
                    loss: s.loss,
                    lr: s.lr,
                    grad_norm: s.grad_norm,
                    tokens_per_sec: s.tokens_per_sec,
                });
            }
            Event::Eval(e) => {
                self.best_val_loss = Some(e.best_val_loss);
                self.history.push_eval(EvalPoint {
                    step: e.step,
                    train_loss: Some(e.train_loss),
                    val_loss: e.val_loss,
                    masked: e.masked,
                });
            }
            Event::Attention(a) => self.attention = Some(a.clone()),
            Event::Checkpoint { step, .. } => self.last_checkpoint = Some(*step),
            Event::Paused { step, reason } => {
                self.step = *step;
                self.phase = Phase::Paused {
                    reason: reason.clone(),
                };
            }
            Event::Resumed { step } => {
                self.step = *step;
                self.phase = Phase::Running;
            }
            Event::Finished { step } => {
                self.step = *step;
                self.phase = Phase::Finished;
            }
            Event::Stopped { step } => {
                self.step = *step;
                self.phase = Phase::Stopped;
            }
            Event::Failed { step, error } => {
                self.step = *step;
                self.phase = Phase::Failed {
                    error: error.clone(),
                };
            }
            _ => {}
        }
    }
}

impl RunSnapshot {
    /// The snapshot as the events a fresh workbench folds: the run info, the
    /// downsampled history as steps and evaluations, the latest attention,
    /// the state. Only steps after `after` (a viewer that already has the
    /// earlier ones, on a resync).
    pub fn to_events(&self, after: Option<usize>) -> Vec<Event> {
        let mut out = Vec::new();
        let fresh = after.is_none();
        if let (Some(info), true) = (&self.info, fresh) {
            out.push(Event::Started(info.clone()));
        }
        out.extend(self.preparing.clone());
        out.extend(history_events(&self.history, after));
        // The exact newest step last (the history's last point may be a mean).
        if let Some(s) = self.last.filter(|s| after.is_none_or(|a| s.step > a)) {
            if let Some(Event::Step(p)) = out.last() {
                if p.step == s.step {
                    out.pop();
                }
            }
            out.push(Event::Step(s));
        }
        if let Some(a) = &self.attention {
            out.push(Event::Attention(a.clone()));
        }
        let step = self.step;
        match &self.phase {
            Phase::Starting | Phase::Running => {
                if !fresh {
                    out.push(Event::Resumed { step });
                }
            }
            Phase::Paused { reason } => out.push(Event::Paused {
                step,
                reason: reason.clone(),
            }),
            Phase::Finished => out.push(Event::Finished { step }),
            Phase::Stopped => out.push(Event::Stopped { step }),
            Phase::Failed { error } => out.push(Event::Failed {
                step,
                error: error.clone(),
            }),
        }
        out
    }
}

/// Binds the run's socket, then starts the trainer: every event it sends
/// goes on to the returned handle (the local consumer, unchanged) and to the
/// socket's viewers; viewers' commands reach the trainer. A run another live
/// process serves is refused before any training starts. `log` gets the
/// server's lines (viewers attached and gone, refused peers, bad frames).
pub fn spawn_served(
    prepared: &Prepared,
    log: impl Fn(&str) + Send + Sync + 'static,
) -> anyhow::Result<TrainerHandle> {
    spawn_served_counted(prepared, log).map(|(h, _)| h)
}

/// As [`spawn_served`], with a function that says how many viewers are
/// attached now (the workbench's trainer ends a finished run nobody views).
pub fn spawn_served_counted(
    prepared: &Prepared,
    log: impl Fn(&str) + Send + Sync + 'static,
) -> anyhow::Result<(TrainerHandle, ViewerCount)> {
    bind_run(&prepared.run_dir, log, Arc::new(AtomicBool::new(false)))?.start(prepared)
}

/// A run's socket, served before its trainer starts (while the data is
/// prepared): viewers attach and get what is published (`Event::Preparing`);
/// a `Stop` they send sets the cancel flag; other commands wait for no one
/// (a trainer that has not started has nothing to probe or generate with).
pub struct RunServer {
    server: Server<Event>,
    /// Where viewers' commands go once the trainer runs.
    route: Arc<std::sync::Mutex<Option<mpsc::Sender<Command>>>>,
    /// Viewers get periodic attention probes paced (`serve::pace`); one a
    /// viewer asked for goes at once.
    pace: Arc<Mutex<ProbePace>>,
}

/// Binds the socket of `run_dir` (refused when another live process serves
/// it); a viewer's `Stop` before [`RunServer::start`] sets `cancel`.
pub fn bind_run(
    run_dir: &Path,
    log: impl Fn(&str) + Send + Sync + 'static,
    cancel: Arc<AtomicBool>,
) -> anyhow::Result<RunServer> {
    let (cmd_tx, cmd_rx) = mpsc::channel::<Command>();
    let server: Server<Event> = Server::bind(
        run_dir,
        RunSnapshot::default(),
        cmd_tx,
        log,
        ServeOptions::default(),
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "run {}: cannot serve it on its socket: {e}",
            run_dir.display()
        )
    })?;
    let route: Arc<std::sync::Mutex<Option<mpsc::Sender<Command>>>> = Arc::default();
    let to = route.clone();
    let pace = Arc::new(Mutex::new(ProbePace::default()));
    let asked = pace.clone();
    std::thread::Builder::new()
        .name("serve-commands".into())
        .spawn(move || {
            for c in cmd_rx {
                if matches!(c, Command::Probe { .. }) {
                    if let Ok(mut p) = asked.lock() {
                        p.asked(Instant::now());
                    }
                }
                let Ok(to) = to.lock() else { return };
                let Some(trainer) = &*to else {
                    if matches!(c, Command::Stop) {
                        cancel.store(true, Ordering::SeqCst);
                    }
                    continue;
                };
                if trainer.send(c).is_err() {
                    return;
                }
            }
        })?;
    Ok(RunServer {
        server,
        route,
        pace,
    })
}

impl RunServer {
    /// Sends `ev` to every viewer (and folds it into the snapshot).
    pub fn publish(&self, ev: Event) {
        self.server.publish(ev);
    }

    /// How many viewers are attached now.
    pub fn viewers(&self) -> usize {
        self.server.viewer_count()()
    }

    /// Starts the trainer: every event it sends goes on to the returned
    /// handle (the local consumer) and to the socket's viewers; viewers'
    /// commands reach the trainer.
    pub fn start(self, prepared: &Prepared) -> anyhow::Result<(TrainerHandle, ViewerCount)> {
        let RunServer {
            server,
            route,
            pace,
        } = self;
        let count = server.viewer_count();
        let TrainerHandle {
            commands,
            events,
            stop,
            thread,
        } = crate::train::spawn(prepared);
        if let Ok(mut r) = route.lock() {
            *r = Some(commands.clone());
        }
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("serve-tee".into())
            .spawn(move || {
                let publish = |out: Vec<(Event, Delivery)>| {
                    for (ev, how) in out {
                        server.publish_as(ev, how);
                    }
                };
                let mut local = Some(tx);
                loop {
                    let wait = with_pace(&pace, |p| p.next_due())
                        .map_or(Duration::from_millis(500), |t| {
                            t.saturating_duration_since(Instant::now())
                        });
                    match events.recv_timeout(wait) {
                        Ok(ev) => {
                            let now = Instant::now();
                            let to_viewers = match &local {
                                Some(tx) => {
                                    let out = with_pace(&pace, |p| p.take(ev.clone(), now));
                                    if tx.send(ev).is_err() {
                                        // The local consumer is gone; viewers still get events.
                                        local = None;
                                    }
                                    out
                                }
                                None => with_pace(&pace, |p| p.take(ev, now)),
                            };
                            publish(to_viewers);
                        }
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                    publish(with_pace(&pace, |p| p.due(Instant::now())));
                }
                publish(with_pace(&pace, |p| p.flush(Instant::now())));
                // The trainer ended: the server goes first, saying bye and
                // removing the socket, and only then the local consumer's
                // channel, whose end lets the process exit: no socket is left
                // behind by a run that ended.
                drop(server);
                drop(local);
            })?;
        Ok((
            TrainerHandle {
                commands,
                events: rx,
                stop,
                thread,
            },
            count,
        ))
    }
}

/// Runs `f` on the probe pacing (a poisoned lock: nothing paced, nothing sent).
fn with_pace<T: Default>(pace: &Mutex<ProbePace>, f: impl FnOnce(&mut ProbePace) -> T) -> T {
    pace.lock().map(|mut p| f(&mut p)).unwrap_or_default()
}

/// How many viewers a run's server has now.
pub type ViewerCount = Box<dyn Fn() -> usize + Send + Sync>;

/// Request ids of this viewer's generations travel with this bit set and
/// its process id above it, so that tokens of another viewer's generation
/// never land in this one's playground.
fn own_id_base() -> u64 {
    ((std::process::id() as u64) << 24) | (1 << 63)
}

/// A trainer handle for the run served at `run_dir`: commands go over the
/// socket, events (first the snapshot, as events) come back. Setting `stop`
/// asks the trainer to stop. When the trainer goes away, a `Failed` event
/// says so and names `headsup watch`.
pub fn attach(run_dir: &Path) -> anyhow::Result<(TrainerHandle, RunSnapshot)> {
    let conn = connect::<Command, Event, RunSnapshot>(run_dir, "attach", Duration::from_secs(20))?;
    let snapshot = conn.snapshot.clone();
    let (ev_tx, ev_rx) = mpsc::channel::<Event>();
    let (cmd_tx, cmd_rx) = mpsc::channel::<Command>();
    let stop = Arc::new(AtomicBool::new(false));
    for e in snapshot.to_events(None) {
        let _ = ev_tx.send(e);
    }
    let base = own_id_base();
    let remote = conn.commands;
    let incoming = conn.incoming;
    let stop2 = stop.clone();
    let run = run_dir.display().to_string();
    let mut step = snapshot.last.map(|s| s.step);
    let snapshot_phase = snapshot.phase.clone();
    let thread = std::thread::Builder::new()
        .name("attach-bridge".into())
        .spawn(move || {
            let mut stop_sent = false;
            // The trainer said it ended: its going away is no news then.
            let mut ended = matches!(
                snapshot_phase,
                Phase::Finished | Phase::Stopped | Phase::Failed { .. }
            );
            loop {
                if stop2.load(Ordering::SeqCst) && !stop_sent {
                    let _ = remote.send(Command::Stop);
                    stop_sent = true;
                }
                loop {
                    let c = match cmd_rx.try_recv() {
                        Ok(c) => c,
                        Err(mpsc::TryRecvError::Empty) => break,
                        // The workbench detached: close the connection.
                        Err(mpsc::TryRecvError::Disconnected) => return,
                    };
                    let c = match c {
                        Command::Generate(mut g) => {
                            g.id |= base;
                            Command::Generate(g)
                        }
                        Command::Score(mut r) => {
                            r.id |= base;
                            Command::Score(r)
                        }
                        Command::Fill(mut r) => {
                            r.id |= base;
                            Command::Fill(r)
                        }
                        c => c,
                    };
                    stop_sent |= matches!(c, Command::Stop);
                    let _ = remote.send(c);
                }
                let msg = match incoming.recv_timeout(Duration::from_millis(20)) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => Incoming::Closed("the trainer is gone".into()),
                };
                let events = match msg {
                    Incoming::Event(e) => match e {
                        Event::Token {
                            id,
                            text,
                            prob,
                            alts,
                        } => {
                            if id & !0xff_ffff != base {
                                continue;
                            }
                            vec![Event::Token {
                                id: id & 0xff_ffff,
                                text,
                                prob,
                                alts,
                            }]
                        }
                        Event::GenerationDone {
                            id,
                            tokens,
                            tokens_per_sec,
                        } => {
                            if id & !0xff_ffff != base {
                                continue;
                            }
                            vec![Event::GenerationDone {
                                id: id & 0xff_ffff,
                                tokens,
                                tokens_per_sec,
                            }]
                        }
                        // Fills another viewer asked for are not this one's.
                        Event::Filled(mut r) => {
                            if r.id & !0xff_ffff != base {
                                continue;
                            }
                            r.id &= 0xff_ffff;
                            vec![Event::Filled(r)]
                        }
                        // Scores another viewer asked for are not this one's.
                        Event::RecordLoss(mut r) => {
                            if r.id & !0xff_ffff != base {
                                continue;
                            }
                            r.id &= 0xff_ffff;
                            vec![Event::RecordLoss(r)]
                        }
                        Event::ScoreDone {
                            id,
                            scored,
                            total,
                            cancelled,
                            note,
                        } => {
                            if id & !0xff_ffff != base {
                                continue;
                            }
                            vec![Event::ScoreDone {
                                id: id & 0xff_ffff,
                                scored,
                                total,
                                cancelled,
                                note,
                            }]
                        }
                        e => vec![e],
                    },
                    Incoming::Resync { snapshot, .. } => snapshot.to_events(step),
                    Incoming::Error { message, .. } => {
                        vec![Event::Log(format!("the trainer refused a command: {message}"))]
                    }
                    // Asked to stop, the trainer may exit before its last
                    // events reach this viewer: its going away is the answer.
                    Incoming::Closed(reason) if ended || stop_sent => {
                        let _ = ev_tx.send(Event::Log(format!("the trainer has ended ({reason})")));
                        return;
                    }
                    Incoming::Closed(reason) => {
                        let _ = ev_tx.send(Event::Failed {
                            step: step.unwrap_or(0),
                            error: format!(
                                "{reason}; `headsup watch {run}` shows the run from disk, `headsup train --resume {run}` continues it"
                            ),
                        });
                        return;
                    }
                };
                for e in events {
                    match &e {
                        Event::Step(s) => step = Some(s.step),
                        Event::Finished { .. } | Event::Stopped { .. } | Event::Failed { .. } => {
                            ended = true
                        }
                        Event::Started(_) | Event::Resumed { .. } => ended = false,
                        _ => {}
                    }
                    if ev_tx.send(e).is_err() {
                        return;
                    }
                }
            }
        })?;
    Ok((
        TrainerHandle {
            commands: cmd_tx,
            events: ev_rx,
            stop,
            thread,
        },
        snapshot,
    ))
}

/// A log function appending lines to `path` (best effort).
pub fn file_log(path: &Path) -> impl Fn(&str) + Send + Sync + 'static {
    let file = std::sync::Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok(),
    );
    move |m: &str| {
        use std::io::Write;
        if let Ok(mut f) = file.lock() {
            if let Some(f) = f.as_mut() {
                let _ = writeln!(f, "{}", crate::sanitize::escape(m));
            }
        }
    }
}
