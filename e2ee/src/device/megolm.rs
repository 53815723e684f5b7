//! Megolm: reading room messages with sessions others shared, and writing
//! them with our own outbound session per room.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use vodozemac::megolm::{GroupSession, GroupSessionPickle, MegolmMessage, SessionConfig};

use super::{AiDevice, DeviceError, DeviceResult, PeerDevice, MEGOLM};

/// When to replace an outbound session (`m.room.encryption`'s fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomSettings {
    pub rotation_period_ms: i64,
    pub rotation_period_msgs: u64,
}

impl Default for RoomSettings {
    fn default() -> Self {
        Self {
            rotation_period_ms: 7 * 24 * 3_600_000,
            rotation_period_msgs: 100,
        }
    }
}

impl RoomSettings {
    pub fn from_encryption_content(content: &Value) -> Self {
        let default = Self::default();
        Self {
            rotation_period_ms: content["rotation_period_ms"]
                .as_i64()
                .filter(|v| *v > 0)
                .unwrap_or(default.rotation_period_ms),
            rotation_period_msgs: content["rotation_period_msgs"]
                .as_u64()
                .filter(|v| *v > 0)
                .unwrap_or(default.rotation_period_msgs),
        }
    }
}

pub struct OutboundState {
    session: GroupSession,
    created_ms: i64,
    messages: u64,
    /// Devices ("user|device") that have this session's key.
    shared_with: HashSet<String>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct PickledOutbound {
    session: String,
    created_ms: i64,
    messages: u64,
    shared_with: Vec<String>,
}

impl OutboundState {
    fn new(now_ms: i64) -> Self {
        Self {
            session: GroupSession::new(SessionConfig::version_1()),
            created_ms: now_ms,
            messages: 0,
            shared_with: HashSet::new(),
        }
    }

    pub(crate) fn pickle(&self, key: &[u8; 32]) -> PickledOutbound {
        PickledOutbound {
            session: self.session.pickle().encrypt(key),
            created_ms: self.created_ms,
            messages: self.messages,
            shared_with: self.shared_with.iter().cloned().collect(),
        }
    }

    pub(crate) fn unpickle(p: PickledOutbound, key: &[u8; 32]) -> DeviceResult<Self> {
        let pickle = GroupSessionPickle::from_encrypted(&p.session, key)
            .map_err(|e| DeviceError::Pickle(e.to_string()))?;
        Ok(Self {
            session: GroupSession::from_pickle(pickle),
            created_ms: p.created_ms,
            messages: p.messages,
            shared_with: p.shared_with.into_iter().collect(),
        })
    }

    pub fn session_id(&self) -> String {
        self.session.session_id()
    }
}

impl AiDevice {
    /// Decrypts an `m.room.encrypted` room event's content; answers the
    /// cleartext event (`type` and `content`).
    pub fn decrypt_room_event(&mut self, room_id: &str, content: &Value) -> DeviceResult<Value> {
        if content["algorithm"] != MEGOLM {
            return Err(DeviceError::Malformed("not a Megolm message".into()));
        }
        let session_id = content["session_id"]
            .as_str()
            .ok_or_else(|| DeviceError::Malformed("no session_id".into()))?;
        let ciphertext = content["ciphertext"]
            .as_str()
            .ok_or_else(|| DeviceError::Malformed("no ciphertext".into()))?;
        let message = MegolmMessage::from_base64(ciphertext)
            .map_err(|e| DeviceError::Malformed(e.to_string()))?;
        let inbound = self
            .inbound
            .get_mut(session_id)
            .ok_or_else(|| DeviceError::UnknownSession(session_id.to_owned()))?;
        if inbound.room_id != room_id {
            return Err(DeviceError::Malformed(
                "session belongs to another room".into(),
            ));
        }
        let decrypted = inbound
            .session
            .decrypt(&message)
            .map_err(|e| DeviceError::Decrypt(e.to_string()))?;
        let event: Value = serde_json::from_slice(&decrypted.plaintext)
            .map_err(|e| DeviceError::Malformed(e.to_string()))?;
        if event["room_id"] != room_id || !event["content"].is_object() {
            return Err(DeviceError::Malformed(
                "decrypted event is for another room".into(),
            ));
        }
        Ok(event)
    }

    /// Rotates the room's outbound session when it is due (age, message
    /// count, or a device it was shared with is no longer a recipient) and
    /// answers the recipients that still need its key.
    pub fn prepare_outbound(
        &mut self,
        room_id: &str,
        settings: RoomSettings,
        recipients: &[PeerDevice],
        now_ms: i64,
    ) -> Vec<PeerDevice> {
        let labels: HashSet<String> = recipients.iter().map(PeerDevice::label).collect();
        let rotate = match self.outbound.get(room_id) {
            None => true,
            Some(o) => {
                o.messages >= settings.rotation_period_msgs
                    || now_ms - o.created_ms >= settings.rotation_period_ms
                    || o.shared_with.iter().any(|d| !labels.contains(d))
            }
        };
        if rotate {
            self.outbound
                .insert(room_id.to_owned(), OutboundState::new(now_ms));
        }
        let shared = &self.outbound[room_id].shared_with;
        recipients
            .iter()
            .filter(|p| !shared.contains(&p.label()))
            .cloned()
            .collect()
    }

