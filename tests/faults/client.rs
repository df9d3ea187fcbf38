//! A cluster client that follows `MOVED` and `ASK`, re-reads the slot map after any failure,
//! and says of each operation whether it surely happened, surely did not, or may have.
//!
//! The outcome is what a Jepsen history needs: a write is `Done` only when the system
//! acknowledged it (for a system that confirms with `WAIT`, only when WAIT reports a replica),
//! `Refused` when the request was never sent or got an error reply saying nothing was written,
//! and `Unknown` when it was sent and no verdict came back (a timeout, a reset, a WAIT that
//! found no replica, slotguard's `-NOTCONFIRMED`): it may have taken effect, now or later.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use slotguard::data::keyslot::key_slot;

use super::resp::{Conn, ConnError, Reply};

/// What became of one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Acknowledged, with the reply.
    Done(Reply),
    /// Surely not applied: an error reply, or no connection.
    Refused(String),
    /// Sent, and no verdict.
    Unknown(String),
}

/// A client of one cluster.
pub(crate) struct Client {
    seeds: Vec<SocketAddr>,
    slots: Vec<Option<SocketAddr>>,
    conns: HashMap<SocketAddr, Conn>,
    /// `WAIT 1 <ms>` after each write.
    wait_ms: Option<u64>,
    io: Duration,
    stale: bool,
    next_seed: usize,
}

const CONNECT: Duration = Duration::from_millis(300);

impl Client {
    /// A client that knows the nodes `seeds`; each request waits up to `io` for its reply (and
    /// `wait_ms` more when writes are confirmed with WAIT).
    pub(crate) fn new(
        seeds: Vec<SocketAddr>,
        io: Duration,
        wait_ms: Option<u64>,
        first: usize,
    ) -> Client {
        let io = io + Duration::from_millis(wait_ms.unwrap_or(0));
        Client {
            next_seed: first % seeds.len().max(1),
            seeds,
            slots: vec![None; 16384],
            conns: HashMap::new(),
            wait_ms,
            io,
            stale: true,
        }
    }

    /// Reads the slot map from the first seed that answers, starting with the next in turn.
    pub(crate) fn refresh(&mut self) {
        for k in 0..self.seeds.len() {
            let seed = self.seeds[(self.next_seed + k) % self.seeds.len()];
            let Ok(mut conn) = Conn::open(seed, CONNECT, Duration::from_millis(500)) else {
                continue;
            };
            let Ok(Reply::Array(ranges)) = conn.call(&["CLUSTER", "SLOTS"]) else {
                continue;
            };
            let mut slots = vec![None; 16384];
            for r in &ranges {
                let Reply::Array(f) = r else { continue };
                let (Some(Reply::Int(lo)), Some(Reply::Int(hi)), Some(Reply::Array(m))) =
                    (f.first(), f.get(1), f.get(2))
                else {
                    continue;
                };
                let (Some(Reply::Text(ip)), Some(Reply::Int(port))) = (m.first(), m.get(1)) else {
                    continue;
                };
                let Ok(addr) = format!("{ip}:{port}").parse::<SocketAddr>() else {
                    continue;
                };
                for s in (*lo).max(0)..=(*hi).min(16383) {
                    slots[s as usize] = Some(addr);
                }
            }
            self.slots = slots;
            self.stale = false;
            self.next_seed = (self.next_seed + k + 1) % self.seeds.len();
            return;
        }
    }

    /// `SET key value`.
    pub(crate) fn set(&mut self, key: &str, value: &str) -> Answer {
        self.run(key, &["SET", key, value], true)
    }

    /// `GET key`.
    pub(crate) fn get(&mut self, key: &str) -> Answer {
        self.run(key, &["GET", key], false)
    }

    fn run(&mut self, key: &str, args: &[&str], write: bool) -> Answer {
        if self.stale {
            self.refresh();
        }
        let slot = key_slot(key.as_bytes()) as usize;
        let mut addr = match self.slots[slot] {
            Some(a) => a,
            None => {
                self.stale = true;
                return Answer::Refused(format!("no node known for slot {slot}"));
            }
        };
        let mut asking = false;
        for _ in 0..5 {
            let answer = self.on(addr, args, asking, write);
            match answer {
                Err(Redirect::Moved(to)) => {
                    self.slots[slot] = Some(to);
                    addr = to;
                    asking = false;
                }
                Err(Redirect::Ask(to)) => {
                    addr = to;
                    asking = true;
                }
                Ok(a) => {
                    if !matches!(a, Answer::Done(_)) {
                        self.stale = true;
                    }
                    return a;
                }
            }
        }
        self.stale = true;
        Answer::Refused("too many redirects".into())
    }

    fn on(
        &mut self,
        addr: SocketAddr,
        args: &[&str],
        asking: bool,
        write: bool,
    ) -> Result<Answer, Redirect> {
        let wait = if write { self.wait_ms } else { None };
        let conn = match self.conns.entry(addr) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                match Conn::open(addr, CONNECT, self.io) {
                    Ok(c) => v.insert(c),
                    Err(e) => return Ok(Answer::Refused(format!("{addr}: {e}"))),
                }
            }
        };
        if asking {
            if let Err(e) = conn.call(&["ASKING"]) {
                self.conns.remove(&addr);
                return Ok(Answer::Refused(format!("{addr}: ASKING: {e}")));
            }
        }
        let reply = match conn.call(args) {
            Ok(r) => r,
            Err(e) => {
                self.conns.remove(&addr);
                return Ok(match e {
                    // A stale pooled connection fails on its first write at the latest; the
                    // request may still have reached the node, so only a failed connect is
                    // surely nothing.
                    ConnError::Connect(_) => Answer::Refused(format!("{addr}: {e}")),
                    _ => Answer::Unknown(format!("{addr}: {e}")),
                });
            }
        };
        if let Reply::Error(e) = &reply {
            let mut f = e.split(' ');
            let (kind, _slot, to) = (f.next(), f.next(), f.next());
            let to = to.and_then(|t| t.parse::<SocketAddr>().ok());
            return match (kind, to) {
                (Some("MOVED"), Some(to)) => Err(Redirect::Moved(to)),
                (Some("ASK"), Some(to)) => Err(Redirect::Ask(to)),
                // slotguard `sync`: applied on the master, not confirmed by its replicas in
                // time; it may be kept or lost.
                (Some("NOTCONFIRMED"), _) => Ok(Answer::Unknown(format!("{addr}: {e}"))),
                _ => Ok(Answer::Refused(format!("{addr}: {e}"))),
            };
        }
        let Some(ms) = wait else {
            return Ok(Answer::Done(reply));
        };
        match conn.call(&["WAIT", "1", &ms.to_string()]) {
            Ok(Reply::Int(n)) if n >= 1 => Ok(Answer::Done(reply)),
            Ok(Reply::Int(_)) => Ok(Answer::Unknown(format!("{addr}: WAIT found no replica"))),
            Ok(other) => Ok(Answer::Unknown(format!("{addr}: WAIT: {other:?}"))),
            Err(e) => {
                self.conns.remove(&addr);
                Ok(Answer::Unknown(format!("{addr}: WAIT: {e}")))
            }
        }
    }
}

enum Redirect {
    Moved(SocketAddr),
    Ask(SocketAddr),
}
