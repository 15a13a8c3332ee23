//! The attention pane's state: the latest probe's map, the layer and the
//! matrix shown (a head, or the layer's mean / max / rollout), the query
//! token under the cursor, the view (the whole matrix fitted to the pane, or
//! a window around the cursor), the all-heads tiles with their cursor, and
//! the heads table (scores per head, its sort column and selected row).

use super::heads::{self, HeadScore, HeadSel, ScoreColumn};
use super::history::ProbeHistory;
use crate::train::AttentionMap;

#[derive(Debug, Clone, PartialEq)]
pub struct AttentionView {
    pub map: Option<AttentionMap>,
    pub layer: usize,
    /// Index into the layer's selections: heads 0..n_head, then mean, max,
    /// rollout (`HeadSel::from_index`). In the tiles, the tile under the cursor.
    pub head: usize,
    /// The query token under the cursor.
    pub cursor: usize,
    /// All heads of the layer as tiles.
    pub overview: bool,
    /// The whole matrix fitted to the pane (max-pooled); false: a window of
    /// full-size cells around the cursor.
    pub fit: bool,
    /// The heads table instead of the heatmap.
    pub table: bool,
    pub sort: ScoreColumn,
    /// The selected row of the table (in sorted order).
    pub table_row: usize,
    /// Every head's scores on the current map.
    pub scores: Vec<HeadScore>,
    /// The matrix of the current selection (`n x n`, row-major).
    pub shown: Vec<f32>,
    /// The last probes, for scrubbing back through training.
    pub history: ProbeHistory,
    /// The kept probe shown while scrubbing (None: the newest).
    pub viewing: Option<usize>,
    /// The newest probe, put aside while an older one is shown.
    live: Option<AttentionMap>,
}

impl Default for AttentionView {
    fn default() -> Self {
        AttentionView {
            map: None,
            layer: 0,
            head: 0,
            cursor: 0,
            overview: false,
            fit: true,
            table: false,
            sort: ScoreColumn::Induction,
            table_row: 0,
            scores: Vec::new(),
            shown: Vec::new(),
            history: ProbeHistory::default(),
            viewing: None,
            live: None,
        }
    }
}

impl AttentionView {
    /// Takes a new probe: scores its heads and keeps it in the history; shows
    /// it unless an older probe is being looked at.
    pub fn on_map(&mut self, map: AttentionMap) {
        let scores = heads::score_heads(&map);
        let dropped = self.history.push(&map, scores.clone());
        match self.viewing {
            None => self.show(map, scores),
            Some(i) => {
                self.viewing = Some(i.saturating_sub(dropped));
                self.live = Some(map);
            }
        }
    }

    /// Shows `map`, keeping layer, head and cursor in range.
    fn show(&mut self, map: AttentionMap, scores: Vec<HeadScore>) {
        self.layer = self.layer.min(map.n_layer.saturating_sub(1));
        self.head = self.head.min(HeadSel::count(map.n_head).saturating_sub(1));
        self.cursor = self.cursor.min(map.len().saturating_sub(1));
        self.scores = scores;
        self.table_row = self.table_row.min(self.scores.len().saturating_sub(1));
        self.map = Some(map);
        self.refresh();
    }

    /// Older (negative) or newer probes: shows the kept probe `delta` away
    /// (those kept with scores only are skipped); back at the newest, live
    /// updates resume.
    pub fn scrub(&mut self, delta: isize) {
        let len = self.history.len();
        if len == 0 {
            return;
        }
        let mut i = self.viewing.unwrap_or(len - 1) as isize;
        loop {
            i += delta.signum();
            if i < 0 {
                return;
            }
            if i as usize >= len - 1 {
                // The newest.
                if self.viewing.take().is_some() {
                    let scores = self.history.probes.back().map(|p| p.scores.clone());
                    if let (Some(map), Some(scores)) = (self.live.take(), scores) {
                        self.show(map, scores);
                    }
                }
                return;
            }
            let p = &self.history.probes[i as usize];
            if let Some(map) = p.to_map() {
                let scores = p.scores.clone();
                if self.viewing.is_none() {
                    self.live = self.map.take();
                }
                self.viewing = Some(i as usize);
                self.show(map, scores);
                return;
            }
        }
    }

