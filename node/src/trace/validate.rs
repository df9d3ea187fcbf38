//! `slotguard validate`: replays every node's trace through the model's actor and checks the
//! cluster's global states against the checker's always-properties (specs/protocol.md §12).
//!
//! In four passes, stopping at the first failure:
//!
//! 1. **Read** each `*.trace` file: one node's starts and steps, and the shell's reports.
//! 2. **Order** every node's steps into one sequence in which each message is received after the
//!    step that sent it (a datagram is named by its sender, incarnation and sequence number),
//!    each node's steps in their own order. Clocks only break ties: nodes' clocks need not
//!    agree, since any such order is a behaviour of the model's network.
//! 3. **Replay** the sequence: each step through [`ClusterNode`] (its outputs and the digest of
//!    the state after it must be the recorded ones), each received message against what its
//!    sender's replay sent, the runtime's rules of §10 (the replay filter admits each datagram
//!    once and in order; a restarted node recovers its last durable save), and the checker's
//!    always-properties on each global state ([`Observer`]).
//! 4. **Persist before send** (§7): no datagram of a step that saved was handed to the socket
//!    before the shell reported the save durable.

use crate::trace::Tx;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use slotguard_check::observe::{Observer, Seen};
use slotguard_check::trace::{describe_msg, node_changes};
use slotguard_protocol::actor::out_buffer;
use slotguard_protocol::validate::message_is_valid;
use slotguard_protocol::{ClusterNode, Layout, Msg, NodeId, NodeState, Timer};
use stateright::actor::{Actor, Command, Id, Out};

use super::digest;
use super::record::{render, Input, Record, Start, Step};

/// What stops validation before it can judge the traces.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No trace files.
    #[error("no trace files (*.trace) in {0}")]
    Empty(PathBuf),
    /// A line that is not a record, and not a truncated last line.
    #[error("{path}:{line}: not a trace record: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The line (from 1).
        line: usize,
        /// serde_json's reason.
        reason: String,
    },
    /// A record before the file's first start.
    #[error("{path}:{line}: a record before the node's first start")]
    NoStart {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
    },
    /// A file with the starts of two nodes.
    #[error("{path}:{line}: a start of n{node} in the trace of n{first}")]
    TwoNodes {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
        /// The node of the file's first start.
        first: u16,
        /// This start's node.
        node: u16,
    },
    /// Two files of one node.
    #[error("n{node} has two trace files: {a} and {b}")]
    DuplicateNode {
        /// The node.
        node: u16,
        /// One file.
        a: PathBuf,
        /// The other.
        b: PathBuf,
    },
}

/// What a validation found.
#[derive(Debug)]
pub struct Report {
    /// Traces read, by node.
    pub nodes: Vec<u16>,
    /// Starts replayed.
    pub starts: usize,
    /// Steps replayed (starts included).
    pub steps: u64,
    /// Received messages matched with their sending.
    pub messages: u64,
    /// The always-properties evaluated on every global state.
    pub checked: Vec<&'static str>,
    /// Sometimes-properties some global state reached.
    pub reached: Vec<&'static str>,
    /// Truncated last lines skipped (a node killed while writing).
    pub truncated: Vec<String>,
    /// Seconds validation took.
    pub seconds: f64,
    /// The first failure, if any.
    pub failure: Option<Failure>,
}

/// The first thing found wrong.
#[derive(Debug)]
pub struct Failure {
    /// What kind.
    pub kind: Kind,
    /// Where, in the traces.
    pub at: Option<Place>,
    /// One line saying what.
    pub what: String,
    /// Context lines.
    pub details: Vec<String>,
}

/// The kinds of failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// A step's replay gives other outputs or another state than recorded.
    Divergence,
    /// A global state violates an always-property.
    Property(&'static str),
    /// The runtime broke one of its own rules (§7, §10): a datagram admitted twice or out of
    /// order, a message changed on the way, a save sent before durable, a restart that did not
    /// recover its last save.
    Runtime,
    /// No order puts every receipt after its sending: a message received that no trace sent.
    Order,
}

