//! The attention pane at GPT-2-small size: an App holding a probe of 12 x 12
//! heads (`n` tokens: 1024, the full block, and 256, the default
//! `train.probe_len`) drawn into a 200x60 TestBackend. Prints how long the
//! UI thread spends taking the probe (`App::update_event`), ms per frame
//! while the app's workers score it and after (fit view, tiles, heads table,
//! rollout while it is computed), and, for comparison, what scoring and the
//! last layer's rollout cost when done on the UI thread (as before they
//! moved to workers).
//!
//! `cargo bench --bench inspect_frames [-- N...]` (default: 1024 256).

use headsup::app::{heads, Action, App, AppInit, KeyMap};
use headsup::data::{Dataset, Record};
use headsup::train::{AttentionMap, Event, RunInfo, SampleSettings};
use headsup::ui::{self, ColorDepth, Theme};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LAYERS: usize = 12;
const HEADS: usize = 12;

fn app() -> App {
    let records = (0..50)
        .map(|i| Record {
            title: format!("r{i}"),
            text: format!("record {i} the quick brown fox"),
        })
        .collect();
    let mut app = App::new(AppInit {
        run_name: "gpt2-size".into(),
        run_dir: "/nonexistent".into(),
        device: "cpu".into(),
        max_iters: 1000,
        dataset: Arc::new(Dataset::from_records("bench", records)),
        tokenizer: None,
        train_fraction: 0.9,
        grad_clip: 1.0,
        sample: SampleSettings {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            max_new_tokens: 100,
            seed: 1,
        },
        keymap: KeyMap::default(),
    });
    app.update_event(Event::Started(RunInfo {
        name: "gpt2-size".into(),
        run_dir: "/nonexistent".into(),
        device: "cpu".into(),
        max_iters: 1000,
        start_step: 0,
        n_params: 124_000_000,
        n_layer: LAYERS,
        n_head: HEADS,
        n_embd: 768,
        block_size: 1024,
        vocab_size: 50257,
        tokens_per_step: 1024,
        masked_lm: false,
    }));
    app
}

/// Causal rows of pseudo-random weights (a stripe on key q-1 and a spread).
fn map(n: usize) -> AttentionMap {
    let mut seed = 0x9e37_79b9u32;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        (seed >> 8) as f32 / (1u32 << 24) as f32
    };
    let probs = (0..LAYERS)
        .map(|_| {
            (0..HEADS)
                .map(|_| {
                    let mut m = vec![0.0f32; n * n];
                    for q in 0..n {
                        let row = &mut m[q * n..q * n + q + 1];
                        for v in row.iter_mut() {
                            *v = rnd() * 0.1;
                        }
                        row[q.saturating_sub(1)] += 1.0;
                        let s: f32 = row.iter().sum();
                        row.iter_mut().for_each(|v| *v /= s);
                    }
                    m
                })
                .collect()
        })
        .collect();
    AttentionMap {
        step: 100,
        tokens: (0..n).map(|i| format!("t{}", i % 50)).collect(),
        n_layer: LAYERS,
        n_head: HEADS,
        probs,
        causal: true,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Draws `frames` frames (ticking the app as the event loop does); returns
/// the median and max ms per frame.
fn frames(
    term: &mut Terminal<TestBackend>,
    app: &mut App,
    theme: &Theme,
    frames: usize,
) -> (f64, f64) {
    let mut t: Vec<f64> = (0..frames)
        .map(|_| {
            let start = Instant::now();
            app.tick();
            term.draw(|f| ui::draw(f, app, theme)).expect("draw");
            ms(start.elapsed())
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[t.len() / 2], t[t.len() - 1])
}

fn main() {
    let sizes: Vec<usize> = {
        let v: Vec<usize> = std::env::args()
            .skip(1)
            .filter_map(|a| a.parse().ok())
            .collect();
        if v.is_empty() {
            vec![1024, 256]
        } else {
            v
        }
    };
    let theme = Theme::builtin("dark", ColorDepth::TrueColor).expect("theme");
    for n in sizes {
        println!(
            "== {LAYERS} x {HEADS} heads, {n} tokens ({:.0} MB of f32 weights)",
            (LAYERS * HEADS * n * n * 4) as f64 / 1e6
        );
        let m = map(n);
        let start = Instant::now();
        let scores = heads::score_heads(&m);
        let score_ms = ms(start.elapsed());
        let start = Instant::now();
        let _ = heads::rollout(&m, if n > 512 { 0 } else { LAYERS - 1 });
        let roll_ms = ms(start.elapsed());
        let roll_what = if n > 512 {
            "layer 1 only (x12 for layer 12)"
        } else {
            "up to layer 12"
        };
        println!("on the UI thread before: scoring {score_ms:.0} ms, rollout {roll_what} {roll_ms:.0} ms ({} heads scored)", scores.len());
        drop(scores);

        let mut app = app();
        app.update(Action::FocusAttention);
        let mut term = Terminal::new(TestBackend::new(200, 60)).expect("terminal");
        let start = Instant::now();
        app.update_event(Event::Attention(m));
        println!(
            "update_event(Attention): {:.1} ms on the UI thread",
            ms(start.elapsed())
        );
        let started = Instant::now();
        let (med, max) = frames(&mut term, &mut app, &theme, 10);
        println!("fit view while the worker scores: {med:.1} ms/frame median, {max:.1} max");
        let mut waits = 0;
        while app.attention.busy() {
            app.tick();
            std::thread::sleep(Duration::from_millis(10));
            waits += 1;
        }
        println!(
            "scores ready {:.0} ms after the probe arrived ({waits} idle waits)",
            ms(started.elapsed())
        );
        let (med, max) = frames(&mut term, &mut app, &theme, 20);
        println!("fit view: {med:.1} ms/frame median, {max:.1} max");
        app.update(Action::Fit);
        let (med, max) = frames(&mut term, &mut app, &theme, 20);
        println!("window view: {med:.1} ms/frame median, {max:.1} max");
        app.update(Action::Fit);
        app.update(Action::Overview);
        let (med, max) = frames(&mut term, &mut app, &theme, 10);
        println!("tiles (12 heads fitted): {med:.1} ms/frame median, {max:.1} max");
        app.update(Action::Overview);
        app.update(Action::HeadsTable);
        let (med, max) = frames(&mut term, &mut app, &theme, 20);
        println!("heads table: {med:.1} ms/frame median, {max:.1} max");
        app.update(Action::HeadsTable);
        for _ in 0..(LAYERS - 1) {
            app.update(Action::LayerNext);
        }
        let start = Instant::now();
        for _ in 0..(HEADS + 2) {
            app.update(Action::HeadNext);
        }
        println!(
            "selecting layer 12's rollout: {:.1} ms on the UI thread (computing: {})",
            ms(start.elapsed()),
            app.attention.rolling_out
        );
        let started = Instant::now();
        let (med, max) = frames(&mut term, &mut app, &theme, 10);
        println!("frames while the rollout is computed: {med:.1} ms/frame median, {max:.1} max");
        while app.attention.busy() {
            app.tick();
            std::thread::sleep(Duration::from_millis(10));
        }
        println!(
            "rollout shown {:.0} ms after it was selected",
            ms(started.elapsed())
        );
    }
}
