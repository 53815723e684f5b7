//! Key encoders. Composite keys join string parts with 0xff, a byte that never
//! occurs in UTF-8, so prefixes of one part never match another; numbers are
//! big-endian so keys sort in numeric order.

pub const SEP: u8 = 0xff;

/// Joins parts with the separator.
pub fn join(parts: &[&[u8]]) -> Vec<u8> {
    let len = parts.iter().map(|p| p.len() + 1).sum();
    let mut out = Vec::with_capacity(len);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        out.extend_from_slice(part);
    }
    out
}

/// Joins parts and ends with a separator: the prefix of every key under them.
pub fn prefix(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = join(parts);
    out.push(SEP);
    out
}

/// Splits a composite key into its parts.
pub fn split(key: &[u8]) -> Vec<&[u8]> {
    key.split(|b| *b == SEP).collect()
}

pub fn u64_be(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

/// Reads a big-endian u64 from the first eight bytes, if there are eight.
pub fn read_u64(bytes: &[u8]) -> Option<u64> {
    let head: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(head))
}

/// A short id followed by a big-endian number: timeline and per-room keys.
pub fn short_and_u64(short: u64, n: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&short.to_be_bytes());
    out[8..].copy_from_slice(&n.to_be_bytes());
    out
}

/// A room's timeline key: the short room id, then the event's position.
/// Positions above zero are stream counts (eight big-endian bytes, as they
/// always were); zero and below are backfilled events, which sort before
/// every live one: eight zero bytes, then `u64::MAX - |position|`, so the
/// oldest backfilled event (the most negative) comes first. Position zero is
/// the seek point just before the first live event.
pub fn timeline(short_room: u64, position: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    out.extend_from_slice(&short_room.to_be_bytes());
    if position > 0 {
        out.extend_from_slice(&(position as u64).to_be_bytes());
    } else {
        out.extend_from_slice(&[0u8; 8]);
        out.extend_from_slice(&(u64::MAX - position.unsigned_abs()).to_be_bytes());
    }
    out
}

/// The position of a [`timeline`] key.
pub fn read_timeline(key: &[u8]) -> Option<i64> {
    match key.len() {
        16 => i64::try_from(read_u64(&key[8..])?).ok(),
        24 => {
            let back = u64::MAX - read_u64(&key[16..])?;
            i64::try_from(back).ok().map(|b| -b)
        }
        _ => None,
    }
}

/// A short id followed by a string: per-room members.
pub fn short_and_str(short: u64, s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + s.len());
    out.extend_from_slice(&short.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_and_split_round_trip() {
        let key = join(&[b"@a:x", b"DEV", b"txn1"]);
        assert_eq!(split(&key), vec![&b"@a:x"[..], b"DEV", b"txn1"]);
        assert!(key.starts_with(&prefix(&[b"@a:x", b"DEV"])));
        assert!(!join(&[b"@a:xy", b"D"]).starts_with(&prefix(&[b"@a:x"])));
    }

    #[test]
    fn numbers_sort_numerically() {
        assert!(short_and_u64(1, 255) < short_and_u64(1, 256));
        assert!(short_and_u64(1, u64::MAX) < short_and_u64(2, 0));
        assert_eq!(read_u64(&u64_be(77)), Some(77));
        assert_eq!(read_u64(b"short"), None);
    }

    #[test]
    fn backfilled_positions_sort_before_live_ones() {
        let order = [-7i64, -2, -1, 0, 1, 2, 300];
        let keys: Vec<Vec<u8>> = order.iter().map(|p| timeline(5, *p)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        for (key, position) in keys.iter().zip(order) {
            assert_eq!(read_timeline(key), Some(position));
        }
        // Live keys are what they were before backfill existed.
        assert_eq!(timeline(5, 9), short_and_u64(5, 9).to_vec());
        assert!(timeline(5, -1) > short_and_u64(5, 0).to_vec());
        assert!(timeline(5, 0) < timeline(6, -9));
    }
}
