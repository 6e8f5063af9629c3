//! The batch's large output files written once, front to back, past the page cache:
//! `reports.jsonl` (the full run's, the incremental run's and the memory-limited merge's);
//! and read past it where they are copied ([`DirectReader`]: the previous run's in an
//! incremental run, the slices' in the merge).
//!
//! A run writes ~4.5 KB of sealed reports per household (1.36 GB at 300,000 households) and
//! reads none of it back. Through the page cache every byte is first copied into a freshly
//! allocated cache page: on the benchmark machine (a VM whose freed memory goes back to the
//! host) that copy ran at ~450 MB/s, and with the state files it was 9 % of the run's CPU at
//! 300,000 households (`copy_folio_from_iter_atomic`, perf). With `O_DIRECT` the device reads
//! the writer's own buffer (1.0-1.4 GB/s there, ~0.3 s of CPU per 1.5 GB, `dd oflag=direct`),
//! and the run does not evict the sources' cached pages with its output.
//!
//! The state files (`state/`) go through the cache (`linked.bin` and `linked.keys` by
//! [`DirectWriter::cached`], the others by `std::fs::write`): an incremental
//! run reads them back record by record, and from the device that cost it ~1 s at 300,000
//! households (3.9 s against 3.0 s).
//!
//! Where the file system refuses `O_DIRECT` (tmpfs, some network file systems: `EINVAL` when
//! opening or writing) the file is written through the page cache as before, from the byte
//! where the direct writes stopped. The bytes in the file are the same either way.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Alignment of direct writes: offset, length and buffer address (4 KiB covers devices with
/// 512-byte and 4 KiB logical blocks).
const ALIGN: usize = 4096;
/// Bytes gathered before each write: one write per MiB (`dd oflag=direct` wrote 1.4 GB/s
/// with 1 MiB blocks on the benchmark machine, 1.0 GB/s with 4 MiB ones), so three blocks
/// hold 3 MiB per file being written.
const CAP: usize = 1 << 20;

/// A new file written sequentially past the page cache where the file system allows it
/// ([`DirectWriter::create`], see the module's documentation), or through it
/// ([`DirectWriter::cached`]). Use like a `BufWriter<File>`, then call
/// [`DirectWriter::finish`]: only `finish` writes the last partial block (padded to the block
/// size, then the file cut to its length). Dropped without `finish`, it finishes and ignores
/// errors, as `BufWriter` does.
///
/// The writes themselves run on a thread of their own, a block (1 MiB) at a time, while the
/// caller fills the next block: a direct write waits for the device (~1 ms per block), and
/// the caller goes on meanwhile. At most three blocks exist: the one being filled, one queued
/// and one being written.
pub(crate) struct DirectWriter {
    /// the block being filled
    block: Block,
    /// Full blocks to the writing thread (`None` once finished).
    tx: Option<std::sync::mpsc::SyncSender<Block>>,
    /// Written blocks back, for reuse.
    free: std::sync::mpsc::Receiver<Block>,
    /// The writing thread: the file when every block is written, or the first error.
    worker: Option<std::thread::JoinHandle<std::io::Result<File>>>,
    /// bytes handed to the writing thread
    handed: u64,
    direct: bool,
}

/// `CAP + ALIGN` bytes whose window `[start, start + CAP)` is 4 KiB-aligned in memory; `len`
/// bytes of the window are filled.
struct Block {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl Block {
    fn new() -> Block {
        let buf = vec![0u8; CAP + ALIGN];
        let start = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
        Block { buf, start, len: 0 }
    }

    fn filled(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }

    /// The window's unfilled part.
    fn room(&mut self) -> &mut [u8] {
        let at = self.start + self.len;
        &mut self.buf[at..self.start + CAP]
    }
}

impl DirectWriter {
    /// Creates `path` as a new file (a file or link already there is removed, not truncated).
    ///
    /// # Errors
    /// As `File::create`.
    pub(crate) fn create(path: &Path) -> std::io::Result<DirectWriter> {
        // a new file, never written through a link ([`super::write_fresh`])
        super::remove_if_present(path)?;
        let opened = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(path);
        match opened {
            Ok(f) => Self::over(f, true, path),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                Self::over(File::create(path)?, false, path)
            }
            Err(e) => Err(e),
        }
    }

