//! Workbooks (.xlsx, .xlsm, .xls) via calamine: the first sheet, rewritten as canonical CSV.
//!
//! Cells are typed, and the types are where spreadsheets damage data:
//! - an ID number held as a number has lost its digits beyond the 15th (and a trailing X):
//!   it is written in scientific notation (`6.20503199410116E+17`), which the ID parser
//!   refuses, never repaired, and the row goes on to the linkage's second pass as a CSV row
//!   with that value does; a whole number of at most 15 digits is exact and read as its
//!   digits (both logged as `id_spreadsheet_number`); an ID in a date cell refuses the row;
//! - money held as a number is written from the shortest decimal that round-trips the
//!   float, read exactly; more than two decimals is refused (`money_too_many_decimals`);
//! - date cells are Excel serial day numbers, converted by the 1900 date system rule (day 0
//!   = 1899-12-30) and recorded; serials before 1900-03-01 (where Excel's phantom 1900-02-29
//!   makes the rule ambiguous) are refused; a plain number in a date column is left as text
//!   (the date parser refuses `44447`; it never becomes the year 44447).
//!
//! The "line" of a row is its sheet row number (1-based), as Excel shows it.

use std::io::Cursor;

use calamine::{Data, Reader, open_workbook_auto_from_rs};
use chrono::{Duration, NaiveDate};

use super::fieldmap::{MappedColumn, Mapping, ValueKind, norm};
use super::shown::shown_sheet;
use super::{
    Changes, Ctx, HeaderAgain, Issue, Normalised, Prepared, Rejected, Sink, apply_declared_unit,
    choose_header, data_row_above_header, header_again, header_switch_note,
    header_unreadable_message, key_like, lines_list, mapping_notes, maybe_total, money_change,
    money_exact, money_from_f64, money_text, number_text, pick_source, repeats_only, scientific_15,
    subtotal_cell, subtotal_row, switched_mapping_notes,
};
use crate::ConnectorError;
use crate::file::FileFormat;

/// The sheet row a sheet must reach before the next sheet repeating the header is read as the
/// table continuing: export tools split a table at a sheet's last row, 65,536 in .xls and
/// 1,048,576 in .xlsx (or at a round million). Found by session 16's third attack: at 65,000
/// for every format, an .xlsx county extract of 65,000 rows was read with its visible
/// `上月备份` copy, and deposits counted twice.
fn continued_after_row<RS: std::io::Read + std::io::Seek>(wb: &calamine::Sheets<RS>) -> u64 {
    match wb {
        calamine::Sheets::Xls(_) => 65_000,
        _ => 1_000_000,
    }
}

/// Serial day 0 of the 1900 date system as used by the explicit rule.
fn epoch() -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1899, 12, 30)
}

/// Text of a cell for headers and generic columns.
fn cell_text(c: &Data) -> String {
    match c {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => format!("{f}"),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) => format!("{}", d.as_f64()),
        Data::Error(e) => format!("#{e:?}"),
    }
}

/// An Excel date cell as ISO text (`YYYY-MM-DD`, `YYYY-MM` for month columns).
fn excel_date(d: &calamine::ExcelDateTime, kind: ValueKind) -> Result<(String, bool), Issue> {
    if d.is_duration() {
        return Err(Issue {
            reason: "date_excel_duration",
            message: "a duration, not a date".into(),
        });
    }
    let v = d.as_f64();
    if !v.is_finite() || v < 0.0 {
        return Err(Issue {
            reason: "date_excel_serial",
            message: "not an Excel date serial".into(),
        });
    }
    let days = v.floor() as i64;
    if days < 61 {
        return Err(Issue {
            reason: "date_excel_serial_ambiguous",
            message: "an Excel date before 1900-03-01: Excel's phantom 1900-02-29 makes it ambiguous; enter the date as text".into(),
        });
    }
    let mine = epoch()
        .and_then(|e| e.checked_add_signed(Duration::days(days)))
        .ok_or(Issue {
            reason: "date_excel_serial",
            message: "Excel date serial out of range".into(),
        })?;
    // calamine knows whether the workbook uses the 1904 date system; our rule is the 1900
    // one. If they disagree by 1,462 days the workbook is a 1904 one.
    let (y, m, dd, ..) = d.to_ymd_hms_milli();
    let theirs = NaiveDate::from_ymd_opt(i32::from(y), u32::from(m), u32::from(dd));
    let (date, is_1904) = match theirs {
        Some(t) if t == mine => (mine, false),
        Some(t) if mine.checked_add_signed(Duration::days(1462)) == Some(t) => (t, true),
        _ => {
            return Err(Issue {
                reason: "date_excel_serial",
                message: "Excel date serial out of range".into(),
            });
        }
    };
    let text = match kind {
        ValueKind::Month => date.format("%Y-%m").to_string(),
        ValueKind::Date => date.format("%Y-%m-%d").to_string(),
        _ if v.fract() == 0.0 => date.format("%Y-%m-%d").to_string(),
        _ => {
            let secs = ((v.fract() * 86_400.0).round() as i64).clamp(0, 86_399);
            format!(
                "{} {:02}:{:02}:{:02}",
                date.format("%Y-%m-%d"),
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            )
        }
    };
    Ok((text, is_1904))
}

