//! Weekly windows in a time zone ("every Sunday 02:00 to 04:00,
//! Europe/Berlin"), for recurring maintenance silences: parsed and checked
//! once here for the server (which refuses a bad one) and the alert
//! evaluator (which asks whether one is active now).

use std::{fmt, str::FromStr, time::Duration};

use chrono::{DateTime, Datelike, LocalResult, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// The longest weekly window: a week (longer would overlap itself).
pub const MAX_WINDOW: Duration = Duration::from_secs(7 * 86_400);
/// The shortest weekly window.
pub const MIN_WINDOW: Duration = Duration::from_secs(60);

/// Why a weekly window was refused; each names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecurrenceError {
    #[error("days: at least one day is required (mon, tue, wed, thu, fri, sat, sun)")]
    NoDays,
    #[error("days: {0:?} is not a day (use mon, tue, wed, thu, fri, sat, sun)")]
    UnknownDay(String),
    #[error("days: {0:?} is listed twice")]
    DayTwice(String),
    #[error("start: {0:?} is not a time of day written HH:MM (00:00 to 23:59)")]
    BadStart(String),
    #[error("duration: must be between 1 min and 7 days, got {0:?}")]
    BadDuration(Duration),
    #[error("time_zone: {0:?} is not an IANA time zone name (e.g. Europe/Berlin, UTC)")]
    UnknownTimeZone(String),
}

/// A window that opens on each of `days` at `start` local time in `zone` and
/// lasts `length`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeeklyWindow {
    /// The days it opens on, Monday first, none twice.
    days: Vec<Weekday>,
    /// Local time of day it opens, to the minute.
    start: NaiveTime,
    /// How long it stays open.
    length: Duration,
    /// Where `start` is local time.
    zone: Tz,
}

/// The short day names the API takes, Monday first.
const DAY_NAMES: [(&str, Weekday); 7] = [
    ("mon", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("fri", Weekday::Fri),
    ("sat", Weekday::Sat),
    ("sun", Weekday::Sun),
];

impl WeeklyWindow {
    /// Checks every field; an empty `time_zone` is UTC.
    pub fn parse(days: &[String], start: &str, length: Duration, time_zone: &str) -> Result<Self, RecurrenceError> {
        if days.is_empty() {
            return Err(RecurrenceError::NoDays);
        }
        let mut parsed = Vec::with_capacity(days.len());
        for day in days {
            let weekday = DAY_NAMES
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(day))
                .map(|(_, weekday)| *weekday)
                .ok_or_else(|| RecurrenceError::UnknownDay(day.clone()))?;
            if parsed.contains(&weekday) {
                return Err(RecurrenceError::DayTwice(day.clone()));
            }
            parsed.push(weekday);
        }
        parsed.sort_by_key(|day| day.num_days_from_monday());
        let start_time = parse_hh_mm(start).ok_or_else(|| RecurrenceError::BadStart(start.to_owned()))?;
        if !(MIN_WINDOW..=MAX_WINDOW).contains(&length) {
            return Err(RecurrenceError::BadDuration(length));
        }
        let zone = if time_zone.is_empty() {
            Tz::UTC
        } else {
            Tz::from_str(time_zone).map_err(|_| RecurrenceError::UnknownTimeZone(time_zone.to_owned()))?
        };
        Ok(WeeklyWindow {
            days: parsed,
            start: start_time,
            length,
            zone,
        })
    }

    /// The days, as the API writes them.
    pub fn day_names(&self) -> Vec<String> {
        self.days
            .iter()
            .map(|day| DAY_NAMES[day.num_days_from_monday() as usize].0.to_owned())
            .collect()
    }

    /// The start, as the API writes it ("HH:MM").
    pub fn start(&self) -> String {
        self.start.format("%H:%M").to_string()
    }

    /// How long each window lasts.
    pub fn length(&self) -> Duration {
        self.length
    }

    /// The time zone's name ("UTC" for UTC).
    pub fn time_zone(&self) -> &'static str {
        self.zone.name()
    }

    /// Whether one of the windows holds `at`. A start that falls into a
    /// daylight-saving gap opens at the first instant after the gap; one
    /// that falls into the repeated hour opens at its first occurrence.
    pub fn is_active(&self, at: DateTime<Utc>) -> bool {
        let local_today = at.with_timezone(&self.zone).date_naive();
        // A window lasts at most 7 days, so only openings of the last 8
        // local dates can still hold `at`.
        (0..=7).any(|back| {
            let Some(date) = local_today.checked_sub_days(chrono::Days::new(back)) else {
                return false;
            };
            if !self.days.contains(&date.weekday()) {
                return false;
            }
            let Some(opens) = self.opening(date.and_time(self.start)) else {
                return false;
            };
            let Ok(length) = chrono::Duration::from_std(self.length) else {
                return false;
            };
            opens <= at && at < opens + length
        })
    }

    /// The instant local time `local` names in the zone (see [`Self::is_active`]).
    fn opening(&self, local: chrono::NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.zone.from_local_datetime(&local) {
            LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
            LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
            // In a gap: the first whole minute after it (gaps are at most a
            // few hours; look a day ahead at most).
            LocalResult::None => (1..=24 * 60).find_map(|minutes| {
                self.zone
                    .from_local_datetime(&(local + chrono::Duration::minutes(minutes)))
                    .earliest()
                    .map(|at| at.with_timezone(&Utc))
            }),
        }
    }
}

