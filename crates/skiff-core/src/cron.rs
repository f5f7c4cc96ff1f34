//! Cron schedules as the CronJob controller reads them: robfig/cron's `ParseStandard` (five
//! fields, month and weekday names, `*`/`?`, ranges, steps and lists, the `@yearly`-style
//! descriptors, `@every <duration>`, an optional `TZ=`/`CRON_TZ=` prefix) with its error
//! messages, and the fire times such a schedule yields in a time zone.
//!
//! Fire times are computed on civil (wall-clock) time in the schedule's zone, then mapped to
//! instants. Wall times that do not exist (the hour skipped when daylight saving starts) never
//! fire; wall times that happen twice (the hour repeated when it ends) fire once, at the first
//! instant after the time asked about. Day-of-month and day-of-week combine as robfig does:
//! both must match when either field starts with `*` or `?`, otherwise either may match.

use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};

/// A schedule that does not parse; the message is robfig/cron's, which upstream reports
/// verbatim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// How far ahead (and back) a search for a fire time goes, as robfig gives up after five years.
const SEARCH_YEARS: i16 = 5;

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [(&'static str, u32)],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

/// The five fields as bit sets (bit n set: value n matches).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fields {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    /// The day-of-month or day-of-week field started with `*`/`?` (robfig's star bit).
    day_star: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Fields(Fields),
    /// `@every <duration>`: a constant delay, at least one second, in whole seconds.
    Every(SignedDuration),
}

/// A parsed schedule with its time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    kind: Kind,
    tz: TimeZone,
}

impl Schedule {
    /// Parses `spec` in UTC (unless it carries a `TZ=` prefix).
    pub fn parse(spec: &str) -> Result<Schedule, ParseError> {
        Schedule::parse_in(spec, TimeZone::UTC)
    }

