//! The wire protocol between a training process and its viewers: one JSON
//! object per line (newline-delimited JSON), a versioned handshake, size
//! limits, and the error replies for frames that are malformed, oversized or
//! of an unknown type. Generic over the command, event and snapshot types.
//!
//! ```text
//! client -> server  {"type":"hello","protocol":1,"client":"attach"}
//! server -> client  {"type":"welcome","protocol":1,"server":"headsup 0.1.0","pid":42,"snapshot":{..}}
//! client -> server  {"type":"command","command":..}          (any number)
//! server -> client  {"type":"event","event":..}              (any number)
//! server -> client  {"type":"resync","snapshot":{..},"dropped":12}  (the client fell behind)
//! server -> client  {"type":"error","code":"malformed","message":".."}
//! either way        {"type":"bye","reason":".."}
//! ```
//! JSON escapes every control character inside strings, so a newline only
//! ever ends a frame.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::{self, BufRead};

/// Bumped whenever a message changes shape; a client of another version is
/// refused with a clear error.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest frame a client may send (commands and prompts are small).
pub const MAX_CLIENT_FRAME: usize = 64 * 1024;

/// Largest frame a server sends (a snapshot with a large attention map).
pub const MAX_SERVER_FRAME: usize = 64 << 20;

/// A message from a viewer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg<C> {
    Hello { protocol: u32, client: String },
    Command { command: C },
    Bye,
}

/// A message from the training process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg<E, S> {
    /// The answer to `hello`: what a new viewer needs to draw the run so far.
    Welcome {
        protocol: u32,
        server: String,
        pid: u32,
        snapshot: S,
    },
    Event {
        event: E,
    },
    /// The viewer fell behind: `dropped` events were skipped; start over from
    /// this snapshot.
    Resync {
        snapshot: S,
        dropped: u64,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
    Bye {
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or a known message with wrong fields.
    Malformed,
    /// Longer than the frame limit.
    Oversized,
    /// JSON with a `type` this server does not know.
    Unknown,
    /// The client speaks another protocol version.
    Version,
    /// The first message was not `hello`.
    NotHello,
    /// The peer is not allowed (another user).
    Refused,
    /// Too many commands per second.
    RateLimited,
    /// The server has as many viewers as it takes.
    Busy,
}

/// One frame read from a stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, without its newline.
    Line(Vec<u8>),
    /// A line longer than the limit; it was skipped up to its newline (or
    /// up to the end of the stream). Holds how many bytes were skipped.
    Oversized(usize),
    /// The stream ended cleanly between frames.
    Eof,
    /// The stream ended inside a frame (a torn last line).
    Truncated(usize),
}

/// Reads one newline-terminated frame of at most `max` bytes. Never holds
/// more than `max` bytes of a frame in memory, whatever the peer sends.
pub fn read_frame<R: BufRead>(r: &mut R, max: usize) -> io::Result<Frame> {
    let mut line = Vec::new();
    let mut skipped = 0usize;
    let mut oversized = false;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(match (oversized, line.is_empty()) {
                (true, _) => Frame::Oversized(skipped),
                (false, true) => Frame::Eof,
                (false, false) => Frame::Truncated(line.len()),
            });
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if oversized {
            skipped += chunk.len();
        } else if line.len() + chunk.len() > max {
            oversized = true;
            skipped = line.len() + chunk.len();
            line = Vec::new();
        } else {
            line.extend_from_slice(chunk);
        }
        let used = done.unwrap_or(buf.len());
        r.consume(used);
        if done.is_some() {
            return Ok(if oversized {
                Frame::Oversized(skipped)
            } else {
                Frame::Line(line)
            });
        }
    }
}

/// Why a frame could not be turned into a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub code: ErrorCode,
    pub message: String,
}

/// Parses a frame as one of the `known` message types: not JSON or bad
/// fields is `Malformed`, a `type` outside `known` is `Unknown`.
pub fn parse_msg<T: DeserializeOwned>(line: &[u8], known: &[&str]) -> Result<T, Rejected> {
    let value: serde_json::Value = serde_json::from_slice(line).map_err(|e| Rejected {
        code: ErrorCode::Malformed,
        message: format!("not a JSON object: {e}"),
    })?;
    let ty = value.get("type").and_then(|t| t.as_str());
    match ty {
        None => Err(Rejected {
            code: ErrorCode::Malformed,
            message: "no \"type\" field; every message is {\"type\": ..}".into(),
        }),
        Some(t) if !known.contains(&t) => Err(Rejected {
            code: ErrorCode::Unknown,
            message: format!(
                "unknown message type {:?}; known: {}",
                crate::sanitize::escape(&t.chars().take(40).collect::<String>()),
                known.join(", ")
            ),
        }),
        Some(t) => {
            let t = t.to_string();
            serde_json::from_value(value).map_err(|e| Rejected {
                code: ErrorCode::Malformed,
                message: format!("bad {t} message: {e}"),
            })
        }
    }
}

