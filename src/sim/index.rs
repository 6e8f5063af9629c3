//! The sim's data: each source's extract read once at start through the file connector
//! (the same front-end as the batch: encodings, field maps, Parquet), all values as text,
//! with a sorted index from the normalised ID key ([`IdNumber::key`]) to rows.
//!
//! Memory: the served rows' text is packed into one buffer per source (length-prefixed
//! fields, sorted by key, so a person's rows are adjacent), plus 20 bytes a row of key, row
//! number and offset; the polars frame is dropped after packing.

use std::path::Path;

use chrono::NaiveDate;
use hedui_connectors::file::text_columns;
use hedui_connectors::{ConnectorError, FileConnector, SourceKind};
use polars::prelude::*;
use rayon::prelude::*;

use crate::domain::IdNumber;

/// One source in memory: the served rows sorted by ID key, their text packed in one buffer.
pub struct SourceIndex {
    /// Which source.
    pub kind: SourceKind,
    /// Column names served in `values`: `name`, then the §2 columns.
    pub columns: Vec<&'static str>,
    /// Sorted normalised keys; position `i` is one served row.
    keys: Vec<u64>,
    /// The source's data row of position `i`.
    rows: Vec<u32>,
    /// Start of position `i`'s fields in `text` (one more entry than positions).
    offsets: Vec<u64>,
    /// Every served row's fields in order, each as a LEB128 length + 1 (0 = empty) and its
    /// UTF-8 bytes.
    text: Vec<u8>,
    /// Rows whose ID number did not parse (never served).
    pub invalid_rows: u64,
    /// Sorted ID keys of the persons named by rows the reader refused (cut short, a NUL
    /// byte, a 万元 value that is not an amount): their records cannot be served whole, so a
    /// request asking for one of them is answered with an error, never with the rest.
    refused: Vec<u64>,
    /// Rows the reader refused (named or not).
    pub refused_rows: u64,
}

/// What [`SourceIndex::lookup`] finds: data row and values (`None` = empty).
pub type Found<'a> = (u32, Vec<Option<&'a str>>);