    /// Parses `spec` in `tz` (a `TZ=`/`CRON_TZ=` prefix in the spec wins, as in robfig).
    pub fn parse_in(spec: &str, tz: TimeZone) -> Result<Schedule, ParseError> {
        parse(spec, tz).map_err(ParseError)
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The first fire time strictly after `after` (`None` if there is none within five
    /// years, e.g. `0 0 30 2 *`).
    pub fn next(&self, after: Timestamp) -> Option<Timestamp> {
        match &self.kind {
            Kind::Every(d) => {
                let whole = after.as_second();
                Timestamp::from_second(whole).ok()?.checked_add(*d).ok()
            }
            Kind::Fields(f) => {
                let civil = self.tz.to_datetime(after);
                let mut start = minute_floor(civil)
                    .checked_add(SignedDuration::from_mins(1))
                    .ok()?;
                let limit = civil.year().saturating_add(SEARCH_YEARS);
                loop {
                    let c = next_civil(f, start, limit)?;
                    if let Some(t) = instants(&self.tz, c)
                        .into_iter()
                        .flatten()
                        .find(|t| *t > after)
                    {
                        return Some(t);
                    }
                    start = c.checked_add(SignedDuration::from_mins(1)).ok()?;
                }
            }
        }
    }

    /// The last fire time at or before `at` (`None` for `@every`, which has no fixed
    /// phase, or if there is none within five years).
    pub fn prev(&self, at: Timestamp) -> Option<Timestamp> {
        let Kind::Fields(f) = &self.kind else {
            return None;
        };
        let civil = self.tz.to_datetime(at);
        let mut end = minute_floor(civil);
        let limit = civil.year().saturating_sub(SEARCH_YEARS);
        loop {
            let c = prev_civil(f, end, limit)?;
            if let Some(t) = instants(&self.tz, c)
                .into_iter()
                .flatten()
                .filter(|t| *t <= at)
                .max()
            {
                return Some(t);
            }
            end = c.checked_sub(SignedDuration::from_mins(1)).ok()?;
        }
    }

    /// Upstream's `mostRecentScheduleTime`: the latest fire time in `(earliest, now]` and how
    /// many fire times upstream counts as missed in that window (its arithmetic on the
    /// interval between the first two, which is exact for regular schedules).
    pub fn most_recent(
        &self,
        earliest: Timestamp,
        now: Timestamp,
    ) -> Result<Option<(Timestamp, i64)>, ParseError> {
        let Some(t1) = self.next(earliest) else {
            return Ok(None);
        };
        if now < t1 {
            return Ok(None);
        }
        let Some(t2) = self.next(t1) else {
            return Ok(Some((t1, 1)));
        };
        if now < t2 {
            return Ok(Some((t1, 1)));
        }
        let between = t2.duration_since(t1).as_secs_f64().round() as i64;
        if between < 1 {
            return Err(ParseError(
                "time difference between two schedules is less than 1 second".into(),
            ));
        }
        let elapsed = now.duration_since(t1).as_secs();
        let missed = elapsed / between + 1;
        let recent = match &self.kind {
            Kind::Every(_) => {
                Timestamp::from_second(t1.as_second() + (missed - 1) * between).unwrap_or(t1)
            }
            Kind::Fields(_) => self.prev(now).filter(|t| *t >= t1).unwrap_or(t1),
        };
        Ok(Some((recent, missed)))
    }
}

fn minute_floor(dt: DateTime) -> DateTime {
    dt.date().at(dt.hour(), dt.minute(), 0, 0)
}

fn has(bits: u64, v: i8) -> bool {
    v >= 0 && bits & (1u64 << v) != 0
}

fn day_matches(f: &Fields, d: Date) -> bool {
    let dom = has(f.dom, d.day());
    let dow = has(f.dow, d.weekday().to_sunday_zero_offset());
    if f.day_star {
        dom && dow
    } else {
        dom || dow
    }
}

fn first_of_next_month(d: Date) -> Option<Date> {
    let (y, m) = if d.month() == 12 {
        (d.year().checked_add(1)?, 1)
    } else {
        (d.year(), d.month() + 1)
    };
    Date::new(y, m, 1).ok()
}

/// The first civil minute at or after `dt` that matches, before year `limit` ends.
fn next_civil(f: &Fields, mut dt: DateTime, limit: i16) -> Option<DateTime> {
    loop {
        if dt.year() > limit {
            return None;
        }
        let d = dt.date();
        if !has(f.month, d.month()) {
            dt = first_of_next_month(d)?.at(0, 0, 0, 0);
            continue;
        }
        if !day_matches(f, d) {
            dt = d.tomorrow().ok()?.at(0, 0, 0, 0);
            continue;
        }
        if !has(f.hour, dt.hour()) {
            dt = if dt.hour() == 23 {
                d.tomorrow().ok()?.at(0, 0, 0, 0)
            } else {
                d.at(dt.hour() + 1, 0, 0, 0)
            };
            continue;
        }
        if !has(f.minute, dt.minute()) {
            dt = dt.checked_add(SignedDuration::from_mins(1)).ok()?;
            continue;
        }
        return Some(dt);
    }
}

/// The last civil minute at or before `dt` that matches, not before year `limit`.
fn prev_civil(f: &Fields, mut dt: DateTime, limit: i16) -> Option<DateTime> {
    loop {
        if dt.year() < limit {
            return None;
        }
        let d = dt.date();
        if !has(f.month, d.month()) {
            dt = d.first_of_month().yesterday().ok()?.at(23, 59, 0, 0);
            continue;
        }
        if !day_matches(f, d) {
            dt = d.yesterday().ok()?.at(23, 59, 0, 0);
            continue;
        }
        if !has(f.hour, dt.hour()) {
            dt = if dt.hour() == 0 {
                d.yesterday().ok()?.at(23, 59, 0, 0)
            } else {
                d.at(dt.hour() - 1, 59, 0, 0)
            };
            continue;
        }
        if !has(f.minute, dt.minute()) {
            dt = dt.checked_sub(SignedDuration::from_mins(1)).ok()?;
            continue;
        }
        return Some(dt);
    }
}

/// The instants a civil time names in `tz`: none in a gap, two in a fold.
fn instants(tz: &TimeZone, dt: DateTime) -> [Option<Timestamp>; 2] {
    match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => [offset.to_timestamp(dt).ok(), None],
        AmbiguousOffset::Gap { .. } => [None, None],
        AmbiguousOffset::Fold { before, after } => {
            [before.to_timestamp(dt).ok(), after.to_timestamp(dt).ok()]
        }
    }
}

fn parse(spec: &str, mut tz: TimeZone) -> Result<Schedule, String> {
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    let mut spec = spec;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let i = spec.find(' ').unwrap_or(spec.len());
        let eq = spec.find('=').unwrap_or(0);
        let name = &spec[eq + 1..i];
        tz = TimeZone::get(name)
            .map_err(|_| format!("provided bad location {name}: unknown time zone {name}"))?;
        spec = spec[i..].trim();
    }
    if spec.starts_with('@') {
        let expanded = match spec {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            _ => {
                let Some(dur) = spec.strip_prefix("@every ") else {
                    return Err(format!("unrecognized descriptor: {spec}"));
                };
                let d = go_duration(dur).ok_or_else(|| {
                    format!("failed to parse duration {spec}: time: invalid duration \"{dur}\"")
                })?;
                // robfig rounds a delay below one second up to one second, and drops
                // fractions of a second.
                let secs = (d.as_secs()).max(1);
                return Ok(Schedule {
                    kind: Kind::Every(SignedDuration::from_secs(secs)),
                    tz,
                });
            }
        };
        return parse(expanded, tz);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    let mut bits = [0u64; 5];
    let mut stars = [false; 5];
    for (i, (f, b)) in fields
        .iter()
        .zip([&MINUTES, &HOURS, &DOM, &MONTHS, &DOW])
        .enumerate()
    {
        for expr in f.split(',') {
            let (set, star) = get_range(expr, b)?;
            bits[i] |= set;
            stars[i] |= star;
        }
    }
    Ok(Schedule {
        kind: Kind::Fields(Fields {
            minute: bits[0],
            hour: bits[1],
            dom: bits[2],
            month: bits[3],
            dow: bits[4],
            day_star: stars[2] || stars[4],
        }),
        tz,
    })
}

fn must_parse_int(expr: &str) -> Result<u32, String> {
    let n: i64 = expr.parse().map_err(|_| {
        format!("failed to parse int from {expr}: strconv.Atoi: parsing {expr:?}: invalid syntax")
    })?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    u32::try_from(n).map_err(|_| {
        format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {expr:?}: value out of range"
        )
    })
}

