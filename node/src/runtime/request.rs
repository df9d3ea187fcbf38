//! Client requests off the wire: a small, non-recursive, incremental parser after Redis's
//! `processInlineBuffer` and `processMultibulkBuffer` (networking.c).
//!
//! Why not a general RESP decoder: a request is only ever an inline command (`PING\r\n`, as
//! telnet sends) or a multibulk of bulk strings (`*N\r\n$len\r\n...\r\n`). A general decoder
//! accepts nested arrays, and `redis-protocol`'s decoder recurses on them, so one request of
//! ~7,700 nested `*1\r\n` overflowed the node's stack. Here nothing nests: a `*` where a bulk
//! string belongs is an error, and every length is checked against a limit *when its header is
//! read*, before any of the data it announces is buffered.
//!
//! The parser is incremental: [`Parser::next`] takes what has arrived so far and either returns
//! one complete command, asks for more bytes, or fails. It keeps the arguments of a multibulk
//! that is still arriving, so nothing is parsed twice.
//!
//! Errors, and whether the connection survives them ([`ProtocolError::recoverable`]). Redis
//! closes the connection after any protocol error; slotguard's rule is that bad RESP gets an
//! error reply and the connection lives *where framing can be recovered*, that is where the
//! offending bytes are one whole line and the next request starts after it:
//!
//! | error reply (`-ERR Protocol error: ...`) | cause | connection |
//! |---|---|---|
//! | `unbalanced quotes in request` | inline line with an open quote | lives (line dropped) |
//! | `expected '*', got '$'` | a line starting with another RESP type byte (`$ + - : ...`) where a request starts (Redis would run it as an inline command) | lives (line dropped) |
//! | `too big inline request` | an inline line over 64 KB | closed |
//! | `too big mbulk count string`, `too big bulk count string` | a length header over 64 KB | closed |
//! | `invalid multibulk length` | `*N` not a number, or over the element limit | closed |
//! | `invalid bulk length` | `$N` not a number, negative, or over the bulk limit | closed |
//! | `expected '$', got '*'` | anything but a bulk string inside a multibulk (nesting) | closed |
//! | `expected CRLF after bulk data` | bulk data not followed by `\r\n` (Redis does not check) | closed |
//!
//! After an unrecoverable error the parser's state is meaningless: the caller replies and
//! closes.

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;

/// Longest inline request, and longest length header (Redis's `PROTO_INLINE_MAX_SIZE`).
pub(crate) const MAX_INLINE: usize = 64 * 1024;

/// Arguments preallocated for a multibulk, whatever its header claims (Redis: 1024).
const PREALLOC_ARGS: usize = 1024;

/// Bytes counted per argument held, on top of its data (the `Bytes` handle and its slot).
const ARG_OVERHEAD: usize = 48;

/// Limits on one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Largest bulk string (Redis's `proto-max-bulk-len`).
    pub(crate) max_bulk_len: usize,
    /// Most elements in one multibulk.
    pub(crate) max_multibulk_len: usize,
}

/// A request that breaks the protocol. The `Display` text is Redis's error message, without
/// the `ERR ` prefix.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub(crate) enum ProtocolError {
    /// An inline request with an unterminated quote, or a closing quote not followed by space.
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// A line where a request starts, beginning with a RESP type byte other than `*`.
    #[error("Protocol error: expected '*', got '{}'", shown(*.0))]
    NotARequest(u8),
    /// An inline request longer than [`MAX_INLINE`].
    #[error("Protocol error: too big inline request")]
    InlineTooBig,
    /// A `*N` header longer than [`MAX_INLINE`].
    #[error("Protocol error: too big mbulk count string")]
    MultibulkHeaderTooBig,
    /// A `$N` header longer than [`MAX_INLINE`].
    #[error("Protocol error: too big bulk count string")]
    BulkHeaderTooBig,
    /// `*N` with N not a number or over the limit.
    #[error("Protocol error: invalid multibulk length")]
    MultibulkLength,
    /// `$N` with N not a number, negative or over the limit.
    #[error("Protocol error: invalid bulk length")]
    BulkLength,
    /// Something other than a bulk string inside a multibulk.
    #[error("Protocol error: expected '$', got '{}'", shown(*.0))]
    ExpectedBulk(u8),
    /// Bulk data not followed by CRLF.
    #[error("Protocol error: expected CRLF after bulk data")]
    MissingCrlf,
}

