//! The one place AWS requests go through: paced by a token bucket, retried with full-jitter
//! backoff when the failure is transient, turned into a typed [`CallError`] otherwise.

use std::future::Future;
use std::sync::Mutex;
use std::time::Instant;

use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::CallError;
use crate::retry::{Backoff, Rate, TokenBucket, Verdict, classify};

/// Paces and retries the calls to one AWS service (one per client: Route53, EC2, Logs).
pub struct Caller {
    service: &'static str,
    bucket: Mutex<TokenBucket>,
    backoff: Backoff,
    rng: Mutex<StdRng>,
}

impl Caller {
    pub fn new(service: &'static str, rate: Rate, backoff: Backoff) -> Self {
        Caller { service, bucket: Mutex::new(TokenBucket::new(rate.per_second, rate.burst, Instant::now())), backoff, rng: Mutex::new(StdRng::from_os_rng()) }
    }

    /// Waits for a token of the service's bucket.
    pub async fn pace(&self) {
        loop {
            let wait = match self.bucket.lock() {
                Ok(mut b) => b.take(Instant::now()),
                Err(poisoned) => poisoned.into_inner().take(Instant::now()),
            };
            match wait {
                Ok(()) => return,
                Err(d) => tokio::time::sleep(d).await,
            }
        }
    }

    /// Sleeps the backoff delay after failed attempt `attempt`; false when attempts are used up.
    pub async fn back_off(&self, attempt: u32) -> bool {
        let unit: f64 = match self.rng.lock() {
            Ok(mut r) => r.random(),
            Err(p) => p.into_inner().random(),
        };
        match self.backoff.delay(attempt, unit) {
            Some(d) => {
                tokio::time::sleep(d).await;
                true
            }
            None => false,
        }
    }

    pub fn max_attempts(&self) -> u32 {
        self.backoff.max_attempts
    }

    /// One paced attempt, not retried: for steps whose retry must re-read state first (a lost
    /// reply to "assign any free IP" must not allocate a second one).
    pub async fn once<T, E, F, Fut>(&self, op: &'static str, f: F) -> Result<T, CallError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.pace().await;
        let r = f().await.map_err(|e| self.call_error(op, &e, 1));
        crate::metrics::record(self.service, op, crate::metrics::outcome(r.as_ref().map(|_| ()).map_err(|e| e.verdict)));
        r
    }

    /// Paced attempts of an idempotent request until it succeeds, fails for good, or the
    /// attempts run out.
    pub async fn call<T, E, F, Fut>(&self, op: &'static str, mut f: F) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let mut attempt = 1;
        loop {
            self.pace().await;
            match f().await {
                Ok(v) => {
                    crate::metrics::record(self.service, op, crate::metrics::outcome(Ok(())));
                    return Ok(v);
                }
                Err(e) => {
                    let err = self.call_error(op, &e, attempt);
                    crate::metrics::record(self.service, op, crate::metrics::outcome(Err(err.verdict)));
                    tracing::debug!(service = self.service, op, attempt, error = %err, "AWS call failed");
                    if err.verdict == Verdict::Fail || !self.back_off(attempt).await {
                        return Err(err);
                    }
                    attempt += 1;
                }
            }
        }
    }

    fn call_error<E: ProvideErrorMetadata + std::error::Error + 'static>(&self, op: &'static str, e: &SdkError<E, HttpResponse>, attempts: u32) -> CallError {
        let status = e.raw_response().map(|r| r.status().as_u16());
        let transport = matches!(e, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_));
        let (code, message) = match e {
            SdkError::ServiceError(_) => (e.code().map(String::from), e.message().map(String::from)),
            // Not a service answer: keep the SDK's own description (it names no credentials).
            other => (None, Some(aws_sdk_ec2::error::DisplayErrorContext(other).to_string())),
        };
        let verdict = classify(code.as_deref(), status, transport);
        CallError { service: self.service, op, code, message, status, verdict, attempts }
    }
}
