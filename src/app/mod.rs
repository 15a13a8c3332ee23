//! The workbench's state. `App` holds everything the screen shows; trainer
//! events are folded in by `update_event`, keys by `handle_key` and mouse
//! clicks (already resolved by the view's `ui::hit_test`) by `handle_mouse`,
//! through `Action`s from the `KeyMap`; they return the `Effect`s the event
//! loop (`crate::tui`) carries out. `App` knows nothing of the view: drawing
//! (`crate::ui::draw`) reads `&App`, never the reverse.
//!
//! Input mode (`InputMode`): the playground's input line takes keys only
//! while editing. `i` or Enter (the `input` action) on the focused
//! playground starts editing; Esc stops; Tab/Shift-Tab still move focus (and
//! stop editing); ctrl-c always quits. The browser's `/` search works the
//! same way (Enter keeps the filter, Esc clears it). The help overlay and the
//! quit question take the next key and return to the mode they were opened in.

pub mod attention;
pub mod browser;
pub mod heads;
pub mod history;
pub mod keymap;
pub mod loss;
pub mod pace;
pub mod playground;
pub mod record_loss;
pub mod series;

pub use attention::AttentionView;
pub use browser::{prefix_at_char_boundary, Browser, PIECES_PREFIX_BYTES};
pub use keymap::{Action, Key, KeyMap, KeyMapError};
pub use loss::{LossView, OverlayRun};
pub use playground::{Entry, GenToken, InputLine, Playground, TokenAt};
pub use record_loss::RecordLossView;
pub use series::Series;

use crate::data::{Dataset, DatasetStats};
use crate::tokenizer::Tokenizer;
use crate::train::{Command, Event, FillRequest, GenerateRequest, RunInfo, SampleSettings};
use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use std::path::PathBuf;
use std::sync::Arc;

/// The four panes, in focus order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Browser,
    Loss,
    Attention,
    Playground,
}

impl Pane {
    pub const ALL: [Pane; 4] = [Pane::Browser, Pane::Loss, Pane::Attention, Pane::Playground];
    pub fn index(self) -> usize {
        match self {
            Pane::Browser => 0,
            Pane::Loss => 1,
            Pane::Attention => 2,
            Pane::Playground => 3,
        }
    }
    fn next(self) -> Pane {
        Pane::ALL[(self.index() + 1) % 4]
    }
    fn prev(self) -> Pane {
        Pane::ALL[(self.index() + 3) % 4]
    }
}

/// Who takes the next key. One value instead of a chain of flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputMode {
    /// Keys are looked up in the key map.
    #[default]
    Normal,
    /// The browser's `/` search line takes the keys.
    Search,
    /// The playground's input line takes the keys (the playground has focus).
    Edit,
    /// The help overlay is open; any key closes it. `editing`: return to `Edit`.
    Help { editing: bool },
    /// "Stop the training or leave it running?": `s`/`y`/Enter stop it,
    /// `d`/`l` leave (detach), Esc or any other key cancels.
    ConfirmQuit { editing: bool },
    /// "Continue for how many more steps?" on a finished run: digits,
    /// Enter sends `Command::Continue`, Esc cancels.
    ContinueSteps { editing: bool },
}

impl InputMode {
    /// The mode an overlay opened from `self` returns to.
    fn editing(self) -> bool {
        matches!(
            self,
            InputMode::Edit
                | InputMode::Help { editing: true }
                | InputMode::ConfirmQuit { editing: true }
                | InputMode::ContinueSteps { editing: true }
        )
    }
}

/// The trainer's state as the status bar shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    Starting,
    Running,
    Paused(Option<String>),
    Finished,
    Stopped,
    Failed(String),
    /// No trainer: a checkpoint opened for inspection.
    Inspecting,
}

impl RunState {
    /// Training is still going (quitting should ask first).
    pub fn is_live(&self) -> bool {
        matches!(
            self,
            RunState::Starting | RunState::Running | RunState::Paused(_)
        )
    }
}

