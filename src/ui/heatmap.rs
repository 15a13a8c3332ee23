//! The attention heatmap widgets. `Heatmap`: the window view, full-size cells
//! around the query cursor with token labels on both axes (measured by
//! display width). `FitHeatmap`: the whole matrix scaled to the area, each
//! pixel the max of the block of cells it covers (a sharp one-token pattern
//! is not averaged away), with a colour-scale legend. `HeadTiles`: every head
//! of a layer, each tile its whole matrix fitted. Both fitted views draw
//! half-block cells (`▀`, foreground the upper query row, background the
//! lower), two query rows per terminal line; so does the window view unless
//! the terminal has only 16 colours, where shade characters carry the weight.

use super::theme::{ColorDepth, Theme};
use crate::sanitize::{escape, truncate_to_width, width};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::widgets::Widget;
use unicode_width::UnicodeWidthChar;

/// The upper half block: foreground = upper pixel, background = lower pixel.
pub const HALF: &str = "▀";

/// One matrix of attention weights: `n x n`, row-major, query rows.
#[derive(Clone, Copy)]
pub struct Matrix<'a> {
    pub tokens: &'a [String],
    pub weights: &'a [f32],
    /// Queries see only earlier keys: the window view ends its columns at
    /// the cursor's query; a bidirectional matrix centres them on it.
    pub causal: bool,
}

impl Matrix<'_> {
    pub fn n(&self) -> usize {
        self.tokens.len()
    }
    pub fn weight(&self, q: usize, k: usize) -> f32 {
        let n = self.n();
        self.weights.get(q * n + k).copied().unwrap_or(0.0)
    }
}

/// The window view of one matrix with axis labels.
pub struct Heatmap<'a> {
    pub matrix: Matrix<'a>,
    pub cursor: usize,
    pub theme: &'a Theme,
}

/// Where the window view put things (for tests and hit testing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeatmapGeometry {
    /// The cell grid.
    pub grid: Rect,
    pub cell_width: u16,
    /// Query rows per terminal line: 2 with half blocks, else 1.
    pub rows_per_line: u16,
    /// First query row and first key column shown.
    pub row0: usize,
    pub col0: usize,
    /// Query rows and key columns shown.
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

/// Half blocks need a colour per weight; 16 colours use shade characters.
fn half_blocks(theme: &Theme) -> bool {
    theme.depth != ColorDepth::Ansi16
}

/// Writes one half-block cell: `upper` and `lower` weights (None: nothing).
fn put_half(buf: &mut Buffer, x: u16, y: u16, upper: f32, lower: Option<f32>, t: &Theme) {
    if let Some(cell) = buf.cell_mut((x, y)) {
        let bg = match lower {
            Some(w) => t.heat_cell(w),
            None => t.base().bg.unwrap_or(Color::Reset),
        };
        cell.set_symbol(HALF)
            .set_style(Style::default().fg(t.heat_cell(upper)).bg(bg));
    }
}

