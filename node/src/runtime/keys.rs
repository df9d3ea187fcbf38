//! Key commands on the client port: each is routed by the protocol's rule, which the actor
//! decides (`ClusterNode::route`, specs/protocol.md §5.7) on the node's state after its last
//! step, and, if this node serves it, run on the node's keyspace (`slotguard::data`; §11).
//!
//! The route is decided and the command run while the published state is held for reading, so
//! a write is accepted under the same view of the cluster it was routed by: the node task
//! cannot publish a step (a lost slot, a cluster gone `fail`) between the two.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use slotguard::data::commands::{KeyCommand, Limits, ARITIES};
use slotguard::data::keyslot::{key_slot, SLOT_COUNT};
use slotguard::data::keyspace::parse_i64;
use slotguard::data::replication::{change_of, Change};
use slotguard::reply::Reply;
use slotguard_protocol::{Access, Route};

use slotguard::data::dataset::Dataset;

use super::admin::Server;
use super::commands::{Outcome, Session, Then};
use super::format;
use super::Snapshot;

/// How often expired keys nobody reads are removed; how many at most while the keys are held
/// at once; and how long each round may go on while due keys remain (a quarter of the period,
/// as Redis's active expiry cycle allows itself a quarter of the CPU).
const ACTIVE_EXPIRY: (Duration, usize, Duration) =
    (Duration::from_millis(100), 2_000, Duration::from_millis(25));

/// How often the active expiry looks again while no key has an expiry time: an idle node
/// without such keys is not woken ten times a second for nothing (specs/performance.md §2).
const NOTHING_TO_EXPIRE: Duration = Duration::from_secs(1);

/// Whether `name` (lower case, as the command table names it) is a key command.
pub(crate) fn is_key_command(name: &str) -> bool {
    ARITIES.iter().any(|(n, _)| *n == name)
}

/// Answers a key command (`args` with its name first). A write in `sync` mode is answered
/// only once confirmed ([`Then::Confirm`]).
pub(crate) fn answer(server: &Server, session: &mut Session, args: &[Bytes]) -> Outcome {
    let reply = run(server, session, args);
    let awaits = server
        .shared
        .read()
        .is_ok_and(|s| server.actor.awaited(&s.state).next().is_some());
    match reply {
        Ran::Write(reply) if awaits => Outcome {
            reply,
            close: false,
            then: Then::Confirm,
        },
        Ran::Write(reply) | Ran::Other(reply) => reply.into(),
    }
}

/// What running a key command gave: a write that changed the stream, or anything else.
enum Ran {
    Write(Reply),
    Other(Reply),
}

fn run(server: &Server, session: &mut Session, args: &[Bytes]) -> Ran {
    let refused = |reply: Reply| Ran::Other(reply);
    let now = unix_ms();
    let command = match KeyCommand::parse(args, now) {
        Some(Ok(command)) => command,
        Some(Err(e)) => return refused(e.reply()),
        None => return refused(Reply::error("ERR not a key command")),
    };
    let slot = match command.slot() {
        Ok(slot) => slot,
        Err(e) => return refused(e.reply()),
    };
    let Ok(snapshot) = server.shared.read() else {
        return refused(Reply::error("ERR node state unavailable"));
    };
    if let Err(refusal) = admit(server, &snapshot, session, &command, slot) {
        return refused(refusal);
    }
    let Ok(mut store) = server.lock_store() else {
        return refused(Reply::error("ERR keyspace unavailable"));
    };
    let limits = Limits {
        max_memory: server.limits.maxmemory,
        max_string: server.limits.max_bulk_len,
    };
    if command.writes() {
        if let Err(e) = server.start_own_stream(&mut store) {
            return refused(Reply::error(format!("ERR {e}")));
        }
    }
    let reply = command.run(&mut store.keys, limits, now);
    if command.writes() && !matches!(reply, Reply::Error(_)) {
        session.last_write = propagate(&mut store, &command, now);
        server
            .repl_offset
            .store(session.last_write, Ordering::Relaxed);
        server.appended.notify_waiters();
        return Ran::Write(reply);
    }
    Ran::Other(reply)
}

/// Puts what `command` left its keys as into the replication stream; returns the offset after.
fn propagate(store: &mut Dataset, command: &KeyCommand, now: u64) -> u64 {
    if let KeyCommand::FlushAll = command {
        return store.log.append(Change::Flush);
    }
    for key in command.keys() {
        let change = change_of(&mut store.keys, key, now);
        store.log.append(change);
    }
    store.log.end()
}

