//! The records of the hot tables, in a binary form of their own.

mod account;
mod ai_user;
mod alias;
mod backup;
mod destination;
mod event_meta;
mod media;
mod membership;
mod peek;
mod push_row;
mod pusher;
mod remote_key;
mod report;
mod room_deletion;
mod room_record;
mod sliding_connection;
mod state_diff;
mod timeline_pos;

pub use account::{DeviceRecord, TokenExpiry, UserRecord};
pub use ai_user::AiUserRecord;
pub use alias::AliasRecord;
pub use backup::BackupVersionRecord;
pub use destination::DestinationRecord;
pub use event_meta::{EventMeta, Verdict};
pub use media::{MediaRecord, RemoteMediaRecord};
pub use membership::MembershipRecord;
pub use peek::PeekRecord;
pub use push_row::PushRow;
pub use pusher::Pusher;
pub use remote_key::RemoteKey;
pub use report::ReportRecord;
pub use room_deletion::{DeletionRequest, RoomDeletionRecord, ShutdownRecord};
pub use room_record::RoomRecord;
pub use sliding_connection::{SentRoom, SlidingConnection, SlidingPosition};
pub use state_diff::StateDiff;
pub use timeline_pos::TimelinePos;
