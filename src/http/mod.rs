//! HTTP plumbing shared by every endpoint: typed request extraction,
//! authentication, rate limiting, request size and time limits, and the
//! listener that serves connections.

pub mod auth;
pub mod authenticate;
pub mod body_check;
pub mod body_guard;
pub mod body_limit;
pub mod connections;
pub mod endpoint;
pub mod extract;
pub mod guests;
pub mod listener;
pub mod page_headers;
pub mod ratelimit;
pub mod stray_errors;
pub mod uia_request;

pub use auth::Caller;
