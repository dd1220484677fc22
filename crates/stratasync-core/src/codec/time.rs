//! Instants and calendar days as epoch milliseconds (PROTOCOL.md §8).

use chrono::{DateTime, NaiveDate, SecondsFormat, TimeZone, Utc};

/// Milliseconds in one day.
pub const DAY_MS: i64 = 86_400_000;

/// The largest magnitude of a valid instant (the JavaScript `Date` range).
pub const MAX_INSTANT_MS: f64 = 8.64e15;

/// Reads an input instant: a finite JSON number within ±8.64e15, fractions
/// truncated toward zero.
pub fn instant_ms_from_json(value: &serde_json::Value) -> Option<i64> {
    if let Some(i) = value.as_i64() {
        return (i.unsigned_abs() as f64 <= MAX_INSTANT_MS).then_some(i);
    }
    let f = value.as_f64()?;
    (f.is_finite() && f.abs() <= MAX_INSTANT_MS).then(|| f.trunc() as i64)
}

/// Reads an input day: an instant divisible by one day.
pub fn date_only_ms_from_json(value: &serde_json::Value) -> Option<i64> {
    if let Some(f) = value.as_f64() {
        if f.fract() != 0.0 {
            return None;
        }
    }
    instant_ms_from_json(value).filter(|ms| ms % DAY_MS == 0)
}

/// The instant of `ms` epoch milliseconds.
pub fn instant_from_ms(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

/// Epoch milliseconds of an instant.
pub fn ms_from_instant(at: &DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// The day whose UTC midnight is `ms` (which must be divisible by a day).
pub fn date_from_ms(ms: i64) -> Option<NaiveDate> {
    if ms % DAY_MS != 0 {
        return None;
    }
    instant_from_ms(ms).map(|at| at.date_naive())
}

/// Epoch milliseconds of the UTC midnight of `day`.
pub fn ms_from_date(day: &NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0).map(|dt| dt.and_utc().timestamp_millis()).unwrap_or_default()
}

/// The sync-action `createdAt` form: ISO-8601 UTC with exactly three
/// fraction digits and `Z`.
pub fn iso_millis(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Current time truncated to milliseconds.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}
