//! How often training progress reaches the panes. While the user works
//! (a key or a click in the last [`INTERACTIVE`]) every progress event is
//! folded in at the next redraw; when nobody has touched the workbench for
//! longer, the loss chart, its figures, the attention map and the record
//! colours take in new steps, evaluations and probes only every
//! [`IDLE_REFRESH`], and in between only the status bar's step, tokens/s and
//! ETA move. An idle workbench over SSH then rewrites a few status cells a
//! second instead of its charts (issue 11: about 1 kB/s). Any key or click
//! folds everything held in at once, and so does any other event (pause,
//! checkpoint, a generated token), so the state is never out of order.

use super::App;
use crate::train::Event;
use std::time::{Duration, Instant};

/// After the last key or click, progress is shown live for this long.
pub const INTERACTIVE: Duration = Duration::from_secs(10);
/// While idle, held progress is folded in this often.
pub const IDLE_REFRESH: Duration = Duration::from_secs(5);

/// Progress events held back from the panes while the workbench is idle.
#[derive(Debug)]
pub struct Pacer {
    held: Vec<Event>,
    last_input: Instant,
    last_fold: Option<Instant>,
}

/// Steps, evaluations and attention probes: what an idle workbench holds.
pub fn is_progress(ev: &Event) -> bool {
    matches!(
        ev,
        Event::Step(_) | Event::Eval(_) | Event::Attention(_) | Event::Induction(_)
    )
}

impl Pacer {
    /// A pacer whose user just arrived (live for the first [`INTERACTIVE`]).
    pub fn new(now: Instant) -> Pacer {
        Pacer {
            held: Vec::new(),
            last_input: now,
            last_fold: None,
        }
    }

    /// Nobody touched the workbench for [`INTERACTIVE`].
    pub fn idle(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_input) >= INTERACTIVE
    }

    /// Events are held.
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Takes one trainer event: a progress event is held (a step updates the
    /// status bar's figures at once, [`App::note_step`]); any other event
    /// folds what is held first, then itself. Returns whether the screen
    /// changed now.
    pub fn event(&mut self, app: &mut App, ev: Event) -> bool {
        if is_progress(&ev) {
            let status = match &ev {
                Event::Step(s) => {
                    app.note_step(s);
                    true
                }
                _ => false,
            };
            self.held.push(ev);
            return status;
        }
        self.fold(app);
        app.update_event(ev);
        true
    }

    /// A key or a click: everything held is folded in (the key's redraw
    /// shows the newest data) and the workbench is live again.
    pub fn input(&mut self, app: &mut App, now: Instant) {
        self.last_input = now;
        self.fold(app);
        self.last_fold = Some(now);
    }

    /// Whether held events should be folded in now: at a redraw while the
    /// user is about, or every [`IDLE_REFRESH`] while idle (and at once the
    /// first time).
    pub fn due(&self, now: Instant, drawing: bool) -> bool {
        if self.held.is_empty() {
            return false;
        }
        match self.last_fold {
            None => true,
            Some(t) if now.saturating_duration_since(t) >= IDLE_REFRESH => true,
            Some(_) => drawing && !self.idle(now),
        }
    }

    /// Folds the held events into the app, in order; true when there were any.
    pub fn fold_at(&mut self, app: &mut App, now: Instant) -> bool {
        self.last_fold = Some(now);
        let any = !self.held.is_empty();
        self.fold(app);
        any
    }

    fn fold(&mut self, app: &mut App) {
        for ev in self.held.drain(..) {
            app.update_event(ev);
        }
    }

    /// When the next idle fold is due (None: nothing held).
    pub fn next_fold(&self) -> Option<Instant> {
        (!self.held.is_empty()).then(|| {
            self.last_fold
                .map_or_else(Instant::now, |t| t + IDLE_REFRESH)
        })
    }
}
