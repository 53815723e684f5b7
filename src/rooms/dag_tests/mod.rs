//! The room DAG as other servers build it: events created and signed by
//! hand with two servers' keys (never through the client API), appended in
//! the orders federation would deliver them.

mod backfill;
mod forks;
mod joined_servers;
mod races;
mod resolution;
mod resolution_v1;
mod served;
mod verdicts;

use std::sync::Arc;

use matrixos_federation::{hash_and_sign_pdu, room_id_from_create_event_id, ServerSigningKey};
use matrixos_storage::{Db, DbOptions};
use ruma::canonical_json::CanonicalJsonObject;
use ruma::room_version_rules::{EventIdFormatVersion, EventsReferenceFormatVersion};
use ruma::{OwnedRoomId, OwnedServerName, RoomVersionId};
use serde_json::{json, Value};

use super::remote::{RemotePdu, Snapshot};
use super::{Rooms, Verdict};
use crate::store::Store;

/// A server that signs events.
pub struct Peer {
    name: OwnedServerName,
    key: ServerSigningKey,
}

impl Peer {
    fn new(name: &str, seed: u8) -> Self {
        Self {
            name: OwnedServerName::try_from(name).unwrap(),
            key: ServerSigningKey::from_seed(&[seed; 32], "k1").unwrap(),
        }
    }
}

/// A room's events built by hand, and a room core to give them to.
pub struct Dag {
    pub rooms: Arc<Rooms>,
    pub version: RoomVersionId,
    pub room_id: Option<OwnedRoomId>,
    pub a: Peer,
    pub b: Peer,
    /// Reference hashes of the events built, by id (room versions 1 and 2
    /// name prev and auth events with them).
    hashes: std::collections::HashMap<String, String>,
    _dir: tempfile::TempDir,
}

/// What an event says, apart from its place in the DAG.
pub struct Spec<'a> {
    pub sender: &'a str,
    pub kind: &'a str,
    pub state_key: Option<&'a str>,
    pub content: Value,
    pub ts: u64,
}

pub fn state<'a>(
    sender: &'a str,
    kind: &'a str,
    key: &'a str,
    content: Value,
    ts: u64,
) -> Spec<'a> {
    Spec {
        sender,
        kind,
        state_key: Some(key),
        content,
        ts,
    }
}

pub fn message<'a>(sender: &'a str, body: &str, ts: u64) -> Spec<'a> {
    Spec {
        sender,
        kind: "m.room.message",
        state_key: None,
        content: json!({ "msgtype": "m.text", "body": body }),
        ts,
    }
}

pub fn member<'a>(sender: &'a str, target: &'a str, membership: &str, ts: u64) -> Spec<'a> {
    state(
        sender,
        "m.room.member",
        target,
        json!({ "membership": membership }),
        ts,
    )
}

pub const ALICE: &str = "@alice:a.test";
pub const BOB: &str = "@bob:b.test";
pub const EVE: &str = "@eve:b.test";

impl Dag {
    pub fn new(version: RoomVersionId) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("matrixos=info")
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(
            &dir.path().join("db"),
            DbOptions {
                sync_writes: false,
                ..DbOptions::default()
            },
        )
        .unwrap();
        let local = Arc::new(ServerSigningKey::from_seed(&[9; 32], "k1").unwrap());
        let rooms = Arc::new(
            Rooms::new(
                Store::new(db),
                OwnedServerName::try_from("us.test").unwrap(),
                local,
            )
            .unwrap(),
        );
        Self {
            rooms,
            version,
            room_id: None,
            a: Peer::new("a.test", 1),
            b: Peer::new("b.test", 2),
            hashes: Default::default(),
            _dir: dir,
        }
    }

    fn rules(&self) -> ruma::room_version_rules::RoomVersionRules {
        self.version.rules().unwrap()
    }

    /// Builds and signs an event with the key of its sender's server.
    pub fn event(&mut self, spec: Spec<'_>, prev: &[&RemotePdu], auth: &[&RemotePdu]) -> RemotePdu {
        let rules = self.rules();
        let peer = if spec.sender.ends_with(":a.test") {
            &self.a
        } else {
            &self.b
        };
        // From room version 12 the room id names the create event, which
        // auth events no longer list.
        let create_implied = rules.authorization.room_create_event_id_as_room_id;
        let depth = prev
            .iter()
            .map(|p| u64::from(p.pdu.depth))
            .max()
            .unwrap_or(0)
            + 1;
        let with_hashes = rules.events_reference_format == EventsReferenceFormatVersion::V1;
        let refer = |p: &&RemotePdu| {
            let id = p.event_id().to_string();
            if with_hashes {
                json!([id, { "sha256": self.hashes[&id] }])
            } else {
                json!(id)
            }
        };
        let mut pdu = json!({
            "type": spec.kind,
            "sender": spec.sender,
            "content": spec.content,
            "origin_server_ts": spec.ts,
            "depth": depth,
            "prev_events": prev.iter().map(refer).collect::<Vec<_>>(),
            "auth_events": auth
                .iter()
                .filter(|p| !(create_implied && p.pdu.kind.to_string() == "m.room.create"))
                .map(refer)
                .collect::<Vec<_>>(),
        });
        if rules.event_id_format == EventIdFormatVersion::V1 {
            pdu["event_id"] = json!(format!("${}:{}", self.hashes.len(), peer.name));
        }
        if let Some(key) = spec.state_key {
            pdu["state_key"] = json!(key);
        }
        let is_v12_create =
            spec.kind == "m.room.create" && rules.authorization.room_create_event_id_as_room_id;
        if !is_v12_create {
            let room = self
                .room_id
                .get_or_insert_with(|| OwnedRoomId::try_from("!room:a.test").unwrap());
            pdu["room_id"] = json!(room);
        }
        let mut object: CanonicalJsonObject = serde_json::from_value(pdu).unwrap();
        hash_and_sign_pdu(&peer.name, &peer.key, &mut object, &rules).unwrap();
        let hash = ruma::signatures::reference_hash(&object, &rules).unwrap();
        let remote = RemotePdu::parse(&self.version, object).unwrap();
        self.hashes.insert(remote.event_id().to_string(), hash);
        if is_v12_create {
            self.room_id = Some(room_id_from_create_event_id(remote.event_id()).unwrap());
        }
        remote
    }

    pub fn room(&self) -> OwnedRoomId {
        self.room_id.clone().unwrap()
    }

    /// Appends an event and returns its verdict.
    pub async fn append(&self, event: &RemotePdu) -> Verdict {
        self.rooms
            .append_remote(&self.room(), event.clone())
            .await
            .unwrap()
            .verdict
    }

    /// A state value of the room's current state (its content's `field`).
    pub fn current(&self, kind: &str, key: &str) -> Option<Value> {
        let (_, record) = self.rooms.record_of(&self.room()).unwrap();
        self.in_state(record.state, kind, key)
    }

    pub fn in_state(&self, state: u64, kind: &str, key: &str) -> Option<Value> {
        self.rooms
            .state_event(state, kind, key)
            .unwrap()
            .map(|e| e.content_value())
    }

    pub fn extremities(&self) -> Vec<String> {
        let (_, record) = self.rooms.record_of(&self.room()).unwrap();
        let mut out: Vec<String> = record.extremities.iter().map(|e| e.to_string()).collect();
        out.sort();
        out
    }
}

