//! Personal names (姓名) as compared and shown by hedui.
//!
//! Names are secondary evidence (the ID number is the key) but they are compared in
//! linkage and shown, masked, to clerks. Normalisation is NFKC (full-width letters,
//! compatibility forms), one middle dot U+00B7 for the many dots used in transcribed
//! minority and foreign names (·•‧・･∙⋅), and no invisible characters. A `?` or U+FFFD
//! left by a lossy export is an error, not a name.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// The letters and digits of `text` (any script: Han characters, Latin letters lower-cased),
/// after NFKC: what a name is compared by where it may stand in free text (a `purpose`, a
/// `household_id`), so that `徐萍_霞`, `徐（萍）霞`, `徐\u{200b}萍霞` and `徐 萍·霞` all read as
/// `徐萍霞`, and `ＸＵ Ｐｉｎｇｘｉａ` as `xupingxia`. Found by session 26's attack: a name
/// joined by `_`, `、`, brackets or a zero-width space, or in full-width letters, passed the
/// checks that strip only spaces and dots.
pub fn letters_of(text: &str) -> String {
    text.nfkc()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

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

impl NameRepair {
    /// What the repair was and what it changed, for the per-row normalisation log: a stable
    /// kind code (`name_nfkc`, `name_middle_dot`, `name_invisible`) and a sentence naming the
    /// code points removed or replaced. Dots and invisible characters are named; characters
    /// that NFKC changed are only counted, since they are letters of the name.
    pub fn describe(&self, raw: &str) -> (&'static str, String) {
        match self {
            NameRepair::Nfkc => {
                let n = raw
                    .chars()
                    .filter(|c| c.to_string().nfkc().ne(std::iter::once(*c)))
                    .count();
                (
                    "name_nfkc",
                    format!(
                        "{n} code point(s) changed by NFKC (full-width or compatibility forms)"
                    ),
                )
            }
            NameRepair::MiddleDot => {
                let dots: Vec<char> = raw.chars().filter(|c| DOTS.contains(c)).collect();
                let dots: Vec<char> = if dots.is_empty() {
                    // A dot that NFKC produced (e.g. from a compatibility form).
                    raw.nfkc().filter(|c| DOTS.contains(c)).collect()
                } else {
                    dots
                };
                (
                    "name_middle_dot",
                    format!("{} → U+00B7", crate::domain::id_number::code_points(dots)),
                )
            }
            NameRepair::Invisible => {
                let kept: String = raw.chars().filter(|c| !invisible(*c)).collect();
                let mut inv: Vec<char> = raw.chars().filter(|c| invisible(*c)).collect();
                inv.extend(kept.chars().take_while(|c| c.is_whitespace()));
                inv.extend(kept.chars().rev().take_while(|c| c.is_whitespace()));
                (
                    "name_invisible",
                    format!("removed: {}", crate::domain::id_number::code_points(inv)),
                )
            }
        }
    }
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
    /// Whether `raw` is only characters U+4000–U+9FFF (UTF-8 lead bytes E4–E9: CJK unified
    /// ideographs, the end of extension A, Yijing hexagrams), and not empty. These have no
    /// NFKC decomposition and are not spaces, dots, invisible or cased characters, so
    /// [`Name::parse`] gives such a name back unchanged with no repair, and
    /// `link::compare::normalise_name` too: nearly every name of a Chinese caseload or
    /// extract is one, and the hot paths (every caseload person, every source row tested
    /// for a namesake) skip normalising it.
    pub fn is_plain_ideographs(raw: &str) -> bool {
        let b = raw.as_bytes();
        !b.is_empty()
            && b.len().is_multiple_of(3)
            && b.chunks_exact(3).all(|c| (0xE4..=0xE9).contains(&c[0]))
    }

    /// Normalise a raw name.
    ///
    /// # Errors
    /// [`NameError::Empty`], or [`NameError::Lossy`] for `?`/U+FFFD.
    pub fn parse(raw: &str) -> Result<(Name, Vec<NameRepair>), NameError> {
        let mut repairs = Vec::new();
        if raw.contains(['?', '？', '\u{fffd}']) {
            return Err(NameError::Lossy);
        }
        // Invisible characters go first: removed after NFKC, they could leave a sequence
        // that NFKC would compose (fuzzing found `e` ZWSP U+0301), and the name would not
        // be in normal form.
        // Surrounding spaces (a no-break space too) go before NFKC as well, so that they
        // count as removed, not as changed by NFKC.
        let visible: String = raw.chars().filter(|c| !invisible(*c)).collect();
        let visible = visible.trim();
        let mut inv = visible.len() != raw.len();
        let nfkc: String = visible.nfkc().collect();
        if nfkc != visible {
            repairs.push(NameRepair::Nfkc);
        }
        let mut out = String::with_capacity(nfkc.len());
        let mut dot = false;
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

    /// Every character the fast path admits is its own normal form: `Name::parse` gives
    /// each back unchanged and with no repair, alone and in a name; other names are not
    /// admitted.
    #[test]
    fn plain_ideographs_are_their_own_normal_form() {
        for c in '\u{4000}'..='\u{9fff}' {
            let one = c.to_string();
            assert!(Name::is_plain_ideographs(&one), "{:04X}", c as u32);
            let (n, repairs) = Name::parse(&one).unwrap();
            assert_eq!(
                (n.expose(), repairs.len()),
                (one.as_str(), 0),
                "{:04X}",
                c as u32
            );
        }
        let (n, repairs) = Name::parse("欧阳娜娜").unwrap();
        assert_eq!((n.expose(), repairs.len()), ("欧阳娜娜", 0));
        for other in [
            "",
            "王 芳",
            "王·芳",
            "王?",
            "Ali",
            "王\u{200b}芳",
            "\u{3400}",
            "\u{f900}",
            "王芳 ",
        ] {
            assert!(!Name::is_plain_ideographs(other), "{other:?}");
        }
    }

    /// Regression found by the fuzz target `text_normalise`: an invisible character between
    /// a letter and a combining mark was removed after NFKC, leaving `e` U+0301, which is not
    /// in normal form (normalising again changed it).
    #[test]
    fn normalising_a_normalised_name_changes_nothing() {
        for raw in [
            "e\u{200b}\u{301}",
            "\u{a0}王秀兰\u{200b}",
            "ＡＢＣ",
            "阿依古丽•买买提",
            " e\u{301}",
        ] {
            let (n, _) = Name::parse(raw).unwrap();
            let (again, r) = Name::parse(n.expose()).unwrap();
            assert_eq!(again.expose(), n.expose(), "{raw:?}");
            assert!(r.is_empty(), "{raw:?}: {r:?}");
        }
        assert_eq!(
            Name::parse("e\u{200b}\u{301}").unwrap().0.expose(),
            "\u{e9}"
        );
    }

    #[test]
    fn a_repair_names_the_code_points_it_removed_but_not_the_letters() {
        let raw = "\u{a0}王秀兰\u{200b}";
        let (_, r) = Name::parse(raw).unwrap();
        assert_eq!(r, vec![NameRepair::Invisible]);
        assert_eq!(
            r[0].describe(raw),
            ("name_invisible", "removed: U+200B, U+00A0".to_string())
        );
        let raw = "ＷＡＮＧ";
        let (_, r) = Name::parse(raw).unwrap();
        assert_eq!(r, vec![NameRepair::Nfkc]);
        let (kind, detail) = r[0].describe(raw);
        assert_eq!(kind, "name_nfkc");
        assert_eq!(
            detail,
            "4 code point(s) changed by NFKC (full-width or compatibility forms)"
        );
        let raw = "阿依古丽•买买提";
        let (_, r) = Name::parse(raw).unwrap();
        assert_eq!(
            r[0].describe(raw),
            ("name_middle_dot", "U+2022 → U+00B7".to_string())
        );
    }

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
