/// The column families. Each holds one kind of record; the key layout of each
/// is documented here and encoded by [`crate::keys`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// counter name → u64 (merged with "max", so concurrent batches may write
    /// counters out of order).
    Counters,
    /// user id → user record (JSON).
    Users,
    /// user id ‖ 0xff ‖ device id → device record (JSON).
    Devices,
    /// sha256(access token) → user id ‖ 0xff ‖ device id.
    AccessTokens,
    /// short event id (u64 BE) → PDU JSON.
    Events,
    /// event id → short event id.
    EventIds,
    /// short event id → event metadata (JSON: room, count, state before/after).
    EventMeta,
    /// room id → short room id.
    RoomIds,
    /// short room id → room record (JSON: version, current state, extremities).
    Rooms,
    /// short room id ‖ place (see `keys::timeline`: live events by stream
    /// count, backfilled ones before them) → short event id.
    Timeline,
    /// event type ‖ 0xff ‖ state key → short state key.
    StateKeys,
    /// short state key → event type ‖ 0xff ‖ state key.
    StateKeyNames,
    /// short state hash → compressed state diff against a parent.
    StateDiffs,
    /// user id ‖ 0xff ‖ room id → membership record (JSON).
    UserRooms,
    /// short room id ‖ user id → membership (JSON).
    RoomMembers,
    /// user id ‖ 0xff ‖ device id ‖ 0xff ‖ transaction id → event id.
    Transactions,
    /// user id ‖ 0xff ‖ room id (empty for global) ‖ 0xff ‖ type → count ‖ JSON.
    AccountData,
    /// user id ‖ 0xff ‖ filter id → filter JSON.
    Filters,
    /// user id ‖ 0xff ‖ device id → signed device keys JSON.
    DeviceKeys,
    /// user id ‖ 0xff ‖ device id ‖ 0xff ‖ algorithm:key id → one-time key JSON.
    OneTimeKeys,
    /// user id ‖ 0xff ‖ device id ‖ 0xff ‖ algorithm → fallback key record.
    FallbackKeys,
    /// user id ‖ 0xff ‖ device id ‖ 0xff ‖ count → to-device message JSON.
    ToDevice,
    /// count ‖ user id → nothing: whose device list changed when.
    KeyChanges,
    /// room alias → room id.
    Aliases,
    /// user id ‖ 0xff ‖ key → value: small per-user settings (display name,
    /// avatar, server-side flags) that are not account data.
    UserSettings,
    /// server-wide settings: signing keys, bookkeeping.
    Server,
    /// short event id of a redacted event → short id of the redaction.
    Redactions,
    /// room id ‖ 0xff ‖ user id ‖ 0xff ‖ receipt type ‖ 0xff ‖ thread → count ‖ JSON.
    Receipts,
    /// user id ‖ 0xff ‖ usage (master, self_signing, user_signing) →
    /// cross-signing key JSON as the user uploaded it.
    CrossSigningKeys,
    /// target user ‖ 0xff ‖ kind (`device` or `master`) ‖ 0xff ‖ target key
    /// name (device id or master public key) ‖ 0xff ‖ signer user ‖ 0xff ‖
    /// signer key id → signature record (JSON) added by
    /// `/keys/signatures/upload`.
    KeySignatures,
    /// AI user id → AI user record (JSON: owner, enabled, DM room).
    AiUsers,
    /// AI user id ‖ 0xff ‖ room id → conversation history (JSON).
    AiHistory,
    /// owner user id ‖ 0xff ‖ start time ms (u64 BE) ‖ sequence (u64 BE) →
    /// run record (JSON).
    AiRuns,
    /// AI user id → its encryption device's pickled state (encrypted).
    AiCrypto,
    /// user id ‖ 0xff ‖ short room id ‖ count (u64 BE each) → flags byte ‖
    /// thread root id ‖ 0xff ‖ push actions JSON: events that notify a user
    /// and that they have not read yet.
    PushActions,
    /// user id ‖ 0xff ‖ version (u64 BE) → key backup version record (JSON).
    BackupVersions,
    /// user id ‖ 0xff ‖ version (u64 BE) ‖ room id ‖ 0xff ‖ session id →
    /// backed-up room key (JSON, as the client uploaded it).
    BackupKeys,
    /// user id ‖ 0xff ‖ app id ‖ 0xff ‖ pushkey → pusher (JSON).
    Pushers,
    /// media id → uploaded file's record (JSON); the bytes are a file.
    Media,
    /// sha256 of a state's sorted (short state key, short event) pairs →
    /// short state id: the same state always gets the same id.
    StateHashes,
    /// short event id → its full auth chain (sorted short event ids, u64 BE
    /// each), computed once and never changed.
    AuthChains,
    /// short event id → nothing: events known but not in any timeline (auth
    /// events, state received for a join); their PDU is in `Events`.
    Outliers,
    /// short room id ‖ stream position (u64 BE each) → short state id: the
    /// room's current state from that position on.
    RoomStates,
    /// short event id → why the auth rules rejected it (UTF-8).
    Rejections,
    /// server name ‖ 0xff ‖ key id → another server's public key and until
    /// when it may be used (JSON).
    RemoteServerKeys,
    /// server name → the latest signed key object fetched from it (JSON as
    /// received), served again by the notary endpoint.
    RemoteKeyResponses,
    /// destination ‖ 0xff ‖ sequence ‖ kind (u64 BE each) → what waits to
    /// be sent to that server: a PDU's short event id, or an EDU (JSON).
    FederationOutbox,
    /// destination → its retry state (JSON: failures, next attempt).
    FederationDestinations,
    /// origin ‖ 0xff ‖ transaction id → the answer given to that
    /// transaction (JSON), so that a retried one is answered the same.
    InboundTransactions,
    /// server name ‖ 0xff ‖ media id → this server's copy of another
    /// server's file (JSON: local file id, type, name, size).
    RemoteMedia,
    /// local user → the stream id of the last device list update sent to
    /// other servers about them (the next one names it as `prev_id`).
    DeviceListStreams,
    /// short event id ‖ short id of an event relating to it → the
    /// relation's type and the relating event's type.
    Relations,
    /// short room id ‖ short id of a thread's root → the stream position
    /// of the thread's latest reply.
    Threads,
    /// report number → a report of a room or an event (JSON), for admins.
    Reports,
    /// user ‖ device ‖ connection id → a sliding sync connection's
    /// positions and what each one had sent (JSON).
    SlidingConnections,
    /// short event id → nothing: searchable events and redactions written
    /// but not yet in the search index.
    SearchQueue,
    /// sha256 of a refresh token → user ‖ device.
    RefreshTokens,
    /// sha256 of an access token that expires → its expiry (JSON).
    TokenExpiry,
}

