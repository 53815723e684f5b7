//! One queue per (AI user, room): invitations and messages are handled in
//! the order they arrived, runs in different rooms go concurrently (up to
//! the configured cap).

use std::sync::{Arc, Weak};
use std::time::Duration;

use matrixos_kernel::privacy::PrivacyPolicy;
use matrixos_kernel::Job;
use matrixos_storage::Batch;
use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UserId};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{records, Ai};
use crate::error::{Error, Result};
use crate::services::membership::{join_room, leave_room};
use crate::services::Services;
use crate::services::Wake;

/// How long an idle worker waits before it ends.
const IDLE: Duration = Duration::from_secs(120);

pub(super) enum Work {
    Invite {
        inviter: OwnedUserId,
    },
    Message {
        sender: OwnedUserId,
        text: String,
        event_id: OwnedEventId,
        thread: Option<OwnedEventId>,
        in_group: bool,
    },
    /// An `m.room.encrypted` room event, decrypted by the worker.
    Encrypted {
        sender: OwnedUserId,
        content: Value,
        event_id: OwnedEventId,
        in_group: bool,
    },
}

type Key = (OwnedUserId, OwnedRoomId);

impl Ai {
    /// An AI user was invited from another server to a room this server
    /// is not in (the room core saw no event): it answers as to any invite.
    pub fn invited_from_elsewhere(&self, ai: &UserId, room: &RoomId, inviter: &UserId) {
        if self.enabled && super::is_ai_user(ai) {
            self.enqueue(
                ai.to_owned(),
                room.to_owned(),
                Work::Invite {
                    inviter: inviter.to_owned(),
                },
            );
        }
    }

