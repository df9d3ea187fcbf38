//! The client and admin port: RESP2 over TCP (framing by the `redis-protocol` crate), so
//! `redis-cli` and cluster-aware clients work. Answers come from the snapshot the node task
//! publishes; nothing here changes protocol state.
//!
//! A malformed frame gets an error reply and the connection stays usable: the bytes up to the
//! next line end are discarded and parsing resumes there.

use std::sync::Arc;

use anyhow::Result;
use bytes::{Buf, BytesMut};
use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::encode::encode;
use redis_protocol::resp2::types::{OwnedFrame, Resp2Frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::debug;

use super::config::NodeConfig;
use super::{format, Shared, Snapshot};

/// Largest request buffered before the connection is closed.
const MAX_REQUEST: usize = 1 << 20;

/// Serves clients on `listener` until the task is dropped.
pub(crate) async fn serve(listener: TcpListener, config: Arc<NodeConfig>, shared: Shared) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let config = Arc::clone(&config);
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    if let Err(e) = connection(stream, config, shared).await {
                        debug!(%peer, error = %e, "client connection ended");
                    }
                });
            }
            Err(e) => debug!(error = %e, "accept failed"),
        }
    }
}

fn to_bytes(frame: &OwnedFrame) -> Vec<u8> {
    let mut buf = vec![0u8; frame.encode_len(false)];
    match encode(&mut buf, frame, false) {
        Ok(n) => {
            buf.truncate(n);
            buf
        }
        Err(_) => b"-ERR internal encoding error\r\n".to_vec(),
    }
}

async fn connection(mut stream: TcpStream, config: Arc<NodeConfig>, shared: Shared) -> Result<()> {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        // Answer every complete frame in the buffer.
        loop {
            match decode(&buf) {
                Ok(Some((frame, used))) => {
                    buf.advance(used);
                    let (reply, quit) = answer(&config, &shared, frame);
                    stream.write_all(&to_bytes(&reply)).await?;
                    if quit {
                        return Ok(());
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let skip = buf
                        .windows(2)
                        .position(|w| w == b"\r\n")
                        .map_or(buf.len(), |p| p + 2);
                    buf.advance(skip);
                    let reply = OwnedFrame::Error(format!("ERR Protocol error: {}", e.details()));
                    stream.write_all(&to_bytes(&reply)).await?;
                }
            }
        }
        if buf.len() > MAX_REQUEST {
            let reply = OwnedFrame::Error("ERR Protocol error: request too large".into());
            stream.write_all(&to_bytes(&reply)).await?;
            return Ok(());
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

fn text(frame: &OwnedFrame) -> Option<String> {
    match frame {
        OwnedFrame::BulkString(b) | OwnedFrame::SimpleString(b) => {
            Some(String::from_utf8_lossy(b).into_owned())
        }
        OwnedFrame::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

fn err(msg: impl Into<String>) -> OwnedFrame {
    OwnedFrame::Error(msg.into())
}

fn bulk(s: String) -> OwnedFrame {
    OwnedFrame::BulkString(s.into_bytes())
}

/// The reply to one request, and whether to close the connection after it.
fn answer(config: &NodeConfig, shared: &Shared, frame: OwnedFrame) -> (OwnedFrame, bool) {
    let OwnedFrame::Array(parts) = frame else {
        return (
            err("ERR Protocol error: expected an array of bulk strings"),
            false,
        );
    };
    let Some(args) = parts.iter().map(text).collect::<Option<Vec<String>>>() else {
        return (err("ERR Protocol error: expected bulk strings"), false);
    };
    let Some(cmd) = args.first().map(|c| c.to_ascii_uppercase()) else {
        return (err("ERR empty command"), false);
    };
    let snapshot: Snapshot = match shared.read() {
        Ok(s) => s.clone(),
        Err(_) => return (err("ERR node state unavailable"), false),
    };
    let sub = args.get(1).map(|s| s.to_ascii_uppercase());
    let reply = match (cmd.as_str(), sub.as_deref()) {
        ("PING", None) => OwnedFrame::SimpleString(b"PONG".to_vec()),
        ("PING", Some(_)) => bulk(args[1].clone()),
        ("ECHO", Some(_)) => bulk(args[1].clone()),
        ("QUIT", _) => return (OwnedFrame::SimpleString(b"OK".to_vec()), true),
        ("INFO", _) => bulk(format::info(config, &snapshot)),
        ("CLUSTER", Some("NODES")) => bulk(format::cluster_nodes(config, &snapshot)),
        ("CLUSTER", Some("SLOTS")) => format::cluster_slots(config, &snapshot),
        ("CLUSTER", Some("SHARDS")) => format::cluster_shards(config, &snapshot),
        ("CLUSTER", Some("INFO")) => bulk(format::cluster_info(config, &snapshot)),
        ("CLUSTER", Some("MYID")) => bulk(format::node_name(snapshot.state.me.index())),
        ("CLUSTER", Some(other)) => err(format!(
            "ERR unknown subcommand '{other}'. Try CLUSTER NODES, SLOTS, SHARDS, INFO, MYID."
        )),
        ("CLUSTER", None) => err("ERR wrong number of arguments for 'cluster' command"),
        ("ECHO", None) => err("ERR wrong number of arguments for 'echo' command"),
        _ => err(format!("ERR unknown command '{}'", args[0])),
    };
    (reply, false)
}
