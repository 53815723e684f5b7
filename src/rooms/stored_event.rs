//! How an event is kept in the `Events` table: its id, then the PDU exactly
//! as it was signed, so that what is served to other servers is byte for
//! byte what was signed (room versions 3 and later carry no `event_id` on
//! the wire; the id is the PDU's reference hash, kept beside it).
//!
//! Layout: a format byte (`FORMAT`), the id's length (one byte), the id,
//! then the PDU's JSON. Records written before this layout are the JSON of
//! the PDU with `event_id` added, and start with `{`.

use ruma::{EventId, OwnedEventId};

use super::pdu::Pdu;
use crate::error::{Error, Result};

const FORMAT: u8 = 0;

/// The record for event `event_id` whose signed PDU is `signed`.
pub fn encode(event_id: &EventId, signed: &[u8]) -> Result<Vec<u8>> {
    let id = event_id.as_bytes();
    let len = u8::try_from(id.len()).map_err(|_| Error::bad_json("Event id too long"))?;
    let mut out = Vec::with_capacity(2 + id.len() + signed.len());
    out.push(FORMAT);
    out.push(len);
    out.extend_from_slice(id);
    out.extend_from_slice(signed);
    Ok(out)
}

/// The event id and signed PDU of a record; `None` as id for a record of
/// the older layout, whose JSON names its id.
pub fn decode(record: &[u8]) -> Result<(Option<OwnedEventId>, &[u8])> {
    match record {
        [FORMAT, len, rest @ ..] if rest.len() >= usize::from(*len) => {
            let (id, signed) = rest.split_at(usize::from(*len));
            let id = std::str::from_utf8(id)
                .ok()
                .and_then(|id| EventId::parse(id).ok())
                .ok_or_else(|| Error::internal("corrupt event record"))?;
            Ok((Some(id), signed))
        }
        [b'{', ..] => Ok((None, record)),
        _ => Err(Error::internal("corrupt event record")),
    }
}

/// The event a record holds.
pub fn pdu_of(record: &[u8]) -> Result<Pdu> {
    let (id, signed) = decode(record)?;
    Ok(Pdu::from_signed(id, signed)?)
}

/// The signed PDU a record holds, without the `event_id` older records
/// added (room versions 1 and 2, whose PDUs carry it, keep it).
pub fn signed_pdu(record: &[u8]) -> Result<Vec<u8>> {
    match decode(record)? {
        (Some(_), signed) => Ok(signed.to_vec()),
        (None, legacy) => {
            let mut object: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(legacy)?;
            let carries_id = object
                .get("event_id")
                .and_then(|id| id.as_str())
                .is_some_and(|id| id.contains(':'));
            if !carries_id {
                object.remove("event_id");
            }
            Ok(serde_json::to_vec(&object)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_the_signed_pdu_byte_for_byte() {
        let id = EventId::parse("$abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").unwrap();
        let signed = br#"{"type":"m.room.message","content":{"body":"hi"}}"#;
        let record = encode(&id, signed).unwrap();
        let (got_id, got) = decode(&record).unwrap();
        assert_eq!(got_id.as_deref(), Some(&*id));
        assert_eq!(got, signed);
        assert_eq!(signed_pdu(&record).unwrap(), signed);
    }

    #[test]
    fn older_records_lose_the_id_they_added_but_v1_ids_stay() {
        let v3 = br#"{"event_id":"$abc","type":"m.room.message"}"#;
        assert_eq!(signed_pdu(v3).unwrap(), br#"{"type":"m.room.message"}"#);
        let v1 = br#"{"event_id":"$abc:example.org","type":"m.room.message"}"#;
        assert_eq!(signed_pdu(v1).unwrap(), v1);
        assert!(decode(b"\x07junk").is_err());
        assert!(decode(&[FORMAT, 200, b'$']).is_err());
    }
}
