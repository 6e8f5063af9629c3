//! Delimited text (CSV, TSV, Excel's "Unicode text", `.txt`): encoding, delimiter,
//! header, repeated headers, then either a streaming check that the file can be scanned as
//! is, or a streaming rewrite into canonical UTF-8 CSV.
//!
//! Encoding (never lossy): a BOM decides; else a declared encoding; else NUL bytes mean
//! UTF-16 without BOM (by the side the NULs are on), or a binary file when they are many
//! but not UTF-16's; a few stray NULs (a damaged export) are not the file's encoding: each
//! row holding one is refused (`nul_byte`) and the rest read. Else the file is tried as UTF-8 and, at
//! the first invalid sequence, read again with the GB18030 decoder, which must meet no
//! malformed sequence. Decoders run without replacement: a malformed sequence is an error
//! naming its byte offset.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};

use encoding_rs::{DecoderResult, Encoding, GB18030, UTF_16BE, UTF_16LE};

use super::fieldmap::{Mapping, ValueKind, norm};
use super::{
    Changes, Ctx, HeaderAgain, Normalised, Prepared, Rejected, Sink, apply_declared_unit,
    choose_header, data_row_above_header, header_again, header_switch_note,
    header_unreadable_message, key_like, lines_list, mapping_notes, maybe_total, money_change,
    money_text, person_total_marker, pick_source, repeats_only, subtotal_cell, subtotal_row,
    switched_mapping_notes,
};
use crate::ConnectorError;
use crate::file::FileFormat;
use crate::read::TextEncoding;

/// How much decoded text is read to detect the delimiter and the header.
const SNIFF_BYTES: usize = 256 * 1024;

/// Why an attempt at reading stopped.
pub(super) enum Stop {
    /// A byte sequence that is not UTF-8 (reading as UTF-8).
    NotUtf8,
    /// The decoder met a malformed sequence at this byte offset.
    Malformed(u64),
    /// The file is not canonical: read it again, writing the canonical copy.
    Rewrite,
    /// Any other failure.
    Fail(ConnectorError),
}

impl From<ConnectorError> for Stop {
    fn from(e: ConnectorError) -> Stop {
        Stop::Fail(e)
    }
}

/// A malformed sequence found by [`DecodeReader`], carried inside an `io::Error`.
#[derive(Debug)]
struct MalformedAt(u64);

impl std::fmt::Display for MalformedAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed byte sequence at offset {}", self.0)
    }
}

impl std::error::Error for MalformedAt {}

/// A reader that decodes to UTF-8 without replacement.
struct DecodeReader<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    inbuf: Vec<u8>,
    in_pos: usize,
    in_end: usize,
    out: Vec<u8>,
    out_pos: usize,
    out_end: usize,
    eof: bool,
    done: bool,
    consumed: u64,
}

impl<R: Read> DecodeReader<R> {
    fn new(inner: R, encoding: &'static Encoding, offset: u64) -> Self {
        DecodeReader {
            inner,
            decoder: encoding.new_decoder_without_bom_handling(),
            inbuf: vec![0; 64 * 1024],
            in_pos: 0,
            in_end: 0,
            out: vec![0; 3 * 64 * 1024 + 16],
            out_pos: 0,
            out_end: 0,
            eof: false,
            done: false,
            consumed: offset,
        }
    }
}

impl<R: Read> Read for DecodeReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.out_pos < self.out_end {
                let n = buf.len().min(self.out_end - self.out_pos);
                buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
                self.out_pos += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            if self.in_pos == self.in_end && !self.eof {
                let n = self.inner.read(&mut self.inbuf)?;
                self.in_pos = 0;
                self.in_end = n;
                self.eof = n == 0;
            }
            let (res, read, written) = self.decoder.decode_to_utf8_without_replacement(
                &self.inbuf[self.in_pos..self.in_end],
                &mut self.out,
                self.eof,
            );
            self.in_pos += read;
            self.consumed += read as u64;
            self.out_pos = 0;
            self.out_end = written;
            match res {
                DecoderResult::InputEmpty => {
                    if self.eof {
                        self.done = true;
                    }
                }
                DecoderResult::OutputFull => {}
                DecoderResult::Malformed(bad, extra) => {
                    let at = self
                        .consumed
                        .saturating_sub(u64::from(bad) + u64::from(extra));
                    return Err(io::Error::new(io::ErrorKind::InvalidData, MalformedAt(at)));
                }
            }
        }
    }
}

/// The encoding chosen for a text file and how.
#[derive(Debug, Clone, Copy)]
pub(super) struct Chosen {
    pub encoding: TextEncoding,
    /// Length of the BOM skipped (0 without).
    pub bom: u64,
    /// Undeclared, no BOM, tried as UTF-8: may fall back to GB18030.
    pub may_fall_back: bool,
}

