//! How often viewers get the trainer's periodic attention probes. A probe is
//! every layer's and head's full matrix (2 x 4 x 64 x 64 floats on the copy
//! sample, about 270 kB of JSON) and the trainer makes one every
//! `train.attention_interval` steps, several a second on a small model: that
//! was nearly all of a viewer's socket traffic, for a heatmap a person looks
//! at a few times a minute. Viewers get the newest periodic probe at most
//! every [`PROBE_PACE`] (with its induction scores); a probe a viewer asked
//! for (`p`, a new probe text) goes at once. The local consumer and
//! `metrics.jsonl` are not affected, and a new viewer's snapshot always has
//! a probe at most [`PROBE_PACE`] old.

use super::server::Delivery;
use crate::train::Event;
use std::time::{Duration, Instant};

/// At most one periodic probe per viewer this often.
pub const PROBE_PACE: Duration = Duration::from_secs(2);
/// A probe within this long after a viewer's `Command::Probe` is its answer.
pub const ASKED_WINDOW: Duration = Duration::from_secs(5);

/// Decides, event by event, what the socket's fan-out does with it.
#[derive(Debug, Default)]
pub struct ProbePace {
    last_sent: Option<Instant>,
    sent_step: Option<usize>,
    sent_tokens: Vec<String>,
    /// The newest probe not sent yet, and its induction scores.
    held: Vec<Event>,
    held_step: Option<usize>,
    asked: Option<Instant>,
}

impl ProbePace {
    /// A viewer asked for a probe (`Command::Probe`) at `now`.
    pub fn asked(&mut self, now: Instant) {
        self.asked = Some(now);
    }

    /// What to publish for `ev` arriving at `now`, in order.
    pub fn take(&mut self, ev: Event, now: Instant) -> Vec<(Event, Delivery)> {
        match ev {
            Event::Attention(m) => {
                let asked = self
                    .asked
                    .is_some_and(|t| now.saturating_duration_since(t) < ASKED_WINDOW);
                let due = self
                    .last_sent
                    .is_none_or(|t| now.saturating_duration_since(t) >= PROBE_PACE);
                // A held older probe is replaced: only the snapshot keeps it.
                let mut out = self.drop_held();
                if asked || due || m.tokens != self.sent_tokens {
                    self.asked = None;
                    self.mark_sent(m.step, &m.tokens, now);
                    out.push((Event::Attention(m), Delivery::All));
                } else {
                    self.held_step = Some(m.step);
                    self.held.push(Event::Attention(m));
                }
                out
            }
            Event::Induction(s) if self.held_step == Some(s.step) => {
                self.held.push(Event::Induction(s));
                Vec::new()
            }
            Event::Induction(s) if self.sent_step != Some(s.step) => {
                // Its probe was never sent: viewers would find no map for it.
                vec![(Event::Induction(s), Delivery::SnapshotOnly)]
            }
            ev => vec![(ev, Delivery::All)],
        }
    }

    /// The held probe once [`PROBE_PACE`] has passed since the last one sent.
    pub fn due(&mut self, now: Instant) -> Vec<(Event, Delivery)> {
        let due = self
            .last_sent
            .is_none_or(|t| now.saturating_duration_since(t) >= PROBE_PACE);
        if self.held.is_empty() || !due {
            return Vec::new();
        }
        self.flush(now)
    }

    /// Everything held, sent now (the trainer ended).
    pub fn flush(&mut self, now: Instant) -> Vec<(Event, Delivery)> {
        if let Some(Event::Attention(m)) = self.held.first() {
            let (step, tokens) = (m.step, m.tokens.clone());
            self.mark_sent(step, &tokens, now);
        }
        self.held_step = None;
        self.held.drain(..).map(|e| (e, Delivery::All)).collect()
    }

