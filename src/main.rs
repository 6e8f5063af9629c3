//! The `hedui` binary: parse the command line, start telemetry, run, map to exit codes
//! (0 clean, 1 something quarantined or unverified, 2 the run failed).

/// mimalloc instead of glibc malloc: fewer page faults and lock round trips for the many
/// short-lived allocations of the service (requests, records, reports) and for polars.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's settings for `hedui batch`: freed memory goes back to the system soon. With the
/// defaults on Linux (arenas committed eagerly, purges delayed a second) the pages polars
/// frees after each source's scan stay resident and are carried into the report stage: peak
/// RSS on the 30k county ~400 MiB with the defaults, ~310 MiB with these (~257 MiB with no
/// purge delay at all, which doubled the kernel time at 300k households for no lower peak
/// there; README "Performance"). mimalloc reads them when the process starts, before `main`, so `batch`
/// re-executes itself once with them set; a variable already set (by the operator, or by
/// that re-execution) keeps its value, and a run where all are set is not re-executed. The
/// service keeps mimalloc's defaults.
///
/// Also polars' Parquet reader: at most 2 row groups in its pipeline (its default is 16 or
/// more). The scan's filter reads `id_number` and `name` whole for every row group it
/// decodes (views and page buffers, ~70 MB per million rows), so the default held several
/// hundred MB of decoded row groups at once; 2 keeps both cores busy. Peak RSS on the 30k
/// county ~440 → ~350 MiB, no slower.
///
/// The purge delay follows the size of the run ([`purge_delay_ms`]): 100 ms, or 10 ms when
/// the extracts in `--sources` total under [`SMALL_SOURCES_BYTES`].
const BATCH_ALLOCATOR_ENV: [(&str, &str); 3] = [
    ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
    ("MIMALLOC_PURGE_DELAY", "100"),
    ("POLARS_ROW_GROUP_PREFETCH_SIZE", "2"),
];

/// Extracts totalling less than this (1 GiB) make a small run: see [`purge_delay_ms`].
const SMALL_SOURCES_BYTES: u64 = 1 << 30;

/// mimalloc's purge delay for a batch over the extracts in `sources`: how long freed pages
/// stay mapped for reuse before they go back to the system.
///
/// A small run's peak is the Parquet decoder's transient buffers (two row groups of the
/// largest extract beside the kept records): returning them after 10 ms instead of 100 ms
/// gave 335-346 MiB instead of 405-418 MiB on the 30k county (150 MB of extracts), for the
/// same wall time within noise. A large run's peak is what it keeps; there each freed buffer
/// is soon taken again by the next row group, and 10 ms cost 2.4 s more kernel time at
/// 300,000 households (1.5 GB of extracts) for 40-60 MiB less. Unreadable folders count as
/// large.
fn purge_delay_ms(sources: Option<&std::path::Path>) -> &'static str {
    let total = sources
        .and_then(|d| std::fs::read_dir(d).ok())
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum::<u64>()
        })
        .unwrap_or(u64::MAX);
    if total < SMALL_SOURCES_BYTES {
        "10"
    } else {
        "100"
    }
}

/// The value of `--sources` among the arguments (`--sources DIR` or `--sources=DIR`).
fn sources_arg(args: &[std::ffi::OsString]) -> Option<std::path::PathBuf> {
    args.iter().enumerate().find_map(|(i, a)| {
        let a = a.to_str()?;
        if a == "--sources" {
            args.get(i + 1).map(std::path::PathBuf::from)
        } else {
            a.strip_prefix("--sources=").map(std::path::PathBuf::from)
        }
    })
}

/// Re-execute `hedui batch` with [`BATCH_ALLOCATOR_ENV`] (see there). Returns only when it
/// did not (another subcommand, the variables already set, or the exec failed: the run then
/// goes on with mimalloc's defaults).
fn tune_allocator_for_batch() {
    use std::os::unix::process::CommandExt;
    let mut args = std::env::args_os();
    let arg0 = args.next();
    if args.next().is_none_or(|a| a != "batch")
        || BATCH_ALLOCATOR_ENV
            .iter()
            .all(|(k, _)| std::env::var_os(k).is_some())
    {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut cmd = std::process::Command::new(exe);
    if let Some(a) = arg0 {
        cmd.arg0(a);
    }
    let rest: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let purge = purge_delay_ms(sources_arg(&rest).as_deref());
    // `exec` returns only on failure
    let _ = cmd
        .args(&rest)
        .envs(
            BATCH_ALLOCATOR_ENV
                .iter()
                .filter(|(k, _)| std::env::var_os(k).is_none())
                .map(|&(k, v)| {
                    (
                        k,
                        if k == "MIMALLOC_PURGE_DELAY" {
                            purge
                        } else {
                            v
                        },
                    )
                }),
        )
        .exec();
}

fn main() {
    tune_allocator_for_batch();
    let code = hedui::cli::main();
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_is_short_for_small_extracts_and_long_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bank.csv"), vec![b'x'; 4096]).unwrap();
        assert_eq!(purge_delay_ms(Some(dir.path())), "10");
        // a folder that cannot be read, or none given: the long delay
        assert_eq!(purge_delay_ms(Some(&dir.path().join("missing"))), "100");
        assert_eq!(purge_delay_ms(None), "100");
        // a sparse file as large as the threshold makes the run large
        let big = std::fs::File::create(dir.path().join("tax.parquet")).unwrap();
        big.set_len(SMALL_SOURCES_BYTES).unwrap();
        assert_eq!(purge_delay_ms(Some(dir.path())), "100");
    }

    #[test]
    fn the_sources_folder_is_found_in_either_spelling() {
        let args = |v: &[&str]| -> Vec<std::ffi::OsString> { v.iter().map(Into::into).collect() };
        assert_eq!(
            sources_arg(&args(&[
                "batch",
                "--caseload",
                "c",
                "--sources",
                "s/x",
                "--out",
                "o"
            ])),
            Some("s/x".into())
        );
        assert_eq!(
            sources_arg(&args(&["batch", "--sources=d"])),
            Some("d".into())
        );
        assert_eq!(sources_arg(&args(&["batch", "--sources"])), None);
        assert_eq!(sources_arg(&args(&["batch", "--caseload", "c"])), None);
    }
}