impl Table {
    pub const ALL: [Table; 58] = [
        Table::Counters,
        Table::Users,
        Table::Devices,
        Table::AccessTokens,
        Table::Events,
        Table::EventIds,
        Table::EventMeta,
        Table::RoomIds,
        Table::Rooms,
        Table::Timeline,
        Table::StateKeys,
        Table::StateKeyNames,
        Table::StateDiffs,
        Table::UserRooms,
        Table::RoomMembers,
        Table::Transactions,
        Table::AccountData,
        Table::Filters,
        Table::DeviceKeys,
        Table::OneTimeKeys,
        Table::FallbackKeys,
        Table::ToDevice,
        Table::KeyChanges,
        Table::Aliases,
        Table::UserSettings,
        Table::Server,
        Table::Redactions,
        Table::Receipts,
        Table::CrossSigningKeys,
        Table::KeySignatures,
        Table::AiUsers,
        Table::AiHistory,
        Table::AiRuns,
        Table::AiCrypto,
        Table::PushActions,
        Table::BackupVersions,
        Table::BackupKeys,
        Table::Pushers,
        Table::Media,
        Table::StateHashes,
        Table::AuthChains,
        Table::Outliers,
        Table::RoomStates,
        Table::Rejections,
        Table::RemoteServerKeys,
        Table::RemoteKeyResponses,
        Table::FederationOutbox,
        Table::FederationDestinations,
        Table::InboundTransactions,
        Table::RemoteMedia,
        Table::DeviceListStreams,
        Table::Relations,
        Table::Threads,
        Table::Reports,
        Table::SlidingConnections,
        Table::SearchQueue,
        Table::RefreshTokens,
        Table::TokenExpiry,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Counters => "counters",
            Table::Users => "users",
            Table::Devices => "devices",
            Table::AccessTokens => "access_tokens",
            Table::Events => "events",
            Table::EventIds => "event_ids",
            Table::EventMeta => "event_meta",
            Table::RoomIds => "room_ids",
            Table::Rooms => "rooms",
            Table::Timeline => "timeline",
            Table::StateKeys => "state_keys",
            Table::StateKeyNames => "state_key_names",
            Table::StateDiffs => "state_diffs",
            Table::UserRooms => "user_rooms",
            Table::RoomMembers => "room_members",
            Table::Transactions => "transactions",
            Table::AccountData => "account_data",
            Table::Filters => "filters",
            Table::DeviceKeys => "device_keys",
            Table::OneTimeKeys => "one_time_keys",
            Table::FallbackKeys => "fallback_keys",
            Table::ToDevice => "to_device",
            Table::KeyChanges => "key_changes",
            Table::Aliases => "aliases",
            Table::UserSettings => "user_settings",
            Table::Server => "server",
            Table::Redactions => "redactions",
            Table::Receipts => "receipts",
            Table::CrossSigningKeys => "cross_signing_keys",
            Table::KeySignatures => "key_signatures",
            Table::AiUsers => "ai_users",
            Table::AiHistory => "ai_history",
            Table::AiRuns => "ai_runs",
            Table::AiCrypto => "ai_crypto",
            Table::PushActions => "push_actions",
            Table::BackupVersions => "backup_versions",
            Table::BackupKeys => "backup_keys",
            Table::Pushers => "pushers",
            Table::Media => "media",
            Table::StateHashes => "state_hashes",
            Table::AuthChains => "auth_chains",
            Table::Outliers => "outliers",
            Table::RoomStates => "room_states",
            Table::Rejections => "rejections",
            Table::RemoteServerKeys => "remote_server_keys",
            Table::RemoteKeyResponses => "remote_key_responses",
            Table::FederationOutbox => "federation_outbox",
            Table::FederationDestinations => "federation_destinations",
            Table::InboundTransactions => "inbound_transactions",
            Table::RemoteMedia => "remote_media",
            Table::DeviceListStreams => "device_list_streams",
            Table::Relations => "relations",
            Table::Threads => "threads",
            Table::Reports => "reports",
            Table::SlidingConnections => "sliding_connections",
            Table::SearchQueue => "search_queue",
            Table::RefreshTokens => "refresh_tokens",
            Table::TokenExpiry => "token_expiry",
        }
    }

    /// Tables read mostly by point lookups get bloom filters; the others are
    /// scanned by prefix in key order.
    pub(crate) fn point_lookups(self) -> bool {
        matches!(
            self,
            Table::Users
                | Table::AccessTokens
                | Table::RefreshTokens
                | Table::TokenExpiry
                | Table::Events
                | Table::EventIds
                | Table::EventMeta
                | Table::RoomIds
                | Table::Rooms
                | Table::StateKeys
                | Table::StateKeyNames
                | Table::StateDiffs
                | Table::Transactions
                | Table::Aliases
                | Table::Redactions
                | Table::AiUsers
                | Table::AiHistory
                | Table::AiCrypto
                | Table::Media
                | Table::StateHashes
                | Table::AuthChains
                | Table::Outliers
                | Table::Rejections
                | Table::RemoteServerKeys
                | Table::RemoteKeyResponses
        )
    }
}