/// Whether this node runs `command` (on a key of `slot`, if any), or the reply that refuses it.
fn admit(
    server: &Server,
    s: &Snapshot,
    session: &Session,
    command: &KeyCommand,
    slot: Option<u16>,
) -> Result<(), Reply> {
    let access = match (command.writes(), session.readonly) {
        (true, _) => Access::Write,
        (false, true) => Access::ReadFromReplica,
        (false, false) => Access::Read,
    };
    let Some(slot) = slot else {
        return match server.actor.route_keyless(&s.state, access) {
            Route::Down(down) => Err(Reply::error(down.message())),
            Route::Serve if access == Access::Write && !server.enough_replicas() => Err(
                Reply::error("NOREPLICAS Not enough good replicas to write."),
            ),
            Route::Serve if access == Access::Write && !server.can_confirm(&s.state) => {
                Err(Reply::error(NOT_ATTACHED))
            }
            Route::Serve | Route::Moved(_) => Ok(()),
        };
    };
    match server.actor.route(&s.state, s.status, slot, access) {
        Route::Serve if access == Access::Write && !server.enough_replicas() => Err(Reply::error(
            "NOREPLICAS Not enough good replicas to write.",
        )),
        Route::Serve if access == Access::Write && !server.can_confirm(&s.state) => {
            Err(Reply::error(NOT_ATTACHED))
        }
        Route::Serve => Ok(()),
        Route::Moved(owner) => Err(moved(server, s, slot, owner.index())),
        Route::Down(down) => Err(Reply::error(down.message())),
    }
}

/// The refusal of a write in `sync` mode while a node of the shard has no replication link:
/// it could not be confirmed (specs/protocol.md §13).
const NOT_ATTACHED: &str =
    "NOREPLICAS Not every replica of this shard is attached (durability sync)";

/// `-MOVED <slot> <ip>:<port>`: the owner's client address, as CLUSTER SLOTS shows it.
fn moved(server: &Server, s: &Snapshot, slot: u16, owner: usize) -> Reply {
    let port = server.config.nodes[owner].client.port;
    let ip = format::ip_text(&server.config, s, owner);
    Reply::error(format!("MOVED {slot} {ip}:{port}"))
}

/// `CLUSTER KEYSLOT`, `COUNTKEYSINSLOT` and `GETKEYSINSLOT`; `None` for any other command.
pub(crate) fn cluster_keys(
    server: &Server,
    name: &str,
    sub: Option<&str>,
    args: &[Bytes],
) -> Option<Reply> {
    if name != "cluster" {
        return None;
    }
    let reply = match (sub?, args) {
        ("KEYSLOT", [_, _, key]) => Reply::Int(i64::from(key_slot(key))),
        ("COUNTKEYSINSLOT", [_, _, slot]) => match parse_i64(slot).map(slot_in_range) {
            None => Reply::error(NOT_INTEGER),
            Some(None) => Reply::error("ERR Invalid slot"),
            Some(Some(slot)) => {
                with_keys(server, |keys| Reply::Int(keys.count_in_slot(slot) as i64))
            }
        },
        ("GETKEYSINSLOT", [_, _, slot, count]) => match (parse_i64(slot), parse_i64(count)) {
            (Some(slot), Some(count)) => match (slot_in_range(slot), usize::try_from(count)) {
                (Some(slot), Ok(count)) => with_keys(server, |keys| {
                    let found = keys.keys_in_slot(slot, count, unix_ms());
                    Reply::Array(found.into_iter().map(|k| Reply::Bulk(k.to_vec())).collect())
                }),
                _ => Reply::error("ERR Invalid slot or number of keys"),
            },
            _ => Reply::error(NOT_INTEGER),
        },
        _ => return None,
    };
    Some(reply)
}

const NOT_INTEGER: &str = "ERR value is not an integer or out of range";

fn slot_in_range(slot: i64) -> Option<u16> {
    u16::try_from(slot).ok().filter(|&s| s < SLOT_COUNT)
}

fn with_keys(
    server: &Server,
    f: impl FnOnce(&slotguard::data::keyspace::Keyspace) -> Reply,
) -> Reply {
    match server.lock_store() {
        Ok(store) => f(&store.keys),
        Err(_) => Reply::error("ERR keyspace unavailable"),
    }
}

/// Removes expired keys that nobody reads until the task is dropped (Redis's active expiry
/// cycle): each round takes batches while due keys remain, within its time, letting clients in
/// between batches.
pub(crate) async fn expire_forever(server: std::sync::Arc<Server>) {
    let (every, batch, round) = ACTIVE_EXPIRY;
    loop {
        let none_expire = server
            .lock_store()
            .map_or(true, |store| store.keys.expiring() == 0);
        tokio::time::sleep(if none_expire {
            NOTHING_TO_EXPIRE
        } else {
            every
        })
        .await;
        let started = std::time::Instant::now();
        loop {
            let removed = match server.lock_store() {
                Ok(mut store) => store.keys.remove_expired(unix_ms(), batch),
                Err(_) => 0,
            };
            if removed < batch || started.elapsed() >= round {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
}

/// Milliseconds since the Unix epoch (expiry times are kept in it, as Redis keeps them).
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