/// How far the trainer's data preparation is (from `Event::Preparing`).
#[derive(Debug, Clone, PartialEq)]
pub struct Preparing {
    pub phase: String,
    pub done: u64,
    pub total: u64,
    pub elapsed_secs: f64,
}

impl Preparing {
    /// `(line, fraction done, MB/s, ETA in seconds)`.
    pub fn describe(&self) -> (String, f64, f64, Option<f64>) {
        crate::train::preparing_line(&self.phase, self.done, self.total, self.elapsed_secs)
    }
}

/// Something the event loop must do for the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Send(Command),
    /// Export the loss chart and the heatmap through plotters.
    Export,
    /// Leave the workbench and let training go on.
    Detach,
}

/// Where a click landed, as the view's `ui::hit_test` works it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub pane: Pane,
    /// The row of the browser's (filtered) record list, if a record was hit.
    pub record: Option<usize>,
}

/// What a new `App` needs (the event loop builds it from `Prepared`).
pub struct AppInit {
    pub run_name: String,
    pub run_dir: PathBuf,
    pub device: String,
    pub max_iters: usize,
    pub dataset: Arc<Dataset>,
    pub tokenizer: Option<Arc<Tokenizer>>,
    pub train_fraction: f64,
    /// `train.grad_clip`, marked on the gradient-norm chart (<= 0: none).
    pub grad_clip: f64,
    pub sample: SampleSettings,
    pub keymap: KeyMap,
}

pub struct App {
    pub run_name: String,
    pub run_dir: PathBuf,
    pub device: String,
    pub dataset: Arc<Dataset>,
    pub tokenizer: Option<Arc<Tokenizer>>,
    pub stats: DatasetStats,
    pub keymap: KeyMap,
    pub run: Option<RunInfo>,
    pub state: RunState,
    /// Stop was asked for; waiting for `Event::Stopped`.
    pub stopping: bool,
    pub step: usize,
    pub max_iters: usize,
    pub tokens_per_sec: f64,
    pub eta_secs: Option<f64>,
    pub last_loss: Option<f32>,
    pub focus: Pane,
    pub zoom: bool,
    pub mode: InputMode,
    pub should_quit: bool,
    /// The latest log line (checkpoint saved, export written...).
    pub message: Option<String>,
    /// A checkpoint that could not be written: shown in the status bar until
    /// a later checkpoint succeeds (never scrolled away by other messages).
    pub checkpoint_warning: Option<String>,
    /// The steps typed in the continue question.
    pub continue_input: String,
    /// The final checkpoint (end, stop, signal) could not be written: the
    /// steps since the latest complete one are lost; the workbench exits
    /// non-zero with this line.
    pub final_checkpoint_lost: Option<String>,
    /// Data preparation before the first step, as the trainer reports it
    /// (`Event::Preparing`): shown as a gauge in the status bar until `Started`.
    pub preparing: Option<Preparing>,
    pub browser: Browser,
    pub loss: LossView,
    pub attention: AttentionView,
    pub playground: Playground,
    /// Per-token losses of the selected record and the sample scores.
    pub record_loss: RecordLossView,
    /// Nobody has touched the workbench for a while: training progress
    /// reaches the charts only every [`pace::IDLE_REFRESH`] (`pace::Pacer`);
    /// the loss pane's title says so.
    pub paced: bool,
}

impl App {
    pub fn new(init: AppInit) -> App {
        let stats = init
            .dataset
            .stats(init.tokenizer.as_deref(), init.train_fraction);
        let mut app = App {
            run_name: init.run_name,
            run_dir: init.run_dir,
            device: init.device,
            dataset: init.dataset,
            tokenizer: init.tokenizer,
            stats,
            keymap: init.keymap,
            run: None,
            state: RunState::Starting,
            stopping: false,
            step: 0,
            max_iters: init.max_iters,
            tokens_per_sec: 0.0,
            eta_secs: None,
            last_loss: None,
            focus: Pane::Browser,
            zoom: false,
            mode: InputMode::Normal,
            should_quit: false,
            message: None,
            checkpoint_warning: None,
            continue_input: String::new(),
            final_checkpoint_lost: None,
            preparing: None,
            browser: Browser::default(),
            loss: LossView::with_grad_clip(init.grad_clip),
            attention: AttentionView::default(),
            playground: Playground::new(init.sample),
            record_loss: RecordLossView::default(),
            paced: false,
        };
        app.apply_filter();
        app
    }

