//! The prompt playground: the transcript (escaped, wrapped by display
//! width, following new output unless scrolled; generated tokens coloured by
//! the probability the model gave them), the selected token's alternatives
//! and entropy (left/right move the token cursor), and the input line. A
//! masked LM's fill: the text with each `[MASK]` replaced by its top-1 (in
//! the colour of its probability, underlined), then per mask its top-k.

use super::text::wrap;
use super::Theme;
use super::{line_cut, pane_block};
use crate::app::{App, Entry, GenToken, Pane, TokenAt};
use crate::sanitize::{escape, escape_keep_newlines, width};
use crate::train::FillResult;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Modifier, Style};
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
    wrap_spans_marked(pieces, width, None).0
}

/// [`wrap_spans`], also saying on which line the piece `mark` starts.
pub fn wrap_spans_marked(
    pieces: &[(String, Style)],
    width: usize,
    mark: Option<usize>,
) -> (Vec<Line<'static>>, Option<usize>) {
    let width = width.max(1);
    let mut marked = None;
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
    for (i, (text, style)) in pieces.iter().enumerate() {
        let at_mark = mark == Some(i);
        if *style != cur_style || at_mark {
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
            if at_mark && marked.is_none() {
                marked = Some(lines.len());
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
    if mark.is_some_and(|m| m < pieces.len()) && marked.is_none() {
        marked = Some(lines.len());
    }
    lines.push(Line::from(spans));
    (lines, marked)
}

/// The transcript as display lines for a given width; generated tokens in
/// the colour of their probability.
pub fn transcript_lines(app: &App, t: &Theme, w: usize) -> Vec<Line<'static>> {
    transcript_view(app, t, w).0
}

/// The style of a generated token: its probability's colour, reversed when
/// the token cursor is on it.
fn token_style(t: &Theme, p: f32, selected: bool) -> Style {
    let s = prob_style(t, p);
    if selected {
        s.add_modifier(Modifier::REVERSED | Modifier::BOLD)
    } else {
        s
    }
}

/// The transcript's lines and the line of the selected token, if any.
pub fn transcript_view(app: &App, t: &Theme, w: usize) -> (Vec<Line<'static>>, Option<usize>) {
    let cursor = app.playground.token_cursor;
    let mut cursor_line = None;
    let mut lines: Vec<Line<'static>> = Vec::new();
    let plain = |lines: &mut Vec<Line<'static>>, text: &str, style: Style| {
        for l in wrap(text, w) {
            lines.push(Line::from(Span::styled(l, style)));
        }
    };
    for (entry, e) in app.playground.transcript.iter().enumerate() {
        match e {
            Entry::Prompt(p) => plain(&mut lines, &format!("> {}", escape(p)), t.prompt()),
            Entry::Output {
                text, tokens, done, ..
            } => {
                let mut pieces: Vec<(String, Style)> = Vec::with_capacity(tokens.len() + 1);
                let mut mark = None;
                let mut start = 0;
                for (i, &GenToken { end, prob, .. }) in tokens.iter().enumerate() {
                    if let Some(piece) = text.get(start..end) {
                        let selected = cursor == Some(TokenAt { entry, token: i });
                        if selected {
                            mark = Some(pieces.len());
                        }
                        let mut shown = escape_keep_newlines(piece);
                        if selected && (shown.is_empty() || shown == "\n") {
                            // Something to see under the cursor.
                            shown =
                                format!("{}{}", if shown.is_empty() { "∅" } else { "⏎" }, shown);
                        }
                        pieces.push((shown, token_style(t, prob, selected)));
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
                let (wrapped, at) = wrap_spans_marked(&pieces, w, mark);
                if let Some(at) = at {
                    cursor_line = Some(lines.len() + at);
                }
                lines.extend(wrapped);
            }
            Entry::Fill { result, .. } => lines.extend(fill_lines(result.as_ref(), t, w)),
            Entry::Info(m) => plain(&mut lines, &escape(m), t.muted()),
            Entry::Error(m) => plain(&mut lines, &escape(m), t.error()),
        }
    }
    (lines, cursor_line)
}

/// A fill's lines at width `w`: `= ` and the text with each mask replaced by
/// its best candidate (coloured by its probability, underlined), then one
/// line per mask (wrapped) with its candidates and their probabilities;
/// "filling…" until the answer comes; the error when there is one.
pub fn fill_lines(r: Option<&FillResult>, t: &Theme, w: usize) -> Vec<Line<'static>> {
    let Some(r) = r else {
        return vec![Line::from(Span::styled("filling…", t.generated()))];
    };
    if let Some(e) = &r.error {
        return wrap(&escape(e), w)
            .into_iter()
            .map(|l| Line::from(Span::styled(l, t.error())))
            .collect();
    }
    let mut pieces: Vec<(String, Style)> = vec![("= ".into(), t.muted())];
    for (i, p) in r.pieces.iter().enumerate() {
        match r
            .masks
            .iter()
            .find(|m| m.at == i)
            .and_then(|m| m.top.first())
        {
            Some(best) => pieces.push((
                escape(&best.text),
                prob_style(t, best.prob).add_modifier(Modifier::UNDERLINED | Modifier::BOLD),
            )),
            None => pieces.push((escape(p), t.text())),
        }
    }
    let mut lines = wrap_spans(&pieces, w);
    for (n, m) in r.masks.iter().enumerate() {
        // Candidates wrap between each other, never inside one (unless one
        // alone is wider than the pane).
        let mut row: Vec<Span<'static>> =
            vec![Span::styled(format!("  [MASK] {}:", n + 1), t.muted())];
        let mut used = width(&format!("  [MASK] {}:", n + 1));
        for alt in &m.top {
            let c = format!("{} {:.3}", escape(&alt.text), alt.prob);
            let cw = width(&c) + 1;
            if used + cw > w && used > 4 {
                lines.push(Line::from(std::mem::take(&mut row)));
                row.push(Span::raw("    "));
                used = 4;
            }
            row.push(Span::raw(" "));
            row.push(Span::styled(c, prob_style(t, alt.prob)));
            used += cw;
        }
        for l in wrap_spans(
            &row.into_iter()
                .map(|s| (s.content.into_owned(), s.style))
                .collect::<Vec<_>>(),
            w,
        ) {
            lines.push(l);
        }
    }
    lines.push(Line::from(Span::styled(
        format!(
            "  [{} filled · step {}]",
            if r.masks.len() == 1 {
                "1 mask".to_string()
            } else {
                format!("{} masks", r.masks.len())
            },
            r.step
        ),
        t.muted(),
    )));
    lines
}

/// The selected token's step, two lines cut to `w`: the token, its
/// probability and the step's entropy; then the alternatives, each in the
/// colour of its probability (the sampled one reversed).
pub fn alternatives_lines(app: &App, t: &Theme, w: usize) -> Vec<Line<'static>> {
    let Some((text, tok)) = app.playground.selected_token() else {
        return Vec::new();
    };
    let shown = escape(text);
    let mut head = vec![
        Span::styled(format!("\"{shown}\""), token_style(t, tok.prob, true)),
        Span::styled(format!(" p {:.3}", tok.prob), prob_style(t, tok.prob)),
    ];
    let mut alts = vec![Span::styled("top: ", t.muted())];
    match &tok.alts {
        Some(a) => {
            head.push(Span::styled(
                format!(" · entropy {:.2} nats", a.entropy),
                t.text(),
            ));
            for (i, alt) in a.top.iter().enumerate() {
                if i > 0 {
                    alts.push(Span::raw("  "));
                }
                let picked = alt.text == text;
                alts.push(Span::styled(
                    format!("\"{}\" {:.3}", escape(&alt.text), alt.prob),
                    token_style(t, alt.prob, picked),
                ));
            }
        }
        None => alts.push(Span::styled("(not sent by this trainer)", t.muted())),
    }
    head.push(Span::styled("  ←/→ select", t.muted()));
    [Line::from(head), Line::from(alts)]
        .into_iter()
        .map(|l| cut_line(l, w))
        .collect()
}

/// A line cut to `w` display cells.
fn cut_line(line: Line<'static>, w: usize) -> Line<'static> {
    let mut left = w;
    let mut out = Vec::new();
    for s in line.spans {
        if left == 0 {
            break;
        }
        let sw = width(&s.content);
        if sw <= left {
            left -= sw;
            out.push(s);
        } else {
            out.push(line_cut(&s.content, left, s.style));
            left = 0;
        }
    }
    Line::from(out)
}

pub fn draw(app: &App, t: &Theme, frame: &mut Frame, area: Rect) {
    let pg = &app.playground;
    let settings = if app.run.as_ref().is_some_and(|r| r.masked_lm) {
        format!(
            "fill [MASK] · top {} per mask",
            crate::app::playground::FILL_K
        )
    } else {
        pg.settings_label()
    };
    let title = Line::from(vec![
        Span::raw("playground "),
        Span::styled(settings, t.muted()),
    ]);
    let block = pane_block(app, t, Pane::Playground, title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let alts = alternatives_lines(app, t, inner.width as usize);
    // The alternatives take two lines when the pane has room for them and
    // three transcript lines.
    let alt_h = if alts.is_empty() || inner.height < 6 {
        0
    } else {
        alts.len() as u16
    };
    let [body, alt_area, input] = Layout::vertical([
        Constraint::Min(0),
        Constraint::Length(alt_h),
        Constraint::Length(1),
    ])
    .areas(inner);
    if alt_h > 0 {
        frame.render_widget(Paragraph::new(alts), alt_area);
    }
    let w = body.width as usize;
    let (lines, cursor_line) = transcript_view(app, t, w);
    let h = body.height as usize;
    let mut end = lines
        .len()
        .saturating_sub(pg.scroll.min(lines.len().saturating_sub(h)));
    // The selected token stays on screen.
    if let Some(c) = cursor_line {
        if c >= end {
            end = (c + 1).min(lines.len());
        } else if c + h < end {
            end = (c + h).min(lines.len());
        }
    }
    let start = end.saturating_sub(h);
    let shown: Vec<Line> = lines[start..end].to_vec();
    if shown.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled(
                if app.run.as_ref().is_some_and(|r| r.masked_lm) {
                    format!(
                        "{} to type a text with [MASK] (a masked LM: Enter fills each mask with its top {})",
                        app.keymap.describe(crate::app::Action::Input),
                        crate::app::playground::FILL_K
                    )
                } else {
                    format!(
                        "{} to type a prompt, Enter to generate; /help lists commands",
                        app.keymap.describe(crate::app::Action::Input)
                    )
                },
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
