//! Shared helpers for the `tui_*` tests: a constructed App, events, rendering.
#![allow(dead_code)]

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use headsup::app::{App, AppInit, KeyMap};
use headsup::data::{Dataset, Record};
use headsup::train::*;
use headsup::ui::{self, ColorDepth, Theme};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::Terminal;
use std::path::PathBuf;
use std::sync::Arc;

pub fn dataset() -> Dataset {
    let mut records = vec![
        Record {
            title: "alpha.txt".into(),
            text: "the quick brown fox jumps over the lazy dog\nsecond line".into(),
        },
        Record {
            title: "beta.txt".into(),
            text: "abcabcabc induction heads copy".into(),
        },
        Record {
            title: "gamma.txt".into(),
            text: "床前明月光 wide characters".into(),
        },
    ];
    for i in 0..40 {
        records.push(Record {
            title: format!("synthetic-{i}"),
            text: format!("record number {i} {}", "x".repeat(i * 3)),
        });
    }
    Dataset::from_records("test fixture", records)
}

pub fn settings() -> SampleSettings {
    SampleSettings {
        temperature: 0.8,
        top_k: 40,
        top_p: 0.95,
        max_new_tokens: 100,
        seed: 42,
    }
}

pub fn app_with(ds: Dataset) -> App {
    App::new(AppInit {
        run_name: "testrun".into(),
        run_dir: PathBuf::from("/nonexistent/run"),
        device: "cpu".into(),
        max_iters: 1000,
        dataset: Arc::new(ds),
        tokenizer: None,
        train_fraction: 0.9,
        grad_clip: 1.0,
        sample: settings(),
        keymap: KeyMap::default(),
    })
}

pub fn app() -> App {
    app_with(dataset())
}

/// The default theme (dark, true colour) the renders use.
pub fn theme() -> Theme {
    Theme::builtin("dark", ColorDepth::TrueColor).expect("dark theme")
}

pub fn run_info() -> RunInfo {
    RunInfo {
        name: "testrun".into(),
        run_dir: PathBuf::from("/nonexistent/run"),
        device: "cpu".into(),
        max_iters: 1000,
        start_step: 0,
        n_params: 12345,
        n_layer: 2,
        n_head: 4,
        n_embd: 64,
        block_size: 64,
        vocab_size: 65,
        tokens_per_step: 1024,
        masked_lm: false,
    }
}

pub fn step(step: usize, loss: f32) -> Event {
    Event::Step(StepStats {
        step,
        loss,
        lr: 1e-3,
        grad_norm: 1.0,
        tokens_per_sec: 12_345.0,
        eta_secs: 125.0,
        elapsed_secs: 10.0,
    })
}

/// A causal map over `tokens`: query q puts 0.75 on itself and spreads the
/// rest evenly over earlier keys (all on itself for q = 0).
pub fn attention(tokens: &[&str], n_layer: usize, n_head: usize) -> AttentionMap {
    let n = tokens.len();
    let mut head = vec![0.0f32; n * n];
    for q in 0..n {
        if q == 0 {
            head[0] = 1.0;
        } else {
            head[q * n + q] = 0.75;
            for k in 0..q {
                head[q * n + k] = 0.25 / q as f32;
            }
        }
    }
    AttentionMap {
        step: 250,
        tokens: tokens.iter().map(|s| s.to_string()).collect(),
        n_layer,
        n_head,
        probs: vec![vec![head; n_head]; n_layer],
        causal: true,
    }
}

/// A running app with some history of every kind.
pub fn busy_app() -> App {
    let mut a = app();
    a.update_event(Event::Started(run_info()));
    for i in 1..=50 {
        a.update_event(step(i * 10, 4.0 - i as f32 * 0.05));
    }
    a.update_event(Event::Eval(EvalStats {
        step: 250,
        train_loss: 2.9,
        val_loss: 3.1,
        best_val_loss: 3.1,
        masked: None,
    }));
    a.update_event(Event::Attention(attention(
        &["the", " cat", " sat", " on", " the", " mat"],
        2,
        4,
    )));
    a
}

pub fn render(app: &App, w: u16, h: u16) -> Buffer {
    render_with(app, &theme(), w, h)
}

pub fn render_with(app: &App, theme: &Theme, w: u16, h: u16) -> Buffer {
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    term.draw(|f| ui::draw(f, app, theme)).expect("draw");
    term.backend().buffer().clone()
}

/// A left click at (x, y) on a screen of `area`, resolved by the view.
pub fn click(app: &mut App, area: Rect, x: u16, y: u16) -> Vec<headsup::app::Effect> {
    let ev = MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: x,
        row: y,
        modifiers: KeyModifiers::NONE,
    };
    let hit = ui::hit_test(app, area, Position::new(x, y));
    app.handle_mouse(ev, hit)
}

pub fn text(buf: &Buffer) -> String {
    let mut s = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            s.push_str(buf[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}

pub fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

pub fn ch(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

pub fn type_str(app: &mut App, s: &str) -> Vec<headsup::app::Effect> {
    let mut out = Vec::new();
    for c in s.chars() {
        out.extend(app.handle_key(ch(c)));
    }
    out
}
