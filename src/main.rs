//! The `hedui` binary: parse the command line, start telemetry, run, map to exit codes
//! (0 clean, 1 something quarantined or unverified, 2 the run failed).

/// mimalloc instead of glibc malloc: fewer page faults and lock round trips for the many
/// short-lived allocations of the service (requests, records, reports) and for polars.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let code = hedui::cli::main();
    std::process::exit(code);
}
