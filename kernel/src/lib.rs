//! The Matrix OS AI kernel: LLM providers, the agent loop, tools and the git
//! home. It talks to the homeserver only through traits the server implements.
//! The kernel itself arrives with the AI-user work; this crate fixes its place
//! in the workspace (nothing in it depends on the server).
