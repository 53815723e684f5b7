//! Fires reminders from every home's `system/cron.json`. The file is the
//! truth: the scheduler re-reads a home's file whenever a tool changed it,
//! and removes one-off reminders (a commit) once they are delivered.
//! Repeating reminders missed while the server was down are not replayed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use matrixos_kernel::reminders::{CronFile, Reminder, CRON_FILE};
use matrixos_kernel::tools::blocking;
use matrixos_kernel::Host;
use parking_lot::Mutex;
use ruma::{OwnedUserId, UserId};
use tokio::sync::Notify;

use super::{records, AI_SUFFIX};
use crate::services::Services;

/// Longest sleep between looks, so clock jumps are noticed.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// Which owners' reminder files changed since the scheduler last looked.
#[derive(Default)]
pub struct Signal {
    dirty: Mutex<HashSet<OwnedUserId>>,
    wake: Notify,
}

impl Signal {
    pub fn changed(&self, owner: OwnedUserId) {
        self.dirty.lock().insert(owner);
        self.wake.notify_one();
    }

    fn take(&self) -> HashSet<OwnedUserId> {
        std::mem::take(&mut *self.dirty.lock())
    }
}

#[derive(Default)]
pub struct Scheduler {
    signal: Arc<Signal>,
}

impl Scheduler {
    pub fn signal(&self) -> Arc<Signal> {
        self.signal.clone()
    }
}

struct Pending {
    reminder: Reminder,
    due_ms: i64,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(super) async fn run(services: Weak<Services>) {
    let signal = match services.upgrade() {
        Some(s) => {
            for (_, record) in records::all(&s.store.db).unwrap_or_default() {
                s.ai.scheduler.signal.dirty.lock().insert(record.owner);
            }
            s.ai.scheduler.signal()
        }
        None => return,
    };
    let mut pending: HashMap<OwnedUserId, Vec<Pending>> = HashMap::new();
    loop {
        let Some(s) = services.upgrade() else { return };
        for owner in signal.take() {
            let list = load(&s, &owner).await;
            pending.insert(owner, list);
        }
        let now = now_ms();
        for (owner, list) in pending.iter_mut() {
            for item in list.iter_mut().filter(|p| p.due_ms <= now) {
                fire(&s, owner, &item.reminder).await;
                item.due_ms = match item.reminder.is_repeating() {
                    true => item.reminder.next_due(now).unwrap_or(i64::MAX),
                    false => i64::MAX,
                };
            }
            list.retain(|p| p.due_ms != i64::MAX);
        }
        let next = pending.values().flatten().map(|p| p.due_ms).min();
        drop(s);
        let wait = next.map_or(MAX_SLEEP, |due| {
            Duration::from_millis((due - now_ms()).clamp(0, MAX_SLEEP.as_millis() as i64) as u64)
        });
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = signal.wake.notified() => {}
        }
    }
}

async fn load(s: &Services, owner: &UserId) -> Vec<Pending> {
    let text = match s.ai.home(owner).await {
        Ok(home) => blocking(&home, |h| h.read(CRON_FILE))
            .await
            .unwrap_or_default(),
        Err(e) => {
            tracing::warn!(owner = %owner, error = %e, "cannot open home for reminders");
            return Vec::new();
        }
    };
    let file = match CronFile::parse(&text) {
        Ok(f) => f,
        Err(e) if !text.trim().is_empty() => {
            tracing::warn!(owner = %owner, error = %e, "reminders file unreadable");
            return Vec::new();
        }
        Err(_) => CronFile::default(),
    };
    let now = now_ms();
    file.reminders
        .into_iter()
        .filter_map(|r| {
            r.next_due(now).map(|due_ms| Pending {
                reminder: r,
                due_ms,
            })
        })
        .collect()
}

async fn fire(s: &Services, owner: &UserId, reminder: &Reminder) {
    let Ok(ai) = s
        .accounts
        .user_id(&format!("{}{AI_SUFFIX}", owner.localpart()))
    else {
        return;
    };
    let text = format!("⏰ Reminder: {}", reminder.text);
    let host = s.ai.kernel.host();
    match host.send_text(ai.as_str(), &reminder.room, &text).await {
        Ok(_) => tracing::info!(owner = %owner, id = %reminder.id, "reminder delivered"),
        Err(e) => {
            tracing::warn!(owner = %owner, id = %reminder.id, error = %e, "reminder not delivered")
        }
    }
    if reminder.is_repeating() {
        return;
    }
    let Ok(home) = s.ai.home(owner).await else {
        return;
    };
    let id = reminder.id.clone();
    let removed = blocking(&home, move |h| {
        let Ok(mut file) = CronFile::parse(&h.read(CRON_FILE)?) else {
            return Ok(None);
        };
        file.reminders.retain(|r| r.id != id);
        h.write(
            CRON_FILE,
            &file.to_text(),
            &format!("Deliver reminder {id}"),
        )
    })
    .await;
    if let Err(e) = removed {
        tracing::warn!(owner = %owner, error = %e, "delivered reminder not removed");
    }
}
