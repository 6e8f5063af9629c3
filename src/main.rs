//! The `hedui` binary: parse the command line, start telemetry, run, map to exit codes
//! (0 clean, 1 something quarantined or unverified, 2 the run failed).

fn main() {
    let code = hedui::cli::main();
    std::process::exit(code);
}