/// Choose the encoding from the BOM, the declaration and the first bytes.
pub(super) fn choose_encoding(
    ctx: &Ctx,
    notes: &mut Vec<String>,
) -> Result<Chosen, ConnectorError> {
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    File::open(ctx.path)
        .and_then(|f| f.take(SNIFF_BYTES as u64).read_to_end(&mut head))
        .map_err(|e| super::unreadable(ctx.path, e))?;
    if head.starts_with(&[0xFF, 0xFE, 0, 0]) || head.starts_with(&[0, 0, 0xFE, 0xFF]) {
        return Err(ctx.unreadable(
            "UTF-32 file (by its BOM): save it again as UTF-8 or as Excel's Unicode text (UTF-16)"
                .into(),
        ));
    }
    let bom = if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        Some((TextEncoding::Utf8, 3))
    } else if head.starts_with(&[0xFF, 0xFE]) {
        Some((TextEncoding::Utf16Le, 2))
    } else if head.starts_with(&[0xFE, 0xFF]) {
        Some((TextEncoding::Utf16Be, 2))
    } else {
        None
    };
    let declared = ctx.map.and_then(|m| m.encoding());
    Ok(match (bom, declared) {
        (Some((b, len)), Some(d)) => {
            if b != d {
                notes.push(format!(
                    "encoding declared {} but the file starts with a {} BOM: read as {}",
                    d.label(),
                    b.label(),
                    b.label()
                ));
            }
            Chosen {
                encoding: b,
                bom: len,
                may_fall_back: false,
            }
        }
        (Some((b, len)), None) => {
            notes.push(format!("encoding {} (by its BOM)", b.label()));
            Chosen {
                encoding: b,
                bom: len,
                may_fall_back: false,
            }
        }
        (None, Some(d)) => {
            notes.push(format!(
                "encoding {} (declared in the field map)",
                d.label()
            ));
            Chosen {
                encoding: d,
                bom: 0,
                may_fall_back: false,
            }
        }
        (None, None) => {
            let zeros_even = head.iter().step_by(2).filter(|b| **b == 0).count();
            let zeros_odd = head.iter().skip(1).step_by(2).filter(|b| **b == 0).count();
            let zeros = zeros_even + zeros_odd;
            let half = head.len() / 2;
            let utf16 = (zeros_odd > zeros_even && zeros_odd * 4 >= half)
                || (zeros_even > zeros_odd && zeros_even * 4 >= half);
            if zeros > 0 && !utf16 && is_stray_nuls(zeros, head.len()) {
                // A few NULs in text (a damaged export): not UTF-16, not binary. The file is
                // read; each row holding a NUL is refused by the rewrite (`nul_byte`).
                notes.push(format!(
                    "{zeros} NUL byte(s) in the first {} bytes: too few for UTF-16 or a binary file; each row holding one is refused",
                    head.len()
                ));
                Chosen {
                    encoding: TextEncoding::Utf8,
                    bom: 0,
                    may_fall_back: true,
                }
            } else if zeros > 0 {
                let enc = if zeros_odd > zeros_even && zeros_odd * 4 >= half {
                    TextEncoding::Utf16Le
                } else if zeros_even > zeros_odd && zeros_even * 4 >= half {
                    TextEncoding::Utf16Be
                } else {
                    return Err(ctx.unreadable(
                        "the file holds NUL bytes but is not UTF-16 text: a binary file, not a text export".into(),
                    ));
                };
                notes.push(format!(
                    "encoding {} (no BOM; detected by its NUL bytes)",
                    enc.label()
                ));
                Chosen {
                    encoding: enc,
                    bom: 0,
                    may_fall_back: false,
                }
            } else {
                Chosen {
                    encoding: TextEncoding::Utf8,
                    bom: 0,
                    may_fall_back: true,
                }
            }
        }
    })
}

/// Whether `zeros` NUL bytes among the first `len` bytes of a file without BOM are stray
/// ones in text (a damaged export: at most 8, or under 1 byte in 100) rather than the mark
/// of a binary file. UTF-16 text (a NUL in every other byte for ASCII, and delimiters and
/// digits in every row of a CSV) is decided before, by the side the NULs are on.
fn is_stray_nuls(zeros: usize, len: usize) -> bool {
    zeros <= 8 || zeros * 100 < len
}

/// The file's text as UTF-8 bytes, BOM skipped. UTF-8 is passed through raw (validated by
/// the caller); other encodings are decoded without replacement.
pub(super) fn open_decoded(ctx: &Ctx, chosen: Chosen) -> Result<Box<dyn Read>, ConnectorError> {
    let mut f = File::open(ctx.path).map_err(|e| super::unreadable(ctx.path, e))?;
    f.seek(SeekFrom::Start(chosen.bom))
        .map_err(|e| super::unreadable(ctx.path, e))?;
    let f = BufReader::with_capacity(1 << 20, f);
    Ok(match chosen.encoding {
        TextEncoding::Utf8 => Box::new(f),
        TextEncoding::Gb18030 => Box::new(DecodeReader::new(f, GB18030, chosen.bom)),
        TextEncoding::Utf16Le => Box::new(DecodeReader::new(f, UTF_16LE, chosen.bom)),
        TextEncoding::Utf16Be => Box::new(DecodeReader::new(f, UTF_16BE, chosen.bom)),
    })
}

/// Map an I/O error from a decoded stream.
pub(super) fn io_stop(ctx: &Ctx, e: io::Error) -> Stop {
    if let Some(m) = e.get_ref().and_then(|r| r.downcast_ref::<MalformedAt>()) {
        return Stop::Malformed(m.0);
    }
    Stop::Fail(super::unreadable(ctx.path, e))
}

/// The byte offset of the first sequence that is not UTF-8, from `start`, and whether valid
/// UTF-8 CJK text (a character of 3+ bytes, see `has_wide_utf8`) comes before it.
pub(super) fn first_invalid_utf8(ctx: &Ctx, start: u64) -> Option<(u64, bool, bool)> {
    let mut f = File::open(ctx.path).ok()?;
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut buf = vec![0u8; 1 << 20];
    let mut carry = 0usize;
    let mut base = start;
    let mut non_ascii = false;
    loop {
        let n = f.read(&mut buf[carry..]).ok()?;
        let len = carry + n;
        if len == 0 {
            return None;
        }
        match std::str::from_utf8(&buf[..len]) {
            Ok(_) => {
                if n == 0 {
                    return None;
                }
                non_ascii |= has_wide_utf8(&buf[..len]);
                base += len as u64;
                carry = 0;
            }
            Err(e) => {
                let valid = e.valid_up_to();
                non_ascii |= has_wide_utf8(&buf[..valid]);
                if e.error_len().is_some() || n == 0 {
                    // n == 0 with no error length: the file ends inside a character.
                    let cut = e.error_len().is_none();
                    return Some((base + valid as u64, non_ascii && !cut, cut));
                }
                // An incomplete sequence at the end of the buffer: carry it over.
                buf.copy_within(valid..len, 0);
                base += valid as u64;
                carry = len - valid;
            }
        }
    }
}

/// Lines in a row that read as UTF-8 Chinese ([`utf8_chinese_run`]) before a file decoded as
/// GB18030 is taken for two encodings.
const UTF8_RUN: usize = 3;

/// In a file read as GB18030 from byte offset `start`: the byte offset of the first of
/// [`UTF8_RUN`] lines in a row (lines of ASCII only between them do not count either way)
/// that are valid UTF-8 with at least two three-byte characters (CJK) each: UTF-8 text after
/// GBK text, two exports concatenated. Decoded as GB18030 those lines' Chinese becomes other
/// characters without any malformed sequence.
///
/// One such line alone is not taken for UTF-8: a three-character GBK name reads as valid
/// UTF-8 with two three-byte characters about 3 times in 100,000 lines (lead bytes E4-E9 and
/// 80-BF where GB2312 puts them), so a large GBK extract has some; three in a row, about
/// 10^-14 per line. (Found by session 10's README trial: a GBK file with UTF-8 lines appended
/// was read without a word, its names garbled.) `None` also when the file cannot be read
/// again.
pub(super) fn utf8_chinese_run(ctx: &Ctx, start: u64) -> Option<u64> {
    use std::io::BufRead;
    let mut f = File::open(ctx.path).ok()?;
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut r = std::io::BufReader::with_capacity(1 << 20, f);
    let mut line = Vec::new();
    let (mut at, mut run, mut run_start) = (start, 0usize, start);
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line).ok()?;
        if n == 0 {
            return None;
        }
        if !line.is_ascii() {
            let wide = line.iter().filter(|b| (0xE0..=0xEF).contains(*b)).count();
            if wide >= 2 && std::str::from_utf8(&line).is_ok() {
                if run == 0 {
                    run_start = at;
                }
                run += 1;
                if run >= UTF8_RUN {
                    return Some(run_start);
                }
            } else {
                run = 0;
            }
        }
        at += n as u64;
    }
}