fn put_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn get_len(text: &[u8], at: &mut usize) -> usize {
    let mut n = 0usize;
    let mut shift = 0;
    while let Some(&b) = text.get(*at) {
        *at += 1;
        n |= ((b & 0x7f) as usize) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    n
}

impl SourceIndex {
    /// Read `kind`'s extract from `dir` and index it.
    ///
    /// # Errors
    /// The connector's error (missing file, missing columns, unreadable).
    pub fn load(
        dir: &Path,
        kind: SourceKind,
        as_of: NaiveDate,
    ) -> Result<SourceIndex, ConnectorError> {
        let conn = FileConnector::locate(dir, kind)?;
        // Found by the s9 attack: a row the reader refused (a member's bank row cut short)
        // was left out without a word, and the sim answered that person "no records"; a
        // department holds that row whole.
        let rejected = &conn.prepared().rejected;
        let mut refused: Vec<u64> = rejected
            .iter()
            .flat_map(|r| {
                r.id_number.iter().chain(
                    r.other_keys
                        .iter()
                        .filter(|(c, _)| c == "id_number")
                        .map(|(_, v)| v),
                )
            })
            .filter_map(|raw| IdNumber::parse(raw, as_of).ok().map(|(id, _)| id.key()))
            .collect();
        refused.sort_unstable();
        refused.dedup();
        let unreadable = |e: PolarsError| ConnectorError::Unreadable {
            path: conn.path().display().to_string(),
            message: e
                .to_string()
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(160)
                .collect(),
        };
        let df = conn.scan()?.collect().map_err(unreadable)?;
        let df = text_columns(df, &[]).map_err(unreadable)?;
        let mut columns: Vec<&'static str> = vec!["name"];
        columns.extend(kind.columns().iter().map(|c| c.name));
        let data: Vec<StringChunked> = columns
            .iter()
            .map(|c| {
                df.column(c)
                    .and_then(|c| c.str())
                    .map(|s| s.rechunk().into_owned())
            })
            .collect::<PolarsResult<_>>()
            .map_err(unreadable)?;
        let ids = df
            .column("id_number")
            .and_then(|c| c.str())
            .map_err(unreadable)?
            .rechunk()
            .into_owned();
        let n = ids.len();
        let mut pairs: Vec<(u64, u32)> = (0..n)
            .into_par_iter()
            .filter_map(|i| {
                let raw = ids.get(i)?;
                IdNumber::parse(raw, as_of)
                    .ok()
                    .map(|(id, _)| (id.key(), i as u32))
            })
            .collect();
        let invalid = (n - pairs.len()) as u64;
        pairs.par_sort_unstable();
        let mut text = Vec::with_capacity(pairs.len() * 16 * columns.len());
        let mut offsets = Vec::with_capacity(pairs.len() + 1);
        for &(_, r) in &pairs {
            offsets.push(text.len() as u64);
            for c in &data {
                match c.get(r as usize).filter(|v| !v.is_empty()) {
                    Some(v) => {
                        put_len(&mut text, v.len() + 1);
                        text.extend_from_slice(v.as_bytes());
                    }
                    None => put_len(&mut text, 0),
                }
            }
        }
        offsets.push(text.len() as u64);
        text.shrink_to_fit();
        let (keys, rows) = pairs.into_iter().unzip();
        Ok(SourceIndex {
            kind,
            columns,
            keys,
            rows,
            offsets,
            text,
            invalid_rows: invalid,
            refused,
            refused_rows: rejected.len() as u64,
        })
    }

    /// Rows indexed.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Bytes held (keys, rows, offsets, text).
    pub fn bytes(&self) -> usize {
        self.keys.len() * 8 + self.rows.len() * 4 + self.offsets.len() * 8 + self.text.len()
    }

    /// The rows of one person, in file order.
    pub fn lookup(&self, id: IdNumber) -> Vec<Found<'_>> {
        let k = id.key();
        let start = self.keys.partition_point(|x| *x < k);
        let end = start + self.keys[start..].partition_point(|x| *x == k);
        (start..end).map(|i| self.at(i)).collect()
    }

    /// Whether a row of `id`'s was refused by the reader (their records cannot be served
    /// whole).
    pub fn is_refused(&self, id: IdNumber) -> bool {
        self.refused.binary_search(&id.key()).is_ok()
    }

    /// The first row of a person not in `asked` (the sim's `stray` fault).
    pub fn stray(&self, asked: &[IdNumber]) -> Option<(IdNumber, Found<'_>)> {
        let i = self
            .keys
            .iter()
            .position(|k| !asked.iter().any(|a| a.key() == *k))?;
        Some((IdNumber::from_key(self.keys[i]), self.at(i)))
    }

    fn at(&self, i: usize) -> Found<'_> {
        let mut at = self.offsets[i] as usize;
        let values = (0..self.columns.len())
            .map(|_| {
                let len = get_len(&self.text, &mut at);
                if len == 0 {
                    return None;
                }
                let bytes = self.text.get(at..at + len - 1).unwrap_or_default();
                at += len - 1;
                // Written from &str above, so always UTF-8.
                std::str::from_utf8(bytes).ok()
            })
            .collect();
        (self.rows[i], values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip_through_leb128() {
        for n in [0usize, 1, 127, 128, 300, 16_383, 16_384, 1 << 30] {
            let mut b = Vec::new();
            put_len(&mut b, n);
            let mut at = 0;
            assert_eq!(get_len(&b, &mut at), n);
            assert_eq!(at, b.len());
        }
    }

    #[test]
    fn a_person_gets_every_row_in_file_order_with_empty_fields_as_none() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("tax.csv"),
            "id_number,name,tax_year,income_type,gross_income,tax_paid\n\
             620503198703151234,王秀兰,2025,wages,36000.50,\n\
             620503196207080319,李建国,2025,labour,1200.00,3.00\n\
             not-an-id,无名,2025,wages,1.00,0\n\
             620503198703151234,王秀兰,2024,labour,12.00,0.00\n",
        )
        .unwrap();
        let as_of = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let ix = SourceIndex::load(d.path(), SourceKind::Tax, as_of).unwrap();
        assert_eq!((ix.len(), ix.invalid_rows), (3, 1));
        let (id, _) = IdNumber::parse("620503198703151234", as_of).unwrap();
        let found = ix.lookup(id);
        assert_eq!(
            found,
            vec![
                (
                    0,
                    vec![
                        Some("王秀兰"),
                        Some("2025"),
                        Some("wages"),
                        Some("36000.50"),
                        None
                    ]
                ),
                (
                    3,
                    vec![
                        Some("王秀兰"),
                        Some("2024"),
                        Some("labour"),
                        Some("12.00"),
                        Some("0.00")
                    ]
                ),
            ]
        );
        let (other, _) = IdNumber::parse("62050219900101118X", as_of).unwrap();
        assert!(ix.lookup(other).is_empty());
    }
}
