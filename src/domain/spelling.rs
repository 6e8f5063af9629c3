//! How a value was spelled on its way in: spreadsheet text markers, full-width forms, whole
//! numbers and years. Kept apart from `mod.rs` so that the reader's fuzz crate
//! (`connectors/fuzz/`) compiles the same functions from this file.

/// The text inside a spreadsheet text marker, and the marker's kind: `="2025"` (a formula
/// a spreadsheet export writes to keep a cell as text; `"formula"`) or `'2025` (the leading
/// apostrophe Excel keeps a cell as text with; `"quote"`). `None` when `raw` (trimmed) has
/// neither. ID numbers have their own rule (`id_spreadsheet_formula`, `id_spreadsheet_quote`);
/// amounts and years are read through this one, the change logged per row
/// (`money_spreadsheet_formula`, `year_spreadsheet_quote`, …).
pub fn spreadsheet_text(raw: &str) -> Option<(&str, &'static str)> {
    let t = raw.trim();
    if let Some(inner) = t.strip_prefix("=\"").and_then(|r| r.strip_suffix('"')) {
        return Some((inner, "formula"));
    }
    t.strip_prefix('\'').map(|inner| (inner, "quote"))
}

/// What a spreadsheet text marker's removal is logged as (never the value).
pub(crate) fn spreadsheet_detail(marker: &str) -> &'static str {
    if marker == "formula" {
        "spreadsheet formula wrapper U+003D U+0022 … U+0022 (=\"…\") removed"
    } else {
        "leading spreadsheet text marker U+0027 (') removed"
    }
}

/// A whole number as written in a department's file, ready for `parse::<i64>()`: trimmed,
/// a spreadsheet text marker removed ([`spreadsheet_text`]), full-width digits as ASCII
/// ([`half_width`]). `２０２５`, `'2025` and `="2025"` all read `2025`.
pub fn whole_number_text(raw: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    let t = spreadsheet_text(raw).map_or(raw, |(inner, _)| inner);
    match half_width(t) {
        Some(ascii) => Cow::Owned(ascii.trim().to_string()),
        None => Cow::Borrowed(t.trim()),
    }
}

/// The changes [`whole_number_text`] made to a year column's `raw`, for the per-row log:
/// `year_spreadsheet_formula` / `year_spreadsheet_quote`, `year_fullwidth` (never the value).
pub fn year_spelling(raw: &str) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let t = match spreadsheet_text(raw) {
        Some((inner, marker)) => {
            out.push((
                if marker == "formula" {
                    "year_spreadsheet_formula"
                } else {
                    "year_spreadsheet_quote"
                },
                spreadsheet_detail(marker).to_string(),
            ));
            inner
        }
        None => raw,
    };
    let ascii = half_width(t);
    if ascii.is_some() {
        out.push((
            "year_fullwidth",
            format!("{} → ASCII", full_width_points(t)),
        ));
    }
    // `+2025` reads as 2025 (found by the session-14 attack: without a record)
    if ascii.as_deref().unwrap_or(t).trim_start().starts_with('+') {
        out.push(("year_plus_sign", "leading U+002B (+) removed".to_string()));
    }
    out
}

/// `raw` with its full-width forms (U+FF01–U+FF5E: `１２３`, `．`, `，`, `－`, `／`) as
/// their ASCII twins and the ideographic space (U+3000) as a space, as a Chinese input method
/// types them; `None` when it has none. Amounts and dates are read through it (IDs have their
/// own rule, `id_fullwidth`); the change is logged per row (`money_fullwidth`,
/// `date_fullwidth`).
pub fn half_width(raw: &str) -> Option<String> {
    let wide = |c: char| matches!(c, '\u{FF01}'..='\u{FF5E}' | '\u{3000}');
    if !raw.chars().any(wide) {
        return None;
    }
    Some(
        raw.chars()
            .map(|c| match c {
                '\u{3000}' => ' ',
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                _ => c,
            })
            .collect(),
    )
}

/// Zero-width and byte-order-mark characters (U+200B–U+200F, U+2060, U+FEFF): invisible in
/// a spreadsheet, typed by copying from web pages and word processors.
pub(crate) fn invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{2060}' | '\u{feff}')
}

