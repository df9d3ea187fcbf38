//! The key commands: parsed from a client's arguments into a typed [`KeyCommand`] (so that the
//! keys, and whether the command writes, are known before it runs: routing needs both), then
//! run against the node's [`Keyspace`]. Replies and error texts are Redis 7's, so clients that
//! match on them keep working.
//!
//! Relative expiry times (`SET ... EX`, `EXPIRE`) are made absolute when the command is parsed,
//! at the time the node received it, as Redis does before it propagates a write to replicas.

use bytes::Bytes;

use super::glob;
use super::keyslot::{key_slot, SLOT_COUNT};
use super::keyspace::{parse_i64, IncrError, Keyspace, SetCondition, SetExpiry, SetOutcome, Ttl};
use crate::reply::Reply;

/// Why a command was refused before it ran: its error reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// A fixed error text.
    Text(&'static str),
    /// `EXPIRE` with an option it does not know (Redis names it).
    UnsupportedOption(String),
}

impl From<&'static str> for CommandError {
    fn from(text: &'static str) -> CommandError {
        CommandError::Text(text)
    }
}

impl CommandError {
    /// The error reply.
    pub fn reply(&self) -> Reply {
        match self {
            CommandError::Text(text) => Reply::error(*text),
            CommandError::UnsupportedOption(option) => {
                Reply::error(format!("ERR Unsupported option {option}"))
            }
        }
    }
}

const SYNTAX: &str = "ERR syntax error";
const ARITY: &str = "ERR wrong number of arguments for this command";

/// The key commands and their arities as Redis 7 gives them (arguments including the name;
/// negative: at least that many). `parse` checks them itself, so that no argument list can make
/// it index past the end.
pub const ARITIES: &[(&str, i64)] = &[
    ("get", 2),
    ("set", -3),
    ("getdel", 2),
    ("del", -2),
    ("unlink", -2),
    ("exists", -2),
    ("incr", 2),
    ("decr", 2),
    ("incrby", 3),
    ("decrby", 3),
    ("append", 3),
    ("strlen", 2),
    ("mget", -2),
    ("mset", -3),
    ("expire", -3),
    ("pexpire", -3),
    ("expireat", -3),
    ("pexpireat", -3),
    ("persist", 2),
    ("ttl", 2),
    ("pttl", 2),
    ("type", 2),
    ("dbsize", 1),
    ("keys", 2),
    ("scan", -2),
    ("flushall", -1),
    ("flushdb", -1),
];

/// Whether `len` arguments fit `arity`.
fn fits(arity: i64, len: usize) -> bool {
    match arity >= 0 {
        true => len as i64 == arity,
        false => len as i64 >= -arity,
    }
}
const NOT_INTEGER: &str = "ERR value is not an integer or out of range";

/// A parsed key command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyCommand {
    /// `GET key`.
    Get(Bytes),
    /// `SET key value [NX|XX] [GET] [EX|PX|EXAT|PXAT t|KEEPTTL]`.
    Set {
        /// The key.
        key: Bytes,
        /// The value.
        value: Bytes,
        /// `NX`, `XX` or neither.
        condition: SetCondition,
        /// The expiry, made absolute.
        expiry: SetExpiry,
        /// `GET`: reply with the old value.
        get: bool,
    },
    /// `GETDEL key`.
    GetDel(Bytes),
    /// `DEL key...`, `UNLINK key...`.
    Del(Vec<Bytes>),
    /// `EXISTS key...`.
    Exists(Vec<Bytes>),
    /// `INCR`, `DECR`, `INCRBY`, `DECRBY`.
    IncrBy(Bytes, i64),
    /// `APPEND key value`.
    Append(Bytes, Bytes),
    /// `STRLEN key`.
    Strlen(Bytes),
    /// `MGET key...`.
    MGet(Vec<Bytes>),
    /// `MSET key value...`.
    MSet(Vec<(Bytes, Bytes)>),
    /// `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT` (made absolute), `PERSIST` (`None`).
    Expire {
        /// The key.
        key: Bytes,
        /// The new expiry time, or none.
        at: Option<u64>,
        /// `NX`, `XX`, `GT`, `LT`.
        when: ExpireWhen,
    },
    /// `TTL` (seconds) or `PTTL` (milliseconds).
    Ttl(Bytes, bool),
    /// `TYPE key`.
    Type(Bytes),
    /// `DBSIZE`.
    DbSize,
    /// `KEYS pattern`.
    Keys(Bytes),
    /// `SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]`.
    Scan {
        /// The slot to go on from.
        cursor: u16,
        /// `MATCH`.
        pattern: Option<Bytes>,
        /// `COUNT` (default 10).
        count: usize,
        /// `TYPE`: only `string` selects anything.
        strings: bool,
    },
    /// `FLUSHALL [ASYNC|SYNC]`, `FLUSHDB`.
    FlushAll,
}

