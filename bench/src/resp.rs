//! A minimal RESP2 client over one TCP connection of 127.0.0.1, with timeouts on every
//! operation.
//!
//! Why our own and not a client crate: the benchmarks must see every reply as it comes
//! (`MOVED`, `CLUSTERDOWN`, a refused connection) to time a failover from the client's side,
//! and poll many nodes every few milliseconds over connections they keep open; a cluster
//! client hides exactly those events.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::types::OwnedFrame;

/// One connection to a RESP port.
pub(crate) struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects to `127.0.0.1:port`; connecting and every later read and write may take up
    /// to `within`.
    pub(crate) fn open(port: u16, within: Duration) -> Result<Conn> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, within)?;
        stream.set_read_timeout(Some(within))?;
        stream.set_write_timeout(Some(within))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }

    /// Sends one command.
    pub(crate) fn send(&mut self, args: &[&str]) -> Result<()> {
        self.stream.write_all(&encode(args))?;
        Ok(())
    }

    /// Sends raw, already encoded commands (a pipeline).
    pub(crate) fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes)?;
        Ok(())
    }

    /// Reads one reply.
    pub(crate) fn read(&mut self) -> Result<OwnedFrame> {
        let mut chunk = [0u8; 65536];
        loop {
            if let Some((frame, used)) =
                decode(&self.buf).map_err(|e| anyhow!("bad reply: {}", e.details()))?
            {
                self.buf.drain(..used);
                return Ok(frame);
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                bail!("connection closed");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends one command and reads its reply.
    pub(crate) fn cmd(&mut self, args: &[&str]) -> Result<OwnedFrame> {
        self.send(args)?;
        self.read()
    }

    /// Sends one command and reads its reply as text (an error reply is an error).
    pub(crate) fn text(&mut self, args: &[&str]) -> Result<String> {
        text(self.cmd(args)?)
    }
}

/// One command, as a RESP2 multibulk.
pub(crate) fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A string reply as text; an error reply as an error.
pub(crate) fn text(frame: OwnedFrame) -> Result<String> {
    match frame {
        OwnedFrame::BulkString(b) | OwnedFrame::SimpleString(b) => {
            Ok(String::from_utf8_lossy(&b).into_owned())
        }
        OwnedFrame::Error(e) => bail!("{e}"),
        other => bail!("unexpected reply {other:?}"),
    }
}

/// Sends one command on a fresh connection (timeout 2 s) and returns its reply as text.
pub(crate) fn once(port: u16, args: &[&str]) -> Result<String> {
    Conn::open(port, Duration::from_secs(2))?.text(args)
}

/// `field:value` of an `INFO` or `CLUSTER INFO` text.
pub(crate) fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .filter_map(|l| l.trim_end().split_once(':'))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The hash slot of `key` (CRC16-XMODEM of the key or its `{tag}`, modulo 16384), as Redis
/// Cluster computes it.
pub(crate) fn key_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let hashed = match bytes.iter().position(|&b| b == b'{') {
        Some(open) => match bytes[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &bytes[open + 1..open + 1 + len],
            _ => bytes,
        },
        None => bytes,
    };
    let mut crc: u16 = 0;
    for &b in hashed {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_slots_are_redis_clusters() {
        // CRC16-XMODEM("123456789") = 0x31C3 (specs/background.md).
        assert_eq!(key_slot("123456789"), 0x31C3);
        assert_eq!(key_slot("{123456789}.x"), key_slot("123456789"));
        assert_eq!(
            key_slot("{user1000}.following"),
            key_slot("{user1000}.followers")
        );
    }
}
