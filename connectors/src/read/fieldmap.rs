//! Field maps: how each department may spell the §2 columns of a table.
//!
//! One TOML file per table in `connectors/fieldmaps/` (embedded at build time), listing for
//! each canonical column the header spellings accepted for it (the §2 name first), and
//! optionally the table's text `encoding`, `delimiter` and `[units]` of money columns that
//! departments write in 万元 without saying so. Headers are compared after [`norm`]: trimmed,
//! spaces removed, full-width ASCII turned into ASCII, Latin letters lower-cased. A money
//! column also accepts its name followed by a unit marker (`(元)`, `（万元）`, `[单位:万元]`).

use std::collections::BTreeMap;

use super::shown::shown_header;
use crate::{CaseloadTable, ColumnKind, ConnectorError, SourceKind};

/// Every table with a field map: the 3 caseload tables and the 12 sources (§2).
pub const TABLES: [&str; 15] = {
    let mut t = [""; 15];
    let mut i = 0;
    while i < 3 {
        t[i] = CaseloadTable::ALL[i].name();
        i += 1;
    }
    while i < 15 {
        t[i] = SourceKind::ALL[i - 3].name();
        i += 1;
    }
    t
};

fn embedded(table: &str) -> Option<&'static str> {
    Some(match table {
        "households" => include_str!("../../fieldmaps/households.toml"),
        "members" => include_str!("../../fieldmaps/members.toml"),
        "supporters" => include_str!("../../fieldmaps/supporters.toml"),
        "household_registration" => include_str!("../../fieldmaps/household_registration.toml"),
        "tax" => include_str!("../../fieldmaps/tax.toml"),
        "social_insurance" => include_str!("../../fieldmaps/social_insurance.toml"),
        "real_estate" => include_str!("../../fieldmaps/real_estate.toml"),
        "market_entity" => include_str!("../../fieldmaps/market_entity.toml"),
        "provident_fund" => include_str!("../../fieldmaps/provident_fund.toml"),
        "vehicle_vessel" => include_str!("../../fieldmaps/vehicle_vessel.toml"),
        "bank" => include_str!("../../fieldmaps/bank.toml"),
        "commercial_insurance" => include_str!("../../fieldmaps/commercial_insurance.toml"),
        "securities" => include_str!("../../fieldmaps/securities.toml"),
        "internet_finance" => include_str!("../../fieldmaps/internet_finance.toml"),
        "medical_insurance" => include_str!("../../fieldmaps/medical_insurance.toml"),
        _ => return None,
    })
}

/// Every header spelling of the embedded field maps (the words [`super::shown`] leaves
/// readable).
pub(crate) fn embedded_spellings() -> Vec<String> {
    TABLES
        .iter()
        .filter_map(|t| FieldMap::for_table(t).ok().flatten())
        .flat_map(|m| m.columns.into_iter().flat_map(|c| c.spellings))
        .collect()
}

/// A text encoding, declared in a field map or detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    /// UTF-8 (with or without BOM).
    Utf8,
    /// GB18030, which contains GBK (CP936) and GB2312: always read with the GB18030 decoder.
    Gb18030,
    /// UTF-16 little-endian (Excel's "Unicode text").
    Utf16Le,
    /// UTF-16 big-endian.
    Utf16Be,
}

impl TextEncoding {
    /// Read a declaration: `utf-8`, `gb18030`, `gbk`, `gb2312`, `cp936`, `utf-16le`,
    /// `utf-16be` (case and `-`/`_` ignored).
    pub fn from_label(label: &str) -> Option<TextEncoding> {
        let l: String = label
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | ' '))
            .collect::<String>()
            .to_ascii_lowercase();
        Some(match l.as_str() {
            "utf8" => TextEncoding::Utf8,
            "gb18030" | "gbk" | "gb2312" | "cp936" | "windows936" => TextEncoding::Gb18030,
            "utf16le" | "utf16" | "unicode" => TextEncoding::Utf16Le,
            "utf16be" => TextEncoding::Utf16Be,
            _ => return None,
        })
    }

    /// The stable label (`utf-8`, `gb18030`, `utf-16le`, `utf-16be`).
    pub fn label(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "utf-8",
            TextEncoding::Gb18030 => "gb18030",
            TextEncoding::Utf16Le => "utf-16le",
            TextEncoding::Utf16Be => "utf-16be",
        }
    }
}

/// The unit of a money column or value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MoneyUnit {
    /// 元 (the §2 unit).
    Yuan,
    /// 万元 = 10,000 yuan.
    Wan,
}