/// A record in the traces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// The file.
    pub file: PathBuf,
    /// The line (from 1).
    pub line: usize,
    /// The node.
    pub node: u16,
    /// The start's incarnation.
    pub incarnation: u32,
    /// The step in that start (0: the start).
    pub step: u64,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "n{} incarnation {} step {} ({}:{})",
            self.node,
            self.incarnation,
            self.step,
            self.file.display(),
            self.line
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes: Vec<String> = self.nodes.iter().map(|n| format!("n{n}")).collect();
        writeln!(
            f,
            "traces of {} ({} starts): {} steps replayed, {} messages matched with their sending, {:.1}s",
            nodes.join(" "),
            self.starts,
            self.steps,
            self.messages,
            self.seconds
        )?;
        for t in &self.truncated {
            writeln!(f, "skipped a truncated last line: {t}")?;
        }
        match &self.failure {
            None => {
                writeln!(
                    f,
                    "every step replays; the runtime kept §7 and §10; every global state satisfies: {}",
                    self.checked.join(", ")
                )?;
                if !self.reached.is_empty() {
                    writeln!(f, "reached: {}", self.reached.join(", "))?;
                }
                writeln!(f, "RESULT: VALID")
            }
            Some(failure) => {
                let kind = match failure.kind {
                    Kind::Divergence => String::from("DIVERGENCE"),
                    Kind::Property(p) => format!("PROPERTY VIOLATED: {p}"),
                    Kind::Runtime => String::from("RUNTIME RULE BROKEN"),
                    Kind::Order => String::from("NO CAUSAL ORDER"),
                };
                writeln!(f, "{kind}: {}", failure.what)?;
                if let Some(at) = &failure.at {
                    writeln!(f, "  at {at}")?;
                }
                for d in &failure.details {
                    writeln!(f, "  {d}")?;
                }
                writeln!(f, "RESULT: INVALID")
            }
        }
    }
}

/// Validates the traces (`*.trace`) in `dir`.
pub fn validate_dir(dir: &Path) -> Result<Report, TraceError> {
    let io = |source| TraceError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "trace"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(TraceError::Empty(dir.to_path_buf()));
    }
    validate_files(&files)
}

/// Validates the traces in `files`, one node's each.
pub fn validate_files(files: &[PathBuf]) -> Result<Report, TraceError> {
    let began = Instant::now();
    let mut truncated = Vec::new();
    let mut traces: Vec<NodeTrace> = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(path).map_err(|source| TraceError::Io {
            path: path.clone(),
            source,
        })?;
        let trace = read(path, &text, &mut truncated)?;
        if let Some(other) = traces.iter().find(|t| t.node == trace.node) {
            return Err(TraceError::DuplicateNode {
                node: trace.node,
                a: other.path.clone(),
                b: trace.path,
            });
        }
        traces.push(trace);
    }
    traces.sort_by_key(|t| t.node);
    let mut v = Validation::new(traces);
    let failure = v.run().err();
    Ok(Report {
        nodes: v.traces.iter().map(|t| t.node).collect(),
        starts: v.traces.iter().map(|t| t.lives.len()).sum(),
        steps: v.replayed,
        messages: v.matched,
        checked: v
            .observer
            .as_ref()
            .map(Observer::checked)
            .unwrap_or_default(),
        reached: v
            .observer
            .as_ref()
            .map(Observer::reached)
            .unwrap_or_default(),
        truncated,
        seconds: began.elapsed().as_secs_f64(),
        failure,
    })
}

/// One node's trace file.
struct NodeTrace {
    path: PathBuf,
    node: u16,
    lives: Vec<Life>,
}

/// One start of a node and what followed it.
struct Life {
    start: Start,
    line: usize,
    steps: Vec<(Step, usize)>,
    /// The shell's reports, in order, with their lines.
    reports: Vec<(ShellReport, usize)>,
}

/// A shell's report.
#[derive(Clone, Copy)]
enum ShellReport {
    Durable(u64),
    Sent(u64),
}

/// Reads one trace file. A line that does not parse is skipped if it is the file's last, or
/// followed by a start (a node killed while it wrote); otherwise it is an error.
fn read(path: &Path, text: &str, truncated: &mut Vec<String>) -> Result<NodeTrace, TraceError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut node: Option<u16> = None;
    let mut lives: Vec<Life> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let number = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let record: Record = match serde_json::from_str(line) {
            Ok(r) => r,
            Err(e) => {
                let next_is_start = lines.get(i + 1).is_none_or(|l| l.starts_with("{\"start\""));
                if next_is_start {
                    truncated.push(format!("{}:{number}", path.display()));
                    continue;
                }
                return Err(TraceError::Parse {
                    path: path.to_path_buf(),
                    line: number,
                    reason: e.to_string(),
                });
            }
        };
        let no_start = || TraceError::NoStart {
            path: path.to_path_buf(),
            line: number,
        };
        match record {
            Record::Start(start) => {
                let first = *node.get_or_insert(start.node);
                if first != start.node {
                    return Err(TraceError::TwoNodes {
                        path: path.to_path_buf(),
                        line: number,
                        first,
                        node: start.node,
                    });
                }
                lives.push(Life {
                    start: *start,
                    line: number,
                    steps: Vec::new(),
                    reports: Vec::new(),
                });
            }
            Record::Step(step) => lives
                .last_mut()
                .ok_or_else(no_start)?
                .steps
                .push((*step, number)),
            Record::Durable { step } => lives
                .last_mut()
                .ok_or_else(no_start)?
                .reports
                .push((ShellReport::Durable(step), number)),
            Record::Sent { seq, .. } => lives
                .last_mut()
                .ok_or_else(no_start)?
                .reports
                .push((ShellReport::Sent(seq), number)),
        }
    }
    let node = node.ok_or_else(|| TraceError::NoStart {
        path: path.to_path_buf(),
        line: 1,
    })?;
    Ok(NodeTrace {
        path: path.to_path_buf(),
        node,
        lives,
    })
}

