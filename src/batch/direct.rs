//! The batch's large output files (`reports.jsonl`, `state/linked.bin` and its keys, the
//! caseload and household states) written once, front to back, past the page cache.
//!
//! A run writes ~8 KB per household (1.36 GB of reports and ~1.1 GB of state at 300,000
//! households) and reads none of it back. Through the page cache every byte is first copied
//! into a freshly allocated cache page: on the benchmark machine (a VM whose freed memory goes
//! back to the host) that copy ran at ~450 MB/s, 9 % of the run's CPU at 300,000 households
//! (`copy_folio_from_iter_atomic`, perf). With `O_DIRECT` the device reads the writer's own
//! buffer (1.0–1.4 GB/s there, ~0.3 s of CPU per 1.5 GB, `dd oflag=direct`), and the run does
//! not evict the sources' cached pages with its output.
//!
//! Where the file system refuses `O_DIRECT` (tmpfs, some network file systems: `EINVAL` when
//! opening or writing) the file is written through the page cache as before, from the byte
//! where the direct writes stopped. The bytes in the file are the same either way.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Alignment of direct writes: offset, length and buffer address (4 KiB covers devices with
/// 512-byte and 4 KiB logical blocks).
const ALIGN: usize = 4096;
/// Bytes gathered before each write: one write per 4 MiB.
const CAP: usize = 4 << 20;

/// A new file written sequentially past the page cache where the file system allows it
/// (see the module's documentation). Use like a `BufWriter<File>`, then call
/// [`DirectWriter::finish`]: only `finish` writes the last partial block (padded to the block
/// size, then the file cut to its length). Dropped without `finish`, it finishes and ignores
/// errors, as `BufWriter` does.
pub(crate) struct DirectWriter {
    file: File,
    path: PathBuf,
    /// `CAP + ALIGN` bytes; the window `[start, start + CAP)` is 4 KiB-aligned in memory
    buf: Vec<u8>,
    start: usize,
    /// bytes gathered in the window
    len: usize,
    /// bytes already in the file
    written: u64,
    direct: bool,
    finished: bool,
}

impl DirectWriter {
    /// Creates (or truncates) `path`.
    ///
    /// # Errors
    /// As `File::create`.
    pub(crate) fn create(path: &Path) -> std::io::Result<DirectWriter> {
        let opened = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(path);
        let (file, direct) = match opened {
            Ok(f) => (f, true),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => (File::create(path)?, false),
            Err(e) => return Err(e),
        };
        let buf = vec![0u8; CAP + ALIGN];
        let start = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
        Ok(DirectWriter {
            file,
            path: path.to_path_buf(),
            buf,
            start,
            len: 0,
            written: 0,
            direct,
            finished: false,
        })
    }

    /// Whether the writes go past the page cache (`false` after a fallback).
    #[cfg(test)]
    fn is_direct(&self) -> bool {
        self.direct
    }

    /// Writes the first `n` bytes of the window (`n` a multiple of [`ALIGN`] when direct) and
    /// moves the rest to its front. A direct write the file system refuses (`EINVAL`) turns
    /// the writer into a buffered one and is written again that way.
    fn write_window(&mut self, n: usize) -> std::io::Result<()> {
        let (s, e) = (self.start, self.start + n);
        match self.file.write_all(&self.buf[s..e]) {
            Ok(()) => {}
            Err(err) if self.direct && err.raw_os_error() == Some(libc::EINVAL) => {
                self.buffered()?;
                self.file.write_all(&self.buf[s..e])?;
            }
            Err(err) => return Err(err),
        }
        self.written += n as u64;
        self.buf.copy_within(e..self.start + self.len, s);
        self.len -= n;
        Ok(())
    }

    /// Reopens the file without `O_DIRECT`, positioned after the bytes already written.
    fn buffered(&mut self) -> std::io::Result<()> {
        let mut f = OpenOptions::new().write(true).open(&self.path)?;
        f.seek(SeekFrom::Start(self.written))?;
        self.file = f;
        self.direct = false;
        Ok(())
    }

    /// Appends bytes `[from, from + len)` of `src`, read straight into the window (no
    /// intermediate buffer). Returns the bytes copied: fewer than `len` only when `src` ends
    /// first.
    ///
    /// # Errors
    /// The read's or the write's.
    pub(crate) fn copy_range(&mut self, src: &File, from: u64, len: u64) -> std::io::Result<u64> {
        use std::os::unix::fs::FileExt;
        let mut done = 0u64;
        while done < len {
            let room = (CAP - self.len).min(usize::try_from(len - done).unwrap_or(usize::MAX));
            let at = self.start + self.len;
            let got = match src.read_at(&mut self.buf[at..at + room], from + done) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.len += got;
            done += got as u64;
            if self.len == CAP {
                self.write_window(CAP)?;
            }
        }
        Ok(done)
    }

