//! The attention pane: which matrix (layer, head or aggregate, step) is
//! shown; the heatmap (the whole matrix fitted, or a window around the
//! cursor), the all-heads tiles, or the heads table (scores per head,
//! sortable, each head's score over the kept probes as a sparkline); the
//! probe shown when scrubbing back through training; and the top keys of the
//! query under the cursor.

use super::heatmap::{FitHeatmap, HeadTiles, Heatmap, Matrix};
use super::Theme;
use super::{line_cut, pane_block};
use crate::app::heads::{HeadSel, ScoreColumn};
use crate::app::history::{self, sparkline};
use crate::app::{App, AttentionView, Pane};
use crate::sanitize::escape;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// The keys the query `q` attends to most in an `n x n` matrix, heaviest
/// first: among keys `0..=q` when the matrix is `causal`, among all `n`
/// keys (later ones too) when it is bidirectional.
pub fn top_keys(weights: &[f32], n: usize, q: usize, k: usize, causal: bool) -> Vec<(usize, f32)> {
    let last = if causal { n.min(q + 1) } else { n };
    let mut keys: Vec<(usize, f32)> = (0..last)
        .map(|key| (key, weights.get(q * n + key).copied().unwrap_or(0.0)))
        .collect();
    keys.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    keys.truncate(k);
    keys
}

fn title(a: &AttentionView, t: &Theme) -> Line<'static> {
    let Some(m) = &a.map else {
        return Line::from("attention");
    };
    let what = if a.table {
        format!("heads by {} · step {}", a.sort.name(), m.step)
    } else {
        let sel = if a.overview {
            format!("head all/{}", m.n_head)
        } else {
            match a.selection() {
                HeadSel::Head(h) => format!("head {}/{}", h + 1, m.n_head),
                HeadSel::Mean => format!("mean of {} heads", m.n_head),
                HeadSel::Max => format!("max of {} heads", m.n_head),
                HeadSel::Rollout => "rollout".into(),
            }
        };
        let view = if a.overview || a.fit {
            ""
        } else {
            " · window"
        };
        let full = if m.causal { "" } else { " · bidirectional" };
        format!(
            "layer {}/{} {sel} · step {}{view}{full}",
            a.layer + 1,
            m.n_layer,
            m.step
        )
    };
    let mut spans = vec![Span::raw("attention "), Span::styled(what, t.muted())];
    if a.scoring && a.table {
        spans.push(Span::styled(" · scoring…", t.warn()));
    }
    if let Some(i) = a.viewing {
        spans.push(Span::styled(
            format!(" · probe {}/{}", i + 1, a.history.len()),
            t.warn(),
        ));
    }
    Line::from(spans)
}

pub fn draw(app: &App, t: &Theme, frame: &mut Frame, area: Rect) {
    let a = &app.attention;
    let block = pane_block(app, t, Pane::Attention, title(a, t));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(map) = &a.map else {
        frame.render_widget(
            Paragraph::new(Span::styled(
                "waiting for an attention probe… (p probes the selected record)",
                t.muted(),
            )),
            inner,
        );
        return;
    };
    if map.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled("the probe has no tokens", t.muted())),
            inner,
        );
        return;
    }
    if a.table {
        draw_table(a, t, frame, inner);
        return;
    }
    if a.overview {
        let heads = map.probs.get(a.layer).map_or(&[][..], |l| l.as_slice());
        frame.render_widget(
            HeadTiles {
                tokens: &map.tokens,
                heads,
                selected_head: a.head,
                theme: t,
            },
            inner,
        );
        return;
    }
    if a.rolling_out {
        frame.render_widget(
            Paragraph::new(Span::styled(
                format!(
                    "computing the rollout of layers 1-{} on a worker…",
                    a.layer + 1
                ),
                t.muted(),
            )),
            inner,
        );
        return;
    }
    let n = map.len();
    let q = a.cursor.min(n - 1);
    let keys = top_keys(&a.shown, n, q, 8, map.causal);
    let side = inner.width >= 60;
    let (heat_r, info_r) = if side {
        let [h, i] = Layout::horizontal([Constraint::Min(1), Constraint::Length(24)]).areas(inner);
        (h, i)
    } else {
        let [h, i] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
        (h, i)
    };
    let matrix = Matrix {
        tokens: &map.tokens,
        weights: &a.shown,
        causal: map.causal,
    };
    if a.fit {
        frame.render_widget(
            FitHeatmap {
                matrix,
                cursor: q,
                theme: t,
            },
            heat_r,
        );
    } else {
        frame.render_widget(
            Heatmap {
                matrix,
                cursor: q,
                theme: t,
            },
            heat_r,
        );
    }
    let qlabel = escape(&map.tokens[q]);
    if side {
        let w = info_r.width as usize;
        let mut lines = vec![
            Line::from(line_cut(&format!(" query {q}: {qlabel}"), w, t.accent())),
            Line::from(line_cut(" top keys:", w, t.muted())),
        ];
        for (k, wt) in &keys {
            let bar = "█".repeat(((wt * 8.0).round() as usize).min(8));
            let lab = crate::sanitize::truncate_to_width(&escape(&map.tokens[*k]), 8);
            lines.push(Line::from(vec![
                Span::styled(format!(" {k:>3} {lab:<8} {wt:.2} "), t.text()),
                Span::styled(bar, Style::default().fg(t.heat_cell(*wt))),
            ]));
        }
        frame.render_widget(Paragraph::new(lines), info_r);
    } else {
        let list: Vec<String> = keys
            .iter()
            .take(3)
            .map(|(k, wt)| {
                format!(
                    "{} {:.2}",
                    crate::sanitize::truncate_to_width(&escape(&map.tokens[*k]), 6),
                    wt
                )
            })
            .collect();
        let text = format!(
            "q{q} {} → {}",
            crate::sanitize::truncate_to_width(&qlabel, 6),
            list.join(", ")
        );
        frame.render_widget(
            Paragraph::new(line_cut(&text, info_r.width as usize, t.accent())),
            info_r,
        );
    }
}

