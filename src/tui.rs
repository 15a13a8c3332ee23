//! The terminal runtime of the workbench: terminal set-up and restore (also
//! on error, panic and signals), one channel merging terminal input, trainer
//! events and signals, the `Effect`s the app asks for (detach included), and
//! redraws only after something changed and at most `ui.max_fps` times a
//! second. The trainer is always behind a handle (a socket to its process,
//! or a run read from disk). It joins the
//! state (`crate::app`) and the view (`crate::ui`), which know nothing of it.

use crate::app::pace::{is_progress, Pacer};
use crate::app::{App, AppInit, Effect, KeyMap, OverlayRun, RunState};
use crate::config::{Config, OnHangup};
use crate::data::Dataset;
use crate::tokenizer::Tokenizer;
use crate::train::{Event, Prepared, SampleSettings, TrainerHandle};
use crate::ui::{self, ColorDepth, Theme};
use anyhow::Context;
use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the loop wakes with nothing to do, to notice a signal. Waking
/// draws nothing.
const IDLE_WAKE: Duration = Duration::from_millis(200);
/// Training progress alone (steps, evaluations, attention maps) redraws at
/// most this often; keys, generated tokens and state changes still redraw at
/// once (capped by `ui.max_fps`). While nobody touches the workbench, the
/// charts take in progress only every `pace::IDLE_REFRESH` and a redraw in
/// between changes only the status bar's figures (`app::pace`): an idle
/// screen over SSH stays around 1 kB/s.
const PROGRESS_REFRESH: Duration = Duration::from_secs(1);
/// How long to wait for the trainer to save and end after the UI closed.
const TRAINER_GRACE: Duration = Duration::from_secs(120);

enum Msg {
    Input(crossterm::event::Event),
    Trainer(Event),
    TrainerGone,
    /// The run's data, loaded after the trainer started ([`LateData`]).
    Data(Box<anyhow::Result<Prepared>>),
}

/// Loads the run's data (config, record index, tokenizer) once its trainer
/// has prepared it, for a workbench opened while it was preparing: called
/// on a worker thread at `Event::Started`.
pub type LateData = Box<dyn FnOnce() -> anyhow::Result<Prepared> + Send>;

/// What the workbench starts with: a run's config and data, or (while its
/// trainer prepares the data) the config alone and how to load the rest.
struct Start {
    config: Config,
    run_dir: std::path::PathBuf,
    dataset: Arc<Dataset>,
    tokenizer: Option<Arc<Tokenizer>>,
    late: Option<LateData>,
}

/// Restores the terminal when dropped: on normal exit and on `?` errors.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn setup_terminal() -> std::io::Result<ratatui::DefaultTerminal> {
    crossterm::terminal::enable_raw_mode()?;
    if let Err(e) =
        crossterm::execute!(std::io::stdout(), crossterm::terminal::EnterAlternateScreen)
    {
        let _ = crossterm::terminal::disable_raw_mode();
        return Err(e);
    }
    ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))
        .inspect_err(|_| restore_terminal())
}

/// Leaves the alternate screen, raw mode and mouse capture; safe to repeat.
fn restore_terminal() {
    let _ = crossterm::execute!(
        std::io::stdout(),
        DisableMouseCapture,
        crossterm::terminal::LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = crossterm::terminal::disable_raw_mode();
}

/// The sampling settings the config asks for.
pub fn sample_settings(prepared: &Prepared) -> SampleSettings {
    settings_of(&prepared.config)
}

fn settings_of(config: &Config) -> SampleSettings {
    let s = &config.sample;
    SampleSettings {
        temperature: s.temperature as f32,
        top_k: s.top_k,
        top_p: s.top_p as f32,
        max_new_tokens: s.max_new_tokens,
        seed: s.seed,
    }
}

/// How the workbench ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The user left (or the terminal went away) with the trainer still
    /// there: detached from a live run, or left a finished one.
    Left,
    /// The training was stopped (or had ended) and the workbench closed.
    Ended,
}

