//! The dataset browser: the record list (index, title and the start of
//! each record's text, escaped and cut to the width; only the rows on
//! screen are read, so a corpus of any size lists at once), the search line
//! with the worker's progress, the selected record's text cut into tokens
//! shown in alternating colours, and stats with a record-length histogram.

use super::text::si;
use super::Theme;
use super::{line_cut, pane_block};
use crate::app::{App, Pane};
use crate::sanitize::escape;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline, Wrap};
use ratatui::Frame;

/// Bytes of each record's text previewed in the list.
const PREVIEW_BYTES: usize = 512;

/// The pane's parts: record list, stats, record text.
pub struct BrowserLayout {
    pub list: Rect,
    pub stats: Rect,
    pub text: Rect,
}

pub fn layout(area: Rect) -> BrowserLayout {
    let inner = Rect {
        x: area.x.saturating_add(1),
        y: area.y.saturating_add(1),
        width: area.width.saturating_sub(2),
        height: area.height.saturating_sub(2),
    };
    let stats_h = if inner.height >= 12 { 3 } else { 2 };
    if inner.width >= 50 {
        let list_w = (inner.width / 3).clamp(12, 40);
        let [list, right] =
            Layout::horizontal([Constraint::Length(list_w), Constraint::Min(1)]).areas(inner);
        let [stats, text] =
            Layout::vertical([Constraint::Length(stats_h), Constraint::Min(0)]).areas(right);
        BrowserLayout { list, stats, text }
    } else {
        let list_h = (inner.height / 3).max(2);
        let [stats, list, text] = Layout::vertical([
            Constraint::Length(stats_h),
            Constraint::Length(list_h),
            Constraint::Min(0),
        ])
        .areas(inner);
        BrowserLayout { list, stats, text }
    }
}

/// Rows of the list usable by records (the last row holds the search line
/// while a filter is being typed or is active).
fn list_rows(app: &App, list: Rect) -> usize {
    let search = app.searching() || !app.browser.filter.is_empty();
    (list.height as usize).saturating_sub(search as usize)
}

/// The first visible row: the selection stays on screen.
pub fn list_offset(selected: usize, rows: usize) -> usize {
    if rows == 0 {
        0
    } else {
        (selected + 1).saturating_sub(rows)
    }
}

/// The visible-list index of the record drawn at `pos`, if any.
pub fn record_at(app: &App, pane: Rect, pos: Position) -> Option<usize> {
    let l = layout(pane).list;
    if !l.contains(pos) {
        return None;
    }
    let rows = list_rows(app, l);
    let row = (pos.y - l.y) as usize;
    if row >= rows {
        return None;
    }
    let idx = list_offset(app.browser.selected, rows) + row;
    (idx < app.browser.visible.len()).then_some(idx)
}