    /// Creates `path` as a new file (as [`DirectWriter::create`]), written through the page cache: for a file the next run
    /// reads back soon (the state an incremental run reads record by record), where the cache
    /// spares it the device. The writes still run on the writer's own thread.
    ///
    /// # Errors
    /// As `File::create`.
    pub(crate) fn cached(path: &Path) -> std::io::Result<DirectWriter> {
        super::remove_if_present(path)?;
        Self::over(File::create(path)?, false, path)
    }

    /// The writer of `file`, open at `path` (`direct`: opened with `O_DIRECT`).
    fn over(file: File, direct: bool, path: &Path) -> std::io::Result<DirectWriter> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Block>(1);
        let (free_tx, free) = std::sync::mpsc::channel::<Block>();
        let path = path.to_path_buf();
        let worker = std::thread::Builder::new()
            .name("direct-write".into())
            .spawn(move || -> std::io::Result<File> {
                let (mut file, mut direct, mut written) = (file, direct, 0u64);
                for block in rx {
                    let bytes = block.filled();
                    match file.write_all(bytes) {
                        Ok(()) => {}
                        // the file system refuses this direct write: the rest goes through
                        // the cache, from where the direct writes stopped
                        Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => {
                            file = reopen_buffered(&path, written)?;
                            direct = false;
                            file.write_all(bytes)?;
                        }
                        Err(e) => return Err(e),
                    }
                    written += bytes.len() as u64;
                    let _ = free_tx.send(block);
                }
                Ok(file)
            })?;
        Ok(DirectWriter {
            block: Block::new(),
            tx: Some(tx),
            free,
            worker: Some(worker),
            handed: 0,
            direct,
        })
    }

    /// Whether the file was opened past the page cache.
    #[cfg(test)]
    fn is_direct(&self) -> bool {
        self.direct
    }

    /// Hands the first `n` bytes of the block (`n` a multiple of [`ALIGN`] when direct) to
    /// the writing thread; the rest starts the next block.
    fn hand_off(&mut self, n: usize) -> std::io::Result<()> {
        let mut next = self.free.try_recv().unwrap_or_else(|_| Block::new());
        let rest = self.block.len - n;
        let from = self.block.start + n;
        next.buf[next.start..next.start + rest].copy_from_slice(&self.block.buf[from..from + rest]);
        next.len = rest;
        let mut full = std::mem::replace(&mut self.block, next);
        full.len = n;
        let sent = match &self.tx {
            Some(tx) => tx.send(full).is_ok(),
            None => false,
        };
        if !sent {
            // the writing thread stopped on an error: that error
            return Err(self
                .stop()
                .err()
                .unwrap_or_else(|| std::io::Error::other("the file's writing thread stopped")));
        }
        self.handed += n as u64;
        Ok(())
    }

    /// Ends the writing thread: the file, or the thread's error.
    fn stop(&mut self) -> std::io::Result<File> {
        self.tx = None;
        match self.worker.take() {
            Some(w) => w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            None => Err(std::io::Error::other("the file is finished")),
        }
    }

    /// Appends bytes `[from, from + len)` of `src` (through its window: one copy into the
    /// block). Returns the bytes copied: fewer than `len` only when `src` ends first. Ranges
    /// taken in increasing order read each part of `src` from the device once.
    ///
    /// # Errors
    /// The read's or the write's.
    pub(crate) fn copy_from(
        &mut self,
        src: &mut DirectReader,
        from: u64,
        len: u64,
    ) -> std::io::Result<u64> {
        let mut done = 0u64;
        while done < len {
            let pos = from + done;
            let Some(avail) = src.at(pos)? else {
                break;
            };
            let room = self.block.room();
            let n = avail
                .len()
                .min(room.len())
                .min(usize::try_from(len - done).unwrap_or(usize::MAX));
            room[..n].copy_from_slice(&avail[..n]);
            self.block.len += n;
            done += n as u64;
            if self.block.len == CAP {
                self.hand_off(CAP)?;
            }
        }
        Ok(done)
    }

    /// Writes what is gathered, waits for every write and sets the file's length.
    ///
    /// # Errors
    /// The writes' or the truncation's.
    pub(crate) fn finish(mut self) -> std::io::Result<()> {
        self.finish_mut()
    }

    fn finish_mut(&mut self) -> std::io::Result<()> {
        if self.tx.is_none() {
            return Ok(());
        }
        let len = self.block.len;
        if len > 0 {
            // the last block padded with zeros to a whole number of blocks
            let padded = if self.direct {
                len.div_ceil(ALIGN) * ALIGN
            } else {
                len
            };
            let at = self.block.start + len;
            self.block.buf[at..self.block.start + padded].fill(0);
            self.block.len = padded;
            self.hand_off(padded)?;
            self.handed -= (padded - len) as u64;
        }
        let file = self.stop()?;
        if self.direct {
            // (after a fallback too: the padding may already be in the file)
            file.set_len(self.handed)?;
        }
        Ok(())
    }
}

