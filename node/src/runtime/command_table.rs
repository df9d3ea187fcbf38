//! The commands the client port answers, described as Redis 7 describes its own, and the
//! replies of `COMMAND`, `COMMAND INFO`, `COMMAND DOCS` and `COMMAND COUNT` built from that.
//!
//! Why: cluster clients read `COMMAND` before anything else (redis-py's `RedisCluster` learns
//! each command's key positions from it and refuses to start without it), and the dispatcher
//! checks arity against the same table, so what `COMMAND` says is what the port does.

use super::reply::Reply;

/// One command or subcommand, in the fields of Redis 7's `COMMAND INFO` and `COMMAND DOCS`.
pub(crate) struct Spec {
    /// Lower case; subcommands as `container|sub`.
    pub(crate) name: &'static str,
    /// Arguments including the name; negative: at least that many.
    pub(crate) arity: i64,
    flags: &'static [&'static str],
    acl: &'static [&'static str],
    tips: &'static [&'static str],
    summary: &'static str,
    since: &'static str,
    group: &'static str,
    complexity: &'static str,
    /// Subcommands of a container command.
    pub(crate) subcommands: &'static [Spec],
    /// First key, last key (negative: from the end) and step between keys, as `COMMAND INFO`
    /// gives them: cluster clients find a command's keys, and so its slot, from these.
    keys: [i64; 3],
}

const CONN: &[&str] = &["@fast", "@connection"];
const SLOW_CONN: &[&str] = &["@slow", "@connection"];
const ADMIN_FLAGS: &[&str] = &["loading", "stale"];
const CONN_FLAGS: &[&str] = &["noscript", "loading", "stale"];
/// Commands a client may send before it authenticates and while the server is busy.
const HANDSHAKE_FLAGS: &[&str] = &[
    "noscript",
    "loading",
    "stale",
    "fast",
    "no_auth",
    "allow_busy",
];

const fn spec(
    name: &'static str,
    arity: i64,
    flags: &'static [&'static str],
    acl: &'static [&'static str],
    summary: &'static str,
    group: &'static str,
) -> Spec {
    Spec {
        name,
        arity,
        flags,
        acl,
        tips: &[],
        summary,
        since: "1.0.0",
        group,
        complexity: "O(1)",
        subcommands: &[],
        keys: [0, 0, 0],
    }
}

/// A key command: Redis 7's flags and key positions, introduced in `since`.
#[allow(clippy::too_many_arguments)]
const fn key_command(
    name: &'static str,
    arity: i64,
    flags: &'static [&'static str],
    acl: &'static [&'static str],
    summary: &'static str,
    group: &'static str,
    since: &'static str,
    keys: [i64; 3],
) -> Spec {
    let mut s = spec(name, arity, flags, acl, summary, group);
    s.since = since;
    s.keys = keys;
    s
}

const READ: &[&str] = &["readonly", "fast"];
const WRITE_FAST: &[&str] = &["write", "fast"];
const WRITE_GROW: &[&str] = &["write", "denyoom"];
const WRITE_GROW_FAST: &[&str] = &["write", "denyoom", "fast"];
const STRING_READ: &[&str] = &["@read", "@string", "@fast"];
const STRING_WRITE: &[&str] = &["@write", "@string", "@fast"];
const STRING_WRITE_SLOW: &[&str] = &["@write", "@string", "@slow"];
const KEYSPACE_READ: &[&str] = &["@keyspace", "@read", "@fast"];
const KEYSPACE_WRITE: &[&str] = &["@keyspace", "@write", "@fast"];
const ONE_KEY: [i64; 3] = [1, 1, 1];
const EVERY_KEY: [i64; 3] = [1, -1, 1];
const NO_KEY: [i64; 3] = [0, 0, 0];

