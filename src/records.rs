//! Linked source records as the batch holds them: one byte arena per source
//! ([`CompactSet`]) instead of a `String` per value, and the one read interface
//! ([`RecordLookup`]) that report building and the second linkage pass use for both the
//! compact sets and the connectors' [`RecordSet`]s (on demand).
//!
//! A record holds its values and, only when it differs from the canonical 18 characters of
//! the person key it linked on, its ID number ([`CompactSet`]); `state/linked.bin` is
//! written from it in that file's own encoding ([`encode_linked`]).

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

/// The key of a record linked by anything but its own valid ID number (the error-tolerant
/// pass): it has none.
pub const NO_KEY: u64 = u64::MAX;

/// One source's linked records in one byte arena: per record its data row, the person key
/// its ID number gave (or [`NO_KEY`]) and where its bytes end. About 60 bytes a record at
/// the county's sizes, against ~330 as a [`Record`] (a `String` per value) and ~90 in
/// `linked.bin`'s encoding.
///
/// A record's bytes: a tag (1: the ID number is the key's 18 canonical characters, not
/// stored; 0: it follows as a value), the value count (one byte), then each value as a
/// length byte (0–253: that many UTF-8 bytes follow; 254: null; 255: a u32 LE length
/// follows, then the bytes).
#[derive(Debug, Default, Clone)]
pub struct CompactSet {
    rows: Vec<u64>,
    keys: Vec<u64>,
    ends: Vec<u64>,
    bytes: Vec<u8>,
}

const NULL: u8 = 254;
const LONG: u8 = 255;

fn put_value(b: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => b.push(NULL),
        Some(s) if s.len() < usize::from(NULL) => {
            b.push(s.len() as u8);
            b.extend_from_slice(s.as_bytes());
        }
        Some(s) => {
            b.push(LONG);
            b.extend_from_slice(&(s.len() as u32).to_le_bytes());
            b.extend_from_slice(s.as_bytes());
        }
    }
}

fn take_value<'a>(blob: &'a [u8], at: &mut usize) -> Option<Option<&'a str>> {
    let tag = *blob.get(*at)?;
    *at += 1;
    let n = match tag {
        NULL => return Some(None),
        LONG => {
            let n = u32::from_le_bytes(blob.get(*at..*at + 4)?.try_into().ok()?) as usize;
            *at += 4;
            n
        }
        n => usize::from(n),
    };
    let s = std::str::from_utf8(blob.get(*at..*at + n)?).ok()?;
    *at += n;
    Some(Some(s))
}

/// Whether `id` is exactly the canonical 18 characters of person key `key` (its 17-digit
/// body and check character).
fn is_canonical(id: &[u8], key: u64) -> bool {
    let Ok(b) = <&[u8; 18]>::try_from(id) else {
        return false;
    };
    let mut body = 0u64;
    for d in &b[..17] {
        if !d.is_ascii_digit() {
            return false;
        }
        body = body * 10 + u64::from(d - b'0');
    }
    let digits: &[u8; 17] = b[..17].try_into().expect("17 bytes");
    body == key && crate::domain::id_number::check_character(digits) == b[17]
}

/// One value of a record's bytes at `at` appended to `out` as `linked.bin` frames it (u32 LE
/// length, `u32::MAX` for null, then the bytes): whether it was null; `None` past the end.
fn copy_value(blob: &[u8], at: &mut usize, out: &mut Vec<u8>) -> Option<bool> {
    let tag = *blob.get(*at)?;
    *at += 1;
    let n = match tag {
        NULL => {
            out.extend_from_slice(&u32::MAX.to_le_bytes());
            return Some(true);
        }
        LONG => {
            let n = u32::from_le_bytes(blob.get(*at..*at + 4)?.try_into().ok()?) as usize;
            *at += 4;
            n
        }
        n => usize::from(n),
    };
    out.extend_from_slice(&(n as u32).to_le_bytes());
    out.extend_from_slice(blob.get(*at..*at + n)?);
    *at += n;
    Some(false)
}

/// A record's bytes (`blob`, person key `key`) appended to `out` in `linked.bin`'s encoding:
/// what [`decode`] then [`encode_linked`] give, without the decoding. `None` when `blob` is
/// not one record (`out` then holds a part of it: the caller cuts it off).
fn transcode_linked(blob: &[u8], key: u64, out: &mut Vec<u8>) -> Option<()> {
    let mut at = 1usize;
    match *blob.first()? {
        0 => {
            if copy_value(blob, &mut at, out)? {
                return None;
            }
        }
        1 => {
            out.extend_from_slice(&18u32.to_le_bytes());
            out.extend_from_slice(&crate::domain::IdNumber::from_key(key).canonical_bytes());
        }
        _ => return None,
    }
    let n = *blob.get(at)?;
    at += 1;
    if usize::from(n) > MAX_COLUMNS {
        return None;
    }
    out.extend_from_slice(&u16::from(n).to_le_bytes());
    for _ in 0..n {
        copy_value(blob, &mut at, out)?;
    }
    (at == blob.len()).then_some(())
}