/// `path` opened again through the page cache, positioned at `at`.
fn reopen_buffered(path: &Path, at: u64) -> std::io::Result<File> {
    let mut f = OpenOptions::new().write(true).open(path)?;
    f.seek(SeekFrom::Start(at))?;
    Ok(f)
}

impl Write for DirectWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = self.block.room();
        let n = data.len().min(room.len());
        room[..n].copy_from_slice(&data[..n]);
        self.block.len += n;
        if self.block.len == CAP {
            self.hand_off(CAP)?;
        }
        Ok(n)
    }

    /// Hands the whole blocks gathered to the writing thread; a partial last block waits for
    /// more bytes or for [`DirectWriter::finish`].
    fn flush(&mut self) -> std::io::Result<()> {
        let whole = if self.direct {
            self.block.len / ALIGN * ALIGN
        } else {
            self.block.len
        };
        if whole > 0 {
            self.hand_off(whole)?;
        }
        Ok(())
    }
}

impl Drop for DirectWriter {
    fn drop(&mut self) {
        let _ = self.finish_mut();
    }
}

/// Byte ranges of one file appended to another by the kernel (`copy_file_range(2)`, through
/// rustix): the bytes never pass through this process, and on a file system that shares
/// extents (XFS, Btrfs) they are not copied at all. Where the kernel cannot copy between the
/// two files (`EXDEV`, `EINVAL`, `ENOSYS`, `EOPNOTSUPP`, `EPERM`: an old kernel, another file
/// system, a special file), the rest goes through a 1 MiB buffer, the same bytes.
///
/// An incremental run appends most of the previous run's `reports.jsonl` (1.36 GB at 300,000
/// households) to the new one. Read past the cache and written through it by this process,
/// that copy took 2.3-3.1 s there (`copy_folio_from_iter_atomic` and the reads on two
/// threads); by the kernel 0.4-0.6 s (the whole file, cached or not, in runs of 450 KB).
pub(crate) struct RangeCopier {
    /// whether the kernel still copies (false after it refused once)
    kernel: bool,
    buf: Vec<u8>,
}

impl RangeCopier {
    pub(crate) fn new() -> RangeCopier {
        RangeCopier {
            kernel: true,
            buf: Vec::new(),
        }
    }

