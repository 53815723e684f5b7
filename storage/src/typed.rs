//! Typed tables: a table with the codecs of its keys and values, so that
//! callers read and write values, never bytes. Every table the services use
//! is declared once, in [`crate::tables`].

use std::marker::PhantomData;

use crate::records::TimelinePos;
use crate::{Batch, Db, Direction, Error, Result, Table};

/// How a table's keys are written.
pub trait KeyCodec {
    /// What a caller passes to name a record.
    type Key: ?Sized;
    /// What a scan hands back.
    type Owned;
    fn encode(key: &Self::Key) -> Vec<u8>;
    /// `None`: the bytes are not a key of this table.
    fn decode(bytes: &[u8]) -> Option<Self::Owned>;
}

/// How a table's values are written.
pub trait ValueCodec {
    type Value;
    fn encode(value: &Self::Value) -> Vec<u8>;
    /// `None`: the bytes are not a value of this table.
    fn decode(bytes: &[u8]) -> Option<Self::Value>;
}

/// A table and its codecs.
pub struct TypedTable<K, V> {
    pub table: Table,
    codecs: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for TypedTable<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for TypedTable<K, V> {}

impl<K: KeyCodec, V: ValueCodec> TypedTable<K, V> {
    pub const fn new(table: Table) -> Self {
        Self {
            table,
            codecs: PhantomData,
        }
    }

    fn value(&self, bytes: &[u8]) -> Result<V::Value> {
        V::decode(bytes).ok_or_else(|| self.corrupt("value"))
    }

    fn corrupt(&self, what: &str) -> Error {
        Error::Corrupt {
            table: self.table.name(),
            detail: format!("a {what} its codec cannot read"),
        }
    }

    /// The value under `key`, if any.
    pub fn get(&self, db: &Db, key: &K::Key) -> Result<Option<V::Value>> {
        match db.get(self.table, &K::encode(key))? {
            Some(bytes) => Ok(Some(self.value(&bytes)?)),
            None => Ok(None),
        }
    }

    pub fn contains(&self, db: &Db, key: &K::Key) -> Result<bool> {
        db.exists(self.table, &K::encode(key))
    }

    /// Whether the table holds any record.
    pub fn is_empty(&self, db: &Db) -> bool {
        db.scan_prefix(self.table, &[]).next().is_none()
    }

    /// Deletes every record from the encoded key `from` (inclusive) to
    /// `to` (exclusive), as a codec's prefix functions give them.
    pub fn delete_range(&self, batch: &mut Batch, from: Vec<u8>, to: Vec<u8>) {
        batch.delete_range(self.table, from, to);
    }

    /// Deletes every key under a [`Parts::prefix`] (whose parts end with
    /// the separator, which no text part holds).
    pub fn delete_parts_prefix(&self, batch: &mut Batch, prefix: Vec<u8>) {
        let mut end = prefix.clone();
        end.push(crate::keys::SEP);
        batch.delete_range(self.table, prefix, end);
    }

    pub fn put(&self, batch: &mut Batch, key: &K::Key, value: &V::Value) {
        batch.put(self.table, K::encode(key), V::encode(value));
    }

    pub fn delete(&self, batch: &mut Batch, key: &K::Key) {
        batch.delete(self.table, K::encode(key));
    }

    /// Every record whose key starts with `prefix`, in key order.
    pub fn scan_prefix<'a>(
        &'a self,
        db: &'a Db,
        prefix: &'a [u8],
    ) -> impl Iterator<Item = Result<(K::Owned, V::Value)>> + 'a {
        db.scan_prefix(self.table, prefix)
            .map(move |item| self.record(item?))
    }

    /// Every key of the table, in order.
    pub fn keys<'a>(&'a self, db: &'a Db) -> impl Iterator<Item = Result<K::Owned>> + 'a {
        db.scan_prefix(self.table, &[])
            .map(move |item| self.key(&item?.0))
    }

    fn key(&self, bytes: &[u8]) -> Result<K::Owned> {
        K::decode(bytes).ok_or_else(|| self.corrupt("key"))
    }

    fn record(&self, (k, v): (Box<[u8]>, Box<[u8]>)) -> Result<(K::Owned, V::Value)> {
        Ok((self.key(&k)?, self.value(&v)?))
    }

    /// Records whose key starts with `prefix` (such as [`room_prefix`]),
    /// from the key `start` on (backward: the last key at or before it).
    pub fn scan<'a>(
        &'a self,
        db: &'a Db,
        prefix: &'a [u8],
        start: &K::Key,
        direction: Direction,
    ) -> impl Iterator<Item = Result<(K::Owned, V::Value)>> + 'a {
        db.scan_from(self.table, prefix, &K::encode(start), direction)
            .map(move |item| self.record(item?))
    }
}