/// A vocabulary word (`urban`, `applicant`, `child`) as written in a department's file, ready
/// to be matched: full-width forms as ASCII ([`half_width`]) and invisible characters
/// ([`invisible`]) removed; `None` when `raw` has neither. Case and spaces are the caller's.
/// (Found by session 27's attack: `child` followed by U+200B was refused as `relation_unknown`.)
pub fn vocabulary_fold(raw: &str) -> Option<String> {
    let folded = half_width(raw);
    let t = folded.as_deref().unwrap_or(raw);
    if t.chars().any(invisible) {
        Some(t.chars().filter(|&c| !invisible(c)).collect())
    } else {
        folded
    }
}

/// Chinese words departments write for the §2 vocabulary words, each with the words it may
/// stand for (the first one a column allows is read: `注销` is `cancelled` in the household
/// registration and `deregistered` in the market-entity register). Exact words only, as the
/// departments' forms and the national standards name them (GB/T 4761 family relations,
/// the individual income tax law's income items, the social insurance law's insurances);
/// anything else stays refused. `户主` (household head) is not here: the head need not be
/// the applicant; nor are one-character words (`女`, `子`: a gender shifted into the column
/// would read as a relation).
const CHINESE_WORDS: &[(&str, &[&str])] = &[
    // relation (to the applicant), supporter_relation
    ("申请人", &["applicant"]),
    ("本人", &["applicant"]),
    ("配偶", &["spouse"]),
    ("妻子", &["spouse"]),
    ("丈夫", &["spouse"]),
    ("子女", &["child"]),
    ("儿子", &["child"]),
    ("女儿", &["child"]),
    ("长子", &["child"]),
    ("次子", &["child"]),
    ("长女", &["child"]),
    ("次女", &["child"]),
    ("养子", &["child"]),
    ("养女", &["child"]),
    ("继子", &["child"]),
    ("继女", &["child"]),
    ("父母", &["parent"]),
    ("父亲", &["parent"]),
    ("母亲", &["parent"]),
    ("养父", &["parent"]),
    ("养母", &["parent"]),
    ("继父", &["parent"]),
    ("继母", &["parent"]),
    ("兄弟姐妹", &["sibling"]),
    ("兄弟", &["sibling"]),
    ("姐妹", &["sibling"]),
    ("哥哥", &["sibling"]),
    ("弟弟", &["sibling"]),
    ("姐姐", &["sibling"]),
    ("妹妹", &["sibling"]),
    ("孙子", &["grandchild"]),
    ("孙女", &["grandchild"]),
    ("孙子女", &["grandchild"]),
    ("外孙子", &["grandchild"]),
    ("外孙女", &["grandchild"]),
    ("外孙子女", &["grandchild"]),
    ("其他", &["other"]),
    ("其它", &["other"]),
    // area, hukou_type
    ("城镇", &["urban"]),
    ("城市", &["urban"]),
    ("非农业", &["urban"]),
    ("非农业户口", &["urban"]),
    ("城镇户口", &["urban"]),
    ("农村", &["rural"]),
    ("农业", &["rural"]),
    ("农业户口", &["rural"]),
    ("农村户口", &["rural"]),
    // programme, category
    ("低保", &["dibao"]),
    ("最低生活保障", &["dibao"]),
    ("城市低保", &["dibao"]),
    ("农村低保", &["dibao"]),
    ("城乡低保", &["dibao"]),
    ("低保户", &["dibao"]),
    ("特困", &["tekun"]),
    ("特困供养", &["tekun"]),
    ("特困人员", &["tekun"]),
    ("特困人员救助供养", &["tekun"]),
    ("特困户", &["tekun"]),
    ("低收入", &["low_income"]),
    ("低收入家庭", &["low_income"]),
    ("低收入人口", &["low_income"]),
    ("低保边缘", &["low_income"]),
    ("全额", &["full"]),
    ("差额", &["partial"]),
    ("一类", &["class1"]),
    ("二类", &["class2"]),
    ("三类", &["class3"]),
    ("四类", &["class4"]),
    // registration_status, entity_status, vehicle_status
    ("正常", &["normal"]),
    ("死亡", &["deceased"]),
    ("迁出", &["emigrated"]),
    ("注销", &["cancelled", "deregistered"]),
    ("存续", &["active"]),
    ("在业", &["active"]),
    ("开业", &["active"]),
    ("吊销", &["revoked"]),
    ("报废", &["scrapped"]),
    ("转出", &["transferred"]),
    ("过户", &["transferred"]),
    // income_type (个人所得税法 第二条)
    ("工资薪金", &["wages"]),
    ("工资、薪金所得", &["wages"]),
    ("工资薪金所得", &["wages"]),
    ("劳务报酬", &["labour"]),
    ("劳务报酬所得", &["labour"]),
    ("经营所得", &["business"]),
    ("财产租赁所得", &["property_lease"]),
    ("利息、股息、红利所得", &["interest_dividend"]),
    ("利息股息红利所得", &["interest_dividend"]),
    // insurance_type, record_type
    ("企业职工基本养老保险", &["employee_pension"]),
    ("职工基本养老保险", &["employee_pension"]),
    ("城乡居民基本养老保险", &["resident_pension"]),
    ("失业保险", &["unemployment"]),
    ("基本医疗保险", &["medical"]),
    ("工伤保险", &["injury"]),
    ("缴费", &["contribution"]),
    ("待遇", &["benefit"]),
    // property_usage
    ("住宅", &["residential"]),
    ("商业", &["commercial"]),
    ("办公", &["office"]),
    ("车位", &["parking"]),
    ("车库", &["parking"]),
    ("工业", &["industrial"]),
    // entity_type, entity_role
    ("企业", &["enterprise"]),
    ("个体工商户", &["individual_business"]),
    ("农民专业合作社", &["cooperative"]),
    ("法定代表人", &["legal_representative"]),
    ("股东", &["shareholder"]),
    ("经营者", &["operator"]),
    // vehicle_kind, vehicle_usage
    ("摩托车", &["motorcycle"]),
    ("拖拉机", &["tractor"]),
    ("联合收割机", &["harvester"]),
    ("船舶", &["vessel"]),
    ("残疾人专用车", &["disabled_vehicle"]),
    ("非营运", &["private"]),
    ("营运", &["business"]),
    // bank_product, insurance_product
    ("活期", &["current"]),
    ("定期", &["time"]),
    ("理财", &["wealth_management"]),
];

