//! A replica's link, against a master that misbehaves (specs/protocol.md §11.1): a stream that
//! does not decode, or that stops in the middle of a frame, drops the link; the replica asks
//! again to continue from what it has applied, and never applies half a frame.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis_protocol::resp2::types::Resp2Frame;
use slotguard::data::dataset::ReplId;
use slotguard::data::replication::{Change, Frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::admin::Server;
use super::replication::follow_forever;
use super::test_support;

/// The next connection from the replica and the stream and offset of its `PSYNC` (after
/// which it names its node id, specs/protocol.md §13).
async fn next_psync(listener: &TcpListener) -> (TcpStream, String, String) {
    let accept = tokio::time::timeout(Duration::from_secs(10), listener.accept());
    let (mut link, _) = accept.await.expect("the replica connects").expect("accept");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        if let Ok(Some((frame, _))) = redis_protocol::resp2::decode::decode(&buf) {
            let args: Vec<String> = match frame {
                redis_protocol::resp2::types::OwnedFrame::Array(items) => items
                    .into_iter()
                    .map(|f| String::from_utf8_lossy(f.as_bytes().unwrap_or_default()).into())
                    .collect(),
                other => panic!("not a command: {other:?}"),
            };
            assert_eq!(args.len(), 4, "{args:?}");
            assert_eq!(args[0], "PSYNC");
            assert!(args[3].parse::<u16>().is_ok(), "a node id: {args:?}");
            return (link, args[1].clone(), args[2].clone());
        }
        let n = link.read(&mut chunk).await.expect("read");
        assert!(n > 0, "the replica closed before PSYNC");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Waits until the replica drops `link` (its side closes).
async fn dropped(mut link: TcpStream) {
    let mut sink = [0u8; 64];
    let closed = async { while !matches!(link.read(&mut sink).await, Ok(0) | Err(_)) {} };
    tokio::time::timeout(Duration::from_secs(10), closed)
        .await
        .expect("the replica drops the link");
}

fn set(key: &str, value: &str) -> Frame {
    Frame::Change(Change::Set {
        key: key.into(),
        value: value.into(),
        expires_at: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_stream_drops_the_link_and_the_replica_continues_from_what_it_applied() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let cfg = Arc::new(test_support::config(1, 1, 1, &[port, 1]));
    let shared = Arc::new(RwLock::new(test_support::snapshot(&cfg)));
    let (operator, _requests) = tokio::sync::mpsc::channel(1);
    let (_roles, roles) = tokio::sync::watch::channel(shared.read().expect("snapshot").state.role);
    let server =
        Server::new(cfg, shared, Arc::new(AtomicU64::new(0)), operator, roles).expect("server");
    tokio::spawn(follow_forever(Arc::clone(&server)));
    let stream = ReplId::random().expect("randomness");

    let (mut link, asked, _) = next_psync(&listener).await;
    assert_ne!(
        asked,
        stream.to_string(),
        "a new replica has its own stream"
    );
    let b = set("b", "2").encode();
    let mut frames = Frame::Full {
        id: stream,
        offset: 0,
    }
    .encode();
    frames.extend(set("a", "1").encode());
    frames.extend(Frame::Synced.encode());
    frames.extend(&b);
    frames.extend([0, 0, 0, 3, 0xff, 0xff, 0xff]);
    link.write_all(&frames).await.expect("write");
    dropped(link).await;

    let (mut link, asked, offset) = next_psync(&listener).await;
    assert_eq!((asked, offset), (stream.to_string(), b.len().to_string()));
    let c = set("c", "3").encode();
    let mut frames = Frame::Continue {
        id: stream,
        offset: b.len() as u64,
    }
    .encode();
    frames.extend(&c[..c.len() - 1]);
    link.write_all(&frames).await.expect("write");
    drop(link);

    let (_link, asked, offset) = next_psync(&listener).await;
    assert_eq!(
        (asked, offset),
        (stream.to_string(), b.len().to_string()),
        "half a frame was not applied"
    );
    let data = server.lock_store().expect("store");
    let mut keys: Vec<Vec<u8>> = data
        .keys
        .entries(0)
        .iter()
        .map(|(k, ..)| k.to_vec())
        .collect();
    keys.sort();
    assert_eq!(keys, [b"a", b"b"]);
}