/// The base of every scenario: alice (on a.test) creates a public room and
/// sets power levels; bob (on b.test) joins; this server learns the room
/// from a snapshot at bob's join.
pub struct Base {
    pub create: RemotePdu,
    pub alice_join: RemotePdu,
    pub power: RemotePdu,
    pub join_rules: RemotePdu,
    pub bob_join: RemotePdu,
}

/// Power levels: alice 100 (unless the room version makes her, as the
/// creator, more than that), bob `bob`, state events need 50.
pub fn power_content(dag: &Dag, bob: i64, extra: Value) -> Value {
    let mut users = serde_json::Map::new();
    if !dag.rules().authorization.explicitly_privilege_room_creators {
        users.insert(ALICE.into(), json!(100));
    }
    if bob != 0 {
        users.insert(BOB.into(), json!(bob));
    }
    let mut content =
        json!({ "users": users, "state_default": 50, "events_default": 0, "ban": 50, "kick": 50 });
    if let (Some(c), Some(extra)) = (content.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    content
}

impl Base {
    pub async fn start(dag: &mut Dag, bob_level: i64) -> Self {
        Self::start_after(dag, bob_level, &[]).await.0
    }

    /// As [`Base::start`], with alice's `messages` (ts 5 on) between the
    /// join rules and bob's join: history this server only sees by backfill.
    pub async fn start_after(
        dag: &mut Dag,
        bob_level: i64,
        messages: &[&str],
    ) -> (Self, Vec<RemotePdu>) {
        let version = dag.version.to_string();
        let create = dag.event(
            state(
                ALICE,
                "m.room.create",
                "",
                json!({ "creator": ALICE, "room_version": version }),
                1,
            ),
            &[],
            &[],
        );
        let alice_join = dag.event(member(ALICE, ALICE, "join", 2), &[&create], &[&create]);
        let power = dag.event(
            state(
                ALICE,
                "m.room.power_levels",
                "",
                power_content(dag, bob_level, json!({})),
                3,
            ),
            &[&alice_join],
            &[&create, &alice_join],
        );
        let join_rules = dag.event(
            state(
                ALICE,
                "m.room.join_rules",
                "",
                json!({ "join_rule": "public" }),
                4,
            ),
            &[&power],
            &[&create, &alice_join, &power],
        );
        let mut history: Vec<RemotePdu> = Vec::with_capacity(messages.len());
        for (i, body) in messages.iter().enumerate() {
            let prev = history.last().unwrap_or(&join_rules).clone();
            let auth = [&create, &alice_join, &power];
            history.push(dag.event(message(ALICE, body, 5 + i as u64), &[&prev], &auth));
        }
        let last = history.last().unwrap_or(&join_rules).clone();
        let bob_join = dag.event(
            member(BOB, BOB, "join", 5 + messages.len() as u64),
            &[&last],
            &[&create, &power, &join_rules],
        );
        dag.rooms
            .join_from_snapshot(Snapshot {
                room_id: dag.room(),
                version: dag.version.clone(),
                state: vec![
                    create.clone(),
                    alice_join.clone(),
                    power.clone(),
                    join_rules.clone(),
                ],
                auth_chain: vec![],
                join: bob_join.clone(),
            })
            .await
            .unwrap();
        let base = Self {
            create,
            alice_join,
            power,
            join_rules,
            bob_join,
        };
        (base, history)
    }
}

/// The room versions every scenario runs in.
pub fn versions() -> [RoomVersionId; 3] {
    [RoomVersionId::V10, RoomVersionId::V11, RoomVersionId::V12]
}
