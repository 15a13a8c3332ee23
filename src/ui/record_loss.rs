//! The dataset pane, token by token: the selected record with each token
//! coloured by its loss (five buckets, told apart by colour and, for the two
//! hardest, bold and reverse video, so that 16 colours read as well as true
//! colour), a legend, the record's mean loss and its highest-loss tokens;
//! the sample's progress; and the loss pane of a checkpoint opened without a
//! trainer. A masked LM's record (`M`): masked as in training, each chosen
//! position marked by what was done to it ([MASK] reversed, random
//! underlined and bold, kept underlined) and shown as `token→top-1 p`,
//! green when the top-1 is the token, red when not.

use super::{line_cut, pane_block, Theme};
use crate::app::record_loss::hardest_tokens;
use crate::app::{App, Pane};
use crate::sanitize::escape;
use crate::train::{MaskKind, MaskedToken, RecordLoss};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

/// Upper bounds (nats) of the loss buckets below the last.
pub const BUCKETS: [f32; 4] = [0.5, 1.5, 3.0, 5.0];
/// The legend's labels, one per bucket.
const LABELS: [&str; 5] = ["<0.5", "<1.5", "<3", "<5", "≥5"];
/// Highest-loss tokens listed.
const HARDEST: usize = 5;

/// The bucket of a loss: 0 (easy) to 4 (hardest); non-finite is 4.
pub fn bucket(loss: f32) -> usize {
    if !loss.is_finite() {
        return BUCKETS.len();
    }
    BUCKETS
        .iter()
        .position(|&b| loss < b)
        .unwrap_or(BUCKETS.len())
}

/// The style of a bucket.
pub fn bucket_style(t: &Theme, b: usize) -> Style {
    match b {
        0 => t.ok(),
        1 => t.text(),
        2 => t.warn(),
        3 => t.error(),
        _ => t.error().add_modifier(Modifier::REVERSED),
    }
}

/// A token as a word in a list: escaped, newlines as ↵, spaces as ␣.
/// (A token that shares a character with its neighbour has no text of its own: ∅.)
fn visible(piece: &str) -> String {
    if piece.is_empty() {
        return "∅".into();
    }
    escape(piece).replace('\n', "↵").replace(' ', "␣")
}

fn fmt_loss(l: f32) -> String {
    if l.is_finite() && l < f32::MAX {
        format!("{l:.2}")
    } else {
        "inf".into()
    }
}

/// Takes the last line of `area` for the sample's progress when there is a
/// sample; returns the rest.
pub fn draw_sample_line(app: &App, t: &Theme, frame: &mut Frame, area: Rect) -> Rect {
    let v = &app.record_loss;
    let Some(s) = &v.sample else {
        return area;
    };
    if area.height < 4 {
        return area;
    }
    let [rest, line] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(area);
    let keys = |a| app.keymap.describe(a);
    let text = if s.running {
        format!(
            "scoring a sample by loss: {}/{} records… ({} cancels)",
            s.done,
            s.total,
            keys(crate::app::Action::ScoreSample)
        )
    } else {
        let sel = app.browser.visible.get(app.browser.selected);
        let mine = sel
            .and_then(|r| v.scores.get(r))
            .map(|x| format!(" · this record {}", fmt_loss(x.mean)))
            .unwrap_or_default();
        let mean = v
            .sample_mean()
            .map(|(m, _)| format!(", mean {m:.3}"))
            .unwrap_or_default();
        let how = if v.sorted {
            "sorted by loss, hardest first".to_string()
        } else {
            format!("{} sorts by loss", keys(crate::app::Action::SortNext))
        };
        let cut = if s.cancelled { " (cancelled)" } else { "" };
        format!(
            "sample: {} records scored{cut}{mean}{mine} · {how}",
            v.scores.len()
        )
    };
    frame.render_widget(
        Paragraph::new(line_cut(&text, line.width as usize, t.muted())),
        line,
    );
    rest
}

