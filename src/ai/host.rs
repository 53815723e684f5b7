//! The kernel's view of the server: sending as the AI user, reading the
//! ledger, waking the reminder scheduler, app addresses, answers in
//! progress.

use std::sync::{Arc, OnceLock, Weak};

use matrixos_kernel::{Host, RunRecord};
use ruma::{RoomId, UserId};
use serde_json::json;

use super::live::LiveAnswers;
use super::records;
use super::scheduler::Signal;
use crate::services::Services;

pub struct ServerHost {
    services: OnceLock<Weak<Services>>,
    base_url: String,
    reminders: Arc<Signal>,
    live: Arc<LiveAnswers>,
}

impl ServerHost {
    pub fn new(base_url: String, reminders: Arc<Signal>, live: Arc<LiveAnswers>) -> Self {
        Self {
            services: OnceLock::new(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            reminders,
            live,
        }
    }

    pub fn attach(&self, services: Weak<Services>) {
        let _ = self.services.set(services);
    }

    pub fn services_weak(&self) -> Weak<Services> {
        self.services.get().cloned().unwrap_or_default()
    }

    fn services(&self) -> Option<Arc<Services>> {
        self.services.get().and_then(Weak::upgrade)
    }
}

impl Host for ServerHost {
    async fn send_text(&self, ai: &str, room: &str, text: &str) -> Result<String, String> {
        let s = self.services().ok_or("the server is stopping")?;
        let ai = UserId::parse(ai).map_err(|_| "invalid AI user id".to_owned())?;
        let room = RoomId::parse(room).map_err(|_| format!("{room} is not a room id"))?;
        if !s.rooms.is_joined(&ai, &room).map_err(|e| e.to_string())? {
            return Err(format!("I am not in the room {room}."));
        }
        let content = json!({ "msgtype": "m.text", "body": text });
        super::outbox::send_message(&s, &ai, &room, content)
            .await
            .map(|id| id.to_string())
            .map_err(|e| e.to_string())
    }

    fn recent_runs(&self, owner: &str, limit: usize) -> Vec<RunRecord> {
        let Some(s) = self.services() else {
            return Vec::new();
        };
        records::runs(&s.store.db, owner, 0, limit).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the AI ledger");
            Vec::new()
        })
    }

    fn reminders_changed(&self, owner: &str) {
        if let Ok(owner) = UserId::parse(owner) {
            self.reminders.changed(owner);
        }
    }

    fn app_url(&self, owner: &str, slug: &str) -> String {
        let localpart = owner
            .trim_start_matches('@')
            .split(':')
            .next()
            .unwrap_or_default();
        format!("{}/_matrixos/apps/{localpart}/{slug}/", self.base_url)
    }

    fn answer_progress(&self, owner: &str, room: &str, text: &str) {
        self.live.progress(owner, room, text);
    }
}