/// A step of one trace: (life, step) with step `None` for the start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    life: usize,
    step: Option<usize>,
}

/// A datagram's name: sender, incarnation, sequence.
type Stamp = (u16, u32, u64);

/// A node's replay in progress.
struct Replayer {
    actor: ClusterNode,
    state: NodeState,
    /// The last `(incarnation, sequence, index)` admitted from each sender in this start.
    admitted: BTreeMap<u16, (u32, u64, u32)>,
}

/// The global walk's state.
struct Validation {
    traces: Vec<NodeTrace>,
    layout: Option<Arc<Layout>>,
    observer: Option<Observer>,
    replayers: Vec<Option<Replayer>>,
    /// Digests of the messages of every datagram replayed so far, in order.
    datagrams: HashMap<Stamp, Vec<String>>,
    /// The last few global steps, for context.
    recent: Vec<String>,
    replayed: u64,
    matched: u64,
}

const RECENT: usize = 8;

impl Validation {
    fn new(traces: Vec<NodeTrace>) -> Validation {
        let n = traces.len();
        Validation {
            traces,
            layout: None,
            observer: None,
            replayers: (0..n).map(|_| None).collect(),
            datagrams: HashMap::new(),
            recent: Vec::new(),
            replayed: 0,
            matched: 0,
        }
    }

    fn run(&mut self) -> Result<(), Failure> {
        let order = self.order()?;
        for (k, entry) in order {
            self.replay(k, entry)?;
        }
        for k in 0..self.traces.len() {
            self.persist_before_send(k)?;
        }
        Ok(())
    }

    fn place(&self, k: usize, entry: Entry) -> Place {
        let t = &self.traces[k];
        let life = &t.lives[entry.life];
        let (step, line) = match entry.step {
            None => (0, life.line),
            Some(s) => (life.steps[s].0.n, life.steps[s].1),
        };
        Place {
            file: t.path.clone(),
            line,
            node: t.node,
            incarnation: life.start.incarnation,
            step,
        }
    }

    fn time(&self, k: usize, entry: Entry) -> u64 {
        let life = &self.traces[k].lives[entry.life];
        entry.step.map_or(life.start.t, |s| life.steps[s].0.t)
    }