/// A big-endian u64: short ids, counts.
pub struct U64;

impl KeyCodec for U64 {
    type Key = u64;
    type Owned = u64;
    fn encode(key: &u64) -> Vec<u8> {
        key.to_be_bytes().to_vec()
    }
    fn decode(bytes: &[u8]) -> Option<u64> {
        (bytes.len() == 8).then(|| crate::keys::read_u64(bytes))?
    }
}

impl ValueCodec for U64 {
    type Value = u64;
    fn encode(value: &u64) -> Vec<u8> {
        value.to_be_bytes().to_vec()
    }
    fn decode(bytes: &[u8]) -> Option<u64> {
        crate::keys::read_u64(bytes)
    }
}

/// Big-endian u64s one after the other: a sorted list of short ids.
pub struct U64List;

impl ValueCodec for U64List {
    type Value = Vec<u64>;
    fn encode(value: &Vec<u64>) -> Vec<u8> {
        value.iter().flat_map(|n| n.to_be_bytes()).collect()
    }
    fn decode(bytes: &[u8]) -> Option<Vec<u64>> {
        if !bytes.len().is_multiple_of(8) {
            return None;
        }
        bytes.chunks_exact(8).map(crate::keys::read_u64).collect()
    }
}

/// UTF-8 text: ids, names.
pub struct Text;

impl KeyCodec for Text {
    type Key = str;
    type Owned = String;
    fn encode(key: &str) -> Vec<u8> {
        key.as_bytes().to_vec()
    }
    fn decode(bytes: &[u8]) -> Option<String> {
        String::from_utf8(bytes.to_vec()).ok()
    }
}

impl ValueCodec for Text {
    type Value = String;
    fn encode(value: &String) -> Vec<u8> {
        value.as_bytes().to_vec()
    }
    fn decode(bytes: &[u8]) -> Option<String> {
        String::from_utf8(bytes.to_vec()).ok()
    }
}

/// Bytes as they are (a record with its own format, a digest).
pub struct Bytes;

impl KeyCodec for Bytes {
    type Key = [u8];
    type Owned = Vec<u8>;
    fn encode(key: &[u8]) -> Vec<u8> {
        key.to_vec()
    }
    fn decode(bytes: &[u8]) -> Option<Vec<u8>> {
        Some(bytes.to_vec())
    }
}

impl ValueCodec for Bytes {
    type Value = Vec<u8>;
    fn encode(value: &Vec<u8>) -> Vec<u8> {
        value.clone()
    }
    fn decode(bytes: &[u8]) -> Option<Vec<u8>> {
        Some(bytes.to_vec())
    }
}

/// JSON, for records that are JSON when they reach a client anyway.
pub struct Json<T>(PhantomData<T>);

impl<T: serde::Serialize + serde::de::DeserializeOwned> ValueCodec for Json<T> {
    type Value = T;
    fn encode(value: &T) -> Vec<u8> {
        // Serialising a record of plain data cannot fail.
        serde_json::to_vec(value).unwrap_or_default()
    }
    fn decode(bytes: &[u8]) -> Option<T> {
        serde_json::from_slice(bytes).ok()
    }
}

/// A stream position, then JSON: records a sync picks up when they
/// changed after its token.
pub struct Counted;

impl ValueCodec for Counted {
    type Value = (u64, serde_json::Value);
    fn encode((count, json): &(u64, serde_json::Value)) -> Vec<u8> {
        let mut out = count.to_be_bytes().to_vec();
        // Serialising a JSON value cannot fail.
        out.extend_from_slice(&serde_json::to_vec(json).unwrap_or_default());
        out
    }
    fn decode(bytes: &[u8]) -> Option<(u64, serde_json::Value)> {
        let count = crate::keys::read_u64(bytes)?;
        Some((count, serde_json::from_slice(&bytes[8..]).ok()?))
    }
}

/// No value: the key is the record.
pub struct Nothing;

impl ValueCodec for Nothing {
    type Value = ();
    fn encode(_: &()) -> Vec<u8> {
        Vec::new()
    }
    fn decode(_: &[u8]) -> Option<()> {
        Some(())
    }
}

/// Two texts joined by 0xff (which UTF-8 never holds): a state event's
/// (type, state key).
pub struct TextPair;

fn join_pair((a, b): &(String, String)) -> Vec<u8> {
    crate::keys::join(&[a.as_bytes(), b.as_bytes()])
}

