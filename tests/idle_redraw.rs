//! What an idle workbench rewrites (issue 11: about 1 kB/s on a terminal
//! over SSH): rendered into a TestBackend, a redraw while nobody touches the
//! keys changes only the status bar's cells however much progress arrived
//! (`app::pace::Pacer` holds it back), the held progress reaches the charts
//! every `IDLE_REFRESH` or at once on a key, and a new loss point changes
//! only the chart's cells right of the curve: axes and labels stay put.

mod tui_support;

use headsup::app::pace::{Pacer, IDLE_REFRESH, INTERACTIVE};
use headsup::app::{App, Pane};
use headsup::train::*;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use std::time::{Duration, Instant};
use tui_support::*;

/// The cells that differ between two renders of the same size.
fn changed(a: &Buffer, b: &Buffer) -> Vec<(u16, u16)> {
    assert_eq!(a.area, b.area);
    let mut out = Vec::new();
    for y in 0..a.area.height {
        for x in 0..a.area.width {
            if a[(x, y)] != b[(x, y)] {
                out.push((x, y));
            }
        }
    }
    out
}

fn pane(app: &App, w: u16, h: u16, p: Pane) -> Rect {
    headsup::ui::pane_areas(app, Rect::new(0, 0, w, h))[p.index()]
}

fn step_at(step: usize, loss: f32, tok_s: f64, eta: f64) -> Event {
    Event::Step(StepStats {
        step,
        loss,
        lr: 1e-3,
        grad_norm: 0.5 + (step % 7) as f32 * 0.01,
        tokens_per_sec: tok_s,
        eta_secs: eta,
        elapsed_secs: step as f64 / 10.0,
    })
}

/// A probe whose weights moved: query q puts `own` on itself.
fn probe(step: usize, own: f32) -> Event {
    let mut m = attention(&["the", " cat", " sat", " on", " the", " mat"], 2, 4);
    m.step = step;
    let n = m.tokens.len();
    for layer in &mut m.probs {
        for head in layer {
            for q in 1..n {
                for k in 0..=q {
                    head[q * n + k] = if k == q { own } else { (1.0 - own) / q as f32 };
                }
            }
        }
    }
    Event::Attention(m)
}

#[test]
fn an_idle_redraw_changes_only_the_status_bar_until_the_idle_refresh() {
    for (w, h) in [(120, 40), (80, 24)] {
        let mut app = busy_app();
        let t0 = Instant::now();
        let mut pacer = Pacer::new(t0);
        let idle = t0 + INTERACTIVE + Duration::from_secs(1);
        assert!(pacer.idle(idle));
        pacer.fold_at(&mut app, idle);
        let before = render(&app, w, h);
        // Only the clock moves: nothing at all changes.
        assert!(!pacer.due(idle + Duration::from_secs(1), true));
        assert!(changed(&before, &render(&app, w, h)).is_empty());

        // Training goes on: steps, an evaluation, two new probes.
        for (i, s) in (510..=600).step_by(10).enumerate() {
            pacer.event(
                &mut app,
                step_at(s, 1.5 - i as f32 * 0.01, 20_000.0 + i as f64 * 500.0, 90.0),
            );
        }
        pacer.event(
            &mut app,
            Event::Eval(EvalStats {
                step: 600,
                train_loss: 1.4,
                val_loss: 1.45,
                best_val_loss: 1.45,
                masked: None,
            }),
        );
        pacer.event(&mut app, probe(575, 0.2));
        pacer.event(&mut app, probe(600, 0.9));
        let soon = idle + IDLE_REFRESH - Duration::from_millis(100);
        assert!(!pacer.due(soon, true), "folded before the idle refresh");
        let held = render(&app, w, h);
        let diff = changed(&before, &held);
        assert!(!diff.is_empty(), "{w}x{h}: the status bar did not move");
        let status_row = h - 1;
        let outside: Vec<_> = diff.iter().filter(|c| c.1 != status_row).collect();
        assert!(
            outside.is_empty(),
            "{w}x{h}: an idle redraw changed cells outside the status bar: {outside:?}\n{}",
            text(&held)
        );
        assert!(text(&held).contains("step 600/1000"), "{}", text(&held));

        // At the idle refresh the charts take it all in.
        let later = idle + IDLE_REFRESH;
        assert!(pacer.due(later, false));
        assert!(pacer.fold_at(&mut app, later));
        let last = app.loss.train.last().unwrap();
        assert_eq!(last.0, 600.0);
        assert!((last.1 - 1.41).abs() < 1e-6, "{last:?}");
        assert_eq!(app.attention.map.as_ref().map(|m| m.step), Some(600));
        let folded = render(&app, w, h);
        let diff = changed(&held, &folded);
        let loss = pane(&app, w, h, Pane::Loss);
        let att = pane(&app, w, h, Pane::Attention);
        assert!(diff.iter().any(|&(x, y)| loss.contains((x, y).into())));
        assert!(diff.iter().any(|&(x, y)| att.contains((x, y).into())));
        assert!(
            diff.iter().all(|c| c.1 != status_row),
            "the status bar already showed the newest step"
        );
    }
}