    pub(super) fn enqueue(&self, ai: OwnedUserId, room: OwnedRoomId, work: Work) {
        let key = (ai, room);
        let mut workers = self.workers.lock();
        let work = match workers.get(&key) {
            Some(tx) => match tx.send(work) {
                Ok(()) => return,
                Err(mpsc::error::SendError(work)) => work,
            },
            None => work,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(work);
        workers.insert(key.clone(), tx);
        let services = self.kernel.host().services_weak();
        tokio::spawn(run(services, key, rx));
    }
}

async fn run(services: Weak<Services>, key: Key, mut rx: mpsc::UnboundedReceiver<Work>) {
    loop {
        let work = match tokio::time::timeout(IDLE, rx.recv()).await {
            Ok(Some(work)) => work,
            Ok(None) => return,
            Err(_) => {
                let Some(s) = services.upgrade() else { return };
                // Senders only send under this lock, so nothing can slip in
                // between the last look and the removal.
                let mut workers = s.ai.workers.lock();
                match rx.try_recv() {
                    Ok(work) => work,
                    Err(_) => {
                        workers.remove(&key);
                        return;
                    }
                }
            }
        };
        let Some(s) = services.upgrade() else { return };
        let (ai, room) = &key;
        let result = match work {
            Work::Invite { inviter } => answer_invite(&s, ai, room, &inviter).await,
            Work::Message {
                sender,
                text,
                event_id,
                thread,
                in_group,
            } => {
                let reply_to = ReplyTo {
                    event_id,
                    thread,
                    in_group,
                };
                answer(&s, ai, room, sender, text, reply_to).await
            }
            Work::Encrypted {
                sender,
                content,
                event_id,
                in_group,
            } => answer_encrypted(&s, ai, room, sender, content, event_id, in_group).await,
        };
        if let Err(e) = result {
            tracing::warn!(ai = %ai, room = %room, error = %e, "AI work failed");
        }
    }
}

async fn owner_and_home(
    s: &Services,
    ai: &UserId,
) -> Result<Option<(records::AiUserRecord, Arc<matrixos_kernel::Home>)>> {
    let Some(record) = records::get(&s.store.db, ai)? else {
        return Ok(None);
    };
    if !record.enabled {
        return Ok(None);
    }
    let home = s.ai.home(&record.owner).await?;
    Ok(Some((record, home)))
}

/// Joins a room the AI was invited to. An invite from another server may
/// reach us before its server has stored it, so that its first `make_join`
/// answers "not invited": a remote join is tried a few times, a little
/// later each time.
async fn join_soon(s: &Services, ai: &UserId, room: &OwnedRoomId) -> Result<()> {
    const TRIES: u64 = 4;
    let remote = s.rooms.short_room(room)?.is_none();
    let mut attempt = 1;
    loop {
        match join_room(s, ai, room, &[], None).await {
            Err(e) if remote && attempt < TRIES => {
                tracing::info!(ai = %ai, room = %room, error = %e, "AI join retried");
                tokio::time::sleep(std::time::Duration::from_millis(500 * attempt)).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

async fn answer_invite(
    s: &Services,
    ai: &UserId,
    room: &OwnedRoomId,
    inviter: &UserId,
) -> Result<()> {
    let still_invited = s
        .rooms
        .membership(ai, room)?
        .is_some_and(|m| m.membership == "invite");
    if !still_invited {
        return Ok(());
    }
    let Some((record, home)) = owner_and_home(s, ai).await? else {
        return leave_room(s, ai, room, Some("This assistant is switched off")).await;
    };
    let policy =
        matrixos_kernel::tools::blocking(&home, |h| Ok(h.read("system/privacy.json").ok()))
            .await
            .map_err(Error::internal)?;
    let policy = PrivacyPolicy::parse(policy.as_deref());
    if policy.accepts_invite(record.owner.as_str(), inviter.as_str()) {
        tracing::info!(ai = %ai, room = %room, inviter = %inviter, "AI user joins");
        join_soon(s, ai, room).await
    } else {
        tracing::info!(ai = %ai, room = %room, inviter = %inviter, "AI user declines an invite");
        leave_room(
            s,
            ai,
            room,
            Some("Not accepted by the owner's privacy settings"),
        )
        .await
    }
}

async fn answer_encrypted(
    s: &Services,
    ai: &UserId,
    room: &OwnedRoomId,
    sender: OwnedUserId,
    content: Value,
    event_id: OwnedEventId,
    in_group: bool,
) -> Result<()> {
    let Some(event) = super::crypto::decrypt(s, ai, room, &content).await? else {
        return Ok(());
    };
    if event["type"] != "m.room.message" {
        return Ok(());
    }
    // The sender chose the decrypted payload: its content may be anything.
    let Some(mut clear) = event.get("content").and_then(Value::as_object).cloned() else {
        return Ok(());
    };
    if !clear.contains_key("m.relates_to") {
        if let Some(relation) = content.get("m.relates_to") {
            clear.insert("m.relates_to".to_owned(), relation.clone());
        }
    }
    let clear = Value::Object(clear);
    let ai_id = ai.to_owned();
    match super::dispatch::incoming(s, &clear, &ai_id, &sender, &event_id, in_group) {
        Some(Work::Message {
            sender,
            text,
            event_id,
            thread,
            in_group,
        }) => {
            answer(
                s,
                ai,
                room,
                sender,
                text,
                ReplyTo {
                    event_id,
                    thread,
                    in_group,
                },
            )
            .await
        }
        _ => Ok(()),
    }
}

pub(super) struct ReplyTo {
    pub event_id: OwnedEventId,
    pub thread: Option<OwnedEventId>,
    pub in_group: bool,
}

impl ReplyTo {
    /// The reply's relation: in the thread it was asked in, else a reply
    /// to the message in group rooms, else nothing (a plain DM answer).
    fn relation(&self) -> Option<Value> {
        match (&self.thread, self.in_group) {
            (Some(root), _) => Some(json!({
                "rel_type": "m.thread",
                "event_id": root,
                "is_falling_back": true,
                "m.in_reply_to": { "event_id": self.event_id },
            })),
            (None, true) => Some(json!({ "m.in_reply_to": { "event_id": self.event_id } })),
            (None, false) => None,
        }
    }
}

async fn answer(
    s: &Services,
    ai: &UserId,
    room: &OwnedRoomId,
    sender: OwnedUserId,
    text: String,
    reply_to: ReplyTo,
) -> Result<()> {
    let Some((record, home)) = owner_and_home(s, ai).await? else {
        return Ok(());
    };
    let history = records::history(&s.store.db, ai, room)?;
    let _permit =
        s.ai.runs
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::internal("AI stopped"))?;
    let _ = s
        .receipts
        .set_typing(room, ai, true, Duration::from_secs(60))
        .await;
    let job = Job {
        home,
        owner: record.owner.to_string(),
        ai: ai.to_string(),
        sender: sender.to_string(),
        room: room.to_string(),
        text,
        history,
    };
    let outcome = s.ai.kernel.run(job).await;
    let _ = s.receipts.set_typing(room, ai, false, Duration::ZERO).await;
    let mut content = json!({ "msgtype": "m.text", "body": outcome.reply });
    if let Some(relation) = reply_to.relation() {
        content["m.relates_to"] = relation;
    }
    if reply_to.in_group {
        content["m.mentions"] = json!({ "user_ids": [sender] });
    }
    // The ledger and history land before the reply, so whoever sees the
    // reply also finds its run recorded.
    let sequence = s.ai.next_run_sequence();
    let mut run = outcome.record;
    let mut batch = Batch::new();
    records::put_history(&mut batch, ai, room, &outcome.history)?;
    records::put_run(&mut batch, &run, sequence)?;
    s.store.commit(batch, vec![], Wake::none()).await?;
    s.metrics.ai_run(crate::metrics::AiRun {
        ok: run.error.is_none(),
        tokens_in: run.tokens_in,
        tokens_out: run.tokens_out,
        cost_usd: run.cost_usd,
    });
    let sent = super::outbox::send_message(s, ai, room, content).await;
    s.ai.live.finished(&record.owner, room.as_str());
    if let Err(e) = sent {
        run.error
            .get_or_insert_with(|| format!("reply not sent: {e}"));
        let mut batch = Batch::new();
        records::put_run(&mut batch, &run, sequence)?;
        s.store.commit(batch, vec![], Wake::none()).await?;
        return Err(e);
    }
    Ok(())
}
