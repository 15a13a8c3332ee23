//! The training engine: the loop, schedule, clipping, evaluation, checkpoints,
//! the run directory, and the event/command types its consumers use.

pub mod events;
pub use events::*;

use crate::config::Config;
use crate::data::Dataset;
use crate::tokenizer::Tokenizer;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Everything loaded and checked before the training thread starts, so that a
/// bad input fails before any terminal set-up.
pub struct Prepared {
    pub config: Config,
    pub run_dir: PathBuf,
    pub dataset: Arc<Dataset>,
    pub tokenizer: Arc<Tokenizer>,
}

/// Where the run directory goes and whether to resume.
#[derive(Debug, Clone, Default)]
pub struct PrepareOptions {
    /// `--out DIR`: the run directory (default: under the user's data dir).
    pub out: Option<PathBuf>,
    /// `--resume RUN`: continue the run in this directory from its latest checkpoint.
    pub resume: Option<PathBuf>,
}

/// The consumer's side of a running trainer.
pub struct TrainerHandle {
    pub commands: Sender<Command>,
    pub events: Receiver<Event>,
    /// Set to ask the trainer to stop (also settable from a signal handler);
    /// it saves a checkpoint and sends `Event::Stopped`.
    pub stop: Arc<AtomicBool>,
    pub thread: JoinHandle<()>,
}
