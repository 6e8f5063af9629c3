//! Fixed vocabularies of the generator: the §2 label lists (one `&'static` slice per
//! vocabulary column), name pools, region names and institution codes.
//!
//! The label lists are the exact spellings of DESIGN.md §2 and GLOSSARY.md; a [`Column::Enum`]
//! code indexes one of them.
//!
//! [`Column::Enum`]: super::Column::Enum

// ---- DESIGN.md §2 vocabularies (the order is the code: index 0 = code 0) ----------------
pub const GENDER: &[&str] = &["male", "female"];

// Codes into the lists above, named where the generator decides on them.
pub use hedui_connectors::schema::vocab::{
    AREA, BANK_PRODUCT, CATEGORY, ENTITY_ROLE, ENTITY_STATUS, ENTITY_TYPE, HUKOU_TYPE, INCOME_TYPE,
    INSURANCE_PRODUCT, INSURANCE_TYPE, PROGRAMME, PROPERTY_USAGE, RECORD_TYPE, REGISTRATION_STATUS,
    RELATION, SUPPORTER_RELATION, VEHICLE_KIND, VEHICLE_STATUS, VEHICLE_USAGE,
};

pub const AREA_URBAN: u8 = 0;
pub const AREA_RURAL: u8 = 1;
pub const PROG_DIBAO: u8 = 0;
pub const PROG_TEKUN: u8 = 1;
pub const PROG_APPLICANT: u8 = 3;
pub const REL_APPLICANT: u8 = 0;
pub const REL_SPOUSE: u8 = 1;
pub const REL_CHILD: u8 = 2;
pub const REL_PARENT: u8 = 3;
pub const REL_SIBLING: u8 = 4;
pub const REL_GRANDCHILD: u8 = 5;
pub const REL_OTHER: u8 = 6;
pub const SREL_CHILD: u8 = 0;
pub const SREL_PARENT: u8 = 1;
pub const SREL_SPOUSE: u8 = 2;
pub const ST_NORMAL: u8 = 0;
pub const ST_DECEASED: u8 = 1;
pub const ST_EMIGRATED: u8 = 2;
pub const ST_CANCELLED: u8 = 3;
pub const IT_WAGES: u8 = 0;
pub const IT_LABOUR: u8 = 1;
pub const IT_BUSINESS: u8 = 2;
pub const IT_LEASE: u8 = 3;
pub const IT_INTEREST: u8 = 4;
pub const IT_OTHER: u8 = 5;
pub const INS_EMPLOYEE_PENSION: u8 = 0;
pub const INS_RESIDENT_PENSION: u8 = 1;
pub const INS_UNEMPLOYMENT: u8 = 2;
pub const INS_MEDICAL: u8 = 3;
pub const INS_INJURY: u8 = 4;
pub const RT_CONTRIBUTION: u8 = 0;
pub const RT_BENEFIT: u8 = 1;
pub const USE_RESIDENTIAL: u8 = 0;
pub const USE_COMMERCIAL: u8 = 1;
pub const USE_OFFICE: u8 = 2;
pub const USE_PARKING: u8 = 3;
pub const USE_INDUSTRIAL: u8 = 4;
pub const USE_OTHER: u8 = 5;
pub const ET_ENTERPRISE: u8 = 0;
pub const ET_INDIVIDUAL: u8 = 1;
pub const ET_COOPERATIVE: u8 = 2;
pub const ROLE_LEGAL_REP: u8 = 0;
pub const ROLE_SHAREHOLDER: u8 = 1;
pub const ROLE_OPERATOR: u8 = 2;
pub const ES_ACTIVE: u8 = 0;
pub const VK_CAR: u8 = 0;
pub const VK_SUV: u8 = 1;
pub const VK_VAN: u8 = 2;
pub const VK_TRUCK: u8 = 3;
pub const VK_BUS: u8 = 4;
pub const VK_MOTORCYCLE: u8 = 5;
pub const VK_TRICYCLE: u8 = 6;
pub const VK_TRACTOR: u8 = 7;
pub const VK_HARVESTER: u8 = 8;
pub const VK_VESSEL: u8 = 9;
pub const VK_DISABLED: u8 = 10;
pub const VS_NORMAL: u8 = 0;

