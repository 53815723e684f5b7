//! Matrix OS: a Matrix homeserver whose room core also hosts an AI user for
//! every person. See `DESIGN.md` in the shared folder for the map.

pub mod ai;
pub mod alloc;
pub mod blocking;
pub mod bounded_map;
pub mod client;
pub mod config;
pub mod desktop;
pub mod error;
pub mod federation;
pub mod http;
pub mod metrics;
pub mod ops;
pub mod push;
pub mod random;
pub mod rooms;
pub mod search;
pub mod server;
pub mod services;
pub mod sliding_sync;
pub mod spaces;
pub mod store;
pub mod sync;
pub mod tls;
pub mod two_gen;
pub mod url_preview;
