//! Client-facing views in Redis's formats (specs/background.md §R8), so `redis-cli` and
//! cluster-aware clients can read them. Pure functions of a snapshot: nothing here decides
//! anything about the protocol.

use std::fmt::Write as _;

use redis_protocol::resp2::types::OwnedFrame;
use slotguard_protocol::state::{Health, Role};
use slotguard_protocol::NodeId;

use super::config::{Host, NodeConfig};
use super::wire::Rejection;
use super::Snapshot;

/// The 40-hex-character id clients see for node `i`: its random name (identity.rs).
pub(crate) fn node_name(s: &Snapshot, i: usize) -> String {
    s.names.id_of(i)
}

fn role_of(s: &Snapshot, i: usize) -> Role {
    if i == s.state.me.index() {
        s.state.role
    } else {
        s.state.peers[i].role
    }
}

fn health_of(s: &Snapshot, i: usize) -> Health {
    if i == s.state.me.index() {
        Health::Ok
    } else {
        s.state.peers[i].health
    }
}

/// The IP clients are told to reach node `i` on: its IP literal, or what its host name
/// resolved to, or the name itself until then.
pub(crate) fn ip_text(cfg: &NodeConfig, s: &Snapshot, i: usize) -> String {
    let ep = &cfg.nodes[i];
    match &ep.client.host {
        Host::Ip(ip) => ip.to_string(),
        Host::Name(name) => match s.addrs.get(i).copied().flatten() {
            Some(bus) if ep.bus.host == ep.client.host => bus.ip().to_string(),
            _ => name.clone(),
        },
    }
}

/// `,hostname` after the address in CLUSTER NODES (Redis 7) when the node is named so.
fn hostname_suffix(cfg: &NodeConfig, i: usize) -> String {
    match &cfg.nodes[i].client.host {
        Host::Name(name) => format!(",{name}"),
        Host::Ip(_) => String::new(),
    }
}

/// Contiguous runs `(start, end, owner)` of the slot map.
fn runs(s: &Snapshot) -> Vec<(u16, u16, Option<NodeId>)> {
    let mut out: Vec<(u16, u16, Option<NodeId>)> = Vec::new();
    for (slot, owner) in s.state.slots.iter() {
        match out.last_mut() {
            Some((_, end, o)) if *o == owner && *end + 1 == slot => *end = slot,
            _ => out.push((slot, slot, owner)),
        }
    }
    out
}

/// `CLUSTER NODES`.
pub(crate) fn cluster_nodes(cfg: &NodeConfig, s: &Snapshot) -> String {
    let mut text = String::new();
    for (i, ep) in cfg.nodes.iter().enumerate() {
        let role = role_of(s, i);
        let health = health_of(s, i);
        let mut flags = Vec::new();
        if i == s.state.me.index() {
            flags.push("myself");
        }
        flags.push(match role {
            Role::Master => "master",
            Role::Replica { .. } => "slave",
        });
        match health {
            Health::PFail => flags.push("fail?"),
            Health::Fail { .. } => flags.push("fail"),
            Health::Ok => {}
        }
        if i == s.state.me.index() && s.state.no_failover {
            flags.push("nofailover");
        }
        if s.names.name_of(i).is_none() {
            flags.push("handshake");
        }
        let master = match role {
            Role::Master => "-".to_string(),
            Role::Replica { of } => node_name(s, of.index()),
        };
        let peer = s.names.peer(i);
        let epoch = match role {
            Role::Master => s.state.epoch_of(NodeId(i as u16)),
            Role::Replica { of } => s.state.epoch_of(of),
        };
        let link = if health == Health::Ok {
            "connected"
        } else {
            "disconnected"
        };
        let _ = write!(
            text,
            "{} {}:{}@{}{} {} {} {} {} {} {}",
            node_name(s, i),
            ip_text(cfg, s, i),
            ep.client.port,
            ep.bus.port,
            hostname_suffix(cfg, i),
            flags.join(","),
            master,
            peer.ping_sent_ms,
            peer.pong_recv_ms,
            epoch,
            link
        );
        for (a, b, owner) in runs(s) {
            if owner == Some(NodeId(i as u16)) {
                if a == b {
                    let _ = write!(text, " {a}");
                } else {
                    let _ = write!(text, " {a}-{b}");
                }
            }
        }
        text.push('\n');
    }
    text
}

