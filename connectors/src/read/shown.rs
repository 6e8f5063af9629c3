//! What the reader's notes and errors show of a file's own words: header cells no field map
//! reads and workbook sheet names. Such a word is the department's, and may be a person's
//! name or ID number (a header row that is a data row, a sheet per person or household); the
//! notes go to `summary.json`, `summary.html`, the run's state and error messages.
//!
//! [`shown_text`] masks, wherever they stand in the word:
//! - a run of digits of an ID-like length, in any spelling ([`mask_digit_runs`]: grouped
//!   with spaces, hyphens, dots, …; ASCII or full-width), as `6205**********540X`;
//! - a run of Han characters that has a name's shape ([`mask_name_runs`]): two to four of
//!   them that are no header word, whatever stands around them (`徐明远(元)`, `（徐明远）`,
//!   `徐明远1`), after a role word (`户主徐明远`), or joined by spaces or a middle dot
//!   (`徐 明远`, `买买提·吐尔逊`), as `徐**`.
//!
//! Ordinary header words stay readable: a run that holds a word of a field map or a common
//! header or sheet word (`交易日期`, `余额(元)`, `备注`, `上月备份`) is one, and so is any
//! run of five or more characters (`开户行名称`). A name of another shape (`徐明远的存款`) is
//! left to the batch, which masks every caseload person's name in the reader's text.

use std::sync::LazyLock;

/// Header words of columns no field map reads that departments often add, shown as written
/// (no one is named so).
pub(crate) const COMMON_EXTRA_HEADERS: &[&str] = &[
    "序号",
    "备注",
    "年份",
    "金额",
    "说明",
    "编号",
    "地址",
    "电话",
    "日期",
    "类型",
    "状态",
    "单位",
    "时间",
    "月份",
    "年度",
    "数量",
    "比例",
    "面积",
    "用途",
    "性别",
    "民族",
    "籍贯",
    "职业",
    "关系",
    "联系电话",
    "手机号码",
    "邮编",
    "页码",
    "来源",
    "部门",
    "机构",
    "网点",
    "币种",
    "利率",
    "期限",
    "险种",
    "账号",
    "卡号",
    "户号",
    "行号",
    "操作员",
    "经办人",
];

/// Words of headers and sheet names beyond the field maps' own: a run of Han characters
/// holding one is a header or sheet word, not a name (none is a given name).
const COMMON_WORDS: &[&str] = &[
    "名称",
    "代码",
    "号码",
    "编码",
    "余额",
    "收入",
    "支出",
    "交易",
    "开户",
    "银行",
    "本金",
    "利息",
    "摘要",
    "证件",
    "地区",
    "住址",
    "信息",
    "记录",
    "标志",
    "标识",
    "流水",
    "合同",
    "费用",
    "价格",
    "价值",
    "资产",
    "资金",
    "负债",
    "贷款",
    "保险",
    "社保",
    "医保",
    "工资",
    "补贴",
    "补助",
    "救助",
    "人口",
    "家庭",
    "性质",
    "类别",
    "级别",
    "等级",
    "核对",
    "核查",
    "审核",
    "结果",
    "原因",
    "意见",
    "万元",
    "千元",
    "百元",
    "亿元",
    // traditional spellings of the units (session 28's attack: `余额（萬元）` refused with
    // its unit masked as `萬*`)
    "萬元",
    "仟元",
    "佰元",
    "億元",
    "单位",
    "單位",
    "人民币",
    "币值",
    "数据",
    "明细",
    "备份",
    "清单",
    "列表",
    "选项",
    "模板",
    "目录",
    "附表",
    "附件",
    "统计",
    "台账",
    "名单",
    "存款",
    "上月",
    "本月",
    "上年",
    "本年",
    "季度",
    "合计",
    "小计",
    "总计",
    "汇总",
    "导出",
    "查询",
    "报表",
    "表格",
    "工作表",
    "总额",
    "净额",
    "笔数",
    "次数",
    "人数",
    "户数",
    "费率",
    "税率",
    "手续费",
    "服务费",
    "管理费",
    "支行",
    "分行",
];

