//! The key commands against a real Redis: a script of commands, with the replies a
//! redis-server 7.0.15 gave to it byte for byte (generated once and checked in, so the test needs
//! no server), must get the same bytes here.

use super::*;
use crate::reply::Protocol;

/// The script and Redis's replies (fixtures/key_commands.tsv says how they were made).
const REDIS_REPLIES: &str = include_str!("fixtures/key_commands.tsv");

/// A fixed clock: the script's absolute times (`PXAT 1`, `EXAT 99999999999`) lie on either side.
const NOW: u64 = 1_780_000_000_000;

const LIMITS: Limits = Limits {
    max_memory: 0,
    max_string: 512 * 1024 * 1024,
};

fn run(keys: &mut Keyspace, args: &[Bytes]) -> Vec<u8> {
    let reply = match KeyCommand::parse(args, NOW) {
        None => panic!("not a key command: {args:?}"),
        Some(Err(e)) => e.reply(),
        Some(Ok(command)) => command.run(keys, LIMITS, NOW),
    };
    reply.encode(Protocol::Resp2)
}

#[test]
fn replies_as_redis_does_byte_for_byte() {
    let mut keys = Keyspace::new();
    let mut checked = 0;
    for line in REDIS_REPLIES.lines().filter(|l| !l.starts_with('#')) {
        let (command, reply) = line.split_once('\t').expect("command, tab, reply");
        let command: Vec<String> = serde_json::from_str(command).expect("a JSON array");
        let reply: String = serde_json::from_str(reply).expect("a JSON string");
        let want: Vec<u8> = reply.chars().map(|c| c as u8).collect();
        let args: Vec<Bytes> = command.iter().map(|a| Bytes::from(a.clone())).collect();
        let got = run(&mut keys, &args);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{command:?}"
        );
        checked += 1;
    }
    assert_eq!(checked, 134);
}

#[test]
fn every_key_command_parses_at_its_arity_without_panicking() {
    for &(name, arity) in ARITIES {
        for len in 0..6usize {
            let mut args = vec![Bytes::from(name)];
            args.extend((1..len).map(|i| Bytes::from(i.to_string())));
            let parsed = KeyCommand::parse(&args, NOW).expect("a key command");
            if !fits(arity, args.len()) {
                assert_eq!(parsed, Err(ARITY.into()), "{name} with {len} arguments");
            }
        }
    }
}

#[test]
fn keys_of_several_slots_are_refused() {
    let args: Vec<Bytes> = ["MGET", "a", "b"].map(Bytes::from).to_vec();
    let command = KeyCommand::parse(&args, NOW)
        .expect("key command")
        .expect("valid");
    assert!(command.slot().is_err());
    let args: Vec<Bytes> = ["MGET", "{t}a", "{t}b"].map(Bytes::from).to_vec();
    let command = KeyCommand::parse(&args, NOW)
        .expect("key command")
        .expect("valid");
    assert_eq!(command.slot(), Ok(Some(key_slot(b"t"))));
}

#[test]
fn writes_above_maxmemory_are_refused_and_reads_go_on() {
    let mut keys = Keyspace::new();
    let limits = Limits {
        max_memory: 200,
        ..LIMITS
    };
    let set = |k: &str| KeyCommand::Set {
        key: Bytes::from(k.to_string()),
        value: Bytes::from(vec![b'x'; 100]),
        condition: SetCondition::Always,
        expiry: SetExpiry::Clear,
        get: false,
    };
    assert_eq!(set("a").run(&mut keys, limits, NOW), Reply::ok());
    assert_eq!(set("b").run(&mut keys, limits, NOW), Reply::ok());
    let refused = set("c").run(&mut keys, limits, NOW);
    assert!(matches!(refused, Reply::Error(e) if e.starts_with("OOM")));
    let get = KeyCommand::Get(Bytes::from_static(b"a"));
    assert!(matches!(get.run(&mut keys, limits, NOW), Reply::Bulk(_)));
    let del = KeyCommand::Del(vec![Bytes::from_static(b"a")]);
    assert_eq!(del.run(&mut keys, limits, NOW), Reply::Int(1));
}

#[test]
fn scan_visits_every_key_once_across_calls() {
    let mut keys = Keyspace::new();
    for i in 0..100 {
        let key = Bytes::from(format!("key:{i}"));
        keys.set(&key, b"", SetCondition::Always, SetExpiry::Clear, NOW);
    }
    let (mut seen, mut cursor) = (Vec::new(), 0u16);
    loop {
        let command = KeyCommand::Scan {
            cursor,
            pattern: None,
            count: 7,
            strings: true,
        };
        let Reply::Array(parts) = command.run(&mut keys, LIMITS, NOW) else {
            panic!("SCAN replies with an array")
        };
        let [Reply::Bulk(next), Reply::Array(found)] = &parts[..] else {
            panic!("cursor and keys")
        };
        seen.extend(found.iter().cloned());
        cursor = String::from_utf8_lossy(next).parse().expect("a cursor");
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen.len(), 100);
    seen.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    seen.dedup();
    assert_eq!(seen.len(), 100, "no key twice");
}