/// The message for UTF-8 text that ends inside a character at byte offset `off`: a file cut
/// off in transfer or export (found by the s7 attack, which was told "mixes encodings …
/// GBK/GB18030?" for it). Never decoded lossily; the whole file is refused, since its last
/// row, and perhaps more, is missing.
fn cut_off(off: u64) -> String {
    format!(
        "the file ends inside a UTF-8 character (byte offset {off}): it was cut off (an interrupted copy or export?); rows after it are missing, so the file is not read; fetch it again"
    )
}

/// Whether a file that is not UTF-8 is Big5 (Traditional Chinese, Taiwan and Hong Kong
/// exports) rather than GBK/GB18030: most Big5 byte pairs are valid GBK too, so it would
/// decode "without a malformed sequence" into other characters. What tells them apart is the
/// first byte: Big5 writes its commonest characters (the fewest strokes: 一 人 王 李 吳 文 …)
/// with first bytes 0xA4-0xA7, where GBK has kana, Greek and Cyrillic letters, which Chinese
/// department text does not hold (GBK's traditional and rare characters, 黃 玥 赟 昇, lie
/// elsewhere). Checked on the first 8 MiB: at least 20 two-byte characters, at least 3 and 5 %
/// of them with a first byte 0xA4-0xA7, and none malformed as Big5. Found by session 16's
/// attacks: a Big5 extract read as `沉縩跋㏄方き…` with no note; two first checks (private-use
/// characters, then second bytes below 0xA1) refused GBK files whose names held rare or
/// traditional characters.
fn looks_big5(ctx: &Ctx, start: u64) -> bool {
    let Ok(mut f) = File::open(ctx.path) else {
        return false;
    };
    if f.seek(SeekFrom::Start(start)).is_err() {
        return false;
    }
    let mut buf = Vec::new();
    if f.take(8 << 20).read_to_end(&mut buf).is_err() {
        return false;
    }
    let (mut pairs, mut common, mut i) = (0u64, 0u64, 0usize);
    while i + 1 < buf.len() {
        let b = buf[i];
        if b < 0x81 || b == 0xFF {
            i += 1;
            continue;
        }
        if buf[i + 1].is_ascii_digit() {
            // a GB18030 four-byte sequence: no Big5
            return false;
        }
        pairs += 1;
        common += u64::from((0xA4..=0xA7).contains(&b));
        i += 2;
    }
    if pairs < 20 || common < 3 || common * 100 < pairs * 5 {
        return false;
    }
    // (a sample may end inside a pair: the last byte is left out)
    let sample = &buf[..buf.len().saturating_sub(1)];
    let (_, malformed) = encoding_rs::BIG5.decode_without_bom_handling(sample);
    !malformed
}

/// Whether valid UTF-8 holds a character of three or more bytes (U+0800 and up: CJK and
/// the rest). GBK text can pass for UTF-8 by accident only as two-byte sequences (魏 in GBK,
/// CE BA, reads as UTF-8 κ), never as a run of CJK characters; so only such characters
/// before the first invalid byte show a file that mixes UTF-8 Chinese with GBK. (Found on
/// the GBK re-encoding of gen.py's county, whose first name in vehicle_vessel is 魏.)
fn has_wide_utf8(valid: &[u8]) -> bool {
    valid.iter().any(|b| *b >= 0xE0)
}

