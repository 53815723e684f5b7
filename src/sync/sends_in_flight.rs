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
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ruma::{OwnedDeviceId, OwnedUserId};
use tokio::sync::watch;

/// The longest a sync waits for its device's sends: a slow send (a full
/// disk, a busy room) must not hold the device's other news back.
const MAX_WAIT: Duration = Duration::from_millis(250);

type Device = (OwnedUserId, OwnedDeviceId);

/// Counts of sends under way, per device with at least one.
#[derive(Default)]
pub struct SendsInFlight {
    devices: Arc<Mutex<HashMap<Device, watch::Sender<usize>>>>,
}

/// One send under way: the count goes down when it is dropped, once the
/// handler has its answer.
pub struct InFlight {
    devices: Arc<Mutex<HashMap<Device, watch::Sender<usize>>>>,
    device: Device,
}

impl SendsInFlight {
    /// Notes a send of `device` (one with a transaction id) until the
    /// guard is dropped.
    pub fn begin(&self, user: &OwnedUserId, device: &OwnedDeviceId) -> InFlight {
        let device = (user.clone(), device.clone());
        let mut devices = self.devices.lock().unwrap_or_else(PoisonError::into_inner);
        devices
            .entry(device.clone())
            .or_insert_with(|| watch::channel(0).0)
            .send_modify(|n| *n += 1);
        InFlight {
            devices: self.devices.clone(),
            device,
        }
    }

    /// Waits until the device has no send under way, or `MAX_WAIT`.
    pub async fn settled(&self, user: &OwnedUserId, device: &OwnedDeviceId) {
        let receiver = {
            let devices = self.devices.lock().unwrap_or_else(PoisonError::into_inner);
            if devices.is_empty() {
                return;
            }
            match devices.get(&(user.clone(), device.clone())) {
                Some(count) => count.subscribe(),
                None => return,
            }
        };
        let mut receiver = receiver;
        let done = receiver.wait_for(|n| *n == 0);
        // A timeout or a dropped sender (the last send ended) both mean: go on.
        let _ = tokio::time::timeout(MAX_WAIT, done).await;
    }

    /// Devices with a send under way (for tests).
    #[cfg(test)]
    fn busy_devices(&self) -> usize {
        self.devices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut devices = self.devices.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(count) = devices.get(&self.device) else {
            return;
        };
        count.send_modify(|n| *n = n.saturating_sub(1));
        if *count.borrow() == 0 {
            devices.remove(&self.device);
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
