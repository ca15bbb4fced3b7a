//! Values turned into the names of the recorded prompts that speak them.
//!
//! Every function here is pure: it maps a number, a string of digits, an amount of money, a
//! date or a time of day to a list of item names of a prompt set (see [`items`]), which the
//! caller plays one after the other. Nothing is read from disk and nothing is rendered, so
//! the functions can be tested exhaustively and used on the control plane without cost.
//!
//! # English
//!
//! - Numbers are read in the American style without "and": 1234 is "one thousand two
//!   hundred thirty four", 1000000 is "one million". The whole `i64` range is covered, up to
//!   "quintillion"; negative numbers start with "minus".
//! - Digit strings read every digit, 0 as "zero", `*` as "star" and `#` as "pound".
//! - Amounts are in yuan (the money is the same whatever the language of the caller): 12.34
//!   is "twelve yuan thirty four fen", 12.00 is "twelve yuan", 0.50 is "fifty fen" and 0 is
//!   "zero yuan". "Yuan" and "fen" do not change in the plural, so no plural items are needed.
//! - Dates are "March fifth twenty twenty six": the month name, the ordinal day, then the year
//!   the way people say years: in pairs ("nineteen ninety nine", "twenty ten"), with "oh"
//!   before a single-digit second pair ("nineteen oh five") and "hundred" for round
//!   centuries ("nineteen hundred"); years of the form x00y where the pair reading would be
//!   odd are read as numbers ("two thousand", "two thousand five").
//! - Times are on the 12-hour clock with "a m" or "p m": 09:05 is "nine oh five a m", 13:00 is
//!   "one p m", 00:00 is "twelve a m".
//!
//! # Mandarin
//!
//! - Numbers follow the standard reading with sections of four digits (万, 亿; above 亿 the
//!   multiplier of 亿 is read as a number, so 10^12 is 一万亿 and 10^16 一亿亿, avoiding the
//!   ambiguous 兆): one 零 for any run of zeros inside a number (105 is
//!   一百零五, 1010 is 一千零一十, 100010 is 十万零一十, 100001000 is 一亿零一千), none for zeros
//!   at the end of a section (101000 is 十万一千), and a leading 1 before 十 is silent (10 is 十,
//!   15 is 十五, but 110 is 一百一十). Negative numbers start with 负.
//! - The digit 2 reads 二, except where 二 is wrong in speech: directly before 千 (两千,
//!   一万两千) and as the whole multiplier of 万 or 亿 (两万, 两亿, but 十二万 and 二十万), and
//!   the hour 2 o'clock (两点). That is the usage of announcers; 二百 and 二元 are kept because
//!   they are correct and the rule stays simple.
//! - Digit strings read 1 as 幺, the convention of telephone numbers (10086 is 幺零零八六),
//!   because 一 and 七 are easily confused on a phone line; `*` is 星号 and `#` is 井号.
//! - Amounts use 元, 角 and 分: 12.30 is 十二元三角, 12.05 is 十二元零五分, 12.34 is 十二元三角四分,
//!   0.50 is 五角, 0.05 is 五分 and 0 is 零元.
//! - Dates read the year digit by digit, then the month and day as numbers: 2026-03-05 is
//!   二零二六年三月五日.
//! - Times are on the 24-hour clock: 09:05 is 九点零五分, 14:30 is 十四点三十分, 00:00 is 零点.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A language of the prompt sets and of the TTS voices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Mandarin Chinese.
    Zh,
}

impl Lang {
    /// Every language, in a fixed order, for tools that build or check all prompt sets.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Zh];

