//! Loss curves: train loss per step (raw and EMA-smoothed) and eval
//! train/val overlaid in a `Chart`; below it, small charts of the learning
//! rate and of the gradient norm with the clip threshold (side by side when
//! the pane is wide, else one of them, toggled); the current loss, best val,
//! gradient norm and tokens/s in the header line.

use super::pane_block;
use super::text::si;
use super::Theme;
use crate::app::series::ema;
use crate::app::{App, LossView, Pane};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph};
use ratatui::Frame;

/// The curves as the chart shows them (after windowing, smoothing and log).
pub struct LossCurves {
    pub train: Vec<(f64, f64)>,
    pub smooth: Vec<(f64, f64)>,
    pub eval_train: Vec<(f64, f64)>,
    pub eval_val: Vec<(f64, f64)>,
    pub lr: Vec<(f64, f64)>,
    pub grad: Vec<(f64, f64)>,
    pub x: [f64; 2],
    pub y: [f64; 2],
}

pub fn curves(app: &App) -> LossCurves {
    let l = &app.loss;
    let last_x = [l.train.last(), l.eval_val.last()]
        .into_iter()
        .flatten()
        .map(|p| p.0)
        .fold(0.0f64, f64::max);
    let [min_x, max_x] = x_bounds(last_x, l.recent.then_some(l.recent_steps));
    let window = |pts: &[(f64, f64)]| -> Vec<(f64, f64)> {
        pts.iter().copied().filter(|p| p.0 >= min_x).collect()
    };
    let tf = |v: f64| if l.log_scale { v.max(1e-6).ln() } else { v };
    let apply = |pts: Vec<(f64, f64)>| -> Vec<(f64, f64)> {
        pts.into_iter().map(|(x, y)| (x, tf(y))).collect()
    };
    let train_raw = window(l.train.points());
    let smooth = if l.smooth {
        apply(ema(&train_raw, l.strength))
    } else {
        Vec::new()
    };
    let train = apply(train_raw);
    let eval_train = apply(window(l.eval_train.points()));
    let eval_val = apply(window(l.eval_val.points()));
    let lr = window(l.lr.points());
    let grad = window(l.grad_norm.points());
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &(_, y) in train
        .iter()
        .chain(&eval_train)
        .chain(&eval_val)
        .chain(&smooth)
    {
        lo = lo.min(y);
        hi = hi.max(y);
    }
    if !lo.is_finite() || !hi.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    LossCurves {
        train,
        smooth,
        eval_train,
        eval_val,
        lr,
        grad,
        x: [min_x, max_x],
        y: y_bounds(lo, hi),
    }
}

/// The smallest "nice" number (1, 1.5, 2, 3, 4, 5, 6, 8 times a power of
/// ten) at or above `v` (> 0).
pub fn nice_ceil(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&c| c >= v * (1.0 - 1e-12))
        .unwrap_or(10.0 * p)
}

/// The x axis for a newest point at `last_x`: from 0 to the next nice
/// number, so that a new point lands on the right of a still axis (the
/// chart is rescaled only when the steps pass the end, a few times per
/// decade). `recent`: only the last so many steps, the window moving in
/// fifths of itself (at least `recent` steps are always in view).
pub fn x_bounds(last_x: f64, recent: Option<usize>) -> [f64; 2] {
    let last_x = last_x.max(0.0);
    match recent.map(|r| r.max(5) as f64) {
        Some(r) if last_x > r => {
            let chunk = r / 5.0;
            let end = ((last_x / chunk).floor() + 1.0) * chunk;
            [(end - r - chunk).max(0.0), end]
        }
        _ => [0.0, nice_ceil(last_x.max(1.0))],
    }
}

