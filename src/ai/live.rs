//! The answers the AI users are writing for their owners, as the model
//! streams them, for the desktop's chat: `GET /_matrixos/v1/ai/live`
//! (server-sent events) shows the caller the text of every answer their
//! own AI is writing in reply to them, room by room, until the answer is
//! posted. Only owners with a stream open are tracked: one entry each,
//! holding the answers in progress (one per room at most).

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use parking_lot::Mutex;
use ruma::{OwnedUserId, UserId};
use serde_json::json;
use tokio::sync::watch;

use crate::http::extract::Auth;
use crate::services::Services;

/// The answers in progress of one owner: room id → text so far.
type Answers = Arc<BTreeMap<String, String>>;

/// The shortest time between two events of one stream: what the model
/// writes meanwhile goes out in the next one.
const PACE: Duration = Duration::from_millis(100);

#[derive(Default)]
pub struct LiveAnswers {
    owners: Mutex<HashMap<OwnedUserId, watch::Sender<Answers>>>,
}

impl LiveAnswers {
    /// The model has written `text` so far in `room`, for `owner`.
    pub fn progress(&self, owner: &str, room: &str, text: &str) {
        self.change(owner, |answers| {
            answers.insert(room.to_owned(), text.to_owned());
        });
    }

    /// The answer in `room` is posted (or failed): no longer in progress.
    pub fn finished(&self, owner: &UserId, room: &str) {
        self.change(owner.as_str(), |answers| {
            answers.remove(room);
        });
    }

    fn change(&self, owner: &str, edit: impl FnOnce(&mut BTreeMap<String, String>)) {
        let mut owners = self.owners.lock();
        let Some((key, sender)) = owners.get_key_value(owner) else {
            return;
        };
        if sender.receiver_count() == 0 {
            let key = key.clone();
            owners.remove(&key);
            return;
        }
        sender.send_modify(|answers| edit(Arc::make_mut(answers)));
    }

    fn subscribe(&self, owner: &UserId) -> watch::Receiver<Answers> {
        self.owners
            .lock()
            .entry(owner.to_owned())
            .or_insert_with(|| watch::channel(Answers::default()).0)
            .subscribe()
    }
}

/// `GET /_matrixos/v1/ai/live`: an event with every answer in progress
/// (`{"answers": {room id: text so far}}`) now, then at each change.
pub async fn stream(
    State(s): State<Arc<Services>>,
    Auth(caller): Auth,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = s.ai.live.subscribe(&caller.user_id);
    let events = futures::stream::unfold((receiver, true), |(mut receiver, first)| async move {
        if !first {
            tokio::time::sleep(PACE).await;
            receiver.changed().await.ok()?;
        }
        let answers = receiver.borrow_and_update().clone();
        let event = Event::default().data(json!({ "answers": *answers }).to_string());
        Some((Ok(event), (receiver, false)))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