    /// The run's dataset and tokenizer, when they come after the workbench
    /// opened (its trainer was still preparing the data): the browser and
    /// the statistics start over on them.
    pub fn set_data(
        &mut self,
        dataset: Arc<Dataset>,
        tokenizer: Arc<Tokenizer>,
        train_fraction: f64,
    ) {
        self.stats = dataset.stats(Some(&tokenizer), train_fraction);
        self.dataset = dataset;
        self.tokenizer = Some(tokenizer);
        self.browser = Browser::default();
        self.apply_filter();
    }

    /// The help overlay is open.
    pub fn help_open(&self) -> bool {
        matches!(self.mode, InputMode::Help { .. })
    }

    /// The quit question is shown.
    pub fn confirming_quit(&self) -> bool {
        matches!(self.mode, InputMode::ConfirmQuit { .. })
    }

    /// The continue question (how many more steps) is shown.
    pub fn asking_continue(&self) -> bool {
        matches!(self.mode, InputMode::ContinueSteps { .. })
    }

    /// The browser's search line is being typed.
    pub fn searching(&self) -> bool {
        self.mode == InputMode::Search
    }

    /// The playground's input line takes keys (also under an overlay opened from it).
    pub fn editing(&self) -> bool {
        self.mode.editing()
    }

    /// Collects the results of the app's own workers (a big probe's scores,
    /// a rollout); true when the screen changed. The event loop calls it on
    /// every wake-up.
    pub fn tick(&mut self) -> bool {
        self.attention.poll()
    }

    /// The status bar's figures of a step (step, tokens/s, ETA) without the
    /// step's loss point: what an idle workbench shows between chart
    /// refreshes (`pace::Pacer`); the step itself is folded in later.
    pub fn note_step(&mut self, s: &crate::train::StepStats) {
        self.step = s.step;
        self.tokens_per_sec = s.tokens_per_sec;
        self.eta_secs = Some(s.eta_secs);
    }

