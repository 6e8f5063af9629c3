//! Personal names (姓名) as compared and shown by hedui.
//!
//! Names are secondary evidence (the ID number is the key) but they are compared in
//! linkage and shown, masked, to clerks. Normalisation is NFKC (full-width letters,
//! compatibility forms), one middle dot U+00B7 for the many dots used in transcribed
//! minority and foreign names (·•‧・･∙⋅), and no invisible characters. A `?` or U+FFFD
//! left by a lossy export is an error, not a name.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// A normalised personal name. `Display`/`Debug` are masked (`王*兰`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Name(String);

/// What normalisation changed, recorded per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NameRepair {
    /// NFKC changed at least one code point.
    Nfkc,
    /// A middle-dot variant became U+00B7.
    MiddleDot,
    /// Invisible characters (ZWSP, ZWJ, BOM, soft hyphen …) or surrounding spaces removed.
    Invisible,
}

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty after normalisation.
    #[error("empty name")]
    Empty,
    /// A `?` or U+FFFD: characters were lost by a lossy export (wrong encoding).
    #[error("name holds '?' or U+FFFD: characters lost in a lossy export")]
    Lossy,
}

impl NameError {
    /// Stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            NameError::Empty => "name_empty",
            NameError::Lossy => "name_lossy",
        }
    }
}

const DOTS: [char; 9] = [
    '\u{2022}', '\u{2027}', '\u{30fb}', '\u{ff65}', '\u{2219}', '\u{22c5}', '\u{0387}', '\u{2024}',
    '\u{16eb}',
];

fn invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}' | '\u{00ad}' | '\u{180e}')
}

impl Name {
    /// Normalise a raw name.
    ///
    /// # Errors
    /// [`NameError::Empty`], or [`NameError::Lossy`] for `?`/U+FFFD.
    pub fn parse(raw: &str) -> Result<(Name, Vec<NameRepair>), NameError> {
        let mut repairs = Vec::new();
        if raw.contains(['?', '？', '\u{fffd}']) {
            return Err(NameError::Lossy);
        }
        let nfkc: String = raw.nfkc().collect();
        if nfkc != raw {
            repairs.push(NameRepair::Nfkc);
        }
        let mut out = String::with_capacity(nfkc.len());
        let mut dot = false;
        let mut inv = false;
        for c in nfkc.chars() {
            if invisible(c) {
                inv = true;
            } else if DOTS.contains(&c) {
                dot = true;
                out.push('\u{00b7}');
            } else {
                out.push(c);
            }
        }
        let trimmed = out.trim();
        if trimmed.len() != out.len() {
            inv = true;
        }
        if dot {
            repairs.push(NameRepair::MiddleDot);
        }
        if inv {
            repairs.push(NameRepair::Invisible);
        }
        if trimmed.is_empty() {
            return Err(NameError::Empty);
        }
        Ok((Name(trimmed.to_string()), repairs))
    }

    /// The full normalised name (for comparison; never for logs).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Masked: first and last character kept, the rest starred (`王*兰`, `李*`).
    pub fn masked(&self) -> String {
        let c: Vec<char> = self.0.chars().collect();
        match c.len() {
            0 | 1 => "*".into(),
            2 => format!("{}*", c[0]),
            n => format!("{}{}{}", c[0], "*".repeat(n - 2), c[n - 1]),
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn middle_dot_variants_become_one_dot() {
        for raw in [
            "阿依古丽•买买提",
            "阿依古丽・买买提",
            "阿依古丽･买买提",
            "阿依古丽‧买买提",
        ] {
            let (n, r) = Name::parse(raw).unwrap();
            assert_eq!(n.expose(), "阿依古丽·买买提", "{raw}");
            assert!(r.contains(&NameRepair::MiddleDot) || r.contains(&NameRepair::Nfkc));
        }
    }

    #[test]
    fn invisible_characters_are_removed_and_recorded() {
        let (n, r) = Name::parse("\u{feff}王\u{200b}秀兰\u{a0}").unwrap();
        assert_eq!(n.expose(), "王秀兰");
        assert!(r.contains(&NameRepair::Invisible));
    }

    #[test]
    fn a_lossy_export_is_refused() {
        assert_eq!(Name::parse("王?兰").unwrap_err(), NameError::Lossy);
        assert_eq!(Name::parse("王\u{fffd}兰").unwrap_err(), NameError::Lossy);
        assert_eq!(Name::parse(" \u{200b} ").unwrap_err(), NameError::Empty);
    }

    #[test]
    fn names_are_masked_for_display() {
        assert_eq!(Name::parse("王秀兰").unwrap().0.to_string(), "王*兰");
        assert_eq!(Name::parse("李强").unwrap().0.to_string(), "李*");
    }
}
