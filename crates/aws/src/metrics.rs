//! Every request FireCamp sent to AWS (each attempt, retries included: the API budget counts
//! them all), by service, operation and outcome, for the `/metrics` of the process that sent
//! them. Label values come from fixed sets: the clients' service names, the operation names in
//! the code, three outcomes.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::retry::Verdict;

type Key = (&'static str, &'static str, &'static str);

static REQUESTS: Mutex<BTreeMap<Key, u64>> = Mutex::new(BTreeMap::new());

/// The outcome label of one attempt: `ok`, `retryable` (throttled or transient) or `error`.
pub fn outcome(result: Result<(), Verdict>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(Verdict::Retry) => "retryable",
        Err(Verdict::Fail) => "error",
    }
}

pub(crate) fn record(service: &'static str, op: &'static str, outcome: &'static str) {
    *REQUESTS.lock().unwrap_or_else(|p| p.into_inner()).entry((service, op, outcome)).or_default() += 1;
}

/// The counts so far, sorted.
pub fn snapshot() -> Vec<(Key, u64)> {
    REQUESTS.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, v)| (*k, *v)).collect()
}
