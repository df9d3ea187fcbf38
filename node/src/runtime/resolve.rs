//! Host names of the node list, resolved to bus addresses off the step loop.
//!
//! Why: on more than one machine, and above all under an orchestrator, a node is known by a
//! stable name (a StatefulSet pod's `sg-1.sg.db.svc.cluster.local`) while its IP changes when
//! it is rescheduled. So names are resolved at start, and again whenever a peer has stayed
//! silent for node_timeout: a peer that moved is found at its new address as soon as DNS says
//! so. Each lookup is a tokio task (`lookup_host` runs the system resolver on the blocking
//! pool) that reports on a channel the step loop selects on, so a slow or failing DNS never
//! holds up a step; until a name has resolved, datagrams to that node are not sent (counted
//! `unresolved`), which the protocol sees as loss, a fault it was checked against. IP literals
//! are never looked up.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::lookup_host;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tracing::{debug, info, warn};

use super::config::{Endpoint, Host};

/// A finished lookup: the node's index and the addresses found.
pub(crate) type Lookup = (usize, std::io::Result<Vec<SocketAddr>>);

/// The bus addresses of the cluster's nodes, as resolved so far.
pub(crate) struct Resolver {
    /// `host:port` of each node's bus whose host is a name; `None` for IP literals.
    names: Vec<Option<String>>,
    addrs: Vec<Option<SocketAddr>>,
    pending: Vec<bool>,
    /// Whether the last lookup of each name failed: a failure is logged as a warning once,
    /// and again only after a success, not every node_timeout while DNS stays down.
    failing: Vec<bool>,
    /// Prefer IPv4 answers (the bus socket is an IPv4 one).
    prefer_v4: bool,
    tx: UnboundedSender<Lookup>,
    rx: UnboundedReceiver<Lookup>,
}

impl Resolver {
    /// The node list's bus addresses: literals at once, names once looked up.
    pub(crate) fn new(nodes: &[Endpoint], prefer_v4: bool) -> Resolver {
        let (tx, rx) = unbounded_channel();
        Resolver {
            names: nodes
                .iter()
                .map(|e| match &e.bus.host {
                    Host::Name(_) => Some(e.bus.to_string()),
                    Host::Ip(_) => None,
                })
                .collect(),
            addrs: nodes.iter().map(|e| e.bus.literal()).collect(),
            pending: vec![false; nodes.len()],
            failing: vec![false; nodes.len()],
            prefer_v4,
            tx,
            rx,
        }
    }

    /// Node `i`'s bus address, if known.
    pub(crate) fn addr(&self, i: usize) -> Option<SocketAddr> {
        self.addrs.get(i).copied().flatten()
    }

    /// Every node's bus address, as far as known.
    pub(crate) fn addrs(&self) -> &[Option<SocketAddr>] {
        &self.addrs
    }

    /// Starts a lookup of node `i`'s name, unless it is an IP literal or one is under way.
    pub(crate) fn look_up(&mut self, i: usize) {
        let Some(Some(name)) = self.names.get(i) else {
            return;
        };
        if std::mem::replace(&mut self.pending[i], true) {
            return;
        }
        let (name, tx) = (name.clone(), self.tx.clone());
        tokio::spawn(async move {
            let found = lookup_host(name.as_str()).await.map(Iterator::collect);
            let _ = tx.send((i, found));
        });
    }

    /// Starts a lookup of every name.
    pub(crate) fn look_up_all(&mut self) {
        for i in 0..self.names.len() {
            self.look_up(i);
        }
    }

    /// The next finished lookup (never ends: the resolver holds a sender).
    pub(crate) async fn next(&mut self) -> Option<Lookup> {
        self.rx.recv().await
    }

    /// Takes a finished lookup's answer; logs a new or changed address, and a failure.
    pub(crate) fn settle(&mut self, (i, found): Lookup) {
        let Some(slot) = self.pending.get_mut(i) else {
            return;
        };
        *slot = false;
        let name = self.names[i].clone().unwrap_or_default();
        let error = match found.map(|all| pick(&all, self.prefer_v4)) {
            Ok(Some(addr)) => {
                self.failing[i] = false;
                let old = self.addrs[i].replace(addr);
                if old != Some(addr) {
                    let was = old.map_or("-".to_string(), |a| a.to_string());
                    info!(node = i, host = %name, %addr, %was, "bus address resolved");
                }
                return;
            }
            Ok(None) => "no address".to_string(),
            Err(e) => e.to_string(),
        };
        if std::mem::replace(&mut self.failing[i], true) {
            debug!(node = i, host = %name, %error, "cannot resolve host name (still)");
        } else {
            warn!(node = i, host = %name, %error, "cannot resolve host name; keeping the last address");
        }
    }
}

