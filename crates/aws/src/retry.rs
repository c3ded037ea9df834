//! Client-side rate limiting and retries, pure and separately testable.
//!
//! AWS throttles per account and region (Route53: a few requests per second for the whole
//! account; shared/reference/peers.md §5), so FireCamp paces itself with a token bucket per
//! service and retries transient failures with full-jitter exponential backoff. The SDK's own
//! retries are switched off (`config::load`) so that these are the only ones and the API-call
//! counts are exact.

use std::time::{Duration, Instant};

/// Whether an error is worth another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Throttling or a transient server/transport fault: back off and try again.
    Retry,
    /// The request itself is wrong or refused: trying again cannot help.
    Fail,
}

/// Error codes AWS uses for "slow down" and "busy" across Route53, EC2 and CloudWatch Logs.
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "PriorRequestNotComplete",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
];

/// Classifies one failed call from its error code, HTTP status and whether the request failed
/// before a response arrived (connection refused, reset, timeout).
pub fn classify(code: Option<&str>, status: Option<u16>, transport: bool) -> Verdict {
    if transport {
        return Verdict::Retry;
    }
    if code.is_some_and(|c| RETRYABLE_CODES.contains(&c)) {
        return Verdict::Retry;
    }
    match status {
        Some(429) => Verdict::Retry,
        Some(s) if (500..600).contains(&s) => Verdict::Retry,
        _ => Verdict::Fail,
    }
}

/// Full-jitter exponential backoff with a bounded number of attempts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay ceiling of the first retry; doubles per attempt.
    pub base: Duration,
    /// Largest delay ceiling.
    pub cap: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base: Duration::from_millis(200), cap: Duration::from_secs(20), max_attempts: 8 }
    }
}

impl Backoff {
    /// The delay before attempt `attempt + 1` after failed attempt `attempt` (1-based), or `None`
    /// when the attempts are used up. `unit` is a uniform random number in [0, 1): full jitter
    /// (`random(0, min(cap, base·2^(attempt-1)))`) spreads competing clients apart.
    pub fn delay(&self, attempt: u32, unit: f64) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let exp = 2f64.powi(attempt.saturating_sub(1).min(30) as i32);
        let ceiling = (self.base.as_secs_f64() * exp).min(self.cap.as_secs_f64());
        Some(Duration::from_secs_f64(ceiling * unit.clamp(0.0, 1.0)))
    }
}

/// A token bucket: `burst` tokens, refilled at `per_second`. The clock is passed in.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_second: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(per_second: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket { per_second: per_second.max(f64::MIN_POSITIVE), burst, tokens: burst, last: now }
    }

    /// Takes one token at `now`, or says how long to wait before asking again.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.last = self.last.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.per_second))
        }
    }
}

/// Requests per second and burst of one AWS service.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl Rate {
    /// Route53's account-wide budget is the tightest; 5/s is its long-documented limit.
    pub const ROUTE53: Rate = Rate { per_second: 5.0, burst: 5 };
    /// EC2 mutating calls refill at 5/s (AssignPrivateIpAddresses and friends).
    pub const EC2: Rate = Rate { per_second: 5.0, burst: 20 };
    /// CloudWatch Logs control-plane calls.
    pub const LOGS: Rate = Rate { per_second: 5.0, burst: 10 };
    /// S3 takes 3 500 writes and 5 500 reads a second per prefix; FireCamp's backups need far
    /// fewer, and a burst covers a backup's handful of objects at once.
    pub const S3: Rate = Rate { per_second: 50.0, burst: 50 };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_busy_and_5xx_are_retried_client_errors_are_not() {
        for code in ["Throttling", "PriorRequestNotComplete", "RequestLimitExceeded", "ThrottlingException"] {
            assert_eq!(classify(Some(code), Some(400), false), Verdict::Retry, "{code}");
        }
        assert_eq!(classify(None, Some(500), false), Verdict::Retry);
        assert_eq!(classify(None, Some(503), false), Verdict::Retry);
        assert_eq!(classify(None, None, true), Verdict::Retry);
        assert_eq!(classify(Some("InvalidChangeBatch"), Some(400), false), Verdict::Fail);
        assert_eq!(classify(Some("InvalidParameterValue"), Some(400), false), Verdict::Fail);
        assert_eq!(classify(None, Some(404), false), Verdict::Fail);
    }

    #[test]
    fn backoff_ceiling_doubles_up_to_the_cap_and_attempts_are_bounded() {
        let b = Backoff { base: Duration::from_millis(100), cap: Duration::from_millis(1000), max_attempts: 6 };
        let ceilings: Vec<_> = (1..6).map(|a| b.delay(a, 1.0).unwrap().as_millis()).collect();
        assert_eq!(ceilings, vec![100, 200, 400, 800, 1000]);
        assert_eq!(b.delay(6, 0.5), None);
        assert_eq!(b.delay(3, 0.0), Some(Duration::ZERO));
        assert_eq!(b.delay(3, 0.5), Some(Duration::from_millis(200)));
    }

    #[test]
    fn bucket_allows_a_burst_then_paces_at_its_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(5.0, 5, t0);
        for _ in 0..5 {
            assert_eq!(b.take(t0), Ok(()));
        }
        assert_eq!(b.take(t0), Err(Duration::from_millis(200)));
        // 100 ms later half a token has come back: wait the other 100 ms.
        let wait = b.take(t0 + Duration::from_millis(100)).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        assert_eq!(b.take(t0 + Duration::from_millis(200)), Ok(()));
        // A long idle time refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..5 {
            assert_eq!(b.take(later), Ok(()));
        }
        assert!(b.take(later).is_err());
    }
}