/// The message types a client may send.
pub const CLIENT_TYPES: &[&str] = &["hello", "command", "bye"];
/// The message types a server sends.
pub const SERVER_TYPES: &[&str] = &["welcome", "event", "resync", "error", "bye"];

/// One message as a frame: its JSON and a newline.
pub fn encode<T: Serialize>(msg: &T) -> serde_json::Result<Vec<u8>> {
    let mut v = serde_json::to_vec(msg)?;
    v.push(b'\n');
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn frames(input: &[u8], max: usize) -> Vec<Frame> {
        let mut r = io::BufReader::with_capacity(7, Cursor::new(input.to_vec()));
        let mut out = Vec::new();
        loop {
            let f = read_frame(&mut r, max).unwrap();
            let end = matches!(f, Frame::Eof | Frame::Truncated(_))
                || (matches!(f, Frame::Oversized(_)) && r.fill_buf().unwrap().is_empty());
            out.push(f);
            if end {
                return out;
            }
        }
    }

    #[test]
    fn frames_split_on_newlines_across_buffer_refills() {
        assert_eq!(
            frames(b"{\"a\":1}\n\n0123456789\n", 100),
            vec![
                Frame::Line(b"{\"a\":1}".to_vec()),
                Frame::Line(vec![]),
                Frame::Line(b"0123456789".to_vec()),
                Frame::Eof
            ]
        );
    }

    #[test]
    fn oversized_frame_is_skipped_to_its_newline_and_the_next_one_reads() {
        let mut input = vec![b'x'; 1000];
        input.extend_from_slice(b"\nok\n");
        assert_eq!(
            frames(&input, 16),
            vec![
                Frame::Oversized(1000),
                Frame::Line(b"ok".to_vec()),
                Frame::Eof
            ]
        );
    }

    #[test]
    fn torn_last_frame_is_reported_as_truncated() {
        assert_eq!(
            frames(b"ok\n{\"ty", 100),
            vec![Frame::Line(b"ok".to_vec()), Frame::Truncated(4)]
        );
    }

    #[test]
    fn messages_round_trip_with_their_type_tag() {
        let m: ClientMsg<String> = ClientMsg::Command {
            command: "pause".into(),
        };
        let line = encode(&m).unwrap();
        assert_eq!(line, b"{\"type\":\"command\",\"command\":\"pause\"}\n");
        let back: ClientMsg<String> = parse_msg(&line[..line.len() - 1], CLIENT_TYPES).unwrap();
        assert_eq!(back, m);
        let s: ServerMsg<u32, Vec<u32>> = ServerMsg::Resync {
            snapshot: vec![1, 2],
            dropped: 3,
        };
        let line = encode(&s).unwrap();
        let back: ServerMsg<u32, Vec<u32>> =
            parse_msg(&line[..line.len() - 1], SERVER_TYPES).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn bad_frames_get_the_right_error_code() {
        let p = |s: &str| parse_msg::<ClientMsg<String>>(s.as_bytes(), CLIENT_TYPES);
        assert_eq!(p("not json").unwrap_err().code, ErrorCode::Malformed);
        assert_eq!(p("[1,2]").unwrap_err().code, ErrorCode::Malformed);
        assert_eq!(p("{\"x\":1}").unwrap_err().code, ErrorCode::Malformed);
        assert_eq!(
            p("{\"type\":\"launch_missiles\"}").unwrap_err().code,
            ErrorCode::Unknown
        );
        assert_eq!(
            p("{\"type\":\"hello\",\"protocol\":\"one\"}")
                .unwrap_err()
                .code,
            ErrorCode::Malformed
        );
        let e = p("{\"type\":\"\\u001b[2J\"}").unwrap_err();
        assert_eq!(e.code, ErrorCode::Unknown);
        assert!(!e.message.contains('\x1b'), "{}", e.message);
    }
}