/// The key commands (`slotguard::data::commands`), served by keys.rs.
const KEY_COMMANDS: &[Spec] = &[
    key_command("append", 3, WRITE_GROW_FAST, STRING_WRITE, "Appends a string to the value of a key. Creates the key if it doesn't exist.", "string", "2.0.0", ONE_KEY),
    key_command("decr", 2, WRITE_GROW_FAST, STRING_WRITE, "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", "string", "1.0.0", ONE_KEY),
    key_command("decrby", 3, WRITE_GROW_FAST, STRING_WRITE, "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", "string", "1.0.0", ONE_KEY),
    key_command("del", -2, &["write"], &["@keyspace", "@write", "@slow"], "Deletes one or more keys.", "generic", "1.0.0", EVERY_KEY),
    key_command("exists", -2, READ, KEYSPACE_READ, "Determines whether one or more keys exist.", "generic", "1.0.0", EVERY_KEY),
    key_command("expire", -3, WRITE_FAST, KEYSPACE_WRITE, "Sets the expiration time of a key in seconds.", "generic", "1.0.0", ONE_KEY),
    key_command("expireat", -3, WRITE_FAST, KEYSPACE_WRITE, "Sets the expiration time of a key to a Unix timestamp.", "generic", "1.2.0", ONE_KEY),
    key_command("flushall", -1, &["write"], &["@keyspace", "@write", "@slow", "@dangerous"], "Removes all keys from all databases.", "server", "1.0.0", NO_KEY),
    key_command("flushdb", -1, &["write"], &["@keyspace", "@write", "@slow", "@dangerous"], "Remove all keys from the current database.", "server", "1.0.0", NO_KEY),
    key_command("get", 2, READ, STRING_READ, "Returns the string value of a key.", "string", "1.0.0", ONE_KEY),
    key_command("getdel", 2, WRITE_FAST, STRING_WRITE, "Returns the string value of a key after deleting the key.", "string", "6.2.0", ONE_KEY),
    key_command("incr", 2, WRITE_GROW_FAST, STRING_WRITE, "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", "string", "1.0.0", ONE_KEY),
    key_command("incrby", 3, WRITE_GROW_FAST, STRING_WRITE, "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", "string", "1.0.0", ONE_KEY),
    key_command("keys", 2, &["readonly"], &["@keyspace", "@read", "@slow", "@dangerous"], "Returns all key names that match a pattern.", "generic", "1.0.0", NO_KEY),
    key_command("mget", -2, READ, STRING_READ, "Atomically returns the string values of one or more keys.", "string", "1.0.0", EVERY_KEY),
    key_command("mset", -3, WRITE_GROW, STRING_WRITE_SLOW, "Atomically creates or modifies the string values of one or more keys.", "string", "1.0.1", [1, -1, 2]),
    key_command("persist", 2, WRITE_FAST, KEYSPACE_WRITE, "Removes the expiration time of a key.", "generic", "2.2.0", ONE_KEY),
    key_command("pexpire", -3, WRITE_FAST, KEYSPACE_WRITE, "Sets the expiration time of a key in milliseconds.", "generic", "2.6.0", ONE_KEY),
    key_command("pexpireat", -3, WRITE_FAST, KEYSPACE_WRITE, "Sets the expiration time of a key to a Unix milliseconds timestamp.", "generic", "2.6.0", ONE_KEY),
    key_command("pttl", 2, READ, KEYSPACE_READ, "Returns the expiration time in milliseconds of a key.", "generic", "2.6.0", ONE_KEY),
    key_command("scan", -2, &["readonly"], &["@keyspace", "@read", "@slow"], "Iterates over the key names in the database.", "generic", "2.8.0", NO_KEY),
    key_command("set", -3, WRITE_GROW, STRING_WRITE_SLOW, "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", "string", "1.0.0", ONE_KEY),
    key_command("strlen", 2, READ, STRING_READ, "Returns the length of a string value.", "string", "2.2.0", ONE_KEY),
    key_command("ttl", 2, READ, KEYSPACE_READ, "Returns the expiration time in seconds of a key.", "generic", "1.0.0", ONE_KEY),
    key_command("type", 2, READ, KEYSPACE_READ, "Determines the type of value stored at a key.", "generic", "1.0.0", ONE_KEY),
    key_command("unlink", -2, WRITE_FAST, KEYSPACE_WRITE, "Asynchronously deletes one or more keys.", "generic", "4.0.0", EVERY_KEY),
];

const fn since(mut s: Spec, version: &'static str) -> Spec {
    s.since = version;
    s
}

const fn tips(mut s: Spec, tips: &'static [&'static str]) -> Spec {
    s.tips = tips;
    s
}

const fn complexity(mut s: Spec, text: &'static str) -> Spec {
    s.complexity = text;
    s
}

