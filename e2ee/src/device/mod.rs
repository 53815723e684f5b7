//! The AI user's own end-to-end encryption device, on vodozemac: an Olm
//! account whose identity and one-time keys are published like any
//! client's, Olm sessions for receiving and sending room keys, inbound
//! Megolm sessions for reading rooms and one outbound Megolm session per
//! room for writing, rotated as clients rotate them. The whole state
//! pickles (encrypted) into one blob the server stores.

mod megolm;
mod olm;
mod peer;
mod signing;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use vodozemac::megolm::InboundGroupSession;
use vodozemac::olm::{Account, Session};

pub use megolm::{OutboundState, RoomSettings};
pub use olm::ReceivedRoomKey;
pub use peer::PeerDevice;
pub use signing::{sign_object, verify_object};

pub const OLM: &str = "m.olm.v1.curve25519-aes-sha2";
pub const MEGOLM: &str = "m.megolm.v1.aes-sha2";

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("not encrypted for this device")]
    NotForUs,
    #[error("malformed encrypted content: {0}")]
    Malformed(String),
    #[error("cannot decrypt: {0}")]
    Decrypt(String),
    #[error("unknown Megolm session {0}")]
    UnknownSession(String),
    #[error("stored crypto state is unreadable: {0}")]
    Pickle(String),
}

pub type DeviceResult<T> = Result<T, DeviceError>;

/// An inbound Megolm session and where it may be used.
pub(crate) struct Inbound {
    pub room_id: String,
    pub sender_key: String,
    pub session: InboundGroupSession,
}

pub struct AiDevice {
    user_id: String,
    device_id: String,
    account: Account,
    /// Olm sessions by the other device's curve25519 key, newest last.
    sessions: HashMap<String, Vec<Session>>,
    inbound: HashMap<String, Inbound>,
    outbound: HashMap<String, OutboundState>,
}

#[derive(Serialize, Deserialize)]
struct Pickled {
    user_id: String,
    device_id: String,
    account: String,
    sessions: Vec<(String, String)>,
    inbound: Vec<(String, String, String)>,
    outbound: Vec<(String, megolm::PickledOutbound)>,
}

impl AiDevice {
    pub fn new(user_id: &str, device_id: &str) -> Self {
        Self {
            user_id: user_id.to_owned(),
            device_id: device_id.to_owned(),
            account: Account::new(),
            sessions: HashMap::new(),
            inbound: HashMap::new(),
            outbound: HashMap::new(),
        }
    }

    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    pub fn curve25519(&self) -> String {
        self.account.curve25519_key().to_base64()
    }

    pub fn ed25519(&self) -> String {
        self.account.ed25519_key().to_base64()
    }

    /// The signed device keys to publish.
    pub fn device_keys(&self) -> Value {
        let d = &self.device_id;
        let mut keys = json!({
            "user_id": self.user_id,
            "device_id": d,
            "algorithms": [OLM, MEGOLM],
            "keys": {
                format!("curve25519:{d}"): self.curve25519(),
                format!("ed25519:{d}"): self.ed25519(),
            },
        });
        sign_object(&mut keys, &self.user_id, d, |m| self.account.sign(m));
        keys
    }

    /// Makes one-time keys up to `target` unpublished ones and returns them
    /// signed, as `/keys/upload` takes them; call [`Self::mark_published`]
    /// once they are stored.
    pub fn one_time_keys(&mut self, wanted: usize) -> BTreeMap<String, Value> {
        if wanted > 0 {
            self.account.generate_one_time_keys(wanted);
        }
        self.signed_keys(
            self.account
                .one_time_keys()
                .into_iter()
                .map(|(id, k)| (id.to_base64(), k)),
            false,
        )
    }

    /// A fresh fallback key, signed, when the last one was used.
    pub fn fallback_key(&mut self) -> BTreeMap<String, Value> {
        if self.account.fallback_key().is_empty() {
            self.account.generate_fallback_key();
        }
        self.signed_keys(
            self.account
                .fallback_key()
                .into_iter()
                .map(|(id, k)| (id.to_base64(), k)),
            true,
        )
    }

    fn signed_keys(
        &self,
        keys: impl Iterator<Item = (String, vodozemac::Curve25519PublicKey)>,
        fallback: bool,
    ) -> BTreeMap<String, Value> {
        keys.map(|(id, key)| {
            let mut object = json!({ "key": key.to_base64() });
            if fallback {
                object["fallback"] = json!(true);
            }
            sign_object(&mut object, &self.user_id, &self.device_id, |m| {
                self.account.sign(m)
            });
            (format!("signed_curve25519:{id}"), object)
        })
        .collect()
    }

    pub fn mark_published(&mut self) {
        self.account.mark_keys_as_published();
    }

    /// The whole state, encrypted with `key`.
    pub fn pickle(&self, key: &[u8; 32]) -> Vec<u8> {
        let pickled = Pickled {
            user_id: self.user_id.clone(),
            device_id: self.device_id.clone(),
            account: self.account.pickle().encrypt(key),
            sessions: self
                .sessions
                .iter()
                .flat_map(|(curve, list)| {
                    list.iter()
                        .map(move |s| (curve.clone(), s.pickle().encrypt(key)))
                })
                .collect(),
            inbound: self
                .inbound
                .values()
                .map(|i| {
                    (
                        i.room_id.clone(),
                        i.sender_key.clone(),
                        i.session.pickle().encrypt(key),
                    )
                })
                .collect(),
            outbound: self
                .outbound
                .iter()
                .map(|(room, o)| (room.clone(), o.pickle(key)))
                .collect(),
        };
        serde_json::to_vec(&pickled).unwrap_or_default()
    }

    pub fn unpickle(bytes: &[u8], key: &[u8; 32]) -> DeviceResult<Self> {
        let bad = |e: &dyn std::fmt::Display| DeviceError::Pickle(e.to_string());
        let p: Pickled = serde_json::from_slice(bytes).map_err(|e| bad(&e))?;
        let account =
            vodozemac::olm::AccountPickle::from_encrypted(&p.account, key).map_err(|e| bad(&e))?;
        let mut device = Self::new(&p.user_id, &p.device_id);
        device.account = Account::from_pickle(account);
        for (curve, s) in p.sessions {
            let pickle =
                vodozemac::olm::SessionPickle::from_encrypted(&s, key).map_err(|e| bad(&e))?;
            device
                .sessions
                .entry(curve)
                .or_default()
                .push(Session::from_pickle(pickle));
        }
        for (room_id, sender_key, s) in p.inbound {
            let pickle = vodozemac::megolm::InboundGroupSessionPickle::from_encrypted(&s, key)
                .map_err(|e| bad(&e))?;
            let session = InboundGroupSession::from_pickle(pickle);
            device.inbound.insert(
                session.session_id(),
                Inbound {
                    room_id,
                    sender_key,
                    session,
                },
            );
        }
        for (room, o) in p.outbound {
            device
                .outbound
                .insert(room, OutboundState::unpickle(o, key)?);
        }
        Ok(device)
    }
}