    /// Writes what is gathered and sets the file's length.
    ///
    /// # Errors
    /// The write's or the truncation's.
    pub(crate) fn finish(mut self) -> std::io::Result<()> {
        self.finish_mut()
    }

    fn finish_mut(&mut self) -> std::io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let len = self.len;
        if len == 0 {
            return Ok(());
        }
        if !self.direct {
            return self.write_window(len);
        }
        // the last block padded with zeros, then the padding cut off
        let padded = len.div_ceil(ALIGN) * ALIGN;
        self.buf[self.start + len..self.start + padded].fill(0);
        self.len = padded;
        let before = self.written;
        self.write_window(padded)?;
        self.file.set_len(before + len as u64)
    }
}

impl Write for DirectWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(CAP - self.len);
        let at = self.start + self.len;
        self.buf[at..at + n].copy_from_slice(&data[..n]);
        self.len += n;
        if self.len == CAP {
            self.write_window(CAP)?;
        }
        Ok(n)
    }

    /// Writes the whole blocks gathered; a partial last block waits for more bytes or for
    /// [`DirectWriter::finish`].
    fn flush(&mut self) -> std::io::Result<()> {
        let whole = if self.direct {
            self.len / ALIGN * ALIGN
        } else {
            self.len
        };
        if whole > 0 {
            self.write_window(whole)?;
        }
        Ok(())
    }
}

impl Drop for DirectWriter {
    fn drop(&mut self) {
        let _ = self.finish_mut();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes `0..n` of a pattern that never repeats at a block's period.
    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 4099) as u8).collect()
    }

    #[test]
    fn the_file_holds_exactly_the_bytes_written_at_every_length_around_the_blocks() {
        let dir = tempfile::tempdir().unwrap();
        for n in [
            0,
            1,
            4095,
            4096,
            4097,
            CAP - 1,
            CAP,
            CAP + 1,
            2 * CAP + 12_345,
        ] {
            let path = dir.path().join(format!("f{n}"));
            let data = pattern(n);
            let mut w = DirectWriter::create(&path).unwrap();
            // in uneven pieces, with a flush in the middle
            let (a, b) = data.split_at(n / 3);
            for piece in a.chunks(1000) {
                w.write_all(piece).unwrap();
            }
            w.flush().unwrap();
            w.write_all(b).unwrap();
            w.finish().unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), data, "length {n}");
        }
    }

    #[test]
    fn ranges_copied_from_another_file_land_between_the_bytes_written() {
        let dir = tempfile::tempdir().unwrap();
        let src_path = dir.path().join("src");
        let src_data = pattern(3 * CAP + 777);
        std::fs::write(&src_path, &src_data).unwrap();
        let src = File::open(&src_path).unwrap();
        let path = dir.path().join("out");
        let mut w = DirectWriter::create(&path).unwrap();
        let mut want = Vec::new();
        for (i, (from, len)) in [
            (5u64, 10u64),
            (4096, CAP as u64 + 3),
            (1, 2 * CAP as u64),
            (0, 0),
        ]
        .into_iter()
        .enumerate()
        {
            let line = format!("line {i}\n");
            w.write_all(line.as_bytes()).unwrap();
            want.extend_from_slice(line.as_bytes());
            assert_eq!(w.copy_range(&src, from, len).unwrap(), len);
            want.extend_from_slice(&src_data[from as usize..(from + len) as usize]);
        }
        // past the end of the source: only what is there
        let tail = src_data.len() as u64 - 100;
        assert_eq!(w.copy_range(&src, tail, 1000).unwrap(), 100);
        want.extend_from_slice(&src_data[tail as usize..]);
        w.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), want);
    }

    #[test]
    fn an_existing_file_is_truncated_and_a_dropped_writer_still_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![b'x'; 3 * CAP]).unwrap();
        {
            let mut w = DirectWriter::create(&path).unwrap();
            w.write_all(b"short\n").unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"short\n");
    }

    #[test]
    fn a_file_system_without_direct_writes_gets_the_same_bytes_through_the_cache() {
        // /dev/shm is tmpfs, which refuses O_DIRECT; skip where there is none
        let Ok(dir) = tempfile::tempdir_in("/dev/shm") else {
            return;
        };
        let path = dir.path().join("f");
        let data = pattern(CAP + 5000);
        let mut w = DirectWriter::create(&path).unwrap();
        let direct = w.is_direct();
        w.write_all(&data).unwrap();
        w.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data, "direct: {direct}");
    }
}