#[test]
fn a_key_brings_held_progress_in_at_once_and_the_first_seconds_are_live() {
    let mut app = busy_app();
    let t0 = Instant::now();
    let mut pacer = Pacer::new(t0);
    pacer.fold_at(&mut app, t0);
    pacer.event(&mut app, step_at(510, 1.0, 20_000.0, 90.0));
    // Just attached: live, folded at the next redraw.
    assert!(!pacer.idle(t0 + Duration::from_secs(1)));
    assert!(pacer.due(t0 + Duration::from_secs(1), true));
    assert!(!pacer.due(t0 + Duration::from_secs(1), false));
    // Idle: not at a redraw, only at the refresh.
    let idle = t0 + INTERACTIVE + Duration::from_secs(1);
    pacer.fold_at(&mut app, idle);
    pacer.event(&mut app, step_at(520, 0.9, 20_000.0, 90.0));
    assert!(!pacer.due(idle + Duration::from_secs(1), true));
    assert_eq!(app.loss.train.last().map(|p| p.0), Some(510.0));
    assert_eq!(app.step, 520, "the status bar has the newest step");
    // A key folds at once.
    pacer.input(&mut app, idle + Duration::from_secs(2));
    assert_eq!(app.loss.train.last().map(|p| p.0), Some(520.0));
    assert!(!pacer.idle(idle + Duration::from_secs(3)));
    // Any other event folds what is held first, keeping the order.
    pacer.event(&mut app, step_at(530, 0.8, 20_000.0, 90.0));
    pacer.event(
        &mut app,
        Event::Paused {
            step: 530,
            reason: None,
        },
    );
    assert_eq!(app.loss.train.last().map(|p| p.0), Some(530.0));
    assert!(!pacer.holding());
}

#[test]
fn a_new_loss_point_changes_only_the_chart_right_of_the_curve() {
    for (w, h) in [(120, 40), (200, 60)] {
        let mut app = app();
        app.update_event(Event::Started(run_info()));
        for i in 1..=45 {
            app.update_event(step(i * 10, 3.0 - i as f32 * 0.03));
        }
        let before = render(&app, w, h);
        app.update_event(step(460, 1.66));
        let after = render(&app, w, h);
        let loss = pane(&app, w, h, Pane::Loss);
        let diff = changed(&before, &after);
        assert!(!diff.is_empty());
        // The header (current loss, grad, tok/s) is the pane's first inner
        // row; below the main chart, the learning rate and gradient norm
        // charts share the width (each its own x axis, also to 500).
        let header = loss.y + 1;
        let inner_h = loss.height - 2;
        let small_top = loss.y + 1 + inner_h - inner_h / 4;
        let half = (loss.width - 2) / 2;
        let near_the_end = |x: u16, y: u16| {
            let (from, span) = if y < small_top {
                (loss.x + 1, loss.width - 2)
            } else if x < loss.x + 1 + half {
                (loss.x + 1, half)
            } else {
                (loss.x + 1 + half, half)
            };
            // Step 450 of 500 is at 90 % of a chart; its y labels take a few
            // columns on the left, so the curve's end is right of 70 %.
            x >= from + span * 7 / 10
        };
        let stray: Vec<_> = diff
            .iter()
            .filter(|&&(_, y)| y != header && y != h - 1)
            .filter(|&&(x, y)| !loss.contains((x, y).into()) || !near_the_end(x, y))
            .collect();
        assert!(
            stray.is_empty(),
            "{w}x{h}: a new point at step 460 (axis to 500) changed cells left of the curve's end or outside the chart: {stray:?}\n{}",
            text(&after)
        );
    }
}