// ---- institutions (illustrative codes, not an official register) ------------------------
/// Bank institution codes in the style of the PBoC financial-licence codes (head offices).
pub const BANKS: &[&str] = &[
    "B0001H", "B0002H", "B0003H", "B0004H", "B0005H", "B0018H", "B0228H", "B0349H", "B1044R",
    "B0006H",
];
/// Relative frequency of each bank for accounts in a Gansu county (rural credit and the postal
/// bank are common among caseload households).
pub const BANK_WEIGHTS: &[f64] = &[0.16, 0.2, 0.08, 0.12, 0.04, 0.16, 0.06, 0.05, 0.1, 0.03];
pub const INSURERS: &[&str] = &["PICC", "CLIC", "PAIC", "CPIC", "TKLI", "NCLI", "GYIC"];
pub const BROKERS: &[&str] = &["HTSC", "GTJA", "CITICS", "HAZQ", "GFSC", "CMSC"];
pub const PLATFORMS: &[&str] = &[
    "alipay",
    "wechat_pay",
    "jd_finance",
    "meituan",
    "douyin_pay",
];
pub const INTERNET_PRODUCTS: &[&str] = &[
    "余额宝",
    "零钱通",
    "小金库",
    "月月盈",
    "稳健理财",
    "钱包理财",
];
/// Products offered by each platform (indices into [`INTERNET_PRODUCTS`]).
pub const PLATFORM_PRODUCTS: &[&[u8]] = &[&[0, 4], &[1, 4], &[2], &[3], &[5]];

// ---- names ---------------------------------------------------------------------------------
/// Common surnames, most frequent first (Zipf-like weights are applied by the generator);
/// a few frequent in the north-west (牛, 包, 雒, 蒲, 巩, 安, 祁, 火) are included.
pub const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "马", "胡", "朱", "郭",
    "何", "罗", "高", "林", "梁", "郑", "谢", "宋", "唐", "韩", "冯", "董", "程", "曹", "袁", "邓",
    "许", "傅", "沈", "彭", "吕", "苏", "卢", "蒋", "蔡", "贾", "丁", "魏", "薛", "叶", "闫", "余",
    "潘", "杜", "戴", "夏", "钟", "汪", "田", "任", "姜", "范", "方", "石", "姚", "谭", "廖", "邹",
    "熊", "金", "陆", "郝", "孔", "白", "崔", "康", "毛", "邱", "秦", "江", "史", "顾", "侯", "邵",
    "孟", "龙", "万", "段", "雷", "钱", "汤", "尹", "黎", "易", "常", "武", "乔", "贺", "赖", "龚",
    "牛", "包", "雒", "蒲", "巩", "安", "祁", "火",
];
pub const GIVEN_MALE: &[&str] = &[
    "军", "建", "国", "明", "强", "平", "伟", "勇", "杰", "志", "海", "斌", "峰", "磊", "刚", "文",
    "龙", "兵", "辉", "鹏", "涛", "亮", "波", "林", "超", "东", "宏", "宇", "浩", "俊", "凯", "博",
    "彬", "鑫", "成", "荣", "德", "福", "生", "虎", "江", "山", "锋", "旭", "振", "永", "瑞", "祥",
    "喜", "贵", "宝", "有", "忠", "义", "堂", "银",
];
pub const GIVEN_FEMALE: &[&str] = &[
    "芳", "娟", "敏", "静", "丽", "艳", "霞", "燕", "玲", "萍", "红", "梅", "英", "华", "兰", "琴",
    "慧", "莉", "婷", "雪", "洁", "颖", "倩", "佳", "欣", "蓉", "媛", "瑶", "玉", "凤", "秀", "桂",
    "珍", "春", "花", "丹", "蕾", "璐", "妍", "娥", "巧", "翠", "香", "亚", "彩", "梦",
];

