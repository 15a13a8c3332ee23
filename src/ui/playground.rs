//! The prompt playground: the transcript (escaped, wrapped by display
//! width, following new output unless scrolled) and the input line.

use super::text::wrap;
use super::Theme;
use super::{line_cut, pane_block};
use crate::app::{App, Entry, Pane};
use crate::sanitize::{escape, escape_keep_newlines, width};
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// The transcript as display lines for a given width.
pub fn transcript_lines(app: &App, t: &Theme, w: usize) -> Vec<Line<'static>> {
    let mut lines: Vec<Line<'static>> = Vec::new();
    let mut push = |text: &str, style: Style| {
        for l in wrap(text, w) {
            lines.push(Line::from(Span::styled(l, style)));
        }
    };
    for e in &app.playground.transcript {
        match e {
            Entry::Prompt(p) => push(&format!("> {}", escape(p)), t.prompt()),
            Entry::Output { text, done, .. } => {
                let mut s = escape_keep_newlines(text);
                match done {
                    Some((n, tps)) => s.push_str(&format!(" [{n} tokens, {tps:.1} tok/s]")),
                    None => s.push('▌'),
                }
                push(&s, t.generated());
            }
            Entry::Info(m) => push(&escape(m), t.muted()),
            Entry::Error(m) => push(&escape(m), t.error()),
        }
    }
    lines
}

pub fn draw(app: &App, t: &Theme, frame: &mut Frame, area: Rect) {
    let pg = &app.playground;
    let title = Line::from(vec![
        Span::raw("playground "),
        Span::styled(pg.settings_label(), t.muted()),
    ]);
    let block = pane_block(app, t, Pane::Playground, title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let [body, input] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(inner);
    let w = body.width as usize;
    let lines = transcript_lines(app, t, w);
    let h = body.height as usize;
    let end = lines
        .len()
        .saturating_sub(pg.scroll.min(lines.len().saturating_sub(h)));
    let start = end.saturating_sub(h);
    let shown: Vec<Line> = lines[start..end].to_vec();
    if shown.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled(
                format!(
                    "{} to type a prompt, Enter to generate; /help lists commands",
                    app.keymap.describe(crate::app::Action::Input)
                ),
                t.muted(),
            )),
            body,
        );
    } else {
        frame.render_widget(Paragraph::new(shown), body);
    }

    // Input line with horizontal scrolling so the cursor stays visible.
    let iw = input.width as usize;
    if app.editing() {
        let before = escape(
            &pg.input
                .text
                .chars()
                .take(pg.input.cursor)
                .collect::<String>(),
        );
        let after = escape(
            &pg.input
                .text
                .chars()
                .skip(pg.input.cursor)
                .collect::<String>(),
        );
        let room = iw.saturating_sub(3);
        let mut shown_before = before.clone();
        while width(&shown_before) > room {
            shown_before.remove(0);
        }
        let cx = 2 + width(&shown_before);
        let line = Line::from(vec![
            Span::styled("> ", t.prompt()),
            Span::styled(shown_before, t.text()),
            line_cut(&after, iw.saturating_sub(cx), t.text()),
        ]);
        frame.render_widget(Paragraph::new(line), input);
        frame.set_cursor_position(Position::new(
            input.x + (cx as u16).min(input.width.saturating_sub(1)),
            input.y,
        ));
    } else {
        let hint = format!("> {}", escape(&pg.input.text));
        frame.render_widget(Paragraph::new(line_cut(&hint, iw, t.muted())), input);
    }
}
