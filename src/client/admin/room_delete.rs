//! Deleting a room as Synapse's admin API does it: `DELETE /v1/rooms/{id}`
//! at once, `DELETE /v2/rooms/{id}` in the background with its status
//! readable by room or by deletion id.
//!
//! A deletion optionally blocks the room (no local user may join it
//! again), optionally opens a new room for its users, makes every local
//! member leave (as themselves, as Synapse has them: the room core lets a
//! user leave, not a server), removes the room's local aliases (or moves
//! them to the new room) and takes it off the public directory. With
//! `purge` (the default), the room's content is then pruned from storage
//! (`Rooms::purge_content`): the events stay as a redaction leaves them,
//! and the admin API no longer knows the room.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use http::StatusCode;
use matrixos_storage::records::{DeletionRequest, ShutdownRecord};
use ruma::events::TimelineEventType;
use ruma::{OwnedRoomId, OwnedUserId, RoomId, RoomVersionId, UserId};
use serde_json::{json, Map, Value};

use super::room_deletions::{self, Stage};
use super::rooms::parse_room;
use super::Admin;
use crate::error::{Error, Result};
use crate::http::extract::{opt_bool, opt_str, JsonBody};
use crate::rooms::create::{CreateRoom, Preset};
use crate::rooms::send::EventDraft;
use crate::services::membership::{join_room, leave_room, profile_content};
use crate::services::Services;

type S = State<Arc<Services>>;

/// Synapse's defaults for the room the users are moved to.
const DEFAULT_ROOM_NAME: &str = "Content Violation Notification";
const DEFAULT_MESSAGE: &str =
    "Sharing illegal content on this server is not permitted and rooms in violation will be blocked.";

/// What the body asks for.
struct Options {
    block: bool,
    purge: bool,
    new_room_user_id: Option<OwnedUserId>,
    room_name: String,
    message: String,
}

impl Options {
    fn from(s: &Services, body: &Value) -> Result<Self> {
        let flag = |name: &str| {
            opt_bool(body, name)
                .map_err(|_| Error::bad_json(format!("Param '{name}' must be a boolean, if given")))
        };
        let new_room_user_id = match opt_str(body, "new_room_user_id")? {
            None => None,
            Some(raw) => {
                let user = UserId::parse(raw)
                    .map_err(|_| Error::invalid_param(format!("Invalid user id: {raw}")))?;
                if !s.accounts.is_local(&user) {
                    return Err(Error::new(
                        StatusCode::BAD_REQUEST,
                        "M_UNKNOWN",
                        format!("User must be our own: {user}"),
                    ));
                }
                if !s.accounts.exists(&user)? {
                    return Err(Error::invalid_param(format!(
                        "new_room_user_id {user} is not a user of this server"
                    )));
                }
                Some(user)
            }
        };
        flag("force_purge")?;
        Ok(Self {
            block: flag("block")?.unwrap_or(false),
            purge: flag("purge")?.unwrap_or(true),
            new_room_user_id,
            room_name: opt_str(body, "room_name")?
                .unwrap_or(DEFAULT_ROOM_NAME)
                .to_owned(),
            message: opt_str(body, "message")?
                .unwrap_or(DEFAULT_MESSAGE)
                .to_owned(),
        })
    }
}

impl Options {
    /// The request kept with a background deletion.
    fn to_request(&self, admin: &UserId) -> DeletionRequest {
        DeletionRequest {
            admin: admin.to_string(),
            block: self.block,
            purge: self.purge,
            new_room_user_id: self.new_room_user_id.as_ref().map(ToString::to_string),
            room_name: self.room_name.clone(),
            message: self.message.clone(),
        }
    }

    fn from_request(request: &DeletionRequest) -> Result<(OwnedUserId, Self)> {
        let user = |raw: &str| {
            UserId::parse(raw).map_err(|_| Error::internal(format!("a kept deletion names {raw}")))
        };
        let new_room_user_id = request.new_room_user_id.as_deref().map(user).transpose()?;
        Ok((
            user(&request.admin)?,
            Self {
                block: request.block,
                purge: request.purge,
                new_room_user_id,
                room_name: request.room_name.clone(),
                message: request.message.clone(),
            },
        ))
    }
}

/// The room to delete: one this server holds (and has not purged), or
/// with `block` any room (an unknown one is only blocked, as in Synapse);
/// else 404.
fn room_to_delete(s: &Services, raw: &str, block: bool) -> Result<OwnedRoomId> {
    let room = parse_room(raw)?;
    let held = s.rooms.short_room(&room)?.is_some() && !s.rooms.purged_and_empty(&room)?;
    if !block && !held {
        return Err(Error::not_found(format!("Unknown room id {room}")));
    }
    Ok(room)
}