impl fmt::Display for WeeklyWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at {} for {} min ({})",
            self.day_names().join(","),
            self.start(),
            self.length.as_secs() / 60,
            self.time_zone()
        )
    }
}

/// "HH:MM" with two digits each.
fn parse_hh_mm(text: &str) -> Option<NaiveTime> {
    let (hours, minutes) = text.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let hours: u32 = hours.parse().ok()?;
    let minutes: u32 = minutes.parse().ok()?;
    NaiveTime::from_hms_opt(hours, minutes, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn window(days: &[&str], start: &str, minutes: u64, zone: &str) -> WeeklyWindow {
        let days: Vec<String> = days.iter().map(|d| d.to_string()).collect();
        WeeklyWindow::parse(&days, start, Duration::from_secs(minutes * 60), zone).unwrap()
    }

    #[test]
    fn a_window_holds_from_its_start_to_before_its_end_in_its_zone() {
        // 2026-12-06 is a Sunday; Berlin is UTC+1 in December.
        let sunday = window(&["sun"], "02:00", 120, "Europe/Berlin");
        assert!(!sunday.is_active(at("2026-12-06T00:59:59Z")));
        assert!(sunday.is_active(at("2026-12-06T01:00:00Z")));
        assert!(sunday.is_active(at("2026-12-06T02:59:59Z")));
        assert!(!sunday.is_active(at("2026-12-06T03:00:00Z")));
        // Not on Saturday at the same hour.
        assert!(!sunday.is_active(at("2026-12-05T01:30:00Z")));
    }

    #[test]
    fn a_window_that_crosses_midnight_and_the_week_holds_on_the_next_day() {
        let late = window(&["sun"], "23:00", 180, "UTC");
        assert!(late.is_active(at("2026-12-06T23:30:00Z")));
        assert!(late.is_active(at("2026-12-07T01:59:00Z")));
        assert!(!late.is_active(at("2026-12-07T02:00:00Z")));
        let week = window(&["mon"], "00:00", 7 * 24 * 60, "UTC");
        assert!(week.is_active(at("2026-12-13T23:59:59Z")));
        assert!(week.is_active(at("2026-12-07T00:00:00Z")));
    }

    #[test]
    fn a_start_in_the_spring_gap_opens_after_the_gap() {
        // 2026-03-29: Berlin jumps from 02:00 to 03:00 (UTC 01:00).
        let gap = window(&["sun"], "02:30", 60, "Europe/Berlin");
        assert!(!gap.is_active(at("2026-03-29T00:59:00Z")));
        assert!(gap.is_active(at("2026-03-29T01:00:00Z")));
        assert!(gap.is_active(at("2026-03-29T01:59:00Z")));
        assert!(!gap.is_active(at("2026-03-29T02:00:00Z")));
    }

    #[test]
    fn summer_time_moves_the_window_in_utc() {
        let daily = window(
            &["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "12:00",
            60,
            "Europe/Berlin",
        );
        assert!(daily.is_active(at("2026-07-01T10:30:00Z")));
        assert!(!daily.is_active(at("2026-07-01T11:30:00Z")));
        assert!(daily.is_active(at("2026-12-01T11:30:00Z")));
    }

    #[test]
    fn bad_fields_are_named() {
        let days = |d: &[&str]| d.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let hour = Duration::from_secs(3600);
        assert_eq!(
            WeeklyWindow::parse(&[], "02:00", hour, ""),
            Err(RecurrenceError::NoDays)
        );
        assert_eq!(
            WeeklyWindow::parse(&days(&["sunday"]), "02:00", hour, ""),
            Err(RecurrenceError::UnknownDay("sunday".into()))
        );
        assert_eq!(
            WeeklyWindow::parse(&days(&["sun", "SUN"]), "02:00", hour, ""),
            Err(RecurrenceError::DayTwice("SUN".into()))
        );
        for start in ["2:00", "24:00", "12:60", "noon", "", "12:00:00"] {
            assert_eq!(
                WeeklyWindow::parse(&days(&["sun"]), start, hour, ""),
                Err(RecurrenceError::BadStart(start.into()))
            );
        }
        for length in [Duration::from_secs(59), MAX_WINDOW + Duration::from_secs(1)] {
            assert_eq!(
                WeeklyWindow::parse(&days(&["sun"]), "02:00", length, ""),
                Err(RecurrenceError::BadDuration(length))
            );
        }
        assert_eq!(
            WeeklyWindow::parse(&days(&["sun"]), "02:00", hour, "Mars/Olympus"),
            Err(RecurrenceError::UnknownTimeZone("Mars/Olympus".into()))
        );
        let ok = WeeklyWindow::parse(&days(&["sun", "mon"]), "02:05", hour, "").unwrap();
        assert_eq!(ok.day_names(), ["mon", "sun"]);
        assert_eq!(ok.start(), "02:05");
        assert_eq!(ok.time_zone(), "UTC");
    }
}
