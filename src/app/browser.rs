//! The dataset browser's state: the (filtered) record list, the selection
//! and the selected record (read on demand, so a corpus of any size is
//! browsed from its record index without its text in memory), the search
//! line, its search (at once on small data, else incremental on a worker
//! thread: cancelled when the query changes, bounded, matches streamed in
//! with the progress), and the selected record cut into tokenizer pieces.
//!
//! The selection API other views use: [`Browser::selected_record`] (title
//! and text of the selected record) and [`Browser::selected_index`] (its
//! index in the dataset, for `Dataset::record`).

use super::playground::InputLine;
use crate::data::{Dataset, Record, RecordStore};
use crate::tokenizer::Tokenizer;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Mutex};

/// Bytes of the selected record shown with token cuts (the rest is not cut).
pub const PIECES_PREFIX_BYTES: usize = 16 * 1024;
/// Bytes of each record searched by the filter.
const SEARCH_PREFIX_BYTES: usize = 1 << 20;
/// A dataset of at most this many bytes in memory is searched at once, on
/// the UI thread; a larger one on a worker.
const SYNC_SEARCH_BYTES: usize = 4 << 20;
/// A search stops after this many matches (and says so).
pub const MAX_MATCHES: usize = 100_000;
/// The worker reads the corpus in blocks of about this many bytes.
const SEARCH_BLOCK: usize = 4 << 20;

/// How far the worker's search is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SearchProgress {
    /// Records searched so far, of `total`.
    pub searched: usize,
    pub total: usize,
    /// The search is over (all searched, or stopped at [`MAX_MATCHES`]).
    pub done: bool,
    /// It stopped at [`MAX_MATCHES`].
    pub capped: bool,
}

enum SearchMsg {
    Found {
        matches: Vec<usize>,
        progress: SearchProgress,
    },
}

/// A search running on a worker thread; dropped or replaced, it is cancelled.
struct SearchJob {
    cancel: Arc<AtomicBool>,
    rx: Mutex<Receiver<SearchMsg>>,
}

impl Drop for SearchJob {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// The running search, if any (compares equal by identity).
#[derive(Clone, Default)]
struct Job(Option<Arc<SearchJob>>);

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Job(running)"
        } else {
            "Job(none)"
        })
    }
}

