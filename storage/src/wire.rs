//! The binary form of the hot records: fixed-width big-endian numbers and
//! length-prefixed text, read back with every length checked.

/// Builds a record.
#[derive(Default)]
pub struct Writer {
    out: Vec<u8>,
}

impl Writer {
    /// A record that starts with its format byte.
    pub fn new(format: u8) -> Self {
        Self { out: vec![format] }
    }

    pub fn u8(&mut self, n: u8) -> &mut Self {
        self.out.push(n);
        self
    }

    pub fn u64(&mut self, n: u64) -> &mut Self {
        self.out.extend_from_slice(&n.to_be_bytes());
        self
    }

    /// Text up to 64 KiB (ids, names); longer text is cut, which no id the
    /// server accepts ever is.
    pub fn text(&mut self, s: &str) -> &mut Self {
        let len = s.len().min(u16::MAX as usize);
        self.out.extend_from_slice(&(len as u16).to_be_bytes());
        self.out.extend_from_slice(&s.as_bytes()[..len]);
        self
    }

    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
}

/// Reads a record; every method is `None` past its end.
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader after the format byte, if the record has `format`.
    pub fn new(bytes: &'a [u8], format: u8) -> Option<Self> {
        match bytes.split_first() {
            Some((first, rest)) if *first == format => Some(Self { rest }),
            _ => None,
        }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(head)
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    pub fn u64(&mut self) -> Option<u64> {
        crate::keys::read_u64(self.take(8)?)
    }

    pub fn text(&mut self) -> Option<&'a str> {
        let len = u16::from_be_bytes(self.take(2)?.try_into().ok()?);
        std::str::from_utf8(self.take(len as usize)?).ok()
    }

    /// Whether the whole record was read.
    pub fn done(&self) -> bool {
        self.rest.is_empty()
    }
}
