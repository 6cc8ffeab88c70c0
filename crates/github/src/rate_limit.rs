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
fn until_reset(headers: &HeaderMap, now_epoch: u64) -> Option<Duration> {
    let reset: u64 = header(headers, "x-ratelimit-reset")?;
    Some(Duration::from_secs(reset.saturating_sub(now_epoch) + 1))
}

/// `Some(remaining)` from `x-ratelimit-remaining`.
pub(crate) fn remaining(headers: &HeaderMap) -> Option<u64> {
    header(headers, "x-ratelimit-remaining")
}

/// After a successful response: how long to pause before the next request, when the
/// quota is used up.
pub(crate) fn pause_after_success(headers: &HeaderMap, now_epoch: u64) -> Option<Duration> {
    (remaining(headers) == Some(0))
        .then(|| until_reset(headers, now_epoch))
        .flatten()
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
        assert_eq!(pause_after_success(&h, 1000), Some(Duration::from_secs(11)));
        // A reset already in the past still waits a moment.
        assert_eq!(
            wait_for(StatusCode::FORBIDDEN, &h, "", 2000),
            Some(Duration::from_secs(1))
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
        assert_eq!(pause_after_success(&h, 0), None);
    }
}
