//! From the room core to the AI users: which events concern an AI, and
//! whether it should answer. The observer runs on the append path, so it
//! only filters; the dispatcher waits until the event is durable, then
//! queues the work in the (AI user, room) worker.

use std::sync::{Arc, Weak};

use ruma::events::TimelineEventType;
use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UserId};
use serde_json::Value;
use tokio::sync::mpsc;

use super::worker::Work;
use super::{is_ai_user, records, Ai};
use crate::rooms::{AppendHook, Appended, Pdu, Rooms};
use crate::services::Services;
use matrixos_storage::Batch;

pub(super) struct Trigger {
    short_room: u64,
    room: OwnedRoomId,
    count: u64,
    pdu: Arc<Pdu>,
}

/// The AI users' hook on the room core: every appended event is offered to
/// [`Ai::observe`] (the services are held weakly, as they own the rooms).
pub(super) struct Observer(pub Weak<Services>);

impl AppendHook for Observer {
    fn appended(&self, _: &Rooms, _: &mut Batch, event: &Appended<'_>) -> crate::error::Result<()> {
        if let Some(s) = self.0.upgrade() {
            s.ai.observe(
                event.short_room,
                &event.after.room_id,
                event.count,
                event.pdu,
            );
        }
        Ok(())
    }
}

impl Ai {
    /// Called for every event appended; must stay cheap.
    pub(super) fn observe(&self, short_room: u64, room: &RoomId, count: u64, pdu: &Arc<Pdu>) {
        if !self.enabled {
            return;
        }
        let about_an_ai = match pdu.kind {
            TimelineEventType::RoomMember => pdu
                .state_key
                .as_deref()
                .and_then(|k| UserId::parse(k).ok())
                .is_some_and(|u| is_ai_user(&u)),
            TimelineEventType::RoomMessage | TimelineEventType::RoomEncrypted => {
                self.rooms.read().contains_key(&short_room)
            }
            _ => false,
        };
        if about_an_ai {
            let trigger = Trigger {
                short_room,
                room: room.to_owned(),
                count,
                pdu: pdu.clone(),
            };
            let _ = self.triggers.send(trigger);
        }
    }

    fn track_membership(&self, short_room: u64, ai: &UserId, membership: &str) {
        let mut rooms = self.rooms.write();
        let members = rooms.entry(short_room).or_default();
        members.retain(|m| m != ai);
        if membership == "join" {
            members.push(ai.to_owned());
        }
        if members.is_empty() {
            rooms.remove(&short_room);
        }
    }
}

pub(super) async fn run(services: Weak<Services>, mut rx: mpsc::UnboundedReceiver<Trigger>) {
    while let Some(trigger) = rx.recv().await {
        let Some(s) = services.upgrade() else {
            return;
        };
        let mut durable = s.store.subscribe();
        if durable
            .wait_for(|position| *position >= trigger.count)
            .await
            .is_err()
        {
            return;
        }
        if let Err(e) = route(&s, trigger) {
            tracing::warn!(error = %e, "AI dispatch failed");
        }
    }
}

fn route(s: &Services, t: Trigger) -> crate::error::Result<()> {
    let content = t.pdu.content_value();
    if t.pdu.kind == TimelineEventType::RoomMember {
        let Some(ai) = t
            .pdu
            .state_key
            .as_deref()
            .and_then(|k| UserId::parse(k).ok())
        else {
            return Ok(());
        };
        if !s.accounts.is_local(&ai) || records::get(&s.store.db, &ai)?.is_none() {
            return Ok(());
        }
        let membership = content["membership"].as_str().unwrap_or("leave");
        s.ai.track_membership(t.short_room, &ai, membership);
        if membership == "invite" && t.pdu.sender != ai {
            s.ai.enqueue(
                ai,
                t.room,
                Work::Invite {
                    inviter: t.pdu.sender.clone(),
                },
            );
        }
        return Ok(());
    }
    let sender = &t.pdu.sender;
    if is_ai_user(sender) {
        return Ok(());
    }
    let ais =
        s.ai.rooms
            .read()
            .get(&t.short_room)
            .cloned()
            .unwrap_or_default();
    if ais.is_empty() {
        return Ok(());
    }
    let joined = s
        .rooms
        .members(t.short_room)?
        .into_iter()
        .filter(|(_, m)| m == "join")
        .count();
    let in_group = joined > 2;
    for ai in ais {
        let work = if t.pdu.kind == TimelineEventType::RoomEncrypted {
            // Whether it is addressed to the AI shows only once decrypted.
            Work::Encrypted {
                sender: sender.clone(),
                content: content.clone(),
                event_id: t.pdu.event_id.clone(),
                in_group,
            }
        } else {
            match incoming(s, &content, &ai, sender, &t.pdu.event_id, in_group) {
                Some(work) => work,
                None => continue,
            }
        };
        s.ai.enqueue(ai, t.room.clone(), work);
    }
    Ok(())
}

/// The work for a message the AI should answer: any message in a room it
/// shares with one person, else one that mentions it. Notices and edits
/// are not answered.
pub(super) fn incoming(
    s: &Services,
    content: &Value,
    ai: &OwnedUserId,
    sender: &OwnedUserId,
    event_id: &OwnedEventId,
    in_group: bool,
) -> Option<Work> {
    if content["msgtype"] == "m.notice" || is_edit(content) {
        return None;
    }
    let text = content["body"].as_str()?.to_owned();
    if in_group && !mentions(s, content, &text, ai) {
        return None;
    }
    Some(Work::Message {
        sender: sender.clone(),
        text,
        event_id: event_id.clone(),
        thread: thread_root(content),
        in_group,
    })
}

fn is_edit(content: &Value) -> bool {
    content["m.relates_to"]["rel_type"] == "m.replace"
}

fn thread_root(content: &Value) -> Option<OwnedEventId> {
    let relates = &content["m.relates_to"];
    if relates["rel_type"] != "m.thread" {
        return None;
    }
    relates["event_id"]
        .as_str()
        .and_then(|e| OwnedEventId::try_from(e).ok())
}

/// `m.mentions` naming the AI, or its user id, localpart or display name in
/// the body.
fn mentions(s: &Services, content: &Value, text: &str, ai: &OwnedUserId) -> bool {
    let listed = content["m.mentions"]["user_ids"]
        .as_array()
        .is_some_and(|ids| ids.iter().any(|id| id.as_str() == Some(ai.as_str())));
    if listed {
        return true;
    }
    let lower = text.to_lowercase();
    if lower.contains(&ai.as_str().to_lowercase()) || lower.contains(&ai.localpart().to_lowercase())
    {
        return true;
    }
    let display = s
        .accounts
        .get(ai)
        .ok()
        .flatten()
        .and_then(|r| r.displayname);
    display.is_some_and(|d| !d.is_empty() && lower.contains(&d.to_lowercase()))
}
