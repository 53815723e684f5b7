//! The records of the hot tables, in a binary form of their own.

mod alias;
mod event_meta;
mod membership;
mod room_record;
mod state_diff;
mod timeline_pos;

pub use alias::AliasRecord;
pub use event_meta::{EventMeta, Verdict};
pub use membership::MembershipRecord;
pub use room_record::RoomRecord;
pub use state_diff::StateDiff;
pub use timeline_pos::TimelinePos;
