//! The attention pane's state: the latest probe's map, the layer and the
//! matrix shown (a head, or the layer's mean / max / rollout), the query
//! token under the cursor, the view (the whole matrix fitted to the pane, or
//! a window around the cursor), the all-heads tiles with their cursor, and
//! the heads table (scores per head, its sort column and selected row).
//!
//! A big probe (GPT-2 small: 12 x 12 heads) is scored, quantised for the
//! history and rolled out on worker threads: the map shows at once, its
//! scores and rollout when `poll` (the event loop's `App::tick`) collects
//! them, so the UI thread never waits on them.

use super::heads::{self, HeadScore, HeadSel, ScoreColumn};
use super::history::{self, ProbeHistory};
use crate::train::{AttentionMap, InductionScores};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

/// Probes with more attention weights than this (layers x heads x n x n)
/// are scored and quantised on a worker (about 10 ms of work and more).
pub const SYNC_WEIGHTS: usize = 1 << 21;
/// Rollouts costing more multiply-adds than this (layers x n^3) are
/// computed on a worker.
pub const SYNC_ROLLOUT: usize = 1 << 24;

/// What a worker hands back.
#[derive(Debug)]
enum Done {
    /// A probe's scores and its quantised matrices for the history.
    Scored {
        /// The probe's arrival number (`AttentionView::arrived`).
        seq: u64,
        map: Arc<AttentionMap>,
        scores: Vec<HeadScore>,
        probs: Option<Vec<u8>>,
    },
    /// The rollout up to `layer` of the probe of `step`.
    Rollout {
        map: Arc<AttentionMap>,
        layer: usize,
        matrix: Vec<f32>,
    },
}

/// The channel workers answer on, and how many answers are due.
#[derive(Debug)]
struct Workers {
    tx: Sender<Done>,
    rx: Receiver<Done>,
    due: usize,
}

impl Default for Workers {
    fn default() -> Self {
        let (tx, rx) = channel();
        Workers { tx, rx, due: 0 }
    }
}

impl Clone for Workers {
    /// A copy of the view does not inherit work in flight.
    fn clone(&self) -> Self {
        Workers::default()
    }
}

impl PartialEq for Workers {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Workers {
    fn spawn(&mut self, job: impl FnOnce() -> Done + Send + 'static) {
        let tx = self.tx.clone();
        self.due += 1;
        std::thread::spawn(move || {
            let _ = tx.send(job());
        });
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttentionView {
    pub map: Option<Arc<AttentionMap>>,
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
    live: Option<Arc<AttentionMap>>,
    /// The shown probe's scores are being computed on a worker.
    pub scoring: bool,
    /// The shown rollout is being computed on a worker.
    pub rolling_out: bool,
    /// Induction-probe scores that came before their probe's scores.
    early_induction: Option<InductionScores>,
    /// Probes taken so far, and the arrival number of the shown one and of
    /// `live`: a probe scored late never replaces one that came after it.
    arrived: u64,
    shown_seq: u64,
    live_seq: u64,
    workers: Workers,
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
            scoring: false,
            rolling_out: false,
            early_induction: None,
            arrived: 0,
            shown_seq: 0,
            live_seq: 0,
            workers: Workers::default(),
        }
    }
}

impl AttentionView {
    /// Takes a new probe: scores its heads and keeps it in the history; shows
    /// it unless an older probe is being looked at. A big probe is shown at
    /// once and scored on a worker (`poll` collects the scores).
    pub fn on_map(&mut self, map: AttentionMap) {
        let map = Arc::new(map);
        self.arrived += 1;
        let seq = self.arrived;
        let n = map.len();
        if map.n_layer * map.n_head * n * n > SYNC_WEIGHTS {
            let m = map.clone();
            self.workers.spawn(move || Done::Scored {
                seq,
                scores: heads::score_heads(&m),
                probs: history::quantised(&m),
                map: m,
            });
            if self.viewing.is_none() {
                let pending = placeholder_scores(&map);
                self.show(map, pending);
                self.shown_seq = seq;
                self.scoring = true;
            } else {
                self.live = Some(map);
                self.live_seq = seq;
            }
            return;
        }
        let scores = heads::score_heads(&map);
        self.keep(seq, &map, history::quantised(&map), scores);
    }

