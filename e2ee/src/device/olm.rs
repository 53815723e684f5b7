//! Olm: to-device messages in (room keys) and out (our room keys).

use serde_json::{json, Value};
use vodozemac::megolm::{InboundGroupSession, SessionConfig as MegolmConfig, SessionKey};
use vodozemac::olm::{OlmMessage, SessionConfig};
use vodozemac::Curve25519PublicKey;

use super::{AiDevice, DeviceError, DeviceResult, Inbound, PeerDevice, MEGOLM, OLM};

/// Most Olm sessions kept per other device.
const MAX_SESSIONS_PER_DEVICE: usize = 5;

/// A Megolm session someone shared with us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRoomKey {
    pub room_id: String,
    pub session_id: String,
    pub sender: String,
}

impl AiDevice {
    /// Decrypts an `m.room.encrypted` to-device event from `sender` and, if
    /// it carries an `m.room_key`, keeps the session. Other payloads are
    /// decrypted (to keep the Olm session in step) and ignored.
    pub fn receive_to_device(
        &mut self,
        sender: &str,
        content: &Value,
    ) -> DeviceResult<Option<ReceivedRoomKey>> {
        if content["algorithm"] != OLM {
            return Err(DeviceError::Malformed("not an Olm message".into()));
        }
        let sender_key_text = content["sender_key"]
            .as_str()
            .ok_or_else(|| DeviceError::Malformed("no sender_key".into()))?;
        let sender_key = Curve25519PublicKey::from_base64(sender_key_text)
            .map_err(|e| DeviceError::Malformed(e.to_string()))?;
        let ours = &content["ciphertext"][self.curve25519()];
        if ours.is_null() {
            return Err(DeviceError::NotForUs);
        }
        let message: OlmMessage = serde_json::from_value(ours.clone())
            .map_err(|e| DeviceError::Malformed(e.to_string()))?;
        let plaintext = self.decrypt_olm(sender_key_text, sender_key, &message)?;
        let payload: Value = serde_json::from_slice(&plaintext)
            .map_err(|e| DeviceError::Malformed(e.to_string()))?;
        if payload["sender"] != sender
            || payload["recipient"] != self.user_id.as_str()
            || payload["recipient_keys"]["ed25519"] != self.ed25519().as_str()
        {
            return Err(DeviceError::Malformed(
                "Olm payload names another sender or recipient".into(),
            ));
        }
        if payload["type"] != "m.room_key" || payload["content"]["algorithm"] != MEGOLM {
            return Ok(None);
        }
        let key = &payload["content"];
        let (Some(room_id), Some(session_key)) =
            (key["room_id"].as_str(), key["session_key"].as_str())
        else {
            return Err(DeviceError::Malformed(
                "room key without room or key".into(),
            ));
        };
        let session_key = SessionKey::from_base64(session_key)
            .map_err(|e| DeviceError::Malformed(e.to_string()))?;
        let session = InboundGroupSession::new(&session_key, MegolmConfig::version_1());
        let session_id = session.session_id();
        if key["session_id"].as_str() != Some(session_id.as_str()) {
            return Err(DeviceError::Malformed(
                "session id does not match its key".into(),
            ));
        }
        self.inbound.insert(
            session_id.clone(),
            Inbound {
                room_id: room_id.to_owned(),
                sender_key: sender_key_text.to_owned(),
                session,
            },
        );
        Ok(Some(ReceivedRoomKey {
            room_id: room_id.to_owned(),
            session_id,
            sender: sender.to_owned(),
        }))
    }

    fn decrypt_olm(
        &mut self,
        sender_key_text: &str,
        sender_key: Curve25519PublicKey,
        message: &OlmMessage,
    ) -> DeviceResult<Vec<u8>> {
        if let Some(sessions) = self.sessions.get_mut(sender_key_text) {
            for session in sessions.iter_mut().rev() {
                if let Ok(plaintext) = session.decrypt(message) {
                    return Ok(plaintext);
                }
            }
        }
        let OlmMessage::PreKey(prekey) = message else {
            return Err(DeviceError::Decrypt(
                "no Olm session decrypts this message".into(),
            ));
        };
        let created = self
            .account
            .create_inbound_session(SessionConfig::version_1(), sender_key, prekey)
            .map_err(|e| DeviceError::Decrypt(e.to_string()))?;
        self.keep_session(sender_key_text, created.session);
        Ok(created.plaintext)
    }

    fn keep_session(&mut self, curve: &str, session: vodozemac::olm::Session) {
        let list = self.sessions.entry(curve.to_owned()).or_default();
        list.push(session);
        if list.len() > MAX_SESSIONS_PER_DEVICE {
            list.remove(0);
        }
    }

    pub fn has_olm_session(&self, peer: &PeerDevice) -> bool {
        self.sessions
            .get(&peer.curve25519.to_base64())
            .is_some_and(|l| !l.is_empty())
    }

    /// Starts an Olm session with `peer` from a one-time key it published
    /// (which must carry the peer's signature).
    pub fn start_olm_session(
        &mut self,
        peer: &PeerDevice,
        one_time_key: &Value,
    ) -> DeviceResult<()> {
        if !super::verify_object(one_time_key, &peer.user_id, &peer.device_id, &peer.ed25519) {
            return Err(DeviceError::Malformed(
                "one-time key is not signed by its device".into(),
            ));
        }
        let key = one_time_key["key"]
            .as_str()
            .ok_or_else(|| DeviceError::Malformed("one-time key without key".into()))?;
        let key = Curve25519PublicKey::from_base64(key)
            .map_err(|e| DeviceError::Malformed(e.to_string()))?;
        let session = self
            .account
            .create_outbound_session(SessionConfig::version_1(), peer.curve25519, key)
            .map_err(|e| DeviceError::Decrypt(e.to_string()))?;
        self.keep_session(&peer.curve25519.to_base64(), session);
        Ok(())
    }

    /// An `m.room.encrypted` to-device content carrying `event_type` and
    /// `content` to `peer` over Olm (a session must exist).
    pub fn encrypt_to_device(
        &mut self,
        peer: &PeerDevice,
        event_type: &str,
        content: Value,
    ) -> DeviceResult<Value> {
        let payload = json!({
            "type": event_type,
            "content": content,
            "sender": self.user_id,
            "sender_device": self.device_id,
            "keys": { "ed25519": self.ed25519() },
            "recipient": peer.user_id,
            "recipient_keys": { "ed25519": peer.ed25519.to_base64() },
        });
        let curve = peer.curve25519.to_base64();
        let own_curve = self.curve25519();
        let session = self
            .sessions
            .get_mut(&curve)
            .and_then(|l| l.last_mut())
            .ok_or_else(|| DeviceError::Decrypt("no Olm session with this device".into()))?;
        let message = session
            .encrypt(payload.to_string())
            .map_err(|e| DeviceError::Decrypt(e.to_string()))?;
        Ok(json!({
            "algorithm": OLM,
            "sender_key": own_curve,
            "ciphertext": { curve: message },
        }))
    }
}
