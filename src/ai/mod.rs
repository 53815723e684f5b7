//! The adapter that plugs the AI kernel into the homeserver: every person's
//! `@x_ai`, driven in-process. It hears room events straight from the room
//! core (an observer on the append path), answers through the same send
//! path as any local user, keeps histories and run records in RocksDB, and
//! fires reminders.

mod crypto;
mod dispatch;
pub mod home_layout;
mod host;
pub mod http;
pub mod live;
mod outbox;
pub mod provision;
mod records;
mod scheduler;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use matrixos_kernel::{Home, HomesDir, Kernel, KernelConfig};
use parking_lot::{Mutex, RwLock};
use ruma::{OwnedRoomId, OwnedUserId, UserId};
use tokio::sync::{mpsc, Semaphore};

use crate::error::{Error, Result};
use crate::services::Services;
use host::ServerHost;

pub use records::AiUserRecord;

/// Localparts ending in this belong to AI users.
pub const AI_SUFFIX: &str = "_ai";

pub struct Ai {
    kernel: Kernel<ServerHost>,
    enabled: bool,
    homes: Mutex<HashMap<OwnedUserId, Arc<Home>>>,
    homes_dir: HomesDir,
    /// Short room id → AI users joined to it: the observer's cheap filter.
    rooms: RwLock<HashMap<u64, Vec<OwnedUserId>>>,
    triggers: mpsc::UnboundedSender<dispatch::Trigger>,
    trigger_rx: Mutex<Option<mpsc::UnboundedReceiver<dispatch::Trigger>>>,
    /// One queue per (AI user, room): runs in a room happen in order.
    workers: Mutex<HashMap<(OwnedUserId, OwnedRoomId), mpsc::UnboundedSender<worker::Work>>>,
    /// Caps runs in flight across rooms.
    runs: Arc<Semaphore>,
    scheduler: scheduler::Scheduler,
    run_sequence: AtomicU64,
    /// The answers being written, for the desktop's live view.
    pub live: Arc<live::LiveAnswers>,
    devices: crypto::Devices,
}

/// Whether a user id is an AI user's (by its reserved localpart).
pub fn is_ai_user(user: &UserId) -> bool {
    user.localpart().ends_with(AI_SUFFIX)
}

impl Ai {
    /// `data_dir` holds the homes, under `homes/`.
    pub fn new(config: KernelConfig, base_url: String, data_dir: &std::path::Path) -> Result<Self> {
        let homes_dir = HomesDir::open(&data_dir.join("homes"))
            .map_err(|e| Error::internal(format!("homes directory: {e}")))?;
        let scheduler = scheduler::Scheduler::default();
        let live = Arc::new(live::LiveAnswers::default());
        let host = Arc::new(ServerHost::new(base_url, scheduler.signal(), live.clone()));
        let enabled = config.enabled;
        let max_runs = config.max_concurrent_runs.max(1);
        let kernel =
            Kernel::new(config, host).map_err(|e| Error::internal(format!("AI provider: {e}")))?;
        let (triggers, trigger_rx) = mpsc::unbounded_channel();
        Ok(Self {
            kernel,
            enabled,
            homes: Mutex::new(HashMap::new()),
            homes_dir,
            rooms: RwLock::new(HashMap::new()),
            triggers,
            trigger_rx: Mutex::new(Some(trigger_rx)),
            workers: Mutex::new(HashMap::new()),
            runs: Arc::new(Semaphore::new(max_runs)),
            scheduler,
            run_sequence: AtomicU64::new(0),
            live,
            devices: crypto::Devices::default(),
        })
    }

    fn next_run_sequence(&self) -> u64 {
        self.run_sequence.fetch_add(1, Ordering::Relaxed)
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Connects the AI to the running server: the room observer, the
    /// dispatcher and the reminder scheduler. Called once the services are
    /// shared.
    pub fn start(services: &Arc<Services>) {
        let ai = &services.ai;
        let Some(rx) = ai.trigger_rx.lock().take() else {
            return; // already started
        };
        ai.kernel.host().attach(Arc::downgrade(services));
        if let Err(e) = ai.load_rooms(services) {
            tracing::error!(error = %e, "cannot load the AI users' rooms");
        }
        services
            .rooms
            .add_hook(Arc::new(dispatch::Observer(Arc::downgrade(services))));
        tokio::spawn(dispatch::run(Arc::downgrade(services), rx));
        tokio::spawn(scheduler::run(Arc::downgrade(services)));
    }

    /// The owner's home, opened (or created from the template) once. Its
    /// directory comes from [`matrixos_kernel::homes::dir_name`], never from
    /// the localpart as a path.
    pub async fn home(&self, owner: &UserId) -> Result<Arc<Home>> {
        if let Some(home) = self.homes.lock().get(owner) {
            return Ok(home.clone());
        }
        let name = owner.localpart().to_owned();
        let author = format!("{name}{AI_SUFFIX}");
        let template = matrixos_kernel::template::home_files(&name, &author);
        let homes = self.homes_dir.clone();
        let home = tokio::task::spawn_blocking(move || {
            Home::open_or_create(&homes, &name, &author, &template)
        })
        .await
        .map_err(|e| Error::internal(format!("home: {e}")))?
        .map_err(|e| Error::internal(format!("home of {owner}: {e}")))?;
        let home = Arc::new(home);
        Ok(self
            .homes
            .lock()
            .entry(owner.to_owned())
            .or_insert(home)
            .clone())
    }

    pub fn homes_dir(&self) -> &HomesDir {
        &self.homes_dir
    }

    fn load_rooms(&self, s: &Services) -> Result<()> {
        let mut rooms = self.rooms.write();
        for (ai, _) in records::all(&s.store.db)? {
            for room in s.rooms.joined_rooms(&ai)? {
                if let Some(short) = s.rooms.short_room(&room)? {
                    rooms.entry(short).or_default().push(ai.clone());
                }
            }
        }
        Ok(())
    }
}
