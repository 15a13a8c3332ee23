//! The status bar: run name, state, step/total with a gauge and ETA (or,
//! while the trainer prepares the data, that step's gauge, rate and ETA),
//! tokens/s, device, the latest message; a failed checkpoint stays shown. Nothing here ticks on its own: the
//! ETA is the trainer's figure from the last step event, rounded
//! (`coarse_eta`) so that it does not change every second.

use super::text::{duration, si};
use super::Theme;
use crate::app::{App, RunState};
use crate::sanitize::escape;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// The state as words, e.g. "running", "failed: out of memory".
pub fn state_label(app: &App, t: &Theme) -> (String, Style) {
    if app.stopping && app.state.is_live() {
        return ("stopping, saving checkpoint…".into(), t.warn());
    }
    match &app.state {
        RunState::Starting if app.preparing.is_some() => ("preparing data".into(), t.muted()),
        RunState::Starting => ("starting".into(), t.muted()),
        RunState::Running => ("running".into(), t.ok()),
        RunState::Paused(None) => ("paused".into(), t.warn()),
        RunState::Paused(Some(r)) => (format!("paused: {}", escape(r)), t.warn()),
        RunState::Finished => ("finished".into(), t.ok()),
        RunState::Stopped => ("stopped".into(), t.muted()),
        RunState::Failed(e) => (format!("failed: {}", escape(e)), t.error()),
        RunState::Inspecting => ("inspecting a checkpoint, no trainer".into(), t.accent()),
    }
}

/// The training ETA as the status bar shows it: to the hour from ten hours
/// up ("103h"), to the minute from two minutes ("1h02m", "14m"), to 10 s
/// below (an estimate that jitters
/// every second carries nothing, and rewrites the bar over SSH each second).
pub fn coarse_eta(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "?".into();
    }
    if secs >= 36000.0 {
        return format!("{}h", (secs / 3600.0).round() as u64);
    }
    if secs >= 3600.0 {
        return duration(secs);
    }
    if secs >= 120.0 {
        return format!("{}m", (secs / 60.0).round() as u64);
    }
    duration((secs / 10.0).round() * 10.0)
}

pub fn draw(app: &App, t: &Theme, frame: &mut Frame, area: Rect) {
    let sep = || Span::styled(" │ ", t.muted());
    let (state, state_style) = state_label(app, t);
    let gauge_w: usize = if area.width >= 140 { 24 } else { 10 };
    let mut spans = vec![
        Span::styled(format!(" {} ", escape(&app.run_name)), t.title(true)),
        sep(),
        Span::styled(state, state_style),
        sep(),
    ];
    // A checkpoint that failed stays in view (first, so that 80 columns show
    // it) until a later one succeeds; a lost final checkpoint for good.
    if let Some(w) = &app.checkpoint_warning {
        spans.push(Span::styled(format!("⚠ {}", escape(w)), t.error()));
        spans.push(sep());
    }
    if let Some(p) = app
        .preparing
        .as_ref()
        .filter(|_| app.state == RunState::Starting)
    {
        // The trainer prepares the data: its gauge, rate and ETA.
        let (_, frac, rate, eta) = p.describe();
        let filled = ((frac * gauge_w as f64).round() as usize).min(gauge_w);
        spans.extend([
            Span::styled(format!("{} ", escape(&p.phase)), t.text()),
            Span::styled("━".repeat(filled), Style::default().fg(t.gauge())),
            Span::styled("─".repeat(gauge_w - filled), t.muted()),
            Span::styled(
                format!(
                    " {:>3.0}% {:.1}/{:.1} MB {rate:.1} MB/s",
                    frac * 100.0,
                    p.done as f64 / 1e6,
                    p.total as f64 / 1e6
                ),
                t.text(),
            ),
        ]);
        if let Some(eta) = eta {
            spans.push(Span::styled(format!(" ETA {}", duration(eta)), t.text()));
        }
    } else {
        step_spans(app, t, gauge_w, &mut spans);
    }
    spans.push(sep());
    spans.push(Span::styled(escape(&app.device), t.text()));
    if let Some(msg) = &app.message {
        spans.push(sep());
        spans.push(Span::styled(escape(msg), t.muted()));
    }
    spans.push(Span::styled("  ? help", t.muted()));
    frame.render_widget(Paragraph::new(Line::from(spans)).style(t.base()), area);
}

/// The training part of the bar: step, gauge, percentage, ETA and tok/s.
fn step_spans(app: &App, t: &Theme, gauge_w: usize, spans: &mut Vec<Span<'static>>) {
    let filled = ((app.progress() * gauge_w as f64).round() as usize).min(gauge_w);
    spans.extend([
        Span::styled(format!("step {}/{} ", app.step, app.max_iters), t.text()),
        Span::styled("━".repeat(filled), Style::default().fg(t.gauge())),
        Span::styled("─".repeat(gauge_w - filled), t.muted()),
        Span::styled(format!(" {:>3.0}%", app.progress() * 100.0), t.text()),
    ]);
    if let Some(eta) = app.eta_secs.filter(|_| app.state.is_live()) {
        // Padded: a shorter estimate does not shift the rest of the bar.
        spans.push(Span::styled(
            format!(" ETA {:<5}", coarse_eta(eta)),
            t.text(),
        ));
    }
    spans.push(Span::styled(" │ ", t.muted()));
    // Right-aligned while training, so that its width does not shift the
    // rest of the bar from one second to the next.
    let tok_s = si(app.tokens_per_sec);
    let tok_s = if app.state.is_live() {
        format!("{tok_s:>5} tok/s")
    } else {
        format!("{tok_s} tok/s")
    };
    spans.push(Span::styled(tok_s, t.text()));
}

#[cfg(test)]
mod tests {
    use super::coarse_eta;

    #[test]
    fn the_eta_is_rounded_so_that_it_does_not_tick_every_second() {
        assert_eq!(coarse_eta(200_000.0), "56h");
        assert_eq!(coarse_eta(3725.0), "1h02m");
        assert_eq!(coarse_eta(14.0 * 60.0 + 20.0), "14m");
        assert_eq!(coarse_eta(14.0 * 60.0 + 40.0), "15m");
        assert_eq!(coarse_eta(95.0), "1m40s");
        assert_eq!(coarse_eta(44.0), "40s");
        assert_eq!(coarse_eta(f64::NAN), "?");
    }
}
