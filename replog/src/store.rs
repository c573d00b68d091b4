//! The messages of the primary/secondary log, as the primary and every secondary hold them: in
//! memory in id order (message `id` is at index `id - 1`), each one also a record in the node's
//! durable log, so that record number and message id are the same number.
//!
//! Holding every message in memory keeps reads a slice copy; a real log of billions of messages
//! would keep an index of offsets instead and read the segments back.

use flash_common::date::utc_millis;
use flash_common::Request;
use serde_json::{json, Value};

/// One message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// 1, 2, 3, ... in the order the primary accepted them.
    pub id: u64,
    /// The client's text.
    pub text: String,
    /// When the primary accepted it, in milliseconds since the epoch.
    pub at_ms: u64,
}

/// The record tag of a message (so that a log holding something else is noticed, not misread).
const TAG: u8 = b'M';

impl Message {
    /// The durable record: tag, id, time, then the text.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(17 + self.text.len());
        out.push(TAG);
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&self.at_ms.to_le_bytes());
        out.extend_from_slice(self.text.as_bytes());
        out
    }

    /// Reads a record back; `None` if it is not a message record.
    pub fn decode(bytes: &[u8]) -> Option<Message> {
        if bytes.len() < 17 || bytes[0] != TAG {
            return None;
        }
        let id = u64::from_le_bytes(bytes[1..9].try_into().ok()?);
        let at_ms = u64::from_le_bytes(bytes[9..17].try_into().ok()?);
        let text = String::from_utf8(bytes[17..].to_vec()).ok()?;
        Some(Message { id, text, at_ms })
    }

    /// The message as `GET /messages` lists it.
    pub fn to_json(&self) -> Value {
        json!({"message": self.text, "meta": {"message_id": self.id, "registered_at": utc_millis(self.at_ms)}})
    }
}

/// Reads the messages back from a log's records, checking that they are 1, 2, 3, ...
pub fn recover(records: &[Vec<u8>]) -> Result<Vec<Message>, String> {
    let mut out = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let m = Message::decode(r).ok_or_else(|| format!("record {} is not a message", i + 1))?;
        if m.id != i as u64 + 1 {
            return Err(format!("record {} holds message {}", i + 1, m.id));
        }
        out.push(m);
    }
    Ok(out)
}

/// [`recover`] for the log in `dir`, with an error that names the folder and says what to do: a
/// log whose ids are out of order is not one a single node writes (two nodes shared the folder
/// before it was locked, or it was edited), so it is left for a person, not repaired.
pub fn recover_in(dir: &std::path::Path, records: &[Vec<u8>]) -> std::io::Result<Vec<Message>> {
    recover(records).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "the log in {} is not in order ({e}); one node never writes it so: move the folder \
                 aside to start afresh (a secondary then catches up from the primary)",
                dir.display()
            ),
        )
    })
}

/// `GET /messages[?after=ID&limit=N]` over the first `upto` messages: `{"data": [...]}`, plus
/// `"next_after"` when a limit cut the page short (pass it as `after` for the next page).
pub fn list(messages: &[Message], upto: u64, req: &Request<'_>) -> Result<Value, String> {
    let number = |name: &str| -> Result<Option<u64>, String> {
        req.query_param(name)
            .map(|v| v.parse::<u64>().map_err(|_| format!("{name} must be a whole number, not `{v}`")))
            .transpose()
    };
    let after = number("after")?.unwrap_or(0);
    let limit = number("limit")?.unwrap_or(u64::MAX);
    if limit == 0 {
        // An empty page whose `next_after` is where it started would send a client that pages
        // through the log round the same request for ever.
        return Err("limit must be at least 1".into());
    }
    let upto = (upto as usize).min(messages.len());
    let start = (after as usize).min(upto);
    let end = start.saturating_add(limit.min(usize::MAX as u64) as usize).min(upto);
    let data: Vec<Value> = messages[start..end].iter().map(Message::to_json).collect();
    let mut page = json!({"data": data});
    if end < upto {
        page["next_after"] = json!(end);
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_must_be_in_order() {
        let m = Message { id: 7, text: "héllo".into(), at_ms: 1_700_000_000_123 };
        assert_eq!(Message::decode(&m.encode()), Some(m.clone()));
        assert_eq!(Message::decode(b"Xjunk"), None);
        let one = Message { id: 1, ..m.clone() }.encode();
        assert!(recover(&[one]).is_ok());
        assert!(recover(&[m.encode()]).unwrap_err().contains("holds message 7"));
        let said = recover_in(std::path::Path::new("/data/m"), &[m.encode()]).unwrap_err().to_string();
        assert!(said.contains("/data/m") && said.contains("holds message 7") && said.contains("aside"), "{said}");
    }
}
