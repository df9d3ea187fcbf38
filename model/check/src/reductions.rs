//! The checker's reductions, as one value: which of them a model applies.
//!
//! Each reduction is exact: with it or without it, a search reaches the same node states and
//! history, up to what the reduction merges, with the same verdicts (specs/protocol.md §8.4,
//! §8.6–§8.10). Two kinds:
//!
//! - **rules** change which states the search explores (a canonical network, FAIL-undo fired
//!   at once, settled grants forgotten, crash-restart as one step, crashes that change nothing
//!   and crash twins not explored, PING twins not offered). `--exact` turns every rule off, to
//!   cross-check them: that is [`Reductions::exact`];
//! - **caches** only save work, and every state's successors stay the same (no-op deliveries
//!   and canonical inboxes remembered, exact repeats refused before the look-up, continuations
//!   memoised). `--exact` leaves them on.
//!
//! The comparison tests (`model/check/tests/`) switch one reduction off at a time through
//! [`Reductions::without`] and compare the two searches. Symmetry is not among them: it is an
//! option of the run that counts states up to renaming (`check/symmetry.rs`, §8.5), and it
//! applies only where the layout has interchangeable shards or replicas.

/// One of the checker's reductions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reduction {
    /// Keep each message in flight in its canonical form for its receiver, and drop the ones
    /// that can no longer change it (`residual.rs`, specs/protocol.md §8.4). Off: every message
    /// stays exactly as sent.
    CanonicalNetwork,
    /// Fire a node's FAIL-undo timer in the step that arms it, instead of at any later moment
    /// (specs/protocol.md §8.6). Exact only on a network that never loses a PING without its
    /// PONG: the model ignores it when lossy.
    UrgentFailUndo,
    /// Forget the vote grants, and the candidates of vote grants, that can no longer take part
    /// in a violation (specs/protocol.md §8.7).
    ForgetSettledGrants,
    /// A crash is followed at once by the restart: no state has a node down
    /// (specs/protocol.md §8.8).
    AtomicRestart,
    /// With [`Reduction::AtomicRestart`]: a crash-restart that leaves the state as it was, but
    /// for the count of crashes, has no successor (specs/protocol.md §8.8).
    SkipNoopCrashes,
    /// Do not explore a state when a state equal to it but for the count of crashes, with fewer
    /// crashes spent, is explored (`crash_twins.rs`, specs/protocol.md §8.10).
    SkipCrashTwins,
    /// Do not offer a PING whose PONG twin is in flight when delivering either reaches the same
    /// state (specs/protocol.md §8.9).
    SkipPingTwins,
    /// Do not run again a delivery already found to change nothing, and reuse canonical inboxes
    /// (`noop_cache.rs`, `network.rs: RewriteMemo`; specs/protocol.md §8.9). A cache.
    SkipKnownNoops,
    /// Refuse, before the look-up, a generated state that repeats one generated shortly before
    /// (`repeats.rs`, specs/protocol.md §8.9). A cache.
    SkipRepeats,
    /// Reuse the outcomes of convergence continuations already run (`settle_memo.rs`,
    /// specs/protocol.md §8.9). A cache.
    MemoiseSettle,
}

impl Reduction {
    /// Every reduction, in the order reports name them.
    pub const ALL: [Reduction; 10] = [
        Reduction::CanonicalNetwork,
        Reduction::UrgentFailUndo,
        Reduction::ForgetSettledGrants,
        Reduction::AtomicRestart,
        Reduction::SkipNoopCrashes,
        Reduction::SkipCrashTwins,
        Reduction::SkipPingTwins,
        Reduction::SkipKnownNoops,
        Reduction::SkipRepeats,
        Reduction::MemoiseSettle,
    ];

    /// Whether it is a cache of results (successors stay the same) rather than a rule that
    /// changes which states are explored; `--exact` turns rules off and leaves caches on.
    pub fn is_cache(self) -> bool {
        matches!(
            self,
            Reduction::SkipKnownNoops | Reduction::SkipRepeats | Reduction::MemoiseSettle
        )
    }

    /// Its name in reports (`exact reductions: …`).
    pub fn name(self) -> &'static str {
        match self {
            Reduction::CanonicalNetwork => "canonical-network",
            Reduction::UrgentFailUndo => "urgent-fail-undo",
            Reduction::ForgetSettledGrants => "settled-grants",
            Reduction::AtomicRestart => "atomic-restart",
            Reduction::SkipNoopCrashes => "no-op-crashes",
            Reduction::SkipCrashTwins => "crash-twins",
            Reduction::SkipPingTwins => "ping-twins",
            Reduction::SkipKnownNoops => "known-noops",
            Reduction::SkipRepeats => "repeats",
            Reduction::MemoiseSettle => "settle-memo",
        }
    }

    fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// A set of reductions: the ones a model applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reductions {
    on: u16,
}

impl Reductions {
    /// Every reduction: what `slotguard check` uses by default.
    pub fn all() -> Reductions {
        Reductions::none().with_all(Reduction::ALL)
    }

    /// No reduction at all, caches included.
    pub fn none() -> Reductions {
        Reductions { on: 0 }
    }

    /// What `--exact` explores: every rule off, the caches (which change no successor) on.
    pub fn exact() -> Reductions {
        Reductions::none().with_all(Reduction::ALL.into_iter().filter(|r| r.is_cache()))
    }

    /// What `--exact-network` explores: every reduction but the canonical network.
    pub fn exact_network() -> Reductions {
        Reductions::all().without(Reduction::CanonicalNetwork)
    }

    /// Whether `reduction` is on.
    #[inline]
    pub fn has(self, reduction: Reduction) -> bool {
        self.on & reduction.bit() != 0
    }

    /// These reductions and `reduction`.
    pub fn with(self, reduction: Reduction) -> Reductions {
        Reductions {
            on: self.on | reduction.bit(),
        }
    }

    /// These reductions but `reduction`.
    pub fn without(self, reduction: Reduction) -> Reductions {
        Reductions {
            on: self.on & !reduction.bit(),
        }
    }

    /// These reductions with `reduction` switched on or off.
    pub fn set(self, reduction: Reduction, on: bool) -> Reductions {
        match on {
            true => self.with(reduction),
            false => self.without(reduction),
        }
    }

    /// The reductions that are on, in the order of [`Reduction::ALL`].
    pub fn iter(self) -> impl Iterator<Item = Reduction> {
        Reduction::ALL.into_iter().filter(move |r| self.has(*r))
    }

    fn with_all(self, reductions: impl IntoIterator<Item = Reduction>) -> Reductions {
        reductions.into_iter().fold(self, Reductions::with)
    }
}

impl Default for Reductions {
    fn default() -> Reductions {
        Reductions::all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_keeps_only_the_caches() {
        let exact = Reductions::exact();
        for r in Reduction::ALL {
            assert_eq!(exact.has(r), r.is_cache(), "{r:?}");
            assert!(Reductions::all().has(r));
            assert!(!Reductions::none().has(r));
            assert!(!Reductions::all().without(r).has(r));
            assert!(Reductions::none().with(r).iter().eq([r]));
        }
        assert!(!Reductions::exact_network().has(Reduction::CanonicalNetwork));
        assert_eq!(Reductions::all().iter().count(), Reduction::ALL.len());
    }
}
