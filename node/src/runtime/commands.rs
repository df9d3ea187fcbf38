//! What each client command answers. Answers come from the snapshot the node task publishes
//! and from the connection's own session (name, protocol); nothing here changes protocol
//! state. Arity is checked against `command_table.rs`, so `COMMAND` describes exactly what is
//! answered here. Error texts are Redis 7's, so clients that match on them keep working.

use bytes::Bytes;
use slotguard::data::dataset::ReplId;

use super::admin::Server;
use super::command_table::{self, Spec};
use super::keys;
use super::reply::{Protocol, Reply};
use super::{format, Snapshot};

/// One connection's state as commands see it.
#[derive(Debug)]
pub(crate) struct Session {
    /// Redis's client id (`CLIENT ID`, `HELLO`).
    pub(crate) id: u64,
    /// The protocol replies are encoded in.
    pub(crate) protocol: Protocol,
    name: Option<String>,
    /// `READONLY` was sent: a replica answers reads of its master's slots.
    pub(crate) readonly: bool,
    /// The replication offset after this client's last write (what its `WAIT` waits for).
    pub(crate) last_write: u64,
}

impl Session {
    /// A new connection's session: RESP2, no name.
    pub(crate) fn new(id: u64) -> Session {
        Session {
            id,
            protocol: Protocol::Resp2,
            name: None,
            readonly: false,
            last_write: 0,
        }
    }
}

/// A reply and whether to close the connection after it.
pub(crate) struct Outcome {
    pub(crate) reply: Reply,
    pub(crate) close: bool,
    /// What the connection does instead of sending `reply`, if anything.
    pub(crate) then: Then,
}

/// What a replica says when it attaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReplicaHello {
    /// The stream and offset it has, if it can name them.
    pub(crate) asked: Option<(ReplId, u64)>,
    /// Which node of the layout it is: slotguard's replicas say so (`PSYNC <replid> <offset>
    /// <node>`), and a `sync` acknowledgement counts only the nodes of the shard
    /// (specs/protocol.md §13).
    pub(crate) node: Option<slotguard_protocol::NodeId>,
}

/// Commands the connection carries out itself (admin.rs), since they outlast one answer.
pub(crate) enum Then {
    /// Nothing: send the reply.
    Nothing,
    /// `SYNC`, or `PSYNC` with the stream and offset the replica has: become its stream.
    Replicate(ReplicaHello),
    /// `CLUSTER FAILOVER [FORCE | TAKEOVER]`: ask the node's owner task, answer what it says.
    Failover(slotguard_protocol::FailoverMode),
    /// `CLUSTER ACCEPT-DATA-LOSS`: ask the node's owner task, answer what it says.
    AcceptDataLoss,
    /// A write in `sync` mode: send the reply once every other node of the shard has the
    /// write, or an error at the timeout (specs/protocol.md §13).
    Confirm,
    /// `WAIT`: wait for this many replicas, at most this long (`None`: forever).
    Wait {
        replicas: usize,
        timeout: Option<std::time::Duration>,
    },
}

impl From<Reply> for Outcome {
    fn from(reply: Reply) -> Outcome {
        Outcome {
            reply,
            close: false,
            then: Then::Nothing,
        }
    }
}

impl From<Then> for Outcome {
    fn from(then: Then) -> Outcome {
        Outcome {
            reply: Reply::Null,
            close: false,
            then,
        }
    }
}