fn split_pair(bytes: &[u8]) -> Option<(String, String)> {
    let at = bytes.iter().position(|b| *b == crate::keys::SEP)?;
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).ok();
    Some((text(&bytes[..at])?, text(&bytes[at + 1..])?))
}

impl TextPair {
    /// The prefix of every key whose first text is `first`.
    pub fn prefix(first: &str) -> Vec<u8> {
        crate::keys::prefix(&[first.as_bytes()])
    }
}

impl KeyCodec for TextPair {
    type Key = (String, String);
    type Owned = (String, String);
    fn encode(key: &(String, String)) -> Vec<u8> {
        join_pair(key)
    }
    fn decode(bytes: &[u8]) -> Option<(String, String)> {
        split_pair(bytes)
    }
}

impl ValueCodec for TextPair {
    type Value = (String, String);
    fn encode(value: &(String, String)) -> Vec<u8> {
        join_pair(value)
    }
    fn decode(bytes: &[u8]) -> Option<(String, String)> {
        split_pair(bytes)
    }
}

/// A short id and a big-endian u64 after it: per-room positions.
pub struct ShortAndU64;

impl KeyCodec for ShortAndU64 {
    type Key = (u64, u64);
    type Owned = (u64, u64);
    fn encode(&(short, n): &(u64, u64)) -> Vec<u8> {
        crate::keys::short_and_u64(short, n).to_vec()
    }
    fn decode(bytes: &[u8]) -> Option<(u64, u64)> {
        if bytes.len() != 16 {
            return None;
        }
        Some((
            crate::keys::read_u64(bytes)?,
            crate::keys::read_u64(&bytes[8..])?,
        ))
    }
}

/// Texts joined by 0xff: composite keys of ids and names.
pub struct Parts;

impl Parts {
    /// The prefix of every key whose first parts are `first`.
    pub fn prefix(first: &[&str]) -> Vec<u8> {
        let parts: Vec<&[u8]> = first.iter().map(|p| p.as_bytes()).collect();
        crate::keys::prefix(&parts)
    }

    /// The prefix of every key whose first parts are `first` and whose
    /// next part starts with `next`.
    pub fn prefix_within(first: &[&str], next: &str) -> Vec<u8> {
        let mut out = Self::prefix(first);
        out.extend_from_slice(next.as_bytes());
        out
    }
}

/// Two texts, then a big-endian u64: a device's queue ordered by position.
pub struct PairAndU64;

impl KeyCodec for PairAndU64 {
    type Key = (String, String, u64);
    type Owned = (String, String, u64);
    fn encode((a, b, n): &(String, String, u64)) -> Vec<u8> {
        let mut out = crate::keys::prefix(&[a.as_bytes(), b.as_bytes()]);
        out.extend_from_slice(&n.to_be_bytes());
        out
    }
    fn decode(bytes: &[u8]) -> Option<(String, String, u64)> {
        let at = bytes.len().checked_sub(9)?;
        if bytes[at] != crate::keys::SEP {
            return None;
        }
        let (a, b) = split_pair(&bytes[..at])?;
        Some((a, b, crate::keys::read_u64(&bytes[at + 1..])?))
    }
}

/// Text, 0xff, then two big-endian u64s: a user's rows by room and position.
pub struct TextAndTwoU64;