    /// Pass 2: one order of every trace's entries in which each message is received after it
    /// was sent (module docs).
    fn order(&self) -> Result<Vec<(usize, Entry)>, Failure> {
        let entries: Vec<Vec<Entry>> = self
            .traces
            .iter()
            .map(|t| {
                t.lives
                    .iter()
                    .enumerate()
                    .flat_map(|(l, life)| {
                        std::iter::once(Entry {
                            life: l,
                            step: None,
                        })
                        .chain((0..life.steps.len()).map(move |s| {
                            Entry {
                                life: l,
                                step: Some(s),
                            }
                        }))
                    })
                    .collect()
            })
            .collect();
        // Which entry sent each datagram, and to whom.
        let mut sent_by: HashMap<Stamp, (usize, usize, u16)> = HashMap::new();
        for (k, t) in self.traces.iter().enumerate() {
            for (e, entry) in entries[k].iter().enumerate() {
                let life = &t.lives[entry.life];
                let tx = entry.step.map_or(&life.start.tx, |s| &life.steps[s].0.tx);
                for tx in tx {
                    sent_by.insert((t.node, life.start.incarnation, tx.seq), (k, e, tx.to));
                }
            }
        }
        let by_node: BTreeMap<u16, usize> = self
            .traces
            .iter()
            .enumerate()
            .map(|(k, t)| (t.node, k))
            .collect();
        // What each entry waits for: the sending entry of its message.
        let mut waits: Vec<Vec<Option<(usize, usize)>>> = Vec::with_capacity(entries.len());
        for (k, t) in self.traces.iter().enumerate() {
            let mut w = Vec::with_capacity(entries[k].len());
            for &entry in &entries[k] {
                let Some(s) = entry.step else {
                    w.push(None);
                    continue;
                };
                let Input::Msg { from, inc, seq, .. } = &t.lives[entry.life].steps[s].0.input
                else {
                    w.push(None);
                    continue;
                };
                let Some(&(sk, se, to)) = sent_by.get(&(*from, *inc, *seq)) else {
                    let why = match by_node.get(from) {
                        Some(_) => format!("n{from}'s trace never sent it"),
                        None => format!("there is no trace of n{from}"),
                    };
                    return Err(Failure {
                        kind: Kind::Order,
                        at: Some(self.place(k, entry)),
                        what: format!(
                            "received datagram (incarnation {inc}, sequence {seq}) from n{from}, but {why}"
                        ),
                        details: Vec::new(),
                    });
                };
                if to != t.node {
                    return Err(Failure {
                        kind: Kind::Runtime,
                        at: Some(self.place(k, entry)),
                        what: format!(
                            "admitted datagram (incarnation {inc}, sequence {seq}) from n{from}, which was sent to n{to} (§10: misdirected datagrams are dropped)"
                        ),
                        details: Vec::new(),
                    });
                }
                w.push(Some((sk, se)));
            }
            waits.push(w);
        }
        let total: usize = entries.iter().map(Vec::len).sum();
        let mut next = vec![0usize; entries.len()];
        let mut order = Vec::with_capacity(total);
        while order.len() < total {
            let ready = (0..entries.len())
                .filter(|&k| next[k] < entries[k].len())
                .filter(|&k| waits[k][next[k]].is_none_or(|(sk, se)| se < next[sk]))
                .min_by_key(|&k| (self.time(k, entries[k][next[k]]), k));
            let Some(k) = ready else {
                let details = (0..entries.len())
                    .filter(|&k| next[k] < entries[k].len())
                    .map(|k| {
                        format!(
                            "{} waits for a datagram not yet sent",
                            self.place(k, entries[k][next[k]])
                        )
                    })
                    .collect();
                return Err(Failure {
                    kind: Kind::Order,
                    at: None,
                    what: String::from(
                        "no order of the steps puts every receipt after its sending",
                    ),
                    details,
                });
            };
            order.push((k, entries[k][next[k]]));
            next[k] += 1;
        }
        Ok(order)
    }

    /// Pass 3 for one entry.
    fn replay(&mut self, k: usize, entry: Entry) -> Result<(), Failure> {
        match entry.step {
            None => self.replay_start(k, entry),
            Some(s) => self.replay_step(k, entry, s),
        }
    }

    fn fail(&self, kind: Kind, k: usize, entry: Entry, what: String) -> Failure {
        let mut details = vec![format!("the step: {}", self.describe(k, entry))];
        details.push(String::from("the global steps before it:"));
        details.extend(self.recent.iter().map(|r| format!("  {r}")));
        Failure {
            kind,
            at: Some(self.place(k, entry)),
            what,
            details,
        }
    }

    /// A step in words, as the context lines name it.
    fn describe(&self, k: usize, entry: Entry) -> String {
        let trace = &self.traces[k];
        let life = &trace.lives[entry.life];
        let (me, inc) = (trace.node, life.start.incarnation);
        let Some(s) = entry.step else {
            return format!("n{me} #{inc} starts");
        };
        let step = &life.steps[s].0;
        match &step.input {
            Input::Msg { from, msg, .. } => {
                format!("n{me} #{inc}.{} <- n{from}: {}", step.n, describe_msg(msg))
            }
            Input::Timer(t) => format!("n{me} #{inc}.{}: timer {t} fires", step.n),
            Input::Failover(mode) => format!(
                "n{me} #{inc}.{}: operator: CLUSTER FAILOVER {}",
                step.n,
                mode.name()
            ),
            Input::Copied => format!("n{me} #{inc}.{}: copied its master's data", step.n),
            Input::MasterRecreated => {
                format!("n{me} #{inc}.{}: its master offered an empty copy", step.n)
            }
            Input::DataLossAccepted => format!(
                "n{me} #{inc}.{}: operator: CLUSTER ACCEPT-DATA-LOSS",
                step.n
            ),
        }
    }

    fn remember(&mut self, line: String) {
        if self.recent.len() == RECENT {
            self.recent.remove(0);
        }
        self.recent.push(line);
    }

