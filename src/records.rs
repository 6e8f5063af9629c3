//! Linked source records as the batch holds them: one byte arena per source
//! ([`CompactSet`]) instead of a `String` per value, and the one read interface
//! ([`RecordLookup`]) that report building and the second linkage pass use for both the
//! compact sets and the connectors' [`RecordSet`]s (on demand).
//!
//! A record's bytes are exactly its body in `state/linked.bin` (the incremental run's
//! state): the holder's ID number, then the value count (u16 LE), then each value as a
//! u32 LE length (`u32::MAX` for null) and its UTF-8 bytes. The full run writes them to
//! the state as they are, without re-encoding.

use hedui_connectors::{Record, RecordSet};

/// The most §2 columns a source has besides `id_number` and `name` (household
/// registration and market entity: 7), with room to spare.
pub const MAX_COLUMNS: usize = 12;

/// One record's values, borrowed: in [`hedui_connectors::SourceKind::columns`] order,
/// `None` for null/empty. Dereferences to `[Option<&str>]`; no allocation.
#[derive(Debug, Clone, Copy)]
pub struct Values<'a> {
    v: [Option<&'a str>; MAX_COLUMNS],
    n: usize,
}

impl<'a> Values<'a> {
    /// Up to [`MAX_COLUMNS`] values (more are not kept: no source has that many).
    pub fn new(it: impl IntoIterator<Item = Option<&'a str>>) -> Values<'a> {
        let mut v = [None; MAX_COLUMNS];
        let mut n = 0;
        for (slot, x) in v.iter_mut().zip(it) {
            *slot = x;
            n += 1;
        }
        Values { v, n }
    }
}

impl<'a> std::ops::Deref for Values<'a> {
    type Target = [Option<&'a str>];
    fn deref(&self) -> &[Option<&'a str>] {
        &self.v[..self.n]
    }
}

/// Linked records by (source index in [`hedui_connectors::SourceKind::ALL`], record index).
pub trait RecordLookup: Sync {
    /// Number of sources (record sets).
    fn sources(&self) -> usize;
    /// Record `ri` of source `si`: its 0-based data row and its values; `None` when out of
    /// range.
    fn record(&self, si: usize, ri: usize) -> Option<(u64, Values<'_>)>;
}

impl RecordLookup for Vec<RecordSet> {
    fn sources(&self) -> usize {
        self.len()
    }
    fn record(&self, si: usize, ri: usize) -> Option<(u64, Values<'_>)> {
        let r = self.get(si)?.records.get(ri)?;
        Some((r.row, Values::new(r.values.iter().map(|v| v.as_deref()))))
    }
}

impl RecordLookup for Vec<CompactSet> {
    fn sources(&self) -> usize {
        self.len()
    }
    fn record(&self, si: usize, ri: usize) -> Option<(u64, Values<'_>)> {
        let s = self.get(si)?;
        Some((*s.rows.get(ri)?, s.values(ri)?))
    }
}

/// One source's linked records in one byte arena: per record its data row and where its
/// bytes end (the module's format). About 100 bytes a record against ~330 as a [`Record`]
/// (a `String` per value).
#[derive(Debug, Default, Clone)]
pub struct CompactSet {
    rows: Vec<u64>,
    ends: Vec<u64>,
    bytes: Vec<u8>,
}

fn put_str(b: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => b.extend_from_slice(&u32::MAX.to_le_bytes()),
        Some(s) => {
            b.extend_from_slice(&(s.len() as u32).to_le_bytes());
            b.extend_from_slice(s.as_bytes());
        }
    }
}

fn take_str<'a>(blob: &'a [u8], at: &mut usize) -> Option<Option<&'a str>> {
    let n = u32::from_le_bytes(blob.get(*at..*at + 4)?.try_into().ok()?);
    *at += 4;
    if n == u32::MAX {
        return Some(None);
    }
    let s = std::str::from_utf8(blob.get(*at..*at + n as usize)?).ok()?;
    *at += n as usize;
    Some(Some(s))
}

