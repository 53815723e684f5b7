//! Push rules and notifications. Which events notify whom is decided when an
//! event is appended, in the event's own write batch (as Synapse does), from
//! each recipient's push rules; unread counts and `/notifications` read that
//! record, and read receipts clear it.

pub mod gateway;
pub mod pushers;
mod record;
mod room_ctx;
mod rules;
mod unread;

use std::collections::HashMap;
use std::sync::Arc;

use matrixos_storage::Batch;
use parking_lot::Mutex;
use ruma::push::Ruleset;
use ruma::{OwnedUserId, UserId};
use serde_json::{json, Value};

use crate::error::Result;
use crate::rooms::{AppendHook, Appended, Pdu, RoomRecord, Rooms};
use crate::services::account_data::AccountData;
use crate::store::Store;
pub use record::Notification;
use room_ctx::RoomPushCtx;
use rules::{CompiledRules, EventView, RuleContext};
pub use unread::{RoomCounts, Unread};

/// A user's push rules as stored, and compiled for evaluation.
pub struct UserRules {
    pub set: Ruleset,
    compiled: Arc<CompiledRules>,
}

/// The account-data type the rule set is kept under.
pub const RULES_TYPE: &str = "m.push_rules";

/// Cached rule sets and room contexts; each cache is emptied past this.
const MAX_CACHED: usize = 10_000;

pub struct Push {
    store: Store,
    account_data: AccountData,
    rules: Mutex<HashMap<OwnedUserId, Arc<UserRules>>>,
    rooms: Mutex<HashMap<u64, Arc<RoomPushCtx>>>,
    unread: unread::UnreadRows,
    pub pushers: pushers::Pushers,
    pub gateway: gateway::Gateway,
}

impl Push {
    pub fn new(store: Store) -> Result<Self> {
        Ok(Self {
            account_data: AccountData::new(store.clone()),
            pushers: pushers::Pushers::load(&store.db)?,
            gateway: gateway::Gateway::default(),
            store,
            rules: Mutex::default(),
            rooms: Mutex::default(),
            unread: unread::UnreadRows::default(),
        })
    }

    /// The user's rule set (what they stored, else the server defaults),
    /// with its compiled form. A stored set gets the server's current
    /// default rules (new ones added, the user's `enabled` and `actions`
    /// kept), as Synapse serves them.
    pub fn ruleset(&self, user: &UserId) -> Result<Arc<UserRules>> {
        if let Some(rules) = self.rules.lock().get(user) {
            return Ok(rules.clone());
        }
        let stored = self.account_data.get(user, None, RULES_TYPE)?;
        let set = match stored.as_ref().and_then(|v| v.get("global")).cloned() {
            None => Ruleset::server_default(user),
            Some(global) => match serde_json::from_value::<Ruleset>(global) {
                Ok(mut set) => {
                    set.update_with_server_default(Ruleset::server_default(user));
                    set
                }
                Err(e) => {
                    tracing::warn!(user = %user, error = %e, "stored push rules unreadable, using defaults");
                    Ruleset::server_default(user)
                }
            },
        };
        Ok(self.remember_rules(user, set))
    }

    fn remember_rules(&self, user: &UserId, set: Ruleset) -> Arc<UserRules> {
        let rules = Arc::new(UserRules {
            compiled: CompiledRules::new(&set),
            set,
        });
        let mut cache = self.rules.lock();
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(user.to_owned(), rules.clone());
        rules
    }

    /// Stores a changed rule set; events appended after this use it.
    pub async fn save_ruleset(&self, user: &UserId, rules: Ruleset) -> Result<()> {
        self.account_data
            .set(user, None, RULES_TYPE, &json!({ "global": rules }))
            .await?;
        self.remember_rules(user, rules);
        Ok(())
    }

    /// The `m.push_rules` account-data event clients expect in `/sync`.
    pub fn account_data_event(&self, user: &UserId) -> Result<Value> {
        Ok(json!({ "type": RULES_TYPE, "content": { "global": self.ruleset(user)?.set } }))
    }

    /// The room context for events built on `head`, kept up to date as the
    /// room's state moves on.
    fn room_ctx(
        &self,
        rooms: &Rooms,
        short_room: u64,
        head: &RoomRecord,
    ) -> Result<Arc<RoomPushCtx>> {
        if let Some(ctx) = self.rooms.lock().get(&short_room) {
            if ctx.state == head.state {
                return Ok(ctx.clone());
            }
        }
        let ctx = Arc::new(RoomPushCtx::build(rooms, head)?);
        let mut cache = self.rooms.lock();
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(short_room, ctx.clone());
        Ok(ctx)
    }