impl ProtocolError {
    /// Whether the request stream can go on after the error: the offending line was consumed
    /// whole and the next request starts right after it.
    pub(crate) fn recoverable(&self) -> bool {
        matches!(
            self,
            ProtocolError::UnbalancedQuotes | ProtocolError::NotARequest(_)
        )
    }
}

/// A byte as shown in an error reply: printable ASCII as is, anything else escaped (a raw CR or
/// LF would break the reply line).
fn shown(b: u8) -> String {
    if b.is_ascii_graphic() || b == b' ' {
        char::from(b).to_string()
    } else {
        format!("\\x{b:02x}")
    }
}

/// The state of one connection's request stream.
#[derive(Debug)]
pub(crate) struct Parser {
    limits: Limits,
    /// Elements still expected of the multibulk being read (0: between requests).
    remaining: usize,
    /// Length of the bulk string whose header was read and whose data is awaited.
    bulk: Option<usize>,
    /// Arguments of the multibulk read so far.
    args: Vec<Bytes>,
    /// Bytes held in `args`, overhead included.
    held: usize,
    /// Bytes of the buffer already searched for a line end, in vain.
    scanned: usize,
}

/// One step of parsing: a command, a request that was empty, or a need for more bytes.
enum Step {
    Command(Vec<Bytes>),
    Empty,
    More,
}

impl Parser {
    /// A parser between requests.
    pub(crate) fn new(limits: Limits) -> Parser {
        Parser {
            limits,
            remaining: 0,
            bulk: None,
            args: Vec::new(),
            held: 0,
            scanned: 0,
        }
    }

