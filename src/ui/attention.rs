//! The attention pane: which map (layer, head, step) is shown, the heatmap
//! or the all-heads overview, and the top keys of the query under the cursor.

use super::heatmap::{HeadTiles, Heatmap};
use super::Theme;
use super::{line_cut, pane_block};
use crate::app::{App, Pane};
use crate::sanitize::escape;
use crate::train::AttentionMap;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// The keys the query `q` attends to most, heaviest first.
pub fn top_keys(
    map: &AttentionMap,
    layer: usize,
    head: usize,
    q: usize,
    k: usize,
) -> Vec<(usize, f32)> {
    let mut keys: Vec<(usize, f32)> = (0..map.len().min(q + 1))
        .map(|key| (key, map.weight(layer, head, q, key)))
        .collect();
    keys.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    keys.truncate(k);
    keys
}

pub fn draw(app: &App, t: &Theme, frame: &mut Frame, area: Rect) {
    let a = &app.attention;
    let title = match &a.map {
        Some(m) => Line::from(vec![
            Span::raw("attention "),
            Span::styled(
                format!(
                    "layer {}/{} head {}/{} · step {}",
                    a.layer + 1,
                    m.n_layer,
                    if a.overview {
                        "all".to_string()
                    } else {
                        (a.head + 1).to_string()
                    },
                    m.n_head,
                    m.step
                ),
                t.muted(),
            ),
        ]),
        None => Line::from("attention"),
    };
    let block = pane_block(app, t, Pane::Attention, title);
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
    if a.overview {
        frame.render_widget(
            HeadTiles {
                map,
                layer: a.layer,
                selected_head: a.head,
                theme: t,
            },
            inner,
        );
        return;
    }
    let q = a.cursor.min(map.len() - 1);
    let keys = top_keys(map, a.layer, a.head, q, 8);
    let side = inner.width >= 60;
    let (heat_r, info_r) = if side {
        let [h, i] = Layout::horizontal([Constraint::Min(1), Constraint::Length(24)]).areas(inner);
        (h, i)
    } else {
        let [h, i] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
        (h, i)
    };
    frame.render_widget(
        Heatmap {
            map,
            layer: a.layer,
            head: a.head,
            cursor: q,
            theme: t,
        },
        heat_r,
    );
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
                Span::styled(bar, ratatui::style::Style::default().fg(t.heat(*wt))),
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