    /// After a state event: moves the cached context on to the new state
    /// without rebuilding it from the whole room state.
    fn advance_room_ctx(
        &self,
        rooms: &Rooms,
        short_room: u64,
        before: u64,
        after: &RoomRecord,
        pdu: &Pdu,
    ) -> Result<()> {
        let current = self.rooms.lock().get(&short_room).cloned();
        let Some(ctx) = current.filter(|c| c.state == before) else {
            return Ok(());
        };
        let next = ctx.advanced(rooms, after, pdu)?;
        self.rooms.lock().insert(short_room, Arc::new(next));
        Ok(())
    }
}

impl AppendHook for Push {
    /// Records, in the event's batch, whom the event notifies (from each
    /// local member's push rules, against the state before the event), and
    /// clears what the event implies its sender has read or no longer needs.
    fn appended(&self, rooms: &Rooms, batch: &mut Batch, appended: &Appended<'_>) -> Result<()> {
        let Appended {
            short_room,
            count,
            head,
            after,
            pdu,
            ..
        } = *appended;
        let ctx = self.room_ctx(rooms, short_room, head)?;
        if ctx.is_recipient(&pdu.sender) {
            // Sending in a room reads everything before it.
            self.clear_read(batch, &pdu.sender, short_room, count, None)?;
        }
        if let Some(target) = record::departed_member(pdu) {
            if ctx.is_recipient(&target) {
                self.clear_read(batch, &target, short_room, count, None)?;
            }
        }
        if ctx.recipients.iter().any(|r| r.user != pdu.sender) {
            let event = EventView::new(event_for_rules(pdu, &ctx.room_id));
            let thread = record::thread_of(event.content());
            let may_notify_room = ctx.may_notify_room(&pdu.sender);
            for recipient in ctx.recipients.iter().filter(|r| r.user != pdu.sender) {
                let user = &recipient.user;
                let rules = self.ruleset(user)?;
                let room = RuleContext {
                    display_name_lower: &recipient.display_name,
                    member_count: ctx.joined_count(),
                    sender_may_notify_room: may_notify_room,
                };
                let actions = rules.compiled.actions(&event, &room);
                let flags = record::flags_of(actions);
                if flags == 0 {
                    continue;
                }
                record::put(
                    batch,
                    user,
                    short_room,
                    count,
                    (flags, thread.as_deref()),
                    actions,
                )?;
                self.unread
                    .note(user, short_room, count, flags, thread.as_deref());
                if flags & record::NOTIFY != 0 && self.pushers.may_have(user) {
                    self.gateway.enqueue(gateway::PushJob {
                        user: user.clone(),
                        count,
                        event_id: pdu.event_id.clone(),
                        actions: actions.to_vec(),
                    });
                }
            }
        }
        if pdu.state_key.is_some() {
            self.advance_room_ctx(rooms, short_room, head.state, after, pdu)?;
        }
        Ok(())
    }
}

impl Push {
    /// Unread counts of one room at stream position `at`.
    pub fn counts(&self, user: &UserId, short_room: u64, at: u64) -> Result<RoomCounts> {
        self.unread.counts(&self.store.db, user, short_room, at)
    }

    /// Adds to `batch` the clearing a read receipt at `count` implies:
    /// unthreaded receipts read everything up to it, `main` the main
    /// timeline, and a thread id that thread.
    pub fn clear_read(
        &self,
        batch: &mut Batch,
        user: &UserId,
        short_room: u64,
        count: u64,
        thread: Option<&str>,
    ) -> Result<()> {
        self.unread
            .clear(&self.store.db, batch, user, short_room, count, thread)
    }

    /// How many rooms hold unread notifications for the user.
    pub fn unread_rooms(&self, user: &UserId) -> Result<u64> {
        record::unread_rooms(&self.store.db, user)
    }

    /// The user's unread notifications, newest first, before `from`.
    pub fn notifications(
        &self,
        user: &UserId,
        from: Option<u64>,
        limit: usize,
        only_highlight: bool,
    ) -> Result<Vec<Notification>> {
        record::list(&self.store.db, user, from, limit, only_highlight)
    }
}

/// The event as push rules see it: its client form.
fn event_for_rules(pdu: &Pdu, room_id: &ruma::RoomId) -> Value {
    let mut event = json!({
        "type": pdu.kind.to_string(),
        "content": pdu.content_value(),
        "sender": pdu.sender,
        "event_id": pdu.event_id,
        "room_id": room_id,
    });
    if let Some(key) = &pdu.state_key {
        event["state_key"] = json!(key);
    }
    event
}