/// What a conversion changed: (kind, detail) for the per-row log.
type Change = Option<(&'static str, String)>;

/// An ID number held in a number cell, as text, with what that changed
/// (`id_spreadsheet_number` in the per-row log).
///
/// A whole number of up to 15 digits (a legacy 15-digit number) is exact in a spreadsheet:
/// its digits. A longer one kept only its first 15 significant digits (and lost a final X):
/// it is written in scientific notation with those digits (`6.20503199410116E+17`), which
/// the ID parser refuses as digits lost, never repaired; the row goes on, quarantined with
/// its row number, to the error-tolerant linkage as the same value in a CSV does. Found by
/// session 16's attack: the row was refused while reading, so a deposit of a caseload person
/// whose ID cell was a number never reached the linkage and the family stayed eligible.
fn id_number_cell(v: f64) -> (String, Change) {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        return (
            format!("{v:.0}"),
            Some((
                "id_spreadsheet_number",
                "a number cell of at most 15 digits (exact in a spreadsheet), read as its digits"
                    .into(),
            )),
        );
    }
    let text = scientific_15(v);
    (
        text,
        Some((
            "id_spreadsheet_number",
            "a number cell: a spreadsheet keeps 15 significant digits, so digits (or the X) are lost; written in scientific notation and refused as an ID number, never repaired (format the column as text and enter the number again from the source)".into(),
        )),
    )
}

/// One output value from a cell (and what converting it changed), or why the row is
/// refused.
fn convert(
    cell: &Data,
    kind: ValueKind,
    unit: Option<super::MoneyUnit>,
    changes: &mut Changes,
    col: &str,
) -> Result<(String, Change), (Issue, String)> {
    let raw = cell_text(cell);
    let fail = |i: Issue| (i, cell_text(cell));
    match (cell, kind) {
        (Data::Empty, _) => Ok((String::new(), None)),
        (Data::Error(e), _) => Err(fail(Issue {
            reason: "spreadsheet_error_cell",
            message: format!("the cell holds the spreadsheet error {e:?}, not a value"),
        })),
        (Data::Int(_) | Data::Float(_), ValueKind::Id) => {
            let v = match cell {
                Data::Int(i) => *i as f64,
                Data::Float(f) => *f,
                _ => unreachable!("matched above"),
            };
            Ok(id_number_cell(v))
        }
        (Data::DateTime(_), ValueKind::Id) => Err(fail(Issue {
            reason: "id_spreadsheet_number",
            message: "the ID number is stored as a date in the workbook; format the column as text and enter the number again from the source".into(),
        })),
        (Data::String(s), ValueKind::Money) => match money_text(s, unit) {
            Ok(Some(v)) => {
                changes.add(format!("column `{col}`: amounts with a unit converted to yuan"));
                Ok((v, Some(money_change(s, unit))))
            }
            Ok(None) => Ok((s.clone(), None)),
            Err(i) => Err((i, raw)),
        },
        (Data::Int(_) | Data::Float(_), ValueKind::Money) => {
            let (v, noise) = match cell {
                Data::Int(i) => money_exact(&i.to_string(), unit).map(|t| (t, false)),
                Data::Float(f) => money_from_f64(*f, unit),
                _ => unreachable!("matched above"),
            }
            .map_err(fail)?;
            if noise {
                changes.add(format!(
                    "column `{col}`: number cells with binary float noise read as the spreadsheet shows them (15 significant digits)"
                ));
            }
            let wan = unit == Some(super::MoneyUnit::Wan);
            Ok((v, super::number_money_change(noise, wan, "number cell")))
        }
        // Found by the session-14 attack: a share stored as the fraction 1 with the format
        // `0%` shows 100 % and read as 1 %: households ineligible on their housing came out
        // eligible. A workbook cannot be asked for its formats here (calamine keeps them to
        // itself), so a number cell of a share of 1 or less is refused, never guessed.
        (Data::Int(_) | Data::Float(_), ValueKind::Percent) => {
            let v = match cell {
                Data::Int(i) => *i as f64,
                Data::Float(f) => *f,
                _ => unreachable!("matched above"),
            };
            if v > 0.0 && v <= 1.0 {
                return Err(fail(Issue {
                    reason: "percent_fraction_ambiguous",
                    message: "a share of 1 or less in a number cell: a fraction shown as a percentage (0.5 with the format 0% shows 50%) cannot be told from a share of 1 % or less; write the share in percent (50 for 50 %)".into(),
                }));
            }
            match cell {
                Data::Int(i) => Ok((i.to_string(), None)),
                // (`100.00000000000001`, a formula's binary noise, reads as the sheet shows
                // it, as amounts do; found by the session-15 attack)
                _ => {
                    let t = number_text(v).map_err(fail)?;
                    let decimals = t.split_once('.').map_or(0, |(_, f)| f.len());
                    match money_from_f64(v, None) {
                        Ok((shown, true)) if decimals > 2 => {
                            changes.add(format!(
                                "column `{col}`: number cells with binary float noise read as the spreadsheet shows them (15 significant digits)"
                            ));
                            Ok((shown, super::number_money_change(true, false, "number cell")))
                        }
                        _ => Ok((t, None)),
                    }
                }
            }
        }
        (Data::DateTime(_), ValueKind::Money) => Err(fail(Issue {
            reason: "money_not_a_number",
            message: "the amount cell is formatted as a date".into(),
        })),
        (Data::DateTime(d), _) => {
            let (t, is_1904) = excel_date(d, kind).map_err(fail)?;
            changes.add(if is_1904 {
                "date cells converted from Excel serials (1904 date system, recognised by calamine)".to_string()
            } else {
                "date cells converted from Excel serials by the 1900 date system rule (day 0 = 1899-12-30)".to_string()
            });
            let change = if is_1904 {
                ("date_excel_serial_1904", "Excel date cell (1904 date system) → ISO".to_string())
            } else {
                ("date_excel_serial", "Excel date cell, 1900 date system (day 0 = 1899-12-30) → ISO".to_string())
            };
            Ok((t, Some(change)))
        }
        (Data::Float(f), _) => number_text(*f).map(|t| (t, None)).map_err(fail),
        (Data::Int(i), _) => Ok((i.to_string(), None)),
        _ => Ok((raw, None)),
    }
}

