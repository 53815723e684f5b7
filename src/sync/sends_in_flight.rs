//! A device's own sends still being answered, so its sync does not carry
//! the remote echo of an event before the client has the send's answer.
//!
//! Clients match the echo of their own event (its `transaction_id`) to the
//! local copy they keep until `/send` answers. matrix-js-sdk (Element Web)
//! throws when the answer comes after the echo of a thread reply whose
//! thread it has not set up yet, and the send is shown as failed. A sync
//! of the device therefore waits, briefly, for the device's sends under
//! way to be answered before it reads the stream.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ruma::{OwnedDeviceId, OwnedUserId};
use tokio::sync::Notify;

/// The longest a sync waits for its device's sends: a slow send (a full
/// disk, a busy room) must not hold the device's other news back.
const MAX_WAIT: Duration = Duration::from_millis(250);

/// Counts of sends under way, per device with at least one.
#[derive(Default)]
pub struct SendsInFlight {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// Keyed by a keyed hash of the user and device id, so that a send
    /// notes itself without copying either (two devices sharing a hash
    /// would only make one's sync wait for the other's sends, briefly).
    counts: Mutex<HashMap<u64, usize>>,
    keys: RandomState,
    /// Told each time a device's last send ends.
    ended: Notify,
}

impl Shared {
    fn key(&self, user: &OwnedUserId, device: &OwnedDeviceId) -> u64 {
        self.keys.hash_one((user.as_str(), device.as_str()))
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<u64, usize>> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One send under way: the count goes down when it is dropped, once the
/// handler has its answer.
pub struct InFlight {
    shared: Arc<Shared>,
    key: u64,
}

impl SendsInFlight {
    /// Notes a send of `device` (one with a transaction id) until the
    /// guard is dropped.
    pub fn begin(&self, user: &OwnedUserId, device: &OwnedDeviceId) -> InFlight {
        let key = self.shared.key(user, device);
        *self.shared.counts().entry(key).or_default() += 1;
        InFlight {
            shared: self.shared.clone(),
            key,
        }
    }

    /// Waits until the device has no send under way, or `MAX_WAIT`.
    pub async fn settled(&self, user: &OwnedUserId, device: &OwnedDeviceId) {
        if self.shared.counts().is_empty() {
            return;
        }
        let key = self.shared.key(user, device);
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        loop {
            let ended = self.shared.ended.notified();
            tokio::pin!(ended);
            // Listening before looking, so that an end between the two
            // is not missed.
            ended.as_mut().enable();
            if !self.shared.counts().contains_key(&key) {
                return;
            }
            // A timeout means: go on regardless.
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                return;
            }
        }
    }

    /// Devices with a send under way (for tests).
    #[cfg(test)]
    fn busy_devices(&self) -> usize {
        self.shared.counts().len()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut counts = self.shared.counts();
        let Some(count) = counts.get_mut(&self.key) else {
            return;
        };
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(&self.key);
            drop(counts);
            self.shared.ended.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (OwnedUserId, OwnedDeviceId, OwnedDeviceId) {
        (
            "@a:localhost".try_into().unwrap(),
            "PHONE".into(),
            "LAPTOP".into(),
        )
    }

    #[tokio::test]
    async fn a_sync_waits_for_its_devices_sends_and_no_other() {
        let sends = Arc::new(SendsInFlight::default());
        let (user, phone, laptop) = ids();
        // Nothing under way: no wait at all.
        sends.settled(&user, &phone).await;

        let first = sends.begin(&user, &phone);
        let second = sends.begin(&user, &phone);
        // Another device's sync does not wait for the phone's sends.
        sends.settled(&user, &laptop).await;

        let waiter = {
            let (sends, user, phone) = (sends.clone(), user.clone(), phone.clone());
            tokio::spawn(async move { sends.settled(&user, &phone).await })
        };
        tokio::task::yield_now().await;
        drop(first);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "one send is still under way");
        drop(second);
        waiter.await.unwrap();
        assert_eq!(sends.busy_devices(), 0, "no entry outlives its sends");
    }

    #[tokio::test]
    async fn a_send_that_never_ends_holds_a_sync_back_only_briefly() {
        let sends = SendsInFlight::default();
        let (user, phone, _) = ids();
        let _stuck = sends.begin(&user, &phone);
        let settled = sends.settled(&user, &phone);
        tokio::time::timeout(Duration::from_secs(30), settled)
            .await
            .expect("the sync goes on after its bounded wait");
    }
}
