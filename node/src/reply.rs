//! Replies, built once and encoded for the protocol the connection speaks: RESP2 by default,
//! RESP3 after `HELLO 3`. Why a type of our own: the two protocols differ in shape, not only in
//! bytes (a RESP3 map is a flat array in RESP2, a verbatim string a bulk string), so a reply
//! is built with the richer RESP3 shapes and lowered for RESP2, as Redis's `addReplyMapLen`
//! and friends do. The bytes themselves come from the `redis-protocol` crate's encoders.

use redis_protocol::resp2::types::{OwnedFrame as Frame2, Resp2Frame};
use redis_protocol::resp3::types::{
    FrameMap, FrameSet, OwnedFrame as Frame3, Resp3Frame, VerbatimStringFormat,
};

/// A reply in RESP3's shapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+text`.
    Simple(String),
    /// `-text` (the text starts with the error code, e.g. `ERR`).
    Error(String),
    /// `:n`.
    Int(i64),
    /// A bulk string.
    Bulk(Vec<u8>),
    /// Text meant for humans (INFO, CLUSTER NODES): RESP3 verbatim `txt`, RESP2 bulk.
    Verbatim(String),
    /// Null: RESP3 `_`, RESP2 `$-1`.
    Null,
    /// An array.
    Array(Vec<Reply>),
    /// A map: RESP3 `%`, RESP2 a flat array of keys and values.
    Map(Vec<(Reply, Reply)>),
    /// A set: RESP3 `~`, RESP2 an array.
    Set(Vec<Reply>),
}

/// The protocol of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// RESP2, the default.
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

impl Reply {
    /// `+OK`.
    pub fn ok() -> Reply {
        Reply::Simple("OK".into())
    }

    /// A bulk string of text.
    pub fn text(s: impl Into<String>) -> Reply {
        Reply::Bulk(s.into().into_bytes())
    }

    /// An error reply; `msg` starts with its code (`ERR ...`).
    pub fn error(msg: impl Into<String>) -> Reply {
        Reply::Error(msg.into())
    }

    /// The bytes of this reply in `protocol`.
    pub fn encode(self, protocol: Protocol) -> Vec<u8> {
        let encoded = match protocol {
            Protocol::Resp2 => encode2(&self.into_resp2()),
            Protocol::Resp3 => encode3(&self.into_resp3()),
        };
        encoded.unwrap_or_else(|| b"-ERR internal encoding error\r\n".to_vec())
    }

    fn into_resp2(self) -> Frame2 {
        match self {
            Reply::Simple(s) => Frame2::SimpleString(s.into_bytes()),
            Reply::Error(s) => Frame2::Error(one_line(s)),
            Reply::Int(i) => Frame2::Integer(i),
            Reply::Bulk(b) => Frame2::BulkString(b),
            Reply::Verbatim(s) => Frame2::BulkString(s.into_bytes()),
            Reply::Null => Frame2::Null,
            Reply::Array(v) | Reply::Set(v) => {
                Frame2::Array(v.into_iter().map(Reply::into_resp2).collect())
            }
            Reply::Map(pairs) => Frame2::Array(
                pairs
                    .into_iter()
                    .flat_map(|(k, v)| [k.into_resp2(), v.into_resp2()])
                    .collect(),
            ),
        }
    }

    fn into_resp3(self) -> Frame3 {
        match self {
            Reply::Simple(s) => Frame3::SimpleString {
                data: s.into_bytes(),
                attributes: None,
            },
            Reply::Error(s) => Frame3::SimpleError {
                data: one_line(s),
                attributes: None,
            },
            Reply::Int(i) => Frame3::Number {
                data: i,
                attributes: None,
            },
            Reply::Bulk(b) => Frame3::BlobString {
                data: b,
                attributes: None,
            },
            Reply::Verbatim(s) => Frame3::VerbatimString {
                data: s.into_bytes(),
                format: VerbatimStringFormat::Text,
                attributes: None,
            },
            Reply::Null => Frame3::Null,
            Reply::Array(v) => Frame3::Array {
                data: v.into_iter().map(Reply::into_resp3).collect(),
                attributes: None,
            },
            Reply::Set(v) => Frame3::Set {
                data: v
                    .into_iter()
                    .map(Reply::into_resp3)
                    .collect::<FrameSet<_>>(),
                attributes: None,
            },
            Reply::Map(pairs) => Frame3::Map {
                data: pairs
                    .into_iter()
                    .map(|(k, v)| (k.into_resp3(), v.into_resp3()))
                    .collect::<FrameMap<_, _>>(),
                attributes: None,
            },
        }
    }
}

/// An error text on one line, as Redis's `addReplyError` makes it.
fn one_line(s: String) -> String {
    if s.contains(['\r', '\n']) {
        s.replace(['\r', '\n'], " ")
    } else {
        s
    }
}

impl From<Frame2> for Reply {
    /// The views of format.rs are built as RESP2 frames; they have the same shape in RESP3.
    fn from(frame: Frame2) -> Reply {
        match frame {
            Frame2::SimpleString(s) => Reply::Simple(String::from_utf8_lossy(&s).into_owned()),
            Frame2::Error(s) => Reply::Error(s),
            Frame2::Integer(i) => Reply::Int(i),
            Frame2::BulkString(b) => Reply::Bulk(b),
            Frame2::Array(v) => Reply::Array(v.into_iter().map(Reply::from).collect()),
            Frame2::Null => Reply::Null,
        }
    }
}

fn encode2(frame: &Frame2) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; frame.encode_len(false)];
    let n = redis_protocol::resp2::encode::encode(&mut buf, frame, false).ok()?;
    buf.truncate(n);
    Some(buf)
}

fn encode3(frame: &Frame3) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; frame.encode_len(false)];
    let n = redis_protocol::resp3::encode::complete::encode(&mut buf, frame, false).ok()?;
    buf.truncate(n);
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(r: Reply) -> (String, String) {
        let two = String::from_utf8_lossy(&r.clone().encode(Protocol::Resp2)).into_owned();
        let three = String::from_utf8_lossy(&r.encode(Protocol::Resp3)).into_owned();
        (two, three)
    }

    #[test]
    fn maps_flatten_in_resp2_and_keep_their_order_in_resp3() {
        let map = Reply::Map(vec![
            (Reply::text("proto"), Reply::Int(3)),
            (Reply::text("id"), Reply::Int(7)),
        ]);
        let (two, three) = both(map);
        assert_eq!(two, "*4\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:7\r\n");
        assert_eq!(three, "%2\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:7\r\n");
    }

    #[test]
    fn nulls_sets_and_verbatim_text_take_each_protocols_form() {
        assert_eq!(both(Reply::Null), ("$-1\r\n".into(), "_\r\n".into()));
        let set = Reply::Set(vec![Reply::Simple("fast".into())]);
        assert_eq!(
            both(set),
            ("*1\r\n+fast\r\n".into(), "~1\r\n+fast\r\n".into())
        );
        let (two, three) = both(Reply::Verbatim("a:1".into()));
        assert_eq!(
            (two.as_str(), three.as_str()),
            ("$3\r\na:1\r\n", "=7\r\ntxt:a:1\r\n")
        );
    }

    #[test]
    fn error_texts_stay_on_one_line() {
        let (two, three) = both(Reply::error("ERR bad\r\nthing"));
        assert_eq!(two, "-ERR bad  thing\r\n");
        assert_eq!(three, "-ERR bad  thing\r\n");
    }
}