    /// Appends bytes `[from, from + len)` of `src` to `out` at `out`'s file position (which
    /// it advances). Returns the bytes copied: fewer than `len` only when `src` ends first.
    ///
    /// # Errors
    /// The read's or the write's, other than the kernel's refusals above.
    pub(crate) fn copy(
        &mut self,
        src: &File,
        mut out: &File,
        from: u64,
        len: u64,
    ) -> std::io::Result<u64> {
        use std::os::unix::fs::FileExt;
        let mut done = 0u64;
        while done < len {
            // (a copy_file_range call moves at most ~2 GiB)
            let want = usize::try_from(len - done)
                .unwrap_or(usize::MAX)
                .min(1 << 30);
            if self.kernel {
                let mut at = from + done;
                match rustix::fs::copy_file_range(src, Some(&mut at), out, None, want) {
                    Ok(0) => break,
                    Ok(n) => {
                        done += n as u64;
                        continue;
                    }
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(
                        rustix::io::Errno::XDEV
                        | rustix::io::Errno::INVAL
                        | rustix::io::Errno::NOSYS
                        | rustix::io::Errno::OPNOTSUPP
                        | rustix::io::Errno::PERM,
                    ) => {
                        self.kernel = false;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            self.buf.resize(CAP, 0);
            let n = match src.read_at(&mut self.buf[..want.min(CAP)], from + done) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            out.write_all(&self.buf[..n])?;
            done += n as u64;
        }
        Ok(done)
    }
}

/// What [`check_lines`] found wrong with the first line that is not what its state says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineFault {
    /// The file ends before the line does.
    Short,
    /// The line's last byte is not a line break.
    NoLineBreak,
    /// The line's CRC-32 is not the one kept for it: the line at byte `from`, `len` bytes.
    Crc { from: u64, len: u64 },
}

/// Checks lines of `src`, each `(from, len, CRC-32 if kept)`, one after the other in the file
/// (each starting where the one before ends): each ends with a line break and has its kept
/// CRC-32. Reads the lines' bytes once, through the page cache, 1 MiB at a time into `buf`
/// (where a [`RangeCopier`] copying them next finds them). `None` when every line is sound.
///
/// # Errors
/// The read's.
pub(crate) fn check_lines(
    src: &File,
    lines: &[(u64, u64, Option<u32>)],
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<LineFault>> {
    use std::os::unix::fs::FileExt;
    let Some(&(start, _, _)) = lines.first() else {
        return Ok(None);
    };
    buf.resize(CAP, 0);
    let mut pos = start;
    let mut crc = crc32fast::Hasher::new();
    for &(from, len, want) in lines {
        debug_assert_eq!(from, pos, "lines one after the other");
        let end = from + len;
        while pos < end {
            let take = usize::try_from(end - pos).unwrap_or(usize::MAX).min(CAP);
            let n = match src.read_at(&mut buf[..take], pos) {
                Ok(0) => return Ok(Some(LineFault::Short)),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            crc.update(&buf[..n]);
            pos += n as u64;
            if pos == end && buf[n - 1] != b'\n' {
                return Ok(Some(LineFault::NoLineBreak));
            }
        }
        let got = std::mem::take(&mut crc).finalize();
        if want.is_some_and(|want| want != got) {
            return Ok(Some(LineFault::Crc { from, len }));
        }
    }
    Ok(None)
}

/// A file read past the page cache where the file system allows it, through a 1 MiB window
/// at a 4 KiB-aligned offset (direct reads need aligned offsets, lengths and memory); where it
/// refuses `O_DIRECT` (tmpfs: `EINVAL`), through the cache, the same bytes.
///
/// An incremental run copies most of the previous run's `reports.jsonl` (1.36 GB at 300,000
/// households), and the memory-limited merge every slice's. Those were written past the cache,
/// so a read through it first fills fresh cache pages: on the benchmark machine `dd` read such
/// a file at ~0.2 GB/s through the cache and at 1.3-1.8 GB/s with `iflag=direct`.
pub(crate) struct DirectReader {
    path: std::path::PathBuf,
    file: File,
    /// The window: `window.len` bytes of the file from offset `start`.
    window: Block,
    start: u64,
    direct: bool,
}

impl DirectReader {
    /// Opens `path` for reading.
    ///
    /// # Errors
    /// As `File::open`.
    pub(crate) fn open(path: &Path) -> std::io::Result<DirectReader> {
        let opened = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(path);
        let (file, direct) = match opened {
            Ok(f) => (f, true),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => (File::open(path)?, false),
            Err(e) => return Err(e),
        };
        Ok(DirectReader {
            path: path.to_path_buf(),
            file,
            window: Block::new(),
            start: 0,
            direct,
        })
    }

    /// The file's bytes from `pos` to the end of the window holding it (read when the current
    /// one does not); `None` at or past the end of the file.
    ///
    /// # Errors
    /// The read's.
    fn at(&mut self, pos: u64) -> std::io::Result<Option<&[u8]>> {
        let held = self.start + self.window.len as u64;
        if pos < self.start || pos >= held {
            self.fill(pos / ALIGN as u64 * ALIGN as u64)?;
        }
        let skip = pos - self.start;
        if skip >= self.window.len as u64 {
            return Ok(None);
        }
        Ok(Some(&self.window.filled()[skip as usize..]))
    }

    /// Reads the window at `start` (aligned): as much of `CAP` bytes as the file has.
    fn fill(&mut self, start: u64) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.start = start;
        self.window.len = 0;
        let (from, to) = (self.window.start, self.window.start + CAP);
        loop {
            match self.file.read_at(&mut self.window.buf[from..to], start) {
                Ok(n) => {
                    self.window.len = n;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // the file system refuses this direct read: the rest through the cache
                Err(e) if self.direct && e.raw_os_error() == Some(libc::EINVAL) => {
                    self.file = File::open(&self.path)?;
                    self.direct = false;
                }
                Err(e) => return Err(e),
            }
        }
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

    /// Bytes `[from, from + len)` of `data` (the file `src` reads) copied into `w`: checks
    /// that every byte came; returns the range.
    fn copy_range<'a>(
        w: &mut DirectWriter,
        src: &mut DirectReader,
        data: &'a [u8],
        from: u64,
        len: u64,
    ) -> &'a [u8] {
        assert_eq!(w.copy_from(src, from, len).unwrap(), len);
        &data[from as usize..(from + len) as usize]
    }

    #[test]
    fn ranges_copied_from_another_file_land_between_the_bytes_written() {
        let dir = tempfile::tempdir().unwrap();
        let src_path = dir.path().join("src");
        let src_data = pattern(3 * CAP + 777);
        std::fs::write(&src_path, &src_data).unwrap();
        let mut src = DirectReader::open(&src_path).unwrap();
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
            want.extend_from_slice(copy_range(&mut w, &mut src, &src_data, from, len));
        }
        // past the end of the source: only what is there
        let tail = src_data.len() as u64 - 100;
        assert_eq!(w.copy_from(&mut src, tail, 1000).unwrap(), 100);
        want.extend_from_slice(&src_data[tail as usize..]);
        w.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), want);
    }

