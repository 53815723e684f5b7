//! The spec's size limits on events (server-server API, "Size limits"; the
//! client-server API refers to them): a whole PDU at most 65,536 bytes of
//! canonical JSON, its `type` and `state_key` at most 255 bytes each.
//!
//! They are checked before an event is built, so an oversized request is
//! refused with 413 `M_TOO_LARGE` (what Synapse answers, for the fields as
//! for the whole event) rather than failing later inside hashing, and before
//! anything is written.

use ruma::signatures::JsonError;

use super::send::EventDraft;
use crate::error::{Error, Result};

/// The largest PDU, in bytes of canonical JSON.
pub const MAX_PDU_BYTES: usize = 65_536;
/// The longest `type` and `state_key`, in bytes.
pub const MAX_KEY_BYTES: usize = 255;

/// Checks what a draft's size alone decides: its type, its state key, and
/// a content (`content_json`, serialised) that cannot fit in any event.
pub fn check_draft(draft: &EventDraft, content_json: &str) -> Result<()> {
    if draft.kind.to_string().len() > MAX_KEY_BYTES {
        return Err(Error::too_large(format!(
            "Event type is longer than {MAX_KEY_BYTES} bytes"
        )));
    }
    if draft
        .state_key
        .as_ref()
        .is_some_and(|k| k.len() > MAX_KEY_BYTES)
    {
        return Err(Error::too_large(format!(
            "State key is longer than {MAX_KEY_BYTES} bytes"
        )));
    }
    if content_json.len() > MAX_PDU_BYTES {
        return Err(event_too_large());
    }
    Ok(())
}

/// Checks the stored form of a built event. It carries `event_id` besides
/// the PDU's fields, so this is a few dozen bytes stricter than the spec.
pub fn check_stored(stored: &[u8]) -> Result<()> {
    if stored.len() > MAX_PDU_BYTES {
        return Err(event_too_large());
    }
    Ok(())
}

/// Maps a hashing or signing failure: ruma refuses to hash a PDU over the
/// limit, which is the client's doing; anything else is ours.
pub fn signing_error(e: matrixos_federation::Error) -> Error {
    match e {
        matrixos_federation::Error::Signing(JsonError::PduTooLarge) => event_too_large(),
        other => Error::internal(format!("signing event: {other}")),
    }
}

fn event_too_large() -> Error {
    Error::too_large(format!("Event is larger than {MAX_PDU_BYTES} bytes"))
}