    /// The short code used in configuration files and as the directory name of a prompt set.
    pub const fn as_str(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    /// Parses the short code ("en" or "zh"), for callers that report their own errors.
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "en" => Some(Lang::En),
            "zh" => Some(Lang::Zh),
            _ => None,
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Lang {
    type Err = SayError;

    fn from_str(s: &str) -> Result<Lang, SayError> {
        Lang::parse(s).ok_or_else(|| SayError::UnknownLang(s.to_owned()))
    }
}

/// A value that cannot be spoken. Each variant names the offending input, because the values
/// come from callers' keypads, databases and flow files.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SayError {
    #[error(
        "cannot read {ch:?} (character {position}) digit by digit: only the digits 0-9, * and # are spoken, \
         spaces and dashes are skipped"
    )]
    BadDigit { ch: char, position: usize },
    #[error(
        "{year:04}-{month:02}-{day:02} is not a date that can be spoken (years 1 to 9999, months 1 to 12, \
         days that exist in the month)"
    )]
    BadDate { year: i32, month: u32, day: u32 },
    #[error("{hour:02}:{minute:02} is not a time of day (hours 0 to 23, minutes 0 to 59)")]
    BadTime { hour: u32, minute: u32 },
    #[error("unknown language {0:?}: the languages are \"en\" and \"zh\"")]
    UnknownLang(String),
}

/// English items: the name each prompt file has and the text the TTS speaks to make it.
const EN_ITEMS: &[(&str, &str)] = &[
    ("minus", "minus"),
    ("0", "zero"),
    ("1", "one"),
    ("2", "two"),
    ("3", "three"),
    ("4", "four"),
    ("5", "five"),
    ("6", "six"),
    ("7", "seven"),
    ("8", "eight"),
    ("9", "nine"),
    ("10", "ten"),
    ("11", "eleven"),
    ("12", "twelve"),
    ("13", "thirteen"),
    ("14", "fourteen"),
    ("15", "fifteen"),
    ("16", "sixteen"),
    ("17", "seventeen"),
    ("18", "eighteen"),
    ("19", "nineteen"),
    ("20", "twenty"),
    ("30", "thirty"),
    ("40", "forty"),
    ("50", "fifty"),
    ("60", "sixty"),
    ("70", "seventy"),
    ("80", "eighty"),
    ("90", "ninety"),
    ("hundred", "hundred"),
    ("thousand", "thousand"),
    ("million", "million"),
    ("billion", "billion"),
    ("trillion", "trillion"),
    ("quadrillion", "quadrillion"),
    ("quintillion", "quintillion"),
    ("oh", "oh"),
    ("star", "star"),
    ("pound", "pound"),
    ("yuan", "yuan"),
    ("fen", "fen"),
    ("month_1", "January"),
    ("month_2", "February"),
    ("month_3", "March"),
    ("month_4", "April"),
    ("month_5", "May"),
    ("month_6", "June"),
    ("month_7", "July"),
    ("month_8", "August"),
    ("month_9", "September"),
    ("month_10", "October"),
    ("month_11", "November"),
    ("month_12", "December"),
    ("ordinal_1", "first"),
    ("ordinal_2", "second"),
    ("ordinal_3", "third"),
    ("ordinal_4", "fourth"),
    ("ordinal_5", "fifth"),
    ("ordinal_6", "sixth"),
    ("ordinal_7", "seventh"),
    ("ordinal_8", "eighth"),
    ("ordinal_9", "ninth"),
    ("ordinal_10", "tenth"),
    ("ordinal_11", "eleventh"),
    ("ordinal_12", "twelfth"),
    ("ordinal_13", "thirteenth"),
    ("ordinal_14", "fourteenth"),
    ("ordinal_15", "fifteenth"),
    ("ordinal_16", "sixteenth"),
    ("ordinal_17", "seventeenth"),
    ("ordinal_18", "eighteenth"),
    ("ordinal_19", "nineteenth"),
    ("ordinal_20", "twentieth"),
    ("ordinal_21", "twenty-first"),
    ("ordinal_22", "twenty-second"),
    ("ordinal_23", "twenty-third"),
    ("ordinal_24", "twenty-fourth"),
    ("ordinal_25", "twenty-fifth"),
    ("ordinal_26", "twenty-sixth"),
    ("ordinal_27", "twenty-seventh"),
    ("ordinal_28", "twenty-eighth"),
    ("ordinal_29", "twenty-ninth"),
    ("ordinal_30", "thirtieth"),
    ("ordinal_31", "thirty-first"),
    ("am", "a.m."),
    ("pm", "p.m."),
];