impl Heatmap<'_> {
    pub fn geometry(&self, area: Rect) -> HeatmapGeometry {
        let n = self.matrix.n();
        if n == 0 || area.width < 3 || area.height < 1 {
            return HeatmapGeometry::default();
        }
        let max_label = self
            .matrix
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
        let per_line: u16 = if half_blocks(self.theme) { 2 } else { 1 };
        let grid_w = area.width - label_w;
        let lines = (area.height - label_rows) as usize;
        let rows = (lines * per_line as usize).min(n);
        let cell_width = (grid_w as usize / n).clamp(1, 4) as u16;
        let cols = (grid_w / cell_width) as usize;
        let cursor = self.cursor.min(n - 1);
        let row0 = window_start(n, rows, cursor, rows / 2);
        // Half blocks pair even rows with odd ones.
        let row0 = if per_line == 2 { row0 & !1 } else { row0 };
        let before = if self.matrix.causal {
            cols.saturating_sub(1)
        } else {
            cols / 2
        };
        let col0 = window_start(n, cols, cursor, before);
        let rows = rows.min(n - row0);
        HeatmapGeometry {
            grid: Rect::new(
                area.x + label_w,
                area.y,
                cols.min(n) as u16 * cell_width,
                rows.div_ceil(per_line as usize) as u16,
            ),
            cell_width,
            rows_per_line: per_line,
            row0,
            col0,
            rows,
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
        let m = self.matrix;
        let label_w = (g.grid.x - area.x) as usize;
        let per = g.rows_per_line as usize;
        for line in 0..g.grid.height as usize {
            let q = g.row0 + line * per;
            let y = g.grid.y + line as u16;
            // Row label, right-aligned: the cursor's token when it is on this
            // line, else the upper row's.
            let lq = if (q..q + per).contains(&self.cursor) {
                self.cursor
            } else {
                q
            };
            let text = truncate_to_width(&label(&m.tokens[lq]), label_w.saturating_sub(1));
            let pad = label_w.saturating_sub(1).saturating_sub(width(&text));
            let style = if lq == self.cursor {
                t.selection()
            } else {
                t.muted()
            };
            buf.set_stringn(area.x + pad as u16, y, &text, label_w, style);
            for c in 0..g.cols {
                let k = g.col0 + c;
                let w = m.weight(q, k);
                for dx in 0..g.cell_width {
                    let x = g.grid.x + c as u16 * g.cell_width + dx;
                    if per == 2 {
                        let lower = (q + 1 < g.row0 + g.rows).then(|| m.weight(q + 1, k));
                        put_half(buf, x, y, w, lower, t);
                    } else if let Some(cell) = buf.cell_mut((x, y)) {
                        cell.set_symbol(t.heat_symbol(w))
                            .set_style(Style::default().fg(t.heat_cell(w)));
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
            let mut chars = label(&m.tokens[k])
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

/// How a fitted matrix maps onto pixels (half-block cells: a terminal line
/// holds two pixel rows, a column one pixel). Pixels are square (cells keep
/// their shape); a matrix larger than the room is cut into blocks of
/// `block - 1` or `block` cells, each drawn as the max of its block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FitGeometry {
    /// The cells drawn.
    pub grid: Rect,
    /// The most matrix cells a pixel covers along each axis (1 when the
    /// matrix fits).
    pub block: usize,
    /// Pixels per matrix cell along each axis (1 when the matrix is pooled).
    pub zoom: usize,
    /// Pixels across and down (the same: cells stay square).
    pub pixels: usize,
    /// The matrix size.
    pub n: usize,
}

impl FitGeometry {
    /// The square geometry for an `n x n` matrix in `area`.
    pub fn new(n: usize, area: Rect) -> FitGeometry {
        let (w, h) = (area.width as usize, area.height as usize * 2);
        let room = w.min(h);
        if n == 0 || room == 0 {
            return FitGeometry::default();
        }
        let (block, zoom, pixels) = if n <= room {
            let zoom = room / n;
            (1, zoom, n * zoom)
        } else {
            (n.div_ceil(room), 1, room)
        };
        FitGeometry {
            grid: Rect::new(area.x, area.y, pixels as u16, pixels.div_ceil(2) as u16),
            block,
            zoom,
            pixels,
            n,
        }
    }

    /// The matrix rows (or columns) pixel `p` covers.
    pub fn cells(&self, p: usize, n: usize) -> std::ops::Range<usize> {
        if self.block <= 1 {
            let i = p / self.zoom.max(1);
            i.min(n)..(i + 1).min(n)
        } else {
            let at = |p: usize| (p * n).div_ceil(self.pixels).min(n);
            at(p)..at(p + 1)
        }
    }

    /// The pixel row (or column) of matrix row `q`.
    pub fn pixel_of(&self, q: usize) -> usize {
        if self.block <= 1 {
            q * self.zoom
        } else {
            q * self.pixels / self.n.max(1)
        }
    }
}

/// Max-pools a matrix to `g.pixels x g.pixels`.
pub fn pool(m: &Matrix, g: &FitGeometry) -> Vec<f32> {
    let n = m.n();
    let p = g.pixels;
    let mut out = vec![0.0f32; p * p];
    for py in 0..p {
        let rows = g.cells(py, n);
        for px in 0..p {
            let cols = g.cells(px, n);
            let mut w = 0.0f32;
            for q in rows.clone() {
                for k in cols.clone() {
                    w = w.max(m.weight(q, k));
                }
            }
            out[py * p + px] = w;
        }
    }
    out
}

/// Draws a fitted matrix into `area`; returns where.
pub fn render_fit(m: &Matrix, area: Rect, buf: &mut Buffer, t: &Theme) -> FitGeometry {
    let g = FitGeometry::new(m.n(), area);
    if g.pixels == 0 {
        return g;
    }
    let px = pool(m, &g);
    let p = g.pixels;
    for line in 0..g.grid.height as usize {
        for x in 0..p {
            let upper = px[2 * line * p + x];
            let lower = (2 * line + 1 < p).then(|| px[(2 * line + 1) * p + x]);
            put_half(
                buf,
                g.grid.x + x as u16,
                g.grid.y + line as u16,
                upper,
                lower,
                t,
            );
        }
    }
    g
}

/// The fit view of one matrix: a gutter marking the cursor's query row, the
/// fitted matrix, and a legend line (colour scale, size, pooling).
pub struct FitHeatmap<'a> {
    pub matrix: Matrix<'a>,
    pub cursor: usize,
    pub theme: &'a Theme,
}

impl FitHeatmap<'_> {
    /// The fitted matrix's geometry in `area` (gutter and legend excluded).
    pub fn geometry(&self, area: Rect) -> FitGeometry {
        FitGeometry::new(self.matrix.n(), Self::grid_area(area))
    }

    fn grid_area(area: Rect) -> Rect {
        Rect::new(
            area.x.saturating_add(1),
            area.y,
            area.width.saturating_sub(1),
            area.height.saturating_sub(1),
        )
    }
}

impl Widget for FitHeatmap<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        let n = self.matrix.n();
        if n == 0 || area.width < 4 || area.height < 2 {
            return;
        }
        let g = render_fit(&self.matrix, Self::grid_area(area), buf, t);
        if g.pixels == 0 {
            return;
        }
        // The cursor's query row.
        let cy = g.grid.y + (g.pixel_of(self.cursor.min(n - 1)) / 2) as u16;
        buf.set_stringn(area.x, cy, "▸", 1, t.selection());
        // Legend: the colour scale from 0 to 1, then size and pooling.
        let y = area.bottom() - 1;
        let mut x = area.x;
        buf.set_stringn(x, y, "0", 1, t.muted());
        x += 1;
        let steps = 10u16.min(area.width.saturating_sub(4) / 3);
        for i in 0..steps {
            let w = i as f32 / (steps.max(2) - 1) as f32;
            if let Some(cell) = buf.cell_mut((x + i, y)) {
                cell.set_symbol(t.heat_symbol(w).replace(' ', "·").as_str())
                    .set_style(Style::default().fg(t.heat_cell(w)));
            }
        }
        x += steps;
        let pooling = if g.block > 1 {
            format!("→{} max", g.pixels)
        } else {
            String::new()
        };
        let text = format!("1 {n}×{n}{pooling} · q↓ k→");
        let room = area.right().saturating_sub(x) as usize;
        buf.set_stringn(x, y, &text, room, t.muted());
    }
}

/// All heads of one layer as tiles, each its whole matrix fitted; the tile
/// under the cursor is titled in the selection colour.
pub struct HeadTiles<'a> {
    pub tokens: &'a [String],
    /// One matrix per head.
    pub heads: &'a [Vec<f32>],
    pub selected_head: usize,
    pub theme: &'a Theme,
}

