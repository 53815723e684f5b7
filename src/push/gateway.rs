//! Delivery to push gateways (Sygnal and the like): once an event that
//! notifies a user with pushers is durable, each of the user's gateways gets
//! one `/_matrix/push/v1/notify` request for the devices behind it. Failed
//! requests are retried a few times; pushkeys a gateway rejects are removed.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use matrixos_storage::Batch;
use parking_lot::Mutex;
use ruma::push::{Action, Tweak};
use ruma::{OwnedEventId, OwnedUserId};
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, Semaphore};

use super::pushers::Pusher;
use crate::error::{Error, Result};
use crate::services::Services;
use crate::store::Wake;

/// Gateway requests in flight at once.
const MAX_IN_FLIGHT: usize = 16;
/// Attempts per gateway request, with a doubling pause between them.
const ATTEMPTS: u32 = 3;
const FIRST_RETRY: Duration = Duration::from_millis(500);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for an event to become durable before it is given up.
const DURABLE_WAIT: Duration = Duration::from_secs(30);

/// One notification for one user.
pub struct PushJob {
    pub user: OwnedUserId,
    pub count: u64,
    pub event_id: OwnedEventId,
    pub actions: Vec<Action>,
}

pub struct Gateway {
    queue: mpsc::UnboundedSender<PushJob>,
    jobs: Mutex<Option<mpsc::UnboundedReceiver<PushJob>>>,
}

impl Default for Gateway {
    fn default() -> Self {
        let (queue, jobs) = mpsc::unbounded_channel();
        Self {
            queue,
            jobs: Mutex::new(Some(jobs)),
        }
    }
}

impl Gateway {
    pub fn enqueue(&self, job: PushJob) {
        // Without a running worker (a CLI command) there is nobody to push.
        let _ = self.queue.send(job);
    }
}

/// Starts the delivery worker; it ends when the services are gone.
pub fn start(services: &Arc<Services>) {
    let Some(mut jobs) = services.push.gateway.jobs.lock().take() else {
        return;
    };
    let weak = Arc::downgrade(services);
    let client = match reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no HTTP client: push gateways will not be notified");
            return;
        }
    };
    let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    tokio::spawn(async move {
        while let Some(job) = jobs.recv().await {
            let Some(s) = weak.upgrade() else {
                return;
            };
            if !wait_durable(&s, job.count).await {
                continue;
            }
            let Ok(permit) = limit.clone().acquire_owned().await else {
                return;
            };
            let (client, weak) = (client.clone(), weak.clone());
            drop(s);
            tokio::spawn(async move {
                if let Err(e) = deliver(&weak, &client, job).await {
                    tracing::warn!(error = %e.message, "push notification not delivered");
                }
                drop(permit);
            });
        }
    });
}

async fn wait_durable(s: &Services, count: u64) -> bool {
    let mut changes = s.store.subscribe();
    let reached = async {
        while s.store.position() < count {
            if changes.changed().await.is_err() {
                return false;
            }
        }
        true
    };
    tokio::time::timeout(DURABLE_WAIT, reached)
        .await
        .unwrap_or(false)
}

fn tweaks(actions: &[Action]) -> Map<String, Value> {
    let mut out = Map::new();
    for action in actions {
        match action {
            Action::SetTweak(Tweak::Sound(sound)) => {
                out.insert("sound".into(), json!(sound));
            }
            Action::SetTweak(Tweak::Highlight(_)) => {
                out.insert("highlight".into(), json!(action.is_highlight()));
            }
            _ => {}
        }
    }
    out
}

