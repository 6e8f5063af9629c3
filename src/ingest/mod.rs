//! Ingest: reading the caseload and recording what could not be read.
//!
//! Source extracts are read through the connectors crate (file transport); this module
//! holds the caseload reader ([`caseload`]) and the quarantine ([`quarantine`]): every row
//! or value hedui refuses is written with file, line, column, masked value and reason, and
//! counted. Nothing is dropped silently.

pub mod caseload;
pub mod normalisation;
pub mod quarantine;

pub use caseload::{Caseload, Member, Supporter, load_caseload};
pub use normalisation::{At, Normalisation, Normalisations};
pub use quarantine::{Action, Quarantine, QuarantineEntry};