/// Answers one command (`args` is not empty: the parser never yields an empty command).
pub(crate) fn answer(server: &Server, session: &mut Session, raw: &[Bytes]) -> Outcome {
    let Some(name) = raw.first() else {
        return Reply::error("ERR empty command").into();
    };
    // Key commands take their arguments as bytes: copying every value into a string first
    // would cost each SET a copy of its value.
    let spec = command_table::find(&String::from_utf8_lossy(name));
    if let Some(spec) = spec.filter(|s| keys::is_key_command(s.name)) {
        if !spec.arity_fits(raw.len()) {
            return Reply::error(arity_error(spec.name)).into();
        }
        return keys::answer(server, session, raw);
    }
    let args: Vec<String> = raw
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let Some(spec) = spec else {
        return Reply::error(unknown_command(&args)).into();
    };
    if let Err(e) = check_arity(spec, &args) {
        return Reply::error(e).into();
    }
    let sub = args.get(1).map(|s| s.to_ascii_uppercase());
    if let Some(reply) = keys::cluster_keys(server, spec.name, sub.as_deref(), raw) {
        return reply.into();
    }
    if spec.name == "cluster" && sub.as_deref() == Some("ACCEPT-DATA-LOSS") {
        return Then::AcceptDataLoss.into();
    }
    if spec.name == "cluster" && sub.as_deref() == Some("FAILOVER") {
        return failover(&args[2..]);
    }
    match spec.name {
        "quit" => Outcome {
            reply: Reply::ok(),
            close: true,
            then: Then::Nothing,
        },
        "sync" => Then::Replicate(ReplicaHello {
            asked: None,
            node: None,
        })
        .into(),
        "psync" => psync(&args[1], &args[2], args.get(3)),
        "wait" if is_replica(server) => {
            Reply::error("ERR WAIT cannot be used with replica instances.").into()
        }
        "wait" => wait(&args[1], &args[2]),
        "hello" => hello(server, session, &args[1..]),
        "client" => client(session, &args[1..]).into(),
        "command" => command_table::command(&args[1..]).into(),
        "select" => select(&args[1]).into(),
        "readonly" | "readwrite" => {
            session.readonly = spec.name == "readonly";
            Reply::ok().into()
        }
        // The message goes back as it came, byte for byte (`redis-cli --pipe` ends its input
        // with an ECHO of random bytes and waits for the same bytes).
        "ping" => match &raw[1..] {
            [] => Reply::Simple("PONG".into()),
            [msg] => Reply::Bulk(msg.to_vec()),
            _ => Reply::error("ERR wrong number of arguments for 'ping' command"),
        }
        .into(),
        "echo" => Reply::Bulk(raw[1].to_vec()).into(),
        _ => match snapshot(server) {
            Some(s) => state_view(server, &s, spec.name, sub.as_deref()).into(),
            None => Reply::error("ERR node state unavailable").into(),
        },
    }
}

fn is_replica(server: &Server) -> bool {
    server
        .shared
        .read()
        .is_ok_and(|s| s.state.role != slotguard_protocol::Role::Master)
}

/// `CLUSTER FAILOVER [FORCE | TAKEOVER]` (specs/protocol.md §6.1): the actor decides, in the
/// node's owner task.
fn failover(args: &[String]) -> Outcome {
    use slotguard_protocol::FailoverMode;
    let mode = match args {
        [] => FailoverMode::Default,
        [m] if m.eq_ignore_ascii_case("force") => FailoverMode::Force,
        [m] if m.eq_ignore_ascii_case("takeover") => FailoverMode::Takeover,
        _ => return Reply::error("ERR syntax error").into(),
    };
    Then::Failover(mode).into()
}

/// `PSYNC <replid> <offset> [<node>]`: a replica asks to continue stream `replid` from
/// `offset`; any stream it cannot name (`PSYNC ? -1`, as Redis's replicas send) gets a full
/// copy. slotguard's replicas add their node id.
fn psync(id: &str, offset: &str, node: Option<&String>) -> Outcome {
    let asked = ReplId::parse(id).zip(offset.parse::<u64>().ok());
    let node = node
        .and_then(|n| n.parse::<u16>().ok())
        .map(slotguard_protocol::NodeId);
    Then::Replicate(ReplicaHello { asked, node }).into()
}

/// `WAIT numreplicas timeout` (milliseconds; 0: forever).
fn wait(replicas: &str, timeout: &str) -> Outcome {
    let not_integer = || Reply::error("ERR value is not an integer or out of range").into();
    let Ok(replicas) = replicas.parse::<i64>() else {
        return not_integer();
    };
    let Ok(timeout) = timeout.parse::<i64>() else {
        return not_integer();
    };
    if timeout < 0 {
        return Reply::error("ERR timeout is negative").into();
    }
    let timeout = (timeout > 0).then(|| std::time::Duration::from_millis(timeout as u64));
    Then::Wait {
        replicas: usize::try_from(replicas).unwrap_or(0),
        timeout,
    }
    .into()
}

