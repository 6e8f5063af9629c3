//! hedui (核对): household economic-status verification for social assistance.
//!
//! When a family applies for 低保 (minimum living allowance), 特困供养 or other aid, and at
//! every periodic review after, civil affairs must verify what the family earns and owns.
//! hedui links every member's and supporter's department records by resident ID number,
//! totals income and assets per household, applies the region's policy and seals the
//! verification report so that only civil affairs can read it.
//!
//! # A tour of the stages (DESIGN.md §1)
//! ```text
//! caseload ─┐                                     ┌─ sealed reports (only civil affairs opens)
//!           ├─ ingest ─ link ─ evidence ─ assess ─┼─ summary + quarantine
//! sources ──┘  (connectors)                       └─ change log vs the previous run
//! ```
//! - [`domain`]: newtypes with `parse()`: [`domain::IdNumber`] (GB 11643-1999),
//!   [`domain::Name`], [`domain::RegionCode`] (GB/T 2260), [`domain::Fen`], dates.
//! - `hedui_connectors` (crate `connectors/`): the [`SourceKind`] registry of the 12 sources
//!   of DESIGN.md §2, the `Connector` trait and the file transport.
//! - [`ingest`]: the caseload reader and the quarantine.
//! - [`batch`]: the polars plan that scans each extract once, normalises keys and links
//!   rows to caseload persons exactly; then assessment and sealing in parallel (rayon).
//! - [`evidence`]: per-person income and asset items from linked records.
//! - [`assess`]: the policy file ([`assess::Policy`]) and the rules: findings and one
//!   [`report::Determination`] per household.
//! - [`report`]: the verification report (DESIGN.md §4).
//! - [`seal`]: envelope encryption to civil-affairs keys and hedui's signature.
//! - [`gen`](crate::r#gen): a deterministic synthetic county for the demo and the tests.
//! - [`sim`]: `hedui sim`, department source servers over HTTPS (mutual TLS, fault knobs)
//!   for tests and drills; [`certs`]: the test CA and TLS certificates (`hedui certs`).
//! - [`cli`]: the `hedui` command line.

/// `println!` that never panics: `hedui gen … | head -1` closes stdout while hedui still has
/// status lines to print; the work is done, so a line nobody reads is dropped.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `eprintln!` that never panics: `hedui open … 2>&1 | head -1` closes stderr too, and a
/// message that cannot be written is not a reason to abort with exit code 101.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

pub mod api;
pub mod assess;
pub mod audit;
pub mod batch;
pub mod certs;
pub mod cli;
pub mod domain;
pub mod evidence;
pub mod r#gen;
pub mod ingest;
pub mod link;
pub mod records;
pub mod render;
pub mod report;
pub mod seal;
pub mod sim;
pub mod verify;

pub use hedui_connectors::SourceKind;