/// `EXPIRE`'s conditions (Redis 7): all given must hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpireWhen {
    /// `NX`: only if the key has no expiry.
    no_expiry: bool,
    /// `XX`: only if the key has an expiry.
    has_expiry: bool,
    /// `GT`: only if the new time is later (no expiry counts as infinitely late).
    later: bool,
    /// `LT`: only if the new time is sooner.
    sooner: bool,
}

impl ExpireWhen {
    /// Whether an expiry may change from `current` to `at` (`None`: no expiry).
    fn allows(self, current: Option<u64>, at: Option<u64>) -> bool {
        let later = match (current, at) {
            (Some(current), Some(at)) => at > current,
            _ => false,
        };
        let sooner = match (current, at) {
            (None, Some(_)) => true,
            (Some(current), Some(at)) => at < current,
            _ => false,
        };
        (!self.no_expiry || current.is_none())
            && (!self.has_expiry || current.is_some())
            && (!self.later || later)
            && (!self.sooner || sooner)
    }
}

/// Limits the commands obey.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `maxmemory`: commands that may add data are refused above it (0: no limit).
    pub max_memory: usize,
    /// `proto-max-bulk-len`: the longest string `APPEND` may make.
    pub max_string: usize,
}

impl KeyCommand {
    /// Parses `args` (name first) received at `now` (ms since the epoch); `None` if the
    /// command is not a key command.
    pub fn parse(args: &[Bytes], now: u64) -> Option<Result<KeyCommand, CommandError>> {
        let name = args.first()?.to_ascii_lowercase();
        let &(_, arity) = ARITIES
            .iter()
            .find(|(n, _)| n.as_bytes() == name.as_slice())?;
        if !fits(arity, args.len()) {
            return Some(Err(ARITY.into()));
        }
        let rest = &args[1..];
        let key = || rest[0].clone();
        let parsed: Result<KeyCommand, CommandError> = match name.as_slice() {
            b"get" => Ok(KeyCommand::Get(key())),
            b"set" => parse_set(rest, now),
            b"getdel" => Ok(KeyCommand::GetDel(key())),
            b"del" | b"unlink" => Ok(KeyCommand::Del(rest.to_vec())),
            b"exists" => Ok(KeyCommand::Exists(rest.to_vec())),
            b"incr" => Ok(KeyCommand::IncrBy(key(), 1)),
            b"decr" => Ok(KeyCommand::IncrBy(key(), -1)),
            b"incrby" => integer(&rest[1]).map(|d| KeyCommand::IncrBy(key(), d)),
            b"decrby" => integer(&rest[1])
                .and_then(|d| d.checked_neg().ok_or("ERR decrement would overflow".into()))
                .map(|d| KeyCommand::IncrBy(key(), d)),
            b"append" => Ok(KeyCommand::Append(key(), rest[1].clone())),
            b"strlen" => Ok(KeyCommand::Strlen(key())),
            b"mget" => Ok(KeyCommand::MGet(rest.to_vec())),
            b"mset" => parse_mset(rest),
            b"expire" | b"pexpire" | b"expireat" | b"pexpireat" => parse_expire(&name, rest, now),
            b"persist" => Ok(KeyCommand::Expire {
                key: key(),
                at: None,
                when: ExpireWhen::default(),
            }),
            b"ttl" => Ok(KeyCommand::Ttl(key(), false)),
            b"pttl" => Ok(KeyCommand::Ttl(key(), true)),
            b"type" => Ok(KeyCommand::Type(key())),
            b"dbsize" => Ok(KeyCommand::DbSize),
            b"keys" => Ok(KeyCommand::Keys(key())),
            b"scan" => parse_scan(rest),
            b"flushall" | b"flushdb" => parse_flush(rest),
            _ => return None,
        };
        Some(parsed)
    }

    /// The keys the command touches (routing sends a command to the owner of their slot).
    pub fn keys(&self) -> Vec<&Bytes> {
        match self {
            KeyCommand::Get(k)
            | KeyCommand::Set { key: k, .. }
            | KeyCommand::GetDel(k)
            | KeyCommand::IncrBy(k, _)
            | KeyCommand::Append(k, _)
            | KeyCommand::Strlen(k)
            | KeyCommand::Expire { key: k, .. }
            | KeyCommand::Ttl(k, _)
            | KeyCommand::Type(k) => vec![k],
            KeyCommand::Del(keys) | KeyCommand::Exists(keys) | KeyCommand::MGet(keys) => {
                keys.iter().collect()
            }
            KeyCommand::MSet(pairs) => pairs.iter().map(|(k, _)| k).collect(),
            KeyCommand::DbSize
            | KeyCommand::Keys(_)
            | KeyCommand::Scan { .. }
            | KeyCommand::FlushAll => Vec::new(),
        }
    }

