//! The workbench's state. `App` holds everything the screen shows; trainer
//! events are folded in by `update_event`, keys and mouse by `handle_key` /
//! `handle_mouse` (through `Action`s from the `KeyMap`), which return the
//! `Effect`s the event loop carries out. Drawing (`crate::ui::draw`) is a pure
//! function of `&App`.
//!
//! Input mode: the playground's input line takes keys only while editing.
//! `i` or Enter (the `input` action) on the focused playground starts editing;
//! Esc stops; Tab/Shift-Tab still move focus (and stop editing); ctrl-c always
//! quits. The browser's `/` search works the same way (Enter keeps the filter,
//! Esc clears it).

pub mod keymap;
pub mod playground;
pub mod run;
pub mod series;

pub use keymap::{Action, Key, KeyMap, KeyMapError};
pub use playground::{Entry, InputLine, Playground};
pub use run::{run_workbench, run_workbench_or_headless};
pub use series::Series;

use crate::data::Dataset;
use crate::tokenizer::Tokenizer;
use crate::train::{AttentionMap, Command, Event, GenerateRequest, RunInfo, SampleSettings};
use crate::ui::theme::Theme;
use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};
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

/// The trainer's state as the status bar shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    Starting,
    Running,
    Paused(Option<String>),
    Finished,
    Stopped,
    Failed(String),
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

/// Something the event loop must do for the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Send(Command),
    /// Export the loss chart and the heatmap through plotters.
    Export,
}

