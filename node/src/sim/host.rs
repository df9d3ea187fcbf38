//! One simulated node: the real [`Driver`] under a shell that carries its effects out the way
//! the tokio shell does (specs/protocol.md §10, runtime/shell.rs), on simulated time.
//!
//! What it keeps of the real shell: one input at a time; effects in queue order; a `Persist`
//! encoded as the real state file (state_file.rs) and awaited before the next effect, so the
//! node takes no input while its disk is busy (datagrams wait in the socket's buffer); a
//! restart decodes the last *durable* file, with one more incarnation. What it adds: the disk
//! takes time, a crash drops what the shell had not finished (and the save in flight, or lets
//! it land), and a pause freezes the node. With a [`Breakage`] it misbehaves on purpose.
//!
//! Steps reach the checks only once the world has seen them (driver/stepped.rs): when an
//! effect of theirs or of a later step is carried out (a datagram sent, a save durable), or
//! when every effect queued before has been. A step whose effects a crash dropped never
//! happened, as in the model, where a step and its save are one.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slotguard_protocol::{Durability, Layout, NodeId, Timing};

use super::plan::{Breakage, Micros};
use super::rng::Rng;
use crate::driver::{Driver, Effect, Now, Setup, Stepped};
use crate::identity::NodeName;
use crate::state_file;
use crate::wire::{self, BusKey};

/// The shared key of every simulated cluster.
pub(crate) const KEY: &[u8] = b"slotguard-simulation-key-0123456789";

/// The clock every node reads: simulated microseconds from a fixed instant.
#[derive(Clone, Copy)]
pub(crate) struct Clock {
    base: Instant,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock {
            base: Instant::now(),
        }
    }

    pub(crate) fn now(self, t: Micros) -> Now {
        Now {
            at: self.base + Duration::from_micros(t),
            unix_ms: 1_700_000_000_000 + t / 1000,
        }
    }

    pub(crate) fn micros(self, at: Instant) -> Micros {
        at.saturating_duration_since(self.base).as_micros() as Micros
    }
}

/// What a node's shell did that the world acts on.
#[derive(Debug)]
pub(crate) enum Done {
    /// A datagram handed to the socket.
    Sent { to: usize, bytes: Vec<u8> },
    /// A write of the state file started; it is durable at `at` unless a crash comes first.
    Writing { at: Micros },
    /// A step the world has now seen; `start`: the start step of a life.
    Seen { step: Box<Stepped>, start: bool },
    /// The runtime broke one of its rules (specs/protocol.md §10).
    Broken(String),
}

/// A save the disk has not finished.
struct Saving {
    index: u64,
    bytes: Vec<u8>,
    /// The disk finished it while the node was paused.
    landed: bool,
}

/// The static facts of a node.
pub(crate) struct Spec {
    pub(crate) layout: Arc<Layout>,
    pub(crate) timing: Timing,
    pub(crate) breakage: Breakage,
    pub(crate) clock: Clock,
    /// Drivers record traces (specs/protocol.md §12).
    pub(crate) trace: bool,
}

/// A node and its disk.
pub(crate) struct Host {
    id: usize,
    spec: Arc<Spec>,
    key: BusKey,
    names: Rng,
    driver: Option<Driver>,
    /// Effects taken from the driver and not yet carried out, with their index.
    queue: VecDeque<(u64, Effect)>,
    saving: Option<Saving>,
    /// Datagrams that arrived while the node was busy or paused.
    inbox: VecDeque<Vec<u8>>,
    paused: bool,
    /// The state file's bytes as last made durable.
    durable: Option<Vec<u8>>,
    /// Steps not yet seen by the world; whether the first of them is a start.
    pending: VecDeque<Stepped>,
    start_pending: bool,
    /// Counts crashes, so that a disk completion of an earlier life is ignored.
    pub(crate) life: u64,
    /// The newest `(incarnation, sequence)` this life's driver admitted from each sender.
    admitted: BTreeMap<u16, (u32, u64)>,
    /// The node's trace file, as the shell writes it (empty unless traced).
    pub(crate) trace: Vec<u8>,
}

/// The most datagrams a busy node's socket holds (beyond: dropped, as by a full buffer).
const INBOX: usize = 512;

impl Host {
    pub(crate) fn new(id: usize, spec: Arc<Spec>, seed: u64) -> Host {
        Host {
            id,
            key: BusKey::new(KEY, &spec.layout),
            spec,
            names: Rng::new(seed, 100 + id as u64),
            driver: None,
            queue: VecDeque::new(),
            saving: None,
            inbox: VecDeque::new(),
            paused: false,
            durable: None,
            pending: VecDeque::new(),
            start_pending: false,
            life: 0,
            admitted: BTreeMap::new(),
            trace: Vec::new(),
        }
    }

    pub(crate) fn is_up(&self) -> bool {
        self.driver.is_some()
    }