fn bulk(s: impl Into<String>) -> OwnedFrame {
    OwnedFrame::BulkString(s.into().into_bytes())
}

fn node_entry(cfg: &NodeConfig, s: &Snapshot, i: usize) -> OwnedFrame {
    OwnedFrame::Array(vec![
        bulk(ip_text(cfg, s, i)),
        OwnedFrame::Integer(i64::from(cfg.nodes[i].client.port)),
        bulk(node_name(s, i)),
        OwnedFrame::Array(vec![]),
    ])
}

/// Replicas of `master` in this view, healthy ones only.
fn replicas_of(s: &Snapshot, master: NodeId) -> Vec<usize> {
    (0..s.state.peers.len())
        .filter(|&i| role_of(s, i) == (Role::Replica { of: master }) && !health_of(s, i).is_fail())
        .collect()
}

/// `CLUSTER SLOTS`.
pub(crate) fn cluster_slots(cfg: &NodeConfig, s: &Snapshot) -> OwnedFrame {
    let mut entries = Vec::new();
    for (a, b, owner) in runs(s) {
        let Some(owner) = owner else { continue };
        let mut e = vec![
            OwnedFrame::Integer(i64::from(a)),
            OwnedFrame::Integer(i64::from(b)),
            node_entry(cfg, s, owner.index()),
        ];
        e.extend(
            replicas_of(s, owner)
                .into_iter()
                .map(|r| node_entry(cfg, s, r)),
        );
        entries.push(OwnedFrame::Array(e));
    }
    OwnedFrame::Array(entries)
}

/// Node `i`'s replication offset as last advertised (its own, for this node).
fn offset_of(s: &Snapshot, i: usize) -> i64 {
    let offset = s.state.peers.get(i).map_or(0, |p| p.repl_offset);
    i64::try_from(offset).unwrap_or(i64::MAX)
}

/// `CLUSTER SHARDS`.
pub(crate) fn cluster_shards(cfg: &NodeConfig, s: &Snapshot) -> OwnedFrame {
    let mut shards = Vec::new();
    for m in 0..cfg.nodes.len() {
        if role_of(s, m) != Role::Master {
            continue;
        }
        let master = NodeId(m as u16);
        let slots: Vec<OwnedFrame> = runs(s)
            .into_iter()
            .filter(|(_, _, o)| *o == Some(master))
            .flat_map(|(a, b, _)| {
                [
                    OwnedFrame::Integer(i64::from(a)),
                    OwnedFrame::Integer(i64::from(b)),
                ]
            })
            .collect();
        let members = std::iter::once(m).chain(
            (0..cfg.nodes.len()).filter(|&i| role_of(s, i) == (Role::Replica { of: master })),
        );
        let nodes: Vec<OwnedFrame> = members
            .map(|i| {
                let health = match health_of(s, i) {
                    Health::Fail { .. } => "fail",
                    _ => "online",
                };
                OwnedFrame::Array(vec![
                    bulk("id"),
                    bulk(node_name(s, i)),
                    bulk("port"),
                    OwnedFrame::Integer(i64::from(cfg.nodes[i].client.port)),
                    bulk("ip"),
                    bulk(ip_text(cfg, s, i)),
                    bulk("endpoint"),
                    bulk(ip_text(cfg, s, i)),
                    bulk("role"),
                    bulk(if i == m { "master" } else { "replica" }),
                    bulk("replication-offset"),
                    OwnedFrame::Integer(offset_of(s, i)),
                    bulk("health"),
                    bulk(health),
                ])
            })
            .collect();
        shards.push(OwnedFrame::Array(vec![
            bulk("slots"),
            OwnedFrame::Array(slots),
            bulk("nodes"),
            OwnedFrame::Array(nodes),
        ]));
    }
    OwnedFrame::Array(shards)
}