    fn replay_start(&mut self, k: usize, entry: Entry) -> Result<(), Failure> {
        let start = self.traces[k].lives[entry.life].start.clone();
        let start = &start;
        let layout = Layout::new(usize::from(start.slot_count), start.layout.clone())
            .map_err(|e| self.fail(Kind::Divergence, k, entry, format!("invalid layout: {e}")))?;
        let layout = match &self.layout {
            None => {
                let layout = Arc::new(layout);
                self.layout = Some(Arc::clone(&layout));
                let actor = ClusterNode::new(Arc::clone(&layout), start.timing)
                    .with_durability(start.durability);
                self.observer = Some(Observer::new(actor));
                layout
            }
            Some(first) if **first == layout => Arc::clone(first),
            Some(_) => {
                return Err(self.fail(
                    Kind::Divergence,
                    k,
                    entry,
                    String::from("a start with another layout than the first trace's"),
                ))
            }
        };
        if usize::from(start.node) >= layout.len() {
            return Err(self.fail(
                Kind::Divergence,
                k,
                entry,
                format!("n{} is not a node of the layout", start.node),
            ));
        }
        if let Some(stored) = &start.stored {
            stored.fits(&layout).map_err(|e| {
                self.fail(
                    Kind::Divergence,
                    k,
                    entry,
                    format!("the recovered state does not fit the layout: {e}"),
                )
            })?;
        }
        if entry.life > 0 {
            self.recovered_last_save(k, entry)?;
        }
        let actor =
            ClusterNode::new(Arc::clone(&layout), start.timing).with_durability(start.durability);
        let mut out = out_buffer();
        let state = actor.on_start(Id::from(usize::from(start.node)), &start.stored, &mut out);
        self.compare(k, entry, &out, &state, None)?;
        let sent = self.note_sent(k, entry, &out)?;
        let node = NodeId(start.node);
        let what = match &start.stored {
            None => "starts as created",
            Some(_) => "starts from its state file",
        };
        let line = format!("n{} #{} {what}", start.node, start.incarnation);
        let lost = self.start_lost(k, entry.life);
        let violated = self
            .observer
            .as_mut()
            .filter(|_| !lost)
            .map(|o| o.start(node, &state, &sent))
            .unwrap_or_default();
        self.replayers[k] = Some(Replayer {
            actor,
            state,
            admitted: BTreeMap::new(),
        });
        self.replayed += 1;
        self.remember(line);
        self.check_properties(k, entry, violated)
    }

    /// The first step of life `life` of trace `k` that never took effect, if the node was killed
    /// with steps whose effects had not yet happened (§7): the tail after the last step whose
    /// save was reported durable or whose datagrams left. A step's datagrams leave only once its
    /// save is durable, and the steps of one input batch wait behind it, so a tail that saved
    /// nothing the next start recovered did not happen for anyone but the node, and the node
    /// forgot it: the global states go on without it, as in the model's crash.
    fn lost_from(&self, k: usize, life: usize) -> Option<usize> {
        let trace = &self.traces[k];
        let (this, next) = (trace.lives.get(life)?, trace.lives.get(life + 1)?);
        let durable = |n: u64| {
            this.reports
                .iter()
                .any(|(r, _)| matches!(r, ShellReport::Durable(s) if *s == n))
        };
        let sent = |txs: &[Tx]| {
            this.reports.iter().any(
                |(r, _)| matches!(r, ShellReport::Sent(seq) if txs.iter().any(|t| t.seq == *seq)),
            )
        };
        let first = this
            .steps
            .iter()
            .rposition(|(s, _)| durable(s.n) || sent(&s.tx))
            .map_or(0, |i| i + 1);
        let tail = this.steps.get(first..).filter(|t| !t.is_empty())?;
        let recovered = next.start.stored.as_ref().map(digest);
        let survived = tail.iter().any(|(s, _)| {
            s.out
                .iter()
                .filter_map(|o| o.strip_prefix("save "))
                .any(|d| recovered.as_deref() == Some(d))
        });
        (!survived).then_some(first)
    }

    /// Whether the start of life `life` of trace `k` never took effect: its save was not
    /// reported durable, nothing of the life left, and another start followed. A start saves
    /// the state it recovered with a new incarnation (runtime state, not protocol state), so
    /// the next start recovers the same protocol state and counts the same incarnation again.
    fn start_lost(&self, k: usize, life: usize) -> bool {
        let trace = &self.traces[k];
        let (Some(this), Some(_)) = (trace.lives.get(life), trace.lives.get(life + 1)) else {
            return false;
        };
        let nothing_left = this.reports.iter().all(|(r, _)| {
            !matches!(r, ShellReport::Sent(_)) && !matches!(r, ShellReport::Durable(0))
        });
        nothing_left
            && this
                .steps
                .iter()
                .all(|(s, _)| !s.out.iter().any(|o| o.starts_with("save ")))
    }

