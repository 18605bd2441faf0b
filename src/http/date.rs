//! Dates: the `Date` field (IMF-fixdate, RFC 9110 §5.6.7, written by the `httpdate` crate)
//! and the two forms the access log uses, both cut from the same fixed-width text so there
//! is one calendar computation in the whole server.

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The last instant IMF-fixdate can write (9999-12-31T23:59:59Z), in seconds since the epoch.
const LAST_SECOND: u64 = 253_402_300_799;

/// `t` clamped to what IMF-fixdate can write: `httpdate` panics before 1970 and after 9999,
/// and a clock can be set anywhere.
fn clamp(t: SystemTime) -> SystemTime {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    UNIX_EPOCH + Duration::from_secs(secs.min(LAST_SECOND))
}

/// An HTTP date for `t`, e.g. "Sun, 06 Nov 1994 08:49:37 GMT": always 29 bytes.
pub(crate) fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(clamp(t))
}

thread_local! {
    static NOW: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Calls `f` with the current HTTP date, formatted at most once a second per thread.
pub(crate) fn with_now<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    NOW.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            *cached = (secs, http_date(now));
        }
        f(cached.1.as_bytes())
    })
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The parts of an IMF-fixdate ("Www, DD Mon YYYY HH:MM:SS GMT"): day, month name, year,
/// time of day.
fn parts(date: &str) -> (&str, &str, &str, &str) {
    let at = |r: std::ops::Range<usize>| date.get(r).unwrap_or("");
    (at(5..7), at(8..11), at(12..16), at(17..25))
}

/// The Common Log Format time, e.g. "06/Nov/1994:08:49:37 +0000".
pub(crate) fn common_log(t: SystemTime) -> String {
    let date = http_date(t);
    let (day, month, year, time) = parts(&date);
    format!("{day}/{month}/{year}:{time} +0000")
}

/// RFC 3339 with milliseconds, e.g. "1994-11-06T08:49:37.250Z".
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let millis = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_millis());
    let date = http_date(t);
    let (day, month, year, time) = parts(&date);
    let month = MONTHS.iter().position(|m| *m == month).map_or(1, |i| i + 1);
    format!("{year}-{month:02}-{day}T{time}.{millis:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn http_dates() {
        let cases = [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_709_251_199, "Thu, 29 Feb 2024 23:59:59 GMT"),
            (1_795_182_310, "Fri, 20 Nov 2026 13:45:10 GMT"),
            (LAST_SECOND, "Fri, 31 Dec 9999 23:59:59 GMT"),
        ];
        for (secs, expected) in cases {
            assert_eq!(http_date(at(secs)), expected, "{secs}");
        }
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(http_date(before), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(at(u64::MAX / 2)), "Fri, 31 Dec 9999 23:59:59 GMT");
        with_now(|d| assert_eq!(d.len(), 29));
    }

    #[test]
    fn log_forms() {
        let t = UNIX_EPOCH + Duration::from_millis(784_111_777_250);
        assert_eq!(common_log(t), "06/Nov/1994:08:49:37 +0000");
        assert_eq!(rfc3339(t), "1994-11-06T08:49:37.250Z");
        assert_eq!(rfc3339(at(1_795_182_310)), "2026-11-20T13:45:10.000Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00.000Z"
        );
    }
}