/// Words naming a person's role, which a header may put before a name (`户主徐明远`).
const ROLE_WORDS: &[&str] = &[
    "户主",
    "申请人",
    "配偶",
    "本人",
    "姓名",
    "户名",
    "持卡人",
    "持有人",
    "家属",
    "成员",
    "父亲",
    "母亲",
    "子女",
    "儿子",
    "女儿",
    "赡养人",
    "扶养人",
    "抚养人",
    "客户",
];

/// Every word of two or more Han characters in the field maps' spellings, the common extra
/// headers, [`COMMON_WORDS`] and [`ROLE_WORDS`] (a name after a role word is found by
/// [`name_start`] all the same).
static WORDS: LazyLock<Vec<Vec<char>>> = LazyLock::new(|| {
    let mut words: Vec<Vec<char>> = Vec::new();
    let spellings = super::fieldmap::embedded_spellings();
    for s in spellings
        .iter()
        .map(String::as_str)
        .chain(COMMON_EXTRA_HEADERS.iter().copied())
        .chain(COMMON_WORDS.iter().copied())
        .chain(ROLE_WORDS.iter().copied())
    {
        let mut run: Vec<char> = Vec::new();
        for c in s.chars().chain(std::iter::once(' ')) {
            if is_han(c) {
                run.push(c);
            } else {
                if run.len() >= 2 && !words.contains(&run) {
                    words.push(run.clone());
                }
                run.clear();
            }
        }
    }
    words
});

/// A word of a file as notes and errors show it: BOM and zero-width characters removed,
/// trimmed, ID-like digit runs ([`mask_digit_runs`]) and name-shaped Han runs
/// ([`mask_name_runs`]) masked.
pub(crate) fn shown_text(s: &str) -> String {
    mask_name_runs(&mask_digit_runs(&super::fieldmap::clean(s)))
}

/// An unrecognised header cell as messages and notes show it ([`shown_text`]). Found by
/// session 17's attacks: a name in a header cell (a table whose header row is a data row, a
/// shifted line) was printed in summary.json, summary.html and the run's state, first as the
/// whole cell, then with anything around it (`徐明远(元)`, `户主徐明远`, `徐 明远`).
pub(crate) fn shown_header(h: &str) -> String {
    shown_text(h)
}

/// A workbook sheet's name as messages and notes show it ([`shown_text`]). Found by session
/// 17's attack: a sheet named after a person or by an ID number (`620503 19750324 540X`), as
/// per-person sheets are, was printed whole in summary.json and the run's state.
pub(crate) fn shown_sheet(name: &str) -> String {
    shown_text(name)
}

/// A Han character (CJK unified ideographs, extensions A to F, compatibility ideographs).
pub(crate) fn is_han(c: char) -> bool {
    matches!(c,
        '\u{4e00}'..='\u{9fff}'
        | '\u{3400}'..='\u{4dbf}'
        | '\u{20000}'..='\u{2ebef}'
        | '\u{f900}'..='\u{faff}'
        | '\u{30000}'..='\u{3134f}')
}

/// A middle dot between the parts of a transliterated name (`买买提·吐尔逊`), or a full stop
/// written for it.
fn is_name_dot(c: char) -> bool {
    matches!(
        c,
        '\u{00b7}' | '\u{2022}' | '\u{2027}' | '\u{30fb}' | '\u{ff65}' | '.' | '\u{ff0e}'
    )
}

/// Whether a run of Han characters holds a header or sheet word ([`WORDS`]).
fn is_word(run: &[char]) -> bool {
    WORDS
        .iter()
        .any(|w| w.len() <= run.len() && run.windows(w.len()).any(|x| x == w.as_slice()))
}

/// From which of `run`'s characters a name starts, when the run has a name's shape: two to
/// four characters that are no word (`Some(0)`), or a role word and two to four such
/// characters (`Some(len of the role)`).
fn name_start(run: &[char]) -> Option<usize> {
    let plain = |r: &[char]| (2..=4).contains(&r.len()) && !is_word(r) && !is_date_phrase(r);
    if plain(run) {
        return Some(0);
    }
    ROLE_WORDS.iter().find_map(|role| {
        let role: Vec<char> = role.chars().collect();
        (run.starts_with(&role) && plain(&run[role.len()..])).then_some(role.len())
    })
}

