//! The actor's timers as deadlines, with the semantics the checker assumed (specs/background.md
//! §S3): setting a timer replaces its deadline, cancelling removes it, firing removes it before the
//! handler runs, and a restart starts with none.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::{Duration, Instant};

use slotguard_protocol::Timer;

/// Armed timers and their deadlines.
#[derive(Default)]
pub(crate) struct Timers {
    deadlines: BTreeMap<Timer, Instant>,
}

/// A duration drawn uniformly from `range` (the randomness the protocol declares as a range),
/// with the operating system's CSPRNG: the jitter keeps nodes from acting in step (election
/// delays), so it must not be predictable or shared between processes. The modulo's bias is
/// below 2^-40 for any span under a year. Should the OS have no randomness to give, the middle
/// of the range is used.
fn draw(range: &Range<Duration>) -> Duration {
    if range.end <= range.start {
        return range.start;
    }
    let span = u64::try_from((range.end - range.start).as_micros())
        .unwrap_or(u64::MAX)
        .max(1);
    let offset = random_u64().map_or(span / 2, |r| r % span);
    range.start + Duration::from_micros(offset)
}

#[cfg(not(test))]
fn random_u64() -> Option<u64> {
    getrandom::u64().ok()
}

/// In test builds, a thread that is given a seed draws from it instead of the OS
/// ([`seed_draws`]): the deterministic simulation (sim/) must reproduce its timers' jitter.
#[cfg(test)]
fn random_u64() -> Option<u64> {
    SEEDED.with(|s| match &mut *s.borrow_mut() {
        Some(state) => Some(crate::sim::splitmix(state)),
        None => getrandom::u64().ok(),
    })
}

#[cfg(test)]
thread_local! {
    static SEEDED: std::cell::RefCell<Option<u64>> = const { std::cell::RefCell::new(None) };
}

/// Makes this thread's timer jitter come from `seed` (`None`: from the OS again).
#[cfg(test)]
pub(crate) fn seed_draws(seed: Option<u64>) {
    SEEDED.with(|s| *s.borrow_mut() = seed);
}

impl Timers {
    /// Arms (or re-arms) `timer`, counting from `now`.
    pub(crate) fn set(&mut self, timer: Timer, range: &Range<Duration>, now: Instant) {
        self.deadlines.insert(timer, now + draw(range));
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

    #[test]
    fn set_replaces_cancel_removes_fire_removes() {
        let mut t = Timers::default();
        let ms = |n| Duration::from_millis(n);
        let t0 = Instant::now();
        t.set(Timer::Tick, &(ms(100)..ms(100)), t0);
        t.set(Timer::Tick, &(ms(300)..ms(300)), t0);
        t.set(Timer::ElectionDelay, &(ms(200)..ms(200)), t0);
        assert!(
            t.take_due(t0 + ms(150)).is_empty(),
            "re-set replaced the deadline"
        );
        assert_eq!(t.take_due(t0 + ms(250)), vec![Timer::ElectionDelay]);
        assert!(t.take_due(t0 + ms(250)).is_empty(), "firing removed it");
        t.cancel(&Timer::Tick);
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn draws_stay_in_their_range_and_vary() {
        let ms = |n| Duration::from_millis(n);
        let range = ms(100)..ms(200);
        let draws: Vec<Duration> = (0..64).map(|_| draw(&range)).collect();
        assert!(draws.iter().all(|d| range.contains(d)), "{draws:?}");
        let distinct: std::collections::BTreeSet<_> = draws.iter().collect();
        assert!(distinct.len() > 32, "{distinct:?}");
        assert_eq!(draw(&(ms(5)..ms(5))), ms(5));
    }
}