    /// What the heatmap shows.
    pub fn selection(&self) -> HeadSel {
        let nh = self.map.as_ref().map_or(1, |m| m.n_head);
        HeadSel::from_index(self.head, nh)
    }

    /// Recomputes the shown matrix after the map, layer or head changed.
    fn refresh(&mut self) {
        self.shown = match &self.map {
            Some(m) => heads::matrix(m, self.layer, self.selection()),
            None => Vec::new(),
        };
    }

    /// The weight of query `q` on key `k` in the shown matrix.
    pub fn weight(&self, q: usize, k: usize) -> f32 {
        let n = self.map.as_ref().map_or(0, |m| m.len());
        self.shown.get(q * n + k).copied().unwrap_or(0.0)
    }

    fn dims(&self) -> (usize, usize) {
        let (nl, nh) = self
            .map
            .as_ref()
            .map(|m| (m.n_layer, m.n_head))
            .unwrap_or((1, 1));
        (nl.max(1), nh.max(1))
    }

    /// Previous / next layer, wrapping.
    pub fn step_layer(&mut self, delta: isize) {
        let (nl, _) = self.dims();
        self.layer = wrap(self.layer, delta, nl);
        self.refresh();
    }

    /// Previous / next head, wrapping: through the heads and then the
    /// layer's mean, max and rollout; in the tiles, through the heads only.
    pub fn step_head(&mut self, delta: isize) {
        let (_, nh) = self.dims();
        let n = if self.overview {
            nh
        } else {
            HeadSel::count(nh)
        };
        self.head = wrap(self.head.min(n - 1), delta, n);
        self.refresh();
    }

    /// Up / down: the query cursor, the tile cursor, or the table row.
    pub fn move_cursor(&mut self, delta: isize) {
        if self.table {
            let n = self.scores.len();
            if n > 0 {
                self.table_row =
                    (self.table_row as isize + delta).clamp(0, n as isize - 1) as usize;
            }
            return;
        }
        if self.overview {
            self.step_head(delta.signum());
            return;
        }
        let n = self.map.as_ref().map_or(0, |m| m.len());
        if n > 0 {
            self.cursor = (self.cursor as isize + delta).clamp(0, n as isize - 1) as usize;
        }
    }

    /// The tiles: show all heads (the cursor on the current head, or head 1
    /// when an aggregate is shown).
    pub fn toggle_overview(&mut self) {
        self.overview = !self.overview;
        self.table = false;
        let (_, nh) = self.dims();
        if self.overview && self.head >= nh {
            self.head = 0;
            self.refresh();
        }
    }

    pub fn toggle_table(&mut self) {
        self.table = !self.table;
        self.overview = false;
    }

    /// Sorts the table by the next column; the selection goes to the top.
    pub fn sort_next(&mut self) {
        self.sort = self.sort.next();
        self.table_row = 0;
    }

    /// The table's rows: indices into `scores`, in display order.
    pub fn table_order(&self) -> Vec<usize> {
        heads::sorted(&self.scores, self.sort)
    }

    /// Enter: opens the tile under the cursor, or the head of the table's
    /// selected row, in the heatmap. Returns false when there is nothing to open.
    pub fn open(&mut self) -> bool {
        if self.table {
            let order = self.table_order();
            let Some(s) = order.get(self.table_row).map(|&i| self.scores[i]) else {
                return false;
            };
            self.layer = s.layer;
            self.head = s.head;
            self.table = false;
            self.overview = false;
            self.refresh();
            true
        } else if self.overview {
            self.overview = false;
            self.refresh();
            true
        } else {
            false
        }
    }
}

fn wrap(i: usize, delta: isize, n: usize) -> usize {
    (i as isize + delta).rem_euclid(n as isize) as usize
}