/// Draws the selected record coloured by loss into `area` (the browser's
/// record text area) when its losses are in; returns whether it drew.
pub fn draw_record(app: &App, t: &Theme, frame: &mut Frame, area: Rect) -> bool {
    let Some(d) = app.record_loss_detail() else {
        return false;
    };
    let Some(rec) = app.selected_record() else {
        return false;
    };
    if area.height < 3 {
        return false;
    }
    if let Some(chosen) = &d.masked {
        if !app.record_loss.masked_view {
            // The plain record (the browser says which key masks it).
            return false;
        }
        draw_masked(app, t, frame, area, d, chosen);
        return true;
    }
    let w = area.width as usize;
    let stale = if d.step < app.step && !app.inspecting() {
        " (rescoring…)"
    } else {
        ""
    };
    let head = format!(
        "mean loss {} nats · {} · {} tokens · step {}{stale}",
        fmt_loss(d.mean),
        escape(&rec.title),
        app.browser.token_count,
        d.step
    );
    let mut legend = vec![Span::styled("loss ", t.muted())];
    for (b, label) in LABELS.iter().enumerate() {
        legend.push(Span::styled(format!(" {label} "), bucket_style(t, b)));
        legend.push(Span::raw(" "));
    }
    legend.push(Span::styled("nats", t.muted()));
    let mut hard = vec![Span::styled("hardest: ", t.muted())];
    for (i, l) in hardest_tokens(d, HARDEST) {
        let piece = d.pieces.get(i).map(String::as_str).unwrap_or("");
        hard.push(Span::styled(
            format!("{} ", visible(piece)),
            bucket_style(t, bucket(l)),
        ));
        hard.push(Span::styled(format!("{} ", fmt_loss(l)), t.muted()));
    }
    let [head_r, legend_r, hard_r, body_r] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(line_cut(&head, w, t.accent())), head_r);
    frame.render_widget(Paragraph::new(Line::from(legend)), legend_r);
    frame.render_widget(Paragraph::new(Line::from(hard)), hard_r);

    let mut lines = super::text::token_lines(&d.pieces, 2000, |i| {
        match i.checked_sub(1).and_then(|k| d.losses.get(k)) {
            Some(&l) => bucket_style(t, bucket(l)),
            // The first token has no loss (nothing before it).
            None => t.muted(),
        }
    });
    if d.pieces.len() < app.browser.token_count {
        lines.push(Line::styled(
            format!(
                "… (losses shown for the first {} of {} tokens)",
                d.pieces.len(),
                app.browser.token_count
            ),
            t.muted(),
        ));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((app.browser.text_scroll.min(u16::MAX as usize) as u16, 0)),
        body_r,
    );
    true
}

/// The style of a chosen position: right or wrong, and what was done.
pub fn masked_style(t: &Theme, m: &MaskedToken) -> Style {
    let base = if m.correct { t.ok() } else { t.error() };
    match m.kind {
        MaskKind::Mask => base.add_modifier(Modifier::REVERSED | Modifier::BOLD),
        MaskKind::Random => base.add_modifier(Modifier::UNDERLINED | Modifier::BOLD),
        MaskKind::Kept => base.add_modifier(Modifier::UNDERLINED),
    }
}