/// Resolve the encoding and read the file; restarts on a non-canonical file (rewrite) or
/// a non-UTF-8 byte (GB18030). Shared by the text and JSON-lines readers.
pub(super) fn with_encoding(
    ctx: &Ctx,
    notes: &mut Vec<String>,
    mut attempt: impl FnMut(Chosen, bool, &mut Vec<String>) -> Result<Prepared, Stop>,
) -> Result<Prepared, ConnectorError> {
    let mut chosen = choose_encoding(ctx, notes)?;
    let mut check_first = true;
    let mut utf8_offset: Option<u64> = None;
    loop {
        let mut attempt_notes = Vec::new();
        match attempt(chosen, check_first, &mut attempt_notes) {
            Ok(mut p) => {
                if let Some(off) = utf8_offset
                    && let Some(back) = utf8_chinese_run(ctx, off)
                {
                    return Err(ctx.unreadable(format!(
                        "the file mixes encodings: GBK/GB18030 from byte offset {off} (not UTF-8 there), then lines of UTF-8 Chinese from byte offset {back}, which read as GBK would become other characters; two exports concatenated? Export them again in one encoding"
                    )));
                }
                if let Some(off) = utf8_offset {
                    notes.push(format!(
                        "encoding gb18030 (detected): not UTF-8 (first invalid byte sequence at byte offset {off}); decoded with the GB18030 decoder without a single malformed sequence"
                    ));
                } else if chosen.may_fall_back {
                    notes.push("encoding utf-8 (valid UTF-8, no BOM)".into());
                }
                notes.append(&mut attempt_notes);
                notes.append(&mut p.notes);
                p.notes = std::mem::take(notes);
                p.encoding = match (chosen.encoding, chosen.bom) {
                    (TextEncoding::Utf8, 3) => "utf-8-bom".into(),
                    (e, _) => e.label().into(),
                };
                return Ok(p);
            }
            Err(Stop::Rewrite) => check_first = false,
            Err(Stop::NotUtf8) if chosen.may_fall_back => {
                let (off, utf8_text_before, cut) =
                    first_invalid_utf8(ctx, chosen.bom).unwrap_or((0, false, false));
                if cut {
                    return Err(ctx.unreadable(cut_off(off)));
                }
                if utf8_text_before {
                    // Valid UTF-8 Chinese before the first bad byte: two encodings in one
                    // file. Decoding all of it as GB18030 would turn the UTF-8 part into
                    // other characters without any error, so refuse.
                    return Err(ctx.unreadable(format!(
                        "the file mixes encodings: UTF-8 text up to byte offset {off}, then a byte sequence that is not UTF-8 (GBK/GB18030?); two exports concatenated? Export them again in one encoding"
                    )));
                }
                // (before reading it as GB18030: a Big5 header would otherwise be refused as
                // unknown columns, quoting the garbled words)
                if looks_big5(ctx, chosen.bom) {
                    return Err(ctx.unreadable(
                        "the file is not UTF-8, and its two-byte characters are Big5's, not GBK's (5 % or more start with a byte 0xA4-0xA7, Big5's commonest characters and GBK's kana and Greek letters; read as Big5, none is malformed): a Big5 (Traditional Chinese) export? Read as GBK/GB18030 its text would be other characters, so the file is not read; export it again as UTF-8".into(),
                    ));
                }
                utf8_offset = Some(off);
                chosen = Chosen {
                    encoding: TextEncoding::Gb18030,
                    bom: 0,
                    may_fall_back: false,
                };
                check_first = false;
            }
            Err(Stop::NotUtf8) => {
                let (off, _, cut) =
                    first_invalid_utf8(ctx, chosen.bom).unwrap_or((0, false, false));
                if cut {
                    return Err(ctx.unreadable(cut_off(off)));
                }
                let why = if chosen.bom == 3 {
                    "starts with a UTF-8 BOM"
                } else {
                    "is declared UTF-8"
                };
                return Err(ctx.unreadable(format!(
                    "the file {why}, but the byte sequence at byte offset {off} is not UTF-8: part of it may be GBK/GB18030 (two exports concatenated?); export it again in one encoding{}",
                    if chosen.bom == 3 { "" } else { ", or declare encoding = \"gb18030\" in the field map" }
                )));
            }
            Err(Stop::Malformed(off)) => {
                let msg = match (utf8_offset, chosen.encoding) {
                    (Some(u), _) => format!(
                        "neither UTF-8 (first invalid byte sequence at byte offset {u}) nor GBK/GB18030 (malformed sequence at byte offset {off}): the file is damaged or in another encoding; export it again as UTF-8 or GBK/GB18030"
                    ),
                    (None, TextEncoding::Utf16Le | TextEncoding::Utf16Be) => format!(
                        "UTF-16 file ({}): malformed UTF-16 at byte offset {off} (an unpaired surrogate or a cut-off file); save it again as Unicode text or UTF-8 CSV",
                        chosen.encoding.label()
                    ),
                    (None, e) => format!(
                        "declared {}, but the byte sequence at byte offset {off} is malformed in it; check the declared encoding (UTF-8? GBK/GB18030?)",
                        e.label()
                    ),
                };
                return Err(ctx.unreadable(msg));
            }
            Err(Stop::Fail(e)) => return Err(e),
        }
    }
}

/// Read the decoded start of the file (for delimiter and header detection).
fn sniff(ctx: &Ctx, chosen: Chosen) -> Result<(String, bool), Stop> {
    let r = open_decoded(ctx, chosen)?;
    let mut bytes = Vec::with_capacity(SNIFF_BYTES);
    r.take(SNIFF_BYTES as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| io_stop(ctx, e))?;
    let complete = bytes.len() < SNIFF_BYTES;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let u = e.utf8_error();
            if u.error_len().is_some() {
                return Err(Stop::NotUtf8);
            }
            let mut b = e.into_bytes();
            b.truncate(u.valid_up_to());
            String::from_utf8(b).map_err(|_| Stop::NotUtf8)?
        }
    };
    let text = if complete {
        text
    } else {
        match text.rfind('\n') {
            Some(p) => text[..=p].to_string(),
            None => text,
        }
    };
    Ok((text, complete))
}

/// Reads delimited records (RFC 4180 quoting) from UTF-8 bytes, knowing the physical line
/// each record starts on. A quoted field may span lines; a line ends with LF or CRLF.
/// (The csv crate's record positions count skipped blank lines and the LF of a CRLF into
/// the next record, so lines are tracked here.)
pub(super) struct RecordReader<R> {
    r: R,
    delim: u8,
    line: u64,
    raw: Vec<u8>,
    data: Vec<u8>,
    ends: Vec<usize>,
    start_line: u64,
    lines_spanned: u64,
    /// A CR byte inside a field's data (not part of a CRLF terminator).
    cr: bool,
    /// A NUL byte inside a field's data.
    nul: bool,
    /// The file ended inside a quoted field (its quote was never closed).
    unclosed: bool,
    /// A `"` inside an unquoted value (`B00"18H`, `5"`) or after a closing quote: kept as
    /// a character here, which other CSV readers may not do.
    stray_quote: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Start,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

impl<R: BufRead> RecordReader<R> {
    pub fn new(r: R, delim: u8) -> Self {
        RecordReader {
            r,
            delim,
            line: 0,
            raw: Vec::with_capacity(1024),
            data: Vec::with_capacity(1024),
            ends: Vec::with_capacity(64),
            start_line: 0,
            lines_spanned: 0,
            cr: false,
            nul: false,
            unclosed: false,
            stray_quote: false,
        }
    }

    /// Read the next record; `false` at the end. The bytes of each physical line are
    /// validated as UTF-8 when `utf8` (a failure is [`Stop::NotUtf8`]).
    pub fn next(&mut self, ctx: &Ctx, utf8: bool) -> Result<bool, Stop> {
        self.data.clear();
        self.ends.clear();
        self.start_line = self.line + 1;
        self.lines_spanned = 0;
        self.cr = false;
        self.nul = false;
        self.unclosed = false;
        self.stray_quote = false;
        let mut state = Field::Start;
        loop {
            self.raw.clear();
            let n = self
                .r
                .read_until(b'\n', &mut self.raw)
                .map_err(|e| io_stop(ctx, e))?;
            if n == 0 {
                if self.lines_spanned == 0 {
                    return Ok(false);
                }
                // End of file inside a quoted field: the record ends here.
                self.unclosed = true;
                self.ends.push(self.data.len());
                return Ok(true);
            }
            self.line += 1;
            self.lines_spanned += 1;
            if utf8 && std::str::from_utf8(&self.raw).is_err() {
                return Err(Stop::NotUtf8);
            }
            let raw = &self.raw;
            let len = raw.len();
            // Where the line's terminator starts (LF or CRLF), for unquoted states.
            let term = if raw.ends_with(b"\r\n") {
                len - 2
            } else if raw.ends_with(b"\n") {
                len - 1
            } else {
                len
            };
            let mut i = 0;
            while i < len {
                let b = raw[i];
                match state {
                    Field::Quoted => {
                        if b == b'"' {
                            state = Field::QuoteInQuoted;
                        } else {
                            self.cr |= b == b'\r';
                            self.nul |= b == 0;
                            self.data.push(b);
                        }
                    }
                    _ if i >= term => {
                        // The record ends with this line.
                        self.ends.push(self.data.len());
                        return Ok(true);
                    }
                    Field::Start if b == b'"' => state = Field::Quoted,
                    Field::QuoteInQuoted if b == b'"' => {
                        self.data.push(b'"');
                        state = Field::Quoted;
                    }
                    _ if b == self.delim => {
                        self.ends.push(self.data.len());
                        state = Field::Start;
                    }
                    _ => {
                        self.cr |= b == b'\r';
                        self.nul |= b == 0;
                        self.stray_quote |= b == b'"' || state == Field::QuoteInQuoted;
                        self.data.push(b);
                        state = Field::Unquoted;
                    }
                }
                i += 1;
            }
            if state != Field::Quoted {
                // The last line of the file without a terminator.
                self.ends.push(self.data.len());
                return Ok(true);
            }
        }
    }

