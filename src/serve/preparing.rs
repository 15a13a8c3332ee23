//! The workbench's trainer process while it prepares its data: it serves the
//! run's socket first, so the workbench (and `headsup attach`) shows the
//! preparation as `Event::Preparing` (hashing, training the tokenizer,
//! tokenizing: a gauge with MB/s and ETA) and a viewer's `Stop`, SIGINT,
//! SIGTERM or SIGHUP cancels it (no token cache written, the run directory
//! it made removed); then it starts training on the same socket.

use super::run::{bind_run, RunServer, ViewerCount};
use crate::train::{Begun, Event, PrepareHooks, Prepared, TrainerHandle};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// At most this often a progress event per step of the preparation (a new
/// step and the end of one always go out).
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
/// How long the last words (stopped, failed) get to reach the viewers.
const LAST_WORDS: Duration = Duration::from_secs(2);

/// How [`prepare_served`] ended.
pub enum Served {
    /// Prepared; the trainer runs and the socket serves it.
    Training(Box<(Prepared, TrainerHandle, ViewerCount)>),
    /// A viewer's `Stop` or a signal cancelled the preparation.
    Cancelled,
}

/// Serves `begun.run_dir` (making the directory when needed), calls `ready`
/// (the process says it is up), prepares the data with its progress
/// published to the viewers, and starts the trainer. A failure is published
/// as `Event::Failed` before it is returned; a run directory this call made
/// is removed again when the preparation fails or is cancelled.
pub fn prepare_served(
    begun: Begun,
    log: impl Fn(&str) + Send + Sync + 'static,
    ready: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<Served> {
    let run_dir = begun.run_dir.clone();
    let made = !run_dir.exists();
    std::fs::create_dir_all(&run_dir).map_err(|e| {
        anyhow::anyhow!(
            "run directory {}: cannot create it ({e}); choose another with --out",
            run_dir.display()
        )
    })?;
    let cancel = Arc::new(AtomicBool::new(false));
    let served = bind_run(&run_dir, log, cancel.clone()).and_then(|server| {
        ready(&run_dir)?;
        Ok(server)
    });
    let server = match served {
        Ok(s) => s,
        Err(e) => {
            if made {
                remove_run_dir(&run_dir);
            }
            return Err(e);
        }
    };
    let signals: Vec<signal_hook::SigId> = [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ]
    .into_iter()
    .filter_map(|s| signal_hook::flag::register(s, cancel.clone()).ok())
    .collect();
    let mut last: Option<(&'static str, Instant)> = None;
    let mut progress = |p: &crate::data::cache::Progress| {
        let new_step = last.is_none_or(|(phase, _)| phase != p.phase);
        let due = last.is_none_or(|(_, t)| t.elapsed() >= PROGRESS_EVERY);
        if new_step || due || p.done >= p.total {
            last = Some((p.phase, Instant::now()));
            server.publish(Event::preparing(p));
        }
    };
    let prepared = begun.finish(Some(PrepareHooks {
        progress: &mut progress,
        cancel: &cancel,
    }));
    for id in signals {
        signal_hook::low_level::unregister(id);
    }
    let e = match prepared {
        Ok(p) => {
            let (handle, count) = server.start(&p)?;
            return Ok(Served::Training(Box::new((p, handle, count))));
        }
        Err(e) => e,
    };
    let cancelled = cancel.load(Ordering::SeqCst);
    if cancelled {
        server.publish(Event::Log(crate::data::load::CANCELLED.into()));
        server.publish(Event::Stopped { step: 0 });
    } else {
        server.publish(Event::Failed {
            step: 0,
            error: crate::errors::one_line(&e),
        });
    }
    say_last_words(server);
    if made {
        remove_run_dir(&run_dir);
    }
    if cancelled {
        Ok(Served::Cancelled)
    } else {
        Err(e)
    }
}

/// Gives the viewers the last events: waits (bounded) for the workbench's
/// own viewer when none is attached yet (it connects right after the
/// process said it is ready), then until they leave (on a stop they asked
/// for, or a failure before the first step) or [`LAST_WORDS`] passed, and
/// closes the socket.
fn say_last_words(server: RunServer) {
    let start = Instant::now();
    while server.viewers() == 0 && start.elapsed() < LAST_WORDS {
        std::thread::sleep(Duration::from_millis(20));
    }
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(200));
    while server.viewers() > 0 && start.elapsed() < LAST_WORDS {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(server);
}

/// Removes what a preparation that did not finish left in the run
/// directory it made (its log, and what `finish` may have written before
/// it failed), then the directory itself when nothing else is in it.
fn remove_run_dir(run_dir: &Path) {
    for f in [
        "train.log",
        "config.toml",
        "tokenizer.json",
        crate::data::located::FILE,
    ] {
        let _ = std::fs::remove_file(run_dir.join(f));
    }
    let _ = std::fs::remove_dir(run_dir);
}
