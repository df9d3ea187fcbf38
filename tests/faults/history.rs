//! What a recorded history shows: acknowledged writes lost, writes refused, the longest time
//! the affected slots took no write, and whether each key's history is linearizable, checked
//! with stateright's own `LinearizabilityTester` over a `Register`.
//!
//! Why per key: a register per key is what a key-value store promises, and linearizability is
//! compositional (a history is linearizable iff each object's is), so checking keys one by one
//! is exact and keeps each search small. An operation of unknown outcome is invoked and never
//! returns: the tester may place it anywhere after its invocation, or leave it out.

use std::collections::BTreeMap;

use stateright::semantics::register::{Register, RegisterOp, RegisterRet};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester};

use super::workload::{by_key, Op, Outcome, FINAL};

/// The figures of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Writes acknowledged.
    pub(crate) acknowledged: usize,
    /// Acknowledged writes whose key did not read back with their value at the end.
    pub(crate) lost: usize,
    /// Of those, writes to the affected slots.
    pub(crate) lost_affected: usize,
    /// Writes surely refused (error reply or no connection).
    pub(crate) refused: usize,
    /// Writes of unknown outcome.
    pub(crate) unknown: usize,
    /// Of the unknown writes, those that read back at the end (they did take effect).
    pub(crate) unknown_applied: usize,
    /// Reads that completed (the final read-back excluded).
    pub(crate) reads: usize,
    /// Keys not read back at the end.
    pub(crate) unread: usize,
    /// The longest interval without an acknowledged write to the affected slots, from the
    /// fault's start to the load's end, µs.
    pub(crate) unavailable_us: u64,
    /// Writes to the affected slots acknowledged after the fault ended.
    pub(crate) acknowledged_after_fault: usize,
    /// Keys checked for linearizability.
    pub(crate) keys: usize,
    /// Keys whose history is not linearizable.
    pub(crate) non_linearizable: usize,
    /// The shortest non-linearizable key history, rendered, if any.
    pub(crate) shortest_anomaly: Option<String>,
}

/// Computes the figures of `ops` (the workers' operations and the final read-back), where
/// `affected(key)` says whether a key is in the faulted master's slots and `window` is the
/// fault's start, the fault's end and the load's end (µs).
pub(crate) fn summarize(
    ops: &[Op],
    affected: impl Fn(u64) -> bool,
    window: (u64, u64, u64),
    unread: usize,
) -> Result<Summary, String> {
    let mut s = Summary {
        unread,
        ..Summary::default()
    };
    let finals: BTreeMap<u64, u64> = ops
        .iter()
        .filter(|o| o.process == FINAL)
        .filter_map(|o| match o.outcome {
            Outcome::Ok { read, .. } => Some((o.key, read)),
            _ => None,
        })
        .collect();
    let mut acks = Vec::new();
    for o in ops.iter().filter(|o| o.process != FINAL) {
        match (o.write, o.outcome) {
            (true, Outcome::Ok { at_us, .. }) => {
                s.acknowledged += 1;
                if finals.get(&o.key) != Some(&o.key) && finals.contains_key(&o.key) {
                    s.lost += 1;
                    s.lost_affected += usize::from(affected(o.key));
                }
                if affected(o.key) {
                    acks.push(at_us);
                }
            }
            (true, Outcome::Fail) => s.refused += 1,
            (true, Outcome::Unknown) => {
                s.unknown += 1;
                s.unknown_applied += usize::from(finals.get(&o.key) == Some(&o.key));
            }
            (false, Outcome::Ok { .. }) => s.reads += 1,
            (false, _) => {}
        }
    }
    s.acknowledged_after_fault = acks.iter().filter(|&&t| t > window.1).count();
    acks.retain(|&t| t >= window.0 && t <= window.2);
    acks.sort_unstable();
    let mut last = window.0;
    for t in acks.iter().copied().chain([window.2]) {
        s.unavailable_us = s.unavailable_us.max(t.saturating_sub(last));
        last = t;
    }
    for (key, history) in by_key(ops) {
        s.keys += 1;
        if !linearizable(&history)? {
            s.non_linearizable += 1;
            let text = render(key, &history);
            let shorter = s
                .shortest_anomaly
                .as_ref()
                .is_none_or(|old| old.lines().count() > text.lines().count());
            if shorter {
                s.shortest_anomaly = Some(text);
            }
        }
    }
    Ok(s)
}

/// Whether one key's history is linearizable as a register that starts absent (0).
pub(crate) fn linearizable(history: &[Op]) -> Result<bool, String> {
    // Events in real-time order: (time, is_return, op index). Returns sort after invocations
    // at the same instant, so that operations that touch in time count as concurrent.
    let mut events: Vec<(u64, bool, usize)> = Vec::new();
    for (i, o) in history.iter().enumerate() {
        match o.outcome {
            Outcome::Fail => {}
            // A read of unknown outcome changed nothing and returned nothing: not an event.
            Outcome::Unknown if !o.write => {}
            Outcome::Unknown => events.push((o.invoke_us, false, i)),
            Outcome::Ok { at_us, .. } => {
                events.push((o.invoke_us, false, i));
                events.push((at_us, true, i));
            }
        }
    }
    events.sort_unstable();
    let mut t: LinearizabilityTester<u64, Register<u64>> = LinearizabilityTester::new(Register(0));
    for (_, ret, i) in events {
        let o = history[i];
        if !ret {
            let op = if o.write {
                RegisterOp::Write(o.key)
            } else {
                RegisterOp::Read
            };
            t.on_invoke(o.process, op)?;
        } else {
            let r = match o.outcome {
                Outcome::Ok { read, .. } if !o.write => RegisterRet::ReadOk(read),
                _ => RegisterRet::WriteOk,
            };
            t.on_return(o.process, r)?;
        }
    }
    Ok(t.is_consistent())
}

/// A key's history as lines, for a report.
pub(crate) fn render(key: u64, history: &[Op]) -> String {
    let who = |p: u64| {
        if p == FINAL {
            "final read-back".to_string()
        } else {
            format!("worker {} (process {})", p >> 32, p & 0xffff_ffff)
        }
    };
    let secs = |us: u64| us as f64 / 1e6;
    history
        .iter()
        .filter(|o| o.outcome != Outcome::Fail)
        .map(|o| {
            let what = if o.write {
                format!("SET fk:{key} {key}")
            } else {
                format!("GET fk:{key}")
            };
            let result = match o.outcome {
                Outcome::Ok { at_us, read } if !o.write => format!(
                    "returned {} at {:.3} s",
                    if read == 0 {
                        "nil".to_string()
                    } else {
                        read.to_string()
                    },
                    secs(at_us)
                ),
                Outcome::Ok { at_us, .. } => format!("acknowledged at {:.3} s", secs(at_us)),
                _ => "no answer (unknown)".to_string(),
            };
            format!(
                "{:.3} s  {}: {what} -> {result}",
                secs(o.invoke_us),
                who(o.process)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