    /// The physical line the record starts on.
    pub fn start_line(&self) -> u64 {
        self.start_line
    }

    /// Whether the record spans more than one physical line.
    pub fn multiline(&self) -> bool {
        self.lines_spanned > 1
    }

    /// The physical line the record ends on.
    pub fn end_line(&self) -> u64 {
        self.start_line + self.lines_spanned.saturating_sub(1)
    }

    /// Whether the file ended inside this record's quoted field (a quote never closed).
    pub fn unclosed(&self) -> bool {
        self.unclosed
    }

    /// Whether a field holds a CR byte (a lone CR, which other CSV readers take for a line
    /// end, or a CR inside quotes).
    pub fn has_cr(&self) -> bool {
        self.cr
    }

    /// Whether a field holds a NUL byte (U+0000).
    pub fn has_nul(&self) -> bool {
        self.nul
    }

    /// Whether a `"` stands inside an unquoted value or right after a closing quote.
    pub fn has_stray_quote(&self) -> bool {
        self.stray_quote
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Field `i` as bytes.
    pub fn field(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.ends.get(i).map_or(&[][..], |&e| &self.data[start..e])
    }

    /// The fields as bytes.
    pub fn fields(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.ends.len()).map(|i| self.field(i))
    }
}

/// Count `d` outside double quotes in a line.
fn count_outside_quotes(line: &str, d: u8) -> usize {
    let mut quoted = false;
    let mut n = 0;
    for b in line.bytes() {
        if b == b'"' {
            quoted = !quoted;
        } else if b == d && !quoted {
            n += 1;
        }
    }
    n
}

/// Detect the delimiter among `,` TAB `;` `|` from the first lines: the one whose most
/// common non-zero count per line is shared by the most lines (then the higher count, then
/// that order).
pub(super) fn detect_delimiter(text: &str) -> Option<u8> {
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .take(30)
        .collect();
    let mut best: Option<(usize, usize, u8)> = None; // (lines at mode, mode, delimiter)
    for d in [b',', b'\t', b';', b'|'] {
        let mut counts: Vec<usize> = lines
            .iter()
            .map(|l| count_outside_quotes(l, d))
            .filter(|c| *c > 0)
            .collect();
        if counts.is_empty() {
            continue;
        }
        counts.sort_unstable();
        let (mut mode, mut freq) = (0, 0);
        let mut i = 0;
        while i < counts.len() {
            let j = counts[i..].iter().take_while(|c| **c == counts[i]).count();
            if j > freq || (j == freq && counts[i] > mode) {
                (mode, freq) = (counts[i], j);
            }
            i += j;
        }
        if best.is_none_or(|(f, m, _)| freq > f || (freq == f && mode > m)) {
            best = Some((freq, mode, d));
        }
    }
    best.map(|(_, _, d)| d)
}

/// Parse the first records of the sniffed text: (physical line, fields), blank ones skipped.
fn first_records(ctx: &Ctx, text: &str, delimiter: u8) -> Vec<(u64, Vec<String>)> {
    let mut rdr = RecordReader::new(text.as_bytes(), delimiter);
    let mut out = Vec::new();
    while out.len() < 12 {
        match rdr.next(ctx, false) {
            Ok(true) => {
                let fields: Vec<String> = rdr
                    .fields()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect();
                if fields.iter().all(|f| super::strip_bom(f).trim().is_empty()) {
                    continue;
                }
                out.push((rdr.start_line(), fields));
            }
            _ => break,
        }
    }
    out
}

/// Delimited text.
pub(super) fn prepare_text(ctx: &Ctx, notes: Vec<String>) -> Result<Prepared, ConnectorError> {
    let mut notes = notes;
    with_encoding(ctx, &mut notes, |chosen, check_first, notes| {
        attempt(ctx, chosen, check_first, notes)
    })
}

fn delimiter_name(d: u8) -> &'static str {
    match d {
        b',' => "comma",
        b'\t' => "TAB",
        b';' => "semicolon",
        b'|' => "vertical bar",
        _ => "?",
    }
}

