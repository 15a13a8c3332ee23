//! The attention pane's state: the latest probe's map, the layer and head
//! shown, the query token under the cursor, and the all-heads overview toggle.

use crate::train::AttentionMap;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AttentionView {
    pub map: Option<AttentionMap>,
    pub layer: usize,
    pub head: usize,
    /// The query token under the cursor.
    pub cursor: usize,
    pub overview: bool,
}

impl AttentionView {
    /// Takes a new probe, keeping layer, head and cursor in range.
    pub fn on_map(&mut self, map: AttentionMap) {
        self.layer = self.layer.min(map.n_layer.saturating_sub(1));
        self.head = self.head.min(map.n_head.saturating_sub(1));
        self.cursor = self.cursor.min(map.len().saturating_sub(1));
        self.map = Some(map);
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
    }

    /// Previous / next head, wrapping.
    pub fn step_head(&mut self, delta: isize) {
        let (_, nh) = self.dims();
        self.head = wrap(self.head, delta, nh);
    }

    /// Moves the query cursor by `delta` tokens, clamped to the probe.
    pub fn move_cursor(&mut self, delta: isize) {
        let n = self.map.as_ref().map_or(0, |m| m.len());
        if n > 0 {
            self.cursor = (self.cursor as isize + delta).clamp(0, n as isize - 1) as usize;
        }
    }
}

fn wrap(i: usize, delta: isize, n: usize) -> usize {
    (i as isize + delta).rem_euclid(n as isize) as usize
}