/// Encode one record's ID number and values (the module's format) onto `b`.
pub fn encode<'a>(b: &mut Vec<u8>, id_number: &str, values: &[Option<&'a str>]) {
    put_str(b, Some(id_number));
    b.extend_from_slice(&(values.len() as u16).to_le_bytes());
    for v in values {
        put_str(b, *v);
    }
}

/// The ID number and values of one encoded record; `None` when `blob` is not one.
pub fn decode(blob: &[u8]) -> Option<(&str, Values<'_>)> {
    let mut at = 0usize;
    let id = take_str(blob, &mut at)??;
    let n = u16::from_le_bytes(blob.get(at..at + 2)?.try_into().ok()?) as usize;
    at += 2;
    if n > MAX_COLUMNS {
        return None;
    }
    let mut v = [None; MAX_COLUMNS];
    for slot in v.iter_mut().take(n) {
        *slot = take_str(blob, &mut at)?;
    }
    (at == blob.len()).then_some((id, Values { v, n }))
}

impl CompactSet {
    /// An empty set with room for `records` records of about `bytes` bytes in all.
    pub fn with_capacity(records: usize, bytes: usize) -> CompactSet {
        CompactSet {
            rows: Vec::with_capacity(records),
            ends: Vec::with_capacity(records),
            bytes: Vec::with_capacity(bytes),
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Append a record: data row, holder's ID number as written, values.
    pub fn push(&mut self, row: u64, id_number: &str, values: &[Option<&str>]) {
        encode(&mut self.bytes, id_number, values);
        self.rows.push(row);
        self.ends.push(self.bytes.len() as u64);
    }

    /// Append a [`Record`].
    pub fn push_record(&mut self, r: &Record) {
        let v = Values::new(r.values.iter().map(|v| v.as_deref()));
        self.push(r.row, &r.id_number, &v);
    }

    /// Give back spare capacity (after the last push).
    pub fn shrink_to_fit(&mut self) {
        self.rows.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.bytes.shrink_to_fit();
    }

    /// The encoded bytes of record `i` (its `state/linked.bin` body).
    pub fn blob(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.bytes.get(start..end)
    }

    /// Data row of record `i`.
    pub fn row(&self, i: usize) -> Option<u64> {
        self.rows.get(i).copied()
    }

    /// Values of record `i`.
    pub fn values(&self, i: usize) -> Option<Values<'_>> {
        decode(self.blob(i)?).map(|(_, v)| v)
    }

    /// Record `i` as an owned [`Record`] (for the rare paths that want one: a quarantine
    /// entry).
    pub fn record(&self, i: usize) -> Option<Record> {
        let (id, v) = decode(self.blob(i)?)?;
        Some(Record {
            row: self.rows[i],
            id_number: id.to_string(),
            values: v.iter().map(|x| x.map(str::to_string)).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_the_arena() {
        let mut s = CompactSet::default();
        s.push(7, "620502199001011234", &[Some("a"), None, Some("12.50")]);
        s.push(9, "", &[]);
        s.push_record(&Record {
            row: 11,
            id_number: "x".into(),
            values: vec![None, Some("甘A12345".into())],
        });
        assert_eq!(s.len(), 3);
        assert_eq!(&*s.values(0).unwrap(), &[Some("a"), None, Some("12.50")]);
        assert!(s.values(1).unwrap().is_empty());
        let r = s.record(2).unwrap();
        assert_eq!((r.row, r.id_number.as_str()), (11, "x"));
        assert_eq!(r.values, vec![None, Some("甘A12345".to_string())]);
        assert!(s.values(3).is_none());
        let sets = vec![s];
        let (row, v) = sets.record(0, 0).unwrap();
        assert_eq!((row, v[2]), (7, Some("12.50")));
        assert!(sets.record(1, 0).is_none());
        // the blob is what linked.bin holds and decodes alone
        let (id, v) = decode(sets[0].blob(0).unwrap()).unwrap();
        assert_eq!((id, v.len()), ("620502199001011234", 3));
        assert!(decode(&sets[0].blob(0).unwrap()[..5]).is_none());
    }
}