/// Who the workbench is to its trainer, which decides what signals do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `headsup attach` / `headsup watch`: SIGHUP, SIGTERM and SIGINT
    /// detach (the trainer is someone else's).
    Viewer,
    /// `headsup` / `headsup tui`, which started the trainer: SIGTERM and
    /// SIGINT stop the training (checkpoint), SIGHUP and a terminal that
    /// went away do what `ui.on_hangup` says.
    Owner(OnHangup),
}

/// The workbench on a trainer in another process (its own, `headsup`, or
/// another's, `headsup attach`) or on a run read from disk (`headsup
/// watch`): `d` detaches (the UI ends, training goes on); `q` asks whether
/// to stop the training or leave it running.
pub fn run_attached(
    prepared: Prepared,
    handle: TrainerHandle,
    theme_override: Option<String>,
    role: Role,
    overlay: Option<OverlaySource>,
) -> anyhow::Result<Ending> {
    let start = Start {
        config: prepared.config,
        run_dir: prepared.run_dir,
        dataset: prepared.dataset,
        tokenizer: Some(prepared.tokenizer),
        late: None,
    };
    run(start, handle, theme_override, role, overlay)
}

/// As [`run_attached`], on a trainer that is still preparing its data: the
/// status bar shows its progress, the browser is empty until it has
/// started, then `late` loads the run's records and tokenizer. A failure
/// before the first step closes the workbench with that error.
pub fn run_attached_preparing(
    config: Config,
    run_dir: std::path::PathBuf,
    late: LateData,
    handle: TrainerHandle,
    theme_override: Option<String>,
    role: Role,
) -> anyhow::Result<Ending> {
    let start = Start {
        config,
        dataset: Arc::new(Dataset::from_records(
            "(the trainer is preparing the data)",
            Vec::new(),
        )),
        run_dir,
        tokenizer: None,
        late: Some(late),
    };
    run(start, handle, theme_override, role, None)
}

/// Other runs' curves for the loss chart (`headsup watch A B ...`): called
/// every [`OVERLAY_POLL`], it returns them when they changed.
pub type OverlaySource = Box<dyn FnMut() -> Option<Vec<OverlayRun>>>;

/// How often the overlaid runs are read again.
const OVERLAY_POLL: Duration = Duration::from_secs(2);