/// The room the deleted room's users are moved to: public, where they
/// cannot speak, with the admin's message.
async fn open_new_room(s: &Services, creator: &UserId, opts: &Options) -> Result<OwnedRoomId> {
    let version = RoomVersionId::try_from(s.config.default_room_version.as_str())
        .map_err(|_| Error::unsupported_room_version("Invalid room version"))?;
    let mut power_levels = Map::new();
    power_levels.insert("users_default".into(), json!(-10));
    let room = s
        .rooms
        .create_room(
            creator,
            CreateRoom {
                version,
                preset: Preset::PublicChat,
                name: Some(opts.room_name.clone()),
                topic: None,
                alias: None,
                invite: Vec::new(),
                is_direct: false,
                creation_content: Map::new(),
                power_level_override: Some(power_levels),
                initial_state: Vec::new(),
                creator_profile: profile_content(s, creator)?,
            },
        )
        .await?;
    let message = json!({ "msgtype": "m.text", "body": opts.message });
    let draft = EventDraft::message(TimelineEventType::RoomMessage, message);
    s.rooms.send(creator, &room, draft, None).await?;
    Ok(room)
}

/// Shuts the room down for this server's users (see the module's notes),
/// going on from `out`, what an interrupted run did (its new room is
/// reused). `progress` hears of each step, to record it.
async fn shut_down(
    s: &Services,
    admin: &UserId,
    room: &RoomId,
    opts: &Options,
    mut out: ShutdownRecord,
    progress: impl Fn(Stage, &ShutdownRecord),
) -> Result<ShutdownRecord> {
    if opts.block {
        s.rooms.set_blocked(room, Some(admin)).await?;
    }
    let Some(short) = s.rooms.short_room(room)? else {
        return Ok(out);
    };
    let new_room = match (&out.new_room_id, &opts.new_room_user_id) {
        (Some(kept), _) => Some(
            RoomId::parse(kept)
                .map_err(|_| Error::internal(format!("a kept deletion names {kept}")))?,
        ),
        (None, Some(creator)) => {
            let new_room = open_new_room(s, creator, opts).await?;
            out.new_room_id = Some(new_room.to_string());
            progress(Stage::ShuttingDown, &out);
            Some(new_room)
        }
        (None, None) => None,
    };
    let mut members: Vec<_> = s
        .rooms
        .members(short)?
        .into_iter()
        .filter(|(user, membership)| {
            s.accounts.is_local(user) && matches!(membership.as_str(), "join" | "invite" | "knock")
        })
        .collect();
    // Invites and knocks go while this server is still in the room (they
    // are withdrawn through it): the joined members leave last.
    members.sort_by_key(|(_, membership)| membership == "join");
    for (user, membership) in members {
        if let Err(e) = leave_room(s, &user, room, None).await {
            tracing::warn!(room = %room, user = %user, error = %e, "could not remove a member of a deleted room");
            out.failed_to_kick_users.push(user.to_string());
            continue;
        }
        out.kicked_users.push(user.to_string());
        progress(Stage::ShuttingDown, &out);
        if let (Some(new_room), "join") = (&new_room, membership.as_str()) {
            if let Err(e) = join_room(s, &user, new_room, &[], None).await {
                tracing::warn!(room = %new_room, user = %user, error = %e, "could not move a member to the new room");
            }
        }
    }
    for alias in s.rooms.aliases_of(room)? {
        if let Some(record) = s.rooms.alias(&alias)? {
            s.rooms.delete_alias(&alias, &record).await?;
        }
        if let Some(new_room) = &new_room {
            s.rooms.set_alias(&alias, new_room, admin).await?;
        }
        out.local_aliases.push(alias.to_string());
    }
    s.rooms.set_published(room, false).await?;
    if opts.purge {
        progress(Stage::Purging, &out);
        purge(s, room).await?;
    }
    tracing::info!(
        room = %room, admin = %admin, block = opts.block,
        kicked = out.kicked_users.len(), "room deleted by an admin"
    );
    Ok(out)
}

/// Prunes the room's content from storage and from the search index.
async fn purge(s: &Services, room: &RoomId) -> Result<()> {
    s.rooms
        .purge_content(room, |batch, short, pdu| {
            if let Some(index) = &s.search {
                index.queue(batch, short, pdu);
            }
        })
        .await
        .map(|_pruned| ())
}

