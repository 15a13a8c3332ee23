//! The dataset browser's state: the (filtered) record list, the selection,
//! the search line, and the selected record cut into tokenizer pieces.

use super::playground::InputLine;
use crate::data::{Dataset, Record};
use crate::tokenizer::Tokenizer;

/// Bytes of the selected record shown with token cuts (the rest is not cut).
pub const PIECES_PREFIX_BYTES: usize = 16 * 1024;
/// Bytes of each record searched by the filter.
const SEARCH_PREFIX_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Browser {
    /// Index into `visible`.
    pub selected: usize,
    /// Record indices shown (all, or those matching the filter).
    pub visible: Vec<usize>,
    pub filter: String,
    /// The search line while `/` is being typed (`InputMode::Search`).
    pub search: InputLine,
    /// Tokenizer pieces of the selected record (a display-sized prefix).
    pub pieces: Vec<String>,
    /// Token count of the whole selected record.
    pub token_count: usize,
    /// Lines scrolled in the record text.
    pub text_scroll: usize,
}

impl Browser {
    /// The selected record, if the list is not empty.
    pub fn selected_record<'a>(&self, ds: &'a Dataset) -> Option<&'a Record> {
        self.visible
            .get(self.selected)
            .and_then(|&i| ds.records.get(i))
    }

    /// Selects a row of the (filtered) list and re-cuts its tokens.
    pub fn select(&mut self, visible_index: usize, ds: &Dataset, tok: Option<&Tokenizer>) {
        let n = self.visible.len();
        self.selected = visible_index.min(n.saturating_sub(1));
        self.text_scroll = 0;
        self.recut(ds, tok);
    }

    /// Moves the selection by `delta` rows, clamped to the list.
    pub fn move_by(&mut self, delta: isize, ds: &Dataset, tok: Option<&Tokenizer>) {
        let n = self.visible.len();
        if n == 0 {
            return;
        }
        let sel = (self.selected as isize + delta).clamp(0, n as isize - 1) as usize;
        self.select(sel, ds, tok);
    }

    fn recut(&mut self, ds: &Dataset, tok: Option<&Tokenizer>) {
        let Some(rec) = self.selected_record(ds) else {
            self.pieces.clear();
            self.token_count = 0;
            return;
        };
        let text = &rec.text;
        let prefix = prefix_at_char_boundary(text, PIECES_PREFIX_BYTES);
        let (pieces, count) = match tok {
            Some(t) => {
                let pieces = t.pieces(prefix);
                let count = if prefix.len() == text.len() {
                    pieces.len()
                } else {
                    t.encode(text).len()
                };
                (pieces, count)
            }
            None => {
                let pieces: Vec<String> = prefix.chars().map(String::from).collect();
                (pieces, text.chars().count())
            }
        };
        self.pieces = pieces;
        self.token_count = count;
    }

    /// Recomputes the visible records from the filter (case-insensitive
    /// substring of title or text) and keeps the selection in range.
    pub fn apply_filter(&mut self, ds: &Dataset, tok: Option<&Tokenizer>) {
        let q = self.filter.to_lowercase();
        let prev = self.visible.get(self.selected).copied();
        self.visible = ds
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                q.is_empty()
                    || r.title.to_lowercase().contains(&q)
                    || prefix_at_char_boundary(&r.text, SEARCH_PREFIX_BYTES)
                        .to_lowercase()
                        .contains(&q)
            })
            .map(|(i, _)| i)
            .collect();
        let sel = prev
            .and_then(|p| self.visible.iter().position(|&i| i == p))
            .unwrap_or(0);
        self.select(sel, ds, tok);
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
pub fn prefix_at_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