    /// A restart recovers the last save reported durable, or one queued after it (§7: the
    /// state file holds what was last written).
    fn recovered_last_save(&self, k: usize, entry: Entry) -> Result<(), Failure> {
        let trace = &self.traces[k];
        let prev = &trace.lives[entry.life - 1];
        let this = &trace.lives[entry.life].start;
        // A start whose own save was lost did not count: the next one counts the same again.
        let counted =
            this.incarnation == prev.start.incarnation && self.start_lost(k, entry.life - 1);
        if this.incarnation != prev.start.incarnation.wrapping_add(1) && !counted {
            return Err(self.fail(
                Kind::Runtime,
                k,
                entry,
                format!(
                    "incarnation {} follows incarnation {}: a start must count one more",
                    this.incarnation, prev.start.incarnation
                ),
            ));
        }
        let saves: Vec<(u64, &str)> = std::iter::once((0, &prev.start.out))
            .chain(prev.steps.iter().map(|(s, _)| (s.n, &s.out)))
            .flat_map(|(n, out)| {
                out.iter()
                    .filter_map(move |o| o.strip_prefix("save ").map(|d| (n, d)))
            })
            .collect();
        let durable = prev
            .reports
            .iter()
            .filter_map(|(r, _)| match r {
                ShellReport::Durable(step) => Some(*step),
                ShellReport::Sent(_) => None,
            })
            .max();
        let mut allowed: Vec<&str> = saves
            .iter()
            .filter(|(n, _)| durable.is_none_or(|d| *n >= d))
            .map(|(_, d)| *d)
            .collect();
        let before = prev.start.stored.as_ref().map(digest);
        if durable.is_none() {
            allowed.extend(before.as_deref());
        }
        let got = this.stored.as_ref().map(digest);
        if got.as_deref().is_some_and(|g| allowed.contains(&g)) {
            return Ok(());
        }
        Err(self.fail(
            Kind::Runtime,
            k,
            entry,
            format!(
                "the restart recovered state {} but the last durable save was step {} ({} saves it could have been)",
                got.unwrap_or_else(|| String::from("none")),
                durable.map_or_else(|| String::from("none"), |d| d.to_string()),
                allowed.len()
            ),
        ))
    }

    fn replay_step(&mut self, k: usize, entry: Entry, s: usize) -> Result<(), Failure> {
        let Some(layout) = self.layout.clone() else {
            return Err(self.fail(
                Kind::Order,
                k,
                entry,
                String::from("a step before any start"),
            ));
        };
        let trace = &self.traces[k];
        let me = trace.node;
        let incarnation = trace.lives[entry.life].start.incarnation;
        let step = trace.lives[entry.life].steps[s].0.clone();
        let Some(mut rep) = self.replayers[k].take() else {
            return Err(self.fail(
                Kind::Order,
                k,
                entry,
                String::from("a step before its start"),
            ));
        };
        if let Some(offset) = step.offset {
            rep.state.note_replication_offset(offset);
        }
        let mut out = out_buffer();
        let mut cow = std::borrow::Cow::Borrowed(&rep.state);
        let line = match &step.input {
            Input::Msg {
                from,
                inc,
                seq,
                idx,
                msg,
            } => {
                let stamp = (*inc, *seq, *idx);
                if *from == me || !message_is_valid(&layout, msg) {
                    self.replayers[k] = Some(rep);
                    return Err(self.fail(
                        Kind::Runtime,
                        k,
                        entry,
                        format!("a message the runtime must drop reached the actor: {msg:?} from n{from}"),
                    ));
                }
                if rep.admitted.get(from).is_some_and(|last| stamp <= *last) {
                    let last = rep.admitted[from];
                    self.replayers[k] = Some(rep);
                    return Err(self.fail(
                        Kind::Runtime,
                        k,
                        entry,
                        format!(
                            "admitted message {idx} of datagram (incarnation {inc}, sequence {seq}) from n{from} after message {} of (incarnation {}, sequence {}): §10's replay filter admits each datagram once, newest only",
                            last.2, last.0, last.1
                        ),
                    ));
                }
                rep.admitted.insert(*from, stamp);
                let sent = self
                    .datagrams
                    .get(&(*from, *inc, *seq))
                    .and_then(|d| d.get(*idx as usize));
                if sent.is_none_or(|d| *d != digest(msg)) {
                    self.replayers[k] = Some(rep);
                    return Err(self.fail(
                        Kind::Runtime,
                        k,
                        entry,
                        format!(
                            "message {idx} of datagram (incarnation {inc}, sequence {seq}) from n{from} is not what n{from}'s replay sent: {}",
                            describe_msg(msg)
                        ),
                    ));
                }
                self.matched += 1;
                rep.actor
                    .on_msg_ref(&mut cow, Id::from(usize::from(*from)), msg, &mut out);
                format!(
                    "n{me} #{incarnation}.{} <- n{from}: {}",
                    step.n,
                    describe_msg(msg)
                )
            }
            Input::Timer(timer) => {
                if !timer_fits(&layout, timer) {
                    self.replayers[k] = Some(rep);
                    return Err(self.fail(
                        Kind::Divergence,
                        k,
                        entry,
                        format!("timer {timer} names a node outside the layout"),
                    ));
                }
                rep.actor
                    .on_timeout(Id::from(usize::from(me)), &mut cow, timer, &mut out);
                format!("n{me} #{incarnation}.{}: timer {timer} fires", step.n)
            }
            Input::Failover(mode) => {
                // A refused command changes nothing and outputs nothing, in the node as here.
                let _ = rep.actor.on_failover(&mut cow, *mode, &mut out);
                format!(
                    "n{me} #{incarnation}.{}: operator: CLUSTER FAILOVER {}",
                    step.n,
                    mode.name()
                )
            }
            Input::Copied => {
                rep.actor.on_copied(&mut cow, &mut out);
                format!("n{me} #{incarnation}.{}: copied its master's data", step.n)
            }
            Input::DataLossAccepted => {
                // A refused command changes nothing and outputs nothing, in the node as here.
                let _ = rep.actor.on_data_loss_accepted(&mut cow, &mut out);
                format!(
                    "n{me} #{incarnation}.{}: operator: CLUSTER ACCEPT-DATA-LOSS",
                    step.n
                )
            }
            Input::MasterRecreated => {
                rep.actor.on_master_recreated(&mut cow, &mut out);
                format!(
                    "n{me} #{incarnation}.{}: its master offered an empty copy",
                    step.n
                )
            }
        };
        let after = match cow {
            std::borrow::Cow::Owned(s) => Some(s),
            std::borrow::Cow::Borrowed(_) => None,
        };
        let result = self.compare(
            k,
            entry,
            &out,
            after.as_ref().unwrap_or(&rep.state),
            Some(&rep.state),
        );
        if let Err(e) = result {
            self.replayers[k] = Some(rep);
            return Err(e);
        }
        if let Some(after) = after {
            rep.state = after;
        }
        let sent = self.note_sent(k, entry, &out);
        let sent = match sent {
            Ok(sent) => sent,
            Err(e) => {
                self.replayers[k] = Some(rep);
                return Err(e);
            }
        };
        let fired = match &step.input {
            Input::Timer(t) => Some(t),
            Input::Msg { .. }
            | Input::Failover(_)
            | Input::Copied
            | Input::MasterRecreated
            | Input::DataLossAccepted => None,
        };
        let lost = self
            .lost_from(k, entry.life)
            .is_some_and(|first| s >= first);
        let violated = self
            .observer
            .as_mut()
            .filter(|_| !lost)
            .map(|o| {
                o.step(Seen {
                    node: NodeId(me),
                    after: &rep.state,
                    fired,
                    sent: &sent,
                })
            })
            .unwrap_or_default();
        self.replayers[k] = Some(rep);
        self.replayed += 1;
        self.remember(line);
        self.check_properties(k, entry, violated)
    }