/// `CLUSTER PICTURE` (slotguard's own): this node's card as JSON, built by the explorer's
/// builder from the actor state (`slotguard_check::picture::node_card`), so the live view draws
/// exactly the explorer's card, election and failure reports included.
pub(crate) fn cluster_picture(cfg: &NodeConfig, s: &Snapshot) -> String {
    let me = s.state.me.index();
    let mut card = slotguard_check::picture::node_card(&s.state);
    card.name = Some(node_name(s, me).chars().take(8).collect());
    card.address = Some(format!(
        "{}:{}",
        ip_text(cfg, s, me),
        cfg.nodes[me].client.port
    ));
    card.extra.push(slotguard_check::picture::Fact {
        label: "cluster_state".to_string(),
        value: s.status.as_str().to_string(),
    });
    // A card is plain strings and numbers: serialising it cannot fail.
    serde_json::to_string(&card).unwrap_or_default()
}

/// `CLUSTER INFO`, with slotguard's datagram counters appended.
pub(crate) fn cluster_info(cfg: &NodeConfig, s: &Snapshot) -> String {
    let (mut assigned, mut ok, mut pfail, mut fail) = (0, 0, 0, 0);
    for (_, owner) in s.state.slots.iter() {
        let Some(o) = owner else { continue };
        assigned += 1;
        match health_of(s, o.index()) {
            Health::Ok => ok += 1,
            Health::PFail => pfail += 1,
            Health::Fail { .. } => fail += 1,
        }
    }
    let state = s.status.as_str();
    let mut text = format!(
        "cluster_enabled:1\r\ncluster_state:{state}\r\ncluster_slots_assigned:{assigned}\r\n\
         cluster_slots_ok:{ok}\r\ncluster_slots_pfail:{pfail}\r\ncluster_slots_fail:{fail}\r\n\
         cluster_known_nodes:{}\r\ncluster_size:{}\r\ncluster_current_epoch:{}\r\n\
         cluster_my_epoch:{}\r\nslotguard_last_vote_epoch:{}\r\nslotguard_incarnation:{}\r\n",
        cfg.nodes.len(),
        cfg.layout.shards(),
        s.state.current_epoch,
        s.state.advertised_config_epoch(),
        s.state.last_vote_epoch,
        s.incarnation,
    );
    for name in counter_names(s) {
        let value = s.counters.get(name).copied().unwrap_or(0);
        let _ = write!(text, "slotguard_{name}:{value}\r\n");
    }
    text
}

/// The runtime's datagram counters that are not rejections (the driver counts them), and the
/// bus bytes (the shell counts them).
const DATAGRAM_COUNTERS: [&str; 8] = [
    "datagrams_received",
    "datagrams_accepted",
    "datagrams_sent",
    "send_errors",
    "unsendable",
    "unresolved",
    "bus_bytes_sent",
    "bus_bytes_received",
];

/// Every counter, so that each is listed even while it is zero: the known ones, then any
/// other the runtime has counted.
pub(crate) fn counter_names(s: &Snapshot) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = DATAGRAM_COUNTERS.to_vec();
    names.extend(Rejection::ALL.iter().map(|r| r.name()));
    let known = names.clone();
    names.extend(s.counters.keys().filter(|k| !known.contains(k)));
    names
}

/// Process figures for `INFO`, kept by the client port.
#[derive(Clone, Debug)]
pub(crate) struct ServerStats {
    /// Seconds since the client port opened.
    pub(crate) uptime_secs: u64,
    /// Client connections now.
    pub(crate) connected_clients: usize,
    /// The `maxclients` limit.
    pub(crate) maxclients: usize,
    /// Bytes read from clients and not yet parsed, over all connections.
    pub(crate) query_buffers: usize,
    /// Resident memory of the process, in bytes.
    pub(crate) used_memory: u64,
    /// Replication as this node sees it.
    pub(crate) replication: Replication,
    /// Keys stored, and how many of them have an expiry time.
    pub(crate) keys: (usize, usize),
    /// Bytes the keys take as `maxmemory` counts them, and the `maxmemory` limit (0: none).
    pub(crate) dataset: (usize, usize),
}