    /// The one slot of the command's keys: `Ok(None)` without keys, an error if they span
    /// several slots (`CROSSSLOT`).
    pub fn slot(&self) -> Result<Option<u16>, CommandError> {
        let mut slots = self.keys().into_iter().map(|k| key_slot(k));
        let Some(first) = slots.next() else {
            return Ok(None);
        };
        match slots.all(|s| s == first) {
            true => Ok(Some(first)),
            false => Err("CROSSSLOT Keys in request don't hash to the same slot".into()),
        }
    }

    /// Whether the command may change the keyspace.
    pub fn writes(&self) -> bool {
        !matches!(
            self,
            KeyCommand::Get(_)
                | KeyCommand::Exists(_)
                | KeyCommand::Strlen(_)
                | KeyCommand::MGet(_)
                | KeyCommand::Ttl(..)
                | KeyCommand::Type(_)
                | KeyCommand::DbSize
                | KeyCommand::Keys(_)
                | KeyCommand::Scan { .. }
        )
    }

    /// Whether the command may add data, and so is refused above `maxmemory` (Redis's
    /// `denyoom` flag).
    fn grows(&self) -> bool {
        matches!(
            self,
            KeyCommand::Set { .. }
                | KeyCommand::IncrBy(..)
                | KeyCommand::Append(..)
                | KeyCommand::MSet(_)
        )
    }

    /// Runs the command on `keys` at `now`.
    pub fn run(&self, keys: &mut Keyspace, limits: Limits, now: u64) -> Reply {
        if self.grows() && limits.max_memory > 0 && keys.used_memory() > limits.max_memory {
            return Reply::error("OOM command not allowed when used memory > 'maxmemory'.");
        }
        match self {
            KeyCommand::Get(k) => bulk_or_null(keys.get(k, now)),
            KeyCommand::Set {
                key,
                value,
                condition,
                expiry,
                get,
            } => match keys.set(key, value, *condition, *expiry, now) {
                SetOutcome::Stored(old) if *get => bulk_or_null(old.as_ref().map(|r| r.value())),
                SetOutcome::Stored(_) => Reply::ok(),
                SetOutcome::Refused if *get => bulk_or_null(keys.get(key, now)),
                SetOutcome::Refused => Reply::Null,
            },
            KeyCommand::GetDel(k) => bulk_or_null(keys.remove(k, now).as_ref().map(|r| r.value())),
            KeyCommand::Del(ks) => count(ks.iter().filter(|k| keys.remove(k, now).is_some())),
            KeyCommand::Exists(ks) => count(ks.iter().filter(|k| keys.contains(k, now))),
            KeyCommand::IncrBy(k, d) => match keys.incr_by(k, *d, now) {
                Ok(n) => Reply::Int(n),
                Err(IncrError::NotInteger) => Reply::error(NOT_INTEGER),
                Err(IncrError::Overflow) => {
                    Reply::error("ERR increment or decrement would overflow")
                }
            },
            KeyCommand::Append(k, suffix) => append(keys, k, suffix, limits, now),
            KeyCommand::Strlen(k) => Reply::Int(keys.get(k, now).map_or(0, |v| v.len() as i64)),
            KeyCommand::MGet(ks) => {
                Reply::Array(ks.iter().map(|k| bulk_or_null(keys.get(k, now))).collect())
            }
            KeyCommand::MSet(pairs) => {
                for (k, v) in pairs {
                    keys.set(k, v, SetCondition::Always, SetExpiry::Clear, now);
                }
                Reply::ok()
            }
            KeyCommand::Expire { key, at, when } => expire(keys, key, *at, *when, now),
            KeyCommand::Ttl(k, millis) => ttl(keys.ttl(k, now), *millis),
            KeyCommand::Type(k) => match keys.contains(k, now) {
                true => Reply::Simple("string".into()),
                false => Reply::Simple("none".into()),
            },
            KeyCommand::DbSize => Reply::Int(keys.len() as i64),
            KeyCommand::Keys(pattern) => {
                Reply::Array(matching(keys, 0, usize::MAX, Some(pattern), now).0)
            }
            KeyCommand::Scan {
                cursor,
                pattern,
                count,
                strings,
            } => scan(keys, *cursor, pattern.as_ref(), *count, *strings, now),
            KeyCommand::FlushAll => {
                keys.clear();
                Reply::ok()
            }
        }
    }
}

