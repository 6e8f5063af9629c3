//! The domain normalisers, as in `hedui::domain` (`src/domain/` of the root crate).

#[path = "../../../src/domain/date.rs"]
pub mod date;
#[path = "../../../src/domain/id_number.rs"]
pub mod id_number;
#[path = "../../../src/domain/money.rs"]
pub mod money;
#[path = "../../../src/domain/name.rs"]
pub mod name;
#[path = "../../../src/domain/spelling.rs"]
mod spelling;
#[allow(unused_imports)]
pub use spelling::{half_width, spreadsheet_text, whole_number_text, year_spelling};
#[allow(unused_imports)]
pub(crate) use spelling::{full_width_points, spreadsheet_detail};
// (`id_number::scattered_id_number` reads the region table since session 26)
#[path = "../../../src/domain/region.rs"]
pub mod region;