/// How a column's values are treated while reading (from the §2 column kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueKind {
    /// A resident ID number: never read from a number.
    Id,
    /// Yuan: exact decimals, units converted.
    Money,
    /// A date.
    Date,
    /// A month.
    Month,
    /// A share in percent (`share_pct`: 50 for 50 %): a workbook's number cell of 1 or less
    /// is refused (a fraction shown with a `%` format cannot be told from a share of 1 %).
    Percent,
    /// Anything else.
    Text,
}

/// The reading kind of a canonical column of a table.
pub(crate) fn kind_of(table: &str, column: &str) -> ValueKind {
    if matches!(
        column,
        "id_number" | "supports_id_number" | "household_head_id"
    ) {
        return ValueKind::Id;
    }
    if column == "share_pct" {
        return ValueKind::Percent;
    }
    let spec = SourceKind::from_name(table)
        .map(|k| k.columns())
        .or_else(|| {
            CaseloadTable::ALL
                .into_iter()
                .find(|t| t.name() == table)
                .map(|t| t.columns())
        })
        .and_then(|cols| cols.iter().find(|c| c.name == column));
    match spec.map(|c| c.kind) {
        Some(ColumnKind::IdNumber) => ValueKind::Id,
        Some(ColumnKind::Money) => ValueKind::Money,
        Some(ColumnKind::Date) => ValueKind::Date,
        Some(ColumnKind::Month) => ValueKind::Month,
        _ => ValueKind::Text,
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldMapFile {
    table: String,
    encoding: Option<String>,
    delimiter: Option<String>,
    columns: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    units: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
struct FieldColumn {
    name: String,
    spellings: Vec<String>,
    normalised: Vec<String>,
    kind: ValueKind,
    unit: Option<MoneyUnit>,
}

/// One table's field map (see the module docs and `connectors/fieldmaps/`).
#[derive(Debug, Clone)]
pub struct FieldMap {
    table: String,
    encoding: Option<TextEncoding>,
    delimiter: Option<char>,
    columns: Vec<FieldColumn>,
}

pub(crate) fn unit_of(s: &str) -> Option<MoneyUnit> {
    match s.trim() {
        "元" | "人民币元" | "yuan" | "cny" | "rmb" => Some(MoneyUnit::Yuan),
        "万元" | "万" | "人民币万元" => Some(MoneyUnit::Wan),
        _ => None,
    }
}

impl FieldMap {
    /// The embedded field map of a §2 table; `Ok(None)` for a table without one.
    ///
    /// # Errors
    /// [`ConnectorError::Unreadable`] if an embedded map is invalid (a build defect the
    /// crate's tests rule out).
    pub fn for_table(table: &str) -> Result<Option<FieldMap>, ConnectorError> {
        match embedded(table) {
            None => Ok(None),
            Some(text) => {
                FieldMap::from_toml(text)
                    .map(Some)
                    .map_err(|message| ConnectorError::Unreadable {
                        path: format!("connectors/fieldmaps/{table}.toml"),
                        message,
                    })
            }
        }
    }

    /// Parse a field map (the format of `connectors/fieldmaps/*.toml`).
    ///
    /// # Errors
    /// A sentence naming what is wrong.
    pub fn from_toml(text: &str) -> Result<FieldMap, String> {
        let f: FieldMapFile =
            toml::from_str(text).map_err(|e| format!("invalid field map: {e}"))?;
        let encoding = match &f.encoding {
            None => None,
            Some(l) => {
                Some(TextEncoding::from_label(l).ok_or_else(|| format!("unknown encoding {l:?}"))?)
            }
        };
        let delimiter = match f.delimiter.as_deref() {
            None => None,
            Some("," | "comma") => Some(','),
            Some("\t" | "\\t" | "tab") => Some('\t'),
            Some(";") => Some(';'),
            Some("|") => Some('|'),
            Some(d) => return Err(format!("delimiter {d:?} is not one of , \\t ; |")),
        };
        let mut columns = Vec::with_capacity(f.columns.len());
        for (name, spellings) in f.columns {
            if spellings.is_empty() {
                return Err(format!("column {name} lists no spelling"));
            }
            let kind = kind_of(&f.table, &name);
            let unit = match f.units.get(&name) {
                None => None,
                Some(u) if kind == ValueKind::Money => Some(
                    unit_of(u).ok_or_else(|| format!("unit {u:?} of {name} is not 元 or 万元"))?,
                ),
                Some(_) => {
                    return Err(format!("[units] names {name}, which is not a money column"));
                }
            };
            let normalised = spellings.iter().map(|s| norm(s)).collect();
            columns.push(FieldColumn {
                name,
                spellings,
                normalised,
                kind,
                unit,
            });
        }
        for u in f.units.keys() {
            if !columns.iter().any(|c| &c.name == u) {
                return Err(format!("[units] names {u}, which is not in [columns]"));
            }
        }
        Ok(FieldMap {
            table: f.table,
            encoding,
            delimiter,
            columns,
        })
    }

    /// A map that accepts each column under its own name only (for tables without a map).
    pub fn identity(table: &str, columns: &[&str]) -> FieldMap {
        FieldMap {
            table: table.to_string(),
            encoding: None,
            delimiter: None,
            columns: columns
                .iter()
                .map(|c| FieldColumn {
                    name: c.to_string(),
                    spellings: vec![c.to_string()],
                    normalised: vec![norm(c)],
                    kind: kind_of(table, c),
                    unit: None,
                })
                .collect(),
        }
    }

    /// The same map with a declared encoding.
    pub fn with_encoding(mut self, encoding: TextEncoding) -> FieldMap {
        self.encoding = Some(encoding);
        self
    }

    /// The same map with a declared delimiter.
    pub fn with_delimiter(mut self, delimiter: char) -> FieldMap {
        self.delimiter = Some(delimiter);
        self
    }

    /// The table.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The declared encoding.
    pub fn encoding(&self) -> Option<TextEncoding> {
        self.encoding
    }

    /// The declared delimiter.
    pub fn delimiter(&self) -> Option<char> {
        self.delimiter
    }

    /// The canonical columns of the map.
    pub fn columns(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }

    /// The accepted spellings of a column, as written in the map.
    pub fn spellings(&self, column: &str) -> Option<&[String]> {
        self.columns
            .iter()
            .find(|c| c.name == column)
            .map(|c| c.spellings.as_slice())
    }

    /// Map a header row to canonical columns (see [`Mapping`]).
    pub(crate) fn map_headers(&self, headers: &[String], required: &[&str]) -> Mapping {
        // Required columns outside the map are accepted under their own name.
        let mut columns: Vec<FieldColumn> = self.columns.clone();
        for r in required {
            if !columns.iter().any(|c| c.name == *r) {
                columns.push(FieldColumn {
                    name: r.to_string(),
                    spellings: vec![r.to_string()],
                    normalised: vec![norm(r)],
                    kind: kind_of(&self.table, r),
                    unit: None,
                });
            }
        }
        // Candidates per column: (spelling priority, header index, header unit).
        let mut cands: Vec<Vec<(usize, usize, Option<MoneyUnit>)>> =
            vec![Vec::new(); columns.len()];
        let mut unmapped = Vec::new();
        let mut looks_like_data = false;
        for (i, h) in headers.iter().enumerate() {
            let n = norm(h);
            if n.is_empty() {
                continue;
            }
            let mut hit = columns.iter().enumerate().find_map(|(ci, c)| {
                c.normalised
                    .iter()
                    .position(|s| *s == n)
                    .map(|p| (ci, p, None))
            });
            if hit.is_none()
                && let (base, Some(unit)) = split_unit(&n)
            {
                hit = columns
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.kind == ValueKind::Money)
                    .find_map(|(ci, c)| {
                        c.normalised
                            .iter()
                            .position(|s| s == base)
                            .map(|p| (ci, p, Some(unit)))
                    });
            }
            match hit {
                Some((ci, p, unit)) => cands[ci].push((p, i, unit)),
                None => {
                    looks_like_data |= looks_like_data_value(h);
                    unmapped.push(shown_header(h));
                }
            }
        }
        let mut chosen: Vec<(usize, usize, Option<MoneyUnit>)> = Vec::new(); // (header idx, column idx, unit)
        let mut shadowed = Vec::new();
        let mut ambiguous = Vec::new();
        let mut also: Vec<Vec<AlsoColumn>> = vec![Vec::new(); columns.len()];
        for (ci, c) in cands.iter_mut().enumerate() {
            c.sort();
            let Some(&(p, i, unit)) = c.first() else {
                continue;
            };
            for &(p2, i2, unit2) in &c[1..] {
                let (a, b) = (clean(&headers[i]), clean(&headers[i2]));
                if p2 == p {
                    ambiguous.push((columns[ci].name.clone(), a, b));
                } else if compared(&columns[ci]) {
                    also[ci].push(AlsoColumn {
                        src: i2,
                        header: b.clone(),
                        unit: unit2.or(columns[ci].unit),
                    });
                    shadowed.push((columns[ci].name.clone(), a, b));
                } else {
                    shadowed.push((columns[ci].name.clone(), a, b));
                }
            }
            chosen.push((i, ci, unit.or(columns[ci].unit)));
        }
        chosen.sort();
        let cols = chosen
            .iter()
            .map(|&(i, ci, unit)| MappedColumn {
                src: i,
                name: columns[ci].name.clone(),
                header: clean(&headers[i]),
                kind: columns[ci].kind,
                unit,
                as_is: headers[i] == columns[ci].name && unit.is_none(),
                also: std::mem::take(&mut also[ci]),
            })
            .collect::<Vec<_>>();
        let header_map = chosen
            .iter()
            .map(|&(i, ci, _)| (clean(&headers[i]), columns[ci].name.clone()))
            .collect();
        let missing = required
            .iter()
            .filter(|r| !cols.iter().any(|c| c.name == **r))
            .map(|r| r.to_string())
            .collect();
        Mapping {
            cols,
            header_map,
            unmapped,
            missing,
            shadowed,
            ambiguous,
            looks_like_data,
        }
    }
}

/// Whether two headers of column `c` have their values compared row by row (a row where
/// they differ is refused, `duplicate_column_conflict`): ID numbers, money and the
/// `household_id` key, where picking one by priority would be a silent guess that decides a
/// person, a household or an amount. Other columns keep the first listed spelling: in a
/// members table 户主姓名 (the head's name) beside 姓名 (the member's own) differ by design.
fn compared(c: &FieldColumn) -> bool {
    matches!(c.kind, ValueKind::Id | ValueKind::Money) || c.name == "household_id"
}

/// Header spellings that make a column an ID column in generic reading (the `members`
/// map's `id_number` list, plus any header containing 身份证 or 证件号).
fn generic_is_id(h: &str) -> bool {
    let n = norm(h);
    if n.contains("身份证") || n.contains("证件号") || n == "id_number" {
        return true;
    }
    embedded("members")
        .and_then(|t| FieldMap::from_toml(t).ok())
        .and_then(|m| m.columns.into_iter().find(|c| c.name == "id_number"))
        .is_some_and(|c| c.normalised.contains(&n))
}

/// Generic mapping: every column under its own cleaned header (empty headers become
/// `column_N`, duplicates get `_2`, `_3` …).
pub(crate) fn generic_mapping(headers: &[String]) -> Mapping {
    let mut names: Vec<String> = Vec::with_capacity(headers.len());
    let mut cols = Vec::with_capacity(headers.len());
    for (i, h) in headers.iter().enumerate() {
        let base = clean(h);
        let base = if base.is_empty() {
            format!("column_{}", i + 1)
        } else {
            base
        };
        let mut name = base.clone();
        let mut k = 2;
        while names.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        names.push(name.clone());
        cols.push(MappedColumn {
            src: i,
            as_is: *h == name,
            header: clean(h),
            also: Vec::new(),
            name,
            kind: if generic_is_id(h) {
                ValueKind::Id
            } else {
                ValueKind::Text
            },
            unit: None,
        });
    }
    let header_map = cols
        .iter()
        .map(|c| (clean(&headers[c.src]), c.name.clone()))
        .collect();
    Mapping {
        cols,
        header_map,
        unmapped: Vec::new(),
        missing: Vec::new(),
        shadowed: Vec::new(),
        ambiguous: Vec::new(),
        looks_like_data: false,
    }
}

/// A header row mapped to canonical columns.
#[derive(Debug, Clone, Default)]
pub(crate) struct Mapping {
    /// Output columns, in file order.
    pub cols: Vec<MappedColumn>,
    /// (header as found, cleaned; canonical) per output column.
    pub header_map: Vec<(String, String)>,
    /// Headers that map to nothing (cleaned).
    pub unmapped: Vec<String>,
    /// Required canonical columns not found.
    pub missing: Vec<String>,
    /// (column, header used, other header) where a lower-priority spelling also matched:
    /// a row where the two hold different values is refused (see [`MappedColumn::also`]).
    pub shadowed: Vec<(String, String, String)>,
    /// (column, header, header) where the same spelling appears twice.
    pub ambiguous: Vec<(String, String, String)>,
    /// An unmapped header holds a long number: the "header" is probably a data row.
    pub looks_like_data: bool,
}

impl Mapping {
    /// Whether the header row can be kept as is (every output column's header is already
    /// its canonical name, no unit conversion, no second header of the same field whose
    /// values must be compared row by row).
    pub fn is_canonical(&self) -> bool {
        self.cols.iter().all(|c| c.as_is && c.also.is_empty())
    }
}

/// One output column.
#[derive(Debug, Clone)]
pub(crate) struct MappedColumn {
    /// Index of the column in the file.
    pub src: usize,
    /// Canonical name.
    pub name: String,
    /// How values are read.
    pub kind: ValueKind,
    /// Unit from the header marker or the map's declaration (money columns).
    pub unit: Option<MoneyUnit>,
    /// The raw header is exactly the canonical name and no unit applies.
    pub as_is: bool,
    /// The header as found (cleaned), for messages.
    pub header: String,
    /// Other headers of the file that map to the same field with a lower priority (`balance`
    /// and `余额`): each row's values there are compared with this column's, and a row
    /// where they differ is refused (`duplicate_column_conflict`).
    pub also: Vec<AlsoColumn>,
}

/// A second header of a field (see [`MappedColumn::also`]).
#[derive(Debug, Clone)]
pub(crate) struct AlsoColumn {
    /// Index of the column in the file.
    pub src: usize,
    /// The header as found (cleaned).
    pub header: String,
    /// Its money unit (header marker or the map's declaration).
    pub unit: Option<MoneyUnit>,
}

/// A header as shown in messages: BOM and zero-width characters removed, trimmed (a header
/// no field map reads is shown by [`shown_header`], which masks what may be a name or an ID).
pub(crate) fn clean(h: &str) -> String {
    h.chars()
        .filter(|c| !matches!(c, '\u{feff}' | '\u{200b}'..='\u{200d}' | '\u{2060}'))
        .collect::<String>()
        .trim()
        .to_string()
}

/// The comparison form of a header: BOM/zero-width and all whitespace removed, full-width
/// ASCII (U+FF01–FF5E) turned into ASCII, 【】 into [], Latin letters lower-cased.
pub fn norm(h: &str) -> String {
    h.chars()
        .filter_map(|c| match c {
            '\u{feff}' | '\u{200b}'..='\u{200d}' | '\u{2060}' => None,
            c if c.is_whitespace() => None,
            '\u{ff01}'..='\u{ff5e}' => {
                char::from_u32(c as u32 - 0xfee0).map(|a| a.to_ascii_lowercase())
            }
            '【' => Some('['),
            '】' => Some(']'),
            c => Some(c.to_ascii_lowercase()),
        })
        .collect()
}

/// Split a normalised header into its name and a money unit marker at the end:
/// `余额(万元)`, `余额[单位:万元]`, `金额(元)`. Without a known unit the header is returned
/// whole.
pub(crate) fn split_unit(n: &str) -> (&str, Option<MoneyUnit>) {
    for (open, close) in [('(', ')'), ('[', ']')] {
        if let Some(inner_end) = n.strip_suffix(close)
            && let Some(pos) = inner_end.rfind(open)
        {
            let inner = &inner_end[pos + open.len_utf8()..];
            let inner = inner.strip_prefix("单位:").unwrap_or(inner);
            if let Some(u) = unit_of(inner) {
                return (&n[..pos], Some(u));
            }
        }
    }
    (n, None)
}

/// Whether a header cell looks like a data value: a run of six or more digits (ASCII or
/// full-width; spaces inside do not end it: `6205 0319 …`), or an amount or a date
/// (`69.01`, `2026-10-30`, `2026/10/30`). Then the header row is probably missing, and cells
/// are not echoed.
///
/// Found by the s9 attack: a file without a header whose first ID number was grouped with
/// spaces, or empty, had its first row (an ID number, a name) echoed in the error as
/// "columns found but not recognised".
pub(crate) fn looks_like_data_value(h: &str) -> bool {
    let digit = |c: char| c.is_ascii_digit() || ('\u{ff10}'..='\u{ff19}').contains(&c);
    let mut run = 0;
    for c in h.chars() {
        if digit(c) {
            run += 1;
            if run >= 6 {
                return true;
            }
        } else if !c.is_whitespace() {
            run = 0;
        }
    }
    let t = h.trim().trim_start_matches(['-', '+']);
    let numeric = |parts: &[&str]| {
        parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    };
    let amount = t.split_once('.').is_some_and(|(a, b)| numeric(&[a, b]));
    let date = ['-', '/', '.'].iter().any(|&sep| {
        let parts: Vec<&str> = t.split(sep).collect();
        parts.len() == 3 && parts[0].len() == 4 && numeric(&parts)
    });
    amount || date
}
