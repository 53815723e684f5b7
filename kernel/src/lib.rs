//! The Matrix OS AI kernel: LLM providers, the agent loop, tools, the git
//! home, privacy, reminders and the usage ledger. It talks to the homeserver
//! only through the [`Host`] trait, which the server implements.

pub mod agent;
pub mod config;
pub mod cron;
pub mod history;
pub mod home;
pub mod homes;
pub mod host;
pub mod ledger;
pub mod llm;
pub mod offline;
pub mod privacy;
pub mod prompt;
pub mod reminders;
pub mod template;
pub mod tools;

pub use agent::{Job, Kernel, RunOutcome};
pub use config::KernelConfig;
pub use home::Home;
pub use homes::HomesDir;
pub use host::{Host, RunContext};
pub use ledger::RunRecord;