impl PartialEq for Job {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Browser {
    /// Index into `visible`.
    pub selected: usize,
    /// Record indices shown (all, or those matching the filter, in order).
    pub visible: Vec<usize>,
    pub filter: String,
    /// The search line while `/` is being typed (`InputMode::Search`).
    pub search: InputLine,
    /// The worker's search, while one runs or ran for the current filter.
    pub progress: Option<SearchProgress>,
    /// Tokenizer pieces of the selected record (a display-sized prefix).
    pub pieces: Vec<String>,
    /// Token count of the whole selected record.
    pub token_count: usize,
    /// Lines scrolled in the record text.
    pub text_scroll: usize,
    /// The selected record, read when selected: `(dataset index, record)`.
    current: Option<(usize, Record)>,
    job: Job,
}

impl Browser {
    /// The selected record, if the list is not empty. (`ds` is the dataset
    /// it was read from; the record is kept since it was selected.)
    pub fn selected_record<'a>(&'a self, _ds: &Dataset) -> Option<&'a Record> {
        self.current.as_ref().map(|(_, r)| r)
    }

    /// The dataset index of the selected record.
    pub fn selected_index(&self) -> Option<usize> {
        self.visible.get(self.selected).copied()
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
        let sel = (self.selected as isize)
            .saturating_add(delta)
            .clamp(0, n as isize - 1) as usize;
        self.select(sel, ds, tok);
    }

    /// Reads the selected record and cuts its start into tokens.
    fn recut(&mut self, ds: &Dataset, tok: Option<&Tokenizer>) {
        let idx = self.selected_index();
        if idx != self.current.as_ref().map(|c| c.0) {
            self.current = idx.and_then(|i| ds.record(i).map(|r| (i, r.into_owned())));
        }
        let Some((_, rec)) = &self.current else {
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
    /// substring of title or text) and keeps the selection in range: at
    /// once for a small dataset, else by a search on a worker whose matches
    /// [`Browser::poll`] takes in (the running one, if any, is cancelled).
    pub fn apply_filter(&mut self, ds: &Dataset, tok: Option<&Tokenizer>) {
        let q = self.filter.to_lowercase();
        let prev = self.selected_index();
        self.job = Job::default();
        self.progress = None;
        if q.is_empty() {
            self.visible = (0..ds.len()).collect();
        } else if let Some(store) = ds
            .store
            .as_ref()
            .filter(|_| ds.total_bytes() > SYNC_SEARCH_BYTES)
        {
            self.visible.clear();
            self.start_search(store.clone(), q);
            self.select(0, ds, tok);
            return;
        } else {
            self.visible = (0..ds.len())
                .filter(|&i| {
                    ds.title(i).is_some_and(|t| t.to_lowercase().contains(&q))
                        || ds
                            .text_prefix(i, SEARCH_PREFIX_BYTES)
                            .is_some_and(|t| t.to_lowercase().contains(&q))
                })
                .collect();
        }
        let sel = prev
            .and_then(|p| self.visible.iter().position(|&i| i == p))
            .unwrap_or(0);
        self.select(sel, ds, tok);
    }

    fn start_search(&mut self, store: Arc<RecordStore>, q: String) {
        let cancel = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let c = cancel.clone();
        let total = store.len();
        let spawned = std::thread::Builder::new()
            .name("browser-search".into())
            .spawn(move || {
                search(&store, &q, &c, &mut |matches, progress| {
                    tx.send(SearchMsg::Found { matches, progress }).is_ok()
                })
            });
        if spawned.is_err() {
            self.progress = Some(SearchProgress {
                total,
                done: true,
                ..Default::default()
            });
            return;
        }
        self.progress = Some(SearchProgress {
            total,
            ..Default::default()
        });
        self.job = Job(Some(Arc::new(SearchJob {
            cancel,
            rx: Mutex::new(rx),
        })));
    }

    /// Takes in what the search worker found since the last call; true
    /// when anything changed (the view needs a redraw).
    pub fn poll(&mut self, ds: &Dataset, tok: Option<&Tokenizer>) -> bool {
        let Some(job) = self.job.0.clone() else {
            return false;
        };
        let mut changed = false;
        let had = self.visible.len();
        let Ok(rx) = job.rx.lock() else {
            return false;
        };
        loop {
            match rx.try_recv() {
                Ok(SearchMsg::Found { matches, progress }) => {
                    self.visible.extend(matches);
                    self.progress = Some(progress);
                    changed = true;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    drop(rx);
                    self.job = Job::default();
                    if let Some(p) = self.progress.as_mut() {
                        changed |= !p.done;
                        p.done = true;
                    }
                    break;
                }
            }
        }
        if had == 0 && !self.visible.is_empty() {
            self.select(0, ds, tok);
        }
        changed
    }

    /// A search is running on the worker.
    pub fn searching(&self) -> bool {
        self.job.0.is_some()
    }
}

/// Searches the records of `store` for `q` (lower case) in their title or
/// the first [`SEARCH_PREFIX_BYTES`] of their text, case-insensitively,
/// reading the corpus in blocks; `found` gets the matches and the progress
/// about every block (false: stop). Stops at [`MAX_MATCHES`] or when
/// `cancel` is set.
fn search(
    store: &RecordStore,
    q: &str,
    cancel: &AtomicBool,
    found: &mut dyn FnMut(Vec<usize>, SearchProgress) -> bool,
) {
    let total = store.len();
    let ascii = q.is_ascii();
    let mut n_found = 0usize;
    let mut i = 0usize;
    let mut last = std::time::Instant::now();
    let mut batch = Vec::new();
    while i < total {
        if cancel.load(Ordering::Relaxed) {
            return;
        }
        let Some((first, mut block)) = store.read_block(i, SEARCH_BLOCK) else {
            return;
        };
        let end = first.end;
        if ascii {
            block.make_ascii_lowercase();
        }
        let base = store.offset(first.start).unwrap_or(0);
        for r in first.clone() {
            let off = (store.offset(r).unwrap_or(0) - base) as usize;
            let len = store.text_len(r).unwrap_or(0).min(SEARCH_PREFIX_BYTES);
            let hit = store.title(r).is_some_and(|t| t.to_lowercase().contains(q)) || {
                let bytes = &block[off.min(block.len())..(off + len).min(block.len())];
                match std::str::from_utf8(bytes) {
                    Ok(s) if ascii => s.contains(q),
                    Ok(s) => s.to_lowercase().contains(q),
                    Err(_) => String::from_utf8_lossy(bytes).to_lowercase().contains(q),
                }
            };
            if hit {
                batch.push(r);
                n_found += 1;
                if n_found >= MAX_MATCHES {
                    let p = SearchProgress {
                        searched: r + 1,
                        total,
                        done: true,
                        capped: true,
                    };
                    found(std::mem::take(&mut batch), p);
                    return;
                }
            }
        }
        i = end;
        if last.elapsed().as_millis() >= 100 || i >= total {
            last = std::time::Instant::now();
            let p = SearchProgress {
                searched: i,
                total,
                done: i >= total,
                capped: false,
            };
            if !found(std::mem::take(&mut batch), p) {
                return;
            }
        }
    }
    if total == 0 {
        found(
            Vec::new(),
            SearchProgress {
                done: true,
                ..Default::default()
            },
        );
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
