//! Key bindings: an `Action` per thing a key can do, defaults in code, patched
//! by `[ui.keys]` in the config (action name -> key string).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::collections::BTreeMap;
use std::fmt;

/// What a key asks for. Pane-specific actions act on the focused pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Quit,
    ForceQuit,
    Detach,
    Continue,
    Help,
    FocusNext,
    FocusPrev,
    FocusBrowser,
    FocusLoss,
    FocusAttention,
    FocusPlayground,
    Zoom,
    Pause,
    Save,
    Export,
    Up,
    Down,
    PageUp,
    PageDown,
    First,
    Last,
    Search,
    Smooth,
    SmoothMore,
    SmoothLess,
    LogScale,
    Window,
    AlignX,
    GradNorm,
    LayerPrev,
    LayerNext,
    HeadPrev,
    HeadNext,
    Overview,
    Older,
    Newer,
    Fit,
    HeadsTable,
    SortNext,
    ScoreSample,
    Masking,
    Probe,
    Input,
    TokenPrev,
    TokenNext,
}

impl Action {
    /// Every action with its config name and help text, in help order.
    pub const ALL: &'static [(Action, &'static str, &'static str)] = &[
        (Action::Help, "help", "show/hide this help"),
        (
            Action::Quit,
            "quit",
            "quit: asks first while training runs: stop it (and save) or leave it running",
        ),
        (
            Action::ForceQuit,
            "force_quit",
            "stop, save and quit without asking",
        ),
        (
            Action::Detach,
            "detach",
            "detach: leave the workbench, training goes on (headsup attach)",
        ),
        (
            Action::Continue,
            "continue",
            "finished run: continue it for more steps (asks how many)",
        ),
        (Action::FocusNext, "focus_next", "focus next pane"),
        (Action::FocusPrev, "focus_prev", "focus previous pane"),
        (
            Action::FocusBrowser,
            "focus_browser",
            "focus dataset browser",
        ),
        (Action::FocusLoss, "focus_loss", "focus loss curves"),
        (
            Action::FocusAttention,
            "focus_attention",
            "focus attention heatmap",
        ),
        (
            Action::FocusPlayground,
            "focus_playground",
            "focus prompt playground",
        ),
        (Action::Zoom, "zoom", "zoom the focused pane full screen"),
        (Action::Pause, "pause", "pause / resume training"),
        (Action::Save, "save", "save a checkpoint now"),
        (
            Action::Export,
            "export",
            "export loss chart + heatmap (PNG, SVG) to <run>/exports",
        ),
        (
            Action::Up,
            "up",
            "move up (record / query token / transcript)",
        ),
        (Action::Down, "down", "move down"),
        (Action::PageUp, "page_up", "page up"),
        (Action::PageDown, "page_down", "page down"),
        (Action::First, "first", "browser: first record"),
        (Action::Last, "last", "browser: last record"),
        (
            Action::Search,
            "search",
            "browser: search records (Enter keeps, Esc clears)",
        ),
        (Action::Smooth, "smooth", "loss: toggle EMA smoothing"),
        (
            Action::SmoothMore,
            "smooth_more",
            "loss: stronger smoothing",
        ),
        (Action::SmoothLess, "smooth_less", "loss: weaker smoothing"),
        (Action::LogScale, "log_scale", "loss: toggle log scale"),
        (
            Action::Window,
            "window",
            "loss: full history / recent window",
        ),
        (
            Action::AlignX,
            "align",
            "loss, several runs (watch A B ...): x axis by step / by tokens seen",
        ),
        (
            Action::GradNorm,
            "grad_norm",
            "loss: gradient norm or learning rate below (both when wide)",
        ),
        (Action::LayerPrev, "layer_prev", "attention: previous layer"),
        (Action::LayerNext, "layer_next", "attention: next layer"),
        (Action::HeadPrev, "head_prev", "attention: previous head"),
        (Action::HeadNext, "head_next", "attention: next head"),
        (
            Action::Overview,
            "overview",
            "attention: all heads of the layer as tiles (Enter opens one)",
        ),
        (
            Action::Older,
            "older",
            "attention: older probe (scrub back through training)",
        ),
        (Action::Newer, "newer", "attention: newer probe"),
        (
            Action::TokenPrev,
            "token_prev",
            "playground: previous generated token (its alternatives and entropy)",
        ),
        (
            Action::TokenNext,
            "token_next",
            "playground: next generated token",
        ),
        (
            Action::Fit,
            "fit",
            "attention: whole matrix fitted / window around the cursor",
        ),
        (
            Action::HeadsTable,
            "heads_table",
            "attention: table of head scores (Enter opens a head)",
        ),
        (
            Action::SortNext,
            "sort",
            "attention table: sort by the next column; browser: sort records by loss (hardest first) / dataset order",
        ),
        (
            Action::ScoreSample,
            "score_sample",
            "browser: score a sample of records by per-token loss (again: cancel)",
        ),
        (
            Action::Masking,
            "masking",
            "browser, masked LM: the record with its masking ([MASK] / random / kept) and the model's top-1 at each (again: plain)",
        ),
        (
            Action::Probe,
            "probe",
            "attention: probe the selected record (playground: last prompt + answer)",
        ),
        (
            Action::Input,
            "input",
            "playground: type a prompt (Esc leaves input); attention: open",
        ),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(a, _, _)| *a == self)
            .map(|(_, n, _)| *n)
            .unwrap_or("?")
    }
    pub fn from_name(name: &str) -> Option<Action> {
        Self::ALL
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(a, _, _)| *a)
    }
}

