//! The dataset pane, token by token: the per-token losses of the selected
//! record under the current weights (asked for whenever the selection or the
//! weights change), and the mean losses of a sample of records that a worker
//! scores on request (`score_sample`), by which the record list can be
//! sorted, hardest first. The requests go out as `Command::Score`; the
//! answers come back as `Event::RecordLoss` and `Event::ScoreDone`.

use super::{App, Effect, RunState};
use crate::train::{Command, RecordLoss, ScoreRequest};
use std::collections::HashMap;
use std::path::PathBuf;

/// Records one sample scores at most (spread evenly over the shown list).
pub const SAMPLE_SIZE: usize = 256;
/// While a sample comes in, the sorted list is re-sorted every this many records.
const RESORT_EVERY: usize = 16;

/// What pause, save and detach say when there is no trainer.
pub const INSPECTING: &str = "no trainer: inspecting a checkpoint";

/// A sampled record's score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleScore {
    pub mean: f32,
    pub tokens: usize,
    pub step: usize,
}

/// A sample being scored, or the last one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SampleProgress {
    pub id: u64,
    pub done: usize,
    pub total: usize,
    pub running: bool,
    pub cancelled: bool,
    /// A bound that cut it short.
    pub note: Option<String>,
}

/// The least time between two scorings of the same record for new weights.
const RESCORE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The loss view's state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordLossView {
    next_id: u64,
    /// The detail request in flight and the record it asked for.
    pub pending: Option<(u64, usize)>,
    /// The record the latest detail request asked for.
    requested: Option<usize>,
    /// The weights changed since: ask again.
    stale: bool,
    /// When the latest detail request was sent: new weights re-score the
    /// same record at most once per [`RESCORE_EVERY`], never while a request
    /// is in flight (evaluations can come many times a second, and a viewer's
    /// commands are rate-limited by the trainer's server).
    sent_at: Option<std::time::Instant>,
    /// The per-token losses of the selected record (or of the last one
    /// scored; see [`App::record_loss_detail`]).
    pub detail: Option<RecordLoss>,
    /// Mean losses of the sampled records, by record index.
    pub scores: HashMap<usize, SampleScore>,
    pub sample: Option<SampleProgress>,
    /// The record list is sorted by sample loss, highest first.
    pub sorted: bool,
    /// No trainer: a checkpoint opened by `headsup tui --checkpoint`.
    pub inspecting: Option<PathBuf>,
    /// A masked LM's run: the selected record is shown masked, with the
    /// model's prediction at each chosen position (`M` toggles).
    pub masked_view: bool,
}

impl RecordLossView {
    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The token-weighted mean loss of the sample scored so far, and its
    /// token count.
    pub fn sample_mean(&self) -> Option<(f64, usize)> {
        let (sum, n) = self
            .scores
            .values()
            .filter(|s| s.mean.is_finite())
            .fold((0.0f64, 0usize), |(s, n), v| {
                (s + v.mean as f64 * v.tokens as f64, n + v.tokens)
            });
        (n > 0).then(|| (sum / n as f64, n))
    }
}

impl App {
    /// The per-token losses of the selected record, when they are in.
    pub fn record_loss_detail(&self) -> Option<&RecordLoss> {
        let d = self.record_loss.detail.as_ref()?;
        let sel = self.browser.visible.get(self.browser.selected)?;
        (d.record == *sel).then_some(d)
    }

    /// A checkpoint is inspected: there is no trainer.
    pub fn inspecting(&self) -> bool {
        self.record_loss.inspecting.is_some()
    }

    /// Someone can score: a trainer (or a stand-in) that is still there.
    fn can_score(&self) -> bool {
        self.run.is_some()
            && !matches!(self.state, RunState::Failed(_))
            && !self.stopping
            && !self.dataset.is_empty()
    }

    /// The requests the loss view needs now: the selected record's losses
    /// when the selection or the weights changed (and, on a checkpoint
    /// opened with data, a sample of the records once). The event loop sends them
    /// after every input and event.
    pub fn score_effects(&mut self) -> Vec<Effect> {
        if !self.can_score() {
            return Vec::new();
        }
        let Some(&rec) = self.browser.visible.get(self.browser.selected) else {
            return Vec::new();
        };
        // A checkpoint with data: the loss of the data (a sample) at once.
        let mut out = Vec::new();
        if self.inspecting() && self.record_loss.sample.is_none() {
            out = self.toggle_sample();
        }
        let v = &mut self.record_loss;
        if v.requested == Some(rec)
            && (!v.stale
                || v.pending.is_some()
                || v.sent_at.is_some_and(|t| t.elapsed() < RESCORE_EVERY))
        {
            return out;
        }
        v.stale = false;
        v.sent_at = Some(std::time::Instant::now());
        v.requested = Some(rec);
        let id = v.new_id();
        v.pending = Some((id, rec));
        out.push(Effect::Send(Command::Score(ScoreRequest {
            id,
            records: vec![rec],
            detail: true,
        })));
        out
    }

    /// New weights (an evaluation): the selected record is scored again.
    pub(super) fn weights_changed(&mut self) {
        self.record_loss.stale = true;
    }

    /// One record's losses came in.
    pub(super) fn on_record_loss(&mut self, r: RecordLoss) {
        let v = &mut self.record_loss;
        if v.pending.is_some_and(|(id, _)| id == r.id) {
            v.pending = None;
            v.detail = Some(r);
            return;
        }
        let Some(s) = v.sample.as_mut().filter(|s| s.id == r.id) else {
            return;
        };
        s.done = r.done;
        s.total = r.total;
        v.scores.insert(
            r.record,
            SampleScore {
                mean: r.mean,
                tokens: r.tokens,
                step: r.step,
            },
        );
        if v.sorted && r.done.is_multiple_of(RESORT_EVERY) {
            self.sort_by_loss(false);
        }
    }