/// A run of Han characters that is a number, a date or a range of dates written out
/// (`十二月`, `二六年`, `第一季度`, `一日至二`): numerals and date words only, with a unit of
/// time among them (年, 月, 日, 号, 季度), and so no name (found by session 24's second
/// attack: `十二月` was shown `十**`). Numerals alone are not enough: 陆, 伍, 万, 周 are
/// surnames (`陆一` is a name; the third attack).
fn is_date_phrase(run: &[char]) -> bool {
    let date_han = |c: char| {
        "〇○零一二三四五六七八九十百千万两壹贰叁肆伍陆柒捌玖拾佰仟年月日号时分秒季度周第至到"
            .contains(c)
    };
    run.iter().all(|&c| date_han(c))
        && (run.iter().any(|c| "年月日号".contains(*c))
            || run.windows(2).any(|w| w == ['季', '度']))
}

/// Mask the Han runs of `s` that have a name's shape (see the module docs): the name's first
/// character stays, each other becomes `*` (`徐**`, `户主徐**`, `买*****`). Han characters
/// joined by at most three spaces, or by a middle dot, are one run; a run of parts joined by
/// spaces that is no name as a whole is looked at part by part (`徐明远 余额` → `徐** 余额`).
pub(crate) fn mask_name_runs(s: &str) -> String {
    if !s.chars().any(is_han) {
        return s.to_string();
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if !is_han(chars[i]) {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // the run: Han parts joined by spaces or dots, as char ranges
        let (mut parts, mut dotted, mut j) = (Vec::new(), false, i);
        loop {
            let p = j;
            while j < chars.len() && is_han(chars[j]) {
                j += 1;
            }
            parts.push(p..j);
            let mut k = j;
            while k < chars.len()
                && k - j < 3
                && (chars[k].is_whitespace() || is_name_dot(chars[k]))
            {
                k += 1;
            }
            if k > j && k < chars.len() && is_han(chars[k]) {
                dotted |= chars[j..k].iter().any(|&c| is_name_dot(c));
                j = k;
                continue;
            }
            break;
        }
        let letters: Vec<char> = parts
            .iter()
            .flat_map(|r| chars[r.clone()].to_vec())
            .collect();
        // chars[a..b] with the name masked from its `from`-th Han character on: that one
        // kept, the later ones starred, the spaces or dots between them dropped
        let masked = |a: usize, b: usize, from: usize, out: &mut String| {
            let mut seen = 0;
            for &c in &chars[a..b] {
                let han = is_han(c);
                if seen <= from {
                    out.push(c);
                } else if han {
                    out.push('*');
                }
                if han {
                    seen += 1;
                }
            }
        };
        if dotted {
            // a transliterated name's parts: the whole run is a name
            masked(i, j, 0, &mut out);
        } else if let Some(from) = name_start(&letters) {
            masked(i, j, from, &mut out);
        } else {
            // part by part, the spaces between them kept
            let mut at = i;
            for r in &parts {
                out.extend(&chars[at..r.start]);
                match name_start(&chars[r.clone()]) {
                    Some(from) => masked(r.start, r.end, from, &mut out),
                    None => out.extend(&chars[r.clone()]),
                }
                at = r.end;
            }
        }
        i = j;
    }
    out
}

// `is_digit_separator` (and `is_invisible`, the characters that print as nothing): the list
// the main crate's `domain::id_number` reads ID numbers through.
include!("separators.rs");

/// An ASCII or full-width digit's value, or a Chinese numeral's (`〇`/`零` to `九`, and the
/// financial forms `壹`…`玖`), as ID numbers are spelled in text. Found by session 24's
/// attack: a header cell `六二〇五〇三一九七五〇三二四五四〇X` was shown as
/// `六*〇五〇三一九七五〇三二四五四〇X` (its first two numerals masked as a name, the rest
/// as written), so the birth date and sequence of a caseload person were in summary.json.
fn digit_of(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        '０'..='９' => Some((u32::from(c) - u32::from('０')) as u8),
        '〇' | '○' | '零' => Some(0),
        '一' | '壹' | '幺' => Some(1),
        '二' | '贰' | '貳' | '两' | '兩' => Some(2),
        '三' | '叁' | '參' => Some(3),
        '四' | '肆' => Some(4),
        '五' | '伍' => Some(5),
        '六' | '陆' | '陸' => Some(6),
        '七' | '柒' => Some(7),
        '八' | '捌' => Some(8),
        '九' | '玖' => Some(9),
        _ => None,
    }
}