// ---- places --------------------------------------------------------------------------------
/// The 86 county-level divisions of Gansu in the MCA GB/T 2260 list (code, name): the default
/// "other counties" of a Gansu run and the place names of entity names and certificates.
pub const GANSU_COUNTIES: &[(u32, &str)] = &[
    (620102, "城关区"),
    (620103, "七里河区"),
    (620104, "西固区"),
    (620105, "安宁区"),
    (620111, "红古区"),
    (620121, "永登县"),
    (620122, "皋兰县"),
    (620123, "榆中县"),
    (620302, "金川区"),
    (620321, "永昌县"),
    (620402, "白银区"),
    (620403, "平川区"),
    (620421, "靖远县"),
    (620422, "会宁县"),
    (620423, "景泰县"),
    (620502, "秦州区"),
    (620503, "麦积区"),
    (620521, "清水县"),
    (620522, "秦安县"),
    (620523, "甘谷县"),
    (620524, "武山县"),
    (620525, "张家川回族自治县"),
    (620602, "凉州区"),
    (620621, "民勤县"),
    (620622, "古浪县"),
    (620623, "天祝藏族自治县"),
    (620702, "甘州区"),
    (620721, "肃南裕固族自治县"),
    (620722, "民乐县"),
    (620723, "临泽县"),
    (620724, "高台县"),
    (620725, "山丹县"),
    (620802, "崆峒区"),
    (620821, "泾川县"),
    (620822, "灵台县"),
    (620823, "崇信县"),
    (620825, "庄浪县"),
    (620826, "静宁县"),
    (620881, "华亭市"),
    (620902, "肃州区"),
    (620921, "金塔县"),
    (620922, "瓜州县"),
    (620923, "肃北蒙古族自治县"),
    (620924, "阿克塞哈萨克族自治县"),
    (620981, "玉门市"),
    (620982, "敦煌市"),
    (621002, "西峰区"),
    (621021, "庆城县"),
    (621022, "环县"),
    (621023, "华池县"),
    (621024, "合水县"),
    (621025, "正宁县"),
    (621026, "宁县"),
    (621027, "镇原县"),
    (621102, "安定区"),
    (621121, "通渭县"),
    (621122, "陇西县"),
    (621123, "渭源县"),
    (621124, "临洮县"),
    (621125, "漳县"),
    (621126, "岷县"),
    (621202, "武都区"),
    (621221, "成县"),
    (621222, "文县"),
    (621223, "宕昌县"),
    (621224, "康县"),
    (621225, "西和县"),
    (621226, "礼县"),
    (621227, "徽县"),
    (621228, "两当县"),
    (622901, "临夏市"),
    (622921, "临夏县"),
    (622922, "康乐县"),
    (622923, "永靖县"),
    (622924, "广河县"),
    (622925, "和政县"),
    (622926, "东乡族自治县"),
    (622927, "积石山保安族东乡族撒拉族自治县"),
    (623001, "合作市"),
    (623021, "临潭县"),
    (623022, "卓尼县"),
    (623023, "舟曲县"),
    (623024, "迭部县"),
    (623025, "玛曲县"),
    (623026, "碌曲县"),
    (623027, "夏河县"),
];

