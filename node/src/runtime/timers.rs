//! The actor's timers as deadlines, with the semantics the checker assumed (stateright.md §3):
//! setting a timer replaces its deadline, cancelling removes it, firing removes it before the
//! handler runs, and a restart starts with none.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use slotguard_model::Timer;
use tokio::time::Instant;

/// Armed timers and their deadlines.
#[derive(Default)]
pub(crate) struct Timers {
    deadlines: BTreeMap<Timer, Instant>,
}

/// A duration drawn uniformly from `range` (the randomness the protocol declares as a range).
fn draw(range: &Range<Duration>) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    if range.end <= range.start {
        return range.start;
    }
    let span = (range.end - range.start).as_micros().max(1) as u64;
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(span);
    range.start + Duration::from_micros(h.finish() % span)
}

impl Timers {
    /// Arms (or re-arms) `timer`.
    pub(crate) fn set(&mut self, timer: Timer, range: &Range<Duration>) {
        self.deadlines.insert(timer, Instant::now() + draw(range));
    }

    /// Disarms `timer`.
    pub(crate) fn cancel(&mut self, timer: &Timer) {
        self.deadlines.remove(timer);
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.values().min().copied()
    }

    /// Removes and returns the timers due at `now`, earliest first.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<Timer> {
        let mut due: Vec<(Instant, Timer)> = self
            .deadlines
            .iter()
            .filter(|(_, &at)| at <= now)
            .map(|(t, &at)| (at, t.clone()))
            .collect();
        due.sort();
        for (_, t) in &due {
            self.deadlines.remove(t);
        }
        due.into_iter().map(|(_, t)| t).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn set_replaces_cancel_removes_fire_removes() {
        let mut t = Timers::default();
        let ms = |n| Duration::from_millis(n);
        t.set(Timer::Tick, &(ms(100)..ms(100)));
        t.set(Timer::Tick, &(ms(300)..ms(300)));
        t.set(Timer::ElectionDelay, &(ms(200)..ms(200)));
        tokio::time::advance(ms(150)).await;
        assert!(
            t.take_due(Instant::now()).is_empty(),
            "re-set replaced the deadline"
        );
        tokio::time::advance(ms(100)).await;
        assert_eq!(t.take_due(Instant::now()), vec![Timer::ElectionDelay]);
        assert!(t.take_due(Instant::now()).is_empty(), "firing removed it");
        t.cancel(&Timer::Tick);
        assert_eq!(t.next_deadline(), None);
    }
}