    /// The `m.room_key` content for the room's current outbound session.
    pub fn room_key_content(&self, room_id: &str) -> Option<Value> {
        let o = self.outbound.get(room_id)?;
        Some(json!({
            "algorithm": MEGOLM,
            "room_id": room_id,
            "session_id": o.session.session_id(),
            "session_key": o.session.session_key().to_base64(),
        }))
    }

    pub fn mark_shared(&mut self, room_id: &str, peers: &[PeerDevice]) {
        if let Some(o) = self.outbound.get_mut(room_id) {
            o.shared_with.extend(peers.iter().map(PeerDevice::label));
        }
    }

    /// Encrypts an event for the room with its outbound session (call
    /// [`Self::prepare_outbound`] first).
    pub fn encrypt_room_event(
        &mut self,
        room_id: &str,
        event_type: &str,
        content: &Value,
    ) -> DeviceResult<Value> {
        let sender_key = self.curve25519();
        let device_id = self.device_id.clone();
        let o = self
            .outbound
            .get_mut(room_id)
            .ok_or_else(|| DeviceError::UnknownSession(room_id.to_owned()))?;
        let plaintext = json!({ "type": event_type, "content": content, "room_id": room_id });
        let message = o.session.encrypt(plaintext.to_string());
        o.messages += 1;
        let mut out = json!({
            "algorithm": MEGOLM,
            "sender_key": sender_key,
            "ciphertext": message.to_base64(),
            "session_id": o.session.session_id(),
            "device_id": device_id,
        });
        if let Some(relation) = content.get("m.relates_to") {
            out["m.relates_to"] = relation.clone();
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;

    fn peer_of(d: &AiDevice) -> PeerDevice {
        PeerDevice::from_device_keys(&d.device_keys()).expect("valid self-signed keys")
    }

    /// Two devices: `a` shares a room key with `b` over Olm, encrypts a
    /// message, `b` decrypts it; the state survives pickling.
    #[test]
    fn room_key_over_olm_then_megolm_round_trip() {
        let key = [7u8; 32];
        let mut a = AiDevice::new("@a_ai:x", "AAA");
        let mut b = AiDevice::new("@b:x", "BBB");
        let b_peer = peer_of(&b);
        let otk = b.one_time_keys(1).into_values().next().unwrap();
        b.mark_published();
        a.start_olm_session(&b_peer, &otk).unwrap();
        let needs = a.prepare_outbound(
            "!r:x",
            RoomSettings::default(),
            std::slice::from_ref(&b_peer),
            0,
        );
        assert_eq!(needs.len(), 1);
        let to_device = a
            .encrypt_to_device(&b_peer, "m.room_key", a.room_key_content("!r:x").unwrap())
            .unwrap();
        a.mark_shared("!r:x", &needs);
        let event = a
            .encrypt_room_event("!r:x", "m.room.message", &json!({ "body": "hi" }))
            .unwrap();

        let mut b = AiDevice::unpickle(&b.pickle(&key), &key).unwrap();
        let got = b.receive_to_device("@a_ai:x", &to_device).unwrap().unwrap();
        assert_eq!(got.room_id, "!r:x");
        let mut b = AiDevice::unpickle(&b.pickle(&key), &key).unwrap();
        let clear = b.decrypt_room_event("!r:x", &event).unwrap();
        assert_eq!(clear["content"]["body"], "hi");
        assert!(
            b.decrypt_room_event("!other:x", &event).is_err(),
            "a session is bound to its room"
        );
        assert!(
            AiDevice::unpickle(&b.pickle(&key), &[8u8; 32]).is_err(),
            "the pickle needs its key"
        );
        // Nothing to share again until someone new arrives or it rotates.
        let a_peer = b_peer.clone();
        assert!(a
            .prepare_outbound("!r:x", RoomSettings::default(), &[a_peer], 1)
            .is_empty());
        let settings = RoomSettings {
            rotation_period_ms: 10,
            rotation_period_msgs: 100,
        };
        assert_eq!(
            a.prepare_outbound("!r:x", settings, std::slice::from_ref(&b_peer), 1_000)
                .len(),
            1,
            "rotated by age"
        );
    }

    #[test]
    fn tampered_keys_are_refused() {
        let d = AiDevice::new("@a:x", "DEV");
        let mut keys = d.device_keys();
        keys["user_id"] = json!("@evil:x");
        assert!(PeerDevice::from_device_keys(&keys).is_none());
    }
}