fn parse_set(rest: &[Bytes], now: u64) -> Result<KeyCommand, CommandError> {
    let (mut condition, mut expiry, mut get) = (SetCondition::Always, SetExpiry::Clear, false);
    let mut expiry_option: Option<Vec<u8>> = None;
    let mut options = rest[2..].iter();
    while let Some(option) = options.next() {
        let option = option.to_ascii_uppercase();
        match option.as_slice() {
            b"NX" if condition != SetCondition::IfPresent => condition = SetCondition::IfAbsent,
            b"XX" if condition != SetCondition::IfAbsent => condition = SetCondition::IfPresent,
            b"GET" => get = true,
            b"KEEPTTL" if expiry_option.as_ref().is_none_or(|o| o == b"KEEPTTL") => {
                expiry = SetExpiry::Keep;
                expiry_option = Some(option);
            }
            b"EX" | b"PX" | b"EXAT" | b"PXAT"
                if expiry_option.as_ref().is_none_or(|o| *o == option) =>
            {
                let value = options.next().ok_or(SYNTAX)?;
                expiry = SetExpiry::At(expiry_time(&option, value, now, "set")?);
                expiry_option = Some(option);
            }
            _ => return Err(SYNTAX.into()),
        }
    }
    Ok(KeyCommand::Set {
        key: rest[0].clone(),
        value: rest[1].clone(),
        condition,
        expiry,
        get,
    })
}

/// An expiry argument made absolute: `unit` is the option or command name that says whether it
/// is relative and in seconds (`EX`, `EXPIRE`), or absolute and in milliseconds (`PXAT`, ...).
fn expiry_time(unit: &[u8], value: &[u8], now: u64, command: &str) -> Result<u64, CommandError> {
    let invalid = match command {
        "set" => "ERR invalid expire time in 'set' command",
        "expire" => "ERR invalid expire time in 'expire' command",
        "pexpire" => "ERR invalid expire time in 'pexpire' command",
        "expireat" => "ERR invalid expire time in 'expireat' command",
        _ => "ERR invalid expire time in 'pexpireat' command",
    };
    let n = parse_i64(value).ok_or(NOT_INTEGER)?;
    let unit = unit.to_ascii_uppercase();
    if command == "set" && n <= 0 {
        return Err(invalid.into());
    }
    let seconds = matches!(unit.as_slice(), b"EX" | b"EXAT" | b"EXPIRE" | b"EXPIREAT");
    let relative = matches!(unit.as_slice(), b"EX" | b"PX" | b"EXPIRE" | b"PEXPIRE");
    let millis = match seconds {
        true => n.checked_mul(1000).ok_or(invalid)?,
        false => n,
    };
    let at = match relative {
        true => millis.checked_add(now as i64).ok_or(invalid)?,
        false => millis,
    };
    Ok(at.max(0) as u64)
}

fn parse_mset(rest: &[Bytes]) -> Result<KeyCommand, CommandError> {
    if !rest.len().is_multiple_of(2) {
        return Err("ERR wrong number of arguments for 'mset' command".into());
    }
    Ok(KeyCommand::MSet(
        rest.chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect(),
    ))
}

fn parse_expire(name: &[u8], rest: &[Bytes], now: u64) -> Result<KeyCommand, CommandError> {
    let command = std::str::from_utf8(name).unwrap_or("expire");
    let at = expiry_time(name, &rest[1], now, command)?;
    let mut when = ExpireWhen::default();
    for option in &rest[2..] {
        match option.to_ascii_uppercase().as_slice() {
            b"NX" => when.no_expiry = true,
            b"XX" => when.has_expiry = true,
            b"GT" => when.later = true,
            b"LT" => when.sooner = true,
            _ => {
                let option = String::from_utf8_lossy(option).into_owned();
                return Err(CommandError::UnsupportedOption(option));
            }
        }
    }
    if when.no_expiry && (when.has_expiry || when.later || when.sooner) {
        return Err("ERR NX and XX, GT or LT options at the same time are not compatible".into());
    }
    if when.later && when.sooner {
        return Err("ERR GT and LT options at the same time are not compatible".into());
    }
    Ok(KeyCommand::Expire {
        key: rest[0].clone(),
        at: Some(at),
        when,
    })
}