fn snapshot(server: &Server) -> Option<Snapshot> {
    server.shared.read().ok().map(|s| s.clone())
}

/// Answers read from the node's state.
fn state_view(server: &Server, s: &Snapshot, name: &str, sub: Option<&str>) -> Reply {
    let cfg = &server.config;
    match (name, sub) {
        ("info", _) => Reply::Verbatim(format::info(cfg, s, &server.stats())),
        ("cluster", Some("NODES")) => Reply::Verbatim(format::cluster_nodes(cfg, s)),
        ("cluster", Some("SLOTS")) => format::cluster_slots(cfg, s).into(),
        ("cluster", Some("SHARDS")) => shards_as_maps(format::cluster_shards(cfg, s).into()),
        ("cluster", Some("INFO")) => Reply::Verbatim(format::cluster_info(cfg, s)),
        ("cluster", Some("MYID")) => Reply::text(format::node_name(s, s.state.me.index())),
        ("cluster", Some("PICTURE")) => Reply::text(format::cluster_picture(cfg, s)),
        _ => Reply::error(format!("ERR unknown command '{name}'")),
    }
}

/// `CLUSTER SHARDS` is a list of maps in Redis (each shard, and each of its nodes): format.rs
/// builds them as RESP2's flat arrays, and this gives them back their map shape for RESP3.
fn shards_as_maps(reply: Reply) -> Reply {
    fn pairs(v: Vec<Reply>, inner: &dyn Fn(Reply) -> Reply) -> Reply {
        let mut it = v.into_iter();
        let mut out = Vec::new();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            let nested = k == Reply::text("nodes");
            out.push((k, if nested { inner(v) } else { v }));
        }
        Reply::Map(out)
    }
    let node = |r: Reply| match r {
        Reply::Array(v) => pairs(v, &|x| x),
        other => other,
    };
    let nodes = |r: Reply| match r {
        Reply::Array(v) => Reply::Array(v.into_iter().map(node).collect()),
        other => other,
    };
    match reply {
        Reply::Array(shards) => Reply::Array(
            shards
                .into_iter()
                .map(|s| match s {
                    Reply::Array(v) => pairs(v, &nodes),
                    other => other,
                })
                .collect(),
        ),
        other => other,
    }
}