/// The loss axis for curves between `lo` and `hi`: widened to whole
/// multiples of a nice tick (the range over about 4 ticks), so that the
/// bounds and their labels stay put while the curve moves inside them.
pub fn y_bounds(lo: f64, hi: f64) -> [f64; 2] {
    let range = (hi - lo).max(lo.abs().max(hi.abs()) * 1e-3).max(1e-12);
    // A tick from the 1-2-5 series, about a quarter of the range.
    let raw = range / 4.0;
    let p = 10f64.powf(raw.log10().floor());
    let tick = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&t| t >= raw)
        .unwrap_or(10.0 * p);
    let a = (lo / tick).floor() * tick;
    let mut b = (hi / tick).ceil() * tick;
    if b <= a {
        b = a + tick;
    }
    [a, b]
}

fn fmt_loss(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

pub fn draw(app: &App, t: &Theme, frame: &mut Frame, area: Rect) {
    let l = &app.loss;
    let mut flags = Vec::new();
    if l.smooth {
        flags.push(format!("ema {:.2}", l.strength));
    }
    if l.log_scale {
        flags.push("log".into());
    }
    flags.push(if l.recent {
        format!("last {} steps", l.recent_steps)
    } else {
        "all".into()
    });
    if app.paced {
        flags.push(format!(
            "idle: every {} s",
            crate::app::pace::IDLE_REFRESH.as_secs()
        ));
    }
    if !l.overlay.is_empty() {
        flags.push(format!(
            "{} runs by {} (x) · attention, playground: the first",
            l.overlay.len() + 1,
            if l.by_tokens { "tokens" } else { "step" }
        ));
    }
    let title = Line::from(vec![
        Span::raw("loss "),
        Span::styled(flags.join(" · "), t.muted()),
    ]);
    let block = pane_block(app, t, Pane::Loss, title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let lr_h = if inner.height >= 14 {
        inner.height / 4
    } else if inner.height >= 8 {
        3
    } else {
        0
    };
    // A masked LM's accuracy takes a second header line.
    let head_h = if l.masked.is_some() && inner.height >= 6 {
        2
    } else {
        1
    };
    let [head, chart_r, lr_r] = Layout::vertical([
        Constraint::Length(head_h),
        Constraint::Min(0),
        Constraint::Length(lr_h),
    ])
    .areas(inner);

    let fmt_opt = |v: Option<f32>| v.map_or("-".to_string(), |v| fmt_loss(v as f64));
    let head_line = Line::from(vec![
        Span::styled("loss ", t.muted()),
        Span::styled(fmt_opt(app.last_loss), Style::default().fg(t.loss_train())),
        Span::styled("  best val ", t.muted()),
        Span::styled(fmt_opt(l.best_val), Style::default().fg(t.eval_val())),
        Span::styled("  grad ", t.muted()),
        grad_span(l, t),
        Span::styled(format!("  {} tok/s", si(l.tokens_per_sec)), t.muted()),
    ]);
    let mut head_lines = vec![head_line];
    if let (Some((step, m)), 2) = (l.masked, head_h) {
        head_lines.push(Line::from(vec![
            Span::styled("masked acc top-1 ", t.muted()),
            Span::styled(format!("{:.3}", m.top1), Style::default().fg(t.eval_val())),
            Span::styled("  top-5 ", t.muted()),
            Span::styled(format!("{:.3}", m.top5), Style::default().fg(t.eval_val())),
            Span::styled(
                format!(
                    "  best top-1 {:.3} · val, {} masked, step {step}",
                    l.best_top1.unwrap_or(m.top1),
                    m.positions
                ),
                t.muted(),
            ),
        ]));
    }
    frame.render_widget(Paragraph::new(head_lines), head);

    if l.train.is_empty() && l.eval_val.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled("waiting for the first step…", t.muted())),
            chart_r,
        );
        return;
    }
    let c = curves(app);
    if !l.overlay.is_empty() {
        super::loss_overlay::draw(app, t, frame, chart_r);
    } else {
        draw_chart(app, t, frame, chart_r, &c);
    }
    if lr_h == 0 {
        return;
    }
    // Both small charts when there is room, else the one the toggle picks.
    if lr_r.width >= MIN_SIDE_BY_SIDE {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(lr_r);
        draw_lr(t, frame, left, &c);
        draw_grad(l, t, frame, right, &c);
    } else if l.show_grad {
        draw_grad(l, t, frame, lr_r, &c);
    } else {
        draw_lr(t, frame, lr_r, &c);
    }
}

