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
const BATCH_ALLOCATOR_ENV: [(&str, &str); 3] = [
    ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
    ("MIMALLOC_PURGE_DELAY", "100"),
    ("POLARS_ROW_GROUP_PREFETCH_SIZE", "2"),
];

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
    // `exec` returns only on failure
    let _ = cmd
        .args(std::env::args_os().skip(1))
        .envs(
            BATCH_ALLOCATOR_ENV
                .iter()
                .filter(|(k, _)| std::env::var_os(k).is_none())
                .copied(),
        )
        .exec();
}

fn main() {
    tune_allocator_for_batch();
    let code = hedui::cli::main();
    std::process::exit(code);
}
