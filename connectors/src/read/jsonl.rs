//! JSON lines (`.jsonl`, `.ndjson`): one object per line, rewritten as canonical CSV.
//!
//! The text is decoded as any text file (BOM, declaration, UTF-8 or GB18030); a BOM at the
//! start of a later line (files concatenated) is removed and reported. Keys are mapped like
//! headers, from the keys of the first 1,000 objects (producers leave out null keys).
//! Values are written as text: strings as they are, numbers in their shortest exact form,
//! `null` as empty. An ID number given as a JSON number (`id_json_number`: IDs are strings,
//! §2, and a number may have passed through a double) is read as its digits when it has at
//! most 15, else written in scientific notation and refused by the ID parser, the row
//! offered to the error-tolerant linkage (as a workbook's number cell); a line that is not JSON
//! (`json_invalid`) or not an object (`json_not_object`) is refused with its line. A key
//! that a column is read from and that appears twice in one object with different values
//! (`json_duplicate_key`), or two keys of one field (`balance` and `余额`) holding different
//! values (`duplicate_column_conflict`, as in a CSV header), refuse the line: which value the
//! department meant is never guessed (a plain JSON parser keeps the last one silently).

use std::io::{BufRead, BufReader};

use serde_json::Value;

use super::fieldmap::ValueKind;
use super::text::{Chosen, Stop, io_stop, open_decoded, with_encoding};
use super::{
    Changes, Ctx, Issue, Normalised, Prepared, Rejected, Sink, lines_list, mapping_notes,
    money_change, money_exact, money_from_f64, money_text, number_text,
};
use crate::ConnectorError;
use crate::file::FileFormat;
use crate::read::TextEncoding;

/// How many objects are looked at to find the keys.
const KEY_SCAN: usize = 1000;

/// JSON lines.
pub(super) fn prepare_jsonl(ctx: &Ctx, notes: Vec<String>) -> Result<Prepared, ConnectorError> {
    let mut notes = notes;
    with_encoding(ctx, &mut notes, |chosen, _, notes| {
        attempt(ctx, chosen, notes)
    })
}

enum Line {
    Blank,
    Object(Checked),
    Bad(Rejected),
}

/// A JSON object as found: the first value of each key, and the later values of keys that
/// appear more than once (in order), which `serde_json::Value` would silently let win.
struct Checked {
    map: serde_json::Map<String, Value>,
    dups: Vec<(String, Value)>,
    /// Numbers beyond a double's range, read as strings (`quote_huge_numbers`).
    huge: Vec<String>,
}

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Checked, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Checked;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Checked, A::Error> {
                let mut map = serde_json::Map::new();
                let mut dups = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, Value>()? {
                    if map.contains_key(&k) {
                        dups.push((k, v));
                    } else {
                        map.insert(k, v);
                    }
                }
                Ok(Checked {
                    map,
                    dups,
                    huge: Vec::new(),
                })
            }
        }
        d.deserialize_map(Visit)
    }
}

/// A JSON value as the text a CSV cell would hold (for comparing two keys of one field).
fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The value of the first of `keys` in `text`, a line that is not JSON (cut short, or with a
/// number JSON cannot hold): `"key"`, optional spaces, `:`, then a string closed by its
/// quote or a run of digits followed by more of the line. A key written with `\uXXXX`
/// escapes (Python's default) is found too. `None` where no such value is whole.
fn key_in_text(text: &str, keys: &[&str]) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    keys.iter().find_map(|k| {
        let escaped: String = k
            .encode_utf16()
            .map(|u| match char::from_u32(u32::from(u)) {
                Some(c) if c.is_ascii() => c.to_ascii_lowercase().to_string(),
                _ => format!("\\u{u:04x}"),
            })
            .collect();
        [
            format!("\"{}\"", k.to_ascii_lowercase()),
            format!("\"{escaped}\""),
        ]
        .iter()
        .flat_map(|pat| lower.match_indices(pat.as_str()).map(|(i, p)| i + p.len()))
        .find_map(|end| {
            let rest = text[end..].trim_start().strip_prefix(':')?.trim_start();
            let v = if let Some(s) = rest.strip_prefix('"') {
                // an escape inside: not the plain value an ID number is
                Some(&s[..s.find('"')?]).filter(|v| !v.contains('\\'))?
            } else {
                let n = rest.find(|c: char| !c.is_ascii_digit())?;
                &rest[..n]
            };
            Some(v.trim().to_string()).filter(|v| !v.is_empty())
        })
    })
}

