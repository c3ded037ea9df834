//! CloudWatch Logs: the cluster's group `firecamp-<cluster>` and one stream per member,
//! `<namespace>/<service>/<member>`, which the node's log agent writes and `firecamp logs` reads.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use firecamp_core::MemberName;
use firecamp_core::cloud::{BoxFuture, CloudError, LogEvent, LogPage, MemberLogs};

use crate::call::Caller;
use crate::config::Clients;
use crate::error::AwsError;

/// `firecamp-<cluster>`: every member log of the cluster.
pub fn log_group(cluster: &str) -> String {
    format!("firecamp-{cluster}")
}

/// `<key>/<member>`: one member's lines, wherever it ran; `service` is the service's
/// `firecamp_core::cloud::log_key` (`<namespace>/<service>` on Kubernetes).
pub fn log_stream(service: &str, member: &MemberName) -> String {
    format!("{service}/{member}")
}

/// Polling interval bounds of `follow`: CloudWatch has no watch, so it polls, quickly while
/// lines arrive and backing off to at most `MAX_FOLLOW_INTERVAL` while the stream is quiet.
pub const MIN_FOLLOW_INTERVAL: Duration = Duration::from_secs(1);
pub const MAX_FOLLOW_INTERVAL: Duration = Duration::from_secs(10);