    /// Bytes taken out of the buffer for a request not yet complete.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// The next complete command in `buf` (consumed from it), or `None` when more bytes are
    /// needed. Empty requests (an empty line, `*0`) are skipped, as Redis does.
    pub(crate) fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            let step = if self.remaining > 0 {
                self.multibulk(buf)?
            } else {
                match buf.first() {
                    None => Step::More,
                    Some(b'*') => self.multibulk_header(buf)?,
                    Some(_) => self.inline(buf)?,
                }
            };
            match step {
                Step::Command(args) => return Ok(Some(args)),
                Step::Empty => continue,
                Step::More => return Ok(None),
            }
        }
    }

    /// The position of the next `\n` in `buf`, searching only bytes not searched before.
    fn line_end(&mut self, buf: &BytesMut) -> Option<usize> {
        let from = self.scanned.min(buf.len());
        match buf[from..].iter().position(|&b| b == b'\n') {
            Some(p) => {
                self.scanned = 0;
                Some(from + p)
            }
            None => {
                self.scanned = buf.len();
                None
            }
        }
    }

    /// One inline request: a line of space-separated, possibly quoted, arguments.
    fn inline(&mut self, buf: &mut BytesMut) -> Result<Step, ProtocolError> {
        let Some(end) = self.line_end(buf) else {
            if buf.len() > MAX_INLINE {
                return Err(ProtocolError::InlineTooBig);
            }
            return Ok(Step::More);
        };
        if end > MAX_INLINE {
            return Err(ProtocolError::InlineTooBig);
        }
        let line = buf.split_to(end + 1);
        let line = line.strip_suffix(b"\n").unwrap_or(&line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(&first) = line.first() {
            if b"$+-:_,#!=(%~>|".contains(&first) {
                return Err(ProtocolError::NotARequest(first));
            }
        }
        // Redis splits the line as a C string: a NUL ends it.
        let line = line.split(|&b| b == 0).next().unwrap_or_default();
        let args = split_args(line).ok_or(ProtocolError::UnbalancedQuotes)?;
        Ok(if args.is_empty() {
            Step::Empty
        } else {
            Step::Command(args)
        })
    }

    /// A header line `<marker>N\r\n` at the start of `buf`: N, consumed with its line, or
    /// `None` when the line has not fully arrived. `Err(())` if it is not a well-formed number.
    fn header(&mut self, buf: &mut BytesMut) -> Result<Option<i64>, ()> {
        let Some(end) = self.line_end(buf) else {
            return Ok(None);
        };
        let line = buf.split_to(end + 1);
        let digits = line
            .get(1..line.len().saturating_sub(2))
            .filter(|_| line.ends_with(b"\r\n"))
            .ok_or(())?;
        parse_int(digits).map(Some).ok_or(())
    }

    /// The `*N` line that starts a multibulk.
    fn multibulk_header(&mut self, buf: &mut BytesMut) -> Result<Step, ProtocolError> {
        let header = self
            .header(buf)
            .map_err(|()| ProtocolError::MultibulkLength)?;
        let Some(n) = header else {
            if buf.len() > MAX_INLINE {
                return Err(ProtocolError::MultibulkHeaderTooBig);
            }
            return Ok(Step::More);
        };
        if n <= 0 {
            return Ok(Step::Empty);
        }
        let n = usize::try_from(n).map_err(|_| ProtocolError::MultibulkLength)?;
        if n > self.limits.max_multibulk_len {
            return Err(ProtocolError::MultibulkLength);
        }
        self.remaining = n;
        self.args = Vec::with_capacity(n.min(PREALLOC_ARGS));
        self.held = 0;
        Ok(Step::Empty)
    }

    /// The elements of a multibulk, as far as they have arrived.
    fn multibulk(&mut self, buf: &mut BytesMut) -> Result<Step, ProtocolError> {
        while self.remaining > 0 {
            let len = match self.bulk {
                Some(len) => len,
                None => match self.bulk_header(buf)? {
                    Some(len) => len,
                    None => return Ok(Step::More),
                },
            };
            if buf.len() < len + 2 {
                return Ok(Step::More);
            }
            if &buf[len..len + 2] != b"\r\n" {
                return Err(ProtocolError::MissingCrlf);
            }
            let data = buf.split_to(len).freeze();
            buf.advance(2);
            self.held += data.len() + ARG_OVERHEAD;
            self.args.push(data);
            self.bulk = None;
            self.remaining -= 1;
        }
        self.held = 0;
        Ok(Step::Command(std::mem::take(&mut self.args)))
    }

    /// A `$N` line: the bulk length, or `None` when the line has not fully arrived.
    fn bulk_header(&mut self, buf: &mut BytesMut) -> Result<Option<usize>, ProtocolError> {
        match buf.first() {
            None => return Ok(None),
            Some(b'$') => {}
            Some(&other) => return Err(ProtocolError::ExpectedBulk(other)),
        }
        let header = self.header(buf).map_err(|()| ProtocolError::BulkLength)?;
        let Some(n) = header else {
            if buf.len() > MAX_INLINE {
                return Err(ProtocolError::BulkHeaderTooBig);
            }
            return Ok(None);
        };
        let n = usize::try_from(n).map_err(|_| ProtocolError::BulkLength)?;
        if n > self.limits.max_bulk_len {
            return Err(ProtocolError::BulkLength);
        }
        self.bulk = Some(n);
        Ok(Some(n))
    }
}