    /// Puts a scored probe into the history; shows it unless an older probe
    /// is being looked at (or a newer one arrived meanwhile).
    fn keep(
        &mut self,
        seq: u64,
        map: &Arc<AttentionMap>,
        probs: Option<Vec<u8>>,
        scores: Vec<HeadScore>,
    ) {
        let mut scores = scores;
        if let Some(s) = self.early_induction.take() {
            if s.step == map.step {
                apply_induction(&mut scores, &s);
            } else {
                self.early_induction = Some(s);
            }
        }
        let dropped = self.history.push_quantised(map, probs, scores.clone());
        match self.viewing {
            None => {
                if seq >= self.shown_seq {
                    self.scoring = false;
                    self.shown_seq = seq;
                    self.show(map.clone(), scores);
                }
            }
            Some(i) => {
                self.viewing = Some(i.saturating_sub(dropped));
                if seq >= self.live_seq {
                    self.live_seq = seq;
                    self.live = Some(map.clone());
                }
            }
        }
    }

    /// Collects what the workers finished; true when something changed.
    pub fn poll(&mut self) -> bool {
        let mut changed = false;
        while self.workers.due > 0 {
            let Ok(done) = self.workers.rx.try_recv() else {
                break;
            };
            self.workers.due -= 1;
            changed = true;
            match done {
                Done::Scored {
                    seq,
                    map,
                    scores,
                    probs,
                } => self.keep(seq, &map, probs, scores),
                Done::Rollout { map, layer, matrix } => {
                    let current = self.map.as_ref().is_some_and(|m| Arc::ptr_eq(m, &map));
                    if current && layer == self.layer && self.selection() == HeadSel::Rollout {
                        self.shown = matrix;
                        self.rolling_out = false;
                    }
                }
            }
        }
        changed
    }

    /// True while a worker is computing something this view waits for.
    pub fn busy(&self) -> bool {
        self.workers.due > 0
    }