/// The unit a number cell of an amount column is read in, given its number format `code`
/// (None: an .xls/.ods cell, or no style) and the column's unit from its header or a title
/// (`unit`), and the per-row log's record of a format that decided it ([`format_unit`]):
/// - `0.00"万元"`: 万元, ×10,000 (`money_wan_number_format`); refused as
///   `money_unit_conflict` when the header or a title says 元;
/// - `0!.0000"万"` (a yuan amount shown in 万): yuan, as stored, whatever a title says
///   (`money_yuan_shown_in_wan`);
/// - another count word (千, 百万, 亿), or sections that disagree: refused as
///   `money_unit_in_cell_format`.
fn format_cell_unit(
    code: Option<&str>,
    v: f64,
    unit: Option<super::MoneyUnit>,
) -> Result<(Option<super::MoneyUnit>, Change), Issue> {
    use super::MoneyUnit::{Wan, Yuan};
    use super::numfmt::{FormatUnit, format_unit};
    let Some(code) = code else {
        return Ok((unit, None));
    };
    // (a format is the workbook's, not a person's; cut short all the same)
    let shown: String = code.chars().take(40).collect();
    match format_unit(code, v) {
        FormatUnit::Plain => Ok((unit, None)),
        FormatUnit::Wan if unit == Some(Yuan) => Err(Issue {
            reason: "money_unit_conflict",
            message: format!(
                "the cell's number format `{shown}` shows 万元 while the column's header or title says 元: which one holds cannot be told; format the amounts as plain numbers in one unit and export again"
            ),
        }),
        FormatUnit::Wan => Ok((
            Some(Wan),
            Some((
                "money_wan_number_format",
                format!(
                    "a number cell formatted `{shown}` (shown in 万元) → yuan, ×10,000 exactly"
                ),
            )),
        )),
        FormatUnit::YuanShownInWan => Ok((
            Some(Yuan),
            Some((
                "money_yuan_shown_in_wan",
                format!(
                    "a number cell formatted `{shown}`: a yuan amount shown in 万 (a literal decimal point or a scaling comma), read in yuan as stored"
                ),
            )),
        )),
        FormatUnit::Unclear => Err(Issue {
            reason: "money_unit_in_cell_format",
            message: format!(
                "the cell's number format `{shown}` shows a unit hedui does not convert (千, 百万, 亿, or 万 in some of its sections only): the amount's unit cannot be told; export the amounts in yuan or 万元"
            ),
        }),
    }
}

/// Whether the cell at `at` (absolute) of `sheet` holds a formula. The sheet's formulas are
/// read into `formulas` on the first call (a second parse of the sheet: only for a cell that
/// reads empty or 0); a workbook whose formulas cannot be read has none.
fn formula_at<RS: std::io::Read + std::io::Seek>(
    formulas: &mut Option<Option<calamine::Range<String>>>,
    wb: &mut calamine::Sheets<RS>,
    sheet: &str,
    at: (u32, u32),
) -> bool {
    formulas
        .get_or_insert_with(|| wb.worksheet_formula(sheet).ok())
        .as_ref()
        .and_then(|f| f.get_value(at))
        .is_some_and(|f| !f.trim().is_empty())
}