/// The record masked, with the predictions (see the module doc).
fn draw_masked(
    app: &App,
    t: &Theme,
    frame: &mut Frame,
    area: Rect,
    d: &RecordLoss,
    chosen: &[MaskedToken],
) {
    let w = area.width as usize;
    let right = chosen.iter().filter(|m| m.correct).count();
    let stale = if d.step < app.step && !app.inspecting() {
        " (rescoring…)"
    } else {
        ""
    };
    let head = format!(
        "masked: {right}/{} right · loss {} nats · first {} tokens · step {}{stale}",
        chosen.len(),
        fmt_loss(d.mean),
        d.pieces.len(),
        d.step
    );
    let legend = Line::from(vec![
        Span::styled(" [MASK] ", t.text().add_modifier(Modifier::REVERSED)),
        Span::raw(" "),
        Span::styled(
            "random",
            t.text().add_modifier(Modifier::UNDERLINED | Modifier::BOLD),
        ),
        Span::raw(" "),
        Span::styled("kept", t.text().add_modifier(Modifier::UNDERLINED)),
        Span::styled(" · token→top-1 p: ", t.muted()),
        Span::styled("right", t.ok()),
        Span::raw(" "),
        Span::styled("wrong", t.error()),
    ]);
    let [head_r, legend_r, body_r] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(line_cut(&head, w, t.accent())), head_r);
    frame.render_widget(Paragraph::new(legend), legend_r);
    // Each chosen position as `token→top-1` (plus what the model saw when
    // it was a random token) and its probability after it.
    let mut pieces: Vec<String> = Vec::with_capacity(d.pieces.len() + 2 * chosen.len());
    let mut styles: Vec<Style> = Vec::with_capacity(pieces.capacity());
    for (i, p) in d.pieces.iter().enumerate() {
        match chosen.iter().find(|m| m.at == i) {
            Some(m) => {
                let seen = match m.kind {
                    MaskKind::Random => format!("({})", visible(&m.input)),
                    _ => String::new(),
                };
                pieces.push(format!("{}{seen}→{}", visible(p), visible(&m.top1)));
                styles.push(masked_style(t, m));
                pieces.push(format!(" {:.2} ", m.prob));
                styles.push(t.muted());
            }
            None => {
                pieces.push(p.clone());
                styles.push(t.text());
            }
        }
    }
    let lines = super::text::token_lines(&pieces, 2000, |i| styles[i]);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((app.browser.text_scroll.min(u16::MAX as usize) as u16, 0)),
        body_r,
    );
}

/// The loss pane when a checkpoint is inspected: no training, the model's
/// sizes, and the loss of the data when a sample of it was scored.
pub fn draw_no_training(app: &App, t: &Theme, frame: &mut Frame, area: Rect) {
    let block = pane_block(app, t, Pane::Loss, Line::from("loss"));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let w = inner.width as usize;
    let dir = app
        .record_loss
        .inspecting
        .as_ref()
        .map(|p| escape(&p.display().to_string()))
        .unwrap_or_default();
    let mut lines: Vec<Line> = vec![
        line_cut("no training: inspecting a checkpoint", w, t.accent()).into(),
        line_cut(&dir, w, t.muted()).into(),
    ];
    if let Some(r) = &app.run {
        lines.push(
            line_cut(
                &format!(
                    "{} layers · {} heads · width {} · {} positions · vocab {}",
                    r.n_layer, r.n_head, r.n_embd, r.block_size, r.vocab_size
                ),
                w,
                t.text(),
            )
            .into(),
        );
    }
    lines.push(Line::from(""));
    let v = &app.record_loss;
    let data_line = match (v.sample_mean(), &v.sample) {
        (Some((m, n)), Some(s)) => format!(
            "loss of the data: {m:.4} nats (perplexity {:.2}) over {n} tokens of {} records{}",
            m.exp(),
            v.scores.len(),
            if s.running { ", scoring…" } else { "" }
        ),
        (None, Some(s)) if s.running => "scoring a sample of the data…".into(),
        _ if app.dataset.is_empty() => {
            "no data: give --data FILE to see the loss of its records".into()
        }
        _ => format!(
            "{} in the dataset pane scores a sample of the records",
            app.keymap.describe(crate::app::Action::ScoreSample)
        ),
    };
    lines.push(line_cut(&data_line, w, t.text()).into());
    lines.push(
        line_cut(
            "pause, save and detach do nothing here; q quits",
            w,
            t.muted(),
        )
        .into(),
    );
    frame.render_widget(Paragraph::new(lines), inner);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_split_at_their_bounds() {
        assert_eq!(bucket(0.0), 0);
        assert_eq!(bucket(0.5), 1);
        assert_eq!(bucket(2.9), 2);
        assert_eq!(bucket(4.99), 3);
        assert_eq!(bucket(5.0), 4);
        assert_eq!(bucket(f32::NAN), 4);
        assert_eq!(bucket(f32::MAX), 4);
    }
}