/// The one-run chart: train loss, its EMA, eval train and val.
fn draw_chart(app: &App, t: &Theme, frame: &mut Frame, chart_r: Rect, c: &LossCurves) {
    let l = &app.loss;
    let mut sets = Vec::new();
    // The raw curve keeps its colour under the EMA (it used to be drawn in
    // the border colour, which hid it); the EMA has its own.
    let raw_color = t.loss_train();
    sets.push(
        Dataset::default()
            .name("train")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(raw_color))
            .data(&c.train),
    );
    if l.smooth {
        sets.push(
            Dataset::default()
                .name("ema")
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(t.loss_smooth()))
                .data(&c.smooth),
        );
    }
    if !c.eval_train.is_empty() {
        sets.push(
            Dataset::default()
                .name("eval train")
                .marker(Marker::Dot)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(t.eval_train()))
                .data(&c.eval_train),
        );
        sets.push(
            Dataset::default()
                .name("val")
                .marker(Marker::Dot)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(t.eval_val()))
                .data(&c.eval_val),
        );
    }
    let untf = |v: f64| if l.log_scale { v.exp() } else { v };
    let ylabels = vec![
        Span::styled(fmt_loss(untf(c.y[0])), t.muted()),
        Span::styled(fmt_loss(untf((c.y[0] + c.y[1]) / 2.0)), t.muted()),
        Span::styled(fmt_loss(untf(c.y[1])), t.muted()),
    ];
    let xlabels = vec![
        Span::styled(format!("{:.0}", c.x[0]), t.muted()),
        Span::styled(format!("{:.0}", c.x[1]), t.muted()),
    ];
    let chart = Chart::new(sets)
        .style(t.base())
        .x_axis(Axis::default().bounds(c.x).labels(xlabels).style(t.muted()))
        .y_axis(Axis::default().bounds(c.y).labels(ylabels).style(t.muted()))
        .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)));
    frame.render_widget(chart, chart_r);
}

/// Below this width the learning rate and gradient norm charts take turns.
pub const MIN_SIDE_BY_SIDE: u16 = 70;

/// The latest gradient norm and the clip threshold, in the warning colour
/// when the norm was above it (the step was clipped).
fn grad_span(l: &LossView, t: &Theme) -> Span<'static> {
    match l.last_grad_norm {
        None => Span::styled("-", t.muted()),
        Some(g) => {
            let clipped = l.grad_clip.is_some_and(|c| g as f64 > c);
            let text = match l.grad_clip {
                Some(c) => format!("{} (clip {})", fmt_norm(g as f64), fmt_norm(c)),
                None => fmt_norm(g as f64),
            };
            Span::styled(text, if clipped { t.warn() } else { t.accent() })
        }
    }
}

fn fmt_norm(v: f64) -> String {
    if v != 0.0 && !(0.01..1000.0).contains(&v.abs()) {
        format!("{v:.1e}")
    } else {
        format!("{v:.2}")
    }
}

fn draw_lr(t: &Theme, frame: &mut Frame, area: Rect, c: &LossCurves) {
    if c.lr.is_empty() {
        return;
    }
    let (lo, hi) =
        c.lr.iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(p.1), b.max(p.1))
            });
    // A constant rate sits in the middle; a changing one gets still bounds.
    let [lo, hi] = if hi > lo {
        y_bounds(lo, hi)
    } else {
        [lo * 0.9, hi * 1.1 + 1e-12]
    };
    let fmt_lr = |v: f64| {
        if v == 0.0 {
            "0".to_string()
        } else {
            format!("{v:.1e}")
        }
    };
    let lr_set = vec![Dataset::default()
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(Style::default().fg(t.lr()))
        .data(&c.lr)];
    let lr_chart = Chart::new(lr_set)
        .style(t.base())
        .x_axis(Axis::default().bounds(c.x).style(t.muted()))
        .y_axis(
            Axis::default()
                .bounds([lo, hi])
                .labels(vec![
                    Span::styled(fmt_lr(lo), t.muted()),
                    Span::styled(format!("lr {}", fmt_lr(hi)), t.muted()),
                ])
                .style(t.muted()),
        )
        .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)));
    frame.render_widget(lr_chart, area);
}