    /// When the held probe is due (None: nothing held).
    pub fn next_due(&self) -> Option<Instant> {
        (!self.held.is_empty())
            .then(|| self.last_sent.map_or_else(Instant::now, |t| t + PROBE_PACE))
    }

    fn drop_held(&mut self) -> Vec<(Event, Delivery)> {
        self.held_step = None;
        self.held
            .drain(..)
            .map(|e| (e, Delivery::SnapshotOnly))
            .collect()
    }

    fn mark_sent(&mut self, step: usize, tokens: &[String], now: Instant) {
        self.last_sent = Some(now);
        self.sent_step = Some(step);
        if self.sent_tokens != tokens {
            self.sent_tokens = tokens.to_vec();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{AttentionMap, InductionScores};

    fn probe(step: usize, text: &str) -> Event {
        Event::Attention(AttentionMap {
            step,
            tokens: text.chars().map(String::from).collect(),
            n_layer: 1,
            n_head: 1,
            probs: vec![vec![vec![1.0; text.len() * text.len()]]],
            causal: true,
        })
    }

    fn induction(step: usize) -> Event {
        Event::Induction(InductionScores {
            step,
            half: 4,
            n_layer: 1,
            n_head: 1,
            scores: vec![0.5],
        })
    }

    fn sent(out: &[(Event, Delivery)]) -> Vec<(&'static str, usize)> {
        out.iter()
            .filter(|(_, d)| *d == Delivery::All)
            .map(|(e, _)| match e {
                Event::Attention(m) => ("probe", m.step),
                Event::Induction(s) => ("induction", s.step),
                _ => ("other", 0),
            })
            .collect()
    }

    #[test]
    fn periodic_probes_go_at_most_every_pace_with_their_induction_scores() {
        let t0 = Instant::now();
        let mut p = ProbePace::default();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        assert_eq!(sent(&p.take(probe(25, "abc"), ms(0))), [("probe", 25)]);
        assert_eq!(sent(&p.take(induction(25), ms(10))), [("induction", 25)]);
        // Three more within the pace: held, each replacing the last.
        for (i, step) in [50, 75, 100].into_iter().enumerate() {
            let out = p.take(probe(step, "abc"), ms(500 + 400 * i as u64));
            assert!(sent(&out).is_empty(), "{step}");
            assert!(sent(&p.take(induction(step), ms(510 + 400 * i as u64))).is_empty());
        }
        assert!(p.due(ms(1_900)).is_empty());
        // The replaced ones went to the snapshot only.
        let out = p.due(ms(2_000));
        assert_eq!(sent(&out), [("probe", 100), ("induction", 100)]);
        assert!(p.next_due().is_none());
        // Other events are never held.
        assert_eq!(
            sent(&p.take(
                Event::Paused {
                    step: 100,
                    reason: None
                },
                ms(2_001)
            )),
            [("other", 0)]
        );
    }

    #[test]
    fn an_asked_for_probe_or_new_text_goes_at_once() {
        let t0 = Instant::now();
        let mut p = ProbePace::default();
        p.take(probe(25, "abc"), t0);
        let t1 = t0 + Duration::from_millis(300);
        assert_eq!(sent(&p.take(probe(30, "xyz"), t1)), [("probe", 30)]);
        let t2 = t1 + Duration::from_millis(300);
        assert!(sent(&p.take(probe(50, "xyz"), t2)).is_empty());
        p.asked(t2);
        let t3 = t2 + Duration::from_millis(300);
        // The asked-for probe replaces the held one.
        let out = p.take(probe(52, "xyz"), t3);
        assert_eq!(sent(&out), [("probe", 52)]);
        assert!(out.iter().any(|(e, d)| *d == Delivery::SnapshotOnly
            && matches!(e, Event::Attention(m) if m.step == 50)));
        // An induction whose probe was replaced is not sent.
        assert!(sent(&p.take(induction(50), t3)).is_empty());
        assert_eq!(sent(&p.take(induction(52), t3)), [("induction", 52)]);
    }
}
