//! Guest accounts, when `allow_guest_access` is on (Synapse's switch of
//! that name, off by default): `POST /register?kind=guest` makes a user
//! with a numeric id, no password and no AI user, whose token opens only
//! what `http::guests` lists. A guest joins only rooms held here whose
//! `m.room.guest_access` is `can_join`, and its member event says
//! `kind: guest`; when a room's guest access is turned off here, its
//! guests are made to leave. A guest registering its own id with its token
//! (`guest_access_token`) becomes a full account, as in Synapse.

use std::net::IpAddr;

use matrixos_storage::Batch;
use rand::Rng;
use ruma::api::client::account::register;
use ruma::events::StateEventType;
use ruma::{OwnedUserId, RoomId, UserId};
use serde_json::{json, Value};

use super::account::{open_session, NewDevice};
use crate::error::{Error, Result};
use crate::rooms::send::EventDraft;
use crate::services::access_tokens::TokenKind;
use crate::services::accounts::NewAccount;
use crate::services::membership::profile_content;
use crate::services::Services;

/// Tries at a free numeric id before giving up.
const ID_TRIES: usize = 10;

/// Registers a guest and signs it in on a new device.
pub(super) async fn register(
    s: &Services,
    device: NewDevice,
    ip: IpAddr,
) -> Result<register::v3::Response> {
    let user = free_numeric_id(s)?;
    let account = NewAccount {
        user: &user,
        password: None,
        admin: false,
        displayname: None,
        guest: true,
    };
    s.accounts.create_many(&[account], Batch::new()).await?;
    let session = open_session(s, &user, device, Some(ip.to_string()), TokenKind::Guest).await?;
    tracing::info!(user = %user, "guest registered");
    let mut out = register::v3::Response::new(user);
    out.device_id = Some(session.device_id);
    out.access_token = Some(session.access_token);
    Ok(out)
}

fn free_numeric_id(s: &Services) -> Result<OwnedUserId> {
    for _ in 0..ID_TRIES {
        let number: u64 = rand::thread_rng().gen_range(1_000_000_000..10_000_000_000);
        let user = s.accounts.user_id(&number.to_string())?;
        if !s.accounts.exists(&user)? {
            return Ok(user);
        }
    }
    Err(Error::internal("No free guest id"))
}

/// Refuses to give `user`'s id to a registration unless `token` is that
/// guest's own.
pub(super) fn check_upgrade(s: &Services, token: &str, user: &UserId) -> Result<()> {
    let refused = || {
        Error::forbidden(
            "Cannot register taken user ID without valid guest credentials for that user",
        )
    };
    let caller = s.accounts.authenticate(token).map_err(|_| refused())?;
    if !caller.guest || caller.user_id != user {
        return Err(refused());
    }
    Ok(())
}

/// Makes a guest a full account with `password`: its guest tokens and
/// devices go (the registration signs it in afresh), and the AI user a
/// person has is made at that sign-in.
pub(super) async fn upgrade(s: &Services, user: &UserId, password: Option<&str>) -> Result<()> {
    s.accounts.upgrade_guest(user, password).await?;
    let devices = s.accounts.device_ids(user)?;
    super::devices::delete_devices(s, user, &devices).await
}

/// Whether a room held here lets guests join.
fn guests_may_join(s: &Services, room: &RoomId) -> Result<bool> {
    let (_, record) = s.rooms.record_of(room)?;
    let access = s
        .rooms
        .state_event(record.state, "m.room.guest_access", "")?
        .map(|e| e.content_value());
    Ok(access.and_then(|c| c.get("guest_access").cloned()) == Some(json!("can_join")))
}

/// A guest joins a room held here that lets guests in.
pub async fn join(s: &Services, guest: &UserId, room: &RoomId, reason: Option<&str>) -> Result<()> {
    if s.rooms.is_joined(guest, room)? {
        return Ok(());
    }
    if !s.rooms.has_joined_member(room)? || !guests_may_join(s, room)? {
        return Err(Error::guest_access_forbidden());
    }
    let mut content = profile_content(s, guest)?;
    content.insert("membership".into(), json!("join"));
    content.insert("kind".into(), json!("guest"));
    if let Some(reason) = reason {
        content.insert("reason".into(), json!(reason));
    }
    let draft = EventDraft::state(
        StateEventType::RoomMember,
        guest.as_str(),
        Value::Object(content),
    );
    s.rooms.send(guest, room, draft, None).await?;
    Ok(())
}

/// After a room's guest access changed here: when guests may no longer
/// join, the guests of this server joined to it leave (as Synapse has
/// them). Failures are logged: the change itself stands.
pub async fn after_guest_access_change(s: &Services, room: &RoomId) {
    let result = async {
        if guests_may_join(s, room)? {
            return Ok(());
        }
        let Some(short_room) = s.rooms.short_room(room)? else {
            return Ok(());
        };
        for (member, membership) in s.rooms.members(short_room)? {
            let local_guest = membership == "join"
                && s.accounts.is_local(&member)
                && s.accounts.get(&member)?.is_some_and(|r| r.guest);
            if local_guest {
                let content =
                    json!({ "membership": "leave", "reason": "Guest access was turned off" });
                let draft = EventDraft::state(StateEventType::RoomMember, member.as_str(), content);
                s.rooms.send(&member, room, draft, None).await?;
            }
        }
        Ok::<(), Error>(())
    };
    if let Err(e) = result.await {
        tracing::warn!(%room, error = %e, "guests not removed after guest access was turned off");
    }
}