/// A decimal integer as Redis's `string2ll` accepts it: an optional `-`, digits, no leading
/// zero, no sign `+`, no spaces, within `i64`.
fn parse_int(digits: &[u8]) -> Option<i64> {
    let (negative, body) = match digits.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, digits),
    };
    let leading_zero = body.len() > 1 && body[0] == b'0';
    if body.is_empty() || leading_zero || !body.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value: i64 = 0;
    for &d in body {
        let d = i64::from(d - b'0');
        value = value.checked_mul(10)?;
        value = if negative {
            value.checked_sub(d)?
        } else {
            value.checked_add(d)?
        };
    }
    Some(value)
}

/// Space as Redis's `isspace` sees it.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Splits an inline request into arguments as Redis's `sdssplitargs` does; `None` for
/// unbalanced quotes.
fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while line.get(i).is_some_and(|&b| is_space(b)) {
            i += 1;
        }
        if i >= line.len() {
            return Some(args);
        }
        let (arg, next) = split_one(line, i)?;
        args.push(Bytes::from(arg));
        i = next;
    }
}

/// One argument starting at `line[i]` (not a space): its bytes and where the next one may
/// start.
fn split_one(line: &[u8], mut i: usize) -> Option<(Vec<u8>, usize)> {
    let mut arg = Vec::new();
    loop {
        match line.get(i) {
            None => return Some((arg, i)),
            Some(&b) if is_space(b) => return Some((arg, i + 1)),
            Some(b'"') => i = double_quoted(line, i + 1, &mut arg)?,
            Some(b'\'') => i = single_quoted(line, i + 1, &mut arg)?,
            Some(&b) => {
                arg.push(b);
                i += 1;
            }
        }
    }
}

/// The inside of a `"..."` starting at `line[i]`, with Redis's escapes; returns the position
/// after the closing quote, which must be followed by a space or the end.
fn double_quoted(line: &[u8], mut i: usize, arg: &mut Vec<u8>) -> Option<usize> {
    loop {
        match *line.get(i)? {
            b'\\' if line.get(i + 1) == Some(&b'x') => {
                let hi = line.get(i + 2).copied().and_then(hex_value);
                let lo = line.get(i + 3).copied().and_then(hex_value);
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    arg.push(hi * 16 + lo);
                    i += 4;
                } else {
                    arg.push(b'x');
                    i += 2;
                }
            }
            b'\\' if i + 1 < line.len() => {
                arg.push(match line[i + 1] {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 0x08,
                    b'a' => 0x07,
                    other => other,
                });
                i += 2;
            }
            b'"' => return closing(line, i + 1),
            b => {
                arg.push(b);
                i += 1;
            }
        }
    }
}

/// The inside of a `'...'` starting at `line[i]` (only `\'` is an escape).
fn single_quoted(line: &[u8], mut i: usize, arg: &mut Vec<u8>) -> Option<usize> {
    loop {
        match *line.get(i)? {
            b'\\' if line.get(i + 1) == Some(&b'\'') => {
                arg.push(b'\'');
                i += 2;
            }
            b'\'' => return closing(line, i + 1),
            b => {
                arg.push(b);
                i += 1;
            }
        }
    }
}