    /// A score request ended.
    pub(super) fn on_score_done(
        &mut self,
        id: u64,
        total: usize,
        cancelled: bool,
        note: Option<String>,
    ) {
        let v = &mut self.record_loss;
        if v.pending.is_some_and(|(p, _)| p == id) {
            v.pending = None;
            if let Some(n) = note {
                self.message = Some(n);
            }
            return;
        }
        let Some(s) = v.sample.as_mut().filter(|s| s.id == id) else {
            return;
        };
        s.running = false;
        s.cancelled = cancelled;
        s.total = total;
        s.note = note.clone();
        let done = s.done;
        self.message = Some(match (cancelled, note) {
            (true, _) => format!("loss sample cancelled: {done} of {total} records scored"),
            (false, Some(n)) => format!("loss sample: {n}"),
            (false, None) => format!(
                "loss sample: {done} records scored; `{}` sorts the list by loss",
                self.keymap.describe(super::Action::SortNext)
            ),
        });
        if self.record_loss.sorted {
            self.sort_by_loss(false);
        }
    }

    /// `score_sample`: starts scoring a sample of the shown records, or
    /// cancels the one running.
    pub(super) fn toggle_sample(&mut self) -> Vec<Effect> {
        if self.record_loss.sample.as_ref().is_some_and(|s| s.running) {
            self.message = Some("cancelling the loss sample…".into());
            return vec![Effect::Send(Command::CancelScore)];
        }
        if !self.can_score() {
            self.message = Some(if self.dataset.is_empty() {
                "no records to score".into()
            } else {
                "nothing to score with: no trainer and no checkpoint".into()
            });
            return Vec::new();
        }
        let records = spread(&self.browser.visible, SAMPLE_SIZE);
        let v = &mut self.record_loss;
        let id = v.new_id();
        v.scores.clear();
        v.sample = Some(SampleProgress {
            id,
            total: records.len(),
            running: true,
            ..Default::default()
        });
        self.message = Some(format!(
            "scoring {} records by loss (again to cancel)…",
            records.len()
        ));
        vec![Effect::Send(Command::Score(ScoreRequest {
            id,
            records,
            detail: false,
        }))]
    }

    /// `sort` in the browser: the list by sample loss, hardest first (the
    /// top selected), or back in dataset order.
    pub(super) fn toggle_sort(&mut self) {
        if self.record_loss.sorted {
            self.record_loss.sorted = false;
            self.browser.visible.sort_unstable();
            self.select(0);
            self.message = Some("records in dataset order".into());
            return;
        }
        if self.record_loss.scores.is_empty() {
            self.message = Some(format!(
                "no loss scores yet: `{}` scores a sample of records first",
                self.keymap.describe(super::Action::ScoreSample)
            ));
            return;
        }
        self.record_loss.sorted = true;
        self.sort_by_loss(true);
        self.message = Some("records sorted by loss, hardest first".into());
    }

    /// Re-sorts the shown records by sample loss (scored first, highest
    /// first; unscored after, in dataset order). `to_top`: select the first;
    /// otherwise the selected record stays selected.
    pub(super) fn sort_by_loss(&mut self, to_top: bool) {
        let keep = self.browser.visible.get(self.browser.selected).copied();
        let scores = &self.record_loss.scores;
        let key = |i: &usize| match scores.get(i) {
            Some(s) if s.mean.is_finite() => (0, -s.mean, *i),
            Some(_) => (0, f32::NEG_INFINITY, *i),
            None => (1, 0.0, *i),
        };
        self.browser.visible.sort_by(|a, b| {
            key(a)
                .partial_cmp(&key(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let row = if to_top {
            0
        } else {
            keep.and_then(|k| self.browser.visible.iter().position(|&i| i == k))
                .unwrap_or(0)
        };
        if to_top || keep != self.browser.visible.get(row).copied() {
            self.select(row);
        } else {
            self.browser.selected = row;
        }
    }
}

/// At most `n` items of `list`, spread evenly over it (all when it is short).
pub fn spread(list: &[usize], n: usize) -> Vec<usize> {
    if list.len() <= n {
        return list.to_vec();
    }
    (0..n).map(|k| list[k * list.len() / n]).collect()
}

/// The `k` highest-loss tokens of a record: (token index, loss), highest first.
pub fn hardest_tokens(r: &RecordLoss, k: usize) -> Vec<(usize, f32)> {
    let mut v: Vec<(usize, f32)> = r
        .losses
        .iter()
        .enumerate()
        .map(|(i, &l)| (i + 1, l))
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(k);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_evenly_and_all_of_a_short_list() {
        assert_eq!(spread(&[1, 2, 3], 5), vec![1, 2, 3]);
        let l: Vec<usize> = (0..100).collect();
        assert_eq!(spread(&l, 4), vec![0, 25, 50, 75]);
    }

    #[test]
    fn hardest_tokens_are_the_highest_losses_first() {
        let r = RecordLoss {
            id: 1,
            record: 0,
            step: 0,
            tokens: 4,
            mean: 1.0,
            pieces: vec!["a".into(); 5],
            losses: vec![0.5, 3.0, 1.0, 3.0],
            done: 1,
            total: 1,
            masked: None,
        };
        assert_eq!(hardest_tokens(&r, 3), vec![(2, 3.0), (4, 3.0), (3, 1.0)]);
    }
}