/// `INFO replication`'s figures.
#[derive(Clone, Debug, Default)]
pub(crate) struct Replication {
    /// Where this node's stream ends: as a replica, the master offset applied.
    pub(crate) offset: u64,
    /// The stream's name (`master_replid`).
    pub(crate) id: String,
    /// The stream followed before the last promotion, and where it was left
    /// (`master_replid2`, `second_repl_offset`).
    pub(crate) previous: Option<(String, u64)>,
    /// The backlog: first offset kept, bytes kept, capacity.
    pub(crate) backlog: (u64, u64, usize),
    /// As a master: replicas attached, with the offset each last acknowledged and the seconds
    /// since.
    pub(crate) replicas: Vec<(Option<std::net::SocketAddr>, u64, u64)>,
    /// Good replicas, if `min_replicas_to_write` is set.
    pub(crate) good_replicas: Option<usize>,
    /// As a replica: whether the link to its master is up.
    pub(crate) link_up: bool,
    /// Replicas sent a full copy, that continued, and that asked to continue but could not.
    pub(crate) syncs: (u64, u64, u64),
}

/// `INFO replication` from `role:` on.
fn replication(cfg: &NodeConfig, s: &Snapshot, r: &Replication) -> String {
    let mut text = match s.state.role {
        Role::Master => "master\r\n".to_string(),
        Role::Replica { of } => format!(
            "slave\r\nmaster_host:{}\r\nmaster_port:{}\r\nmaster_link_status:{}\r\n\
             slave_repl_offset:{}\r\n",
            ip_text(cfg, s, of.index()),
            cfg.nodes[of.index()].client.port,
            if r.link_up { "up" } else { "down" },
            r.offset,
        ),
    };
    text.push_str(&format!("connected_slaves:{}\r\n", r.replicas.len()));
    // slotguard's own: when a write is acknowledged, and whether this node holds every write
    // its shard acknowledged (false after a restart in `sync` mode until a whole copy;
    // specs/protocol.md §13).
    text.push_str(&format!(
        "durability:{}\r\ndata_complete:{}\r\n",
        cfg.durability.name(),
        u8::from(s.state.data.complete)
    ));
    if let Some(good) = r.good_replicas {
        text.push_str(&format!("min_slaves_good_slaves:{good}\r\n"));
    }
    for (i, (addr, acked, lag)) in r.replicas.iter().enumerate() {
        let (ip, port) = addr.map_or((String::new(), 0), |a| (a.ip().to_string(), a.port()));
        text.push_str(&format!(
            "slave{i}:ip={ip},port={port},state=online,offset={acked},lag={lag}\r\n"
        ));
    }
    let (id2, offset2) = r.previous.clone().map_or(("0".repeat(40), -1), |(id, at)| {
        (id, i64::try_from(at).unwrap_or(-1))
    });
    let (first, histlen, size) = r.backlog;
    text.push_str(&format!(
        "master_replid:{}\r\nmaster_replid2:{id2}\r\nmaster_repl_offset:{}\r\n\
         second_repl_offset:{offset2}\r\nrepl_backlog_active:1\r\nrepl_backlog_size:{size}\r\n\
         repl_backlog_first_byte_offset:{first}\r\nrepl_backlog_histlen:{histlen}",
        r.id, r.offset
    ));
    text
}

/// `INFO keyspace`: Redis lists `db0` only when it has keys.
fn keyspace((keys, expires): (usize, usize)) -> String {
    match keys {
        0 => String::new(),
        _ => format!("db0:keys={keys},expires={expires},avg_ttl=0\r\n"),
    }
}