/// The §2 word of `allowed` a Chinese word written for it stands for ([`CHINESE_WORDS`]:
/// `配偶` → `spouse`, `城镇` → `urban`, `注销` → `cancelled` where allowed); `raw` is matched
/// whole, after [`vocabulary_fold`] and trimming. `None` for any other text. (Session 27's
/// note: `配偶` and `城镇` were refused, the household referred.)
pub fn chinese_vocabulary_word(raw: &str, allowed: &[&'static str]) -> Option<&'static str> {
    let folded = vocabulary_fold(raw);
    let t = folded.as_deref().unwrap_or(raw).trim();
    if t.is_ascii() {
        return None;
    }
    CHINESE_WORDS
        .iter()
        .find(|(w, _)| *w == t)
        .and_then(|(_, to)| to.iter().find(|e| allowed.contains(e)).copied())
}

/// The distinct invisible characters of `raw` ([`invisible`]), as code points, for a
/// normalisation detail.
pub(crate) fn invisible_points(raw: &str) -> String {
    super::id_number::code_points(raw.chars().filter(|&c| invisible(c)))
}

/// The distinct full-width characters of `raw`, as code points, for a normalisation detail.
pub(crate) fn full_width_points(raw: &str) -> String {
    super::id_number::code_points(
        raw.chars()
            .filter(|c| matches!(c, '\u{FF01}'..='\u{FF5E}' | '\u{3000}')),
    )
}

#[cfg(test)]
mod tests {
    use super::chinese_vocabulary_word as word;

    #[test]
    fn a_chinese_word_is_the_word_its_column_allows() {
        let status = hedui_connectors::schema::vocab::REGISTRATION_STATUS;
        let entity = hedui_connectors::schema::vocab::ENTITY_STATUS;
        let vehicle = hedui_connectors::schema::vocab::VEHICLE_STATUS;
        assert_eq!(word("注销", status), Some("cancelled"));
        assert_eq!(word("注销", entity), Some("deregistered"));
        // a word no allowed word is: none
        assert_eq!(word("注销", vehicle), None);
        assert_eq!(
            word(" 配偶\u{200b}", &["applicant", "spouse"]),
            Some("spouse")
        );
        assert_eq!(
            word(
                "工资、薪金所得",
                hedui_connectors::schema::vocab::INCOME_TYPE
            ),
            Some("wages")
        );
        for other in ["户主", "女", "spouse", "", "配 偶", "城里"] {
            assert_eq!(
                word(other, &["applicant", "spouse", "child", "urban"]),
                None,
                "{other}"
            );
        }
    }
}