/// The column where the table's sparklines start.
const SPARK_AT: usize = 46;

fn fmt_score(v: f32) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "-".into()
    }
}

/// The heads table: one row per layer x head, sorted by `a.sort`, the
/// selected row highlighted and kept on screen.
fn draw_table(a: &AttentionView, t: &Theme, frame: &mut Frame, area: Rect) {
    if area.height < 2 {
        return;
    }
    let w = area.width as usize;
    let head = |c: ScoreColumn, width: usize| {
        let mark = if c == a.sort { "▼" } else { " " };
        format!("{:>width$}{mark}", c.name())
    };
    // The sparkline shows the sort column (copy when sorted by head) over
    // the kept probes, on one scale for the whole table.
    let spark_col = if a.sort == ScoreColumn::Head {
        ScoreColumn::Induction
    } else {
        a.sort
    };
    let spark_len = w.saturating_sub(SPARK_AT).clamp(4, history::MAX_PROBES);
    let series = |layer: usize, head: usize| {
        let v = a.history.series(layer, head, spark_col);
        v[v.len().saturating_sub(spark_len)..].to_vec()
    };
    let hi = a
        .scores
        .iter()
        .flat_map(|s| series(s.layer, s.head))
        .filter(|v| v.is_finite())
        .fold(1e-6f32, f32::max);
    let mut lines = vec![Line::from(line_cut(
        &format!(
            "{} {} {} {} {} {}  {} over time",
            head(ScoreColumn::Head, 5),
            head(ScoreColumn::Entropy, 7),
            head(ScoreColumn::PrevToken, 5),
            head(ScoreColumn::Sink, 5),
            head(ScoreColumn::Induction, 5),
            head(ScoreColumn::InductionProbe, 6),
            spark_col.name(),
        ),
        w,
        t.muted(),
    ))];
    let order = a.table_order();
    let rows = area.height as usize - 2;
    let first = (a.table_row + 1).saturating_sub(rows);
    for (i, &si) in order.iter().enumerate().skip(first).take(rows) {
        let s = &a.scores[si];
        let text = format!(
            "{:>5}  {:>7}  {:>5}  {:>5}  {:>5}  {:>6}  {}",
            format!("{}.{}", s.layer + 1, s.head + 1),
            fmt_score(s.entropy),
            fmt_score(s.prev_token),
            fmt_score(s.sink),
            fmt_score(s.induction),
            fmt_score(s.induction_probe),
            sparkline(&series(s.layer, s.head), 0.0, hi),
        );
        let style = if i == a.table_row {
            t.selection()
        } else {
            t.text()
        };
        lines.push(Line::from(line_cut(&text, w, style)));
    }
    frame.render_widget(Paragraph::new(lines), area);
    let help = "↑↓ select · Enter opens · o sorts · { } older/newer probe · t closes";
    frame.render_widget(
        Paragraph::new(line_cut(help, w, t.muted())),
        Rect::new(area.x, area.bottom() - 1, area.width, 1),
    );
}