fn parse_line(text: &str, line: u64) -> Line {
    let t = text.trim();
    if t.is_empty() {
        return Line::Blank;
    }
    if let Ok(c) = serde_json::from_str::<Checked>(t) {
        return Line::Object(c);
    }
    // Not an object, or not JSON: parsed again only to say which.
    match serde_json::from_str::<Value>(t) {
        Ok(Value::Object(m)) => Line::Object(Checked {
            map: m,
            dups: Vec::new(),
            huge: Vec::new(),
        }),
        Ok(_) => Line::Bad(Rejected {
            line,
            column: String::new(),
            raw: t.to_string(),
            reason: "json_not_object".into(),
            message: format!("line {line}: valid JSON but not an object; the line is not read"),
            household_id: None,
            id_number: None,
            other_keys: Vec::new(),
        }),
        Err(_) if quote_huge_numbers(t).is_some() => {
            let (q, huge) = quote_huge_numbers(t).unwrap_or_default();
            match parse_line(&q, line) {
                Line::Object(mut c) => {
                    c.huge = huge;
                    Line::Object(c)
                }
                // (still not JSON: refused as the line was written)
                _ => invalid(t, line),
            }
        }
        Err(_) => invalid(t, line),
    }
}

/// A line that is not JSON, refused with the column serde_json stopped at.
fn invalid(t: &str, line: u64) -> Line {
    let column = serde_json::from_str::<Value>(t)
        .err()
        .map_or(0, |e| e.column());
    Line::Bad(Rejected {
        line,
        column: String::new(),
        raw: t.to_string(),
        reason: "json_invalid".into(),
        message: format!(
            "line {line}: not JSON (column {column} of the line); the line is not read"
        ),
        household_id: None,
        id_number: None,
        other_keys: Vec::new(),
    })
}

/// The line with every number outside a double's range (`6.2e400`, which serde_json refuses
/// as "number out of range") written as a string, and those numbers' texts; `None` where the
/// line holds none. Such a number is read as the text a CSV cell holding it would be: under
/// an ID column refused as an ID (scientific notation) and offered to the error-tolerant
/// linkage, under an amount column refused as an amount, each with its column named. Found
/// by session 25's attack D: the whole line was refused as not JSON, naming no person, where
/// the same text in a CSV was a possible match and the household referred.
fn quote_huge_numbers(t: &str) -> Option<(String, Vec<String>)> {
    let mut out = String::with_capacity(t.len() + 8);
    let mut huge = Vec::new();
    let (mut in_string, mut escaped) = (false, false);
    let mut chars = t.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        if c == '"' {
            in_string = true;
            out.push(c);
            continue;
        }
        if c == '-' || c.is_ascii_digit() {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if d.is_ascii_digit() || matches!(d, '.' | 'e' | 'E' | '+' | '-') {
                    end = j + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let token = &t[i..end];
            if token.parse::<f64>().is_ok_and(f64::is_infinite) {
                out.push('"');
                out.push_str(token);
                out.push('"');
                huge.push(token.to_string());
            } else {
                out.push_str(token);
            }
            continue;
        }
        out.push(c);
    }
    (!huge.is_empty()).then_some((out, huge))
}

/// One JSON value as text for a column.
fn convert(
    v: &Value,
    kind: ValueKind,
    unit: Option<super::MoneyUnit>,
    changes: &mut Changes,
    col: &str,
) -> Result<(String, Change), Issue> {
    let wan = unit == Some(super::MoneyUnit::Wan);
    let number_change = |noise: bool| super::number_money_change(noise, wan, "JSON number");
    let plain = |t: String| (t, None);
    match (v, kind) {
        (Value::Null, _) => Ok(plain(String::new())),
        (Value::Array(_) | Value::Object(_), _) => Err(Issue {
            reason: "json_nested_value",
            message: "a list or object where a single value belongs".into(),
        }),
        (Value::Number(n), ValueKind::Id) => Ok(id_number_value(n)),
        (Value::Number(n), ValueKind::Money) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), ..) => money_exact(&i.to_string(), unit).map(|t| (t, number_change(false))),
            (None, Some(u), _) => {
                money_exact(&u.to_string(), unit).map(|t| (t, number_change(false)))
            }
            (None, None, Some(f)) => money_from_f64(f, unit).map(|(t, noise)| {
                if noise {
                    changes.add(format!(
                        "column `{col}`: JSON numbers with binary float noise read at 15 significant digits"
                    ));
                }
                (t, number_change(noise))
            }),
            _ => Err(Issue { reason: "money_not_a_number", message: "not an amount".into() }),
        },
        (Value::Number(n), _) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), ..) => Ok(plain(i.to_string())),
            (None, Some(u), _) => Ok(plain(u.to_string())),
            (None, None, Some(f)) => number_text(f).map(plain),
            _ => Ok(plain(n.to_string())),
        },
        (Value::String(s), ValueKind::Money) => match money_text(s, unit)? {
            Some(t) => {
                changes.add(format!("column `{col}`: amounts with a unit converted to yuan"));
                Ok((t, Some(money_change(s, unit))))
            }
            None => Ok(plain(s.clone())),
        },
        (Value::String(s), _) => Ok(plain(s.clone())),
        (Value::Bool(b), _) => Ok(plain(b.to_string())),
    }
}