    /// Compares a replayed step's outputs and state with the record.
    fn compare(
        &self,
        k: usize,
        entry: Entry,
        out: &Out<ClusterNode>,
        after: &NodeState,
        before: Option<&NodeState>,
    ) -> Result<(), Failure> {
        let life = &self.traces[k].lives[entry.life];
        let (recorded_out, recorded_digest) = match entry.step {
            None => (&life.start.out, &life.start.digest),
            Some(s) => (&life.steps[s].0.out, &life.steps[s].0.digest),
        };
        let replayed = render(out);
        if replayed != *recorded_out {
            let mut f = self.fail(
                Kind::Divergence,
                k,
                entry,
                String::from("the replayed step produces other outputs than recorded"),
            );
            f.details.push(String::from("recorded:"));
            f.details
                .extend(recorded_out.iter().map(|o| format!("  {o}")));
            f.details.push(String::from("replayed:"));
            f.details
                .extend(out.iter().zip(&replayed).map(|(c, o)| match c {
                    Command::Send(_, m) => format!("  {o}  ({})", describe_msg(m)),
                    _ => format!("  {o}"),
                }));
            return Err(f);
        }
        let got = digest(after);
        if got != *recorded_digest {
            let mut f = self.fail(
                Kind::Divergence,
                k,
                entry,
                format!(
                    "the state after the step has digest {got} in the replay, {recorded_digest} in the trace"
                ),
            );
            if let Some(before) = before {
                f.details.push(String::from("the replayed step changed:"));
                f.details.extend(
                    node_changes(before, after)
                        .into_iter()
                        .map(|c| format!("  {c}")),
                );
            }
            return Err(f);
        }
        Ok(())
    }

