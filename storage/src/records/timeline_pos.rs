//! A place in a room's timeline.

/// A place in a room's timeline: the stream count for live events; zero and
/// below for backfilled ones, which are older than every live event (the
/// further back, the lower). Its token is the decimal number, so tokens
/// handed out before backfill existed stay valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimelinePos(i64);

impl TimelinePos {
    /// Before every event, backfilled or not.
    pub const EARLIEST: Self = Self(i64::MIN + 1);
    /// Just before the first live event (after every backfilled one).
    pub const LIVE_START: Self = Self(0);

    /// A live event's place: its stream count.
    pub fn live(count: u64) -> Self {
        Self(i64::try_from(count).unwrap_or(i64::MAX))
    }

    /// The place of the `n`th backfilled event (n ≥ 1; larger is older).
    pub fn backfilled(n: u64) -> Self {
        Self(i64::try_from(n).map_or(Self::EARLIEST.0, |n| (-n).max(Self::EARLIEST.0)))
    }

    /// The place just before this one.
    pub fn before(self) -> Self {
        Self(self.0.saturating_sub(1).max(Self::EARLIEST.0))
    }

    /// The place just after this one.
    pub fn after(self) -> Self {
        Self(self.0.saturating_add(1))
    }

    /// The stream position it stands for: backfilled places are older than
    /// any, 0.
    pub fn stream_count(self) -> u64 {
        u64::try_from(self.0).unwrap_or(0)
    }

    pub fn token(self) -> String {
        self.0.to_string()
    }

    /// The place a token names, if it names one.
    pub fn parse(token: &str) -> Option<Self> {
        token
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= Self::EARLIEST.0)
            .map(Self)
    }

    /// The number its key is made from (see `keys::timeline`).
    pub fn get(self) -> i64 {
        self.0
    }

    pub(crate) fn from_key(n: i64) -> Self {
        Self(n)
    }
}
