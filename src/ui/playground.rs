//! The prompt playground: the transcript (escaped, wrapped by display
//! width, following new output unless scrolled; generated tokens coloured by
//! the probability the model gave them) and the input line.

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
use unicode_width::UnicodeWidthChar;

/// The style of a generated token by the probability the model gave it:
/// likely (>= 0.5), uncertain (>= 0.1), or surprising.
pub fn prob_style(t: &Theme, p: f32) -> Style {
    if p >= 0.5 {
        t.ok()
    } else if p >= 0.1 {
        t.warn()
    } else {
        t.error()
    }
}

/// Wraps styled pieces (already escaped; `\n` breaks the line) into lines
/// of at most `width` display cells; a wide character never splits.
pub fn wrap_spans(pieces: &[(String, Style)], width: usize) -> Vec<Line<'static>> {
    let width = width.max(1);
    let mut lines: Vec<Line<'static>> = Vec::new();
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut cur = String::new();
    let mut cur_style = Style::default();
    let mut w = 0;
    let flush = |spans: &mut Vec<Span<'static>>, cur: &mut String, style: Style| {
        if !cur.is_empty() {
            spans.push(Span::styled(std::mem::take(cur), style));
        }
    };
    for (text, style) in pieces {
        if *style != cur_style {
            flush(&mut spans, &mut cur, cur_style);
            cur_style = *style;
        }
        for c in text.chars() {
            if c == '\n' {
                flush(&mut spans, &mut cur, cur_style);
                lines.push(Line::from(std::mem::take(&mut spans)));
                w = 0;
                continue;
            }
            let cw = c.width().unwrap_or(0);
            if w + cw > width && w > 0 {
                flush(&mut spans, &mut cur, cur_style);
                lines.push(Line::from(std::mem::take(&mut spans)));
                w = 0;
            }
            if cw > width {
                cur.push('·');
                w += 1;
            } else {
                cur.push(c);
                w += cw;
            }
        }
    }
    flush(&mut spans, &mut cur, cur_style);
    lines.push(Line::from(spans));
    lines
}

/// The transcript as display lines for a given width; generated tokens in
/// the colour of their probability.
pub fn transcript_lines(app: &App, t: &Theme, w: usize) -> Vec<Line<'static>> {
    let mut lines: Vec<Line<'static>> = Vec::new();
    let plain = |lines: &mut Vec<Line<'static>>, text: &str, style: Style| {
        for l in wrap(text, w) {
            lines.push(Line::from(Span::styled(l, style)));
        }
    };
    for e in &app.playground.transcript {
        match e {
            Entry::Prompt(p) => plain(&mut lines, &format!("> {}", escape(p)), t.prompt()),
            Entry::Output {
                text, tokens, done, ..
            } => {
                let mut pieces: Vec<(String, Style)> = Vec::with_capacity(tokens.len() + 1);
                let mut start = 0;
                for &(end, p) in tokens {
                    if let Some(piece) = text.get(start..end) {
                        pieces.push((escape_keep_newlines(piece), prob_style(t, p)));
                        start = end;
                    }
                }
                if let Some(rest) = text.get(start..).filter(|r| !r.is_empty()) {
                    pieces.push((escape_keep_newlines(rest), t.generated()));
                }
                pieces.push(match done {
                    Some((n, tps)) => (format!(" [{n} tokens, {tps:.1} tok/s]"), t.muted()),
                    None => ("▌".to_string(), t.generated()),
                });
                lines.extend(wrap_spans(&pieces, w));
            }
            Entry::Info(m) => plain(&mut lines, &escape(m), t.muted()),
            Entry::Error(m) => plain(&mut lines, &escape(m), t.error()),
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