    /// Whether a write of the state file is in flight.
    pub(crate) fn writing(&self) -> bool {
        self.saving.is_some()
    }

    pub(crate) fn driver(&self) -> Option<&Driver> {
        self.driver.as_ref()
    }

    /// Starts the node from its durable state file (or as created, if it has none).
    pub(crate) fn start(&mut self, t: Micros, done: &mut Vec<Done>) {
        let setup = match self.setup() {
            Ok(setup) => setup,
            Err(why) => return done.push(Done::Broken(why)),
        };
        let mut driver = Driver::start(setup, self.spec.clock.now(t));
        if self.spec.breakage.replay_filter {
            driver.break_replay_filter();
        }
        self.driver = Some(driver);
        self.start_pending = true;
        self.take_effects();
        self.pump(t, done);
    }

    /// What the runtime's `recover` makes of the state file (runtime/shell.rs).
    fn setup(&mut self) -> Result<Setup, String> {
        let layout = &Arc::clone(&self.spec.layout);
        let (name, peer_names, incarnation, stored) = match self.durable.clone() {
            None => (self.new_name(), Vec::new(), 0, None),
            Some(bytes) => {
                let c = state_file::decode(&bytes).map_err(|e| format!("state file: {e}"))?;
                let mine = (self.id as u16, wire::cluster_digest(layout));
                if c.writer.is_some_and(|w| w != mine) {
                    return Err(String::from("state file of another node or cluster"));
                }
                c.state
                    .fits(layout)
                    .map_err(|e| format!("state file: {e}"))?;
                let name = c.name.unwrap_or_else(|| self.new_name());
                (name, c.peers, c.incarnation + 1, Some(c.state))
            }
        };
        let addr = |j: usize| std::net::SocketAddr::from(([10, 0, 0, j as u8 + 1], 17_000));
        Ok(Setup {
            layout: Arc::clone(layout),
            timing: self.spec.timing,
            // No data plane here (specs/protocol.md §14.5): nothing is copied, so async.
            durability: Durability::Async,
            me: NodeId(self.id as u16),
            key: KEY.to_vec(),
            name,
            peer_names,
            incarnation,
            stored,
            addrs: (0..layout.len()).map(|j| Some(addr(j))).collect(),
            trace: self.spec.trace,
        })
    }