/// `range` with the value of each merged region's first cell in the cells below it in the
/// region (down its first column), and the cells so filled (absolute positions). Found by the
/// session-14 attack: an ID and a name merged down over one person's rows (as clerks lay out a
/// list) came through in the first row only, and the rows below were refused as
/// `id_missing`, their deposits unread: the sheet shows the value in every row of the region,
/// so each row reads it. A value merged across columns stays in its own column. (xlsx and
/// xls; calamine reads no merged regions of the other formats.)
fn fill_merged<RS: std::io::Read + std::io::Seek>(
    wb: &mut calamine::Sheets<RS>,
    sheet: &str,
    mut range: calamine::Range<Data>,
) -> (calamine::Range<Data>, std::collections::HashSet<(u32, u32)>) {
    let regions = match wb {
        calamine::Sheets::Xlsx(x) => x.merge_cells_by_sheet_name(sheet).unwrap_or_default(),
        calamine::Sheets::Xls(x) => x.merge_cells_by_sheet_name(sheet).unwrap_or_default(),
        _ => Vec::new(),
    };
    let mut filled = std::collections::HashSet::new();
    let (Some(start), Some(end)) = (range.start(), range.end()) else {
        return (range, filled);
    };
    for d in regions {
        let Some(value) = range.get_value(d.start).cloned() else {
            continue;
        };
        let c = d.start.1;
        if matches!(value, Data::Empty) || c < start.1 || c > end.1 {
            continue;
        }
        for r in (d.start.0 + 1).max(start.0)..=d.end.0.min(end.0) {
            if matches!(range.get_value((r, c)), Some(Data::Empty) | None) {
                range.set_value((r, c), value.clone());
                filled.insert((r, c));
            }
        }
    }
    (range, filled)
}

/// Most cells a sheet's value and formula ranges may span, whatever it holds: 2^26 (calamine
/// keeps a range dense, ~32 bytes a cell: 2 GiB).
const MAX_SHEET_CELLS: u64 = 1 << 26;
/// A sheet may span this many cells per cell holding a value or formula (and at least
/// [`MIN_SPAN_CHECKED`] in any case): the table's empty cells, not a stray cell far from it.
const SPAN_PER_USED_CELL: u64 = 16;
/// A span read whatever it holds: 2^23 cells (~256 MB at ~32 bytes a cell). Found by session
/// 16's second attack: a note at `H200000` beside a small table (1.6 M cells, ~50 MB) was
/// refused at the first floor, 2^20.
const MIN_SPAN_CHECKED: u64 = 1 << 23;

/// The column letters of a 0-based column (`0` → `A`, `16383` → `XFD`).
fn column_letters(mut c: u32) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (c % 26) as u8);
        if c < 26 {
            break;
        }
        c = c / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Whether the cells of sheet `sheet` of an xlsx workbook can be read as a dense range: the
/// span of the cells holding a value or a formula, against how many do. `Err` says where
/// the span ends. Found by session 16's attack: one stray cell at `XFD1048576` made calamine
/// allocate 512 GB for the sheet and the run abort with no outputs; a cell at `XFD2` beside
/// a table of 10,000 rows, 5 GB. The sheet is read twice (this pass streams it).
/// Other formats: an .xls sheet has at most 65,536 × 256 cells, read when the workbook
/// opens; an .ods sheet is not checked.
fn sheet_span_ok<RS: std::io::Read + std::io::Seek>(
    wb: &mut calamine::Sheets<RS>,
    sheet: &str,
    shown_name: &str,
) -> Result<(), String> {
    let calamine::Sheets::Xlsx(x) = wb else {
        return Ok(());
    };
    let Ok(mut cells) = x.worksheet_cells_reader(sheet) else {
        // (calamine says why when the range is read)
        return Ok(());
    };
    let (mut r0, mut r1, mut c0, mut c1, mut used) = (u32::MAX, 0u32, u32::MAX, 0u32, 0u64);
    while let Ok(Some(cell)) = cells.next_cell_with_formula() {
        let has_formula = cell.formula.as_deref().is_some_and(|f| !f.is_empty());
        if calamine::DataType::is_empty(&cell.value) && !has_formula {
            continue;
        }
        let (r, c) = cell.pos;
        (r0, r1, c0, c1) = (r0.min(r), r1.max(r), c0.min(c), c1.max(c));
        used += 1;
    }
    if used == 0 {
        return Ok(());
    }
    let span = u64::from(r1 - r0 + 1) * u64::from(c1 - c0 + 1);
    if span > MAX_SHEET_CELLS || span > (used * SPAN_PER_USED_CELL).max(MIN_SPAN_CHECKED) {
        return Err(format!(
            "sheet {shown_name}: its cells span {}{}:{}{} ({span} cells) while {used} hold a value or formula: a stray cell far outside the table? Reading it would take about {} MB; clear the cells outside the table (Ctrl+End shows the last one) and export again",
            column_letters(c0),
            r0 + 1,
            column_letters(c1),
            r1 + 1,
            (span * 32) >> 20
        ));
    }
    Ok(())
}