/// One reading of the file with an encoding: sniff, map the header, then check or rewrite.
fn attempt(
    ctx: &Ctx,
    chosen: Chosen,
    check_first: bool,
    notes: &mut Vec<String>,
) -> Result<Prepared, Stop> {
    let (text, _) = sniff(ctx, chosen)?;
    // Every line ending in CR only (an old Mac export), the header's too: with no line feed
    // the header line would be the whole file, and the file was refused for "missing columns"
    // with its first line taken for data (the s12 trial). Said as it is, naming line 1. (A
    // header ending in LF above CR-only data lines is refused below, naming the first row.)
    if !text.contains('\n') && text.trim_end_matches('\r').contains('\r') {
        return Err(Stop::Fail(ConnectorError::Unreadable {
            path: ctx.path.display().to_string(),
            message: "line 1: carriage returns (CR) with no line feed: the lines end in CR only (an old Mac export?), so the header and every row would read as one line; the file is not read; save it with LF or CRLF line ends".into(),
        }));
    }
    let delimiter = match ctx.map.and_then(|m| m.delimiter()) {
        Some(d) => {
            notes.push(format!(
                "delimiter {} (declared in the field map)",
                delimiter_name(d as u8)
            ));
            d as u8
        }
        None => {
            let d = detect_delimiter(&text).unwrap_or(b',');
            if d != b',' {
                notes.push(format!("delimiter {} (detected)", delimiter_name(d)));
            }
            d
        }
    };
    let records = first_records(ctx, &text, delimiter);
    if records.is_empty() {
        return Err(Stop::Fail(
            ctx.unreadable("no header row: the file holds no text".into()),
        ));
    }
    let pick = choose_header(ctx, &records);
    let (header_line, header) = records[pick].clone();
    let mut mapping = ctx.map_headers(&header);
    if let Some(e) = ctx
        .missing_error(&mapping, header_line)
        .or_else(|| ctx.ambiguous_error(&mapping, header_line))
    {
        return Err(Stop::Fail(e));
    }
    if header_line > 1 {
        // (what each line was is in the notes that follow: the session 26 trial read "data
        // rows read" where there were none)
        notes.push(if header_line == 2 {
            "line 1 above the header (a title or a data row: see the notes); header at line 2"
                .to_string()
        } else {
            format!(
                "lines 1-{} above the header (titles or data rows: see the notes); header at line {header_line}",
                header_line - 1
            )
        });
    }
    mapping_notes(&mapping, header_line, notes);
    // (a data row above the header, read below as a row, declares no unit: session 25's attack,
    // a product cell `理财（万元）` in one scaled every balance of the file)
    let titles: Vec<(u64, Vec<String>)> = records[..pick]
        .iter()
        .filter(|(_, cells)| !data_row_above_header(cells, &mapping))
        .cloned()
        .collect();
    match apply_declared_unit(&mut mapping, &titles, &records[pick]) {
        Ok(note) => notes.extend(note),
        Err(message) => return Err(Stop::Fail(ctx.unreadable(message))),
    }
    let header_norm: Vec<String> = header.iter().map(|h| norm(h)).collect();
    let canonical = chosen.encoding == TextEncoding::Utf8
        && chosen.bom == 0
        && delimiter == b','
        && header_line == 1
        && mapping.is_canonical()
        && !header.first().is_some_and(|h| h.starts_with('\u{feff}'));
    let pass = Pass {
        ctx,
        chosen,
        delimiter,
        header_line,
        header_norm: &header_norm,
        mapping: &mapping,
    };
    if canonical && check_first {
        pass.check()?;
        return Ok(Prepared {
            path: ctx.path.to_path_buf(),
            source: ctx.path.to_path_buf(),
            format: FileFormat::Csv,
            encoding: String::new(),
            delimiter: Some(delimiter as char),
            header_line,
            header_map: mapping.header_map.clone(),
            repeated_headers: Vec::new(),
            line_of_row: None,
            rejected: Vec::new(),
            normalised: Vec::new(),
            notes: Vec::new(),
            _temp: None,
            stamp: None,
        });
    }
    pass.write()
}

struct Pass<'a> {
    ctx: &'a Ctx<'a>,
    chosen: Chosen,
    delimiter: u8,
    header_line: u64,
    header_norm: &'a [String],
    mapping: &'a Mapping,
}

