//! Reading GitHub's rate-limit signals.

use std::time::Duration;

use http::{HeaderMap, StatusCode};

/// GitHub's advice when a secondary limit gives no header: wait at least a minute.
const SECONDARY_DEFAULT_WAIT: Duration = Duration::from_secs(60);

fn header<T: std::str::FromStr>(headers: &HeaderMap, name: &str) -> Option<T> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Time until `x-ratelimit-reset` (epoch seconds), plus a second of margin for clock
/// skew; at least one second.
pub(crate) fn until_reset(headers: &HeaderMap, now_epoch: u64) -> Option<Duration> {
    let reset: u64 = header(headers, "x-ratelimit-reset")?;
    Some(Duration::from_secs(reset.saturating_sub(now_epoch) + 1))
}

/// `Some(remaining)` from `x-ratelimit-remaining`.
pub(crate) fn remaining(headers: &HeaderMap) -> Option<u64> {
    header(headers, "x-ratelimit-remaining")
}

/// After a successful response: how long to pause before the next request, when the
/// quota is used up.
/// How long to hold the next request after a success, from its rate-limit headers:
/// until the reset when no more than `reserve` (a share of the limit, kept for other
/// roles such as the planner) remains; once less than a quarter remains, the time to
/// the reset spread over what is left; else not at all. Every process reading the
/// token's headers paces itself the same way, so a fleet shares the budget.
pub(crate) fn pace(headers: &HeaderMap, now_epoch: u64, reserve: f64) -> Option<Duration> {
    let remaining = remaining(headers)?;
    let until = until_reset(headers, now_epoch)?;
    let limit: u64 = header(headers, "x-ratelimit-limit").unwrap_or(remaining);
    let reserve = (limit as f64 * reserve) as u64;
    if remaining <= reserve {
        return Some(until);
    }
    (remaining.saturating_mul(4) < limit)
        .then(|| until / u32::try_from(remaining - reserve).unwrap_or(u32::MAX))
}

/// For a `403`/`429`: how long to wait if it is a rate limit, `None` if it is a real
/// refusal.
pub(crate) fn wait_for(
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    now_epoch: u64,
) -> Option<Duration> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    if let Some(secs) = header::<u64>(headers, "retry-after") {
        return Some(Duration::from_secs(secs.max(1)));
    }
    if remaining(headers) == Some(0) {
        return until_reset(headers, now_epoch).or(Some(SECONDARY_DEFAULT_WAIT));
    }
    let lower = body.to_lowercase();
    if status == StatusCode::TOO_MANY_REQUESTS || lower.contains("rate limit") {
        return Some(SECONDARY_DEFAULT_WAIT);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn primary_limit_waits_until_reset() {
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1010"),
        ]);
        assert_eq!(
            wait_for(StatusCode::FORBIDDEN, &h, "", 1000),
            Some(Duration::from_secs(11))
        );
        assert_eq!(pace(&h, 1000, 0.0), Some(Duration::from_secs(11)));
        // A reset already in the past still waits a moment.
        assert_eq!(
            wait_for(StatusCode::FORBIDDEN, &h, "", 2000),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn pacing_spreads_the_last_quarter_and_keeps_the_reserve() {
        let at = |remaining: &str| {
            headers(&[
                ("x-ratelimit-limit", "1000"),
                ("x-ratelimit-remaining", remaining),
                ("x-ratelimit-reset", "1099"),
            ])
        };
        // Plenty left: no pause.
        assert_eq!(pace(&at("900"), 1000, 0.05), None);
        assert_eq!(pace(&at("251"), 1000, 0.05), None);
        // A quarter left: 100 s to the reset spread over 200 - 50 requests.
        assert_eq!(
            pace(&at("200"), 1000, 0.05),
            Some(Duration::from_secs(100) / 150)
        );
        // Down to the reserve: wait for the reset (the planner may still go on).
        assert_eq!(pace(&at("50"), 1000, 0.05), Some(Duration::from_secs(100)));
        assert_eq!(
            pace(&at("50"), 1000, 0.0),
            Some(Duration::from_secs(100) / 50)
        );
    }

    #[test]
    fn secondary_limit_honours_retry_after() {
        let h = headers(&[("retry-after", "30"), ("x-ratelimit-remaining", "4000")]);
        assert_eq!(
            wait_for(StatusCode::FORBIDDEN, &h, "", 0),
            Some(Duration::from_secs(30))
        );
        let body = r#"{"message":"You have exceeded a secondary rate limit."}"#;
        assert_eq!(
            wait_for(StatusCode::FORBIDDEN, &HeaderMap::new(), body, 0),
            Some(SECONDARY_DEFAULT_WAIT)
        );
        assert_eq!(
            wait_for(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), "", 0),
            Some(SECONDARY_DEFAULT_WAIT)
        );
    }

    #[test]
    fn a_plain_403_is_not_a_rate_limit() {
        let h = headers(&[("x-ratelimit-remaining", "4999")]);
        assert_eq!(
            wait_for(
                StatusCode::FORBIDDEN,
                &h,
                r#"{"message":"Resource not accessible"}"#,
                0
            ),
            None
        );
        assert_eq!(wait_for(StatusCode::NOT_FOUND, &h, "", 0), None);
        assert_eq!(pace(&h, 0, 0.0), None);
    }
}