const CLUSTER_SUBS: &[Spec] = &[
    since(
        spec(
            "cluster|failover",
            -2,
            ADMIN_FLAGS,
            &["@admin", "@slow", "@dangerous"],
            "Forces a replica to perform a manual failover of its master.",
            "cluster",
        ),
        "3.0.0",
    ),
    since(
        tips(
            spec(
                "cluster|info",
                2,
                &["stale"],
                &["@slow"],
                "Returns information about the state of a node.",
                "cluster",
            ),
            &["nondeterministic_output"],
        ),
        "3.0.0",
    ),
    since(
        spec(
            "cluster|myid",
            2,
            &["stale"],
            &["@slow"],
            "Returns the ID of a node.",
            "cluster",
        ),
        "3.0.0",
    ),
    complexity(
        since(
            tips(
                spec(
                    "cluster|nodes",
                    2,
                    &["stale"],
                    &["@slow"],
                    "Returns the cluster configuration for a node.",
                    "cluster",
                ),
                &["nondeterministic_output"],
            ),
            "3.0.0",
        ),
        "O(N) where N is the total number of Cluster nodes",
    ),
    complexity(
        since(
            tips(
                spec(
                    "cluster|shards",
                    2,
                    ADMIN_FLAGS,
                    &["@slow"],
                    "Returns the mapping of cluster slots to shards.",
                    "cluster",
                ),
                &["nondeterministic_output"],
            ),
            "7.0.0",
        ),
        "O(N) where N is the total number of cluster nodes",
    ),
    complexity(
        since(
            tips(
                spec(
                    "cluster|slots",
                    2,
                    ADMIN_FLAGS,
                    &["@slow"],
                    "Returns the mapping of cluster slots to nodes.",
                    "cluster",
                ),
                &["nondeterministic_output"],
            ),
            "3.0.0",
        ),
        "O(N) where N is the total number of Cluster nodes",
    ),
    since(
        spec(
            "cluster|countkeysinslot",
            3,
            &["stale"],
            &["@slow"],
            "Returns the number of keys in a hash slot.",
            "cluster",
        ),
        "3.0.0",
    ),
    since(
        spec(
            "cluster|getkeysinslot",
            4,
            &["stale"],
            &["@slow"],
            "Returns the key names in a hash slot.",
            "cluster",
        ),
        "3.0.0",
    ),
    since(
        spec(
            "cluster|keyslot",
            3,
            &["stale"],
            &["@slow"],
            "Returns the hash slot for a key.",
            "cluster",
        ),
        "3.0.0",
    ),
    // slotguard's own: the node's card of the live view, as JSON (format.rs).
    since(
        tips(
            spec(
                "cluster|picture",
                2,
                &["stale"],
                &["@slow"],
                "Returns this node's card (its view, election and failure reports) as JSON.",
                "cluster",
            ),
            &["nondeterministic_output"],
        ),
        "0.1.0",
    ),
    since(
        spec(
            "cluster|accept-data-loss",
            2,
            ADMIN_FLAGS,
            &["@admin", "@slow", "@dangerous"],
            "On a master that restarted without its data in sync mode, with no replica left holding it: serve what it has (nothing) as the shard's data.",
            "cluster",
        ),
        "0.1.0",
    ),
];

const CLIENT_SUBS: &[Spec] = &[
    since(
        spec(
            "client|getname",
            2,
            CONN_FLAGS,
            SLOW_CONN,
            "Returns the name of the connection.",
            "connection",
        ),
        "2.6.9",
    ),
    since(
        spec(
            "client|id",
            2,
            CONN_FLAGS,
            SLOW_CONN,
            "Returns the unique client ID of the connection.",
            "connection",
        ),
        "5.0.0",
    ),
    since(
        spec(
            "client|setinfo",
            4,
            CONN_FLAGS,
            SLOW_CONN,
            "Sets information specific to the client or connection.",
            "connection",
        ),
        "7.2.0",
    ),
    since(
        spec(
            "client|setname",
            3,
            CONN_FLAGS,
            SLOW_CONN,
            "Sets the connection name.",
            "connection",
        ),
        "2.6.9",
    ),
];

const COMMAND_SUBS: &[Spec] = &[
    since(
        spec(
            "command|count",
            2,
            ADMIN_FLAGS,
            SLOW_CONN,
            "Returns a count of commands.",
            "server",
        ),
        "2.8.13",
    ),
    complexity(
        since(
            tips(
                spec(
                    "command|docs",
                    -2,
                    ADMIN_FLAGS,
                    SLOW_CONN,
                    "Returns documentary information about one, multiple or all commands.",
                    "server",
                ),
                &["nondeterministic_output_order"],
            ),
            "7.0.0",
        ),
        "O(N) where N is the number of commands to look up",
    ),
    complexity(
        since(
            tips(
                spec(
                    "command|info",
                    -2,
                    ADMIN_FLAGS,
                    SLOW_CONN,
                    "Returns information about one, multiple or all commands.",
                    "server",
                ),
                &["nondeterministic_output_order"],
            ),
            "2.8.13",
        ),
        "O(N) where N is the number of commands to look up",
    ),
];

