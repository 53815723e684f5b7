//! Creating a person's AI user (with the person) and, on their first
//! login, the direct-message room between them.

use matrixos_kernel::template::ai_display_name;
use matrixos_kernel::tools::blocking;
use matrixos_storage::Batch;
use ruma::{OwnedUserId, RoomVersionId, UserId};
use serde_json::{json, Value};

use super::{is_ai_user, records, AiUserRecord, AI_SUFFIX};
use crate::error::{Error, Result};
use crate::rooms::create::{CreateRoom, Preset};
use crate::services::accounts::NewAccount;
use crate::services::membership::{profile_content, set_membership};
use crate::services::Services;
use crate::services::Wake;

pub fn ai_user_of(s: &Services, owner: &UserId) -> Result<OwnedUserId> {
    s.accounts
        .user_id(&format!("{}{AI_SUFFIX}", owner.localpart()))
}

/// Creates a person: their account and, when AI users are on, `@x_ai`
/// with its home and record. The home is made first and every record is
/// written in one batch, so an account whose home or AI user cannot be
/// created is not created at all.
pub async fn register_person(
    s: &Services,
    user: &UserId,
    password: Option<&str>,
    admin: bool,
) -> Result<()> {
    let person = NewAccount {
        user,
        password,
        admin,
        displayname: None,
        guest: false,
    };
    if !s.ai.enabled() || is_ai_user(user) || !s.accounts.is_local(user) {
        return s.accounts.create_many(&[person], Batch::new()).await;
    }
    let ai = ai_user_of(s, user)?;
    let (ai_name, batch) = prepare_ai(s, user, &ai).await?;
    let ai_account = NewAccount {
        user: &ai,
        password: None,
        admin: false,
        displayname: ai_name,
        guest: false,
    };
    if s.accounts.exists(&ai)? {
        s.accounts.create_many(&[person], batch).await?;
    } else {
        s.accounts.create_many(&[person, ai_account], batch).await?;
    }
    publish_device(s, user, &ai).await;
    Ok(())
}

/// Makes the owner's home and returns the AI's display name and a batch
/// holding its record.
async fn prepare_ai(s: &Services, owner: &UserId, ai: &UserId) -> Result<(Option<String>, Batch)> {
    let home = s.ai.home(owner).await?;
    let profile = blocking(&home, |h| h.read("system/ai-profile.md"))
        .await
        .unwrap_or_default();
    let record = AiUserRecord {
        owner: owner.to_owned(),
        enabled: true,
        dm_room: None,
    };
    let mut batch = Batch::new();
    records::put(&mut batch, ai, &record)?;
    Ok((ai_display_name(&profile), batch))
}

/// Publishes the AI's encryption device now, so that a client sending to
/// an encrypted room with it shares the room key from the start. A failure
/// here is not fatal: the device is made on first use.
async fn publish_device(s: &Services, owner: &UserId, ai: &UserId) {
    match super::crypto::device(s, ai).await {
        Ok(_) => tracing::info!(owner = %owner, ai = %ai, "AI user created"),
        Err(e) => tracing::warn!(ai = %ai, error = %e, "AI device not published yet"),
    }
}

/// Creates `@x_ai` for an `@x` from before AI users. Does nothing when AI
/// users are off server-wide or it exists already.
pub async fn provision(s: &Services, owner: &UserId) -> Result<()> {
    if !s.ai.enabled() || is_ai_user(owner) || !s.accounts.is_local(owner) {
        return Ok(());
    }
    let ai = ai_user_of(s, owner)?;
    if records::get(&s.store.db, &ai)?.is_some() {
        return Ok(());
    }
    let (ai_name, batch) = prepare_ai(s, owner, &ai).await?;
    if s.accounts.exists(&ai)? {
        s.store.commit(batch, vec![], Wake::none()).await?;
    } else {
        let account = NewAccount {
            user: &ai,
            password: None,
            admin: false,
            displayname: ai_name,
            guest: false,
        };
        s.accounts.create_many(&[account], batch).await?;
    }
    publish_device(s, owner, &ai).await;
    Ok(())
}

/// On a login: makes sure the AI exists (accounts from before AI users)
/// and that the owner has a direct-message room with it.
pub async fn on_login(s: &Services, owner: &UserId) -> Result<()> {
    if !s.ai.enabled() || is_ai_user(owner) {
        return Ok(());
    }
    provision(s, owner).await?;
    let ai = ai_user_of(s, owner)?;
    let Some(mut record) = records::get(&s.store.db, &ai)? else {
        return Ok(());
    };
    if !record.enabled || record.dm_room.is_some() {
        return Ok(());
    }
    let version = RoomVersionId::try_from(s.config.default_room_version.as_str())
        .map_err(|_| Error::internal("default room version is invalid"))?;
    let opts = CreateRoom {
        version,
        preset: Preset::TrustedPrivateChat,
        name: None,
        topic: None,
        alias: None,
        invite: vec![ai.clone()],
        is_direct: true,
        creation_content: Default::default(),
        power_level_override: None,
        initial_state: Vec::new(),
        creator_profile: profile_content(s, owner)?,
    };
    let room = s.rooms.create_room(owner, opts).await?;
    set_membership(s, &ai, &room, &ai, "join", None).await?;
    let mut direct = s
        .account_data
        .get(owner, None, "m.direct")?
        .unwrap_or_else(|| json!({}));
    if !direct.is_object() {
        direct = json!({});
    }
    let rooms = direct[ai.as_str()].as_array().cloned().unwrap_or_default();
    let mut rooms: Vec<Value> = rooms;
    rooms.push(json!(room));
    direct[ai.as_str()] = Value::Array(rooms);
    s.account_data.set(owner, None, "m.direct", &direct).await?;
    record.dm_room = Some(room.clone());
    let mut batch = Batch::new();
    records::put(&mut batch, &ai, &record)?;
    s.store.commit(batch, vec![], Wake::none()).await?;
    tracing::info!(owner = %owner, room = %room, "AI direct-message room created");
    Ok(())
}

/// A deactivated owner's AI goes quiet too (its home stays on disk).
pub async fn switch_off_with_owner(s: &Services, owner: &UserId) -> Result<()> {
    let ai = ai_user_of(s, owner)?;
    if records::get(&s.store.db, &ai)?.is_some() {
        set_enabled(s, owner, false).await?;
        tracing::info!(owner = %owner, ai = %ai, "AI user switched off with its deactivated owner");
    }
    Ok(())
}

/// Turns one person's AI on or off (admin).
pub async fn set_enabled(s: &Services, owner: &UserId, enabled: bool) -> Result<()> {
    let ai = ai_user_of(s, owner)?;
    let mut record = records::get(&s.store.db, &ai)?
        .ok_or_else(|| Error::not_found("This user has no AI user"))?;
    record.enabled = enabled;
    let mut batch = Batch::new();
    records::put(&mut batch, &ai, &record)?;
    s.store.commit(batch, vec![], Wake::none()).await
}