    /// Files the digests of a replayed step's messages under the datagrams the trace says they
    /// left in, and returns the messages.
    fn note_sent(
        &mut self,
        k: usize,
        entry: Entry,
        out: &Out<ClusterNode>,
    ) -> Result<Vec<(NodeId, Msg)>, Failure> {
        let sent: Vec<(NodeId, Msg)> = out
            .iter()
            .filter_map(|c| match c {
                Command::Send(to, m) => Some((NodeId(usize::from(*to) as u16), m.clone())),
                _ => None,
            })
            .collect();
        let trace = &self.traces[k];
        let life = &trace.lives[entry.life];
        let txs = entry.step.map_or(&life.start.tx, |s| &life.steps[s].0.tx);
        let mut per_dest: BTreeMap<u16, Vec<String>> = BTreeMap::new();
        for (to, m) in &sent {
            per_dest.entry(to.0).or_default().push(digest(m));
        }
        let mut used: BTreeMap<u16, usize> = BTreeMap::new();
        let mut files = Vec::new();
        for tx in txs {
            let msgs = per_dest.get(&tx.to).map(Vec::as_slice).unwrap_or_default();
            let from = used.entry(tx.to).or_default();
            let end = *from + tx.n as usize;
            let Some(slice) = msgs.get(*from..end) else {
                return Err(self.fail(
                    Kind::Divergence,
                    k,
                    entry,
                    format!(
                        "datagram {} to n{} carries {} messages the step did not send",
                        tx.seq, tx.to, tx.n
                    ),
                ));
            };
            files.push(((trace.node, life.start.incarnation, tx.seq), slice.to_vec()));
            *from = end;
        }
        for (to, n) in used {
            let all = per_dest.get(&to).map_or(0, Vec::len);
            if n != all {
                return Err(self.fail(
                    Kind::Divergence,
                    k,
                    entry,
                    format!("the step sent {all} messages to n{to}, its datagrams carry {n}"),
                ));
            }
        }
        self.datagrams.extend(files);
        Ok(sent)
    }

    fn check_properties(
        &self,
        k: usize,
        entry: Entry,
        violated: Vec<&'static str>,
    ) -> Result<(), Failure> {
        let Some(&name) = violated.first() else {
            return Ok(());
        };
        let mut f = self.fail(
            Kind::Property(name),
            k,
            entry,
            format!("the global state after this step violates {name}"),
        );
        if let Some(o) = &self.observer {
            f.details.push(String::from("the global state:"));
            f.details.extend(
                slotguard_check::trace::summarize_state(o.state())
                    .into_iter()
                    .map(|l| format!("  {l}")),
            );
        }
        Err(f)
    }

    /// Pass 4 (§7): every datagram of a step that saved left after the save was durable.
    fn persist_before_send(&self, k: usize) -> Result<(), Failure> {
        let trace = &self.traces[k];
        for (l, life) in trace.lives.iter().enumerate() {
            let saving: std::collections::BTreeSet<u64> = std::iter::once((0, &life.start.out))
                .chain(life.steps.iter().map(|(s, _)| (s.n, &s.out)))
                .filter(|(_, out)| out.iter().any(|o| o.starts_with("save ")))
                .map(|(n, _)| n)
                .collect();
            let step_of: HashMap<u64, (u64, Entry)> = std::iter::once((
                &life.start.tx,
                0,
                Entry {
                    life: l,
                    step: None,
                },
            ))
            .chain(life.steps.iter().enumerate().map(|(i, (s, _))| {
                (
                    &s.tx,
                    s.n,
                    Entry {
                        life: l,
                        step: Some(i),
                    },
                )
            }))
            .flat_map(|(tx, n, e)| tx.iter().map(move |t| (t.seq, (n, e))))
            .collect();
            let mut durable = std::collections::BTreeSet::new();
            for (report, line) in &life.reports {
                match *report {
                    ShellReport::Durable(step) => {
                        durable.insert(step);
                    }
                    ShellReport::Sent(seq) => {
                        let Some(&(n, e)) = step_of.get(&seq) else {
                            continue;
                        };
                        if saving.contains(&n) && !durable.contains(&n) {
                            let mut at = self.place(k, e);
                            at.line = *line;
                            return Err(Failure {
                                kind: Kind::Runtime,
                                at: Some(at),
                                what: format!(
                                    "datagram {seq} of step {n} was handed to the socket before the step's save was durable (§7: persist before you send)"
                                ),
                                details: Vec::new(),
                            });
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether every node a timer names is in the layout (handlers index peers by it).
fn timer_fits(layout: &Layout, timer: &Timer) -> bool {
    let n = layout.len();
    match timer {
        Timer::Tick | Timer::ElectionDelay | Timer::ElectionTimeout | Timer::ManualFailover => true,
        Timer::PeerTimeout(p) | Timer::FailUndo(p) => p.index() < n,
        Timer::ReportExpiry { target, reporter } => target.index() < n && reporter.index() < n,
    }
}
