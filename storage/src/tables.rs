//! Every typed table: its column family and the codecs of its keys and
//! values. Callers name records through these, never by bytes.

use crate::backup_keys::{BackedUpKey, UserVersion};
use crate::records::{
    AiUserRecord, AliasRecord, BackupVersionRecord, DestinationRecord, DeviceRecord, EventMeta,
    MediaRecord, MembershipRecord, PeekRecord, PushRow, Pusher, RemoteKey, RemoteMediaRecord,
    ReportRecord, RoomDeletionRecord, RoomRecord, SlidingConnection, StateDiff, TokenExpiry,
    UserRecord,
};
use crate::typed::{
    Bytes, Counted, Json, Nothing, PairAndU64, Parts, ShortAndText, ShortAndU64, Text,
    TextAndTwoU64, TextPair, TimelinePlace, TypedTable, U64AndText, U64List, U64,
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
/// (user id, room id or "" for global, type) → (position, content).
pub const ACCOUNT_DATA: TypedTable<Parts, Counted> = TypedTable::new(Table::AccountData);
/// (room id, user id, receipt type, thread or "") → (position, receipt).
pub const RECEIPTS: TypedTable<Parts, Counted> = TypedTable::new(Table::Receipts);
/// media id → the uploaded file's record.
pub const MEDIA: TypedTable<Text, Json<MediaRecord>> = TypedTable::new(Table::Media);
/// (user id, filter id) → the filter as the client defined it.
pub const FILTERS: TypedTable<Parts, Json<serde_json::Value>> = TypedTable::new(Table::Filters);
/// setting name → value: the server's own records (its signing key, the
/// layout of the homes directory). Shares its column family with
/// [`PUBLIC_ROOMS`], whose keys hold a 0xff no name does.
pub const SERVER_SETTINGS: TypedTable<Text, Bytes> = TypedTable::new(Table::Server);
/// AI user id → its encryption device, pickled and encrypted.
pub const AI_CRYPTO: TypedTable<Text, Bytes> = TypedTable::new(Table::AiCrypto);
/// user id → the account.
pub const USERS: TypedTable<Text, Json<UserRecord>> = TypedTable::new(Table::Users);
/// (user id, device id) → the device.
pub const DEVICES: TypedTable<TextPair, Json<DeviceRecord>> = TypedTable::new(Table::Devices);
/// sha256 of an access token → (user id, device id).
pub const ACCESS_TOKENS: TypedTable<Bytes, TextPair> = TypedTable::new(Table::AccessTokens);
/// sha256 of a refresh token → (user id, device id).
pub const REFRESH_TOKENS: TypedTable<Bytes, TextPair> = TypedTable::new(Table::RefreshTokens);
/// sha256 of an access token that expires → when, and what its first use
/// revokes.
pub const TOKEN_EXPIRY: TypedTable<Bytes, Json<TokenExpiry>> = TypedTable::new(Table::TokenExpiry);
/// (user id, device id) → the device's signed keys.
pub const DEVICE_KEYS: TypedTable<TextPair, Json<serde_json::Value>> =
    TypedTable::new(Table::DeviceKeys);
/// (user id, device id, algorithm:key id) → an unclaimed one-time key.
pub const ONE_TIME_KEYS: TypedTable<Parts, Json<serde_json::Value>> =
    TypedTable::new(Table::OneTimeKeys);
/// (user id, device id, algorithm) → the fallback key and whether it was used.
pub const FALLBACK_KEYS: TypedTable<Parts, Json<serde_json::Value>> =
    TypedTable::new(Table::FallbackKeys);
/// (user id, device id, position) → a to-device message for the device.
pub const TO_DEVICE: TypedTable<PairAndU64, Json<serde_json::Value>> =
    TypedTable::new(Table::ToDevice);
/// (position, user id) → nothing: whose device list changed when.
pub const KEY_CHANGES: TypedTable<U64AndText, Nothing> = TypedTable::new(Table::KeyChanges);
/// (sender, device, "to_device", transaction id) → nothing: a to-device
/// transaction already sent. Shares its column family with [`EVENT_TXNS`].
pub const TO_DEVICE_TXNS: TypedTable<Parts, Nothing> = TypedTable::new(Table::Transactions);
/// (user id, usage) → the user's cross-signing key as uploaded.
pub const CROSS_SIGNING_KEYS: TypedTable<TextPair, Json<serde_json::Value>> =
    TypedTable::new(Table::CrossSigningKeys);
/// (target user, "device" or "master", key name, signer, signer's key id)
/// → a signature added by `/keys/signatures/upload`.
pub const KEY_SIGNATURES: TypedTable<Parts, Json<serde_json::Value>> =
    TypedTable::new(Table::KeySignatures);
/// (user id, version) → the backup version.
pub const BACKUP_VERSIONS: TypedTable<UserVersion, Json<BackupVersionRecord>> =
    TypedTable::new(Table::BackupVersions);
/// (user id, version, room id, session id) → the backed-up room key as the
/// client uploaded it.
pub const BACKUP_KEYS: TypedTable<BackedUpKey, Json<serde_json::Value>> =
    TypedTable::new(Table::BackupKeys);
/// (user id, short room id, position) → a notification the user has not
/// read.
pub const PUSH_ACTIONS: TypedTable<TextAndTwoU64, PushRow> = TypedTable::new(Table::PushActions);
/// (user id, app id, pushkey) → the pusher.
pub const PUSHERS: TypedTable<Parts, Json<Pusher>> = TypedTable::new(Table::Pushers);
/// AI user id → its record.
pub const AI_USERS: TypedTable<Text, Json<AiUserRecord>> = TypedTable::new(Table::AiUsers);
/// (AI user id, room id) → the conversation history (the kernel's JSON).
pub const AI_HISTORY: TypedTable<TextPair, Bytes> = TypedTable::new(Table::AiHistory);
/// (owner, start time in ms, sequence) → a run record (the kernel's JSON).
pub const AI_RUNS: TypedTable<TextAndTwoU64, Bytes> = TypedTable::new(Table::AiRuns);

/// (server name, key id) → another server's public key and its validity.
pub const REMOTE_SERVER_KEYS: TypedTable<TextPair, Json<RemoteKey>> =
    TypedTable::new(Table::RemoteServerKeys);
/// server name → the signed key object last fetched from it, as received.
pub const REMOTE_KEY_RESPONSES: TypedTable<Text, Bytes> =
    TypedTable::new(Table::RemoteKeyResponses);
/// (destination, sequence, kind) → what waits to be sent to a server: for
/// [`OUTBOX_PDU`] the short event id (u64 BE), for [`OUTBOX_EDU`] the EDU.
pub const FEDERATION_OUTBOX: TypedTable<TextAndTwoU64, Bytes> =
    TypedTable::new(Table::FederationOutbox);
/// The kinds of [`FEDERATION_OUTBOX`] rows.
pub const OUTBOX_PDU: u64 = 0;
pub const OUTBOX_EDU: u64 = 1;
/// server name → when to try it again after failures.
pub const FEDERATION_DESTINATIONS: TypedTable<Text, Json<DestinationRecord>> =
    TypedTable::new(Table::FederationDestinations);
/// (origin, transaction id) → the answer given to it.
pub const INBOUND_TRANSACTIONS: TypedTable<TextPair, Bytes> =
    TypedTable::new(Table::InboundTransactions);
/// (server name, media id) → this server's copy of another server's file.
pub const REMOTE_MEDIA: TypedTable<TextPair, Json<RemoteMediaRecord>> =
    TypedTable::new(Table::RemoteMedia);
/// local user → the stream id of the last device list update about them
/// sent to other servers.
pub const DEVICE_LIST_STREAMS: TypedTable<Text, U64> = TypedTable::new(Table::DeviceListStreams);
/// (event, event relating to it), both by short id → (relation type,
/// relating event's type).
pub const RELATIONS: TypedTable<ShortAndU64, TextPair> = TypedTable::new(Table::Relations);
/// (short room id, short id of a thread root) → stream position of the
/// thread's latest reply.
pub const THREADS: TypedTable<ShortAndU64, U64> = TypedTable::new(Table::Threads);
/// report number → a report of a room or an event, for admins.
pub const REPORTS: TypedTable<U64, Json<ReportRecord>> = TypedTable::new(Table::Reports);
/// short event id → nothing: the search index's queue.
pub const SEARCH_QUEUE: TypedTable<U64, Nothing> = TypedTable::new(Table::SearchQueue);
/// ("peek", user, device, room) → the device's peek into the room.
pub const PEEKS: TypedTable<Parts, Json<PeekRecord>> = TypedTable::new(Table::Server);
/// The first part of every key in [`PEEKS`].
pub const PEEKS_PART: &str = "peek";
/// ("room_deletion", delete id) → a room deletion asked for through the
/// v2 admin API.
pub const ROOM_DELETIONS: TypedTable<Parts, Json<RoomDeletionRecord>> =
    TypedTable::new(Table::Server);
/// The first part of every key in [`ROOM_DELETIONS`].
pub const ROOM_DELETIONS_PART: &str = "room_deletion";
/// (user, device, connection id) → a sliding sync connection.
pub const SLIDING_CONNECTIONS: TypedTable<Parts, Json<SlidingConnection>> =
    TypedTable::new(Table::SlidingConnections);
