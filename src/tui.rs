//! The terminal runtime of the workbench: terminal set-up and restore (also
//! on error, panic and signals), one channel merging terminal input, trainer
//! events and signals, the `Effect`s the app asks for, and redraws only after
//! something changed and at most `ui.max_fps` times a second. It joins the
//! state (`crate::app`) and the view (`crate::ui`), which know nothing of it.

use crate::app::{App, AppInit, Effect, KeyMap, RunState};
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
/// How long to wait for the trainer to save and end after the UI closed.
const TRAINER_GRACE: Duration = Duration::from_secs(120);

enum Msg {
    Input(crossterm::event::Event),
    Trainer(Event),
    TrainerGone,
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
    let s = &prepared.config.sample;
    SampleSettings {
        temperature: s.temperature as f32,
        top_k: s.top_k,
        top_p: s.top_p as f32,
        max_new_tokens: s.max_new_tokens,
        seed: s.seed,
    }
}

/// Runs the workbench until the user quits (training stopped and saved) or
/// training ends and the user quits. Called after `train::spawn`.
pub fn run_workbench(
    prepared: Prepared,
    handle: TrainerHandle,
    theme_override: Option<String>,
) -> anyhow::Result<()> {
    run(prepared, handle, theme_override, false)
}

/// The workbench on a trainer in another process (`headsup attach`) or on
/// a run read from disk (`headsup watch`): `d`, SIGHUP and SIGTERM detach
/// (the UI ends, training goes on); `q` asks, then stops the training.
pub fn run_attached(
    prepared: Prepared,
    handle: TrainerHandle,
    theme_override: Option<String>,
) -> anyhow::Result<()> {
    run(prepared, handle, theme_override, true)
}

fn run(
    prepared: Prepared,
    handle: TrainerHandle,
    theme_override: Option<String>,
    attached: bool,
) -> anyhow::Result<()> {
    // Everything that can fail on user input fails before the terminal changes.
    let ui_cfg = &prepared.config.ui;
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
    let signalled = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGINT,
    ] {
        // Attached, a signal detaches: the trainer is not this process's.
        if !attached {
            signal_hook::flag::register(sig, handle.stop.clone())
                .context("installing a signal handler")?;
        }
        signal_hook::flag::register(sig, signalled.clone())
            .context("installing a signal handler")?;
    }
    let frame_interval = Duration::from_secs_f64(1.0 / ui_cfg.max_fps.clamp(1, 240) as f64);

    let mut app = App::new(AppInit {
        run_name: prepared.config.name.clone(),
        run_dir: prepared.run_dir.clone(),
        device: prepared.config.device.clone(),
        max_iters: prepared.config.train.max_iters,
        dataset: prepared.dataset.clone(),
        tokenizer: Some(prepared.tokenizer.clone()),
        train_fraction: prepared.config.data.train_fraction,
        grad_clip: prepared.config.train.grad_clip,
        sample: sample_settings(&prepared),
        keymap,
    });

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
    drop(tx);

    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    let mut detached = false;
    let result: anyhow::Result<()> = loop {
        if attached && (detached || signalled.load(Ordering::Relaxed)) {
            detached = true;
            break Ok(());
        }
        if dirty && last_draw.is_none_or(|t| t.elapsed() >= frame_interval) {
            if let Err(e) = terminal.draw(|f| ui::draw(f, &app, &theme)) {
                if attached {
                    // The terminal is gone: detach, training goes on.
                    detached = true;
                    break Ok(());
                }
                // The terminal is gone (e.g. a dropped SSH link): stop and save.
                stop.store(true, Ordering::SeqCst);
                break Err(anyhow::Error::from(e).context("drawing to the terminal"));
            }
            dirty = false;
            last_draw = Some(Instant::now());
        }
        if app.should_quit {
            break Ok(());
        }
        let timeout = match (dirty, last_draw) {
            (true, Some(t)) => frame_interval.saturating_sub(t.elapsed()),
            _ => IDLE_WAKE,
        };
        let first = match rx.recv_timeout(timeout) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                app.trainer_gone();
                app.should_quit = true;
                None
            }
        };
        if !attached && signalled.load(Ordering::Relaxed) && app.stop_requested() {
            dirty = true;
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
            dirty = true;
            let effects = match msg {
                Msg::Trainer(ev) => {
                    app.update_event(ev);
                    Vec::new()
                }
                Msg::TrainerGone => {
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
            for eff in effects {
                match eff {
                    Effect::Send(cmd) => {
                        if commands.send(cmd).is_err() {
                            app.trainer_gone();
                        }
                    }
                    Effect::Detach if attached => detached = true,
                    Effect::Detach => {
                        app.message = Some(
                            "this workbench runs its own trainer and cannot detach; use `headsup train` and `headsup attach` for that".into(),
                        );
                    }
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
    drop(_guard);
    if detached {
        // Closing the commands ends the connection; the trainer goes on.
        drop(commands);
        wait_for_trainer(thread);
        let _ = writeln!(
            std::io::stderr(),
            "headsup: detached; training goes on. `headsup attach {}` comes back.",
            crate::sanitize::escape(&app.run_dir.display().to_string())
        );
        return result;
    }
    if app.stopping {
        // Not eprintln!: it panics when the terminal is gone (a dropped SSH
        // connection), and the checkpoint must still be waited for.
        let _ = writeln!(std::io::stderr(), "headsup: stopping, saving checkpoint…");
    }
    // This workbench's own trainer ends with it: a finished run's trainer
    // waits for commands (probes, generations) until told to stop, and the
    // run's socket server keeps its command channel open.
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
    if let RunState::Failed(e) = &app.state {
        anyhow::bail!(
            "training failed at step {}: {}",
            app.step,
            crate::sanitize::escape(e)
        );
    }
    Ok(())
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

/// The CLI's entry: spawns the trainer and opens the workbench (the caller
/// chooses the headless printer instead when stdout is not a terminal).
pub fn spawn_and_run(prepared: Prepared, theme: Option<String>) -> anyhow::Result<()> {
    // Served on the run's socket too; the server's log goes to a file (the
    // terminal is the workbench's).
    let log = crate::serve::run::file_log(&prepared.run_dir.join("serve.log"));
    let handle = crate::serve::run::spawn_served(&prepared, log)?;
    run_workbench(prepared, handle, theme)
}
