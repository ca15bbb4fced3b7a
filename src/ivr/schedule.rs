//! Working hours, rest days and holidays.
//!
//! A schedule answers one question: is the call center open at this local time? Hours are
//! given per weekday (`"mon-fri 09:00-18:00"`, `"sat 09:00-12:00"`, `"daily 08:00-20:00"`),
//! holidays close whole days (`"2026-10-01..2026-10-07"`), and working days move a weekend
//! day to Monday's hours (China's adjusted working days, 调休, e.g. `"2026-10-10"`).

use time::{Date, Month, PrimitiveDateTime, Time, Weekday};

/// Opening hours on some weekdays.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Hours {
    /// Bit `n` set: open on the weekday `n` days from Monday.
    days: u8,
    from: Time,
    /// Exclusive; `from > to` spans midnight.
    to: Time,
}

/// A validated schedule.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Schedule {
    hours: Vec<Hours>,
    holidays: Vec<(Date, Date)>,
    workdays: Vec<Date>,
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day_index(name: &str) -> Option<u8> {
    DAY_NAMES.iter().position(|d| *d == name).map(|i| i as u8)
}

fn parse_days(spec: &str) -> Result<u8, String> {
    if spec == "daily" {
        return Ok(0x7f);
    }
    let mut days = 0u8;
    for part in spec.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (Some(a), Some(b)) = (day_index(a), day_index(b)) else {
                    return Err(format!("`{part}` is not a range of days like `mon-fri`"));
                };
                let mut d = a;
                loop {
                    days |= 1 << d;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => match day_index(part) {
                Some(d) => days |= 1 << d,
                None => {
                    return Err(format!(
                        "`{part}` is not a day: use mon, tue, wed, thu, fri, sat, sun or daily"
                    ))
                }
            },
        }
    }
    Ok(days)
}

