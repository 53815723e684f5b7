//! Every typed table: its column family and the codecs of its keys and
//! values. Callers name records through these, never by bytes.

use crate::records::{AliasRecord, EventMeta, MembershipRecord, RoomRecord, StateDiff};
use crate::typed::{
    Bytes, Json, Nothing, Parts, ShortAndText, ShortAndU64, Text, TextPair, TimelinePlace,
    TypedTable, U64List, U64,
};
use crate::Table;

/// short event id → the stored event (its id and signed PDU; the format
/// is the room core's `stored_event`).
pub const EVENTS: TypedTable<U64, Bytes> = TypedTable::new(Table::Events);
/// event id → short event id.
pub const EVENT_IDS: TypedTable<Text, U64> = TypedTable::new(Table::EventIds);
/// short event id → its place, states and verdict.
pub const EVENT_META: TypedTable<U64, EventMeta> = TypedTable::new(Table::EventMeta);
/// room id → short room id.
pub const ROOM_IDS: TypedTable<Text, U64> = TypedTable::new(Table::RoomIds);
/// short room id → the room's head.
pub const ROOMS: TypedTable<U64, RoomRecord> = TypedTable::new(Table::Rooms);
/// (short room id, place) → short event id.
pub const TIMELINE: TypedTable<TimelinePlace, U64> = TypedTable::new(Table::Timeline);
/// (short room id, stream position) → the room's current state from then on.
pub const ROOM_STATES: TypedTable<ShortAndU64, U64> = TypedTable::new(Table::RoomStates);
/// short event id → nothing: known, in no timeline.
pub const OUTLIERS: TypedTable<U64, Nothing> = TypedTable::new(Table::Outliers);
/// short event id → why the auth rules rejected it.
pub const REJECTIONS: TypedTable<U64, Text> = TypedTable::new(Table::Rejections);
/// short id of a redacted event → short id of the redaction.
pub const REDACTIONS: TypedTable<U64, U64> = TypedTable::new(Table::Redactions);
/// (event type, state key) → short state key id.
pub const STATE_KEYS: TypedTable<TextPair, U64> = TypedTable::new(Table::StateKeys);
/// short state key id → (event type, state key).
pub const STATE_KEY_NAMES: TypedTable<U64, TextPair> = TypedTable::new(Table::StateKeyNames);
/// short state id → the state as a diff against its parent.
pub const STATE_DIFFS: TypedTable<U64, StateDiff> = TypedTable::new(Table::StateDiffs);
/// sha256 of a state's sorted pairs → short state id.
pub const STATE_HASHES: TypedTable<Bytes, U64> = TypedTable::new(Table::StateHashes);
/// short event id → its full auth chain (sorted short event ids).
pub const AUTH_CHAINS: TypedTable<U64, U64List> = TypedTable::new(Table::AuthChains);
/// (user id, room id) → the user's membership there.
pub const USER_ROOMS: TypedTable<TextPair, Json<MembershipRecord>> =
    TypedTable::new(Table::UserRooms);
/// (short room id, user id) → the user's membership.
pub const ROOM_MEMBERS: TypedTable<ShortAndText, Text> = TypedTable::new(Table::RoomMembers);
/// (sender, device, endpoint, room id, transaction id) → the event id a
/// client transaction made.
pub const EVENT_TXNS: TypedTable<Parts, Text> = TypedTable::new(Table::Transactions);
/// room alias → where it points. Shares its column family with
/// [`ROOM_ALIASES`]: aliases start with `#`, room ids with `!`.
pub const ALIASES: TypedTable<Text, Json<AliasRecord>> = TypedTable::new(Table::Aliases);
/// (room id, alias) → nothing: a room's local aliases.
pub const ROOM_ALIASES: TypedTable<TextPair, Nothing> = TypedTable::new(Table::Aliases);
/// ("public_room", room id) → nothing: the public room directory, kept
/// among the server's settings.
pub const PUBLIC_ROOMS: TypedTable<TextPair, Nothing> = TypedTable::new(Table::Server);
/// The first part of every [`PUBLIC_ROOMS`] key.
pub const PUBLIC_ROOMS_PART: &str = "public_room";