/// Where each tile goes: (title line, matrix area) per head.
pub fn tile_areas(heads: usize, area: Rect) -> Vec<(Rect, Rect)> {
    if heads == 0 || area.width < 4 || area.height < 2 {
        return Vec::new();
    }
    // The column count that gives the largest square tiles (a line holds two
    // pixel rows).
    let mut best = (1usize, 0usize);
    for cols in 1..=heads {
        let rows = heads.div_ceil(cols);
        let tw = (area.width as usize / cols).saturating_sub(1);
        let th = (area.height as usize / rows).saturating_sub(1);
        let side = tw.min(th * 2);
        if side > best.1 {
            best = (cols, side);
        }
    }
    let cols = best.0;
    let rows = heads.div_ceil(cols);
    let tw = (area.width as usize / cols).saturating_sub(1).max(1) as u16;
    let th = (area.height as usize / rows).saturating_sub(1).max(1) as u16;
    (0..heads)
        .map(|h| {
            let x = area.x + (h % cols) as u16 * (tw + 1);
            let y = area.y + (h / cols) as u16 * (th + 1);
            let title = Rect::new(x, y, tw, 1).intersection(area);
            let body = Rect::new(x, y + 1, tw, th.saturating_sub(1)).intersection(area);
            (title, body)
        })
        .collect()
}

impl Widget for HeadTiles<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        for (h, (title, body)) in tile_areas(self.heads.len(), area).into_iter().enumerate() {
            let selected = h == self.selected_head;
            let (text, style) = if selected {
                (format!("▸h{}", h + 1), t.selection())
            } else {
                (format!(" h{}", h + 1), t.muted())
            };
            buf.set_stringn(title.x, title.y, text, title.width as usize, style);
            let m = Matrix {
                tokens: self.tokens,
                weights: &self.heads[h],
                causal: true,
            };
            render_fit(&m, body, buf, t);
        }
    }
}
