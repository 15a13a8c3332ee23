//! The attention heatmap widget: query rows x key columns of one head, token
//! labels on both axes measured by display width, windowed around the query
//! cursor when the tokens do not fit; and the all-heads overview tiles.

use super::theme::Theme;
use crate::sanitize::{escape, truncate_to_width, width};
use crate::train::AttentionMap;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::widgets::Widget;
use unicode_width::UnicodeWidthChar;

/// One head's heatmap with axis labels.
pub struct Heatmap<'a> {
    pub map: &'a AttentionMap,
    pub layer: usize,
    pub head: usize,
    pub cursor: usize,
    pub theme: &'a Theme,
}

/// Where the heatmap put things (for tests and hit testing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeatmapGeometry {
    /// The cell grid.
    pub grid: Rect,
    pub cell_width: u16,
    /// First query row and first key column shown.
    pub row0: usize,
    pub col0: usize,
    pub rows: usize,
    pub cols: usize,
}

fn label(tok: &str) -> String {
    let e = escape(tok);
    if e.is_empty() {
        "∅".into()
    } else {
        e
    }
}

/// The first index of a window of `len` over `n` items that keeps `at` in view,
/// `at` placed `before` items from the window's start where possible.
fn window_start(n: usize, len: usize, at: usize, before: usize) -> usize {
    if n <= len {
        0
    } else {
        at.saturating_sub(before).min(n - len)
    }
}

impl Heatmap<'_> {
    pub fn geometry(&self, area: Rect) -> HeatmapGeometry {
        let n = self.map.len();
        if n == 0 || area.width < 3 || area.height < 1 {
            return HeatmapGeometry::default();
        }
        let max_label = self
            .map
            .tokens
            .iter()
            .map(|t| width(&label(t)))
            .max()
            .unwrap_or(1);
        let label_w = (max_label.min(8) as u16 + 1).min(area.width / 3);
        let label_rows: u16 = if area.height >= 8 {
            3
        } else if area.height >= 4 {
            1
        } else {
            0
        };
        let grid_w = area.width - label_w;
        let grid_h = (area.height - label_rows).min(n as u16);
        let cell_width = (grid_w as usize / n).clamp(1, 4) as u16;
        let cols = (grid_w / cell_width) as usize;
        let rows = grid_h as usize;
        let cursor = self.cursor.min(n - 1);
        let row0 = window_start(n, rows, cursor, rows / 2);
        let col0 = window_start(n, cols, cursor, cols.saturating_sub(1));
        HeatmapGeometry {
            grid: Rect::new(area.x + label_w, area.y, cols as u16 * cell_width, grid_h),
            cell_width,
            row0,
            col0,
            rows: rows.min(n - row0),
            cols: cols.min(n - col0),
        }
    }
}

impl Widget for Heatmap<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let g = self.geometry(area);
        if g.rows == 0 || g.cols == 0 {
            return;
        }
        let t = self.theme;
        let label_w = (g.grid.x - area.x) as usize;
        for r in 0..g.rows {
            let q = g.row0 + r;
            let y = g.grid.y + r as u16;
            // Row label, right-aligned.
            let text = truncate_to_width(&label(&self.map.tokens[q]), label_w.saturating_sub(1));
            let pad = label_w.saturating_sub(1).saturating_sub(width(&text));
            let style = if q == self.cursor {
                t.selection()
            } else {
                t.muted()
            };
            buf.set_stringn(area.x + pad as u16, y, &text, label_w, style);
            for c in 0..g.cols {
                let k = g.col0 + c;
                let w = self.map.weight(self.layer, self.head, q, k);
                let style = Style::default().fg(t.heat(w));
                let sym = t.heat_symbol(w);
                for dx in 0..g.cell_width {
                    let x = g.grid.x + c as u16 * g.cell_width + dx;
                    if let Some(cell) = buf.cell_mut((x, y)) {
                        cell.set_symbol(sym).set_style(style);
                    }
                }
            }
        }
        // Key labels, written downwards one character per row.
        let label_rows = area.bottom().saturating_sub(g.grid.bottom());
        for c in 0..g.cols {
            let k = g.col0 + c;
            let x = g.grid.x + c as u16 * g.cell_width;
            let style = if k == self.cursor {
                t.selection()
            } else {
                t.muted()
            };
            let mut chars = label(&self.map.tokens[k])
                .chars()
                .filter(|ch| ch.width().unwrap_or(0) > 0)
                .collect::<Vec<_>>();
            chars.truncate(label_rows as usize);
            for (j, ch) in chars.into_iter().enumerate() {
                let ch = if ch.width().unwrap_or(0) as u16 > g.cell_width {
                    '·'
                } else {
                    ch
                };
                buf.set_stringn(
                    x,
                    g.grid.bottom() + j as u16,
                    ch.to_string(),
                    g.cell_width as usize,
                    style,
                );
            }
        }
    }
}

/// All heads of one layer as small tiles; each tile cell shows the largest
/// weight of the block of queries and keys it covers.
pub struct HeadTiles<'a> {
    pub map: &'a AttentionMap,
    pub layer: usize,
    pub selected_head: usize,
    pub theme: &'a Theme,
}

impl Widget for HeadTiles<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let n = self.map.len();
        let heads = self.map.n_head;
        if n == 0 || heads == 0 || area.width < 4 || area.height < 2 {
            return;
        }
        let t = self.theme;
        // Pick the column count that gives the squarest tiles (cells are ~2:1).
        let mut best = (1usize, 0i64);
        for cols in 1..=heads {
            let rows = heads.div_ceil(cols);
            let tw = (area.width as usize / cols).saturating_sub(1);
            let th = (area.height as usize / rows).saturating_sub(1);
            let side = (tw / 2).min(th) as i64;
            if side > best.1 {
                best = (cols, side);
            }
        }
        let cols = best.0;
        let rows = heads.div_ceil(cols);
        let tw = (area.width as usize / cols).saturating_sub(1).max(1);
        let th = (area.height as usize / rows).saturating_sub(1).max(1);
        for h in 0..heads {
            let tx = area.x + ((h % cols) * (tw + 1)) as u16;
            let ty = area.y + ((h / cols) * (th + 1)) as u16;
            let style = if h == self.selected_head {
                t.selection()
            } else {
                t.muted()
            };
            buf.set_stringn(tx, ty, format!("h{h}"), tw, style);
            let gw = tw.min(n * 2).max(1);
            let gh = th.saturating_sub(1).min(n);
            for gy in 0..gh {
                let q0 = gy * n / gh;
                let q1 = ((gy + 1) * n / gh).max(q0 + 1);
                for gx in 0..gw {
                    let k0 = gx * n / gw;
                    let k1 = ((gx + 1) * n / gw).max(k0 + 1);
                    let mut w = 0.0f32;
                    for q in q0..q1.min(n) {
                        for k in k0..k1.min(n) {
                            w = w.max(self.map.weight(self.layer, h, q, k));
                        }
                    }
                    let x = tx + gx as u16;
                    let y = ty + 1 + gy as u16;
                    if x < area.right() && y < area.bottom() {
                        if let Some(cell) = buf.cell_mut((x, y)) {
                            cell.set_symbol(t.heat_symbol(w))
                                .set_style(Style::default().fg(t.heat(w)));
                        }
                    }
                }
            }
        }
    }
}