/// Short name of a province (first two digits of a region code), used on plates and
/// real-estate certificates.
pub fn province_abbr(region: u32) -> &'static str {
    match region / 10_000 {
        11 => "京",
        12 => "津",
        13 => "冀",
        14 => "晋",
        15 => "蒙",
        21 => "辽",
        22 => "吉",
        23 => "黑",
        31 => "沪",
        32 => "苏",
        33 => "浙",
        34 => "皖",
        35 => "闽",
        36 => "赣",
        37 => "鲁",
        41 => "豫",
        42 => "鄂",
        43 => "湘",
        44 => "粤",
        45 => "桂",
        46 => "琼",
        50 => "渝",
        51 => "川",
        52 => "贵",
        53 => "云",
        54 => "藏",
        61 => "陕",
        62 => "甘",
        63 => "青",
        64 => "宁",
        65 => "新",
        _ => "甘",
    }
}

/// Licence-plate letter of a prefecture (Gansu's real assignment; elsewhere an approximation
/// by the prefecture's position, skipping I and O).
pub fn plate_letter(region: u32) -> char {
    const GANSU: &[(u32, char)] = &[
        (6201, 'A'),
        (6202, 'B'),
        (6203, 'C'),
        (6204, 'D'),
        (6205, 'E'),
        (6206, 'H'),
        (6207, 'G'),
        (6208, 'L'),
        (6209, 'F'),
        (6210, 'M'),
        (6211, 'J'),
        (6212, 'K'),
        (6229, 'N'),
        (6230, 'P'),
    ];
    let pref = region / 100;
    if let Some(&(_, c)) = GANSU.iter().find(|(p, _)| *p == pref) {
        return c;
    }
    const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    LETTERS[((pref % 100).saturating_sub(1) as usize) % LETTERS.len()] as char
}

/// County name for a code when known (Gansu), else `None`.
pub fn county_name(region: u32) -> Option<&'static str> {
    GANSU_COUNTIES
        .iter()
        .find(|(c, _)| *c == region)
        .map(|(_, n)| *n)
}

/// Entity-name parts: a "lucky" character and type-specific suffixes (index = entity type).
pub const ENTITY_LUCKY: &[&str] = &[
    "鑫", "兴", "顺", "发", "隆", "盛", "源", "泰", "丰", "康", "瑞", "达",
];
pub const ENTITY_SUFFIX: &[&[&str]] = &[
    &[
        "商贸有限公司",
        "建筑工程有限公司",
        "农业开发有限公司",
        "物流有限公司",
        "果业有限公司",
        "建材有限公司",
    ],
    &[
        "便利店",
        "面馆",
        "养殖场",
        "汽车修理部",
        "蔬菜批发部",
        "理发店",
        "五金店",
        "果品经销部",
    ],
    &[
        "苹果专业合作社",
        "花椒种植专业合作社",
        "中药材专业合作社",
        "养殖专业合作社",
        "蔬菜专业合作社",
    ],
];

/// GB 32100-2015 unified social credit code: character set and weights of the 17 body
/// characters; the 18th is the check character.
pub const USCC_CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
pub const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// A unified social credit code: registration-authority and entity-type prefix (`91`
/// enterprise, `92` individual business, `93` cooperative), the region, a 9-character
/// organisation code derived from `serial`, and the GB 32100 check character.
pub fn credit_code(prefix: &str, region: u32, serial: u64) -> String {
    let mut body = Vec::with_capacity(18);
    body.extend_from_slice(prefix.as_bytes());
    body.extend_from_slice(format!("{region:06}").as_bytes());
    // organisation code: "MA" + 7 base-31 characters of the serial (real new codes start MA)
    body.extend_from_slice(b"MA");
    let mut s = serial;
    let mut tail = [b'0'; 7];
    for t in tail.iter_mut().rev() {
        *t = USCC_CHARS[(s % 31) as usize];
        s /= 31;
    }
    body.extend_from_slice(&tail);
    let sum: u32 = body
        .iter()
        .zip(USCC_WEIGHTS)
        .map(|(c, w)| USCC_CHARS.iter().position(|x| x == c).unwrap_or(0) as u32 * w)
        .sum();
    let check = (31 - sum % 31) % 31;
    body.push(USCC_CHARS[check as usize]);
    String::from_utf8(body).expect("ASCII")
}