/// Mask every run of six or more digits, read on through separators between two digits
/// (`6205 0319 7503 2454 0X`, `620503-19750324-540X`, full-width digits) with an `X` after
/// the 17th, unless the run is a date, a month or a range of them (`2025-10`, `20251030`,
/// `2026.01.01-2026.12.31`): the first and last four of its characters stay when it has more
/// than eight, the rest become `*` (`6205**********540X`; separators dropped). Six digits is
/// where the reader takes a cell for a key ([`super::common::key_like`]).
pub(crate) fn mask_digit_runs(s: &str) -> String {
    if !s.chars().any(|c| digit_of(c).is_some()) {
        return s.to_string();
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if digit_of(chars[i]).is_none() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // the run: digit groups (their values), and the check character
        let mut groups: Vec<Vec<u8>> = vec![Vec::new()];
        let mut check = false;
        let mut j = i;
        loop {
            while let Some(d) = chars.get(j).and_then(|&c| digit_of(c)) {
                groups.last_mut().expect("one group").push(d);
                j += 1;
            }
            let n: usize = groups.iter().map(Vec::len).sum();
            let mut k = j;
            // (a tens, hundreds or thousands sign between numerals, `贰拾肆`, `一千九百`, is read
            // through as a separator: a
            // number so spelled was shown with its tail readable, session 24's second attack)
            while k < chars.len()
                && (is_digit_separator(chars[k])
                    || matches!(chars[k], '十' | '拾' | '百' | '佰' | '千' | '仟'))
            {
                k += 1;
            }
            if n == 17 && matches!(chars.get(k), Some('X' | 'x' | 'Ｘ' | 'ｘ')) {
                check = true;
                j = k + 1;
                break;
            }
            if k > j && chars.get(k).and_then(|&c| digit_of(c)).is_some() {
                groups.push(Vec::new());
                j = k;
                continue;
            }
            break;
        }
        let n: usize = groups.iter().map(Vec::len).sum();
        if n < 6 || (!check && dates(&groups)) {
            out.extend(&chars[i..j]);
        } else {
            let mut compact: String = groups
                .iter()
                .flatten()
                .map(|&d| char::from(b'0' + d))
                .collect();
            if check {
                compact.push('X');
            }
            let len = compact.len();
            if len <= 8 {
                out.extend(std::iter::repeat_n('*', len));
            } else {
                out.push_str(&compact[..4]);
                out.extend(std::iter::repeat_n('*', len - 8));
                out.push_str(&compact[len - 4..]);
            }
        }
        i = j;
    }
    out
}

/// Whether digit groups read as one or more dates or months, one after another: `YYYYMM` or
/// `YYYYMMDD` in one group, or `YYYY`, `M(M)` and maybe `D(D)` in groups of their own
/// (years 1900-2199).
fn dates(groups: &[Vec<u8>]) -> bool {
    let num = |g: &[u8]| g.iter().fold(0u32, |a, &d| a * 10 + u32::from(d));
    let year = |g: &[u8]| g.len() == 4 && (1900..=2199).contains(&num(g));
    let month = |g: &[u8]| (1..=2).contains(&g.len()) && (1..=12).contains(&num(g));
    let day = |g: &[u8]| (1..=2).contains(&g.len()) && (1..=31).contains(&num(g));
    let mut g = 0;
    while g < groups.len() {
        let a = &groups[g];
        let whole = |n: usize| {
            a.len() == n
                && year(&a[..4])
                && (1..=12).contains(&num(&a[4..6]))
                && (n == 6 || (1..=31).contains(&num(&a[6..8])))
        };
        if whole(6) || whole(8) {
            g += 1;
        } else if year(a) && groups.get(g + 1).is_some_and(|m| month(m)) {
            g += if groups.get(g + 2).is_some_and(|d| day(d)) {
                3
            } else {
                2
            };
        } else {
            return false;
        }
    }
    true
}