/// Dataset statistics, computed once.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DatasetStats {
    pub records: usize,
    pub bytes: usize,
    pub tokens: usize,
    /// True when `tokens` was extrapolated from a prefix of a large corpus.
    pub tokens_estimated: bool,
    pub vocab_size: usize,
    pub train_tokens: usize,
    pub val_tokens: usize,
    /// Record lengths (bytes) in buckets; `hist_max` is the largest length.
    pub length_hist: Vec<u64>,
    pub hist_max: usize,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Browser {
    /// Index into `visible`.
    pub selected: usize,
    /// Record indices shown (all, or those matching the filter).
    pub visible: Vec<usize>,
    pub filter: String,
    pub searching: bool,
    pub search: InputLine,
    /// Tokenizer pieces of the selected record (a display-sized prefix).
    pub pieces: Vec<String>,
    /// Token count of the whole selected record.
    pub token_count: usize,
    /// Lines scrolled in the record text.
    pub text_scroll: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LossView {
    pub train: Series,
    pub lr: Series,
    pub eval_train: Series,
    pub eval_val: Series,
    pub smooth: bool,
    /// EMA strength in [0, 0.99].
    pub strength: f64,
    pub log_scale: bool,
    /// Show only the most recent `recent_steps` steps.
    pub recent: bool,
    pub recent_steps: usize,
    pub best_val: Option<f32>,
}

impl Default for LossView {
    fn default() -> Self {
        LossView {
            train: Series::default(),
            lr: Series::default(),
            eval_train: Series::default(),
            eval_val: Series::default(),
            smooth: true,
            strength: 0.6,
            log_scale: false,
            recent: false,
            recent_steps: 500,
            best_val: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AttentionView {
    pub map: Option<AttentionMap>,
    pub layer: usize,
    pub head: usize,
    /// The query token under the cursor.
    pub cursor: usize,
    pub overview: bool,
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
    /// Exact (train, val) token counts when the split is known.
    pub split: Option<(usize, usize)>,
    pub sample: SampleSettings,
    pub theme: Theme,
    pub keymap: KeyMap,
}

pub struct App {
    pub run_name: String,
    pub run_dir: PathBuf,
    pub device: String,
    pub dataset: Arc<Dataset>,
    pub tokenizer: Option<Arc<Tokenizer>>,
    pub stats: DatasetStats,
    pub theme: Theme,
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
    pub help: bool,
    pub confirm_quit: bool,
    pub should_quit: bool,
    /// The latest log line (checkpoint saved, export written...).
    pub message: Option<String>,
    pub browser: Browser,
    pub loss: LossView,
    pub attention: AttentionView,
    pub playground: Playground,
}

/// Bytes of the selected record shown with token cuts (the rest is not cut).
pub const PIECES_PREFIX_BYTES: usize = 16 * 1024;
const HIST_BUCKETS: usize = 24;

impl App {
    pub fn new(init: AppInit) -> App {
        let stats = compute_stats(
            &init.dataset,
            init.tokenizer.as_deref(),
            init.train_fraction,
        );
        let mut app = App {
            run_name: init.run_name,
            run_dir: init.run_dir,
            device: init.device,
            dataset: init.dataset,
            tokenizer: init.tokenizer,
            stats,
            theme: init.theme,
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
            help: false,
            confirm_quit: false,
            should_quit: false,
            message: None,
            browser: Browser::default(),
            loss: LossView::default(),
            attention: AttentionView::default(),
            playground: Playground::new(init.sample),
        };
        app.apply_filter();
        app
    }

    /// Folds one trainer event into the state.
    pub fn update_event(&mut self, ev: Event) {
        match ev {
            Event::Started(info) => {
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
                self.loss.train.push(s.step as f64, s.loss as f64);
                self.loss.lr.push(s.step as f64, s.lr);
            }
            Event::Eval(e) => {
                self.loss
                    .eval_train
                    .push(e.step as f64, e.train_loss as f64);
                self.loss.eval_val.push(e.step as f64, e.val_loss as f64);
                let best = [Some(e.best_val_loss), Some(e.val_loss), self.loss.best_val]
                    .into_iter()
                    .flatten()
                    .filter(|v| v.is_finite())
                    .fold(None, |acc: Option<f32>, v| {
                        Some(acc.map_or(v, |a| a.min(v)))
                    });
                self.loss.best_val = best;
            }
            Event::Attention(map) => {
                let a = &mut self.attention;
                a.layer = a.layer.min(map.n_layer.saturating_sub(1));
                a.head = a.head.min(map.n_head.saturating_sub(1));
                a.cursor = a.cursor.min(map.len().saturating_sub(1));
                a.map = Some(map);
            }
            Event::Token { id, text, .. } => self.playground.on_token(id, &text),
            Event::GenerationDone {
                id,
                tokens,
                tokens_per_sec,
            } => self.playground.on_done(id, tokens, tokens_per_sec),
            Event::Checkpoint { step, path } => {
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
                self.message = Some(crate::train::checkpoint_failed_line(
                    step, &path, &error, latest, last, next_try,
                ));
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
        }
    }

    /// The trainer's channel closed: no more events will come.
    pub fn trainer_gone(&mut self) {
        if self.state.is_live() {
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
        if self.confirm_quit {
            self.confirm_quit = false;
            return match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => self.quit_now(),
                _ => Vec::new(),
            };
        }
        if self.help {
            // Any key closes the help.
            self.help = false;
            return Vec::new();
        }
        if self.browser.searching {
            self.search_key(key);
            return Vec::new();
        }
        if self.focus == Pane::Playground && self.playground.editing {
            if let Some(effects) = self.input_key(key) {
                return effects;
            }
        }
        match action {
            Some(a) => self.update(a),
            None => Vec::new(),
        }
    }

    /// Playground editing keys; `None` passes the key on (Tab, ctrl-keys).
    fn input_key(&mut self, key: KeyEvent) -> Option<Vec<Effect>> {
        let pg = &mut self.playground;
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Esc => pg.editing = false,
            KeyCode::Enter => {
                if let playground::Submit::Generate { id, prompt } = pg.submit() {
                    return Some(vec![Effect::Send(Command::Generate(GenerateRequest {
                        id,
                        prompt,
                        settings: pg.settings,
                    }))]);
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
                pg.editing = false;
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
                b.searching = false;
                b.search.take();
                b.filter.clear();
            }
            KeyCode::Enter => b.searching = false,
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
        self.confirm_quit = false;
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
                    self.confirm_quit = true;
                } else if !self.stopping {
                    self.should_quit = true;
                }
            }
            Action::ForceQuit => return self.quit_now(),
            Action::Help => self.help = !self.help,
            Action::FocusNext => self.set_focus(self.focus.next()),
            Action::FocusPrev => self.set_focus(self.focus.prev()),
            Action::FocusBrowser => self.set_focus(Pane::Browser),
            Action::FocusLoss => self.set_focus(Pane::Loss),
            Action::FocusAttention => self.set_focus(Pane::Attention),
            Action::FocusPlayground => self.set_focus(Pane::Playground),
            Action::Zoom => self.zoom = !self.zoom,
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
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-10),
            Action::PageDown => self.move_by(10),
            Action::Search => {
                if self.focus == Pane::Browser {
                    self.browser.searching = true;
                    let f = self.browser.filter.clone();
                    self.browser.search.set(&f);
                }
            }
            Action::Smooth => self.loss.smooth = !self.loss.smooth,
            Action::SmoothMore => {
                self.loss.smooth = true;
                self.loss.strength = ((self.loss.strength * 10.0).round() / 10.0 + 0.1).min(0.9);
                if self.loss.strength >= 0.9 {
                    self.loss.strength = (self.loss.strength + 0.09).min(0.99);
                }
            }
            Action::SmoothLess => {
                self.loss.strength = if self.loss.strength > 0.9 {
                    0.9
                } else {
                    ((self.loss.strength * 10.0).round() / 10.0 - 0.1).max(0.0)
                };
            }
            Action::LogScale => self.loss.log_scale = !self.loss.log_scale,
            Action::Window => self.loss.recent = !self.loss.recent,
            Action::LayerPrev | Action::LayerNext | Action::HeadPrev | Action::HeadNext => {
                self.step_layer_head(action)
            }
            Action::Overview => self.attention.overview = !self.attention.overview,
            Action::Probe => {
                let text = self
                    .selected_record()
                    .map(|r| crate::sanitize::truncate_to_width(&r.text, 4096))
                    .filter(|t| !t.is_empty());
                self.message = Some(match &text {
                    Some(_) => "probing attention on the selected record…".into(),
                    None => "probing attention…".into(),
                });
                out.push(Effect::Send(Command::Probe { text }));
            }
            Action::Input => {
                if self.focus == Pane::Playground {
                    self.playground.editing = true;
                }
            }
        }
        out
    }

    fn set_focus(&mut self, pane: Pane) {
        if pane != Pane::Playground {
            self.playground.editing = false;
        }
        self.focus = pane;
    }

    fn step_layer_head(&mut self, action: Action) {
        let a = &mut self.attention;
        let (nl, nh) = a
            .map
            .as_ref()
            .map(|m| (m.n_layer, m.n_head))
            .unwrap_or((1, 1));
        let (nl, nh) = (nl.max(1), nh.max(1));
        match action {
            Action::LayerPrev => a.layer = (a.layer + nl - 1) % nl,
            Action::LayerNext => a.layer = (a.layer + 1) % nl,
            Action::HeadPrev => a.head = (a.head + nh - 1) % nh,
            Action::HeadNext => a.head = (a.head + 1) % nh,
            _ => {}
        }
    }

    fn move_by(&mut self, delta: isize) {
        match self.focus {
            Pane::Browser => {
                let n = self.browser.visible.len();
                if n == 0 {
                    return;
                }
                let sel =
                    (self.browser.selected as isize + delta).clamp(0, n as isize - 1) as usize;
                self.select(sel);
            }
            Pane::Attention => {
                let n = self.attention.map.as_ref().map_or(0, |m| m.len());
                if n > 0 {
                    self.attention.cursor =
                        (self.attention.cursor as isize + delta).clamp(0, n as isize - 1) as usize;
                }
            }
            Pane::Playground => {
                let pg = &mut self.playground;
                pg.scroll = (pg.scroll as isize - delta).max(0) as usize;
            }
            Pane::Loss => {}
        }
    }

    /// Selects a row of the (filtered) record list and re-cuts its tokens.
    pub fn select(&mut self, visible_index: usize) {
        let n = self.browser.visible.len();
        self.browser.selected = visible_index.min(n.saturating_sub(1));
        self.browser.text_scroll = 0;
        self.recut();
    }

    pub fn selected_record(&self) -> Option<&crate::data::Record> {
        self.browser
            .visible
            .get(self.browser.selected)
            .and_then(|&i| self.dataset.records.get(i))
    }

    fn recut(&mut self) {
        let Some(rec) = self.selected_record() else {
            self.browser.pieces.clear();
            self.browser.token_count = 0;
            return;
        };
        let text = &rec.text;
        let prefix = prefix_at_char_boundary(text, PIECES_PREFIX_BYTES);
        let (pieces, count) = match &self.tokenizer {
            Some(t) => {
                let pieces = t.pieces(prefix);
                let count = if prefix.len() == text.len() {
                    pieces.len()
                } else {
                    t.encode(text).len()
                };
                (pieces, count)
            }
            None => {
                let pieces: Vec<String> = prefix.chars().map(String::from).collect();
                (pieces, text.chars().count())
            }
        };
        self.browser.pieces = pieces;
        self.browser.token_count = count;
    }

    /// Recomputes the visible records from the filter (case-insensitive
    /// substring of title or text) and keeps the selection in range.
    pub fn apply_filter(&mut self) {
        let q = self.browser.filter.to_lowercase();
        let prev = self.browser.visible.get(self.browser.selected).copied();
        self.browser.visible = self
            .dataset
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                q.is_empty()
                    || r.title.to_lowercase().contains(&q)
                    || prefix_at_char_boundary(&r.text, 64 * 1024)
                        .to_lowercase()
                        .contains(&q)
            })
            .map(|(i, _)| i)
            .collect();
        let sel = prev
            .and_then(|p| self.browser.visible.iter().position(|&i| i == p))
            .unwrap_or(0);
        self.select(sel);
    }

    /// A mouse event; `area` is the whole terminal.
    pub fn handle_mouse(&mut self, ev: MouseEvent, area: Rect) -> Vec<Effect> {
        match ev.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                let pos = Position::new(ev.column, ev.row);
                let panes = crate::ui::pane_areas(self, area);
                for (pane, rect) in Pane::ALL.iter().zip(panes.iter()) {
                    if rect.contains(pos) {
                        self.set_focus(*pane);
                        if *pane == Pane::Browser {
                            if let Some(row) = crate::ui::browser::record_at(self, *rect, pos) {
                                self.select(row);
                            }
                        }
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

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
pub fn prefix_at_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn compute_stats(ds: &Dataset, tok: Option<&Tokenizer>, train_fraction: f64) -> DatasetStats {
    const EXACT_LIMIT: usize = 4 << 20;
    let bytes = ds.total_bytes();
    let (tokens, estimated) = match tok {
        Some(t) => {
            let mut counted_bytes = 0usize;
            let mut tokens = 0usize;
            for r in &ds.records {
                if counted_bytes >= EXACT_LIMIT {
                    break;
                }
                tokens += t.encode(&r.text).len();
                counted_bytes += r.text.len();
            }
            if counted_bytes < bytes && counted_bytes > 0 {
                let scaled = tokens as f64 * bytes as f64 / counted_bytes as f64;
                (scaled.round() as usize, true)
            } else {
                (tokens, false)
            }
        }
        None => (
            ds.records.iter().map(|r| r.text.chars().count()).sum(),
            false,
        ),
    };
    let frac = if train_fraction.is_finite() {
        train_fraction.clamp(0.0, 1.0)
    } else {
        0.9
    };
    let train_tokens = ((tokens as f64) * frac).round() as usize;
    let hist_max = ds.records.iter().map(|r| r.text.len()).max().unwrap_or(0);
    let mut hist = vec![0u64; HIST_BUCKETS];
    if hist_max > 0 {
        for r in &ds.records {
            let b = (r.text.len() * HIST_BUCKETS / (hist_max + 1)).min(HIST_BUCKETS - 1);
            hist[b] += 1;
        }
    }
    DatasetStats {
        records: ds.records.len(),
        bytes,
        tokens,
        tokens_estimated: estimated,
        vocab_size: match tok {
            Some(t) => t.vocab_size(),
            None => {
                let mut chars: Vec<char> = ds.records.iter().flat_map(|r| r.text.chars()).collect();
                chars.sort_unstable();
                chars.dedup();
                chars.len()
            }
        },
        train_tokens,
        val_tokens: tokens.saturating_sub(train_tokens),
        length_hist: hist,
        hist_max,
    }
}