fn run(
    start: Start,
    handle: TrainerHandle,
    theme_override: Option<String>,
    role: Role,
    mut overlay: Option<OverlaySource>,
) -> anyhow::Result<Ending> {
    // Everything that can fail on user input fails before the terminal changes.
    let Start {
        config,
        run_dir,
        dataset,
        tokenizer,
        mut late,
    } = start;
    let ui_cfg = &config.ui;
    let theme_name = theme_override.unwrap_or_else(|| ui_cfg.theme.clone());
    let setup = Theme::load(
        &theme_name,
        Theme::user_dir().as_deref(),
        ColorDepth::detect(),
    )
    .map_err(anyhow::Error::from)
    .and_then(|theme| Ok((theme, KeyMap::from_config(&ui_cfg.keys)?)));
    let (theme, keymap) = match setup {
        Ok(v) => v,
        Err(e) => {
            handle.stop.store(true, Ordering::SeqCst);
            wait_for_trainer(handle.thread);
            return Err(e);
        }
    };
    // A signal either stops the training (the flag the trainer handle
    // forwards as `Command::Stop`) or detaches.
    let signalled = Arc::new(AtomicBool::new(false));
    let hangup = Arc::new(AtomicBool::new(false));
    let hangup_detaches = !matches!(role, Role::Owner(OnHangup::Stop));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGINT,
    ] {
        let detaches = match role {
            Role::Viewer => true,
            Role::Owner(_) => sig == signal_hook::consts::SIGHUP && hangup_detaches,
        };
        if detaches {
            signal_hook::flag::register(sig, hangup.clone())
                .context("installing a signal handler")?;
        } else {
            signal_hook::flag::register(sig, handle.stop.clone())
                .context("installing a signal handler")?;
            signal_hook::flag::register(sig, signalled.clone())
                .context("installing a signal handler")?;
        }
    }
    let frame_interval = Duration::from_secs_f64(1.0 / ui_cfg.max_fps.clamp(1, 240) as f64);

    let mut app = App::new(AppInit {
        run_name: config.name.clone(),
        run_dir,
        device: config.device.clone(),
        max_iters: config.train.max_iters,
        dataset,
        tokenizer,
        train_fraction: config.data.train_fraction,
        grad_clip: config.train.grad_clip,
        sample: settings_of(&config),
        keymap,
    });
    // A run still preparing its data: it failed before its first step.
    let mut failed_preparing = false;

    let TrainerHandle {
        commands,
        events,
        stop,
        thread,
    } = handle;
    let (tx, rx) = mpsc::channel::<Msg>();
    let input_done = Arc::new(AtomicBool::new(false));
    {
        let tx = tx.clone();
        std::thread::Builder::new()
            .name("trainer-events".into())
            .spawn(move || {
                for ev in events.iter() {
                    if tx.send(Msg::Trainer(ev)).is_err() {
                        return;
                    }
                }
                let _ = tx.send(Msg::TrainerGone);
            })
            .context("starting the event thread")?;
    }

    let mut terminal = setup_terminal().context("setting up the terminal")?;
    let _guard = TerminalGuard;
    // Restore the terminal when the UI thread panics. Other threads (the
    // trainer catches its own panics) must not tear the screen down under us.
    let ui_thread = std::thread::current().id();
    let prev_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == ui_thread {
            restore_terminal();
        }
        prev_hook(info);
    }));
    crossterm::execute!(std::io::stdout(), EnableMouseCapture).context("enabling the mouse")?;
    {
        let tx = tx.clone();
        let done = input_done.clone();
        std::thread::Builder::new()
            .name("terminal-input".into())
            .spawn(move || {
                use crossterm::event;
                while !done.load(Ordering::Relaxed) {
                    match event::poll(Duration::from_millis(250)) {
                        Ok(true) => match event::read() {
                            Ok(ev) => {
                                if tx.send(Msg::Input(ev)).is_err() {
                                    return;
                                }
                            }
                            Err(_) => return,
                        },
                        Ok(false) => {}
                        Err(_) => return,
                    }
                }
            })
            .context("starting the input thread")?;
    }
    // Kept for the late data's worker (given to it at `Started`).
    let mut data_tx = late.as_ref().map(|_| tx.clone());
    drop(tx);

    let mut next_overlay = Instant::now();
    let mut pacer = Pacer::new(Instant::now());
    let mut dirty = true;
    // Only training progress changed since the last draw.
    let mut progress_only = false;
    let mut last_draw: Option<Instant> = None;
    let mut detached = false;
    let result: anyhow::Result<()> = loop {
        if detached || hangup.load(Ordering::Relaxed) {
            detached = true;
            break Ok(());
        }
        if let Some(poll) = overlay.as_mut().filter(|_| Instant::now() >= next_overlay) {
            next_overlay = Instant::now() + OVERLAY_POLL;
            if let Some(runs) = poll() {
                app.loss.overlay = runs;
                dirty = true;
            }
        }
        // Scores and rollouts of a big probe, computed on the app's workers.
        if app.tick() {
            dirty = true;
            progress_only = false;
        }
        let now = Instant::now();
        if pacer.idle(now) != app.paced {
            app.paced = !app.paced;
            dirty = true;
        }
        let interval = if progress_only || !dirty {
            PROGRESS_REFRESH.max(frame_interval)
        } else {
            frame_interval
        };
        let slot = last_draw.is_none_or(|t| t.elapsed() >= interval);
        // Held progress reaches the panes at a redraw while the user is
        // about, every few seconds while idle.
        if pacer.due(now, slot) && pacer.fold_at(&mut app, now) {
            progress_only = !dirty || progress_only;
            dirty = true;
            send_score_effects(&mut app, &commands);
        }
        if dirty && slot {
            if let Err(e) = terminal.draw(|f| ui::draw(f, &app, &theme)) {
                if hangup_detaches {
                    // The terminal is gone: detach, training goes on.
                    detached = true;
                    break Ok(());
                }
                // The terminal is gone (e.g. a dropped SSH link): stop and save.
                stop.store(true, Ordering::SeqCst);
                break Err(anyhow::Error::from(e).context("drawing to the terminal"));
            }
            dirty = false;
            progress_only = false;
            last_draw = Some(Instant::now());
        }
        if app.should_quit {
            break Ok(());
        }
        let timeout = match (dirty, last_draw) {
            (true, Some(t)) => interval.saturating_sub(t.elapsed()).min(IDLE_WAKE),
            _ => IDLE_WAKE,
        };
        let first = match rx.recv_timeout(timeout) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                pacer.fold_at(&mut app, Instant::now());
                app.trainer_gone();
                app.should_quit = true;
                None
            }
        };
        if signalled.load(Ordering::Relaxed) && app.stop_requested() {
            dirty = true;
            progress_only = false;
        }
        // The browser's search worker streams its matches in.
        if app.poll_background() {
            dirty = true;
        }
        let size = terminal
            .size()
            .map(|s| ratatui::layout::Rect::new(0, 0, s.width, s.height));
        for msg in first
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()))
        {
            let progress = matches!(&msg, Msg::Trainer(ev) if is_progress(ev));
            let mut changed = true;
            if let Msg::Input(_) = &msg {
                pacer.input(&mut app, Instant::now());
            }
            let mut effects = match msg {
                Msg::Trainer(ev) => {
                    let (started, failed) = (
                        matches!(ev, Event::Started(_)),
                        matches!(ev, Event::Failed { .. }),
                    );
                    changed = pacer.event(&mut app, ev);
                    if started {
                        if let (Some(load), Some(tx)) = (late.take(), data_tx.take()) {
                            std::thread::Builder::new()
                                .name("late-data".into())
                                .spawn(move || {
                                    let _ = tx.send(Msg::Data(Box::new(load())));
                                })
                                .context("starting the data loader")?;
                        }
                    } else if failed && late.is_some() {
                        failed_preparing = true;
                        app.should_quit = true;
                    }
                    Vec::new()
                }
                Msg::Data(loaded) => {
                    match *loaded {
                        Ok(p) => {
                            let frac = p.config.data.train_fraction;
                            app.set_data(p.dataset, p.tokenizer, frac);
                        }
                        Err(e) => {
                            app.message =
                                Some(format!("the run's data is not available here: {e:#}"));
                        }
                    }
                    Vec::new()
                }
                Msg::TrainerGone => {
                    pacer.fold_at(&mut app, Instant::now());
                    app.trainer_gone();
                    Vec::new()
                }
                Msg::Input(crossterm::event::Event::Key(k)) => app.handle_key(k),
                Msg::Input(crossterm::event::Event::Mouse(m)) => match &size {
                    Ok(area) => {
                        let pos = ratatui::layout::Position::new(m.column, m.row);
                        let hit = ui::hit_test(&app, *area, pos);
                        app.handle_mouse(m, hit)
                    }
                    Err(_) => Vec::new(),
                },
                Msg::Input(_) => Vec::new(),
            };
            if changed {
                progress_only = if dirty {
                    progress_only && progress
                } else {
                    progress
                };
                dirty = true;
            }
            // The selected record's per-token losses, when it or the weights changed.
            effects.extend(app.score_effects());
            for eff in effects {
                match eff {
                    Effect::Send(cmd) => {
                        if commands.send(cmd).is_err() {
                            app.trainer_gone();
                        }
                    }
                    Effect::Detach => detached = true,
                    Effect::Export => {
                        let dir = app.run_dir.clone();
                        app.message = Some(match ui::export::export(&app, &dir) {
                            Ok(files) => format!(
                                "exported {} files to {}",
                                files.len(),
                                dir.join("exports").display()
                            ),
                            Err(e) => format!("export failed: {e}"),
                        });
                    }
                }
            }
        }
    };
    input_done.store(true, Ordering::Relaxed);
    pacer.fold_at(&mut app, Instant::now());
    drop(_guard);
    // Leaving a run that has ended (finished, stopped, failed) without
    // asking for a stop closes only this connection: other viewers keep the
    // trainer (it ends by itself once none is left).
    let left_ended = !app.stopping && app.state == RunState::Finished && result.is_ok();
    if detached || left_ended {
        // Closing the commands ends the connection; the trainer goes on.
        drop(commands);
        wait_for_trainer(thread);
        let run = crate::sanitize::escape(&app.run_dir.display().to_string());
        if app.state.is_live() {
            let _ = writeln!(
                std::io::stderr(),
                "headsup: detached; training goes on (output in {run}/train.log). `headsup attach {run}` comes back."
            );
        }
        return result.map(|()| Ending::Left);
    }
    if app.stopping && app.run.is_none() {
        let _ = writeln!(std::io::stderr(), "headsup: stopping the data preparation…");
    } else if app.stopping {
        // Not eprintln!: it panics when the terminal is gone (a dropped SSH
        // connection), and the checkpoint must still be waited for.
        let _ = writeln!(std::io::stderr(), "headsup: stopping, saving checkpoint…");
    }
    // The user asked for a stop (or the trainer is gone): make sure the
    // stop reached it, then wait for its last words.
    stop.store(true, Ordering::SeqCst);
    wait_for_trainer(thread);
    // What the trainer said while it stopped (its final checkpoint, or
    // that it could not be written) still counts for the exit status.
    let drain_until = Instant::now() + Duration::from_secs(2);
    while let Some(left) = drain_until.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left.min(Duration::from_millis(100))) {
            Ok(Msg::Trainer(ev)) => app.update_event(ev),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    result?;
    if let Some(lost) = &app.final_checkpoint_lost {
        anyhow::bail!("{}", crate::sanitize::escape(lost));
    }
    if let (RunState::Failed(e), true) = (&app.state, failed_preparing) {
        // Its own words name the data and what to do.
        anyhow::bail!("{}", crate::sanitize::escape(e));
    }
    if app.state == RunState::Stopped && app.run.is_none() {
        let _ = writeln!(
            std::io::stderr(),
            "headsup: {}",
            crate::data::load::CANCELLED
        );
    }
    if let RunState::Failed(e) = &app.state {
        anyhow::bail!(
            "training failed at step {}: {}",
            app.step,
            crate::sanitize::escape(e)
        );
    }
    Ok(Ending::Ended)
}

/// Asks the trainer for the selected record's per-token losses when the
/// weights changed (after held evaluations were folded in).
fn send_score_effects(app: &mut App, commands: &mpsc::Sender<crate::train::Command>) {
    for eff in app.score_effects() {
        if let Effect::Send(cmd) = eff {
            if commands.send(cmd).is_err() {
                app.trainer_gone();
            }
        }
    }
}

/// Waits (bounded) for the trainer thread to end; it saves on stop.
fn wait_for_trainer(thread: std::thread::JoinHandle<()>) {
    let start = Instant::now();
    while !thread.is_finished() && start.elapsed() < TRAINER_GRACE {
        std::thread::sleep(Duration::from_millis(50));
    }
    if thread.is_finished() {
        let _ = thread.join();
    }
}
