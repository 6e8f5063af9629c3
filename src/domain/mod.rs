//! Domain types with `parse()`: identity numbers, names, region codes, money and dates.
//!
//! Every value that enters the engine from a file or an API passes through one of these
//! parsers; PII types (`IdNumber`, `Name`) print masked.

pub mod date;
pub mod id_number;
pub mod money;
pub mod name;
pub mod region;

pub use date::{DateError, DateValue, Month, parse_date, parse_day};
pub use id_number::{AsOfDay, IdError, IdNumber, IdRepair, mask};
pub use money::{Fen, MoneyError};
pub use name::{Name, NameError, NameRepair};
pub use region::{RegionCode, RegionError};