/// Mandarin items: the name each prompt file has and the text the TTS speaks to make it.
const ZH_ITEMS: &[(&str, &str)] = &[
    ("minus", "负"),
    ("0", "零"),
    ("1", "一"),
    ("2", "二"),
    ("3", "三"),
    ("4", "四"),
    ("5", "五"),
    ("6", "六"),
    ("7", "七"),
    ("8", "八"),
    ("9", "九"),
    ("10", "十"),
    ("hundred", "百"),
    ("thousand", "千"),
    ("wan", "万"),
    ("yi", "亿"),
    ("liang", "两"),
    ("yao", "幺"),
    ("star", "星号"),
    ("pound", "井号"),
    ("yuan", "元"),
    ("jiao", "角"),
    ("fen", "分"),
    ("nian", "年"),
    ("yue", "月"),
    ("ri", "日"),
    ("dian", "点"),
];

/// Every item of a language's prompt set, as (item name, text to speak). Item names are
/// ASCII, so they can be file names; the text is what [`crate::speech::build_prompt_set`]
/// gives the TTS engine.
pub fn items(lang: Lang) -> &'static [(&'static str, &'static str)] {
    match lang {
        Lang::En => EN_ITEMS,
        Lang::Zh => ZH_ITEMS,
    }
}

/// The text an item speaks, or `None` when the language has no such item.
pub fn item_text(lang: Lang, item: &str) -> Option<&'static str> {
    items(lang).iter().find(|(name, _)| *name == item).map(|(_, text)| *text)
}

/// English words for 0 to 19, indexed by value.
const EN_SMALL: [&str; 20] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17", "18",
    "19",
];
/// English tens, indexed by the tens digit (0 and 1 are never used).
const EN_TENS: [&str; 10] = ["", "", "20", "30", "40", "50", "60", "70", "80", "90"];
/// English scale words for groups of three digits, indexed by group from the right. An `u64`
/// has at most seven groups.
const EN_SCALES: [&str; 7] = ["", "thousand", "million", "billion", "trillion", "quadrillion", "quintillion"];
const EN_MONTHS: [&str; 12] = [
    "month_1", "month_2", "month_3", "month_4", "month_5", "month_6", "month_7", "month_8", "month_9",
    "month_10", "month_11", "month_12",
];
const EN_ORDINALS: [&str; 31] = [
    "ordinal_1",
    "ordinal_2",
    "ordinal_3",
    "ordinal_4",
    "ordinal_5",
    "ordinal_6",
    "ordinal_7",
    "ordinal_8",
    "ordinal_9",
    "ordinal_10",
    "ordinal_11",
    "ordinal_12",
    "ordinal_13",
    "ordinal_14",
    "ordinal_15",
    "ordinal_16",
    "ordinal_17",
    "ordinal_18",
    "ordinal_19",
    "ordinal_20",
    "ordinal_21",
    "ordinal_22",
    "ordinal_23",
    "ordinal_24",
    "ordinal_25",
    "ordinal_26",
    "ordinal_27",
    "ordinal_28",
    "ordinal_29",
    "ordinal_30",
    "ordinal_31",
];
/// Mandarin digits 0 to 9, indexed by value.
const ZH_DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Reads a number aloud: "one thousand two hundred thirty four", 一千二百三十四.
pub fn say_number(n: i64, lang: Lang) -> Vec<&'static str> {
    let mut out = Vec::new();
    if n < 0 {
        out.push("minus");
    }
    match lang {
        Lang::En => en_number(n.unsigned_abs(), &mut out),
        Lang::Zh => zh_number(n.unsigned_abs(), &mut out),
    }
    out
}

/// Reads a string digit by digit, as telephone numbers and account numbers are read.
/// Spaces and dashes are skipped, so "010-8888 1234" can be passed as written; any other
/// character is refused, because silently dropping it would read a different number.
pub fn say_digits(s: &str, lang: Lang) -> Result<Vec<&'static str>, SayError> {
    let mut out = Vec::with_capacity(s.len());
    for (i, ch) in s.chars().enumerate() {
        let item = match (ch, lang) {
            (' ' | '-', _) => continue,
            ('*', _) => "star",
            ('#', _) => "pound",
            ('1', Lang::Zh) => "yao",
            ('0'..='9', Lang::En) => EN_SMALL[digit(ch)],
            ('0'..='9', Lang::Zh) => ZH_DIGITS[digit(ch)],
            _ => return Err(SayError::BadDigit { ch, position: i + 1 }),
        };
        out.push(item);
    }
    Ok(out)
}