/// The gradient norm per step from 0, with the clip threshold as a dotted line.
fn draw_grad(l: &LossView, t: &Theme, frame: &mut Frame, area: Rect, c: &LossCurves) {
    if c.grad.is_empty() {
        return;
    }
    let top = c
        .grad
        .iter()
        .map(|p| p.1)
        .chain(l.grad_clip)
        .fold(0.0f64, f64::max);
    let hi = if top > 0.0 { top * 1.05 } else { 1.0 };
    let clip_line: Vec<(f64, f64)> = l
        .grad_clip
        .map(|v| {
            let n = 64;
            (0..=n)
                .map(|i| (c.x[0] + (c.x[1] - c.x[0]) * i as f64 / n as f64, v))
                .collect()
        })
        .unwrap_or_default();
    let mut sets = vec![Dataset::default()
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(Style::default().fg(t.accent().fg.unwrap_or(t.lr())))
        .data(&c.grad)];
    if !clip_line.is_empty() {
        sets.push(
            Dataset::default()
                .marker(Marker::Dot)
                .graph_type(GraphType::Scatter)
                .style(t.warn())
                .data(&clip_line),
        );
    }
    let chart = Chart::new(sets)
        .style(t.base())
        .x_axis(Axis::default().bounds(c.x).style(t.muted()))
        .y_axis(
            Axis::default()
                .bounds([0.0, hi])
                .labels(vec![
                    Span::styled("0", t.muted()),
                    Span::styled(format!("grad {}", fmt_norm(hi)), t.muted()),
                ])
                .style(t.muted()),
        )
        .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)));
    frame.render_widget(chart, area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_x_axis_grows_in_a_few_steps_per_decade_and_always_holds_the_newest_step() {
        let mut ends = Vec::new();
        for step in 1..=100_000 {
            let [a, b] = x_bounds(step as f64, None);
            assert_eq!(a, 0.0);
            assert!(
                b >= step as f64 && b <= step as f64 * 1.5 + 1.0,
                "{step}: {b}"
            );
            if ends.last() != Some(&b) {
                ends.push(b);
            }
        }
        // 1, 1.5, 2, 3, 4, 5, 6, 8 per decade: the chart rescales 8 times a decade.
        assert!(ends.len() <= 8 * 5 + 1, "{ends:?}");
    }

    #[test]
    fn the_recent_window_moves_in_fifths_and_keeps_the_last_steps_in_view() {
        let mut moves = 0;
        let mut prev = x_bounds(501.0, Some(500));
        for step in 502..=5_000 {
            let [a, b] = x_bounds(step as f64, Some(500));
            assert!(
                a <= step as f64 - 500.0 && b >= step as f64,
                "{step}: {a}..{b}"
            );
            if [a, b] != prev {
                moves += 1;
            }
            prev = [a, b];
        }
        assert!(moves <= (5_000 - 500) / 100 + 1, "{moves}");
    }

    #[test]
    fn the_loss_axis_stays_put_while_the_curve_moves_inside_it() {
        // A loss falling slowly from 2.0 to 1.9: the bounds change a few times at most.
        let mut seen = Vec::new();
        for i in 0..1000 {
            let lo = 2.0 - i as f64 * 1e-4;
            let b = y_bounds(lo, 3.0);
            assert!(b[0] <= lo && b[1] >= 3.0);
            if seen.last() != Some(&b) {
                seen.push(b);
            }
        }
        assert!(seen.len() <= 2, "{seen:?}");
        // A constant learning rate and a tiny range still get an axis.
        let [a, b] = y_bounds(1e-3, 1e-3);
        assert!(a <= 1e-3 && b > a);
        assert_eq!(nice_ceil(450.0), 500.0);
        assert_eq!(nice_ceil(501.0), 600.0);
        assert_eq!(nice_ceil(0.0), 1.0);
    }
}