/// Every command of the client port.
pub(crate) const COMMANDS: &[Spec] = &[
    Spec {
        subcommands: CLIENT_SUBS,
        ..spec(
            "client",
            -2,
            &[],
            &["@slow"],
            "A container for client connection commands.",
            "connection",
        )
    },
    Spec {
        subcommands: CLUSTER_SUBS,
        ..since(
            spec(
                "cluster",
                -2,
                &[],
                &["@slow"],
                "A container for Redis Cluster commands.",
                "cluster",
            ),
            "3.0.0",
        )
    },
    Spec {
        subcommands: COMMAND_SUBS,
        ..complexity(
            since(
                tips(
                    spec(
                        "command",
                        -1,
                        ADMIN_FLAGS,
                        SLOW_CONN,
                        "Returns detailed information about all commands.",
                        "server",
                    ),
                    &["nondeterministic_output_order"],
                ),
                "2.8.13",
            ),
            "O(N) where N is the total number of Redis commands",
        )
    },
    tips(
        spec(
            "dbsize",
            1,
            &["readonly", "fast"],
            &["@keyspace", "@read", "@fast"],
            "Returns the number of keys in the database.",
            "server",
        ),
        &["request_policy:all_shards", "response_policy:agg_sum"],
    ),
    spec(
        "echo",
        2,
        &["loading", "stale", "fast"],
        CONN,
        "Returns the given string.",
        "connection",
    ),
    since(
        spec(
            "hello",
            -1,
            HANDSHAKE_FLAGS,
            CONN,
            "Handshakes with the Redis server.",
            "connection",
        ),
        "6.0.0",
    ),
    tips(
        spec(
            "info",
            -1,
            ADMIN_FLAGS,
            &["@slow", "@dangerous"],
            "Returns information and statistics about the server.",
            "server",
        ),
        &[
            "nondeterministic_output",
            "request_policy:all_shards",
            "response_policy:special",
        ],
    ),
    tips(
        spec(
            "ping",
            -1,
            &["fast"],
            CONN,
            "Returns the server's liveliness response.",
            "connection",
        ),
        &["request_policy:all_shards", "response_policy:all_succeeded"],
    ),
    spec(
        "quit",
        -1,
        HANDSHAKE_FLAGS,
        CONN,
        "Closes the connection.",
        "connection",
    ),
    since(
        spec(
            "readonly",
            1,
            &["loading", "stale", "fast"],
            CONN,
            "Enables read-only queries for a connection to a Redis Cluster replica node.",
            "cluster",
        ),
        "3.0.0",
    ),
    since(
        spec(
            "readwrite",
            1,
            &["loading", "stale", "fast"],
            CONN,
            "Enables read-write queries for a connection to a Redis Cluster replica node.",
            "cluster",
        ),
        "3.0.0",
    ),
    spec(
        "select",
        2,
        &["loading", "stale", "fast"],
        CONN,
        "Changes the selected database.",
        "connection",
    ),
    spec(
        "psync",
        -3,
        &["admin", "noscript", "no_async_loading", "no_multi"],
        &["@admin", "@slow", "@dangerous"],
        "An internal command used in replication.",
        "server",
    ),
    spec(
        "sync",
        1,
        &["admin", "noscript", "no_async_loading", "no_multi"],
        &["@admin", "@slow", "@dangerous"],
        "An internal command used in replication.",
        "server",
    ),
    tips(
        since(
            spec(
                "wait",
                3,
                &["noscript"],
                &["@slow", "@connection"],
                "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.",
                "generic",
            ),
            "3.0.0",
        ),
        &["request_policy:all_shards", "response_policy:agg_min"],
    ),
];

/// The command named `name` (any case).
pub(crate) fn find(name: &str) -> Option<&'static Spec> {
    let name = name.to_ascii_lowercase();
    all().find(|c| c.name == name)
}

/// Every command: the node's own, then the key commands.
fn all() -> impl Iterator<Item = &'static Spec> {
    COMMANDS.iter().chain(KEY_COMMANDS)
}