/// One key with modifiers, e.g. `ctrl-c`, `F1`, `space`, `x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl Key {
    pub const fn new(code: KeyCode, mods: KeyModifiers) -> Key {
        Key { code, mods }
    }
    pub const fn plain(code: KeyCode) -> Key {
        Key::new(code, KeyModifiers::NONE)
    }
    pub const fn ch(c: char) -> Key {
        Key::plain(KeyCode::Char(c))
    }

    /// Parses a key string; `None` when it is not one.
    pub fn parse(s: &str) -> Option<Key> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        let mut mods = KeyModifiers::NONE;
        let mut rest = s;
        loop {
            let lower = rest.to_ascii_lowercase();
            let (m, n) = if lower.starts_with("ctrl-") {
                (KeyModifiers::CONTROL, 5)
            } else if lower.starts_with("alt-") {
                (KeyModifiers::ALT, 4)
            } else if lower.starts_with("shift-") && rest.len() > 6 {
                (KeyModifiers::SHIFT, 6)
            } else {
                break;
            };
            mods |= m;
            rest = &rest[n..];
        }
        let lower = rest.to_ascii_lowercase();
        let code = match lower.as_str() {
            "space" => KeyCode::Char(' '),
            "enter" | "return" => KeyCode::Enter,
            "esc" | "escape" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "backtab" => KeyCode::BackTab,
            "backspace" => KeyCode::Backspace,
            "delete" | "del" => KeyCode::Delete,
            "insert" | "ins" => KeyCode::Insert,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pageup" | "pgup" => KeyCode::PageUp,
            "pagedown" | "pgdn" => KeyCode::PageDown,
            f if f.len() >= 2
                && f.starts_with('f')
                && f[1..].chars().all(|c| c.is_ascii_digit()) =>
            {
                let n: u8 = f[1..].parse().ok()?;
                if !(1..=24).contains(&n) {
                    return None;
                }
                KeyCode::F(n)
            }
            _ => {
                let mut chars = rest.chars();
                let c = chars.next()?;
                if chars.next().is_some() {
                    return None;
                }
                KeyCode::Char(if mods.is_empty() {
                    c
                } else {
                    c.to_ascii_lowercase()
                })
            }
        };
        if code == KeyCode::Tab && mods == KeyModifiers::SHIFT {
            return Some(Key::plain(KeyCode::BackTab));
        }
        Some(Key { code, mods })
    }

    /// Whether a terminal key event is this key. Shift on a character is
    /// ignored (it is already in the character: `?`, `A`).
    pub fn matches(&self, ev: &KeyEvent) -> bool {
        let strip = |m: KeyModifiers, code: KeyCode| match code {
            KeyCode::Char(_) | KeyCode::BackTab => m - KeyModifiers::SHIFT,
            _ => m,
        };
        let ev_code = match ev.code {
            KeyCode::Char(c) if ev.modifiers.contains(KeyModifiers::CONTROL) => {
                KeyCode::Char(c.to_ascii_lowercase())
            }
            c => c,
        };
        ev_code == self.code && strip(ev.modifiers, ev.code) == strip(self.mods, self.code)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            write!(f, "ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            write!(f, "alt-")?;
        }
        match self.code {
            KeyCode::Char(' ') => write!(f, "space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => write!(f, "enter"),
            KeyCode::Esc => write!(f, "esc"),
            KeyCode::Tab => write!(f, "tab"),
            KeyCode::BackTab => write!(f, "shift-tab"),
            KeyCode::Up => write!(f, "up"),
            KeyCode::Down => write!(f, "down"),
            KeyCode::Left => write!(f, "left"),
            KeyCode::Right => write!(f, "right"),
            KeyCode::PageUp => write!(f, "pageup"),
            KeyCode::PageDown => write!(f, "pagedown"),
            KeyCode::Home => write!(f, "home"),
            KeyCode::End => write!(f, "end"),
            KeyCode::F(n) => write!(f, "F{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum KeyMapError {
    #[error("ui.keys: unknown action `{0}`; see the help overlay (?) for action names")]
    UnknownAction(String),
    #[error("ui.keys.{action} = {key:?}: not a key; use e.g. \"x\", \"space\", \"ctrl-c\", \"F1\", \"pageup\"")]
    BadKey { action: String, key: String },
}

/// Bindings: each action has one or more keys. The first match wins, in
/// `Action::ALL` order.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyMap {
    bindings: Vec<(Action, Vec<Key>)>,
}

impl Default for KeyMap {
    fn default() -> Self {
        use KeyCode as K;
        let ctrl = KeyModifiers::CONTROL;
        let b = |a: Action, keys: Vec<Key>| (a, keys);
        KeyMap {
            bindings: vec![
                b(Action::Help, vec![Key::ch('?'), Key::plain(K::F(1))]),
                b(Action::Quit, vec![Key::ch('q')]),
                b(Action::ForceQuit, vec![Key::new(K::Char('c'), ctrl)]),
                b(Action::Detach, vec![Key::ch('d')]),
                b(Action::Continue, vec![Key::ch('c')]),
                b(Action::FocusNext, vec![Key::plain(K::Tab)]),
                b(Action::FocusPrev, vec![Key::plain(K::BackTab)]),
                b(Action::FocusBrowser, vec![Key::ch('1')]),
                b(Action::FocusLoss, vec![Key::ch('2')]),
                b(Action::FocusAttention, vec![Key::ch('3')]),
                b(Action::FocusPlayground, vec![Key::ch('4')]),
                b(Action::Zoom, vec![Key::ch('z')]),
                b(Action::Pause, vec![Key::ch(' ')]),
                b(Action::Save, vec![Key::ch('s')]),
                b(Action::Export, vec![Key::ch('e')]),
                b(Action::Up, vec![Key::plain(K::Up), Key::ch('k')]),
                b(Action::Down, vec![Key::plain(K::Down), Key::ch('j')]),
                b(Action::PageUp, vec![Key::plain(K::PageUp)]),
                b(Action::PageDown, vec![Key::plain(K::PageDown)]),
                b(Action::First, vec![Key::plain(K::Home)]),
                b(Action::Last, vec![Key::plain(K::End)]),
                b(Action::Search, vec![Key::ch('/')]),
                b(Action::Smooth, vec![Key::ch('m')]),
                b(Action::SmoothMore, vec![Key::ch('+'), Key::ch('=')]),
                b(Action::SmoothLess, vec![Key::ch('-')]),
                b(Action::LogScale, vec![Key::ch('g')]),
                b(Action::Window, vec![Key::ch('w')]),
                b(Action::AlignX, vec![Key::ch('x')]),
                b(Action::GradNorm, vec![Key::ch('n')]),
                b(Action::LayerPrev, vec![Key::ch('[')]),
                b(Action::LayerNext, vec![Key::ch(']')]),
                b(Action::HeadPrev, vec![Key::ch(','), Key::ch('h')]),
                b(Action::HeadNext, vec![Key::ch('.'), Key::ch('l')]),
                b(Action::Overview, vec![Key::ch('v')]),
                b(Action::Older, vec![Key::ch('{')]),
                b(Action::Newer, vec![Key::ch('}')]),
                b(Action::Fit, vec![Key::ch('f')]),
                b(Action::HeadsTable, vec![Key::ch('t')]),
                b(Action::SortNext, vec![Key::ch('o')]),
                b(Action::ScoreSample, vec![Key::ch('L')]),
                b(Action::Masking, vec![Key::ch('M')]),
                b(Action::Probe, vec![Key::ch('p')]),
                b(Action::Input, vec![Key::ch('i'), Key::plain(K::Enter)]),
                b(Action::TokenPrev, vec![Key::plain(K::Left)]),
                b(Action::TokenNext, vec![Key::plain(K::Right)]),
            ],
        }
    }
}

impl KeyMap {
    /// Defaults patched by `ui.keys`; an override replaces that action's keys.
    pub fn from_config(keys: &BTreeMap<String, String>) -> Result<KeyMap, KeyMapError> {
        let mut map = KeyMap::default();
        for (name, key) in keys {
            let action =
                Action::from_name(name).ok_or_else(|| KeyMapError::UnknownAction(name.clone()))?;
            let parsed = Key::parse(key).ok_or_else(|| KeyMapError::BadKey {
                action: name.clone(),
                key: key.clone(),
            })?;
            // The key moves: take it off any other action first.
            for (_, ks) in map.bindings.iter_mut() {
                ks.retain(|k| *k != parsed);
            }
            if let Some((_, ks)) = map.bindings.iter_mut().find(|(a, _)| *a == action) {
                *ks = vec![parsed];
            }
        }
        Ok(map)
    }

    pub fn action(&self, ev: &KeyEvent) -> Option<Action> {
        self.bindings
            .iter()
            .find(|(_, keys)| keys.iter().any(|k| k.matches(ev)))
            .map(|(a, _)| *a)
    }

    pub fn keys(&self, action: Action) -> &[Key] {
        self.bindings
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, k)| k.as_slice())
            .unwrap_or(&[])
    }

    /// "k/up"-style text for help and hints.
    pub fn describe(&self, action: Action) -> String {
        let ks: Vec<String> = self.keys(action).iter().map(|k| k.to_string()).collect();
        if ks.is_empty() {
            "(unbound)".into()
        } else {
            ks.join("/")
        }
    }
}