    #[test]
    fn an_existing_file_is_replaced_and_a_dropped_writer_still_finishes() {
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
    fn a_file_system_without_direct_reads_gives_the_same_bytes_through_the_cache() {
        // /dev/shm is tmpfs, which refuses O_DIRECT on older kernels; skip where there is none
        let Ok(dir) = tempfile::tempdir_in("/dev/shm") else {
            return;
        };
        let src_path = dir.path().join("src");
        let src_data = pattern(2 * CAP + 4097);
        std::fs::write(&src_path, &src_data).unwrap();
        let mut src = DirectReader::open(&src_path).unwrap();
        let out = tempfile::tempdir().unwrap();
        let path = out.path().join("out");
        let mut w = DirectWriter::create(&path).unwrap();
        // backwards and overlapping too: each range is read where it lies
        let ranges = [
            (CAP as u64 + 3, 5000u64),
            (7, 100),
            (0, src_data.len() as u64),
        ];
        let mut want = Vec::new();
        for (from, len) in ranges {
            want.extend_from_slice(copy_range(&mut w, &mut src, &src_data, from, len));
        }
        // at and past the end: nothing
        assert_eq!(w.copy_from(&mut src, src_data.len() as u64, 10).unwrap(), 0);
        assert_eq!(w.copy_from(&mut src, 9 * CAP as u64, 10).unwrap(), 0);
        w.finish().unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            want,
            "direct: {}",
            src.direct
        );
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

    /// Ranges appended by the kernel and through the buffer (as where the kernel refuses):
    /// the same bytes, after bytes written directly; a range past the source's end copies
    /// what there is.
    #[test]
    fn ranges_are_appended_the_same_by_the_kernel_and_through_the_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let src_path = dir.path().join("src");
        let src_data = pattern(3 * CAP + 777);
        std::fs::write(&src_path, &src_data).unwrap();
        let src = File::open(&src_path).unwrap();
        let ranges = [
            (5u64, 10u64),
            (4096, CAP as u64 + 3),
            (1, 2 * CAP as u64),
            (0, 0),
            (src_data.len() as u64 - 100, 1000),
            (src_data.len() as u64 + 5, 10),
        ];
        let mut want = b"head\n".to_vec();
        for &(from, len) in &ranges {
            let from = (from as usize).min(src_data.len());
            let to = (from + len as usize).min(src_data.len());
            want.extend_from_slice(&src_data[from..to]);
        }
        for kernel in [true, false] {
            let path = dir.path().join(format!("out-{kernel}"));
            let mut out = File::create(&path).unwrap();
            out.write_all(b"head\n").unwrap();
            let mut c = RangeCopier::new();
            c.kernel = kernel;
            for &(from, len) in &ranges {
                let end = src_data.len() as u64;
                let got = c.copy(&src, &out, from, len).unwrap();
                assert_eq!(got, len.min(end.saturating_sub(from)), "{from}+{len}");
            }
            drop(out);
            assert_eq!(std::fs::read(&path).unwrap(), want, "kernel: {kernel}");
        }
    }