fn parse_scan(rest: &[Bytes]) -> Result<KeyCommand, CommandError> {
    // As Redis's strtoul: a negative cursor wraps to a huge one, which ends the scan.
    let cursor = std::str::from_utf8(&rest[0])
        .ok()
        .and_then(|c| {
            c.parse::<u64>()
                .ok()
                .or_else(|| c.parse::<i64>().ok().map(|n| n as u64))
        })
        .ok_or("ERR invalid cursor")?;
    let (mut pattern, mut count, mut strings) = (None, 10, true);
    let mut options = rest[1..].chunks(2);
    for pair in options.by_ref() {
        let [option, value] = pair else {
            return Err(SYNTAX.into());
        };
        match option.to_ascii_uppercase().as_slice() {
            b"MATCH" => pattern = Some(value.clone()),
            b"COUNT" => {
                let n = parse_i64(value).ok_or(NOT_INTEGER)?;
                if n < 1 {
                    return Err(SYNTAX.into());
                }
                count = n as usize;
            }
            b"TYPE" => strings = value.eq_ignore_ascii_case(b"string"),
            _ => return Err(SYNTAX.into()),
        }
    }
    let cursor = u16::try_from(cursor).unwrap_or(SLOT_COUNT).min(SLOT_COUNT);
    Ok(KeyCommand::Scan {
        cursor,
        pattern,
        count,
        strings,
    })
}

fn parse_flush(rest: &[Bytes]) -> Result<KeyCommand, CommandError> {
    match rest {
        [] => Ok(KeyCommand::FlushAll),
        [mode] if mode.eq_ignore_ascii_case(b"async") || mode.eq_ignore_ascii_case(b"sync") => {
            Ok(KeyCommand::FlushAll)
        }
        _ => Err(SYNTAX.into()),
    }
}

fn integer(arg: &[u8]) -> Result<i64, CommandError> {
    parse_i64(arg).ok_or(NOT_INTEGER.into())
}

fn bulk_or_null(value: Option<&[u8]>) -> Reply {
    value.map_or(Reply::Null, |v| Reply::Bulk(v.to_vec()))
}

fn count<T>(items: impl Iterator<Item = T>) -> Reply {
    Reply::Int(items.count() as i64)
}

fn append(keys: &mut Keyspace, key: &Bytes, suffix: &Bytes, limits: Limits, now: u64) -> Reply {
    let current = keys.get(key, now).map_or(0, <[u8]>::len);
    if current + suffix.len() > limits.max_string {
        return Reply::error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    }
    Reply::Int(keys.append(key, suffix, now) as i64)
}

fn expire(keys: &mut Keyspace, key: &Bytes, at: Option<u64>, when: ExpireWhen, now: u64) -> Reply {
    let current = match keys.ttl(key, now) {
        Ttl::Missing => return Reply::Int(0),
        Ttl::Persistent => None,
        Ttl::Millis(left) => Some(now + left),
    };
    if !when.allows(current, at) || (at.is_none() && current.is_none()) {
        return Reply::Int(0);
    }
    Reply::Int(i64::from(keys.set_expiry(key, at, now)))
}

fn ttl(ttl: Ttl, millis: bool) -> Reply {
    Reply::Int(match ttl {
        Ttl::Missing => -2,
        Ttl::Persistent => -1,
        Ttl::Millis(ms) if millis => ms as i64,
        Ttl::Millis(ms) => (ms.saturating_add(500) / 1000) as i64,
    })
}

/// Live keys from slot `from` on that match `pattern`, about `count` of them (a whole slot at a
/// time), and the slot to go on from.
fn matching(
    keys: &Keyspace,
    from: u16,
    count: usize,
    pattern: Option<&Bytes>,
    now: u64,
) -> (Vec<Reply>, Option<u16>) {
    let (found, next) = keys.scan(from, count, now);
    let selected = found
        .into_iter()
        .filter(|k| pattern.is_none_or(|p| glob::matches(p, k)))
        .map(|k| Reply::Bulk(k.to_vec()))
        .collect();
    (selected, next)
}

fn scan(
    keys: &Keyspace,
    cursor: u16,
    pattern: Option<&Bytes>,
    count: usize,
    strings: bool,
    now: u64,
) -> Reply {
    let (found, next) = match cursor < SLOT_COUNT {
        true => matching(keys, cursor, count, pattern, now),
        false => (Vec::new(), None),
    };
    let found = if strings { found } else { Vec::new() };
    let next = next.map_or(0, u64::from);
    Reply::Array(vec![Reply::text(next.to_string()), Reply::Array(found)])
}

#[cfg(test)]
#[path = "commands_tests.rs"]
mod tests;