/// The nodes whose names should be looked up again at `now`: every peer not heard from
/// within `timeout` (never heard from included), and this node itself (`me`) while its own
/// name has not resolved (CLUSTER NODES shows the IP it resolves to). Nodes listed by IP are
/// among them too, and `Resolver::look_up` ignores them.
pub(crate) fn due_for_lookup(
    me: usize,
    last_heard: &[Option<Instant>],
    addrs: &[Option<SocketAddr>],
    now: Instant,
    timeout: Duration,
) -> Vec<usize> {
    (0..last_heard.len())
        .filter(|&i| {
            if i == me {
                addrs.get(i).copied().flatten().is_none()
            } else {
                last_heard[i].is_none_or(|t| now.saturating_duration_since(t) >= timeout)
            }
        })
        .collect()
}

/// The address to use of those a name resolved to: the first of the bus socket's family,
/// else the first.
pub(crate) fn pick(all: &[SocketAddr], prefer_v4: bool) -> Option<SocketAddr> {
    all.iter()
        .find(|a| a.is_ipv4() == prefer_v4)
        .or_else(|| all.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(list: &[&str]) -> Vec<Endpoint> {
        list.iter().map(|s| s.parse().expect("endpoint")).collect()
    }

    #[test]
    fn silent_peers_are_looked_up_again_and_heard_ones_not() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(1);
        let heard = [None, Some(t0), Some(t0), None];
        let known: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let addrs = [Some(known), Some(known), None, Some(known)];
        let at = |ms| t0 + Duration::from_millis(ms);
        // Node 0 is this node (resolved); 3 never spoke; 1 and 2 spoke at t0.
        assert_eq!(due_for_lookup(0, &heard, &addrs, at(500), timeout), vec![3]);
        assert_eq!(
            due_for_lookup(0, &heard, &addrs, at(1000), timeout),
            vec![1, 2, 3]
        );
        // As node 2, unresolved: its own name too (and node 0, never heard from).
        assert_eq!(
            due_for_lookup(2, &heard, &addrs, at(500), timeout),
            vec![0, 2, 3]
        );
    }

    #[test]
    fn the_socket_family_is_preferred() {
        let v6: SocketAddr = "[::1]:1".parse().expect("v6");
        let v4: SocketAddr = "127.0.0.1:1".parse().expect("v4");
        assert_eq!(pick(&[v6, v4], true), Some(v4));
        assert_eq!(pick(&[v6, v4], false), Some(v6));
        assert_eq!(pick(&[v6], true), Some(v6));
        assert_eq!(pick(&[], true), None);
    }

    #[tokio::test]
    async fn literals_are_known_at_once_and_names_once_looked_up() {
        let nodes = endpoints(&["127.0.0.1:7000@17000", "localhost:7001@17001"]);
        let mut r = Resolver::new(&nodes, true);
        assert_eq!(r.addr(0), Some("127.0.0.1:17000".parse().expect("addr")));
        assert_eq!(r.addr(1), None);
        r.look_up_all();
        r.look_up(1);
        let done = r.next().await.expect("a lookup");
        assert_eq!(done.0, 1);
        r.settle(done);
        assert_eq!(r.addr(1), Some("127.0.0.1:17001".parse().expect("addr")));
        // A second lookup was not started while the first was under way.
        let more = tokio::time::timeout(std::time::Duration::from_millis(200), r.next()).await;
        assert!(more.is_err(), "one lookup at a time per node");
    }

    #[tokio::test]
    async fn a_failed_lookup_keeps_the_last_address() {
        let nodes = endpoints(&["localhost:7001@17001"]);
        let mut r = Resolver::new(&nodes, true);
        let known: SocketAddr = "127.0.0.9:17001".parse().expect("addr");
        r.settle((0, Ok(vec![known])));
        r.settle((0, Err(std::io::Error::other("no such host"))));
        assert_eq!(r.addr(0), Some(known));
        r.settle((0, Ok(vec!["127.0.0.1:17001".parse().expect("addr")])));
        assert_ne!(
            r.addr(0),
            Some(known),
            "a moved node is found at its new address"
        );
    }
}