/// The first sheet of a workbook.
pub(super) fn prepare_workbook(
    ctx: &Ctx,
    mut notes: Vec<String>,
) -> Result<Prepared, ConnectorError> {
    let bytes = std::fs::read(ctx.path).map_err(|e| super::unreadable(ctx.path, e))?;
    // calamine detects xlsx/xlsm/xlsb/xls/ods from the bytes themselves.
    let mut wb = open_workbook_auto_from_rs(Cursor::new(bytes))
        .map_err(|e| super::unreadable(ctx.path, e))?;
    let sheets = wb.sheet_names();
    // the sheets' names as notes and errors show them: a sheet may be named after a person
    // or by an ID number ([`shown_sheet`])
    let shown: Vec<String> = sheets.iter().map(|s| shown_sheet(s)).collect();
    if let Some(first) = sheets.first() {
        sheet_span_ok(&mut wb, first, &shown[0]).map_err(|m| ctx.unreadable(m))?;
    }
    let range = wb
        .worksheet_range_at(0)
        .map(|r| r.map_err(|e| super::unreadable(ctx.path, e)));
    let range = range.ok_or_else(|| ctx.unreadable("the workbook has no sheet".into()))??;
    let row0 = u64::from(range.start().map_or(0, |(r, _)| r));
    let rows: Vec<&[Data]> = range.rows().collect();
    let line_of = |i: usize| row0 + i as u64 + 1;
    let blank = |r: &[Data]| {
        r.iter().all(|c| match c {
            Data::Empty => true,
            Data::String(s) => s.trim().is_empty(),
            _ => false,
        })
    };
    let firsts: Vec<(u64, Vec<String>)> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| !blank(r))
        .take(12)
        .map(|(i, r)| (i as u64, r.iter().map(cell_text).collect()))
        .collect();
    if firsts.is_empty() {
        return Err(ctx.unreadable("the first sheet is empty (no header row)".into()));
    }
    let pick = choose_header(ctx, &firsts);
    let (header_idx, header) = firsts[pick].clone();
    let header_idx = header_idx as usize;
    let header_line = line_of(header_idx);
    let mut mapping: Mapping = ctx.map_headers(&header);
    if let Some(e) = ctx
        .missing_error(&mapping, header_line)
        .or_else(|| ctx.ambiguous_error(&mapping, header_line))
    {
        return Err(e);
    }
    if header_idx > 0 {
        notes.push(format!(
            "sheet rows above the header (titles or data rows: see the notes); header at row {header_line}"
        ));
    }
    mapping_notes(&mapping, header_line, &mut notes);
    // (a data row above the header, read below as a row, declares no unit)
    let titles: Vec<(u64, Vec<String>)> = firsts[..pick]
        .iter()
        .filter(|(_, cells)| !data_row_above_header(cells, &mapping))
        .map(|(i, cells)| (line_of(*i as usize), cells.clone()))
        .collect();
    let header_row = (header_line, header.clone());
    match apply_declared_unit(&mut mapping, &titles, &header_row) {
        Ok(note) => notes.extend(note),
        Err(message) => return Err(ctx.unreadable(message)),
    }
    let header_norm: Vec<String> = header.iter().map(|h| norm(h)).collect();
    let names: Vec<&str> = mapping.cols.iter().map(|c| c.name.as_str()).collect();
    let mut sink = Sink::new(ctx.path, &names)?;
    let (mut repeated, mut blanks) = (Vec::new(), Vec::new());
    // the header the rows are read under: the first, until a different one in the table
    let mut switched: Option<Mapping> = None;
    let mut switch_notes: Vec<String> = Vec::new();
    let mut switched_at: Vec<u64> = Vec::new();
    let mut rejected: Vec<Rejected> = Vec::new();
    // the ID of the data row above (a per-person subtotal repeats it: [`subtotal_cell`])
    let mut last_id: Option<String> = None;
    let mut changes = Changes::default();
    let mut normalised: Vec<Normalised> = Vec::new();
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    let hwidth = header_norm
        .iter()
        .rposition(|t| !t.is_empty())
        .map_or(0, |p| p + 1);
    // Whether a row repeats a header (`norm`ed words, `width` of them; the first cell is
    // compared first: cheap).
    fn same_header(row: &[Data], header: &[String], width: usize) -> bool {
        let first = row.first().map(|c| norm(&cell_text(c))).unwrap_or_default();
        if header.first().is_none_or(|h| *h != first) {
            return false;
        }
        let texts: Vec<String> = row.iter().map(|c| norm(&cell_text(c))).collect();
        let w = texts
            .iter()
            .rposition(|t| !t.is_empty())
            .map_or(0, |p| p + 1);
        w == width && texts[..w] == header[..width]
    }
    let repeats_header = |row: &[Data]| same_header(row, &header_norm, hwidth);
    // the words of the header the rows are read under (a second header in the table replaces
    // the first: found by the session-15 attack, a return to the first header after a second
    // one was skipped as a repeat and the rows after it read under the second)
    let (mut cur_norm, mut cur_width) = (header_norm.clone(), hwidth);
    // Export tools split a table longer than a sheet (1,048,576 rows) over several sheets,
    // each starting with the same header: every sheet whose first row repeats the first
    // sheet's header is read as a continuation; any other sheet with data is an error.
    let mut first = Some((range, header_idx + 1));
    let mut continued: Vec<String> = Vec::new();
    // the last sheet row of the sheet read before (a continuation starts only after a full one)
    let mut last_sheet_end: u64 = 0;
    for si in 0..sheets.len() {
        let (range, start) = match first.take() {
            Some(f) => f,
            None => {
                sheet_span_ok(&mut wb, &sheets[si], &shown[si]).map_err(|m| ctx.unreadable(m))?;
                let r = wb
                    .worksheet_range_at(si)
                    .ok_or_else(|| ctx.unreadable(format!("sheet {} cannot be opened", si + 1)))?
                    .map_err(|e| super::unreadable(ctx.path, e))?;
                (r, usize::MAX)
            }
        };
        let sheet_name = &sheets[si];
        let shown_name = &shown[si];
        let (range, merged) = fill_merged(&mut wb, sheet_name, range);
        let row0 = u64::from(range.start().map_or(0, |(r, _)| r));
        let col0 = range.start().map_or(0, |(_, c)| c);
        let line_of = |i: usize| row0 + i as u64 + 1;
        let rows: Vec<&[Data]> = range.rows().collect();
        // The sheet's formulas, read when a mapped cell is empty or 0 (reading them parses the
        // sheet again). Found by the session-14 attack: a formula saved without
        // its result (as openpyxl and many export tools write it) read as an empty cell, and
        // an empty amount as 0: households turned eligible on securities nobody read.
        let mut formulas: Option<Option<calamine::Range<String>>> = None;
        // The sheet's cell styles, read at the first number cell of an amount column (a
        // third parse of the sheet); an .xls or .ods workbook has none here.
        let mut styles: Option<Option<calamine::StyleRange>> = None;
        // A hidden sheet: found by session 16's attack, a hidden `上月备份` (last month's
        // copy) with the table's header was read as the table continuing, and its accounts
        // counted again. A hidden sheet with the header is refused (a copy and a continuation
        // cannot be told apart); any other hidden sheet (a template's lists) is not read, noted.
        let hidden = wb
            .sheets_metadata()
            .get(si)
            .is_some_and(|m| m.visible != calamine::SheetVisible::Visible);
        let start = if start != usize::MAX {
            start
        } else {
            match rows.iter().position(|r| !blank(r)) {
                None => {
                    notes.push(format!("sheet {} ({shown_name}) is empty: skipped", si + 1));
                    continue;
                }
                Some(p) if hidden && repeats_header(rows[p]) => {
                    return Err(ctx.unreadable(format!(
                        "sheet {} ({shown_name}) is hidden and repeats the header of sheet 1 ({}): a hidden copy (last month's?) and a continuation of the table cannot be told apart; unhide it, then delete it or keep it visible, and export again",
                        si + 1,
                        shown[0]
                    )));
                }
                Some(_) if hidden => {
                    notes.push(format!(
                        "sheet {} ({shown_name}) is hidden and holds no table of this file: not read",
                        si + 1
                    ));
                    continue;
                }
                Some(_)
                    if repeats_header(rows[rows.iter().position(|r| !blank(r)).unwrap_or(0)])
                        && last_sheet_end < continued_after_row(&wb) =>
                {
                    // Found by session 16's second attack: a visible `上月备份` (last month's
                    // copy) after a sheet of 9,795 rows was read as the table continuing, and
                    // every deposit counted twice. An export splits a table only at a sheet's
                    // end.
                    return Err(ctx.unreadable(format!(
                        "sheet {} ({shown_name}) repeats the header of sheet 1 ({}), but the sheet before it ends at sheet row {last_sheet_end}, far from a sheet's last row: a copy (last month's?) or a second table cannot be told from a continuation; delete it or move it to a file of its own",
                        si + 1,
                        shown[0]
                    )));
                }
                Some(p) if repeats_header(rows[p]) => {
                    // (read under the first header again, whatever the sheet before ended in)
                    switched = None;
                    (cur_norm, cur_width) = (header_norm.clone(), hwidth);
                    continued.push(format!(
                        "sheet {} ({shown_name}) from data row {} (its header at sheet row {})",
                        si + 1,
                        sink.rows(),
                        line_of(p)
                    ));
                    p + 1
                }
                Some(p) => {
                    return Err(ctx.unreadable(format!(
                        "sheet {} ({shown_name}) holds other data: its first row (sheet row {}) is not the header of sheet 1 ({}); a workbook is read as one table, continued over sheets that repeat the header: move the other table to a file of its own",
                        si + 1,
                        line_of(p),
                        shown[0]
                    )));
                }
            }
        };
        let sheet_tag = |m: String| {
            if si == 0 {
                m
            } else {
                format!("sheet {} ({shown_name}), {m}", si + 1)
            }
        };
        last_sheet_end = row0 + rows.len() as u64;
        // the first sheet's rows above the header: a title is skipped, a data row read as a
        // row of the table (`data_row_above_header`; session 25's attacks: such a row was
        // skipped as a title)
        let mut above: Vec<usize> = Vec::new();
        if si == 0 {
            for (i, row) in rows.iter().enumerate().take(start.saturating_sub(1)) {
                if blank(row) {
                    continue;
                }
                let texts: Vec<String> = row.iter().map(cell_text).collect();
                if data_row_above_header(&texts, &mapping) {
                    above.push(i);
                }
            }
            if !above.is_empty() {
                let lines: Vec<u64> = above.iter().map(|&i| line_of(i)).collect();
                notes.push(format!(
                    "data rows above the header (row {header_line}) read as rows of the table (rows sorted above it?): sheet rows {}",
                    lines_list(&lines)
                ));
            }
        }
        for (i, row) in above
            .iter()
            .copied()
            .chain(start..rows.len())
            .map(|i| (i, &rows[i]))
        {
            let line = line_of(i);
            let active = switched.as_ref().unwrap_or(&mapping);
            if blank(row) {
                // (a row of formulas saved without results reads as blank: found by the
                // session-14 attack, a member's deposit row skipped as an empty line)
                let has_formula = active.cols.iter().any(|c| {
                    formula_at(
                        &mut formulas,
                        &mut wb,
                        sheet_name,
                        (row0 as u32 + i as u32, col0 + c.src as u32),
                    )
                });
                if !has_formula {
                    blanks.push(line);
                    continue;
                }
                rejected.push(
                    Issue {
                        reason: "spreadsheet_formula_no_value",
                        message: sheet_tag(
                            "every cell of the row holds a formula saved without its result (the workbook was written by a program that does not compute formulas): its values are unknown; open and save the file in a spreadsheet program, or export the values".into(),
                        ),
                    }
                    .at(line, "", ""),
                );
                continue;
            }
            if same_header(row, &cur_norm, cur_width) {
                repeated.push(line);
                continue;
            }
            // a header in other words, units or order ([`header_again`]): only a row whose ID
            // cells do not hold what a key holds is looked at
            let not_key =
                |c: &MappedColumn| !key_like(&row.get(c.src).map(cell_text).unwrap_or_default());
            if active
                .cols
                .iter()
                .any(|c| matches!(c.name.as_str(), "id_number" | "household_id"))
                && active
                    .cols
                    .iter()
                    .filter(|c| matches!(c.name.as_str(), "id_number" | "household_id"))
                    .all(not_key)
            {
                let texts: Vec<String> = row.iter().map(cell_text).collect();
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                let words = |texts: &[String]| -> (Vec<String>, usize) {
                    let n: Vec<String> = texts.iter().map(|t| norm(t)).collect();
                    let w = n.iter().rposition(|t| !t.is_empty()).map_or(0, |p| p + 1);
                    (n, w)
                };
                match header_again(ctx, active, &refs) {
                    Some(HeaderAgain::Same) => {
                        repeated.push(line);
                        (cur_norm, cur_width) = words(&texts);
                        continue;
                    }
                    Some(HeaderAgain::Switch(next)) => {
                        switch_notes.push(sheet_tag(header_switch_note(
                            &format!("sheet row {line}"),
                            active,
                            &next,
                        )));
                        switch_notes.extend(switched_mapping_notes(&next, line, texts.len()));
                        repeated.push(line);
                        switched_at.push(line);
                        (cur_norm, cur_width) = words(&texts);
                        switched = Some(next);
                        continue;
                    }
                    Some(HeaderAgain::Title(what)) => {
                        switch_notes.push(sheet_tag(format!(
                            "sheet row {line}: a title row {what}: skipped"
                        )));
                        repeated.push(line);
                        switched_at.push(line);
                        continue;
                    }
                    Some(HeaderAgain::Unreadable(lacks)) => {
                        return Err(ctx.unreadable(sheet_tag(header_unreadable_message(
                            &format!("sheet row {line}"),
                            &lacks,
                        ))));
                    }
                    None => {}
                }
            }
            let texts: Vec<Option<&str>> = row
                .iter()
                .map(|c| match c {
                    Data::String(v) => Some(v.as_str()),
                    _ => None,
                })
                .collect();
            let id_now = active
                .cols
                .iter()
                .find(|c| c.name == "id_number")
                .and_then(|c| row.get(c.src))
                .map(cell_text);
            let prev_id = std::mem::replace(&mut last_id, id_now);
            let subtotal = if texts.iter().flatten().any(|t| maybe_total(t.as_bytes())) {
                subtotal_cell(&texts, &active.cols, prev_id.as_deref())
            } else {
                None
            };
            if let Some(i) = subtotal {
                let (name, header) = active.cols.iter().find(|c| c.src == i).map_or_else(
                    || (String::new(), format!("column {}", i + 1)),
                    |c| (c.name.clone(), c.header.clone()),
                );
                let mut r = subtotal_row(line, &name, &header, texts[i].unwrap_or(""));
                r.message = sheet_tag(r.message);
                rejected.push(r);
                continue;
            }
            out.clear();
            let mut bad = None;
            let kept = normalised.len();
            // a refused row's own keys, as the sheet holds them (the quarantine names them)
            let key_of = |field: &str| {
                active
                    .cols
                    .iter()
                    .find(|c| c.name == field)
                    .and_then(|h| row.get(h.src))
                    .map(|v| cell_text(v).trim().to_string())
                    .filter(|v| !v.is_empty())
            };
            for c in &active.cols {
                // Two headers of one field (`balance` and `余额`): their values must agree.
                let (src, unit) = if c.also.is_empty() {
                    (c.src, c.unit)
                } else {
                    let texts: Vec<String> = row.iter().map(cell_text).collect();
                    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                    match pick_source(c, &refs, line) {
                        Ok(src) if src == c.src => (src, c.unit),
                        Ok(src) => (
                            src,
                            c.also.iter().find(|a| a.src == src).and_then(|a| a.unit),
                        ),
                        Err(mut r) => {
                            (r.household_id, r.id_number) =
                                (key_of("household_id"), key_of("id_number"));
                            bad = Some(r);
                            break;
                        }
                    }
                };
                let cell = row.get(src).unwrap_or(&Data::Empty);
                // (a formula's saved result missing, or 0: XlsxWriter and its ports store 0
                // and leave the computing to the spreadsheet that opens the file)
                let unsaved = match cell {
                    Data::Empty => true,
                    Data::Float(f) => *f == 0.0,
                    Data::Int(n) => *n == 0,
                    Data::String(t) => {
                        let t = t.trim();
                        t.is_empty() || t.parse::<f64>().is_ok_and(|v| v == 0.0)
                    }
                    _ => false,
                };
                if unsaved {
                    let at = (row0 as u32 + i as u32, col0 + src as u32);
                    if formula_at(&mut formulas, &mut wb, sheet_name, at) {
                        let mut r = Issue {
                            reason: "spreadsheet_formula_no_value",
                            message: "the cell holds a formula saved without its result, or with 0 in its place (the workbook was written by a program that does not compute formulas): its value is unknown; open and save the file in a spreadsheet program, or export the values".into(),
                        }
                        .at(line, &c.name, "");
                        (r.household_id, r.id_number) =
                            (key_of("household_id"), key_of("id_number"));
                        bad = Some(r);
                        break;
                    }
                }
                // the cell's number format may show a unit ([`format_unit`]; xlsx only)
                let mut format_change: Change = None;
                let unit = match (cell, c.kind) {
                    (Data::Int(_) | Data::Float(_), ValueKind::Money) => {
                        let v = match cell {
                            Data::Int(n) => *n as f64,
                            Data::Float(f) => *f,
                            _ => unreachable!("matched above"),
                        };
                        let at = (row0 as u32 + i as u32, col0 + src as u32);
                        let code = styles
                            .get_or_insert_with(|| wb.worksheet_style(sheet_name).ok())
                            .as_ref()
                            .and_then(|s| s.get(at))
                            .and_then(|s| s.number_format.as_ref())
                            .map(|f| f.format_code.clone());
                        match format_cell_unit(code.as_deref(), v, unit) {
                            Ok((u, change)) => {
                                if change.is_some() {
                                    changes.add(format!(
                                        "column `{}`: number cells whose number format shows 万 read by it",
                                        c.name
                                    ));
                                }
                                format_change = change;
                                u
                            }
                            Err(issue) => {
                                let mut r = issue.at(line, &c.name, &cell_text(cell));
                                (r.household_id, r.id_number) =
                                    (key_of("household_id"), key_of("id_number"));
                                bad = Some(r);
                                break;
                            }
                        }
                    }
                    _ => unit,
                };
                match convert(cell, c.kind, unit, &mut changes, &c.name) {
                    Ok((v, change)) => {
                        if merged.contains(&(row0 as u32 + i as u32, col0 + src as u32)) {
                            normalised.push(Normalised {
                                line,
                                row: sink.rows(),
                                column: c.name.clone(),
                                kind: "spreadsheet_merged_cell".into(),
                                detail: "a cell merged with the one above it: the merged cell's value read for this row, as the sheet shows it".into(),
                            });
                        }
                        if let Some((kind, detail)) = format_change.into_iter().chain(change).next()
                        {
                            normalised.push(Normalised {
                                line,
                                row: sink.rows(),
                                column: c.name.clone(),
                                kind: kind.into(),
                                detail,
                            });
                        }
                        out.push(v)
                    }
                    Err((issue, raw)) => {
                        let mut r = issue.at(line, &c.name, &raw);
                        (r.household_id, r.id_number) =
                            (key_of("household_id"), key_of("id_number"));
                        bad = Some(r);
                        break;
                    }
                }
            }
            match bad {
                Some(mut r) => {
                    normalised.truncate(kept);
                    r.message = sheet_tag(r.message);
                    rejected.push(r);
                }
                None => sink.row(line, &out)?,
            }
        }
    }
    if !continued.is_empty() {
        notes.push(format!(
            "workbook: the table continues over {} sheets with the same header: {}; lines are sheet rows of each sheet",
            continued.len() + 1,
            continued.join("; ")
        ));
    }
    let (dir, path, lines) = sink.finish()?;
    let repeats = repeats_only(&repeated, &switched_at);
    if !repeats.is_empty() {
        notes.push(format!(
            "repeated header rows skipped at sheet rows {}",
            lines_list(&repeats)
        ));
    }
    notes.append(&mut switch_notes);
    if !blanks.is_empty() {
        notes.push(format!("empty sheet rows skipped: {}", lines_list(&blanks)));
    }
    if !rejected.is_empty() {
        notes.push(format!(
            "{} row(s) refused while reading (see rejected)",
            rejected.len()
        ));
    }
    changes.into_notes(&mut notes);
    Ok(Prepared {
        path,
        source: ctx.path.to_path_buf(),
        format: FileFormat::Workbook,
        encoding: "binary".into(),
        delimiter: None,
        header_line,
        header_map: mapping.header_map,
        repeated_headers: repeated,
        line_of_row: Some(lines),
        rejected,
        normalised,
        notes,
        _temp: Some(dir),
        stamp: None,
    })
}