/// The ID number stored in a record's bytes (tag 0), or `None` for tag 1 (canonical), and
/// the values; `None` when `blob` is not one record.
fn decode(blob: &[u8]) -> Option<(Option<&str>, Values<'_>)> {
    let mut at = 1usize;
    let id = match *blob.first()? {
        0 => Some(take_value(blob, &mut at)??),
        1 => None,
        _ => return None,
    };
    let n = usize::from(*blob.get(at)?);
    at += 1;
    if n > MAX_COLUMNS {
        return None;
    }
    let mut v = [None; MAX_COLUMNS];
    for slot in v.iter_mut().take(n) {
        *slot = take_value(blob, &mut at)?;
    }
    (at == blob.len()).then_some((id, Values { v, n }))
}

/// One record in `state/linked.bin`'s encoding (the incremental run's state; read back by
/// `batch::scale`): the ID number, the value count (u16 LE), then each value as a u32 LE
/// length (`u32::MAX` for null) and its UTF-8 bytes.
pub fn encode_linked(b: &mut Vec<u8>, id_number: &str, values: &[Option<&str>]) {
    let put = |b: &mut Vec<u8>, s: Option<&str>| match s {
        None => b.extend_from_slice(&u32::MAX.to_le_bytes()),
        Some(s) => {
            b.extend_from_slice(&(s.len() as u32).to_le_bytes());
            b.extend_from_slice(s.as_bytes());
        }
    };
    put(b, Some(id_number));
    b.extend_from_slice(&(values.len() as u16).to_le_bytes());
    for v in values {
        put(b, *v);
    }
}

impl CompactSet {
    /// An empty set with room for `records` records of about `bytes` bytes in all.
    pub fn with_capacity(records: usize, bytes: usize) -> CompactSet {
        CompactSet {
            rows: Vec::with_capacity(records),
            keys: Vec::with_capacity(records),
            ends: Vec::with_capacity(records),
            bytes: Vec::with_capacity(bytes),
        }
    }

    /// Makes room for `records` more records of about `bytes` more bytes in all (amortised:
    /// the vectors grow as [`Vec::reserve`] grows them).
    pub fn reserve(&mut self, records: usize, bytes: usize) {
        self.rows.reserve(records);
        self.keys.reserve(records);
        self.ends.reserve(records);
        self.bytes.reserve(bytes);
    }

    /// Gives back the room [`CompactSet::reserve`] made and no record took.
    pub fn shrink_to_fit(&mut self) {
        self.rows.shrink_to_fit();
        self.keys.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.bytes.shrink_to_fit();
    }

    /// Bytes held on the heap (the vectors' capacities).
    pub fn heap_bytes(&self) -> usize {
        (self.rows.capacity() + self.keys.capacity() + self.ends.capacity()) * 8
            + self.bytes.capacity()
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Append a record: data row, the person key its ID number gave (or [`NO_KEY`]), the
    /// holder's ID number as written, values (at most [`MAX_COLUMNS`], at most 255).
    pub fn push(&mut self, row: u64, key: u64, id_number: &str, values: &[Option<&str>]) {
        if key != NO_KEY && is_canonical(id_number.as_bytes(), key) {
            self.bytes.push(1);
        } else {
            self.bytes.push(0);
            put_value(&mut self.bytes, Some(id_number));
        }
        let values = &values[..values.len().min(MAX_COLUMNS)];
        self.bytes.push(values.len() as u8);
        for v in values {
            put_value(&mut self.bytes, *v);
        }
        self.rows.push(row);
        self.keys.push(key);
        self.ends.push(self.bytes.len() as u64);
    }

    /// Append a [`Record`] linked without a key of its own ([`NO_KEY`]).
    pub fn push_record(&mut self, r: &Record) {
        let v = Values::new(r.values.iter().map(|v| v.as_deref()));
        self.push(r.row, NO_KEY, &r.id_number, &v);
    }

    fn blob(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.bytes.get(start..end)
    }

    /// Data row of record `i`.
    pub fn row(&self, i: usize) -> Option<u64> {
        self.rows.get(i).copied()
    }

    /// Person key of record `i` ([`NO_KEY`] for a record linked without one).
    pub fn key(&self, i: usize) -> Option<u64> {
        self.keys.get(i).copied()
    }

    /// Values of record `i`.
    pub fn values(&self, i: usize) -> Option<Values<'_>> {
        decode(self.blob(i)?).map(|(_, v)| v)
    }

