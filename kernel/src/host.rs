//! What the kernel needs from the homeserver. The server implements this;
//! the kernel never sees HTTP routing or the database.

use std::future::Future;
use std::sync::Arc;

use crate::home::Home;
use crate::ledger::RunRecord;

pub trait Host: Send + Sync + 'static {
    /// Posts a plain-text message as the AI user; the new event's id.
    fn send_text(
        &self,
        ai: &str,
        room: &str,
        text: &str,
    ) -> impl Future<Output = Result<String, String>> + Send;

    /// The owner's most recent runs, newest first.
    fn recent_runs(&self, owner: &str, limit: usize) -> Vec<RunRecord>;

    /// `system/cron.json` of this owner changed.
    fn reminders_changed(&self, owner: &str);

    /// Where the owner opens an app in a browser.
    fn app_url(&self, owner: &str, slug: &str) -> String;

    /// The answer the model is writing in `room` for its owner, so far
    /// (the owner's own runs only), for a live view of it.
    fn answer_progress(&self, _owner: &str, _room: &str, _text: &str) {}
}

/// Everything a tool may touch during one run.
pub struct RunContext<H: Host> {
    pub home: Arc<Home>,
    pub host: Arc<H>,
    pub owner: String,
    pub ai: String,
    pub sender: String,
    pub room: String,
    pub now_ms: i64,
}