impl Pass<'_> {
    fn reader(&self) -> Result<RecordReader<BufReader<Box<dyn Read>>>, Stop> {
        let r = open_decoded(self.ctx, self.chosen)?;
        Ok(RecordReader::new(
            BufReader::with_capacity(1 << 20, r),
            self.delimiter,
        ))
    }

    fn is_header_again<'f>(&self, fields: impl Iterator<Item = &'f str>) -> bool {
        let mut n = 0;
        for (i, f) in fields.enumerate() {
            if self.header_norm.get(i).is_none_or(|h| *h != norm(f)) {
                return false;
            }
            n += 1;
        }
        n == self.header_norm.len()
    }

    /// A streaming check that the file can be scanned as it is: UTF-8, one line per
    /// record, no blank line, no repeated header, every row as wide as the header, money
    /// without units. Any doubt → [`Stop::Rewrite`].
    fn check(&self) -> Result<(), Stop> {
        let mut rdr = self.reader()?;
        let utf8 = self.chosen.encoding == TextEncoding::Utf8;
        let width = self.header_norm.len();
        let money: Vec<usize> = self
            .mapping
            .cols
            .iter()
            .filter(|c| c.kind == ValueKind::Money)
            .map(|c| c.src)
            .collect();
        let first_byte = self.header_norm.first().and_then(|h| h.bytes().next());
        // the ID columns: a row whose ID cell is not [`key_like`] may be a header in other words
        // ([`header_again`]), which only the rewrite reads
        let keys: Vec<usize> = self
            .mapping
            .cols
            .iter()
            .filter(|c| matches!(c.name.as_str(), "id_number" | "household_id"))
            .map(|c| c.src)
            .collect();
        let mut expected_line = self.header_line + 1;
        let mut seen_header = false;
        while rdr.next(self.ctx, utf8)? {
            let line = rdr.start_line();
            // A NUL byte: the row is refused by the rewrite. Found by the s9 attack: a quote
            // inside an unquoted value (`B00"18H`, `29"彩电`) went to polars as it was, which
            // refused the whole file ("CSV malformed: expected 0 rows") naming no line, and
            // the source was unverified; the rewrite keeps the quote as a character.
            if rdr.has_nul() || rdr.has_stray_quote() {
                return Err(Stop::Rewrite);
            }
            if !seen_header {
                seen_header = true;
                if line != self.header_line || rdr.has_cr() {
                    return Err(Stop::Rewrite);
                }
                continue;
            }
            // A CR inside a field: polars and the csv crate may end the record there.
            if line != expected_line || rdr.len() != width || rdr.multiline() || rdr.has_cr() {
                return Err(Stop::Rewrite);
            }
            let f0 = rdr.field(0);
            if f0.starts_with(&[0xEF, 0xBB, 0xBF])
                || rdr.fields().all(|f| f.trim_ascii().is_empty())
            {
                return Err(Stop::Rewrite);
            }
            // A repeated header: its first field starts like the header's.
            if let (Some(fb), Some(&b0)) = (first_byte, f0.trim_ascii_start().first())
                && b0.to_ascii_lowercase() == fb
                && self.is_header_again(rdr.fields().map(|f| std::str::from_utf8(f).unwrap_or("")))
            {
                return Err(Stop::Rewrite);
            }
            if money.iter().any(|&i| !rdr.field(i).is_ascii())
                || keys
                    .iter()
                    .any(|&i| !key_like(std::str::from_utf8(rdr.field(i)).unwrap_or("")))
            {
                return Err(Stop::Rewrite);
            }
            // a subtotal or total row, in any column: the rewrite decides
            if rdr.fields().any(|f| {
                maybe_total(f) && person_total_marker(std::str::from_utf8(f).unwrap_or(""))
            }) {
                return Err(Stop::Rewrite);
            }
            expected_line += 1;
        }
        Ok(())
    }

    /// The `household_id` field of a row (caseload tables), when the row reaches it.
    fn household_id_of(mapping: &Mapping, fields: &[&str]) -> Option<String> {
        Self::column_of(mapping, fields, "household_id")
    }

    /// The trimmed, non-empty value of canonical column `name` in a row as split under
    /// `mapping` (a ragged row: the field at the header's position of that column, if the
    /// row reaches it).
    fn column_of(mapping: &Mapping, fields: &[&str], name: &str) -> Option<String> {
        let c = mapping.cols.iter().find(|c| c.name == name)?;
        fields
            .get(c.src)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// Stream the file into the canonical CSV.
    fn write(&self) -> Result<Prepared, Stop> {
        let ctx = self.ctx;
        let mut rdr = self.reader()?;
        let names: Vec<&str> = self.mapping.cols.iter().map(|c| c.name.as_str()).collect();
        let mut sink = Sink::new(ctx.path, &names)?;
        let mut width = self.header_norm.len();
        let utf8 = self.chosen.encoding == TextEncoding::Utf8;
        let mut rejected: Vec<Rejected> = Vec::new();
        // the ID of the data row above (a per-person subtotal repeats it: [`subtotal_cell`])
        let mut last_id = String::new();
        let (mut repeated, mut blank, mut preamble) = (Vec::new(), Vec::new(), Vec::new());
        // the data rows above the header, read as the table's ([`data_row_above_header`])
        let mut above: Vec<u64> = Vec::new();
        // the header the rows are read under: the first, until a different one inside the
        // table ([`header_again`])
        let mut switched: Option<Mapping> = None;
        let mut switch_notes: Vec<String> = Vec::new();
        // the words of the header the rows are read under ([`norm`]ed), and the lines of the
        // headers that changed it (skipped as header rows, noted apart from repeats)
        let mut cur_norm: Vec<String> = self.header_norm.to_vec();
        let mut switched_at: Vec<u64> = Vec::new();
        let mut boms = Vec::new();
        let mut changes = Changes::default();
        let mut normalised: Vec<Normalised> = Vec::new();
        let mut out: Vec<String> = Vec::with_capacity(names.len());
        while rdr.next(ctx, utf8)? {
            let line = rdr.start_line();
            let mut fields: Vec<&str> = Vec::with_capacity(rdr.len());
            for f in rdr.fields() {
                fields.push(std::str::from_utf8(f).map_err(|_| Stop::NotUtf8)?);
            }
            if line < self.header_line {
                if !data_row_above_header(&fields, self.mapping) {
                    preamble.push(line);
                    continue;
                }
                // a data row above the header (an export without a header joined before one
                // with it, a row sorted there): read as a row of the table, never skipped as a
                // title (session 25's attacks; refusing it lost a row whose ID needs the
                // error-tolerant linkage)
                above.push(line);
            }
            if line == self.header_line {
                continue;
            }
            let f0 = fields.first().copied().unwrap_or("");
            if let Some(rest) = f0.strip_prefix('\u{feff}') {
                boms.push(line);
                fields[0] = rest;
            }
            if fields.iter().all(|f| f.trim().is_empty()) {
                blank.push(line);
                continue;
            }
            // the header the rows are read under, again word for word (found by the
            // session-15 attack: compared with the first header only, a return to it after a
            // second one was skipped and the rows after it read under the second)
            if fields.len() == cur_norm.len()
                && fields.iter().zip(&cur_norm).all(|(f, h)| norm(f) == *h)
            {
                repeated.push(line);
                continue;
            }
            let active = switched.as_ref().unwrap_or(self.mapping);
            match header_again(self.ctx, active, &fields) {
                Some(HeaderAgain::Same) => {
                    repeated.push(line);
                    width = fields.len();
                    cur_norm = fields.iter().map(|f| norm(f)).collect();
                    continue;
                }
                Some(HeaderAgain::Switch(next)) => {
                    switch_notes.push(header_switch_note(&format!("line {line}"), active, &next));
                    switch_notes.extend(switched_mapping_notes(&next, line, fields.len()));
                    repeated.push(line);
                    switched_at.push(line);
                    width = fields.len();
                    cur_norm = fields.iter().map(|f| norm(f)).collect();
                    switched = Some(next);
                    continue;
                }
                Some(HeaderAgain::Title(what)) => {
                    switch_notes.push(format!("line {line}: a title row {what}: skipped"));
                    repeated.push(line);
                    switched_at.push(line);
                    continue;
                }
                Some(HeaderAgain::Unreadable(lacks)) => {
                    return Err(Stop::Fail(ctx.unreadable(header_unreadable_message(
                        &format!("line {line}"),
                        &lacks,
                    ))));
                }
                None => {}
            }
            if rdr.has_nul()
                && let Some(i) = fields.iter().position(|f| f.contains('\0'))
            {
                // A NUL byte (U+0000) in a value: a damaged export, not text anyone typed.
                // This row is refused, naming where; the rest of the file is read.
                let col = active.cols.iter().find(|c| c.src == i);
                let header = col.map_or_else(
                    || {
                        self.header_norm
                            .get(i)
                            .cloned()
                            .unwrap_or_else(|| format!("column_{}", i + 1))
                    },
                    |c| c.header.clone(),
                );
                let clean =
                    |v: Option<String>| v.map(|v| v.replace('\0', "")).filter(|v| !v.is_empty());
                rejected.push(Rejected {
                    line,
                    column: col.map_or_else(String::new, |c| c.name.clone()),
                    raw: fields[i].replace('\0', ""),
                    reason: "nul_byte".into(),
                    message: format!(
                        "line {line}, column {header} (field {}): a NUL byte (U+0000) in the value (a damaged export?); the row is not read",
                        i + 1
                    ),
                    household_id: clean(Self::household_id_of(active, &fields)),
                    id_number: clean(Self::column_of(active, &fields, "id_number")),
                    other_keys: Vec::new(),
                });
                continue;
            }
            if fields.len() > width && rdr.has_cr() {
                // More fields than the header and a lone CR: the lines end in CR only (an old
                // Mac export), so the rest of the file reads as one row. Refusing that row
                // would lose every person in it, so the file is not read at all (the source is
                // unverified, never "no records").
                return Err(Stop::Fail(ConnectorError::Unreadable {
                    path: ctx.path.display().to_string(),
                    message: format!(
                        "line {line}: a row with {} fields (the header has {width}) holds carriage returns: lines that end in CR only are not read; save the file with LF or CRLF line ends",
                        fields.len()
                    ),
                }));
            }
            if rdr.multiline() && (fields.len() != width || rdr.unclosed()) {
                // Found by the s7 attack: a stray quote (`"620503…`) opened a value that ran
                // on to the next quote or the end of the file; the rows in it were refused as
                // one ragged row, naming only its first line, and every person in them was
                // lost (283 members of 286). As with CR-only lines, the file is not read.
                let end = rdr.end_line();
                return Err(Stop::Fail(ConnectorError::Unreadable {
                    path: ctx.path.display().to_string(),
                    message: format!(
                        "lines {line}-{end}: a quote (\") opens a value that runs over {} lines{} and the row has {} fields (the header has {width}): an unbalanced quote? The rows in it would be lost, so the file is not read; close or remove the quote",
                        end - line + 1,
                        if rdr.unclosed() {
                            " to the end of the file"
                        } else {
                            ""
                        },
                        fields.len()
                    ),
                }));
            }
            if fields.len() != width {
                let sep = (self.delimiter as char).to_string();
                rejected.push(Rejected {
                    line,
                    column: String::new(),
                    raw: fields.join(&sep),
                    reason: "row_field_count".into(),
                    message: format!(
                        "line {line}: the row has {} fields, the header has {width} (a delimiter inside an unquoted value, or a cut-off line?); the row is not read",
                        fields.len()
                    ),
                    household_id: Self::household_id_of(active, &fields),
                    id_number: Self::column_of(active, &fields, "id_number"),
                    // A row longer than the header (a delimiter inside an unquoted value
                    // before it) holds its household_id up to that many fields further on:
                    // each is offered, the caseload refers the one that is a household
                    // (session 26's attack: the name's comma shifted it, and no household
                    // was referred).
                    other_keys: active
                        .cols
                        .iter()
                        .find(|c| c.name == "household_id")
                        .map(|c| {
                            (1..=fields.len().saturating_sub(width))
                                .filter_map(|j| fields.get(c.src + j))
                                .map(|v| v.trim())
                                .filter(|v| !v.is_empty())
                                .map(|v| ("household_id".to_string(), v.to_string()))
                                .collect()
                        })
                        .unwrap_or_default(),
                });
                continue;
            }
            // (the ID of the row above, kept in one buffer: no allocation per row)
            let id_src = active
                .cols
                .iter()
                .find(|c| c.name == "id_number")
                .map(|c| c.src);
            let id_now = id_src.and_then(|i| fields.get(i)).map_or("", |v| v.trim());
            let subtotal = if fields.iter().any(|f| maybe_total(f.as_bytes())) {
                let texts: Vec<Option<&str>> = fields.iter().map(|f| Some(*f)).collect();
                subtotal_cell(&texts, &active.cols, Some(last_id.as_str()))
            } else {
                None
            };
            last_id.clear();
            last_id.push_str(id_now);
            if let Some(i) = subtotal {
                let (name, header) = active.cols.iter().find(|c| c.src == i).map_or_else(
                    || {
                        let h = self
                            .header_norm
                            .get(i)
                            .cloned()
                            .unwrap_or_else(|| format!("column_{}", i + 1));
                        (String::new(), h)
                    },
                    |c| (c.name.clone(), c.header.clone()),
                );
                rejected.push(subtotal_row(line, &name, &header, fields[i]));
                continue;
            }
            out.clear();
            let mut bad = None;
            let kept = normalised.len();
            for c in &active.cols {
                // Two headers of one field (`balance` and `余额`): their values must agree.
                let (v, unit) = match pick_source(c, &fields, line) {
                    Ok(src) if src == c.src => (fields[src], c.unit),
                    Ok(src) => (
                        fields[src],
                        c.also.iter().find(|a| a.src == src).and_then(|a| a.unit),
                    ),
                    Err(mut r) => {
                        r.household_id = Self::household_id_of(active, &fields);
                        r.id_number = Self::column_of(active, &fields, "id_number");
                        bad = Some(r);
                        break;
                    }
                };
                if c.kind == ValueKind::Money {
                    match money_text(v, unit) {
                        Ok(Some(s)) => {
                            changes.add(format!(
                                "column `{}`: amounts with a unit converted to yuan",
                                c.name
                            ));
                            let (kind, detail) = money_change(v, unit);
                            normalised.push(Normalised {
                                line,
                                row: sink.rows(),
                                column: c.name.clone(),
                                kind: kind.into(),
                                detail,
                            });
                            out.push(s);
                        }
                        Ok(None) => out.push(v.to_string()),
                        Err(issue) => {
                            let mut r = issue.at(line, &c.name, v);
                            r.household_id = Self::household_id_of(active, &fields);
                            r.id_number = Self::column_of(active, &fields, "id_number");
                            bad = Some(r);
                            break;
                        }
                    }
                } else {
                    out.push(v.to_string());
                }
            }
            match bad {
                Some(r) => {
                    normalised.truncate(kept);
                    rejected.push(r);
                }
                None => sink.row(line, &out)?,
            }
        }
        let (dir, path, lines) = sink.finish()?;
        let mut notes = Vec::new();
        if !preamble.is_empty() {
            notes.push(format!(
                "title lines skipped above the header: {}",
                lines_list(&preamble)
            ));
        }
        if !above.is_empty() {
            notes.push(format!(
                "data rows above the header (line {}) read as rows of the table (an export without a header joined before one with it, or rows sorted above it?): lines {}",
                self.header_line,
                lines_list(&above)
            ));
        }
        let repeats = repeats_only(&repeated, &switched_at);
        if !repeats.is_empty() {
            notes.push(format!(
                "repeated header rows skipped (two exports concatenated?) at lines {}",
                lines_list(&repeats)
            ));
        }
        if !boms.is_empty() {
            notes.push(format!(
                "a second BOM removed at the start of lines {}",
                lines_list(&boms)
            ));
        }
        notes.append(&mut switch_notes);
        if !blank.is_empty() {
            notes.push(format!(
                "empty rows skipped at lines {}",
                lines_list(&blank)
            ));
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
            format: FileFormat::Csv,
            encoding: String::new(),
            delimiter: Some(self.delimiter as char),
            header_line: self.header_line,
            header_map: self.mapping.header_map.clone(),
            repeated_headers: repeated,
            line_of_row: Some(lines),
            rejected,
            normalised,
            notes,
            _temp: Some(dir),
            stamp: None,
        })
    }
}