/// `DELETE /_synapse/admin/v1/rooms/{room_id}` (and the older
/// `POST .../delete`): the deletion, done before the answer.
pub async fn delete_now(
    State(s): S,
    Admin(admin): Admin,
    Path(room): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let opts = Options::from(&s, &body)?;
    let room = room_to_delete(&s, &room, opts.block)?;
    let done = shut_down(
        &s,
        &admin.user_id,
        &room,
        &opts,
        ShutdownRecord::default(),
        |_, _| {},
    )
    .await?;
    Ok(Json(serde_json::to_value(done)?))
}

/// `DELETE /_synapse/admin/v2/rooms/{room_id}`: the deletion, started in
/// the background; `{"delete_id"}` to follow it by.
pub async fn delete_in_background(
    State(s): S,
    Admin(admin): Admin,
    Path(room): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let opts = Options::from(&s, &body)?;
    let room = room_to_delete(&s, &room, opts.block)?;
    let request = opts.to_request(&admin.user_id);
    let delete_id = room_deletions::start(&s, &room, request).await?;
    let fresh = (Stage::ShuttingDown, ShutdownRecord::default());
    run_in_background(s, delete_id.clone(), admin.user_id, room, opts, fresh);
    Ok(Json(json!({ "delete_id": delete_id })))
}

/// Runs a recorded deletion from `from`: the stage it is at and what it
/// did so far (nothing for a new one; more for one a restart
/// interrupted, which then goes on from there).
fn run_in_background(
    s: Arc<Services>,
    id: String,
    admin: OwnedUserId,
    room: OwnedRoomId,
    opts: Options,
    from: (Stage, ShutdownRecord),
) {
    tokio::spawn(async move {
        let outcome = match from {
            (Stage::Purging, done) => purge(&s, &room).await.map(|()| done),
            (Stage::ShuttingDown, done) => {
                let progress = |stage, done: &ShutdownRecord| {
                    if let Err(e) = room_deletions::reached(&s, &id, stage, done) {
                        tracing::warn!(error = %e, "could not record a deletion's progress");
                    }
                };
                shut_down(&s, &admin, &room, &opts, done, progress).await
            }
        };
        if let Err(e) = &outcome {
            tracing::warn!(room = %room, error = %e, "room deletion failed");
        }
        if let Err(e) = room_deletions::finish(&s, &id, outcome) {
            tracing::error!(room = %room, error = %e, "could not record a deletion's end");
        }
    });
}

/// At start-up: takes up the deletions a restart interrupted, from where
/// they were (a purge is only ever done again whole: it is idempotent;
/// members who left are not members any more, and a new room opened for
/// them is reused).
pub fn resume_interrupted(s: &Arc<Services>) -> Result<()> {
    for record in room_deletions::interrupted(s)? {
        let Some(request) = &record.request else {
            continue;
        };
        let (admin, opts) = Options::from_request(request)?;
        let room = parse_room(&record.room_id)?;
        let stage = Stage::of(&record.status).unwrap_or(Stage::ShuttingDown);
        tracing::info!(room = %room, delete_id = %record.delete_id, "taking up an interrupted room deletion");
        let from = (stage, record.shutdown_room);
        run_in_background(s.clone(), record.delete_id, admin, room, opts, from);
    }
    Ok(())
}

/// A deletion as the status endpoints answer it.
fn status_json(record: matrixos_storage::records::RoomDeletionRecord) -> Result<Value> {
    let mut out = serde_json::to_value(record)?;
    if let Some(fields) = out.as_object_mut() {
        fields.remove("started_ts");
        fields.remove("request");
    }
    Ok(out)
}

/// `GET /_synapse/admin/v2/rooms/{room_id}/delete_status`: the room's
/// deletions remembered here; 404 when there is none.
pub async fn status_of_room(
    State(s): S,
    Admin(_): Admin,
    Path(room): Path<String>,
) -> Result<Json<Value>> {
    let room = parse_room(&room)?;
    let results = room_deletions::all(&s)?
        .into_iter()
        .filter(|d| d.room_id == room.as_str())
        .map(status_json)
        .collect::<Result<Vec<_>>>()?;
    if results.is_empty() {
        return Err(Error::not_found(format!(
            "No delete task for room_id '{room}' found"
        )));
    }
    Ok(Json(json!({ "results": results })))
}

/// `GET /_synapse/admin/v2/rooms/delete_status/{delete_id}`: one deletion;
/// 404 when it is not (or no longer) remembered.
pub async fn status_of_deletion(
    State(s): S,
    Admin(_): Admin,
    Path(delete_id): Path<String>,
) -> Result<Json<Value>> {
    let found = room_deletions::by_id(&s, &delete_id)?
        .ok_or_else(|| Error::not_found(format!("delete id '{delete_id}' not found")))?;
    Ok(Json(status_json(found)?))
}