    /// Shows `map`, keeping layer, head and cursor in range.
    fn show(&mut self, map: Arc<AttentionMap>, scores: Vec<HeadScore>) {
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
                    if let Some(map) = self.live.take() {
                        self.shown_seq = self.live_seq;
                        // Its scores, or placeholders while a worker scores it.
                        let kept = self.history.probes.back().filter(|p| p.step == map.step);
                        let scores = kept.map(|p| p.scores.clone());
                        self.scoring = scores.is_none();
                        let scores = scores.unwrap_or_else(|| placeholder_scores(&map));
                        self.show(map, scores);
                    }
                }
                return;
            }
            let p = &self.history.probes[i as usize];
            if let Some(map) = p.to_map() {
                let map = Arc::new(map);
                let scores = p.scores.clone();
                if self.viewing.is_none() {
                    self.live = self.map.take();
                    self.live_seq = self.shown_seq;
                }
                self.viewing = Some(i as usize);
                self.show(map, scores);
                return;
            }
        }
    }

    /// Takes the heads' scores on the induction probe of a step: into the
    /// kept probe of that step and, when it is shown, into the table (kept
    /// aside when that probe is still being scored).
    pub fn on_induction(&mut self, s: InductionScores) {
        if let Some(p) = self
            .history
            .probes
            .iter_mut()
            .rev()
            .find(|p| p.step == s.step)
        {
            apply_induction(&mut p.scores, &s);
        }
        if self.map.as_ref().map(|m| m.step) == Some(s.step) {
            apply_induction(&mut self.scores, &s);
        }
        if self.scoring || self.live.as_ref().is_some_and(|m| m.step == s.step) {
            self.early_induction = Some(s);
        }
    }

    /// What the heatmap shows.
    pub fn selection(&self) -> HeadSel {
        let nh = self.map.as_ref().map_or(1, |m| m.n_head);
        HeadSel::from_index(self.head, nh)
    }

    /// Recomputes the shown matrix after the map, layer or head changed (a
    /// costly rollout on a worker: empty until `poll` brings it).
    fn refresh(&mut self) {
        self.rolling_out = false;
        let sel = self.selection();
        self.shown = match &self.map {
            Some(m) if sel == HeadSel::Rollout && rollout_cost(m, self.layer) > SYNC_ROLLOUT => {
                let (m, layer) = (m.clone(), self.layer);
                self.workers.spawn(move || Done::Rollout {
                    matrix: heads::rollout(&m, layer),
                    map: m,
                    layer,
                });
                self.rolling_out = true;
                Vec::new()
            }
            Some(m) => heads::matrix(m, self.layer, sel),
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

/// Multiply-adds of the rollout up to `layer`.
fn rollout_cost(m: &AttentionMap, layer: usize) -> usize {
    let n = m.len();
    (layer + 1).saturating_mul(n.saturating_mul(n).saturating_mul(n))
}

/// Every head of the map with NaN scores: the table's rows while a worker
/// scores them.
fn placeholder_scores(map: &AttentionMap) -> Vec<HeadScore> {
    (0..map.n_layer)
        .flat_map(|layer| {
            (0..map.n_head).map(move |head| HeadScore {
                layer,
                head,
                entropy: f32::NAN,
                prev_token: f32::NAN,
                sink: f32::NAN,
                induction: f32::NAN,
                induction_probe: f32::NAN,
            })
        })
        .collect()
}

fn apply_induction(scores: &mut [HeadScore], s: &InductionScores) {
    for h in scores.iter_mut() {
        h.induction_probe = s.get(h.layer, h.head);
    }
}

fn wrap(i: usize, delta: isize, n: usize) -> usize {
    (i as isize + delta).rem_euclid(n as isize) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// `n_layer x n_head` heads of `n` tokens, every row on the previous token.
    fn prev_map(step: usize, n_layer: usize, n_head: usize, n: usize) -> AttentionMap {
        let mut m = vec![0.0f32; n * n];
        for q in 0..n {
            m[q * n + q.saturating_sub(1)] = 1.0;
        }
        AttentionMap {
            step,
            tokens: (0..n).map(|i| format!("t{}", i % 7)).collect(),
            n_layer,
            n_head,
            probs: vec![vec![m; n_head]; n_layer],
            causal: true,
        }
    }

    fn wait(a: &mut AttentionView) {
        let start = Instant::now();
        while a.busy() {
            a.poll();
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "worker never answered"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_big_probe_shows_at_once_and_is_scored_on_a_worker() {
        let mut a = AttentionView::default();
        // 2 x 2 heads of 800 tokens: 2.56M weights, past SYNC_WEIGHTS.
        let big = prev_map(10, 2, 2, 800);
        const { assert!(4 * 800 * 800 > SYNC_WEIGHTS) };
        a.on_map(big);
        assert!(a.map.is_some() && a.scoring);
        assert_eq!(a.scores.len(), 4);
        assert!(a.scores.iter().all(|s| s.prev_token.is_nan()));
        assert!(a.history.is_empty());
        // Its induction-probe scores may come first: kept for it.
        a.on_induction(InductionScores {
            step: 10,
            half: 32,
            n_layer: 2,
            n_head: 2,
            scores: vec![0.25, 0.5, 0.75, 1.0],
        });
        wait(&mut a);
        assert!(!a.scoring);
        assert!(
            a.scores.iter().all(|s| s.prev_token == 1.0),
            "{:?}",
            a.scores
        );
        assert_eq!(a.scores[3].induction_probe, 1.0);
        assert_eq!(a.history.len(), 1);
        // Quantised for the history on the worker too.
        assert_eq!(
            a.history.probes[0].probs.as_ref().map(Vec::len),
            Some(4 * 800 * 800)
        );
        assert_eq!(a.history.probes[0].scores[2].induction_probe, 0.75);
        // A small probe after it is scored at once.
        a.on_map(prev_map(20, 2, 2, 16));
        assert!(!a.scoring && !a.busy());
        assert_eq!(a.map.as_ref().unwrap().step, 20);
        assert_eq!(a.history.len(), 2);
        // A big probe, then a small one (a lower step: a probe on request
        // after a resume): the later arrival stays shown when the big
        // one's scores come.
        a.on_map(prev_map(30, 2, 2, 800));
        a.on_map(prev_map(5, 2, 2, 16));
        assert_eq!(a.map.as_ref().unwrap().step, 5);
        wait(&mut a);
        assert_eq!(a.map.as_ref().unwrap().step, 5);
        assert_eq!(a.scores[0].prev_token, 1.0);
        assert_eq!(a.history.len(), 4);
    }

    #[test]
    fn a_costly_rollout_is_computed_on_a_worker() {
        let mut a = AttentionView::default();
        // 2 layers of 300 tokens: 2 x 300^3 multiply-adds, past SYNC_ROLLOUT.
        let m = prev_map(5, 2, 1, 300);
        let want = heads::rollout(&m, 1);
        a.on_map(m);
        a.step_layer(1);
        // Heads 0, then mean, max, rollout.
        for _ in 0..3 {
            a.step_head(1);
        }
        assert_eq!(a.selection(), HeadSel::Rollout);
        assert!(a.rolling_out && a.shown.is_empty());
        wait(&mut a);
        assert!(!a.rolling_out);
        assert_eq!(a.shown, want);
        // Moving on before it arrives: the late rollout is not shown.
        a.step_head(1);
        a.step_head(-1);
        a.step_head(-1);
        wait(&mut a);
        assert_eq!(a.selection(), HeadSel::Max);
        assert_eq!(a.shown, heads::layer_max(a.map.as_ref().unwrap(), 1));
    }
}
