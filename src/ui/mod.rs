//! Drawing: `draw(&App, &mut Frame)` is a pure function of the app state.
//! One file per pane; `theme` holds colours, `heatmap` the attention widget,
//! `export` the plotters PNG/SVG export.

pub mod attention;
pub mod browser;
pub mod export;
pub mod heatmap;
pub mod loss;
pub mod playground;
pub mod status;
pub mod text;
pub mod theme;

use crate::app::{Action, App, Pane};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

pub use theme::{ColorDepth, Theme, ThemeError};

/// Below this the layout is replaced by a one-line message.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

/// Draws the whole screen.
pub fn draw(app: &App, frame: &mut Frame) {
    let area = frame.area();
    let buf = frame.buffer_mut();
    buf.set_style(area, app.theme.base());
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "terminal too small: {}x{}, need at least {MIN_WIDTH}x{MIN_HEIGHT}",
            area.width, area.height
        );
        frame.render_widget(
            Paragraph::new(msg)
                .style(app.theme.warn())
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
            Pane::Browser => browser::draw(app, frame, rect),
            Pane::Loss => loss::draw(app, frame, rect),
            Pane::Attention => attention::draw(app, frame, rect),
            Pane::Playground => playground::draw(app, frame, rect),
        }
    }
    let _ = main;
    status::draw(app, frame, status_area);
    if app.help {
        draw_help(app, frame, area);
    }
    if app.confirm_quit {
        draw_confirm(app, frame, area);
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

/// The framed block of a pane, its title styled by focus.
pub fn pane_block<'a>(app: &App, pane: Pane, title: Line<'a>) -> Block<'a> {
    let focused = app.focus == pane;
    let n = pane.index() + 1;
    let mut spans = vec![Span::styled(format!(" {n} "), app.theme.title(focused))];
    spans.extend(title.spans.into_iter().map(|s| {
        let style = app.theme.title(focused).patch(s.style);
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
        .border_style(app.theme.border(focused))
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

fn draw_help(app: &App, frame: &mut Frame, area: Rect) {
    let mut lines: Vec<Line> = Vec::new();
    for (action, _name, help) in Action::ALL {
        lines.push(Line::from(vec![
            Span::styled(
                format!("{:>14}  ", app.keymap.describe(*action)),
                app.theme.accent(),
            ),
            Span::styled(*help, app.theme.text()),
        ]));
    }
    lines.push(Line::from(""));
    lines.push(Line::styled(
        "playground input: type, ←/→ home/end, ↑/↓ history, Enter sends, Esc leaves input",
        app.theme.muted(),
    ));
    lines.push(Line::styled(
        "mouse: click a pane to focus it, a record to select it; wheel scrolls",
        app.theme.muted(),
    ));
    lines.push(Line::styled("press any key to close", app.theme.muted()));
    let h = (lines.len() as u16 + 2).min(area.height);
    let rect = centered(area, 90, h);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).style(app.theme.base()).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(app.theme.border(true))
                .title(Span::styled(" keys ", app.theme.title(true))),
        ),
        rect,
    );
}

fn draw_confirm(app: &App, frame: &mut Frame, area: Rect) {
    let rect = centered(area, 52, 5);
    frame.render_widget(Clear, rect);
    let lines = vec![
        Line::styled("Training is running. Stop it (saving a", app.theme.text()),
        Line::styled("checkpoint) and quit?", app.theme.text()),
        Line::styled(
            "y / Enter: stop and quit · any other key: cancel",
            app.theme.accent(),
        ),
    ];
    frame.render_widget(
        Paragraph::new(lines).style(app.theme.base()).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(app.theme.warn())
                .title(Span::styled(" quit? ", app.theme.warn())),
        ),
        rect,
    );
}

/// Writes `text` (already escaped) into one row, cut to `width` cells.
pub fn line_cut(text: &str, width: usize, style: Style) -> Span<'static> {
    Span::styled(crate::sanitize::truncate_to_width(text, width), style)
}