/// Reads an amount of money given in fen (hundredths of a yuan): "twelve yuan thirty four
/// fen", 十二元三角四分. Whole yuan are not read when there are none but fen ("fifty fen",
/// 五角), and fen are not read when there are none ("twelve yuan", 十二元三角).
pub fn say_amount(cents: i64, lang: Lang) -> Vec<&'static str> {
    let mut out = Vec::new();
    if cents < 0 {
        out.push("minus");
    }
    let abs = cents.unsigned_abs();
    let (yuan, fen) = (abs / 100, abs % 100);
    match lang {
        Lang::En => {
            if yuan > 0 || fen == 0 {
                en_number(yuan, &mut out);
                out.push("yuan");
            }
            if fen > 0 {
                en_number(fen, &mut out);
                out.push("fen");
            }
        }
        Lang::Zh => {
            if yuan > 0 || fen == 0 {
                zh_number(yuan, &mut out);
                out.push("yuan");
            }
            let (jiao, fen) = (fen / 10, fen % 10);
            if jiao > 0 {
                out.push(ZH_DIGITS[jiao as usize]);
                out.push("jiao");
            }
            if fen > 0 {
                // 十二元零五分: the missing 角 between 元 and 分 is spoken as 零.
                if jiao == 0 && yuan > 0 {
                    out.push("0");
                }
                out.push(ZH_DIGITS[fen as usize]);
                out.push("fen");
            }
        }
    }
    out
}

/// Reads a calendar date: "March fifth twenty twenty six", 二零二六年三月五日. The date is
/// checked (including 29 February), because a flow that reads out 31 April has a bug the
/// caller should not hear.
pub fn say_date(year: i32, month: u32, day: u32, lang: Lang) -> Result<Vec<&'static str>, SayError> {
    let bad = SayError::BadDate { year, month, day };
    let y = u32::try_from(year).map_err(|_| bad.clone())?;
    if !(1..=9999).contains(&y) || !(1..=12).contains(&month) || day < 1 || day > days_in_month(y, month) {
        return Err(bad);
    }
    let mut out = Vec::new();
    match lang {
        Lang::En => {
            out.push(EN_MONTHS[(month - 1) as usize]);
            out.push(EN_ORDINALS[(day - 1) as usize]);
            en_year(y, &mut out);
        }
        Lang::Zh => {
            // Years are read digit by digit, and 1 is 一 here, not the telephone 幺.
            let mut digits = Vec::with_capacity(4);
            let mut rest = y;
            while rest > 0 {
                digits.push(ZH_DIGITS[(rest % 10) as usize]);
                rest /= 10;
            }
            out.extend(digits.iter().rev());
            out.push("nian");
            zh_number(u64::from(month), &mut out);
            out.push("yue");
            zh_number(u64::from(day), &mut out);
            out.push("ri");
        }
    }
    Ok(out)
}

/// Reads a time of day given on the 24-hour clock: "nine oh five a m", 九点零五分.
pub fn say_time(hour: u32, minute: u32, lang: Lang) -> Result<Vec<&'static str>, SayError> {
    if hour > 23 || minute > 59 {
        return Err(SayError::BadTime { hour, minute });
    }
    let mut out = Vec::new();
    match lang {
        Lang::En => {
            let h12 = if hour % 12 == 0 { 12 } else { hour % 12 };
            en_below_hundred(h12 as usize, &mut out);
            if minute > 0 {
                if minute < 10 {
                    out.push("oh");
                }
                en_below_hundred(minute as usize, &mut out);
            }
            out.push(if hour < 12 { "am" } else { "pm" });
        }
        Lang::Zh => {
            if hour == 2 {
                out.push("liang");
            } else {
                zh_number(u64::from(hour), &mut out);
            }
            out.push("dian");
            if minute > 0 {
                if minute < 10 {
                    out.push("0");
                }
                zh_number(u64::from(minute), &mut out);
                out.push("fen");
            }
        }
    }
    Ok(out)
}

/// The value of an ASCII digit; the callers have matched `'0'..='9'`.
fn digit(ch: char) -> usize {
    ch.to_digit(10).unwrap_or(0) as usize
}