impl TextAndTwoU64 {
    /// The prefix of a user's rows, or of one room's.
    pub fn prefix(text: &str, first: Option<u64>) -> Vec<u8> {
        let mut out = crate::keys::prefix(&[text.as_bytes()]);
        if let Some(n) = first {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out
    }
}

impl KeyCodec for TextAndTwoU64 {
    type Key = (String, u64, u64);
    type Owned = (String, u64, u64);
    fn encode((text, a, b): &(String, u64, u64)) -> Vec<u8> {
        let mut out = Self::prefix(text, Some(*a));
        out.extend_from_slice(&b.to_be_bytes());
        out
    }
    fn decode(bytes: &[u8]) -> Option<(String, u64, u64)> {
        let at = bytes.len().checked_sub(17)?;
        if bytes[at] != crate::keys::SEP {
            return None;
        }
        let text = String::from_utf8(bytes[..at].to_vec()).ok()?;
        let a = crate::keys::read_u64(&bytes[at + 1..])?;
        Some((text, a, crate::keys::read_u64(&bytes[at + 9..])?))
    }
}

/// A big-endian u64, then text: what changed at a position.
pub struct U64AndText;

impl KeyCodec for U64AndText {
    type Key = (u64, String);
    type Owned = (u64, String);
    fn encode((n, text): &(u64, String)) -> Vec<u8> {
        let mut out = n.to_be_bytes().to_vec();
        out.extend_from_slice(text.as_bytes());
        out
    }
    fn decode(bytes: &[u8]) -> Option<(u64, String)> {
        let text = String::from_utf8(bytes.get(8..)?.to_vec()).ok()?;
        Some((crate::keys::read_u64(bytes)?, text))
    }
}

impl KeyCodec for Parts {
    type Key = [String];
    type Owned = Vec<String>;
    fn encode(key: &[String]) -> Vec<u8> {
        let parts: Vec<&[u8]> = key.iter().map(|p| p.as_bytes()).collect();
        crate::keys::join(&parts)
    }
    fn decode(bytes: &[u8]) -> Option<Vec<String>> {
        crate::keys::split(bytes)
            .into_iter()
            .map(|p| String::from_utf8(p.to_vec()).ok())
            .collect()
    }
}

/// A short id and text after it: a room's members.
pub struct ShortAndText;

impl KeyCodec for ShortAndText {
    type Key = (u64, String);
    type Owned = (u64, String);
    fn encode((short, text): &(u64, String)) -> Vec<u8> {
        crate::keys::short_and_str(*short, text)
    }
    fn decode(bytes: &[u8]) -> Option<(u64, String)> {
        let text = String::from_utf8(bytes.get(8..)?.to_vec()).ok()?;
        Some((crate::keys::read_u64(bytes)?, text))
    }
}

/// A room's timeline place (see [`crate::keys::timeline`]).
pub struct TimelinePlace;

impl KeyCodec for TimelinePlace {
    type Key = (u64, TimelinePos);
    type Owned = (u64, TimelinePos);
    fn encode(&(short_room, place): &(u64, TimelinePos)) -> Vec<u8> {
        crate::keys::timeline(short_room, place.get())
    }
    fn decode(bytes: &[u8]) -> Option<(u64, TimelinePos)> {
        Some((
            crate::keys::read_u64(bytes)?,
            TimelinePos::from_key(crate::keys::read_timeline(bytes)?),
        ))
    }
}

/// The prefix every key of one room's records starts with (tables keyed
/// by short room id first).
pub fn room_prefix(short_room: u64) -> [u8; 8] {
    short_room.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        assert_eq!(
            <U64 as KeyCodec>::decode(&<U64 as KeyCodec>::encode(&7)),
            Some(7)
        );
        assert_eq!(<U64 as KeyCodec>::decode(b"short"), None);
        assert_eq!(
            ShortAndU64::decode(&ShortAndU64::encode(&(3, 9))),
            Some((3, 9))
        );
        let places = [
            (4, TimelinePos::backfilled(3)),
            (4, TimelinePos::LIVE_START),
            (4, TimelinePos::live(12)),
        ];
        for place in places {
            assert_eq!(
                TimelinePlace::decode(&TimelinePlace::encode(&place)),
                Some(place)
            );
        }
        assert_eq!(<Text as KeyCodec>::decode(&[0xff]), None);
        assert_eq!(
            U64List::decode(&U64List::encode(&vec![1, 2, 3])),
            Some(vec![1, 2, 3])
        );
        assert_eq!(U64List::decode(&[0; 9]), None);
        let parts = vec!["@a:x".to_owned(), "DEV".to_owned(), String::new()];
        assert_eq!(Parts::decode(&Parts::encode(&parts)), Some(parts.clone()));
        assert!(Parts::encode(&parts).starts_with(&Parts::prefix(&["@a:x", "DEV"])));
        // A position whose bytes hold the separator still reads back.
        let queued = ("@a:x".to_owned(), "DEV".to_owned(), 0xff00_ff00);
        assert_eq!(
            PairAndU64::decode(&PairAndU64::encode(&queued)),
            Some(queued)
        );
        let row = ("@a:x".to_owned(), 0xff, 0xffff);
        assert_eq!(
            TextAndTwoU64::decode(&TextAndTwoU64::encode(&row)),
            Some(row)
        );
        let changed = (7, "@a:x".to_owned());
        assert_eq!(
            U64AndText::decode(&U64AndText::encode(&changed)),
            Some(changed)
        );
        let pair = ("m.room.member".to_owned(), "@a:x".to_owned());
        assert_eq!(
            <TextPair as KeyCodec>::decode(&<TextPair as KeyCodec>::encode(&pair)),
            Some(pair)
        );
        let empty_key = ("m.room.name".to_owned(), String::new());
        assert_eq!(
            <TextPair as ValueCodec>::decode(&join_pair(&empty_key)),
            Some(empty_key)
        );
    }
}
