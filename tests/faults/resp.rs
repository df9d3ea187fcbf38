//! One RESP2 connection with a deadline on every operation, and the replies as a small type.
//!
//! Why our own and not a cluster client crate: the measurement must tell a write that surely
//! did not happen (a refused connection, an error reply) from one whose fate is unknown (a
//! timeout or a reset after the request was sent), and a cluster client folds both into
//! retries.

use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::types::OwnedFrame;

/// A reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `+...` or a bulk string.
    Text(String),
    /// `$-1` or `*-1`.
    Nil,
    /// `:n`.
    Int(i64),
    /// `-...`.
    Error(String),
    /// `*...`.
    Array(Vec<Reply>),
}

impl Reply {
    fn from_frame(f: OwnedFrame) -> Reply {
        match f {
            OwnedFrame::SimpleString(b) | OwnedFrame::BulkString(b) => {
                Reply::Text(String::from_utf8_lossy(&b).into_owned())
            }
            OwnedFrame::Error(e) => Reply::Error(e),
            OwnedFrame::Integer(i) => Reply::Int(i),
            OwnedFrame::Null => Reply::Nil,
            OwnedFrame::Array(a) => Reply::Array(a.into_iter().map(Reply::from_frame).collect()),
        }
    }

    /// The text of a string reply.
    pub(crate) fn text(&self) -> Option<&str> {
        match self {
            Reply::Text(t) => Some(t),
            _ => None,
        }
    }
}

/// Why a request got no reply.
#[derive(Debug)]
pub(crate) enum ConnError {
    /// Connecting failed: the request was never sent.
    Connect(std::io::Error),
    /// Sending or reading failed after the request may have been sent.
    Io(std::io::Error),
    /// The peer closed the connection.
    Closed,
    /// The reply could not be parsed.
    Protocol(String),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Connect(e) => write!(f, "connect: {e}"),
            ConnError::Io(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                write!(f, "timed out")
            }
            ConnError::Io(e) => write!(f, "i/o: {e}"),
            ConnError::Closed => write!(f, "connection closed"),
            ConnError::Protocol(e) => write!(f, "bad reply: {e}"),
        }
    }
}

impl std::error::Error for ConnError {}

/// One connection.
pub(crate) struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects within `connect`; every later read and write may take up to `io`.
    pub(crate) fn open(
        addr: SocketAddr,
        connect: Duration,
        io: Duration,
    ) -> Result<Conn, ConnError> {
        let stream = TcpStream::connect_timeout(&addr, connect).map_err(ConnError::Connect)?;
        stream
            .set_read_timeout(Some(io))
            .map_err(ConnError::Connect)?;
        stream
            .set_write_timeout(Some(io))
            .map_err(ConnError::Connect)?;
        stream.set_nodelay(true).map_err(ConnError::Connect)?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }

    /// Sends one command and reads its reply.
    pub(crate) fn call(&mut self, args: &[&str]) -> Result<Reply, ConnError> {
        self.stream
            .write_all(&encode(args))
            .map_err(ConnError::Io)?;
        self.read()
    }

    /// Reads one reply.
    pub(crate) fn read(&mut self) -> Result<Reply, ConnError> {
        let mut chunk = [0u8; 65536];
        loop {
            match decode(&self.buf) {
                Ok(Some((frame, used))) => {
                    self.buf.drain(..used);
                    return Ok(Reply::from_frame(frame));
                }
                Ok(None) => {}
                Err(e) => return Err(ConnError::Protocol(e.details().to_string())),
            }
            let n = self.stream.read(&mut chunk).map_err(ConnError::Io)?;
            if n == 0 {
                return Err(ConnError::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// A command in RESP.
pub(crate) fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// One command on a fresh connection, with a short deadline; `None` if anything failed.
pub(crate) fn once(addr: SocketAddr, args: &[&str]) -> Option<Reply> {
    let t = Duration::from_millis(500);
    Conn::open(addr, t, Duration::from_secs(2))
        .ok()?
        .call(args)
        .ok()
}
