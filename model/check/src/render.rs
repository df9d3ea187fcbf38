//! How a cluster state and a path look to a person: the explorer's state view (the `Debug` of
//! [`ClusterState`]), its step descriptions, and the sequence diagram of a path.
//!
//! stateright's explorer shows a state through its `Debug` output and a path through
//! `Model::as_svg`. A raw dump of this model's state is thousands of lines (16384-bit sets in a
//! real node, nested views in every message); this renders one line per node with the fields a
//! failover is about, messages by kind and key fields, and the history the properties read.
//!
//! These are what `slotguard explore --stock` shows; slotguard's own pages draw the same state
//! from the data of [`crate::picture`].

use std::fmt::{self, Write as _};

use stateright::Path;

use crate::model::{Action, ClusterModel, ClusterState};
use crate::trace::{describe_msg, describe_step, summarize_node};

impl fmt::Debug for ClusterState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "NODES")?;
        for (node, &crashed) in self.nodes.iter().zip(&self.crashed) {
            writeln!(f, "  {}", summarize_node(node, crashed))?;
        }
        writeln!(f, "TIMERS")?;
        for (i, timers) in self.timers.iter().enumerate() {
            let list: Vec<String> = timers.iter().map(|t| t.to_string()).collect();
            writeln!(f, "  n{i}: {}", list.join(", "))?;
        }
        writeln!(f, "IN FLIGHT ({})", self.network.len())?;
        for env in self.network.iter() {
            writeln!(
                f,
                "  {} -> {}: {}",
                env.src,
                env.dst,
                describe_msg(&env.msg)
            )?;
        }
        writeln!(
            f,
            "FAULTS crashes={} suspicions={}",
            self.crashes, self.suspicions
        )?;
        let g = &self.ghost;
        let failed: Vec<String> = g.ever_failed.iter().map(|n| n.to_string()).collect();
        let winners: Vec<String> = g
            .winners
            .iter()
            .map(|(e, w)| {
                let w: Vec<String> = w.iter().map(|n| n.to_string()).collect();
                format!("epoch {e}: {}", w.join(","))
            })
            .collect();
        writeln!(
            f,
            "HISTORY ever FAIL {{{}}}; winners {{{}}}; violations {:?}",
            failed.join(","),
            winners.join("; "),
            g.violations
        )
    }
}

/// The explorer's text for a step: the acting node's changes and what it sent.
pub fn format_step(before: &ClusterState, action: &Action, after: &ClusterState) -> String {
    let step = describe_step(0, action, before, after);
    let mut out = step.action;
    for c in &step.changes {
        let _ = write!(out, "\n  ~ {c}");
    }
    for m in &step.sent {
        let _ = write!(out, "\n  > {m}");
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A sequence diagram of `path`: one lifeline per node; each delivery an arrow from sender to
/// receiver labelled with the message kind; timers, crashes and restarts as marks on the
/// acting node's line.
pub fn svg(model: &ClusterModel, path: &Path<ClusterState, Action>) -> String {
    let nodes = model.actor.layout.len();
    let actions = path.clone().into_actions();
    let (col, row, top) = (120usize, 28usize, 40usize);
    let width = col * nodes + 40;
    let height = top + row * (actions.len() + 1) + 20;
    let x = |n: usize| 60 + n * col;
    let mut s = format!(
        "<svg version='1.1' baseProfile='full' width='{width}' height='{height}' viewBox='0 0 {width} {height}' xmlns='http://www.w3.org/2000/svg'>\
         <defs><marker id='arrow' markerWidth='12' markerHeight='10' refX='12' refY='5' orient='auto'><polygon points='0 0, 12 5, 0 10'/></marker></defs>"
    );
    for n in 0..nodes {
        let _ = write!(
            s,
            "<line x1='{0}' y1='{1}' x2='{0}' y2='{height}' stroke='black' stroke-width='1'/>\
             <text x='{0}' y='20' font-size='14' text-anchor='middle'>n{n}</text>",
            x(n),
            top - 10
        );
    }
    for (i, action) in actions.iter().enumerate() {
        let y = top + row * (i + 1);
        match action {
            Action::Deliver(env) => {
                let (a, b) = (x(env.src.index()), x(env.dst.index()));
                let label = escape(env.msg.kind());
                let _ = write!(
                    s,
                    "<line x1='{a}' y1='{}' x2='{b}' y2='{y}' stroke='#336' marker-end='url(#arrow)'/>\
                     <text x='{}' y='{}' font-size='10' text-anchor='middle'>{label}</text>",
                    y - row / 2,
                    (a + b) / 2,
                    y - row / 2 - 2
                );
            }
            Action::Drop(env) => {
                let _ = write!(
                    s,
                    "<text x='{}' y='{y}' font-size='10'>lost {}</text>",
                    x(env.src.index()) + 6,
                    escape(env.msg.kind())
                );
            }
            Action::Timeout { node, timer } => {
                let _ = write!(
                    s,
                    "<circle cx='{0}' cy='{y}' r='4' fill='#c60'/>\
                     <text x='{1}' y='{2}' font-size='10'>{3}</text>",
                    x(node.index()),
                    x(node.index()) + 6,
                    y + 3,
                    escape(&timer.to_string())
                );
            }
            Action::Failover { node, mode } => {
                let _ = write!(
                    s,
                    "<circle cx='{0}' cy='{y}' r='4' fill='#06c'/>\
                     <text x='{1}' y='{2}' font-size='10'>CLUSTER FAILOVER {3}</text>",
                    x(node.index()),
                    x(node.index()) + 6,
                    y + 3,
                    mode.name()
                );
            }
            Action::Write(node) | Action::Copy(node) => {
                let what = match action {
                    Action::Write(_) => "client write",
                    _ => "copies its master",
                };
                let _ = write!(
                    s,
                    "<circle cx='{0}' cy='{y}' r='4' fill='#090'/>\
                     <text x='{1}' y='{2}' font-size='10'>{what}</text>",
                    x(node.index()),
                    x(node.index()) + 6,
                    y + 3,
                );
            }
            Action::Crash(node) | Action::Recover(node) | Action::CrashRestart(node) => {
                let (color, what) = match action {
                    Action::Crash(_) => ("#c00", "crash"),
                    Action::CrashRestart(_) => ("#c60", "crash+restart"),
                    _ => ("#090", "restart"),
                };
                let _ = write!(
                    s,
                    "<rect x='{}' y='{}' width='10' height='10' fill='{color}'/>\
                     <text x='{}' y='{}' font-size='10'>{what}</text>",
                    x(node.index()) - 5,
                    y - 5,
                    x(node.index()) + 8,
                    y + 3
                );
            }
        }
    }
    s.push_str("</svg>");
    s
}