/// `INFO`.
pub(crate) fn info(cfg: &NodeConfig, s: &Snapshot, stats: &ServerStats) -> String {
    let role = replication(cfg, s, &stats.replication);
    let (full, partial, refused) = stats.replication.syncs;
    format!(
        "# Server\r\nslotguard_version:{}\r\nredis_mode:cluster\r\nrun_id:{}\r\ntcp_port:{}\r\n\
         uptime_in_seconds:{}\r\nuptime_in_days:{}\r\n\r\n\
         # Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nclient_query_buffers_bytes:{}\r\n\r\n\
         # Memory\r\nused_memory:{}\r\nused_memory_rss:{}\r\nused_memory_dataset:{}\r\nmaxmemory:{}\r\n\r\n\
         # Stats\r\nsync_full:{full}\r\nsync_partial_ok:{partial}\r\nsync_partial_err:{refused}\r\n\r\n\
         # Replication\r\nrole:{role}\r\n\r\n# Cluster\r\n{}\r\n# Keyspace\r\n{}",
        env!("CARGO_PKG_VERSION"),
        s.run_id,
        cfg.nodes[s.state.me.index()].client.port,
        stats.uptime_secs,
        stats.uptime_secs / 86_400,
        stats.connected_clients,
        stats.maxclients,
        stats.query_buffers,
        stats.used_memory,
        stats.used_memory,
        stats.dataset.0,
        stats.dataset.1,
        cluster_info(cfg, s),
        keyspace(stats.keys)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::identity::{NodeName, NAME_LEN};
    use crate::runtime::test_support::{self, snapshot};

    fn config() -> NodeConfig {
        test_support::config(3, 0, 0, &[7000, 7001, 7002])
    }

    #[test]
    fn cluster_nodes_shows_names_ping_and_pong_times_and_handshake_until_named() {
        let cfg = config();
        let mut s = snapshot(&cfg);
        let peer = NodeName([0xa1; NAME_LEN]);
        s.names.learn(NodeId(1), peer);
        s.names.ping_sent(1, 1_700_000_000_123);
        s.names.ping_sent(2, 1_700_000_000_200);
        s.names.pong_received(1, 1_700_000_000_456);
        s.names.ping_sent(1, 1_700_000_000_789);
        let text = cluster_nodes(&cfg, &s);
        let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
        assert_eq!(lines[0][0], "3f".repeat(20), "{text}");
        assert_eq!(lines[0][2], "myself,master");
        assert_eq!(lines[1][0], peer.to_string());
        assert_eq!(lines[1][4..6], ["1700000000789", "1700000000456"], "{text}");
        assert_eq!(lines[2][2], "master,handshake", "{text}");
        assert_eq!(lines[2][4..6], ["1700000000200", "0"], "{text}");
        let myid_in_info = info(
            &cfg,
            &s,
            &ServerStats {
                uptime_secs: 0,
                connected_clients: 0,
                maxclients: 1,
                query_buffers: 0,
                used_memory: 0,
                replication: Replication::default(),
                keys: (0, 0),
                dataset: (0, 0),
            },
        );
        assert!(myid_in_info.contains(&format!("run_id:{}\r\n", "ab".repeat(20))));
    }

    #[test]
    fn cluster_picture_is_the_explorers_card_of_this_node() {
        let cfg = config();
        let s = snapshot(&cfg);
        let card: slotguard_check::picture::NodeCard =
            serde_json::from_str(&cluster_picture(&cfg, &s)).expect("a card in JSON");
        assert_eq!(card.id, "n0");
        assert_eq!(card.address.as_deref(), Some("127.0.0.1:7000"));
        assert_eq!(card.name.as_deref(), Some("3f3f3f3f"));
        assert_eq!(
            card.election.map(|e| e.state).as_deref(),
            Some("idle"),
            "a node reports its election"
        );
        assert_eq!(card.extra[0].label, "cluster_state");
    }
}