/// The notification for the gateway behind `pushers`.
fn notification(s: &Services, job: &PushJob, pushers: &[&Pusher]) -> Result<Option<Value>> {
    let Some((_, pdu)) = s.rooms.pdu(&job.event_id)? else {
        return Ok(None);
    };
    let room_id = pdu
        .room_id
        .clone()
        .ok_or_else(|| Error::internal("notifying event has no room"))?;
    let tweaks = tweaks(&job.actions);
    let devices: Vec<Value> = pushers
        .iter()
        .map(|p| {
            let mut data = p.data.clone();
            if let Some(obj) = data.as_object_mut() {
                obj.remove("url");
            }
            json!({
                "app_id": p.app_id, "pushkey": p.pushkey, "pushkey_ts": p.pushkey_ts,
                "data": data, "tweaks": tweaks,
            })
        })
        .collect();
    let high = tweaks.contains_key("sound")
        || tweaks.get("highlight") == Some(&json!(true))
        || pdu.kind.to_string() == "m.room.encrypted";
    let mut out = json!({
        "event_id": pdu.event_id,
        "room_id": room_id,
        "prio": if high { "high" } else { "low" },
        "counts": { "unread": s.push.unread_rooms(&job.user)? },
        "devices": devices,
    });
    if !pushers.iter().all(|p| p.event_id_only()) {
        out["type"] = json!(pdu.kind.to_string());
        out["sender"] = json!(pdu.sender);
        out["content"] = serde_json::from_str(pdu.content.get())?;
        let (_, record) = s.rooms.record_of(&room_id)?;
        if let Some(name) = s.rooms.state_event(record.state, "m.room.name", "")? {
            if let Some(n) = name.content_value().get("name").and_then(Value::as_str) {
                out["room_name"] = json!(n);
            }
        }
        if let Some(member) =
            s.rooms
                .state_event(record.state, "m.room.member", pdu.sender.as_str())?
        {
            if let Some(n) = member
                .content_value()
                .get("displayname")
                .and_then(Value::as_str)
            {
                out["sender_display_name"] = json!(n);
            }
        }
        if pdu.state_key.as_deref() == Some(job.user.as_str()) {
            out["user_is_target"] = json!(true);
        }
    }
    Ok(Some(json!({ "notification": out })))
}

async fn deliver(weak: &Weak<Services>, client: &reqwest::Client, job: PushJob) -> Result<()> {
    let (requests, store) = {
        let s = weak
            .upgrade()
            .ok_or_else(|| Error::internal("server stopped"))?;
        let pushers = s.push.pushers.list(&s.store.db, &job.user)?;
        let mut by_url: BTreeMap<String, Vec<&Pusher>> = BTreeMap::new();
        for p in &pushers {
            if let Some(url) = p.url() {
                by_url.entry(url.to_owned()).or_default().push(p);
            }
        }
        let mut requests = Vec::new();
        for (url, group) in by_url {
            if let Some(body) = notification(&s, &job, &group)? {
                let ids: Vec<(String, String)> = group
                    .iter()
                    .map(|p| (p.app_id.clone(), p.pushkey.clone()))
                    .collect();
                requests.push((url, body, ids));
            }
        }
        (requests, s.store.clone())
    };
    for (url, body, ids) in requests {
        let rejected = post_with_retries(client, &url, &body).await?;
        let mut batch = Batch::new();
        for (app_id, pushkey) in ids.iter().filter(|(_, k)| rejected.contains(k)) {
            tracing::info!(user = %job.user, app_id, "gateway rejected a pushkey; pusher removed");
            if let Some(s) = weak.upgrade() {
                s.push
                    .pushers
                    .delete_into(&mut batch, &job.user, app_id, pushkey);
            }
        }
        if !batch.is_empty() {
            store.commit(batch, vec![], Wake::none()).await?;
        }
    }
    Ok(())
}

/// Posts a notification; returns the pushkeys the gateway rejected.
async fn post_with_retries(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
) -> Result<Vec<String>> {
    let mut pause = FIRST_RETRY;
    let mut last_error = String::new();
    for attempt in 1..=ATTEMPTS {
        match client.post(url).json(body).send().await {
            Ok(res) if res.status().is_success() => {
                let answer: Value = res.json().await.unwrap_or(Value::Null);
                return Ok(answer["rejected"]
                    .as_array()
                    .map(|keys| {
                        keys.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default());
            }
            Ok(res) => last_error = format!("gateway answered {}", res.status()),
            Err(e) => last_error = e.to_string(),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }
    Err(Error::internal(format!("push gateway {url}: {last_error}")))
}