/// At most `max` bytes of `s` (on a character boundary), as Redis's `%.128s`: a client's
/// input quoted in an error must not make the reply as large as the request.
pub(crate) fn clip(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Redis 7's text for an unknown command: the name and the first arguments, 128 bytes each.
fn unknown_command(args: &[String]) -> String {
    let mut quoted = String::new();
    for a in args.iter().skip(1) {
        if quoted.len() >= 128 {
            break;
        }
        let room = 128 - quoted.len();
        quoted.push_str(&format!("'{}' ", clip(a, room)));
    }
    format!(
        "ERR unknown command '{}', with args beginning with: {quoted}",
        clip(&args[0], 128)
    )
}

/// Redis 7's text for a command given the wrong number of arguments.
fn arity_error(name: &str) -> String {
    format!("ERR wrong number of arguments for '{name}' command")
}

/// Redis 7's arity errors, for commands and for the subcommands of containers.
fn check_arity(spec: &Spec, args: &[String]) -> Result<(), String> {
    if !spec.arity_fits(args.len()) {
        return Err(arity_error(spec.name));
    }
    if spec.subcommands.is_empty() || spec.name == "command" && args.len() == 1 {
        return Ok(());
    }
    let Some(sub) = spec.sub(&args[1]) else {
        // Redis says "Try X HELP."; slotguard has no HELP subcommands, so it names the ones
        // it has.
        let known: Vec<String> = spec
            .subcommands
            .iter()
            .map(|s| {
                s.name
                    .rsplit('|')
                    .next()
                    .unwrap_or(s.name)
                    .to_ascii_uppercase()
            })
            .collect();
        return Err(format!(
            "ERR unknown subcommand '{}'. {} subcommands: {}.",
            clip(&args[1], 128),
            spec.name.to_ascii_uppercase(),
            known.join(", ")
        ));
    };
    if !sub.arity_fits(args.len()) {
        return Err(arity_error(sub.name));
    }
    Ok(())
}

/// `HELLO [protover [AUTH username password] [SETNAME name]]`, as Redis 7 answers it. There
/// are no users: AUTH is accepted for the `default` user only, as a Redis without
/// `requirepass` does.
fn hello(server: &Server, session: &mut Session, args: &[String]) -> Outcome {
    let mut protocol = session.protocol;
    if let Some(version) = args.first() {
        protocol = match version.parse::<i64>() {
            Ok(2) => Protocol::Resp2,
            Ok(3) => Protocol::Resp3,
            Ok(_) => return Reply::error("NOPROTO unsupported protocol version").into(),
            Err(_) => {
                return Reply::error("ERR Protocol version is not an integer or out of range")
                    .into()
            }
        };
    }
    let mut name = None;
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        match args[i].to_ascii_uppercase().as_str() {
            "AUTH" if more >= 2 => {
                if args[i + 1] != "default" {
                    return Reply::error(
                        "WRONGPASS invalid username-password pair or user is disabled.",
                    )
                    .into();
                }
                i += 3;
            }
            "SETNAME" if more >= 1 => {
                name = Some(args[i + 1].clone());
                i += 2;
            }
            _ => {
                let option = clip(&args[i], 128);
                return Reply::error(format!("ERR Syntax error in HELLO option '{option}'")).into();
            }
        }
    }
    if let Some(name) = name {
        if let Err(e) = set_name(session, &name) {
            return e.into();
        }
    }
    session.protocol = protocol;
    hello_reply(server, session).into()
}

fn hello_reply(server: &Server, session: &Session) -> Reply {
    let role = match snapshot(server).map(|s| s.state.role) {
        Some(slotguard_protocol::state::Role::Replica { .. }) => "replica",
        _ => "master",
    };
    let proto = match session.protocol {
        Protocol::Resp2 => 2,
        Protocol::Resp3 => 3,
    };
    let id = i64::try_from(session.id).unwrap_or(i64::MAX);
    Reply::Map(vec![
        (Reply::text("server"), Reply::text("slotguard")),
        (
            Reply::text("version"),
            Reply::text(env!("CARGO_PKG_VERSION")),
        ),
        (Reply::text("proto"), Reply::Int(proto)),
        (Reply::text("id"), Reply::Int(id)),
        (Reply::text("mode"), Reply::text("cluster")),
        (Reply::text("role"), Reply::text(role)),
        (Reply::text("modules"), Reply::Array(vec![])),
    ])
}