fn int_or_name(expr: &str, b: &Bounds) -> Result<u32, String> {
    let lower = expr.to_lowercase();
    if let Some((_, v)) = b.names.iter().find(|(n, _)| *n == lower) {
        return Ok(*v);
    }
    must_parse_int(expr)
}

/// One comma-separated part of a field: its bits and whether it is a star (a bare `*` or
/// `?`, with no step above 1).
fn get_range(expr: &str, b: &Bounds) -> Result<(u64, bool), String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_high.len() == 1;
    let mut star = false;
    let (start, mut end) = if low_high[0] == "*" || low_high[0] == "?" {
        star = true;
        (b.min, b.max)
    } else {
        let start = int_or_name(low_high[0], b)?;
        let end = match low_high.len() {
            1 => start,
            2 => int_or_name(low_high[1], b)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        (start, end)
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let s = must_parse_int(range_and_step[1])?;
            if single {
                end = b.max;
            }
            if s > 1 {
                star = false;
            }
            s
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    let mut bits = 0u64;
    let mut v = start;
    while v <= end {
        bits |= 1 << v;
        v += step;
    }
    Ok((bits, star))
}

/// Go's `time.ParseDuration`: `[-+]?(\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)` repeated, or `0`.
fn go_duration(s: &str) -> Option<SignedDuration> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if s == "0" {
        return Some(SignedDuration::ZERO);
    }
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..n];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = num.parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * unit;
        rest = &rest[u..];
    }
    let d = SignedDuration::try_from_secs_f64(total).ok()?;
    Some(if neg { -d } else { d })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn next(spec: &str, after: &str) -> String {
        Schedule::parse(spec)
            .unwrap()
            .next(ts(after))
            .unwrap()
            .to_string()
    }

    #[test]
    fn next_fire_times_in_utc() {
        assert_eq!(
            next("*/5 * * * *", "2026-01-01T00:00:00Z"),
            "2026-01-01T00:05:00Z"
        );
        assert_eq!(
            next("*/5 * * * *", "2026-01-01T00:04:59.9Z"),
            "2026-01-01T00:05:00Z"
        );
        assert_eq!(
            next("0 9-17 * * mon-fri", "2026-01-02T17:30:00Z"),
            "2026-01-05T09:00:00Z"
        );
        assert_eq!(
            next("15,45 */2 1 * ?", "2026-01-01T00:20:00Z"),
            "2026-01-01T00:45:00Z"
        );
        assert_eq!(
            next("@yearly", "2026-03-01T00:00:00Z"),
            "2027-01-01T00:00:00Z"
        );
        assert_eq!(
            next("@monthly", "2026-01-31T00:00:00Z"),
            "2026-02-01T00:00:00Z"
        );
        assert_eq!(
            next("@weekly", "2026-01-01T00:00:00Z"),
            "2026-01-04T00:00:00Z"
        );
        assert_eq!(
            next("@hourly", "2026-01-01T00:00:00Z"),
            "2026-01-01T01:00:00Z"
        );
        assert_eq!(
            next("@every 90s", "2026-01-01T00:00:00.5Z"),
            "2026-01-01T00:01:30Z"
        );
        assert_eq!(
            next("0 0 29 feb *", "2026-01-01T00:00:00Z"),
            "2028-02-29T00:00:00Z"
        );
        assert_eq!(
            next("0 0 1 JAN *", "2026-06-01T00:00:00Z"),
            "2027-01-01T00:00:00Z"
        );
        assert!(Schedule::parse("0 0 30 feb *")
            .unwrap()
            .next(ts("2026-01-01T00:00:00Z"))
            .is_none());
    }

    #[test]
    fn day_of_month_and_week_combine_like_robfig() {
        // Neither starred: either matches (the 13th or any Friday).
        assert_eq!(
            next("0 0 13 * 5", "2026-02-01T00:00:00Z"),
            "2026-02-06T00:00:00Z"
        );
        // Day-of-week starred: only the 13th.
        assert_eq!(
            next("0 0 13 * *", "2026-02-01T00:00:00Z"),
            "2026-02-13T00:00:00Z"
        );
        // A stepped star is not a star: "*/2" day-of-month ORs with Monday.
        assert_eq!(
            next("0 0 */2 * 1", "2026-02-01T00:00:00Z"),
            "2026-02-02T00:00:00Z"
        );
    }

    #[test]
    fn time_zones_and_daylight_saving() {
        let ny = TimeZone::get("America/New_York").unwrap();
        let s = Schedule::parse_in("30 2 * * *", ny.clone()).unwrap();
        // 2026-03-08 02:30 does not exist in New York: skipped.
        assert_eq!(
            s.next(ts("2026-03-07T08:00:00Z")).unwrap(),
            ts("2026-03-09T06:30:00Z")
        );
        // 01:30 happens twice on 2026-11-01: fires once, at the first.
        let s = Schedule::parse_in("30 1 * * *", ny.clone()).unwrap();
        let first = s.next(ts("2026-11-01T04:00:00Z")).unwrap();
        assert_eq!(first, ts("2026-11-01T05:30:00Z"));
        assert_eq!(s.next(first).unwrap(), ts("2026-11-02T06:30:00Z"));
        // A TZ= prefix overrides the zone given.
        let s = Schedule::parse("TZ=Europe/Berlin 0 6 * * *").unwrap();
        assert_eq!(
            s.next(ts("2026-07-01T00:00:00Z")).unwrap(),
            ts("2026-07-01T04:00:00Z")
        );
        assert_eq!(
            s.prev(ts("2026-07-01T03:59:00Z")).unwrap(),
            ts("2026-06-30T04:00:00Z")
        );
    }

    #[test]
    fn most_recent_counts_missed_times_as_upstream() {
        let s = Schedule::parse("*/10 * * * *").unwrap();
        let created = ts("2026-01-01T00:00:30Z");
        assert_eq!(
            s.most_recent(created, ts("2026-01-01T00:09:59Z")).unwrap(),
            None
        );
        assert_eq!(
            s.most_recent(created, ts("2026-01-01T00:10:00Z")).unwrap(),
            Some((ts("2026-01-01T00:10:00Z"), 1))
        );
        assert_eq!(
            s.most_recent(created, ts("2026-01-01T01:05:00Z")).unwrap(),
            Some((ts("2026-01-01T01:00:00Z"), 6))
        );
        // Irregular schedule: the most recent is a real fire time.
        let s = Schedule::parse("0 9 * * mon-fri").unwrap();
        let (t, _) = s
            .most_recent(ts("2026-01-01T00:00:00Z"), ts("2026-01-12T08:00:00Z"))
            .unwrap()
            .unwrap();
        assert_eq!(t, ts("2026-01-09T09:00:00Z"));
        let every = Schedule::parse("@every 1m").unwrap();
        assert_eq!(
            every
                .most_recent(ts("2026-01-01T00:00:00Z"), ts("2026-01-01T00:05:30Z"))
                .unwrap(),
            Some((ts("2026-01-01T00:05:00Z"), 5))
        );
    }

    #[test]
    fn parse_errors_are_robfigs() {
        for (spec, msg) in [
            ("foo", "expected exactly 5 fields, found 1: [foo]"),
            ("61 * * * *", "end of range (61) above maximum (59): 61"),
            ("@often", "unrecognized descriptor: @often"),
            (
                "@every x",
                "failed to parse duration @every x: time: invalid duration \"x\"",
            ),
            (
                "TZ=Mars/Base 0 * * * *",
                "provided bad location Mars/Base: unknown time zone Mars/Base",
            ),
        ] {
            assert_eq!(Schedule::parse(spec).unwrap_err().0, msg, "{spec}");
        }
    }

    fn field(max: u32) -> impl Strategy<Value = String> {
        prop_oneof![
            Just("*".to_string()),
            (0..=max).prop_map(|v| v.to_string()),
            (1..=max.max(1)).prop_map(|s| format!("*/{s}")),
            (0..=max, 0..=max).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
        ]
    }

    fn spec() -> impl Strategy<Value = String> {
        (field(59), field(23), field(27), field(11), field(6)).prop_map(|(m, h, d, mo, w)| {
            // Days and months start at 1.
            let shift = |f: String| {
                if f.starts_with('*') {
                    f
                } else {
                    f.split('-')
                        .map(|x| (x.parse::<u32>().unwrap() + 1).to_string())
                        .collect::<Vec<_>>()
                        .join("-")
                }
            };
            format!("{m} {h} {} {} {w}", shift(d), shift(mo))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// `next` is strictly later, matches, and nothing in between matches (checked minute by
        /// minute over a bounded window); `prev` of `next` is `next` itself.
        #[test]
        fn next_is_the_first_match(spec in spec(), start in 1_700_000_000i64..1_900_000_000i64, zone in prop_oneof![Just("UTC"), Just("America/New_York"), Just("Europe/Berlin")]) {
            let tz = TimeZone::get(zone).unwrap();
            let s = Schedule::parse_in(&spec, tz.clone()).unwrap();
            let after = Timestamp::from_second(start).unwrap();
            if let Some(n) = s.next(after) {
                prop_assert!(n > after);
                prop_assert_eq!(s.prev(n), Some(n));
                let Kind::Fields(f) = &s.kind else { unreachable!() };
                let window = n.duration_since(after).as_mins().min(3 * 24 * 60);
                let base = minute_floor(tz.to_datetime(after));
                for i in 1..window {
                    let Ok(t) = tz.to_timestamp(base.checked_add(SignedDuration::from_mins(i)).unwrap()) else { continue };
                    if t <= after || t >= n { continue; }
                    let c = tz.to_datetime(t);
                    if !matches!(tz.to_ambiguous_timestamp(c).offset(), AmbiguousOffset::Unambiguous { .. }) { continue; }
                    let matched = has(f.month, c.month()) && day_matches(f, c.date())
                        && has(f.hour, c.hour()) && has(f.minute, c.minute());
                    prop_assert!(!matched, "{} matches before {}", t, n);
                }
            }
        }
    }
}