    fn new_name(&mut self) -> NodeName {
        let mut name = [0u8; crate::identity::NAME_LEN];
        for chunk in name.chunks_mut(8) {
            let bytes = self.names.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        NodeName(name)
    }

    /// The process dies. A save in flight lands on disk if `land`, else it is lost.
    pub(crate) fn crash(&mut self, land: bool, done: &mut Vec<Done>) {
        if let Some(saving) = self.saving.take() {
            if land || saving.landed {
                self.durable = Some(saving.bytes);
                // The step saved (its messages were lost with the process): it happened.
                self.see_through(saving.index, done);
            }
        }
        self.driver = None;
        self.queue.clear();
        self.inbox.clear();
        self.pending.clear();
        self.paused = false;
        self.admitted.clear();
        self.life += 1;
    }

    /// A datagram reaches the node's socket.
    pub(crate) fn deliver(&mut self, t: Micros, bytes: Vec<u8>, done: &mut Vec<Done>) {
        if !self.is_up() {
            return;
        }
        if self.busy() {
            if self.inbox.len() < INBOX {
                self.inbox.push_back(bytes);
            }
            return;
        }
        self.input(t, &bytes, done);
        self.pump(t, done);
    }

    /// When the node's next timer is due for the shell (late, if broken so), if it is free.
    pub(crate) fn next_timer(&self) -> Option<Micros> {
        if self.busy() {
            return None;
        }
        let deadline = self.driver.as_ref()?.poll_timeout()?;
        let late = self.spec.breakage.late_timers.as_micros() as Micros;
        Some(self.spec.clock.micros(deadline) + late)
    }

    /// Fires the timers due at `t`.
    pub(crate) fn fire_timers(&mut self, t: Micros, done: &mut Vec<Done>) {
        let now = self.spec.clock.now(t);
        let Some(d) = &mut self.driver else { return };
        d.handle_timeout(now);
        self.take_effects();
        self.pump(t, done);
    }

    /// The disk finished the write in flight.
    pub(crate) fn disk_done(&mut self, t: Micros, done: &mut Vec<Done>) {
        if let Some(saving) = &mut self.saving {
            saving.landed = true;
        }
        self.pump(t, done);
    }

    pub(crate) fn pause(&mut self) {
        self.paused = self.is_up();
    }

    pub(crate) fn resume(&mut self, t: Micros, done: &mut Vec<Done>) {
        self.paused = false;
        self.pump(t, done);
    }

    /// Whether the shell cannot take an input now.
    fn busy(&self) -> bool {
        self.paused || self.saving.is_some() || !self.queue.is_empty()
    }

    /// Runs one datagram through the driver, checking its replay filter's verdict.
    fn input(&mut self, t: Micros, bytes: &[u8], done: &mut Vec<Done>) {
        let now = self.spec.clock.now(t);
        let Some(d) = &mut self.driver else { return };
        let accepted = |d: &Driver| d.counters().get("datagrams_accepted").copied();
        let before = accepted(d);
        d.handle_datagram(bytes, now);
        if accepted(d) != before {
            self.check_fresh(bytes, done);
        }
        self.take_effects();
    }

    /// §10: an admitted datagram is newer than every other admitted from its sender.
    fn check_fresh(&mut self, bytes: &[u8], done: &mut Vec<Done>) {
        let Ok(d) = wire::open(&self.key, self.id as u16, bytes) else {
            return done.push(Done::Broken(format!(
                "n{} admitted a datagram that does not open",
                self.id
            )));
        };
        let stamp = (d.incarnation, d.sequence);
        let last = self.admitted.insert(d.sender, stamp);
        if last.is_some_and(|last| stamp <= last) {
            done.push(Done::Broken(format!(
                "n{} admitted datagram {stamp:?} from n{} after {last:?}: §10's replay filter admits each datagram once, newest only",
                self.id, d.sender
            )));
        }
    }

    /// Moves the driver's new effects and steps into the shell's queue.
    fn take_effects(&mut self) {
        let Some(d) = &mut self.driver else { return };
        // The shell writes the input's records before it carries out its effects.
        self.trace.extend(d.take_trace());
        let mut new = Vec::new();
        while let Some(e) = d.poll_effect() {
            new.push((d.effects_polled() - 1, e));
        }
        if self.spec.breakage.send_before_save {
            // Broken on purpose: the input's datagrams leave before its saves are written.
            new.sort_by_key(|(_, e)| !matches!(e, Effect::Transmit(_)));
        }
        self.queue.extend(new);
        self.pending.extend(d.take_steps());
    }

    /// Carries out effects until the queue is empty or a write is in flight, then takes the
    /// inputs that waited.
    fn pump(&mut self, t: Micros, done: &mut Vec<Done>) {
        loop {
            if self.paused || !self.is_up() {
                return;
            }
            if let Some(saving) = &self.saving {
                if !saving.landed {
                    return;
                }
                self.finish_save(done);
            }
            if let Some((index, effect)) = self.queue.pop_front() {
                self.carry_out(t, index, effect, done);
                continue;
            }
            self.see_all(done);
            if let Some(d) = &mut self.driver {
                self.trace.extend(d.take_trace());
            }
            let Some(bytes) = self.inbox.pop_front() else {
                return;
            };
            self.input(t, &bytes, done);
        }
    }

    fn finish_save(&mut self, done: &mut Vec<Done>) {
        let Some(saving) = self.saving.take() else {
            return;
        };
        self.durable = Some(saving.bytes);
        if let Some(d) = &mut self.driver {
            d.on_persisted();
        }
        self.see_through(saving.index, done);
    }

    fn carry_out(&mut self, t: Micros, index: u64, effect: Effect, done: &mut Vec<Done>) {
        let now = self.spec.clock.now(t);
        match effect {
            Effect::Log(_) => {}
            Effect::Transmit(tx) => {
                if let Some(d) = &mut self.driver {
                    d.on_transmitted(&tx, true, now);
                }
                self.see_through(index, done);
                let to = tx.to.index();
                done.push(Done::Sent {
                    to,
                    bytes: tx.bytes,
                });
            }
            Effect::Persist(save) => {
                let owner = (self.id as u16, wire::cluster_digest(&self.spec.layout));
                let encoded = state_file::encode(
                    &save.name,
                    &save.peers,
                    owner,
                    save.incarnation,
                    &save.state,
                );
                match encoded {
                    Ok(bytes) => {
                        self.saving = Some(Saving {
                            index,
                            bytes,
                            landed: false,
                        });
                        done.push(Done::Writing { at: t });
                    }
                    Err(e) => done.push(Done::Broken(format!("cannot encode a save: {e}"))),
                }
            }
        }
    }

    /// The world has seen effect `index`: every step whose effects begin at or before it
    /// happened.
    fn see_through(&mut self, index: u64, done: &mut Vec<Done>) {
        while self
            .pending
            .front()
            .is_some_and(|s| s.first_effect <= index)
        {
            self.see_next(done);
        }
    }

    /// Every effect queued so far is carried out: every step happened.
    fn see_all(&mut self, done: &mut Vec<Done>) {
        while !self.pending.is_empty() {
            self.see_next(done);
        }
    }

    fn see_next(&mut self, done: &mut Vec<Done>) {
        if let Some(step) = self.pending.pop_front() {
            let start = std::mem::take(&mut self.start_pending);
            done.push(Done::Seen {
                step: Box::new(step),
                start,
            });
        }
    }
}