impl Spec {
    /// The subcommand `sub` (any case) of this container.
    pub(crate) fn sub(&self, sub: &str) -> Option<&'static Spec> {
        let full = format!("{}|{}", self.name, sub.to_ascii_lowercase());
        self.subcommands.iter().find(|s| s.name == full)
    }

    /// Whether `argc` arguments (the name included) fit the arity.
    pub(crate) fn arity_fits(&self, argc: usize) -> bool {
        let argc = i64::try_from(argc).unwrap_or(i64::MAX);
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }

    /// The `COMMAND INFO` entry: name, arity, flags, first key, last key, step, ACL
    /// categories, tips, key specs (none: the first/last/step fields say where the keys are),
    /// subcommands.
    pub(crate) fn info(&self) -> Reply {
        let status = |v: &[&str]| v.iter().map(|s| Reply::Simple((*s).into())).collect();
        Reply::Array(vec![
            Reply::text(self.name),
            Reply::Int(self.arity),
            Reply::Set(status(self.flags)),
            Reply::Int(self.keys[0]),
            Reply::Int(self.keys[1]),
            Reply::Int(self.keys[2]),
            Reply::Set(status(self.acl)),
            Reply::Array(self.tips.iter().map(|t| Reply::text(*t)).collect()),
            Reply::Array(vec![]),
            Reply::Array(self.subcommands.iter().map(Spec::info).collect()),
        ])
    }

    /// The `COMMAND DOCS` entry: summary, since, group, complexity, and subcommands.
    pub(crate) fn docs(&self) -> Reply {
        let mut fields = vec![
            (Reply::text("summary"), Reply::text(self.summary)),
            (Reply::text("since"), Reply::text(self.since)),
            (Reply::text("group"), Reply::text(self.group)),
            (Reply::text("complexity"), Reply::text(self.complexity)),
        ];
        if !self.subcommands.is_empty() {
            let subs = self
                .subcommands
                .iter()
                .map(|s| (Reply::text(s.name), s.docs()));
            fields.push((Reply::text("subcommands"), Reply::Map(subs.collect())));
        }
        Reply::Map(fields)
    }
}

/// `COMMAND [COUNT | INFO [name ...] | DOCS [name ...]]`; `args` follow `COMMAND`.
pub(crate) fn command(args: &[String]) -> Reply {
    let sub = args.first().map(|s| s.to_ascii_uppercase());
    let named = args.get(1..).unwrap_or_default();
    match sub.as_deref() {
        None => Reply::Array(all().map(Spec::info).collect()),
        Some("COUNT") => Reply::Int(i64::try_from(all().count()).unwrap_or(i64::MAX)),
        Some("INFO") if named.is_empty() => command(&[]),
        Some("INFO") => Reply::Array(
            named
                .iter()
                .map(|n| find(n).map_or(Reply::Null, Spec::info))
                .collect(),
        ),
        Some("DOCS") => {
            let chosen: Vec<&Spec> = if named.is_empty() {
                all().collect()
            } else {
                named.iter().filter_map(|n| find(n)).collect()
            };
            Reply::Map(
                chosen
                    .into_iter()
                    .map(|c| (Reply::text(c.name), c.docs()))
                    .collect(),
            )
        }
        Some(other) => Reply::error(format!(
            "ERR unknown subcommand '{}'. Try COMMAND HELP.",
            super::commands::clip(other, 128)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_and_subcommand_is_named_as_redis_names_them() {
        for c in COMMANDS {
            assert_eq!(c.name, c.name.to_ascii_lowercase());
            for s in c.subcommands {
                assert!(s.name.starts_with(&format!("{}|", c.name)), "{}", s.name);
                assert!(s.arity.abs() >= 2, "{}", s.name);
            }
        }
        assert_eq!(command(&["count".into()]), Reply::Int(41));
    }

    #[test]
    fn the_key_commands_are_described_with_the_arities_they_are_parsed_with() {
        for &(name, arity) in slotguard::data::commands::ARITIES {
            let spec = find(name).unwrap_or_else(|| panic!("{name} is described"));
            assert_eq!(spec.arity, arity, "{name}");
            let keyless = matches!(name, "dbsize" | "keys" | "scan" | "flushall" | "flushdb");
            assert_eq!(spec.keys[0] == 0, keyless, "{name}'s first key");
        }
    }

    #[test]
    fn command_info_has_redis_7s_ten_fields_and_null_for_unknown_names() {
        let Reply::Array(entries) = command(&["INFO".into(), "ping".into(), "nope".into()]) else {
            panic!("an array");
        };
        let Reply::Array(ping) = &entries[0] else {
            panic!("an entry");
        };
        assert_eq!(ping.len(), 10);
        assert_eq!(ping[0], Reply::text("ping"));
        assert_eq!(ping[1], Reply::Int(-1));
        assert_eq!(entries[1], Reply::Null);
    }

    #[test]
    fn arity_is_exact_when_positive_and_a_minimum_when_negative() {
        let echo = find("ECHO").expect("echo");
        assert!(echo.arity_fits(2) && !echo.arity_fits(1) && !echo.arity_fits(3));
        let ping = find("ping").expect("ping");
        assert!(ping.arity_fits(1) && ping.arity_fits(2));
        let cluster = find("cluster").expect("cluster");
        assert_eq!(cluster.sub("NODES").map(|s| s.name), Some("cluster|nodes"));
        assert!(cluster.sub("addslots").is_none());
    }
}