/// After a closing quote at `i - 1`: the argument ends, so a space or the end must follow.
fn closing(line: &[u8], i: usize) -> Option<usize> {
    match line.get(i) {
        None => Some(i),
        Some(&b) if is_space(b) => Some(i),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMITS: Limits = Limits {
        max_bulk_len: 1000,
        max_multibulk_len: 100,
    };

    /// Every result of feeding `input` at once: commands as strings, then the error if any.
    fn parse_all(input: &[u8]) -> (Vec<Vec<String>>, Option<ProtocolError>, usize) {
        let mut p = Parser::new(LIMITS);
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match p.next(&mut buf) {
                Ok(Some(args)) => out.push(
                    args.iter()
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect(),
                ),
                Ok(None) => return (out, None, buf.len()),
                Err(e) => return (out, Some(e), buf.len()),
            }
        }
    }

    fn cmds(list: &[&[&str]]) -> Vec<Vec<String>> {
        list.iter()
            .map(|c| c.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    #[test]
    fn multibulk_and_inline_requests_parse() {
        let (got, err, left) =
            parse_all(b"*2\r\n$4\r\nECHO\r\n$3\r\nhi!\r\nPING\r\n\r\n*0\r\n*-1\r\nset a  b\n");
        assert_eq!(err, None);
        assert_eq!(left, 0);
        assert_eq!(
            got,
            cmds(&[&["ECHO", "hi!"], &["PING"], &["set", "a", "b"]])
        );
    }

    #[test]
    fn binary_bulk_data_is_kept_as_is() {
        let mut p = Parser::new(LIMITS);
        let mut buf = BytesMut::from(&b"*1\r\n$4\r\n\r\n\0\xff\r\n"[..]);
        let args = p.next(&mut buf).expect("valid").expect("complete");
        assert_eq!(args, vec![Bytes::from_static(b"\r\n\0\xff")]);
    }

    #[test]
    fn deeply_nested_arrays_are_refused_without_recursion() {
        let mut input = b"*1\r\n".repeat(7_700);
        input.extend_from_slice(b"$4\r\nPING\r\n");
        let (got, err, _) = parse_all(&input);
        assert!(got.is_empty());
        let err = err.expect("refused");
        assert_eq!(err, ProtocolError::ExpectedBulk(b'*'));
        assert_eq!(err.to_string(), "Protocol error: expected '$', got '*'");
        assert!(!err.recoverable());
    }

    #[test]
    fn lengths_are_refused_on_reading_the_header() {
        // The header alone, without the megabyte it announces, is enough to refuse it.
        let (_, err, _) = parse_all(b"*1\r\n$1001\r\n");
        assert_eq!(err, Some(ProtocolError::BulkLength));
        let (_, err, _) = parse_all(b"*101\r\n");
        assert_eq!(err, Some(ProtocolError::MultibulkLength));
        for bad in [
            &b"*1\r\n$-1\r\n"[..],
            b"*1\r\n$01\r\n",
            b"*1\r\n$+1\r\n",
            b"*1\r\n$\r\n",
            b"*1\r\n$99999999999999999999\r\n",
        ] {
            assert_eq!(parse_all(bad).1, Some(ProtocolError::BulkLength), "{bad:?}");
        }
        for bad in [&b"*x\r\n"[..], b"*1\n", b"*99999999999999999999\r\n"] {
            let err = parse_all(bad).1;
            assert_eq!(err, Some(ProtocolError::MultibulkLength), "{bad:?}");
        }
        assert_eq!(
            ProtocolError::BulkLength.to_string(),
            "Protocol error: invalid bulk length"
        );
    }

    #[test]
    fn bulk_data_must_end_with_crlf() {
        let (_, err, _) = parse_all(b"*1\r\n$4\r\nPINGxx");
        assert_eq!(err, Some(ProtocolError::MissingCrlf));
    }

    #[test]
    fn overlong_lines_are_refused_once_past_the_inline_limit() {
        let long = vec![b'a'; MAX_INLINE + 1];
        assert_eq!(parse_all(&long).1, Some(ProtocolError::InlineTooBig));
        assert_eq!(parse_all(&long[..MAX_INLINE]).1, None, "not yet too big");
        let mut header = b"*".to_vec();
        header.extend_from_slice(&long);
        let err = parse_all(&header).1;
        assert_eq!(err, Some(ProtocolError::MultibulkHeaderTooBig));
        let mut header = b"*1\r\n$".to_vec();
        header.extend_from_slice(&long);
        assert_eq!(parse_all(&header).1, Some(ProtocolError::BulkHeaderTooBig));
        let err = ProtocolError::InlineTooBig.to_string();
        assert_eq!(err, "Protocol error: too big inline request");
    }

    #[test]
    fn inline_quotes_follow_sdssplitargs() {
        let (got, err, _) = parse_all(b"echo \"a b\\x41\\n\" 'it\\'s' x\"y z\"\r\n");
        assert_eq!(err, None);
        assert_eq!(got, cmds(&[&["echo", "a bA\n", "it's", "xy z"]]));
        for bad in [&b"echo \"abc\r\n"[..], b"echo 'abc\r\n", b"echo \"a\"b\r\n"] {
            let (got, err, _) = parse_all(bad);
            assert!(got.is_empty());
            assert_eq!(err, Some(ProtocolError::UnbalancedQuotes), "{bad:?}");
        }
    }

    #[test]
    fn recoverable_errors_consume_their_line_and_parsing_resumes() {
        let mut p = Parser::new(LIMITS);
        let mut buf = BytesMut::from(&b"$x\r\necho \"open\r\nPING\r\n"[..]);
        let err = p.next(&mut buf).expect_err("not a request");
        assert_eq!(err.to_string(), "Protocol error: expected '*', got '$'");
        assert!(err.recoverable());
        let err = p.next(&mut buf).expect_err("unbalanced");
        assert!(err.recoverable());
        let args = p.next(&mut buf).expect("valid").expect("complete");
        assert_eq!(args, vec![Bytes::from_static(b"PING")]);
    }

    #[test]
    fn unprintable_bytes_are_escaped_in_errors() {
        assert_eq!(
            ProtocolError::ExpectedBulk(b'\n').to_string(),
            "Protocol error: expected '$', got '\\x0a'"
        );
    }

    #[test]
    fn held_counts_the_arguments_of_an_incomplete_multibulk() {
        let mut p = Parser::new(LIMITS);
        let mut buf = BytesMut::from(&b"*3\r\n$3\r\nabc\r\n$2\r\nde\r\n$4\r\nf"[..]);
        assert_eq!(p.next(&mut buf), Ok(None));
        assert_eq!(p.held(), 5 + 2 * ARG_OVERHEAD);
        buf.extend_from_slice(b"ghi\r\n");
        assert!(p.next(&mut buf).expect("valid").is_some());
        assert_eq!(p.held(), 0);
    }

    /// Encodes `args` as a multibulk.
    fn encode(args: &[Vec<u8>]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// Any byte, half the time one of those that steer the parser.
    fn resp_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            any::<u8>(),
            prop::sample::select(b"*$\r\n0129-\"'\\x +".to_vec()),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(chunks in proptest::collection::vec(
            proptest::collection::vec(resp_byte(), 0..64), 0..8)) {
            let mut p = Parser::new(LIMITS);
            let mut buf = BytesMut::new();
            'feed: for chunk in chunks {
                buf.extend_from_slice(&chunk);
                loop {
                    match p.next(&mut buf) {
                        Ok(Some(args)) => prop_assert!(!args.is_empty()),
                        Ok(None) => break,
                        Err(e) if e.recoverable() => {}
                        Err(_) => break 'feed,
                    }
                }
            }
        }

        #[test]
        fn multibulk_round_trips_across_arbitrary_splits(
            commands in proptest::collection::vec(
                proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6),
                1..4),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let wire: Vec<u8> = commands.iter().flat_map(|c| encode(c)).collect();
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
            cuts.push(0);
            cuts.push(wire.len());
            cuts.sort_unstable();
            let mut p = Parser::new(LIMITS);
            let mut buf = BytesMut::new();
            let mut got: Vec<Vec<Vec<u8>>> = Vec::new();
            for w in cuts.windows(2) {
                buf.extend_from_slice(&wire[w[0]..w[1]]);
                while let Some(args) = p.next(&mut buf).expect("valid request") {
                    got.push(args.iter().map(|a| a.to_vec()).collect());
                }
            }
            prop_assert_eq!(got, commands);
            prop_assert!(buf.is_empty());
            prop_assert_eq!(p.held(), 0);
        }
    }
}
