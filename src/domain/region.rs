//! Administrative division codes (行政区划代码), GB/T 2260.
//!
//! The bundled table `divisions_cn.csv` holds the current province, prefecture and
//! county-level codes of mainland China (NBS 统计用区划代码 to 2022-10-31, via
//! modood/Administrative-divisions-of-China, WTFPL). Retired codes are not in it and stay
//! valid inside ID numbers issued before a change, so an ID's region prefix is never
//! rejected for being absent here (see [`crate::domain::IdNumber`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

static TABLE: &str = include_str!("divisions_cn.csv");

/// One row of the division table.
#[derive(Debug, Clone)]
pub struct Division {
    /// 6-digit code.
    pub code: u32,
    /// Chinese name, e.g. 麦积区.
    pub name: &'static str,
    /// `province`, `prefecture` or `county`.
    pub level: &'static str,
    /// The parent's code (0 for a province).
    pub parent: u32,
}

fn table() -> &'static HashMap<u32, Division> {
    static T: OnceLock<HashMap<u32, Division>> = OnceLock::new();
    T.get_or_init(|| {
        TABLE
            .lines()
            .skip(1)
            .filter_map(|l| {
                let mut f = l.split(',');
                let code = f.next()?.parse().ok()?;
                let name = f.next()?;
                let level = f.next()?;
                let parent = f.next().unwrap_or("").parse().unwrap_or(0);
                Some((
                    code,
                    Division {
                        code,
                        name,
                        level,
                        parent,
                    },
                ))
            })
            .collect()
    })
}

/// A current GB/T 2260 code from the bundled table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct RegionCode(u32);

/// Why a region code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegionError {
    /// Not six ASCII digits.
    #[error("region code must be 6 digits")]
    Format,
    /// Six digits but not a current code of the bundled GB/T 2260 table.
    #[error("region code {0} is not in the GB/T 2260 table")]
    Unknown(u32),
}

impl RegionCode {
    /// Parse a 6-digit code and look it up. Full-width digits (`６２０５０３`, as a Chinese
    /// input method types them) read as their ASCII twins, as in ID numbers and amounts
    /// ([`crate::domain::half_width`]); spaces around are ignored.
    ///
    /// # Errors
    /// [`RegionError`].
    pub fn parse(raw: &str) -> Result<RegionCode, RegionError> {
        let ascii = crate::domain::half_width(raw);
        let s = ascii.as_deref().unwrap_or(raw).trim();
        if s.len() != 6 || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(RegionError::Format);
        }
        let code: u32 = s.parse().map_err(|_| RegionError::Format)?;
        if table().contains_key(&code) {
            Ok(RegionCode(code))
        } else {
            Err(RegionError::Unknown(code))
        }
    }
    /// The numeric code.
    pub fn code(self) -> u32 {
        self.0
    }
    /// The division's name (e.g. 麦积区).
    pub fn name(self) -> &'static str {
        table().get(&self.0).map(|d| d.name).unwrap_or("")
    }
    /// Full name from province down (甘肃省天水市麦积区).
    pub fn full_name(self) -> String {
        let mut parts = Vec::new();
        let mut c = self.0;
        while let Some(d) = table().get(&c) {
            if d.name != "市辖区" {
                parts.push(d.name);
            }
            c = d.parent;
        }
        parts.reverse();
        parts.concat()
    }
    /// Level: `province`, `prefecture` or `county`.
    pub fn level(self) -> &'static str {
        table().get(&self.0).map(|d| d.level).unwrap_or("")
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

/// Whether `code` is in the bundled table (current codes only).
pub fn is_current(code: u32) -> bool {
    table().contains_key(&code)
}

/// Whether `code` is a current county-level division of the bundled table (a county, a
/// county-level city or district; not a prefecture's or province's own code, nor a 市辖区
/// grouping): the unit of a `--partition` by county.
pub fn is_county(code: u32) -> bool {
    table()
        .get(&code)
        .is_some_and(|d| d.level == "county" && d.name != "市辖区")
}

/// The county-level codes under a province (`62`), prefecture (`6205`) or county prefix,
/// sorted. Only real county-level divisions (no 市辖区 groupings).
pub fn counties_under(prefix: u32) -> Vec<u32> {
    let (lo, hi) = match prefix {
        p if p < 100 => (p * 10_000, p * 10_000 + 9_999),
        p if p < 10_000 => (p * 100, p * 100 + 99),
        p => (p, p),
    };
    let mut v: Vec<u32> = table()
        .values()
        .filter(|d| d.level == "county" && d.name != "市辖区" && (lo..=hi).contains(&d.code))
        .map(|d| d.code)
        .collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gansu_county_is_found_with_its_full_name() {
        let r = RegionCode::parse("620503").unwrap();
        assert_eq!(r.name(), "麦积区");
        assert_eq!(r.full_name(), "甘肃省天水市麦积区");
        assert_eq!(r.level(), "county");
    }

    #[test]
    fn only_real_county_level_codes_are_counties() {
        assert!(is_county(620503));
        assert!(is_county(620521));
        // a prefecture's and a province's own code, a 市辖区 grouping, no division at all
        for code in [620500, 620000, 620101, 629999, 0] {
            assert!(!is_county(code), "{code}");
        }
    }

    #[test]
    fn unknown_and_malformed_codes_are_refused() {
        assert_eq!(
            RegionCode::parse("629999"),
            Err(RegionError::Unknown(629999))
        );
        assert_eq!(RegionCode::parse("62050"), Err(RegionError::Format));
        assert_eq!(
            RegionCode::parse("６２０５０３").map(RegionCode::code),
            Ok(620503),
            "full-width digits read as ASCII"
        );
        assert_eq!(RegionCode::parse("６２０５０"), Err(RegionError::Format));
    }

    #[test]
    fn gansu_has_its_counties() {
        let c = counties_under(62);
        assert!(c.contains(&620503) && c.contains(&620502));
        assert!(c.len() >= 86, "{}", c.len());
        assert!(counties_under(6205).iter().all(|c| c / 100 == 6205));
    }
}