pub fn draw(app: &App, t: &Theme, frame: &mut Frame, area: Rect) {
    let b = &app.browser;
    let title = Line::from(vec![
        Span::raw("dataset "),
        Span::styled(
            format!("{} of {} records", b.visible.len(), app.dataset.len()),
            t.muted(),
        ),
    ]);
    frame.render_widget(pane_block(app, t, Pane::Browser, title), area);
    let lay = layout(area);

    // Record list.
    let rows = list_rows(app, lay.list);
    let offset = list_offset(b.selected, rows);
    let w = lay.list.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    for (row, &idx) in b.visible.iter().enumerate().skip(offset).take(rows) {
        let Some(title) = app.dataset.title(idx) else {
            continue;
        };
        // Index and title, then as much of the record's text as fits.
        let label =
            crate::sanitize::truncate_to_width(&format!("{:>4} {} ", idx, escape(&title)), w);
        // One column left blank before the stats and text beside the list.
        let room = w.saturating_sub(crate::sanitize::width(&label) + 1);
        let text = app
            .dataset
            .text_prefix(idx, PREVIEW_BYTES)
            .unwrap_or_default();
        let preview = crate::sanitize::truncate_to_width(&escape(&text), room);
        let (style, text_style) = if row == b.selected {
            (t.selection(), t.selection())
        } else {
            (t.text(), t.muted())
        };
        lines.push(Line::from(vec![
            Span::styled(label, style),
            Span::styled(preview, text_style),
        ]));
    }
    if b.visible.is_empty() {
        let none = if b.progress.is_some_and(|p| !p.done) {
            "(searching…)".to_string()
        } else if app.dataset.is_empty() {
            // No records at all: the dataset says why (the trainer is
            // still preparing it, the data is not on this machine...).
            escape(&app.dataset.source)
        } else {
            "(no records match)".to_string()
        };
        lines.push(Line::styled(none, t.muted()));
    }
    frame.render_widget(Paragraph::new(lines), lay.list);
    if app.searching() || !b.filter.is_empty() {
        let y = lay.list.y + lay.list.height.saturating_sub(1);
        let r = Rect::new(lay.list.x, y, lay.list.width, 1.min(lay.list.height));
        let mut txt = format!("/{}", escape(&b.search.text));
        if let Some(p) = b.progress {
            // The worker's search: how far, how many found.
            let pct = 100.0 * p.searched as f64 / p.total.max(1) as f64;
            txt.push_str(&match (p.done, p.capped) {
                (_, true) => format!("  (first {} matches)", b.visible.len()),
                (true, false) => format!("  ({} found)", b.visible.len()),
                (false, _) => format!("  ({pct:.0}%, {} found)", b.visible.len()),
            });
        }
        let style = if app.searching() {
            t.accent()
        } else {
            t.muted()
        };
        frame.render_widget(Paragraph::new(line_cut(&txt, w, style)), r);
        if app.searching() && r.height > 0 {
            let cx = crate::sanitize::width(&escape(
                &b.search
                    .text
                    .chars()
                    .take(b.search.cursor)
                    .collect::<String>(),
            ));
            frame.set_cursor_position(Position::new(
                r.x + (1 + cx as u16).min(r.width.saturating_sub(1)),
                r.y,
            ));
        }
    }

    // Stats.
    let s = &app.stats;
    let approx = if s.tokens_estimated { "~" } else { "" };
    let stats_line = format!(
        "{} B · {approx}{} tok · vocab {} · train/val {}/{} tok",
        si(s.bytes as f64),
        si(s.tokens as f64),
        s.vocab_size,
        si(s.train_tokens as f64),
        si(s.val_tokens as f64),
    );
    let sw = lay.stats.width as usize;
    let mut stat_lines = vec![Line::from(line_cut(&stats_line, sw, t.muted()))];
    if lay.stats.height >= 3 {
        stat_lines.push(Line::from(line_cut(
            &format!("record lengths 0..{} B:", si(s.hist_max as f64)),
            sw,
            t.muted(),
        )));
    }
    frame.render_widget(Paragraph::new(stat_lines), lay.stats);
    if lay.stats.height >= 2 {
        let spark = Rect::new(
            lay.stats.x,
            lay.stats.y + lay.stats.height - 1,
            lay.stats.width.min(s.length_hist.len() as u16 * 2),
            1,
        );
        let data: Vec<u64> = s.length_hist.iter().flat_map(|&v| [v, v]).collect();
        frame.render_widget(
            Sparkline::default()
                .data(&data)
                .style(ratatui::style::Style::default().fg(t.eval_train())),
            spark,
        );
    }

    // The selected record: coloured by loss when its losses are in (with
    // the loss sample's progress below), else cut into tokens.
    let text_area = super::record_loss::draw_sample_line(app, t, frame, lay.text);
    if super::record_loss::draw_record(app, t, frame, text_area) {
        return;
    }
    let Some(rec) = app.selected_record() else {
        return;
    };
    if text_area.height == 0 {
        return;
    }
    let mut head = format!("{} · {} tokens", escape(&rec.title), b.token_count);
    if app.run.as_ref().is_some_and(|r| r.masked_lm) {
        head.push_str(&format!(
            " · {} masks it",
            app.keymap.describe(crate::app::Action::Masking)
        ));
    }
    let [head_r, body_r] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(text_area);
    frame.render_widget(
        Paragraph::new(line_cut(&head, head_r.width as usize, t.accent())),
        head_r,
    );
    let mut lines = super::text::token_lines(&b.pieces, 2000, |i| t.token(i));
    if rec.text.len() > crate::app::PIECES_PREFIX_BYTES {
        lines.push(Line::styled(
            "… (token cuts shown for the first 16 KiB)",
            t.muted(),
        ));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((b.text_scroll.min(u16::MAX as usize) as u16, 0)),
        body_r,
    );
}