fn is_leap(year: u32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// 1 to 99 in English; 0 adds nothing.
fn en_below_hundred(n: usize, out: &mut Vec<&'static str>) {
    match n {
        0 => {}
        1..=19 => out.push(EN_SMALL[n]),
        20..=99 => {
            out.push(EN_TENS[n / 10]);
            if n % 10 > 0 {
                out.push(EN_SMALL[n % 10]);
            }
        }
        // Callers pass values below 100; anything else would be a bug, read as nothing.
        _ => {}
    }
}

fn en_number(n: u64, out: &mut Vec<&'static str>) {
    if n == 0 {
        out.push("0");
        return;
    }
    let mut groups = [0usize; EN_SCALES.len()];
    let mut rest = n;
    for g in groups.iter_mut() {
        *g = (rest % 1000) as usize;
        rest /= 1000;
    }
    for (group, scale) in groups.iter().zip(EN_SCALES).rev() {
        if *group == 0 {
            continue;
        }
        if group / 100 > 0 {
            out.push(EN_SMALL[group / 100]);
            out.push("hundred");
        }
        en_below_hundred(group % 100, out);
        if !scale.is_empty() {
            out.push(scale);
        }
    }
}

/// Years as people say them; see the module documentation.
fn en_year(y: u32, out: &mut Vec<&'static str>) {
    if !(1000..=9999).contains(&y) {
        en_number(u64::from(y), out);
        return;
    }
    let (hi, lo) = ((y / 100) as usize, (y % 100) as usize);
    if hi % 10 == 0 && lo < 10 {
        // 2000, 2005, 1000: "two thousand five" rather than "twenty oh five".
        en_number(u64::from(y), out);
    } else if lo == 0 {
        en_below_hundred(hi, out);
        out.push("hundred");
    } else {
        en_below_hundred(hi, out);
        if lo < 10 {
            out.push("oh");
        }
        en_below_hundred(lo, out);
    }
}

fn zh_number(n: u64, out: &mut Vec<&'static str>) {
    if n == 0 {
        out.push("0");
    } else {
        zh_positive(n, true, out);
    }
}

/// A number above 0. Above 亿 the multiplier of 亿 is itself a number, read the same way, so
/// 10^12 is 一万亿 and 1000100000000 is 一万零一亿. `leading` is true at the start of the
/// whole number, where a leading 一十 is shortened to 十.
fn zh_positive(n: u64, leading: bool, out: &mut Vec<&'static str>) {
    let (unit, size, lower_top) = if n >= 100_000_000 {
        ("yi", 100_000_000, 10_000_000)
    } else if n >= 10_000 {
        ("wan", 10_000, 1_000)
    } else {
        // Below 10000 the value fits in a u16.
        zh_section(n as u16, leading, out);
        return;
    };
    let (high, low) = (n / size, n % size);
    if high == 2 {
        out.push("liang");
    } else {
        zh_positive(high, leading, out);
    }
    out.push(unit);
    if low > 0 {
        // 十万零一十, 一亿零一千: zeros between the unit and the first digit of the rest are
        // read as one 零; zeros at the end of the higher part (十万一千) are not.
        if low < lower_top {
            out.push("0");
        }
        zh_positive(low, false, out);
    }
}

/// One section of 1 to 9999. `leading` is true for the first section of the number, where a
/// leading 一十 is shortened to 十.
fn zh_section(v: u16, leading: bool, out: &mut Vec<&'static str>) {
    let digits = [v / 1000 % 10, v / 100 % 10, v / 10 % 10, v % 10].map(usize::from);
    let mut started = false;
    let mut zero = false;
    for (place, &d) in digits.iter().enumerate() {
        if d == 0 {
            zero |= started;
            continue;
        }
        if zero {
            out.push("0");
            zero = false;
        }
        match place {
            0 => {
                out.push(if d == 2 { "liang" } else { ZH_DIGITS[d] });
                out.push("thousand");
            }
            1 => {
                out.push(ZH_DIGITS[d]);
                out.push("hundred");
            }
            2 => {
                if !(d == 1 && leading && !started) {
                    out.push(ZH_DIGITS[d]);
                }
                out.push("10");
            }
            _ => out.push(ZH_DIGITS[d]),
        }
        started = true;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The spoken text of a list of items, so expectations read like speech. Every item must
    /// exist in the language's prompt set.
    fn speak(items: &[&str], lang: Lang) -> String {
        let words: Vec<&str> = items
            .iter()
            .map(|i| {
                item_text(lang, i).unwrap_or_else(|| panic!("item {i:?} is not in the {lang} prompt set"))
            })
            .collect();
        match lang {
            Lang::En => words.join(" "),
            Lang::Zh => words.concat(),
        }
    }

    fn en(n: i64) -> String {
        speak(&say_number(n, Lang::En), Lang::En)
    }

    fn zh(n: i64) -> String {
        speak(&say_number(n, Lang::Zh), Lang::Zh)
    }

    #[test]
    fn english_numbers() {
        let cases: &[(i64, &str)] = &[
            (0, "zero"),
            (-5, "minus five"),
            (-1000, "minus one thousand"),
            (7, "seven"),
            (10, "ten"),
            (11, "eleven"),
            (19, "nineteen"),
            (20, "twenty"),
            (21, "twenty one"),
            (99, "ninety nine"),
            (100, "one hundred"),
            (101, "one hundred one"),
            (110, "one hundred ten"),
            (999, "nine hundred ninety nine"),
            (1001, "one thousand one"),
            (1234, "one thousand two hundred thirty four"),
            (10000, "ten thousand"),
            (100000, "one hundred thousand"),
            (1000000, "one million"),
            (1000001, "one million one"),
            (100000000, "one hundred million"),
            (
                1 << 31,
                "two billion one hundred forty seven million four hundred eighty three thousand six hundred \
                 forty eight",
            ),
            (1_000_000_000_000, "one trillion"),
            (
                i64::MAX,
                "nine quintillion two hundred twenty three quadrillion three hundred seventy two trillion \
                 thirty six billion eight hundred fifty four million seven hundred seventy five thousand \
                 eight hundred seven",
            ),
            (
                i64::MIN,
                "minus nine quintillion two hundred twenty three quadrillion three hundred seventy two \
                 trillion thirty six billion eight hundred fifty four million seven hundred seventy five \
                 thousand eight hundred eight",
            ),
        ];
        for &(n, expected) in cases {
            assert_eq!(en(n), expected, "{n}");
        }
    }

    #[test]
    fn mandarin_numbers() {
        let cases: &[(i64, &str)] = &[
            (0, "零"),
            (-5, "负五"),
            (-10, "负十"),
            (2, "二"),
            (10, "十"),
            (11, "十一"),
            (12, "十二"),
            (20, "二十"),
            (22, "二十二"),
            (100, "一百"),
            (101, "一百零一"),
            (105, "一百零五"),
            (110, "一百一十"),
            (115, "一百一十五"),
            (200, "二百"),
            (1001, "一千零一"),
            (1010, "一千零一十"),
            (1100, "一千一百"),
            (2000, "两千"),
            (2222, "两千二百二十二"),
            (10000, "一万"),
            (10001, "一万零一"),
            (10010, "一万零一十"),
            (12000, "一万两千"),
            (20000, "两万"),
            (22000, "两万两千"),
            (100000, "十万"),
            (100010, "十万零一十"),
            (101000, "十万一千"),
            (120000, "十二万"),
            (200000, "二十万"),
            (1000000, "一百万"),
            (10000000, "一千万"),
            (100000000, "一亿"),
            (100000001, "一亿零一"),
            (100001000, "一亿零一千"),
            (100100000, "一亿零一十万"),
            (110000000, "一亿一千万"),
            (200000000, "两亿"),
            (1 << 31, "二十一亿四千七百四十八万三千六百四十八"),
            (1_0000_0000_0000, "一万亿"),
            (1_0001_0000_0000, "一万零一亿"),
            (1_0000_0001_0000, "一万亿零一万"),
            (2_0000_0000_0000, "两万亿"),
            (10_0000_0000, "十亿"),
            (22_0000_0000, "二十二亿"),
            (1_0000_0000_0000_0000, "一亿亿"),
            (i64::MAX, "九百二十二亿三千三百七十二万零三百六十八亿五千四百七十七万五千八百零七"),
            (i64::MIN, "负九百二十二亿三千三百七十二万零三百六十八亿五千四百七十七万五千八百零八"),
        ];
        for &(n, expected) in cases {
            assert_eq!(zh(n), expected, "{n}");
        }
    }

    #[test]
    fn digits_in_both_languages() {
        let en = say_digits("010-8888 1234*#", Lang::En).unwrap();
        assert_eq!(
            speak(&en, Lang::En),
            "zero one zero eight eight eight eight one two three four star pound"
        );
        let zh = say_digits("10086", Lang::Zh).unwrap();
        assert_eq!(speak(&zh, Lang::Zh), "幺零零八六");
        assert_eq!(say_digits("", Lang::Zh).unwrap(), Vec::<&str>::new());
    }

    #[test]
    fn bad_digit_is_named() {
        let err = say_digits("12a4", Lang::En).unwrap_err();
        assert_eq!(err, SayError::BadDigit { ch: 'a', position: 3 });
        assert!(err.to_string().contains("'a'"), "{err}");
        assert!(err.to_string().contains("character 3"), "{err}");
        assert_eq!(say_digits("+86", Lang::Zh).unwrap_err(), SayError::BadDigit { ch: '+', position: 1 });
        assert_eq!(say_digits("１", Lang::Zh).unwrap_err(), SayError::BadDigit { ch: '１', position: 1 });
    }

    #[test]
    fn amounts() {
        let cases: &[(i64, &str, &str)] = &[
            (1234, "twelve yuan thirty four fen", "十二元三角四分"),
            (1230, "twelve yuan thirty fen", "十二元三角"),
            (1205, "twelve yuan five fen", "十二元零五分"),
            (1200, "twelve yuan", "十二元"),
            (1000, "ten yuan", "十元"),
            (1005, "ten yuan five fen", "十元零五分"),
            (50, "fifty fen", "五角"),
            (5, "five fen", "五分"),
            (35, "thirty five fen", "三角五分"),
            (0, "zero yuan", "零元"),
            (-250, "minus two yuan fifty fen", "负二元五角"),
            (2_000_000, "twenty thousand yuan", "两万元"),
            (1_000_101, "ten thousand one yuan one fen", "一万零一元零一分"),
        ];
        for &(cents, english, mandarin) in cases {
            assert_eq!(speak(&say_amount(cents, Lang::En), Lang::En), english, "{cents}");
            assert_eq!(speak(&say_amount(cents, Lang::Zh), Lang::Zh), mandarin, "{cents}");
        }
        // The extremes are read without overflow.
        assert_eq!(say_amount(i64::MIN, Lang::Zh).first(), Some(&"minus"));
        assert_eq!(say_amount(i64::MAX, Lang::En).last(), Some(&"fen"));
    }

    #[test]
    fn dates() {
        let cases: &[((i32, u32, u32), &str, &str)] = &[
            ((2026, 3, 5), "March fifth twenty twenty six", "二零二六年三月五日"),
            ((2000, 1, 1), "January first two thousand", "二零零零年一月一日"),
            ((2005, 12, 31), "December thirty-first two thousand five", "二零零五年十二月三十一日"),
            ((2010, 10, 20), "October twentieth twenty ten", "二零一零年十月二十日"),
            ((1999, 2, 22), "February twenty-second nineteen ninety nine", "一九九九年二月二十二日"),
            ((1905, 11, 11), "November eleventh nineteen oh five", "一九零五年十一月十一日"),
            ((1900, 6, 30), "June thirtieth nineteen hundred", "一九零零年六月三十日"),
            ((2024, 2, 29), "February twenty-ninth twenty twenty four", "二零二四年二月二十九日"),
            ((800, 7, 4), "July fourth eight hundred", "八零零年七月四日"),
        ];
        for &((y, m, d), english, mandarin) in cases {
            assert_eq!(speak(&say_date(y, m, d, Lang::En).unwrap(), Lang::En), english, "{y}-{m}-{d}");
            assert_eq!(speak(&say_date(y, m, d, Lang::Zh).unwrap(), Lang::Zh), mandarin, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn impossible_dates_are_refused() {
        for (y, m, d) in
            [(2025, 2, 29), (1900, 2, 29), (2026, 4, 31), (2026, 13, 1), (2026, 0, 1), (2026, 1, 0)]
        {
            for lang in Lang::ALL {
                assert_eq!(say_date(y, m, d, lang), Err(SayError::BadDate { year: y, month: m, day: d }));
            }
        }
        assert!(say_date(0, 1, 1, Lang::En).is_err());
        assert!(say_date(-44, 3, 15, Lang::En).is_err());
        assert!(say_date(10000, 1, 1, Lang::Zh).is_err());
        assert!(say_date(2000, 2, 29, Lang::En).is_ok());
        let msg = say_date(2026, 4, 31, Lang::En).unwrap_err().to_string();
        assert!(msg.starts_with("2026-04-31 is not a date"), "{msg}");
    }

    #[test]
    fn times() {
        let cases: &[((u32, u32), &str, &str)] = &[
            ((0, 0), "twelve a.m.", "零点"),
            ((9, 5), "nine oh five a.m.", "九点零五分"),
            ((12, 30), "twelve thirty p.m.", "十二点三十分"),
            ((13, 0), "one p.m.", "十三点"),
            ((2, 10), "two ten a.m.", "两点十分"),
            ((14, 45), "two forty five p.m.", "十四点四十五分"),
            ((22, 2), "ten oh two p.m.", "二十二点零二分"),
            ((23, 59), "eleven fifty nine p.m.", "二十三点五十九分"),
        ];
        for &((h, m), english, mandarin) in cases {
            assert_eq!(speak(&say_time(h, m, Lang::En).unwrap(), Lang::En), english, "{h}:{m}");
            assert_eq!(speak(&say_time(h, m, Lang::Zh).unwrap(), Lang::Zh), mandarin, "{h}:{m}");
        }
        assert_eq!(say_time(24, 0, Lang::En), Err(SayError::BadTime { hour: 24, minute: 0 }));
        assert_eq!(say_time(9, 60, Lang::Zh), Err(SayError::BadTime { hour: 9, minute: 60 }));
    }

    /// Every item the functions produce is in the prompt set, and every item of the prompt
    /// set is used by something, so a prompt set is neither incomplete nor padded.
    #[test]
    fn prompt_sets_match_what_is_said() {
        for lang in Lang::ALL {
            let mut used = BTreeSet::new();
            let mut add = |items: Vec<&'static str>| used.extend(items);
            for n in -20..=25_000 {
                add(say_number(n, lang));
            }
            for n in [1i64 << 31, i64::MAX, i64::MIN, 100_000_000, 200_000_000] {
                add(say_number(n, lang));
            }
            for cents in 0..=1000 {
                add(say_amount(cents, lang));
            }
            add(say_digits("0123456789*#", lang).unwrap());
            for month in 1..=12 {
                for day in 1..=31 {
                    if let Ok(items) = say_date(2024, month, day, lang) {
                        add(items);
                    }
                }
            }
            for h in 0..24 {
                for m in 0..60 {
                    add(say_time(h, m, lang).unwrap());
                }
            }
            let defined: BTreeSet<&str> = items(lang).iter().map(|(name, _)| *name).collect();
            assert_eq!(defined.len(), items(lang).len(), "{lang}: duplicate item names");
            assert_eq!(used, defined, "{lang}: items used and items defined differ");
            for (name, text) in items(lang) {
                assert!(
                    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                    "{lang}: item name {name:?} is not a plain file name"
                );
                assert!(!text.trim().is_empty(), "{lang}: item {name:?} has no text");
            }
        }
    }

    #[test]
    fn lang_names() {
        assert_eq!("zh".parse::<Lang>(), Ok(Lang::Zh));
        assert_eq!("en".parse::<Lang>(), Ok(Lang::En));
        assert_eq!("fr".parse::<Lang>(), Err(SayError::UnknownLang("fr".to_owned())));
        assert_eq!(Lang::Zh.to_string(), "zh");
        assert_eq!(serde_json::to_string(&Lang::Zh).unwrap(), "\"zh\"");
        assert_eq!(serde_json::from_str::<Lang>("\"en\"").unwrap(), Lang::En);
        assert!(serde_json::from_str::<Lang>("\"En\"").is_err());
    }
}