fn parse_time(s: &str) -> Result<Time, String> {
    let bad = || format!("`{s}` is not a time like 09:00");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let h: u8 = h.parse().map_err(|_| bad())?;
    let m: u8 = m.parse().map_err(|_| bad())?;
    if h == 24 && m == 0 {
        return Ok(Time::MIDNIGHT);
    }
    Time::from_hms(h, m, 0).map_err(|_| bad())
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Result<Date, String> {
    let bad = || format!("`{s}` is not a date like 2026-10-01");
    let mut it = s.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (it.next(), it.next(), it.next()) else {
        return Err(bad());
    };
    let y: i32 = y.parse().map_err(|_| bad())?;
    let m: u8 = m.parse().map_err(|_| bad())?;
    let d: u8 = d.parse().map_err(|_| bad())?;
    let month = Month::try_from(m).map_err(|_| bad())?;
    Date::from_calendar_date(y, month, d).map_err(|_| bad())
}

impl Schedule {
    /// Builds a schedule; each error names the entry that is wrong.
    pub fn parse(hours: &[String], holidays: &[String], workdays: &[String]) -> Result<Schedule, String> {
        let mut s = Schedule::default();
        for h in hours {
            let (days, span) = h
                .trim()
                .split_once(' ')
                .ok_or_else(|| format!("hours `{h}`: write days and times, e.g. `mon-fri 09:00-18:00`"))?;
            let days = parse_days(days.trim()).map_err(|e| format!("hours `{h}`: {e}"))?;
            let (from, to) = span
                .trim()
                .split_once('-')
                .ok_or_else(|| format!("hours `{h}`: the times are written `09:00-18:00`"))?;
            let from = parse_time(from.trim()).map_err(|e| format!("hours `{h}`: {e}"))?;
            let to = parse_time(to.trim()).map_err(|e| format!("hours `{h}`: {e}"))?;
            if from == to {
                return Err(format!("hours `{h}`: the opening and closing times are the same"));
            }
            s.hours.push(Hours { days, from, to });
        }
        for h in holidays {
            let (a, b) = match h.split_once("..") {
                Some((a, b)) => (parse_date(a.trim())?, parse_date(b.trim())?),
                None => {
                    let d = parse_date(h.trim())?;
                    (d, d)
                }
            };
            if b < a {
                return Err(format!("holiday `{h}` ends before it starts"));
            }
            s.holidays.push((a, b));
        }
        for w in workdays {
            s.workdays.push(parse_date(w.trim())?);
        }
        Ok(s)
    }

    /// Whether the schedule says open at `at` (local time). A schedule with no hours is
    /// always open except on holidays.
    pub fn is_open(&self, at: PrimitiveDateTime) -> bool {
        let date = at.date();
        if self.holidays.iter().any(|&(a, b)| a <= date && date <= b) {
            return false;
        }
        if self.hours.is_empty() {
            return true;
        }
        let weekday = if self.workdays.contains(&date) { Weekday::Monday } else { date.weekday() };
        let yesterday = weekday.previous();
        let t = at.time();
        self.hours.iter().any(|h| {
            let today = h.days & (1 << weekday.number_days_from_monday()) != 0;
            if h.from < h.to {
                today && h.from <= t && t < h.to
            } else {
                // Across midnight: the evening part belongs to today, the morning part to
                // the day before.
                let before = h.days & (1 << yesterday.number_days_from_monday()) != 0;
                (today && t >= h.from) || (before && t < h.to)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn office() -> Schedule {
        Schedule::parse(
            &["mon-fri 09:00-18:00".into(), "sat 09:00-12:00".into()],
            &["2026-10-01..2026-10-07".into(), "2026-12-25".into()],
            &["2026-10-10".into()],
        )
        .unwrap()
    }

    #[test]
    fn opening_hours_by_weekday() {
        let s = office();
        assert!(s.is_open(datetime!(2026-11-30 09:00))); // Monday
        assert!(!s.is_open(datetime!(2026-11-30 08:59)));
        assert!(!s.is_open(datetime!(2026-11-30 18:00)));
        assert!(s.is_open(datetime!(2026-12-05 11:59))); // Saturday
        assert!(!s.is_open(datetime!(2026-12-05 12:00)));
        assert!(!s.is_open(datetime!(2026-12-06 10:00))); // Sunday
    }

    #[test]
    fn holidays_close_and_adjusted_workdays_open() {
        let s = office();
        assert!(!s.is_open(datetime!(2026-10-05 10:00))); // Monday in the National Day week
        assert!(!s.is_open(datetime!(2026-12-25 10:00)));
        // 2026-10-10 is a Saturday worked as a Monday: open until 18:00.
        assert!(s.is_open(datetime!(2026-10-10 17:00)));
    }

    #[test]
    fn night_shifts_span_midnight() {
        let s = Schedule::parse(&["fri 22:00-06:00".into()], &[], &[]).unwrap();
        assert!(s.is_open(datetime!(2026-12-04 23:00))); // Friday night
        assert!(s.is_open(datetime!(2026-12-05 05:00))); // Saturday morning
        assert!(!s.is_open(datetime!(2026-12-05 07:00)));
        assert!(!s.is_open(datetime!(2026-12-04 05:00))); // Friday morning belongs to Thursday
    }

    #[test]
    fn bad_entries_are_named() {
        let e = Schedule::parse(&["mon-fry 09:00-18:00".into()], &[], &[]).unwrap_err();
        assert!(e.contains("fry"), "{e}");
        let e = Schedule::parse(&["mon 9-18".into()], &[], &[]).unwrap_err();
        assert!(e.contains("is not a time"), "{e}");
        let e = Schedule::parse(&[], &["2026-02-30".into()], &[]).unwrap_err();
        assert!(e.contains("2026-02-30"), "{e}");
        let e = Schedule::parse(&[], &["2026-10-07..2026-10-01".into()], &[]).unwrap_err();
        assert!(e.contains("ends before"), "{e}");
    }
}
