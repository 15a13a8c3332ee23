//! The loss chart with several runs (`headsup watch A B ...`): each run's
//! train loss (EMA-smoothed when smoothing is on) in a colour of its own with
//! a legend entry named after its run directory, its validation points in
//! the same colour, aligned by step or by tokens seen (`x`). The colours are
//! the named ANSI ones, so 16-colour terminals tell the runs apart too.

use super::Theme;
use crate::app::series::ema;
use crate::app::{App, OverlayRun};
use crate::sanitize::escape;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::Span;
use ratatui::widgets::{Axis, Chart, Dataset, GraphType};
use ratatui::Frame;

/// One colour per run, in order; all within the 16 ANSI colours.
pub const RUN_COLOURS: [Color; 8] = [
    Color::Cyan,
    Color::Yellow,
    Color::Magenta,
    Color::Green,
    Color::LightBlue,
    Color::LightRed,
    Color::White,
    Color::LightGreen,
];

/// A run as drawn: its legend name, colour, and points in chart space.
pub struct DrawnRun {
    pub name: String,
    pub colour: Color,
    pub train: Vec<(f64, f64)>,
    pub val: Vec<(f64, f64)>,
}

/// Every run of the overlay, the watched one first, with the x bounds and
/// y bounds of the chart (after windowing, alignment, smoothing and log).
pub struct Overlay {
    pub runs: Vec<DrawnRun>,
    pub x: [f64; 2],
    pub y: [f64; 2],
}

/// The watched run (from the app's own series) and the overlaid ones.
pub fn overlay(app: &App) -> Overlay {
    let l = &app.loss;
    let first = OverlayRun {
        name: app
            .run_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| app.run_name.clone()),
        tokens_per_step: app.run.as_ref().map(|r| r.tokens_per_step as f64),
        train: l.train.points().to_vec(),
        val: l.eval_val.points().to_vec(),
    };
    let all: Vec<&OverlayRun> = std::iter::once(&first).chain(&l.overlay).collect();
    let scale = |r: &OverlayRun| match (l.by_tokens, r.tokens_per_step) {
        (true, Some(t)) if t > 0.0 => t,
        _ => 1.0,
    };
    let last_x = all
        .iter()
        .flat_map(|r| {
            r.train
                .last()
                .into_iter()
                .chain(r.val.last())
                .map(|p| p.0 * scale(r))
        })
        .fold(0.0f64, f64::max);
    let min_x = if l.recent {
        // The recent window in steps of the longest run's scale.
        let s = all.iter().map(|r| scale(r)).fold(1.0f64, f64::max);
        (last_x - l.recent_steps as f64 * s).max(0.0)
    } else {
        0.0
    };
    let tf = |v: f64| if l.log_scale { v.max(1e-6).ln() } else { v };
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let runs: Vec<DrawnRun> = all
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let s = scale(r);
            let place = |pts: &[(f64, f64)]| -> Vec<(f64, f64)> {
                pts.iter()
                    .map(|&(x, y)| (x * s, y))
                    .filter(|p| p.0 >= min_x && p.1.is_finite())
                    .collect()
            };
            let raw = place(&r.train);
            let train: Vec<(f64, f64)> = if l.smooth { ema(&raw, l.strength) } else { raw }
                .into_iter()
                .map(|(x, y)| (x, tf(y)))
                .collect();
            let val: Vec<(f64, f64)> = place(&r.val).into_iter().map(|(x, y)| (x, tf(y))).collect();
            for &(_, y) in train.iter().chain(&val) {
                lo = lo.min(y);
                hi = hi.max(y);
            }
            let mut name = escape(&r.name);
            if l.by_tokens && r.tokens_per_step.is_none_or(|t| t <= 0.0) {
                name.push_str(" (by step)");
            }
            DrawnRun {
                name,
                colour: RUN_COLOURS[i % RUN_COLOURS.len()],
                train,
                val,
            }
        })
        .collect();
    if !lo.is_finite() || !hi.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    Overlay {
        runs,
        x: [min_x, last_x.max(min_x + 1.0)],
        y: [lo - pad, hi + pad],
    }
}

/// Tokens as `12.3k`, `4.5M`.
fn fmt_x(v: f64, tokens: bool) -> String {
    if tokens {
        format!("{} tok", super::text::si(v))
    } else {
        format!("{v:.0}")
    }
}

/// Draws the overlay chart into `area` (the loss pane's chart area).
pub fn draw(app: &App, t: &Theme, frame: &mut Frame, area: Rect) {
    let o = overlay(app);
    let l = &app.loss;
    let mut sets = Vec::new();
    for r in &o.runs {
        sets.push(
            Dataset::default()
                .name(r.name.clone())
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(r.colour))
                .data(&r.train),
        );
    }
    // Validation points: same colours, no legend entries of their own.
    for r in &o.runs {
        if !r.val.is_empty() {
            sets.push(
                Dataset::default()
                    .marker(Marker::Dot)
                    .graph_type(GraphType::Scatter)
                    .style(Style::default().fg(r.colour))
                    .data(&r.val),
            );
        }
    }
    let untf = |v: f64| if l.log_scale { v.exp() } else { v };
    let fmt = |v: f64| format!("{:.3}", untf(v));
    let ylabels = vec![
        Span::styled(fmt(o.y[0]), t.muted()),
        Span::styled(fmt((o.y[0] + o.y[1]) / 2.0), t.muted()),
        Span::styled(fmt(o.y[1]), t.muted()),
    ];
    let xlabels = vec![
        Span::styled(fmt_x(o.x[0], l.by_tokens), t.muted()),
        Span::styled(fmt_x(o.x[1], l.by_tokens), t.muted()),
    ];
    let chart = Chart::new(sets)
        .style(t.base())
        .x_axis(Axis::default().bounds(o.x).labels(xlabels).style(t.muted()))
        .y_axis(Axis::default().bounds(o.y).labels(ylabels).style(t.muted()))
        .hidden_legend_constraints((Constraint::Ratio(2, 3), Constraint::Ratio(2, 3)));
    frame.render_widget(chart, area);
}
