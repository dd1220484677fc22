//! Instants and calendar days as epoch milliseconds (docs/protocol.md §8).
//!
//! An input instant must be a JavaScript `Date` (within ±8.64e15 ms); one
//! stored as `timestamptz`, or a day stored as `date`, must also lie within
//! what PostgreSQL can hold ([`PG_MIN_MS`] to [`PG_TIMESTAMPTZ_END_MS`]),
//! and within chrono's range (±262,143 years, narrower than PostgreSQL's
//! upper bounds). A value outside is the transaction's own
//! `Invalid instant value for <field>` (or `dateOnly`), found before any
//! statement runs.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

/// Milliseconds in one day.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// The largest magnitude of a valid instant (the JavaScript `Date` range).
pub(crate) const MAX_INSTANT_MS: f64 = 8.64e15;

/// The earliest instant PostgreSQL's `timestamptz` and `date` can hold:
/// 4714-11-24 BC (proleptic Gregorian year -4713), 00:00 UTC, in epoch
/// milliseconds.
pub(crate) const PG_MIN_MS: i64 = -210_866_803_200_000;

/// The first instant past what PostgreSQL's `timestamptz` can hold:
/// 294277-01-01 00:00 UTC (its `date` reaches year 5874897). Both lie past
/// the JavaScript range and chrono's, so only [`PG_MIN_MS`] can actually
/// refuse an input; the bound is checked all the same.
pub(crate) const PG_TIMESTAMPTZ_END_MS: i64 = 9_224_318_016_000_000;

/// Whether `ms` lies within what PostgreSQL's `timestamptz` can hold.
pub(crate) fn within_postgres(ms: i64) -> bool {
    (PG_MIN_MS..PG_TIMESTAMPTZ_END_MS).contains(&ms)
}

/// Reads an input instant: a finite JSON number within ±8.64e15, fractions
/// truncated toward zero.
pub(crate) fn instant_ms_from_json(value: &serde_json::Value) -> Option<i64> {
    if let Some(i) = value.as_i64() {
        return (i.unsigned_abs() as f64 <= MAX_INSTANT_MS).then_some(i);
    }
    let f = value.as_f64()?;
    (f.is_finite() && f.abs() <= MAX_INSTANT_MS).then(|| f.trunc() as i64)
}

/// Reads an input day: an instant divisible by one day.
pub(crate) fn date_only_ms_from_json(value: &serde_json::Value) -> Option<i64> {
    if let Some(f) = value.as_f64() {
        if f.fract() != 0.0 {
            return None;
        }
    }
    instant_ms_from_json(value).filter(|ms| ms % DAY_MS == 0)
}

/// The instant of `ms` epoch milliseconds, if PostgreSQL's `timestamptz`
/// can hold it.
pub(crate) fn instant_from_ms(ms: i64) -> Option<DateTime<Utc>> {
    if !within_postgres(ms) {
        return None;
    }
    Utc.timestamp_millis_opt(ms).single()
}

/// Epoch milliseconds of an instant.
pub(crate) fn ms_from_instant(at: &DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// The day whose UTC midnight is `ms` (which must be divisible by a day),
/// if PostgreSQL's `date` can hold it.
pub(crate) fn date_from_ms(ms: i64) -> Option<NaiveDate> {
    if ms % DAY_MS != 0 {
        return None;
    }
    instant_from_ms(ms).map(|at| at.date_naive())
}

/// Epoch milliseconds of the UTC midnight of `day`.
pub(crate) fn ms_from_date(day: &NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0).map(|dt| dt.and_utc().timestamp_millis()).unwrap_or_default()
}

/// Current time truncated to milliseconds.
pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_range_in_both_directions() {
        let first = instant_from_ms(PG_MIN_MS).expect("the first instant PostgreSQL holds");
        assert_eq!(first.to_rfc3339(), "-4713-11-24T00:00:00+00:00");
        assert!(instant_from_ms(PG_MIN_MS - 1).is_none());
        assert!(date_from_ms(PG_MIN_MS).is_some());
        assert!(date_from_ms(PG_MIN_MS - DAY_MS).is_none());
        assert!(!within_postgres(PG_TIMESTAMPTZ_END_MS));
        assert!(within_postgres(PG_TIMESTAMPTZ_END_MS - 1));
        // The largest JavaScript instant is within PostgreSQL but past chrono.
        assert!(within_postgres(MAX_INSTANT_MS as i64));
        assert!(instant_from_ms(MAX_INSTANT_MS as i64).is_none());
        assert!(instant_from_ms(-(MAX_INSTANT_MS as i64)).is_none());
        assert!(instant_from_ms(0).is_some());
    }
}
