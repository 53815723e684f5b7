//! HTTP plumbing shared by every endpoint: typed request extraction,
//! authentication, rate limiting and the router.

pub mod auth;
pub mod extract;
pub mod ratelimit;
pub mod stray_errors;

pub use auth::Caller;