    /// Lines checked: sound ones pass, with and without a kept CRC-32; a changed byte, a
    /// missing line break and a file cut short are each named, at the first such line.
    #[test]
    fn lines_are_checked_for_their_break_and_crc_and_a_short_file_is_told() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lines");
        // the second line longer than the 1 MiB read, so that it is read in pieces
        let texts: Vec<Vec<u8>> = vec![
            b"first line\n".to_vec(),
            [pattern(CAP + 10), b"\n".to_vec()].concat(),
            b"third\n".to_vec(),
        ];
        let data = texts.concat();
        std::fs::write(&path, &data).unwrap();
        let mut lines = Vec::new();
        let mut at = 0u64;
        for t in &texts {
            lines.push((at, t.len() as u64, Some(crc32fast::hash(t))));
            at += t.len() as u64;
        }
        let f = File::open(&path).unwrap();
        let mut buf = Vec::new();
        assert_eq!(check_lines(&f, &lines, &mut buf).unwrap(), None);
        assert_eq!(check_lines(&f, &lines[1..], &mut buf).unwrap(), None);
        assert_eq!(check_lines(&f, &[], &mut buf).unwrap(), None);
        let no_crcs: Vec<_> = lines.iter().map(|&(a, l, _)| (a, l, None)).collect();
        assert_eq!(check_lines(&f, &no_crcs, &mut buf).unwrap(), None);
        // a byte of the second line changed: its CRC-32 tells, not its length
        let mut changed = data.clone();
        changed[lines[1].0 as usize + 500] ^= 1;
        std::fs::write(&path, &changed).unwrap();
        let f = File::open(&path).unwrap();
        assert_eq!(
            check_lines(&f, &lines, &mut buf).unwrap(),
            Some(LineFault::Crc {
                from: lines[1].0,
                len: lines[1].1
            })
        );
        // without the CRC-32 the change passes (an older state keeps none)
        assert_eq!(check_lines(&f, &no_crcs, &mut buf).unwrap(), None);
        // shifted by a byte: the first line no longer ends with its break
        let shifted = [b" ".as_slice(), &data[..data.len() - 1]].concat();
        std::fs::write(&path, &shifted).unwrap();
        let f = File::open(&path).unwrap();
        assert_eq!(
            check_lines(&f, &no_crcs, &mut buf).unwrap(),
            Some(LineFault::NoLineBreak)
        );
        // cut inside the last line
        std::fs::write(&path, &data[..data.len() - 3]).unwrap();
        let f = File::open(&path).unwrap();
        assert_eq!(
            check_lines(&f, &lines, &mut buf).unwrap(),
            Some(LineFault::Short)
        );
    }
}