/// The interval after a poll that brought `got` events, given the previous interval.
pub fn next_follow_interval(previous: Duration, got: usize) -> Duration {
    if got > 0 { MIN_FOLLOW_INTERVAL } else { (previous * 2).clamp(MIN_FOLLOW_INTERVAL, MAX_FOLLOW_INTERVAL) }
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub struct CloudWatchLogs {
    client: aws_sdk_cloudwatchlogs::Client,
    calls: Arc<Caller>,
    group: String,
    retention_days: Option<i32>,
}

impl CloudWatchLogs {
    pub fn new(clients: &Clients, cluster: &str) -> Self {
        CloudWatchLogs { client: clients.logs.clone(), calls: clients.logs_calls.clone(), group: log_group(cluster), retention_days: Some(30) }
    }

    /// Days CloudWatch keeps events (one of the values CloudWatch accepts: 1, 3, 5, 7, 14,
    /// 30, …); `None` keeps them forever.
    pub fn with_retention(mut self, days: Option<i32>) -> Self {
        self.retention_days = days;
        self
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// The group (with its retention) and the members' streams, each created if missing.
    pub async fn ensure(&self, service: &str, members: &[MemberName]) -> Result<(), AwsError> {
        let created = self.calls.call("CreateLogGroup", || self.client.create_log_group().log_group_name(&self.group).send()).await;
        match created {
            Ok(_) => {}
            Err(e) if e.is(&["ResourceAlreadyExistsException"]) => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(days) = self.retention_days {
            self.calls.call("PutRetentionPolicy", || self.client.put_retention_policy().log_group_name(&self.group).retention_in_days(days).send()).await?;
        }
        let existing = self.streams(&format!("{service}/")).await?;
        for m in members {
            let stream = log_stream(service, m);
            if existing.contains(&stream) {
                continue;
            }
            let res = self.calls.call("CreateLogStream", || self.client.create_log_stream().log_group_name(&self.group).log_stream_name(&stream).send()).await;
            match res {
                Ok(_) => {}
                Err(e) if e.is(&["ResourceAlreadyExistsException"]) => {} // the agent was first
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Stream names starting with `prefix` (filtered by prefix, paged).
    pub async fn streams(&self, prefix: &str) -> Result<BTreeSet<String>, AwsError> {
        let mut out = BTreeSet::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .calls
                .call("DescribeLogStreams", || {
                    self.client.describe_log_streams().log_group_name(&self.group).log_stream_name_prefix(prefix).set_next_token(token.clone()).send()
                })
                .await?;
            out.extend(page.log_streams().iter().filter_map(|s| s.log_stream_name().map(String::from)));
            match page.next_token() {
                Some(t) if Some(t) != token.as_deref() && !page.log_streams().is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    /// One page of a member's events: at or after `since` from the start, or after `next`.
    pub async fn read_page(&self, service: &str, member: &MemberName, since: Option<SystemTime>, next: Option<String>) -> Result<LogPage, AwsError> {
        let stream = log_stream(service, member);
        let res = self
            .calls
            .call("GetLogEvents", || {
                let mut req =
                    self.client.get_log_events().log_group_name(&self.group).log_stream_name(&stream).start_from_head(true).set_next_token(next.clone());
                if next.is_none() {
                    req = req.set_start_time(since.map(millis));
                }
                req.send()
            })
            .await;
        let out = match res {
            Err(e) if e.is(&["ResourceNotFoundException"]) => {
                return Err(AwsError::NotFound(format!("log stream {}/{stream}", self.group)));
            }
            other => other?,
        };
        let events = out
            .events()
            .iter()
            .map(|e| LogEvent {
                time: UNIX_EPOCH + Duration::from_millis(e.timestamp().unwrap_or_default().max(0) as u64),
                message: e.message().unwrap_or_default().to_string(),
            })
            .collect();
        Ok(LogPage { events, next: out.next_forward_token().map(String::from) })
    }

    /// Reads a member's events from `since` and keeps polling for new ones with the forward
    /// token, until `on_event` breaks. At the end of a stream CloudWatch returns the same token
    /// again, so polling continues from it.
    pub async fn follow(
        &self,
        service: &str,
        member: &MemberName,
        since: Option<SystemTime>,
        mut on_event: impl FnMut(LogEvent) -> ControlFlow<()>,
    ) -> Result<(), AwsError> {
        let mut next = None;
        let mut interval = MIN_FOLLOW_INTERVAL;
        loop {
            let page = self.read_page(service, member, since, next.clone()).await?;
            let got = page.events.len();
            for e in page.events {
                if on_event(e).is_break() {
                    return Ok(());
                }
            }
            if page.next.is_some() {
                next = page.next;
            }
            // A full page means more is waiting: read on at once.
            if got == 0 || next.is_none() {
                interval = next_follow_interval(interval, got);
                tokio::time::sleep(interval).await;
            } else {
                interval = MIN_FOLLOW_INTERVAL;
            }
        }
    }

    /// Writes events to a member's stream (the log agent's job in a cluster; used by tests and
    /// by `firecamp` itself for its own notes on a member). Events must be in time order.
    pub async fn put(&self, service: &str, member: &MemberName, events: &[LogEvent]) -> Result<(), AwsError> {
        if events.is_empty() {
            return Ok(());
        }
        let stream = log_stream(service, member);
        let input: Vec<InputLogEvent> = events
            .iter()
            .map(|e| InputLogEvent::builder().timestamp(millis(e.time)).message(&e.message).build())
            .collect::<Result<_, _>>()
            .map_err(|e| AwsError::Invalid(format!("log event: {e}")))?;
        self.calls
            .call("PutLogEvents", || {
                self.client.put_log_events().log_group_name(&self.group).log_stream_name(&stream).set_log_events(Some(input.clone())).send()
            })
            .await?;
        Ok(())
    }
}

impl MemberLogs for CloudWatchLogs {
    fn ensure_streams<'a>(&'a self, service: &'a str, members: &'a [MemberName]) -> BoxFuture<'a, Result<(), CloudError>> {
        Box::pin(async move { Ok(self.ensure(service, members).await?) })
    }

    fn read<'a>(
        &'a self,
        service: &'a str,
        member: &'a MemberName,
        since: Option<SystemTime>,
        next: Option<String>,
    ) -> BoxFuture<'a, Result<LogPage, CloudError>> {
        Box::pin(async move { Ok(self.read_page(service, member, since, next).await?) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_cluster_service_and_member() {
        assert_eq!(log_group("prod"), "firecamp-prod");
        assert_eq!(log_stream("pg", &MemberName::new("pg", 2)), "pg/pg-2");
        let key = firecamp_core::cloud::log_key(Some("team-a"), "pg");
        assert_eq!(log_stream(&key, &MemberName::new("pg", 2)), "team-a/pg/pg-2");
    }

    #[test]
    fn follow_polls_fast_while_lines_arrive_and_backs_off_to_a_bound_when_quiet() {
        let mut i = MIN_FOLLOW_INTERVAL;
        let mut seen = vec![];
        for _ in 0..6 {
            i = next_follow_interval(i, 0);
            seen.push(i.as_secs());
        }
        assert_eq!(seen, vec![2, 4, 8, 10, 10, 10]);
        assert_eq!(next_follow_interval(MAX_FOLLOW_INTERVAL, 3), MIN_FOLLOW_INTERVAL);
    }
}
