//! Room creation: the create event, the creator's join, power levels, the
//! preset's rules, initial state, name, topic, alias and invites, in the
//! order Synapse sends them, all built before any is stored.

use matrixos_federation::room_id_from_create_event_id;
use matrixos_storage::Batch;
use ruma::events::StateEventType;
use ruma::room_version_rules::AuthorizationRules;
use ruma::{OwnedRoomAliasId, OwnedRoomId, OwnedUserId, RoomId, RoomVersionId, UserId};
use serde_json::{json, Map, Value};

use super::send::{BuiltEvent, EventDraft};
use super::state_view::DraftState;
use super::{RoomRecord, Rooms};
use crate::error::{Error, Result};
use crate::random::random_string;
use crate::store::Wake;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    PrivateChat,
    TrustedPrivateChat,
    PublicChat,
}

/// Everything `/createRoom` can ask for.
#[derive(Debug, Clone)]
pub struct CreateRoom {
    pub version: RoomVersionId,
    pub preset: Preset,
    pub name: Option<String>,
    pub topic: Option<String>,
    pub alias: Option<OwnedRoomAliasId>,
    pub invite: Vec<OwnedUserId>,
    pub is_direct: bool,
    pub creation_content: Map<String, Value>,
    pub power_level_override: Option<Map<String, Value>>,
    pub initial_state: Vec<EventDraft>,
    /// The creator's display name and avatar, for their join event.
    pub creator_profile: Map<String, Value>,
}

pub const SUPPORTED_VERSIONS: [&str; 12] = [
    "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12",
];

fn merge(base: &mut Map<String, Value>, overrides: Map<String, Value>) {
    for (k, v) in overrides {
        base.insert(k, v);
    }
}

impl Rooms {
    fn power_levels(
        &self,
        creator: &UserId,
        opts: &CreateRoom,
        creators_privileged: bool,
    ) -> Map<String, Value> {
        let mut users = Map::new();
        if !creators_privileged {
            users.insert(creator.to_string(), json!(100));
            if opts.preset == Preset::TrustedPrivateChat {
                for u in &opts.invite {
                    users.insert(u.to_string(), json!(100));
                }
            }
        }
        let invite = if opts.preset == Preset::PublicChat {
            50
        } else {
            0
        };
        let mut content = json!({
            "users": users,
            "users_default": 0,
            "events": {
                "m.room.name": 50, "m.room.power_levels": 100, "m.room.history_visibility": 100,
                "m.room.canonical_alias": 50, "m.room.avatar": 50, "m.room.tombstone": 100,
                "m.room.server_acl": 100, "m.room.encryption": 100
            },
            "events_default": 0, "state_default": 50, "ban": 50, "kick": 50, "redact": 50,
            "invite": invite,
            "notifications": { "room": 50 }
        });
        if let (Some(over), Some(map)) = (&opts.power_level_override, content.as_object_mut()) {
            merge(map, over.clone());
        }
        content.as_object().cloned().unwrap_or_default()
    }

    /// Creates a room and returns its id once every initial event is
    /// durable. Every event is built and authorised before any is stored,
    /// and all of them are stored in one batch: a refused event (too large,
    /// forbidden, malformed) leaves nothing behind.
    pub async fn create_room(&self, creator: &UserId, opts: CreateRoom) -> Result<OwnedRoomId> {
        if !SUPPORTED_VERSIONS.contains(&opts.version.as_str()) {
            return Err(Error::unsupported_room_version(format!(
                "Room version {} is not supported",
                opts.version
            )));
        }
        if let Some(alias) = &opts.alias {
            if self.alias_target(alias)?.is_some() {
                return Err(Error::room_in_use("Room alias already taken"));
            }
        }
        let (room_id, built) = self.build_initial_events(creator, &opts)?;
        let lock = self.lock(&room_id);
        let _guard = lock.lock().await;
        let mut batch = Batch::new();
        let short_room = self.allocate_room(&mut batch, &room_id);
        if let Some(alias) = &opts.alias {
            self.put_alias_into(&mut batch, alias, &room_id, creator)?;
        }
        self.remember_short_room(&room_id, short_room);
        let mut head = RoomRecord {
            room_id: room_id.clone(),
            version: opts.version.clone(),
            state: 0,
            extremities: vec![],
            depth: 0,
        };
        let mut positions = Vec::with_capacity(built.len());
        let mut wake = Wake::none();
        for event in built {
            match self.stage_built(short_room, head, event, None, &mut batch) {
                Ok((next, position, concerns)) => {
                    head = next;
                    positions.push(position);
                    wake.merge(concerns);
                }
                Err(e) => {
                    self.forget_room(&room_id, short_room);
                    return Err(e);
                }
            }
        }
        if let Err(e) = self.store.commit(batch, positions, wake).await {
            self.forget_room(&room_id, short_room);
            return Err(e);
        }
        Ok(room_id)
    }