/// Sets the connection name as `CLIENT SETNAME` does (an empty name clears it).
fn set_name(session: &mut Session, name: &str) -> Result<(), Reply> {
    if name.bytes().any(|b| !(b'!'..=b'~').contains(&b)) {
        return Err(Reply::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    session.name = (!name.is_empty()).then(|| name.to_string());
    Ok(())
}

/// `CLIENT ID | GETNAME | SETNAME name | SETINFO attr value`.
fn client(session: &mut Session, args: &[String]) -> Reply {
    match args[0].to_ascii_uppercase().as_str() {
        "ID" => Reply::Int(i64::try_from(session.id).unwrap_or(i64::MAX)),
        "GETNAME" => session.name.clone().map_or(Reply::Null, Reply::text),
        "SETNAME" => match set_name(session, &args[1]) {
            Ok(()) => Reply::ok(),
            Err(e) => e,
        },
        // SETINFO: what the client library says of itself is accepted and not used.
        _ => match args[1].to_ascii_uppercase().as_str() {
            "LIB-NAME" | "LIB-VER" if args[2].bytes().all(|b| (b'!'..=b'~').contains(&b)) => {
                Reply::ok()
            }
            "LIB-NAME" | "LIB-VER" => Reply::error(format!(
                "ERR {} cannot contain spaces, newlines or special characters.",
                args[1].to_ascii_uppercase()
            )),
            _ => Reply::error(format!("ERR Unrecognized option '{}'", clip(&args[1], 128))),
        },
    }
}

/// `SELECT db`: a cluster has only database 0.
fn select(db: &str) -> Reply {
    match db.parse::<i64>() {
        Ok(0) => Reply::ok(),
        Ok(_) => Reply::error("ERR SELECT is not allowed in cluster mode"),
        Err(_) => Reply::error("ERR value is not an integer or out of range"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arity_and_subcommand_errors_read_as_redis_7s() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let echo = command_table::find("echo").expect("echo");
        assert_eq!(
            check_arity(echo, &args(&["echo"])),
            Err("ERR wrong number of arguments for 'echo' command".into())
        );
        let cluster = command_table::find("cluster").expect("cluster");
        assert_eq!(
            check_arity(cluster, &args(&["cluster", "nodes", "x"])),
            Err("ERR wrong number of arguments for 'cluster|nodes' command".into())
        );
        assert_eq!(
            check_arity(cluster, &args(&["cluster", "meet"])),
            Err("ERR unknown subcommand 'meet'. CLUSTER subcommands: FAILOVER, INFO, MYID, NODES, SHARDS, SLOTS, COUNTKEYSINSLOT, GETKEYSINSLOT, KEYSLOT, PICTURE, ACCEPT-DATA-LOSS.".into())
        );
        let command = command_table::find("command").expect("command");
        assert_eq!(check_arity(command, &args(&["command"])), Ok(()));
    }

    #[test]
    fn errors_quote_at_most_128_bytes_of_the_request() {
        let long = "é".repeat(1000);
        let args = vec![long.clone(), long.clone(), long];
        let text = unknown_command(&args);
        assert!(text.starts_with("ERR unknown command 'éé"), "{text}");
        assert!(
            text.len() < 330,
            "{} bytes of a 6,000-byte request",
            text.len()
        );
        let short = unknown_command(&["FOO".into(), "a".into(), "b".into()]);
        assert_eq!(
            short,
            "ERR unknown command 'FOO', with args beginning with: 'a' 'b' "
        );
    }

    #[test]
    fn client_names_setinfo_and_select_follow_redis() {
        let mut s = Session::new(9);
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(client(&mut s, &args(&["GETNAME"])), Reply::Null);
        assert_eq!(client(&mut s, &args(&["setname", "app-1"])), Reply::ok());
        assert_eq!(client(&mut s, &args(&["getname"])), Reply::text("app-1"));
        assert!(matches!(
            client(&mut s, &args(&["setname", "a b"])),
            Reply::Error(_)
        ));
        assert_eq!(client(&mut s, &args(&["ID"])), Reply::Int(9));
        let setinfo = client(&mut s, &args(&["SETINFO", "LIB-NAME", "redis-py"]));
        assert_eq!(setinfo, Reply::ok());
        let bad = client(&mut s, &args(&["SETINFO", "color", "red"]));
        assert_eq!(bad, Reply::error("ERR Unrecognized option 'color'"));
        assert_eq!(select("0"), Reply::ok());
        assert_eq!(
            select("1"),
            Reply::error("ERR SELECT is not allowed in cluster mode")
        );
    }

    #[test]
    fn shards_become_maps_of_maps() {
        let flat = Reply::Array(vec![Reply::Array(vec![
            Reply::text("slots"),
            Reply::Array(vec![Reply::Int(0), Reply::Int(5)]),
            Reply::text("nodes"),
            Reply::Array(vec![Reply::Array(vec![
                Reply::text("id"),
                Reply::text("x"),
            ])]),
        ])]);
        let want = Reply::Array(vec![Reply::Map(vec![
            (
                Reply::text("slots"),
                Reply::Array(vec![Reply::Int(0), Reply::Int(5)]),
            ),
            (
                Reply::text("nodes"),
                Reply::Array(vec![Reply::Map(vec![(
                    Reply::text("id"),
                    Reply::text("x"),
                )])]),
            ),
        ])]);
        assert_eq!(shards_as_maps(flat), want);
    }
}
