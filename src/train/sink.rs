//! The consumers of the trainer's events behind one small trait
//! ([`EventSink`], after burn-train's `MetricsRenderer`): `metrics.jsonl`
//! on the trainer's side, the headless printer and the workbench on the
//! receiving end of the channel. [`EventBus`] is what the trainer and its
//! worker threads send through: every sink sees each event, in order, then
//! the channel gets it.

use super::Event;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

/// A consumer of events.
pub trait EventSink: Send {
    /// Takes one event. `Err` carries a message for the people watching (the
    /// bus sends it on as an [`Event::Log`]); the sink decides how often it
    /// complains, and a failing sink never stops training.
    fn on_event(&mut self, event: &Event) -> Result<(), String>;
}

/// The trainer's outlet: its sinks, then the channel to the consumer.
/// Cheap to clone (worker threads hold one).
#[derive(Clone)]
pub struct EventBus {
    sinks: Arc<Mutex<Vec<Box<dyn EventSink>>>>,
    channel: Sender<Event>,
}

impl EventBus {
    /// A bus that sends to `channel` only.
    pub fn new(channel: Sender<Event>) -> Self {
        EventBus {
            sinks: Arc::new(Mutex::new(Vec::new())),
            channel,
        }
    }

    /// Adds a sink; it sees every event sent from now on, by every clone.
    pub fn add_sink(&self, sink: Box<dyn EventSink>) {
        self.lock().push(sink);
    }

    /// Hands `event` to every sink, then to the channel. Returns false when
    /// the receiving end has gone (the sinks still saw the event).
    pub fn send(&self, event: Event) -> bool {
        let warnings: Vec<String> = self
            .lock()
            .iter_mut()
            .filter_map(|s| s.on_event(&event).err())
            .collect();
        let delivered = self.channel.send(event).is_ok();
        for w in warnings {
            let _ = self.channel.send(Event::Log(w));
        }
        delivered
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Box<dyn EventSink>>> {
        // A sink that panicked leaves the list usable.
        self.sinks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Count(Arc<Mutex<Vec<String>>>, bool);
    impl EventSink for Count {
        fn on_event(&mut self, e: &Event) -> Result<(), String> {
            self.0.lock().unwrap().push(format!("{e:?}"));
            if self.1 {
                Err("sink trouble".into())
            } else {
                Ok(())
            }
        }
    }

    #[test]
    fn every_sink_sees_every_event_then_the_channel_gets_it() {
        let (tx, rx) = std::sync::mpsc::channel();
        let bus = EventBus::new(tx);
        let seen = Arc::new(Mutex::new(Vec::new()));
        bus.add_sink(Box::new(Count(seen.clone(), false)));
        let clone = bus.clone();
        assert!(bus.send(Event::Resumed { step: 1 }));
        std::thread::spawn(move || clone.send(Event::Stopped { step: 2 }))
            .join()
            .unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            ["Resumed { step: 1 }", "Stopped { step: 2 }"]
        );
        let got: Vec<Event> = rx.try_iter().collect();
        assert_eq!(
            got,
            [Event::Resumed { step: 1 }, Event::Stopped { step: 2 }]
        );
    }

    #[test]
    fn a_failing_sink_becomes_a_log_event_after_the_event() {
        let (tx, rx) = std::sync::mpsc::channel();
        let bus = EventBus::new(tx);
        bus.add_sink(Box::new(Count(Arc::default(), true)));
        bus.send(Event::Finished { step: 3 });
        let got: Vec<Event> = rx.try_iter().collect();
        assert_eq!(
            got,
            [
                Event::Finished { step: 3 },
                Event::Log("sink trouble".into())
            ]
        );
    }

    #[test]
    fn a_closed_channel_is_reported_and_sinks_still_see_the_event() {
        let (tx, rx) = std::sync::mpsc::channel();
        drop(rx);
        let bus = EventBus::new(tx);
        let seen = Arc::new(Mutex::new(Vec::new()));
        bus.add_sink(Box::new(Count(seen.clone(), false)));
        assert!(!bus.send(Event::Stopped { step: 4 }));
        assert_eq!(seen.lock().unwrap().len(), 1);
    }
}