    /// Builds and authorises the room's initial events, in the order
    /// Synapse sends them, each on the ones before it; stores nothing.
    fn build_initial_events(
        &self,
        creator: &UserId,
        opts: &CreateRoom,
    ) -> Result<(OwnedRoomId, Vec<BuiltEvent>)> {
        let rules = opts
            .version
            .rules()
            .ok_or_else(|| Error::unsupported_room_version("Unsupported room version"))?;
        let privileged_creators = rules.authorization.explicitly_privilege_room_creators;
        let by_hash = rules.authorization.room_create_event_id_as_room_id;
        let provisional_id = if by_hash {
            // Replaced by the create event's hash below; never stored.
            RoomId::parse(format!("!provisional:{}", self.server_name))
        } else {
            RoomId::parse(format!("!{}:{}", random_string(18), self.server_name))
        }
        .map_err(|e| Error::internal(format!("room id: {e}")))?;
        let mut head = RoomRecord {
            room_id: provisional_id,
            version: opts.version.clone(),
            state: 0,
            extremities: vec![],
            depth: 0,
        };
        let mut state = DraftState::default();
        let create = EventDraft::state(
            StateEventType::RoomCreate,
            "",
            Value::Object(create_content(creator, opts, &rules.authorization)),
        );
        let create = self.build_on(&head, &state, creator, create, !by_hash)?;
        if by_hash {
            head.room_id = room_id_from_create_event_id(&create.pdu.event_id)
                .map_err(|e| Error::internal(format!("room id: {e}")))?;
        }
        let mut built = vec![create];
        for draft in self.initial_drafts(creator, opts, privileged_creators) {
            if let Some(previous) = built.last() {
                state.add(&previous.pdu);
                head.extremities = vec![previous.pdu.event_id.clone()];
                head.depth += 1;
            }
            built.push(self.build_on(&head, &state, creator, draft, true)?);
        }
        Ok((head.room_id, built))
    }

    /// Every event after the create event: the creator's join, power
    /// levels, alias, rules, initial state, name, topic, invites.
    fn initial_drafts(
        &self,
        creator: &UserId,
        opts: &CreateRoom,
        privileged_creators: bool,
    ) -> Vec<EventDraft> {
        let mut join = opts.creator_profile.clone();
        join.insert("membership".into(), json!("join"));
        let mut drafts = vec![EventDraft::state(
            StateEventType::RoomMember,
            creator.as_str(),
            Value::Object(join),
        )];
        drafts.push(EventDraft::state(
            StateEventType::RoomPowerLevels,
            "",
            Value::Object(self.power_levels(creator, opts, privileged_creators)),
        ));
        if let Some(alias) = &opts.alias {
            drafts.push(EventDraft::state(
                StateEventType::RoomCanonicalAlias,
                "",
                json!({ "alias": alias }),
            ));
        }
        let join_rule = if opts.preset == Preset::PublicChat {
            "public"
        } else {
            "invite"
        };
        drafts.push(EventDraft::state(
            StateEventType::RoomJoinRules,
            "",
            json!({ "join_rule": join_rule }),
        ));
        drafts.push(EventDraft::state(
            StateEventType::RoomHistoryVisibility,
            "",
            json!({ "history_visibility": "shared" }),
        ));
        if opts.preset != Preset::PublicChat {
            drafts.push(EventDraft::state(
                StateEventType::RoomGuestAccess,
                "",
                json!({ "guest_access": "can_join" }),
            ));
        }
        drafts.extend(opts.initial_state.iter().cloned());
        if let Some(name) = &opts.name {
            drafts.push(EventDraft::state(
                StateEventType::RoomName,
                "",
                json!({ "name": name }),
            ));
        }
        if let Some(topic) = &opts.topic {
            drafts.push(EventDraft::state(
                StateEventType::RoomTopic,
                "",
                json!({ "topic": topic, "m.topic": [{ "mimetype": "text/plain", "body": topic }] }),
            ));
        }
        // Other servers' users are invited once the room exists (their
        // server signs the invite first).
        for invitee in opts.invite.iter().filter(|u| self.is_local(u)) {
            let mut content = json!({ "membership": "invite" });
            if opts.is_direct {
                content["is_direct"] = json!(true);
            }
            drafts.push(EventDraft::state(
                StateEventType::RoomMember,
                invitee.as_str(),
                content,
            ));
        }
        drafts
    }
}

/// The create event's content: the client's `creation_content` plus what
/// the room version asks for.
fn create_content(
    creator: &UserId,
    opts: &CreateRoom,
    rules: &AuthorizationRules,
) -> Map<String, Value> {
    let mut create = opts.creation_content.clone();
    create.insert("room_version".into(), json!(opts.version));
    if !rules.use_room_create_sender {
        create.insert("creator".into(), json!(creator));
    }
    if rules.explicitly_privilege_room_creators
        && opts.preset == Preset::TrustedPrivateChat
        && !opts.invite.is_empty()
    {
        // Invitees join the creators the client named, once each.
        let mut creators: Vec<Value> = match create.get("additional_creators") {
            Some(Value::Array(named)) => named.clone(),
            _ => Vec::new(),
        };
        for invitee in &opts.invite {
            let invitee = json!(invitee);
            if !creators.contains(&invitee) {
                creators.push(invitee);
            }
        }
        create.insert("additional_creators".into(), Value::Array(creators));
    }
    create
}