    /// Folds one trainer event into the state.
    pub fn update_event(&mut self, ev: Event) {
        self.attention.poll();
        match ev {
            Event::Started(info) => {
                self.preparing = None;
                self.step = info.start_step;
                self.max_iters = info.max_iters;
                self.device = info.device.clone();
                self.run_name = info.name.clone();
                self.run_dir = info.run_dir.clone();
                self.run = Some(info);
                if !self.stopping {
                    self.state = RunState::Running;
                }
            }
            Event::Step(s) => {
                self.step = s.step;
                self.tokens_per_sec = s.tokens_per_sec;
                self.eta_secs = Some(s.eta_secs);
                if s.loss.is_finite() {
                    self.last_loss = Some(s.loss);
                }
                self.loss.on_step(&s);
            }
            Event::Eval(e) => {
                self.loss.on_eval(&e);
                self.weights_changed();
            }
            Event::Attention(map) => self.attention.on_map(map),
            Event::Induction(s) => self.attention.on_induction(s),
            Event::Token {
                id,
                text,
                prob,
                alts,
            } => self.playground.on_token(id, &text, prob, alts),
            Event::GenerationDone {
                id,
                tokens,
                tokens_per_sec,
            } => self.playground.on_done(id, tokens, tokens_per_sec),
            Event::Filled(r) => self.playground.on_filled(r),
            Event::Checkpoint { step, path } => {
                if self.final_checkpoint_lost.is_none() {
                    self.checkpoint_warning = None;
                }
                self.message = Some(format!(
                    "checkpoint saved at step {step}: {}",
                    path.display()
                ));
            }
            // The `Paused` event that follows carries the reason.
            Event::NonFinite { .. } => {}
            Event::CheckpointFailed {
                step,
                path,
                error,
                latest,
                last,
                next_try,
            } => {
                let line = crate::train::checkpoint_failed_line(
                    step, &path, &error, latest, last, next_try,
                );
                self.message = Some(line.clone());
                self.checkpoint_warning = Some(line.clone());
                if last {
                    self.final_checkpoint_lost = Some(line);
                }
            }
            Event::Paused { step, reason } => {
                self.step = step;
                self.state = RunState::Paused(reason);
            }
            Event::Resumed { step } => {
                self.step = step;
                self.state = RunState::Running;
            }
            Event::Finished { step } => {
                self.step = step;
                self.state = RunState::Finished;
                self.eta_secs = Some(0.0);
                if self.stopping {
                    self.should_quit = true;
                }
            }
            Event::Stopped { step } => {
                self.step = step;
                self.state = RunState::Stopped;
                if self.stopping {
                    self.should_quit = true;
                }
            }
            Event::Failed { step, error } => {
                self.step = step;
                self.state = RunState::Failed(error);
                if self.stopping {
                    self.should_quit = true;
                }
            }
            Event::Log(msg) => self.message = Some(msg),
            Event::RecordLoss(r) => self.on_record_loss(r),
            Event::ScoreDone {
                id,
                total,
                cancelled,
                note,
                ..
            } => self.on_score_done(id, total, cancelled, note),
            Event::Inspecting { checkpoint } => {
                self.record_loss.inspecting = Some(checkpoint);
                self.state = RunState::Inspecting;
            }
            Event::Preparing {
                phase,
                done,
                total,
                elapsed_secs,
            } => {
                self.preparing = Some(Preparing {
                    phase,
                    done,
                    total,
                    elapsed_secs,
                })
            }
        }
    }

    /// The trainer's channel closed: no more events will come.
    pub fn trainer_gone(&mut self) {
        if self.state.is_live() && self.stopping {
            // Asked to stop, a trainer in another process may exit before
            // its `Stopped` reaches this viewer: its going away is the answer
            // (its final record and checkpoint are in the run directory).
            self.state = RunState::Stopped;
        } else if self.state.is_live() {
            self.state = RunState::Failed("the training thread ended without a word".into());
        }
        if self.stopping {
            self.should_quit = true;
        }
    }

    /// A stop was requested from outside (a signal): show it and quit once saved.
    pub fn stop_requested(&mut self) -> bool {
        if self.stopping {
            return false;
        }
        self.stopping = true;
        if !self.state.is_live() {
            self.should_quit = true;
        }
        true
    }

