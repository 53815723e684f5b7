//! Every whole-server test in one crate, so the suite links once: each
//! module is one area (a real server on a loopback port, driven by
//! matrix-sdk or raw HTTP).

#![recursion_limit = "256"]

#[path = "../common/mod.rs"]
mod common;

mod admin_api;
mod ai_e2ee;
mod ai_live;
mod ai_user;
mod client_e2ee;
mod client_flow;
mod cross_signing;
mod discovery;
mod durability;
mod element_web;
mod element_x;
mod federation;
mod federation_adversarial;
mod federation_gap;
mod federation_history;
mod federation_keys;
mod federation_knock;
mod federation_media;
mod federation_openid;
mod federation_outbox;
mod federation_presence;
mod federation_rooms;
mod federation_synapse;
mod federation_three;
mod federation_v1;
mod guests;
mod http_directory;
mod http_errors;
mod http_features;
mod http_key_backup;
mod http_limits;
mod http_push;
mod http_rooms;
mod media;
mod media_async;
mod operations;
mod peeking;
mod profile_fields;
mod pushers;
mod refresh_tokens;
mod relations;
mod reports;
mod room_summary;
mod room_upgrade;
mod search;
mod security;
mod sliding_sync;
mod spaces;
mod sync_v3;
mod threepid_and_voip;
mod tls_acme;
mod typed_accounts;
mod typed_keys;
mod typed_rooms;
mod url_preview;
mod user_directory;
mod web_desktop;