    /// The holder's ID number of record `i` as written.
    pub fn id_number(&self, i: usize) -> Option<String> {
        match decode(self.blob(i)?)?.0 {
            Some(id) => Some(id.to_string()),
            None => Some(crate::domain::IdNumber::from_key(self.keys[i]).expose()),
        }
    }

    /// Record `i` appended to `out` in `state/linked.bin`'s encoding ([`encode_linked`]),
    /// without decoding it: its values re-framed and their bytes copied (they were UTF-8 when
    /// stored), and the canonical 18 characters written from its key when the record does
    /// not hold its ID number. Every linked row of a run is written so (7.3 M at 300,000
    /// households), into one buffer. `false`, with nothing appended, when `i` is out of range
    /// or its bytes are not one record.
    pub fn linked_blob_into(&self, i: usize, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        let done = self
            .blob(i)
            .and_then(|blob| transcode_linked(blob, self.keys[i], out));
        if done.is_none() {
            out.truncate(start);
        }
        done.is_some()
    }

    /// Record `i` as an owned [`Record`] (for the rare paths that want one: a quarantine
    /// entry).
    pub fn record(&self, i: usize) -> Option<Record> {
        let v = self.values(i)?;
        Some(Record {
            row: self.rows[i],
            id_number: self.id_number(i)?,
            values: v.iter().map(|x| x.map(str::to_string)).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::IdNumber;

    #[test]
    fn records_round_trip_through_the_arena() {
        let day: chrono::NaiveDate = "2026-11-01".parse().unwrap();
        let (id, _) = IdNumber::parse("620502199001011232", day)
            .or_else(|_| {
                let b: [u8; 17] = *b"62050219900101123";
                let c = crate::domain::id_number::check_character(&b);
                IdNumber::parse(&format!("62050219900101123{}", char::from(c)), day)
            })
            .unwrap();
        let canonical = id.expose();
        let long = "长".repeat(100);
        let mut s = CompactSet::default();
        s.push(7, id.key(), &canonical, &[Some("a"), None, Some("12.50")]);
        s.push(
            8,
            id.key(),
            &format!(" {canonical}"),
            &[Some(""), Some(&long)],
        );
        s.push(9, NO_KEY, "", &[]);
        s.push_record(&Record {
            row: 11,
            id_number: "x".into(),
            values: vec![None, Some("甘A12345".into())],
        });
        assert_eq!(s.len(), 4);
        // the canonical number is not stored: 1 tag + 1 count + 2 + 1 + 6
        assert_eq!(s.blob(0).unwrap().len(), 11);
        assert_eq!(&*s.values(0).unwrap(), &[Some("a"), None, Some("12.50")]);
        assert_eq!(s.id_number(0).unwrap(), canonical);
        assert_eq!(s.id_number(1).unwrap(), format!(" {canonical}"));
        assert_eq!(&*s.values(1).unwrap(), &[Some(""), Some(long.as_str())]);
        assert!(s.values(2).unwrap().is_empty());
        assert_eq!((s.key(2), s.key(3)), (Some(NO_KEY), Some(NO_KEY)));
        let r = s.record(3).unwrap();
        assert_eq!((r.row, r.id_number.as_str()), (11, "x"));
        assert_eq!(r.values, vec![None, Some("甘A12345".to_string())]);
        assert!(s.values(4).is_none());
        // linked.bin's encoding, as batch::scale reads it
        let mut want = Vec::new();
        encode_linked(&mut want, &canonical, &[Some("a"), None, Some("12.50")]);
        let mut got = Vec::new();
        assert!(s.linked_blob_into(0, &mut got));
        assert_eq!(got, want);
        assert_eq!(&want[..4], &18u32.to_le_bytes());
        // a stored ID number, an empty value and a long one; then a record with no values
        let mut want2 = want.clone();
        encode_linked(
            &mut want2,
            &format!(" {canonical}"),
            &[Some(""), Some(&long)],
        );
        encode_linked(&mut want2, "", &[]);
        assert!(s.linked_blob_into(1, &mut got) && s.linked_blob_into(2, &mut got));
        assert_eq!(got, want2);
        // out of range, and a cut record: nothing appended
        assert!(!s.linked_blob_into(4, &mut got));
        assert!(transcode_linked(&s.blob(0).unwrap()[..5], id.key(), &mut Vec::new()).is_none());
        assert_eq!(got, want2);
        let sets = vec![s];
        let (row, v) = sets.record(0, 1).unwrap();
        assert_eq!((row, v.len()), (8, 2));
        assert!(sets.record(1, 0).is_none());
        assert!(decode(&sets[0].blob(0).unwrap()[..5]).is_none());
    }
}