    /// One key press. Returns what the loop must do.
    pub fn handle_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let action = self.keymap.action(&key);
        if action == Some(Action::ForceQuit) {
            return self.quit_now();
        }
        match self.mode {
            InputMode::ConfirmQuit { editing } => {
                self.mode = back_to(editing);
                match key.code {
                    KeyCode::Char('y' | 'Y' | 's' | 'S') | KeyCode::Enter => self.quit_now(),
                    KeyCode::Char('d' | 'D' | 'l' | 'L') => vec![Effect::Detach],
                    _ => Vec::new(),
                }
            }
            InputMode::ContinueSteps { editing } => match key.code {
                KeyCode::Char(c) if c.is_ascii_digit() && self.continue_input.len() < 9 => {
                    self.continue_input.push(c);
                    Vec::new()
                }
                KeyCode::Backspace => {
                    self.continue_input.pop();
                    Vec::new()
                }
                KeyCode::Enter => {
                    self.mode = back_to(editing);
                    match self.continue_input.parse::<usize>() {
                        Ok(n) if n > 0 && self.state == RunState::Finished => {
                            self.message = Some(format!("continuing for {n} more steps…"));
                            vec![Effect::Send(Command::Continue {
                                max_iters: self.step + n,
                            })]
                        }
                        _ => Vec::new(),
                    }
                }
                KeyCode::Char(_) => Vec::new(),
                _ => {
                    self.mode = back_to(editing);
                    Vec::new()
                }
            },
            InputMode::Help { editing } => {
                // Any key closes the help.
                self.mode = back_to(editing);
                Vec::new()
            }
            InputMode::Search => {
                self.search_key(key);
                Vec::new()
            }
            InputMode::Edit => match self.input_key(key) {
                Some(effects) => effects,
                None => action.map_or_else(Vec::new, |a| self.update(a)),
            },
            InputMode::Normal => action.map_or_else(Vec::new, |a| self.update(a)),
        }
    }

    /// Playground editing keys; `None` passes the key on (Tab, ctrl-keys).
    fn input_key(&mut self, key: KeyEvent) -> Option<Vec<Effect>> {
        let pg = &mut self.playground;
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Esc => self.mode = InputMode::Normal,
            KeyCode::Enter => {
                let masked = self.run.as_ref().is_some_and(|r| r.masked_lm);
                let submit = if masked {
                    pg.submit_fill()
                } else {
                    pg.submit()
                };
                match submit {
                    playground::Submit::Generate { id, prompt } => {
                        return Some(vec![Effect::Send(Command::Generate(GenerateRequest {
                            id,
                            prompt,
                            settings: pg.settings,
                        }))]);
                    }
                    playground::Submit::Fill { id, text } => {
                        return Some(vec![Effect::Send(Command::Fill(FillRequest {
                            id,
                            text,
                            k: playground::FILL_K,
                        }))]);
                    }
                    _ => {}
                }
            }
            KeyCode::Char('a') if ctrl => pg.input.home(),
            KeyCode::Char('e') if ctrl => pg.input.end(),
            KeyCode::Char('u') if ctrl => {
                pg.input.take();
            }
            KeyCode::Char(_) if ctrl => return None,
            KeyCode::Char(c) => pg.input.insert(c),
            KeyCode::Backspace => pg.input.backspace(),
            KeyCode::Delete => pg.input.delete(),
            KeyCode::Left => pg.input.left(),
            KeyCode::Right => pg.input.right(),
            KeyCode::Home => pg.input.home(),
            KeyCode::End => pg.input.end(),
            KeyCode::Up => pg.history_prev(),
            KeyCode::Down => pg.history_next(),
            KeyCode::PageUp => pg.scroll = pg.scroll.saturating_add(5),
            KeyCode::PageDown => pg.scroll = pg.scroll.saturating_sub(5),
            KeyCode::Tab | KeyCode::BackTab => {
                self.mode = InputMode::Normal;
                return None;
            }
            _ => {}
        }
        Some(Vec::new())
    }

    fn search_key(&mut self, key: KeyEvent) {
        let b = &mut self.browser;
        match key.code {
            KeyCode::Esc => {
                self.mode = InputMode::Normal;
                b.search.take();
                b.filter.clear();
            }
            KeyCode::Enter => self.mode = InputMode::Normal,
            KeyCode::Backspace => b.search.backspace(),
            KeyCode::Left => b.search.left(),
            KeyCode::Right => b.search.right(),
            KeyCode::Home => b.search.home(),
            KeyCode::End => b.search.end(),
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                b.search.insert(c)
            }
            _ => return,
        }
        self.browser.filter = self.browser.search.text.clone();
        self.apply_filter();
    }

    fn quit_now(&mut self) -> Vec<Effect> {
        if let InputMode::ConfirmQuit { editing } = self.mode {
            self.mode = back_to(editing);
        }
        if self.state.is_live() {
            if self.stopping {
                return Vec::new();
            }
            self.stopping = true;
            vec![Effect::Send(Command::Stop)]
        } else {
            self.should_quit = true;
            Vec::new()
        }
    }

    /// Carries out one action.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        let mut out = Vec::new();
        match action {
            Action::Quit => {
                if self.state.is_live() && !self.stopping {
                    self.mode = InputMode::ConfirmQuit {
                        editing: self.mode.editing(),
                    };
                } else if !self.stopping {
                    self.should_quit = true;
                }
            }
            Action::ForceQuit => return self.quit_now(),
            Action::Help => {
                self.mode = match self.mode {
                    InputMode::Help { editing } => back_to(editing),
                    m => InputMode::Help {
                        editing: m.editing(),
                    },
                }
            }
            Action::FocusNext => self.set_focus(self.focus.next()),
            Action::FocusPrev => self.set_focus(self.focus.prev()),
            Action::FocusBrowser => self.set_focus(Pane::Browser),
            Action::FocusLoss => self.set_focus(Pane::Loss),
            Action::FocusAttention => self.set_focus(Pane::Attention),
            Action::FocusPlayground => self.set_focus(Pane::Playground),
            Action::Zoom => self.zoom = !self.zoom,
            Action::Pause | Action::Save | Action::Detach if self.inspecting() => {
                self.message = Some(record_loss::INSPECTING.into());
            }
            Action::Pause => match self.state {
                RunState::Running | RunState::Starting if !self.stopping => {
                    out.push(Effect::Send(Command::Pause))
                }
                RunState::Paused(_) if !self.stopping => out.push(Effect::Send(Command::Resume)),
                _ => {}
            },
            Action::Save => {
                if self.state.is_live() {
                    out.push(Effect::Send(Command::Save));
                    self.message = Some("saving a checkpoint…".into());
                }
            }
            Action::Export => out.push(Effect::Export),
            Action::Detach => out.push(Effect::Detach),
            Action::Continue => {
                if self.state == RunState::Finished && !self.stopping {
                    // The run's own length again, as a start.
                    let first = self.run.as_ref().map_or(0, |r| r.start_step);
                    self.continue_input = self.max_iters.saturating_sub(first).max(1).to_string();
                    self.mode = InputMode::ContinueSteps {
                        editing: self.mode.editing(),
                    };
                } else {
                    self.message = Some("continue (c) applies to a finished run".into());
                }
            }
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-10),
            Action::PageDown => self.move_by(10),
            Action::First | Action::Last if self.focus == Pane::Browser => {
                let to = if action == Action::First {
                    0
                } else {
                    usize::MAX
                };
                self.select(to);
            }
            Action::First | Action::Last => {}
            Action::Search => {
                if self.focus == Pane::Browser {
                    self.mode = InputMode::Search;
                    let f = self.browser.filter.clone();
                    self.browser.search.set(&f);
                }
            }
            Action::Smooth => self.loss.smooth = !self.loss.smooth,
            Action::SmoothMore => self.loss.smooth_more(),
            Action::SmoothLess => self.loss.smooth_less(),
            Action::LogScale => self.loss.log_scale = !self.loss.log_scale,
            Action::Window => self.loss.recent = !self.loss.recent,
            Action::AlignX => {
                if self.loss.overlay.is_empty() {
                    self.message = Some("x: aligns several runs (headsup watch A B ...)".into());
                } else {
                    self.loss.by_tokens = !self.loss.by_tokens;
                }
            }
            Action::GradNorm => self.loss.show_grad = !self.loss.show_grad,
            Action::Masking => {
                if self.run.as_ref().is_some_and(|r| r.masked_lm) {
                    let v = &mut self.record_loss;
                    v.masked_view = !v.masked_view;
                    self.message = Some(if v.masked_view {
                        "dataset: the selected record masked as in training, with the model's top-1 at each chosen position".into()
                    } else {
                        "dataset: the selected record as text".into()
                    });
                } else {
                    self.message = Some(
                        "masking (M) applies to a masked-LM run (model.arch = \"bert\")".into(),
                    );
                }
            }
            Action::LayerPrev => self.attention.step_layer(-1),
            Action::LayerNext => self.attention.step_layer(1),
            Action::HeadPrev => self.attention.step_head(-1),
            Action::HeadNext => self.attention.step_head(1),
            Action::Overview => self.attention.toggle_overview(),
            Action::Older => self.attention.scrub(-1),
            Action::Newer => self.attention.scrub(1),
            Action::Fit => self.attention.fit = !self.attention.fit,
            Action::HeadsTable => self.attention.toggle_table(),
            Action::SortNext => {
                if self.focus == Pane::Browser {
                    self.toggle_sort();
                } else if self.attention.table {
                    self.attention.sort_next()
                }
            }
            Action::ScoreSample => {
                if self.focus == Pane::Browser {
                    out.extend(self.toggle_sample());
                }
            }
            Action::Probe => {
                // From the playground: its last prompt and answer; elsewhere
                // the selected record.
                let (text, what) = if self.focus == Pane::Playground {
                    (
                        self.playground.last_exchange(),
                        "the last prompt and answer",
                    )
                } else {
                    (
                        self.selected_record().map(|r| r.text.clone()),
                        "the selected record",
                    )
                };
                let text = text
                    .map(|t| crate::sanitize::truncate_to_width(&t, 4096))
                    .filter(|t| !t.is_empty());
                self.message = Some(match &text {
                    Some(_) => format!("probing attention on {what}…"),
                    None => "probing attention…".into(),
                });
                out.push(Effect::Send(Command::Probe { text }));
            }
            Action::TokenPrev | Action::TokenNext => {
                if self.focus == Pane::Playground {
                    let delta = if action == Action::TokenPrev { -1 } else { 1 };
                    if !self.playground.move_token(delta) {
                        self.message = Some("no generated token to select yet".into());
                    }
                }
            }
            Action::Input => match self.focus {
                Pane::Playground => self.mode = InputMode::Edit,
                Pane::Attention => {
                    self.attention.open();
                }
                _ => {}
            },
        }
        out
    }

    fn set_focus(&mut self, pane: Pane) {
        if pane != Pane::Playground && self.mode == InputMode::Edit {
            self.mode = InputMode::Normal;
        }
        self.focus = pane;
    }

    fn move_by(&mut self, delta: isize) {
        match self.focus {
            Pane::Browser => self
                .browser
                .move_by(delta, &self.dataset, self.tokenizer.as_deref()),
            Pane::Attention => self.attention.move_cursor(delta),
            Pane::Playground => {
                let pg = &mut self.playground;
                pg.scroll = (pg.scroll as isize - delta).max(0) as usize;
            }
            Pane::Loss => {}
        }
    }

    /// Selects a row of the (filtered) record list and re-cuts its tokens.
    pub fn select(&mut self, visible_index: usize) {
        self.browser
            .select(visible_index, &self.dataset, self.tokenizer.as_deref());
    }

    pub fn selected_record(&self) -> Option<&crate::data::Record> {
        self.browser.selected_record(&self.dataset)
    }

    /// Takes in what background work (the browser's search) produced; true
    /// when the screen needs a redraw. The event loop calls it when it wakes.
    pub fn poll_background(&mut self) -> bool {
        self.browser.poll(&self.dataset, self.tokenizer.as_deref())
    }

    /// Recomputes the visible records from the filter and keeps the
    /// selection in range.
    pub fn apply_filter(&mut self) {
        self.browser
            .apply_filter(&self.dataset, self.tokenizer.as_deref());
        if self.record_loss.sorted {
            self.sort_by_loss(false);
        }
    }

    /// A mouse event; `hit` is where the view (`ui::hit_test`) says it landed.
    pub fn handle_mouse(&mut self, ev: MouseEvent, hit: Option<Hit>) -> Vec<Effect> {
        match ev.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                if let Some(hit) = hit {
                    self.set_focus(hit.pane);
                    if let Some(row) = hit.record {
                        self.select(row);
                    }
                }
            }
            MouseEventKind::ScrollDown => self.move_by(1),
            MouseEventKind::ScrollUp => self.move_by(-1),
            _ => {}
        }
        Vec::new()
    }

    /// The step shown as progress: `step / max_iters`.
    pub fn progress(&self) -> f64 {
        if self.max_iters == 0 {
            0.0
        } else {
            (self.step as f64 / self.max_iters as f64).clamp(0.0, 1.0)
        }
    }
}

fn back_to(editing: bool) -> InputMode {
    if editing {
        InputMode::Edit
    } else {
        InputMode::Normal
    }
}