/// The per-row log's detail of an ID number given as a JSON number beyond a double's range.
const HUGE_ID: &str = "an ID number given as a JSON number beyond a double's range, read as its text and refused as an ID number, never repaired (send IDs as strings)";

/// What a conversion changed: (kind, detail) for the per-row log.
type Change = Option<(&'static str, String)>;

/// An ID number given as a JSON number, as text, with what that changed (`id_json_number` in
/// the per-row log). IDs are strings (§2), and a number may have passed through a double
/// (JavaScript's numbers keep 15-17 significant digits and no X).
///
/// A whole number of up to 15 digits (a legacy 15-digit number) is exact in a double: its
/// digits. Any other number (18 digits, a fraction, an exponent) is written in scientific
/// notation with 15 significant digits (`6.20503197503245E+17`), which the ID parser refuses
/// as digits lost, never repaired: the row goes on, quarantined with its row number, to the
/// error-tolerant linkage as the same value in a CSV or a workbook does. Found by session
/// 25's attack: the line was refused while reading, so a caseload person's deposit keyed so
/// never reached the linkage and the family stayed eligible, where the same row in a CSV
/// was a possible match and the household referred.
fn id_number_value(n: &serde_json::Number) -> (String, Change) {
    // (a number beyond a double's range never reaches here: `quote_huge_numbers`)
    if let Some(u) = n.as_u64().filter(|u| *u < 1_000_000_000_000_000) {
        return (
            u.to_string(),
            Some((
                "id_json_number",
                "an ID number given as a JSON number of at most 15 digits (exact in a double), read as its digits; send IDs as strings".into(),
            )),
        );
    }
    let v = n.as_f64().unwrap_or(f64::NAN);
    let text = if v.is_finite() {
        super::scientific_15(v)
    } else {
        n.to_string()
    };
    (
        text,
        Some((
            "id_json_number",
            "an ID number given as a JSON number: digits (or the X) may have been lost on the way; written in scientific notation and refused as an ID number, never repaired (send IDs as strings)".into(),
        )),
    )
}

fn attempt(ctx: &Ctx, chosen: Chosen, notes: &mut Vec<String>) -> Result<Prepared, Stop> {
    let mut rdr = BufReader::with_capacity(1 << 20, open_decoded(ctx, chosen)?);
    let utf8 = chosen.encoding == TextEncoding::Utf8;
    let mut buf = Vec::new();
    let mut line = 0u64;
    let mut boms = Vec::new();
    // Read a line as text; None at the end.
    let mut next = |boms: &mut Vec<u64>| -> Result<Option<(u64, String)>, Stop> {
        buf.clear();
        let n = rdr
            .read_until(b'\n', &mut buf)
            .map_err(|e| io_stop(ctx, e))?;
        if n == 0 {
            return Ok(None);
        }
        line += 1;
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t,
            Err(_) if utf8 => return Err(Stop::NotUtf8),
            Err(_) => {
                return Err(Stop::Fail(
                    ctx.unreadable(format!("line {line}: not text after decoding")),
                ));
            }
        };
        let text = match text.strip_prefix('\u{feff}') {
            Some(t) => {
                if line > 1 {
                    boms.push(line);
                }
                t
            }
            None => text,
        };
        Ok(Some((line, text.to_string())))
    };
    // Look at the first objects for their keys.
    let mut head: Vec<(u64, Line)> = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    let mut objects = 0;
    while objects < KEY_SCAN {
        let Some((l, text)) = next(&mut boms)? else {
            break;
        };
        let parsed = parse_line(&text, l);
        if let Line::Object(c) = &parsed {
            objects += 1;
            for k in c.map.keys() {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
        head.push((l, parsed));
    }
    if objects == 0 {
        return Err(Stop::Fail(ctx.unreadable(
            "no JSON object in the file: nothing to map to columns".into(),
        )));
    }
    let mapping = ctx.map_headers(&keys);
    if let Some(e) = ctx
        .missing_error(&mapping, 0)
        .or_else(|| ctx.ambiguous_error(&mapping, 0))
    {
        return Err(Stop::Fail(e));
    }
    mapping_notes(&mapping, 0, notes);
    let names: Vec<&str> = mapping.cols.iter().map(|c| c.name.as_str()).collect();
    let mut sink = Sink::new(ctx.path, &names)?;
    let mut rejected = Vec::new();
    let mut blanks = Vec::new();
    let mut changes = Changes::default();
    let mut normalised: Vec<Normalised> = Vec::new();
    // keys first seen after the key scan: whether each maps to a column
    let mut late_keys: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
    // the changes of the line being read, logged once its row is written
    let mut pending: Vec<(String, &'static str, String)> = Vec::new();
    let mut out: Vec<String> = vec![String::new(); names.len()];
    // The keys a column is read from (its first spelling, then the other keys of the field).
    let keys_for = |name: &str| -> Vec<&str> {
        mapping
            .cols
            .iter()
            .filter(|c| c.name == name)
            .flat_map(|c| std::iter::once(c.src).chain(c.also.iter().map(|a| a.src)))
            .map(|s| keys[s].as_str())
            .collect()
    };
    let (id_keys, household_keys) = (keys_for("id_number"), keys_for("household_id"));
    let mut handle = |l: u64,
                      parsed: Line,
                      sink: &mut Sink,
                      rejected: &mut Vec<Rejected>|
     -> Result<(), Stop> {
        let Checked { map: m, dups, huge } = match parsed {
            Line::Blank => {
                blanks.push(l);
                return Ok(());
            }
            Line::Bad(mut r) => {
                // Found by the s9 attack: a line cut short (the last line of an export that
                // stopped) named no person, so a caseload member's deposit was missing and
                // the household eligible; the CSV reader refers it. The keys are read from
                // the text where it still holds them whole.
                r.id_number = key_in_text(&r.raw, &id_keys);
                r.household_id = key_in_text(&r.raw, &household_keys);
                rejected.push(r);
                return Ok(());
            }
            Line::Object(c) => c,
        };
        // The row's keys (unmasked, never shown): let the batch refer the household of
        // a caseload person named by a line it refuses.
        // Found by the s9 attack: only the keys spelled `id_number` and `household_id`
        // were looked up, so a refused line with `身份证号` referred no household.
        let first_of = |ks: &[&str]| {
            ks.iter().find_map(|k| {
                m.get(*k)
                    .map(|v| cell_text(v).trim().to_string())
                    .filter(|v| !v.is_empty())
            })
        };
        let keys_of_row = |r: &mut Rejected| {
            r.household_id = first_of(&household_keys);
            r.id_number = first_of(&id_keys);
        };
        // Found by the session-14 attack: a key first seen after the objects the columns were
        // mapped from (`身份证号` for `id_number` from line 2,401 on) was ignored, and the
        // line read without its ID or amount. A line holding a value under a key that maps to
        // a column but was not mapped is refused, naming the key.
        if ctx.map.is_some() {
            for (k, v) in m.iter() {
                if v.is_null() || keys.contains(k) {
                    continue;
                }
                let maps = *late_keys
                    .entry(k.clone())
                    .or_insert_with(|| !ctx.map_headers(std::slice::from_ref(k)).cols.is_empty());
                if maps {
                    let mut r = Rejected {
                        line: l,
                        column: String::new(),
                        raw: String::new(),
                        reason: "json_key_unmapped".into(),
                        message: format!(
                            "line {l}: the key {k} names a column but first appears after the first {KEY_SCAN} objects, from which the file's columns were mapped; the line is not read"
                        ),
                        household_id: None,
                        id_number: None,
                        other_keys: Vec::new(),
                    };
                    keys_of_row(&mut r);
                    rejected.push(r);
                    return Ok(());
                }
            }
        }
        // A key read for a column, given twice with different values: which one the
        // department meant is not guessed.
        for (k, second) in &dups {
            let Some(c) = mapping
                .cols
                .iter()
                .find(|c| keys[c.src] == *k || c.also.iter().any(|a| keys[a.src] == *k))
            else {
                continue;
            };
            let first = m.get(k).unwrap_or(&Value::Null);
            if first == second {
                continue;
            }
            let mut r = Rejected {
                line: l,
                column: c.name.clone(),
                raw: cell_text(first),
                reason: "json_duplicate_key".into(),
                message: format!(
                    "line {l}, column {}: the key {k} appears twice in the object with different values; which one is meant is not guessed, the line is not read",
                    c.name
                ),
                household_id: None,
                id_number: None,
                other_keys: Vec::new(),
            };
            keys_of_row(&mut r);
            if matches!(c.name.as_str(), "id_number" | "household_id") {
                r.other_keys
                    .push((c.name.clone(), cell_text(second).trim().to_string()));
            }
            rejected.push(r);
            return Ok(());
        }
        out.iter_mut().for_each(String::clear);
        pending.clear();
        for (i, c) in mapping.cols.iter().enumerate() {
            // Two keys of one field (`balance` and `余额`): the rule of a CSV header.
            let (src, unit) = if c.also.is_empty() {
                (c.src, c.unit)
            } else {
                let texts: Vec<String> = keys
                    .iter()
                    .map(|k| m.get(k).map(cell_text).unwrap_or_default())
                    .collect();
                let fields: Vec<&str> = texts.iter().map(String::as_str).collect();
                match super::pick_source(c, &fields, l) {
                    Ok(src) if src == c.src => (src, c.unit),
                    Ok(src) => (
                        src,
                        c.also.iter().find(|a| a.src == src).and_then(|a| a.unit),
                    ),
                    Err(mut r) => {
                        let other = std::mem::take(&mut r.other_keys);
                        keys_of_row(&mut r);
                        r.other_keys = other;
                        rejected.push(r);
                        return Ok(());
                    }
                }
            };
            let Some(v) = m.get(&keys[src]) else {
                continue;
            };
            match convert(v, c.kind, unit, &mut changes, &c.name) {
                Ok((t, change)) => {
                    let change = change.or_else(|| {
                        matches!((v, c.kind), (Value::String(s), ValueKind::Id) if huge.contains(s))
                            .then(|| ("id_json_number", HUGE_ID.to_string()))
                    });
                    if let Some((kind, detail)) = change {
                        pending.push((c.name.clone(), kind, detail));
                    }
                    out[i] = t
                }
                Err(issue) => {
                    let raw = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let mut r = issue.at(l, &c.name, &raw);
                    keys_of_row(&mut r);
                    rejected.push(r);
                    return Ok(());
                }
            }
        }
        let row = sink.rows();
        sink.row(l, &out)?;
        normalised.extend(pending.drain(..).map(|(column, kind, detail)| Normalised {
            line: l,
            row,
            column,
            kind: kind.into(),
            detail,
        }));
        Ok(())
    };
    for (l, parsed) in head {
        handle(l, parsed, &mut sink, &mut rejected)?;
    }
    while let Some((l, text)) = next(&mut boms)? {
        handle(l, parse_line(&text, l), &mut sink, &mut rejected)?;
    }
    let (dir, path, lines) = sink.finish()?;
    let mut pnotes = Vec::new();
    if !boms.is_empty() {
        pnotes.push(format!(
            "a BOM removed at the start of lines {} (files concatenated?)",
            lines_list(&boms)
        ));
    }
    if !blanks.is_empty() {
        pnotes.push(format!("empty lines skipped: {}", lines_list(&blanks)));
    }
    if !rejected.is_empty() {
        pnotes.push(format!(
            "{} line(s) refused while reading (see rejected)",
            rejected.len()
        ));
    }
    changes.into_notes(&mut pnotes);
    Ok(Prepared {
        path,
        source: ctx.path.to_path_buf(),
        format: FileFormat::JsonLines,
        encoding: String::new(),
        delimiter: None,
        header_line: 0,
        header_map: mapping.header_map,
        repeated_headers: Vec::new(),
        line_of_row: Some(lines),
        rejected,
        normalised,
        notes: pnotes,
        _temp: Some(dir),
        stamp: None,
    })
}
