//! Little-endian encoding helpers for the on-disk formats. [`Reader`] never panics: every read is
//! bounds-checked and a short buffer is an error, because it reads bytes from the disk.

/// Appends little-endian values to a byte vector.
pub(crate) trait PutLe {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
}

impl PutLe for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
}

/// The input ended before a value was complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShortRead;

/// A bounds-checked cursor over a byte slice.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], ShortRead> {
        let end = self.pos.checked_add(n).ok_or(ShortRead)?;
        let out = self.buf.get(self.pos..end).ok_or(ShortRead)?;
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ShortRead> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, ShortRead> {
        Ok(self.array::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, ShortRead> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, ShortRead> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, ShortRead> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}

/// Reads a little-endian u32 at `at`; `None` if out of bounds.
pub(crate) fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads a little-endian u64 at `at`; `None` if out of bounds.
pub(crate) fn u64_at(buf: &[u8], at: usize) -> Option<u64> {
    let b = buf.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_round_trips_and_rejects_short_input() {
        let mut v = Vec::new();
        v.put_u8(7);
        v.put_u16(0x1234);
        v.put_u32(0xdead_beef);
        v.put_u64(u64::MAX - 1);
        let mut r = Reader::new(&v);
        assert_eq!(r.u8(), Ok(7));
        assert_eq!(r.u16(), Ok(0x1234));
        assert_eq!(r.u32(), Ok(0xdead_beef));
        assert_eq!(r.u64(), Ok(u64::MAX - 1));
        assert_eq!(r.remaining(), 0);
        assert_eq!(r.u8(), Err(ShortRead));
        assert_eq!(Reader::new(&[1, 2]).u32(), Err(ShortRead));
        assert_eq!(u32_at(&[1, 2, 3], 0), None);
        assert_eq!(u64_at(&v, usize::MAX), None);
    }
}
