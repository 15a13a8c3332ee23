//! The view: `draw(frame, &App, &Theme)` is a pure function of the app state
//! and the theme, and `hit_test` turns a click into the pane and record it
//! landed on. One file per pane; `theme` holds colours (`palette` maps them
//! to the terminal's depth), `heatmap` the attention widget, `export` the
//! plotters PNG/SVG export. The view reads `crate::app`; `app` never reads it.

pub mod attention;
pub mod browser;
pub mod export;
pub mod heatmap;
pub mod loss;
pub mod loss_overlay;
pub mod palette;
pub mod playground;
pub mod record_loss;
pub mod status;
pub mod text;
pub mod theme;

use crate::app::{Action, App, Hit, Pane};
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

pub use theme::{ColorDepth, Theme, ThemeError};

/// Below this the layout is replaced by a one-line message.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App, t: &Theme) {
    let area = frame.area();
    let buf = frame.buffer_mut();
    buf.set_style(area, t.base());
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "terminal too small: {}x{}, need at least {MIN_WIDTH}x{MIN_HEIGHT}",
            area.width, area.height
        );
        frame.render_widget(
            Paragraph::new(msg)
                .style(t.warn())
                .wrap(Wrap { trim: true }),
            area,
        );
        return;
    }
    let [main, status_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    let panes = pane_areas(app, area);
    for (pane, rect) in Pane::ALL.iter().zip(panes) {
        if rect.area() == 0 {
            continue;
        }
        match pane {
            Pane::Browser => browser::draw(app, t, frame, rect),
            Pane::Loss if app.inspecting() => record_loss::draw_no_training(app, t, frame, rect),
            Pane::Loss => loss::draw(app, t, frame, rect),
            Pane::Attention => attention::draw(app, t, frame, rect),
            Pane::Playground => playground::draw(app, t, frame, rect),
        }
    }
    let _ = main;
    status::draw(app, t, frame, status_area);
    if app.help_open() {
        draw_help(app, t, frame, area);
    }
    if app.confirming_quit() {
        draw_confirm(app, t, frame, area);
    }
    if app.asking_continue() {
        draw_continue(app, t, frame, area);
    }
}

/// Where each pane goes (in `Pane::ALL` order); a hidden pane gets an empty rect.
pub fn pane_areas(app: &App, area: Rect) -> [Rect; 4] {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return [Rect::default(); 4];
    }
    let main = Rect {
        height: area.height.saturating_sub(1),
        ..area
    };
    if app.zoom {
        let mut out = [Rect::default(); 4];
        out[app.focus.index()] = main;
        return out;
    }
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(main);
    let [tl, tr] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
    let [bl, br] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom);
    [tl, tr, bl, br]
}

/// Where a click at `pos` lands on a screen of `area` (the whole terminal):
/// the pane, and the record list's row when it hits a record.
pub fn hit_test(app: &App, area: Rect, pos: Position) -> Option<Hit> {
    let panes = pane_areas(app, area);
    let (pane, rect) = Pane::ALL
        .into_iter()
        .zip(panes)
        .find(|(_, r)| r.contains(pos))?;
    let record = match pane {
        Pane::Browser => browser::record_at(app, rect, pos),
        _ => None,
    };
    Some(Hit { pane, record })
}

/// The framed block of a pane, its title styled by focus.
pub fn pane_block<'a>(app: &App, t: &Theme, pane: Pane, title: Line<'a>) -> Block<'a> {
    let focused = app.focus == pane;
    let n = pane.index() + 1;
    let mut spans = vec![Span::styled(format!(" {n} "), t.title(focused))];
    spans.extend(title.spans.into_iter().map(|s| {
        let style = t.title(focused).patch(s.style);
        Span::styled(s.content, style)
    }));
    spans.push(Span::raw(" "));
    Block::default()
        .borders(Borders::ALL)
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(t.border(focused))
        .title(Line::from(spans))
}

/// A rect of at most `w` x `h` centred in `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn draw_help(app: &App, t: &Theme, frame: &mut Frame, area: Rect) {
    let mut lines: Vec<Line> = Vec::new();
    for (action, _name, help) in Action::ALL {
        lines.push(Line::from(vec![
            Span::styled(
                format!("{:>14}  ", app.keymap.describe(*action)),
                t.accent(),
            ),
            Span::styled(*help, t.text()),
        ]));
    }
    lines.push(Line::from(""));
    lines.push(Line::styled(
        "playground input: type, ←/→ home/end, ↑/↓ history, Enter sends, Esc leaves input",
        t.muted(),
    ));
    lines.push(Line::styled(
        "mouse: click a pane to focus it, a record to select it; wheel scrolls",
        t.muted(),
    ));
    lines.push(Line::styled(
        format!(
            "no key for {} s: charts, attention and record colours update every {} s (any key: now)",
            crate::app::pace::INTERACTIVE.as_secs(),
            crate::app::pace::IDLE_REFRESH.as_secs()
        ),
        t.muted(),
    ));
    lines.push(Line::styled("press any key to close", t.muted()));
    let h = (lines.len() as u16 + 2).min(area.height);
    let rect = centered(area, 90, h);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).style(t.base()).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(t.border(true))
                .title(Span::styled(" keys ", t.title(true))),
        ),
        rect,
    );
}

fn draw_confirm(app: &App, t: &Theme, frame: &mut Frame, area: Rect) {
    let rect = centered(area, 56, 6);
    frame.render_widget(Clear, rect);
    // Before the first step the trainer is preparing the data: a stop
    // cancels that (no token cache is kept) and saves nothing.
    let (first, second) = if app.preparing.is_some() && app.run.is_none() {
        (
            "The trainer is preparing the data. Stop it (no token",
            "cache kept), or leave it running in the background?",
        )
    } else {
        (
            "Training is running. Stop it (saving a checkpoint),",
            "or leave it running in the background?",
        )
    };
    let lines = vec![
        Line::styled(first, t.text()),
        Line::styled(second, t.text()),
        Line::styled("s / y / Enter: stop · d / l: leave (detach)", t.accent()),
        Line::styled("Esc or any other key: cancel", t.muted()),
    ];
    frame.render_widget(
        Paragraph::new(lines).style(t.base()).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(t.warn())
                .title(Span::styled(" quit? ", t.warn())),
        ),
        rect,
    );
}

fn draw_continue(app: &App, t: &Theme, frame: &mut Frame, area: Rect) {
    let rect = centered(area, 56, 5);
    frame.render_widget(Clear, rect);
    let lines = vec![
        Line::from(vec![
            Span::styled(
                format!("Finished at step {}. More steps: ", app.step),
                t.text(),
            ),
            Span::styled(format!("{}▏", app.continue_input), t.accent()),
        ]),
        Line::styled(
            "learning rate: cosine re-stretched to the new end",
            t.muted(),
        ),
        Line::styled("digits, Enter: continue · Esc: cancel", t.accent()),
    ];
    frame.render_widget(
        Paragraph::new(lines).style(t.base()).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(t.border(true))
                .title(Span::styled(" continue ", t.title(true))),
        ),
        rect,
    );
}

/// Writes `text` (already escaped) into one row, cut to `width` cells.
pub fn line_cut(text: &str, width: usize, style: Style) -> Span<'static> {
    Span::styled(crate::sanitize::truncate_to_width(text, width), style)
}
