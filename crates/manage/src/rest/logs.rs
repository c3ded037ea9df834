//! `GET /v1/services/{name}/logs`: the members' lines from their CloudWatch streams
//! (`<namespace>/<service>/<member>`: only the caller's namespace's), so a member's log is whole wherever its pod ran. `?member=` picks one,
//! `?since=` a start (`10m`, RFC 3339; the last hour when absent), `?follow=true` keeps the
//! response open. A response carries at most 8 MiB of backlog (the newest lines), and one
//! replica keeps at most 32 followed responses open (429 beyond).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use firecamp_api::{ApiError, ErrorCode};
use firecamp_core::MemberName;
use firecamp_core::cloud::{LogEvent, MemberLogs, log_key};
use serde::Deserialize;

use super::AppState;
use super::auth::Access;
use super::error::{Fail, fail, invalid_field, kube_call};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogsQuery {
    pub namespace: Option<String>,
    pub member: Option<String>,
    pub since: Option<String>,
    #[serde(default)]
    pub follow: bool,
}

/// Longest wait between two reads of a followed stream (CloudWatch Logs has no watch).
const FOLLOW_MAX: Duration = Duration::from_secs(10);

/// Without `since`, the last hour: a service's whole history is rarely what is asked for, and
/// each page read is a CloudWatch call.
pub const DEFAULT_SINCE: Duration = Duration::from_secs(3600);

/// Most bytes of backlog one response carries: the newest are kept, and a first line says how
/// many earlier ones were left out.
pub const MAX_BACKLOG_BYTES: usize = 8 << 20;

/// Most followed responses open at once on one replica: each polls CloudWatch per member.
pub const MAX_FOLLOWERS: usize = 32;

static FOLLOWERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One open follower; the slot frees when the last of its readers ends.
pub struct FollowerSlot(());

impl FollowerSlot {
    pub fn take() -> Option<FollowerSlot> {
        use std::sync::atomic::Ordering::SeqCst;
        FOLLOWERS.fetch_update(SeqCst, SeqCst, |n| (n < MAX_FOLLOWERS).then_some(n + 1)).ok().map(|_| FollowerSlot(()))
    }
}

impl Drop for FollowerSlot {
    fn drop(&mut self) {
        FOLLOWERS.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The newest lines of `lines` (oldest first) that fit in `cap` bytes, after a line saying how
/// many were left out, if any were.
pub fn newest_within(lines: Vec<String>, cap: usize) -> String {
    let mut kept = 0;
    let mut bytes = 0;
    for l in lines.iter().rev() {
        if bytes + l.len() > cap {
            break;
        }
        bytes += l.len();
        kept += 1;
    }
    let dropped = lines.len() - kept;
    let mut out = String::with_capacity(bytes + 100);
    if dropped > 0 {
        out.push_str(&format!("[firecamp] {dropped} earlier lines left out (the response keeps the newest {cap} bytes): ask with a later since\n"));
    }
    for l in &lines[dropped..] {
        out.push_str(l);
    }
    out
}

/// A line as the API prints it: RFC 3339 time, then the message.
pub fn line(e: &LogEvent) -> String {
    format!("{} {}\n", humantime::format_rfc3339_millis(e.time), e.message.trim_end_matches('\n'))
}

pub async fn logs(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    q: Result<Query<LogsQuery>, QueryRejection>,
) -> Result<Response, Fail> {
    let q = q.map(|Query(q)| q).map_err(super::services::bad_query)?;
    let ns = st.namespace(&super::services::Params { namespace: q.namespace.clone(), ..Default::default() })?;
    super::services::service_name(&name)?;
    st.auth.authorize(&headers, &Access { verb: "get", namespace: &ns, name: Some(&name) }).await?;
    let Some(logs) = st.cloud.logs.clone() else {
        return Err(Fail(
            ApiError::new(ErrorCode::Unavailable, "member logs need CloudWatch Logs: start the manage service with --aws (see docs/aws.md)"),
            Some(StatusCode::NOT_IMPLEMENTED),
        ));
    };
    let since = match q.since.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => firecamp_api::since::parse_since(s, SystemTime::now()).map_err(|e| invalid_field("since", e))?,
        None => SystemTime::now() - DEFAULT_SINCE,
    };
    let slot = if q.follow {
        Some(FollowerSlot::take().ok_or_else(|| {
            Fail(
                ApiError::new(ErrorCode::Unavailable, format!("{MAX_FOLLOWERS} followed logs are open on this replica already; try again later")),
                Some(StatusCode::TOO_MANY_REQUESTS),
            )
        })?)
    } else {
        None
    };
    let svc = kube_call(&format!("reading service {name:?}"), st.api(&ns).get_opt(&name))
        .await?
        .ok_or_else(|| fail(ErrorCode::NotFound, format!("service {name:?} does not exist in namespace {ns:?}")))?;
    let all: Vec<MemberName> = (0..svc.spec.0.replicas).map(|i| MemberName::new(&name, i)).collect();
    let members = match q.member.as_deref().filter(|m| !m.is_empty()) {
        Some(m) => {
            let found = all.iter().find(|x| x.as_str() == m).cloned();
            let names: Vec<&str> = all.iter().map(|m| m.as_str()).collect();
            vec![found.ok_or_else(|| invalid_field("member", format!("{m:?} is not a member of {name:?}; members: {}", names.join(", "))))?]
        }
        None => all,
    };
    // The namespace the caller was authorized for keys the streams: a service of the same
    // name in another namespace has streams of its own.
    let key = log_key(st.cluster.namespaced_names.then_some(ns.as_str()), &name);
    let prefix = members.len() > 1;
    let mut backlog = Vec::new();
    let mut cursors = Vec::new();
    for m in &members {
        let (events, next) =
            read_all(logs.as_ref(), &key, m, Some(since), None).await.map_err(|e| fail(ErrorCode::Unavailable, format!("reading {m}'s log stream: {e}")))?;
        backlog.extend(events.into_iter().map(|e| (e.time, tagged(prefix, m, &e))));
        cursors.push((m.clone(), next));
    }
    backlog.sort();
    let head = newest_within(backlog.into_iter().map(|(_, l)| l).collect(), MAX_BACKLOG_BYTES);
    let headers = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    if !q.follow {
        return Ok((headers, head).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(256);
    let _ = tx.send(Ok(Bytes::from(head))).await;
    let slot = Arc::new(slot);
    for (m, mut next) in cursors {
        let (tx, logs, key, slot) = (tx.clone(), logs.clone(), key.clone(), slot.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let mut wait = Duration::from_secs(1);
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = tx.closed() => return,
                }
                match read_all(logs.as_ref(), &key, &m, None, next.clone()).await {
                    Ok((events, n)) => {
                        // Back off while the stream is quiet, come back quickly when it talks.
                        wait = if events.is_empty() { (wait * 2).min(FOLLOW_MAX) } else { Duration::from_secs(1) };
                        next = n;
                        for e in events {
                            if tx.send(Ok(Bytes::from(tagged(prefix, &m, &e)))).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Ok(Bytes::from(format!("[{m}] reading the log stream failed: {e}\n")))).await;
                        return;
                    }
                }
            }
        });
    }
    drop(tx);
    Ok((headers, Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx))).into_response())
}

fn tagged(prefix: bool, m: &MemberName, e: &LogEvent) -> String {
    if prefix { format!("[{m}] {}", line(e)) } else { line(e) }
}

/// Every page from `since` (or the cursor) to the stream's end; the cursor to follow from.
async fn read_all(
    logs: &dyn MemberLogs,
    service: &str,
    member: &MemberName,
    since: Option<SystemTime>,
    mut next: Option<String>,
) -> Result<(Vec<LogEvent>, Option<String>), firecamp_core::cloud::CloudError> {
    let mut out = Vec::new();
    let mut first = true;
    loop {
        let page = logs.read(service, member, if first { since } else { None }, next.clone()).await?;
        first = false;
        let done = page.events.is_empty() || page.next == next;
        out.extend(page.events);
        if page.next.is_some() {
            next = page.next;
        }
        if done {
            return Ok((out, next));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_keeps_the_newest_lines_within_the_cap_and_says_what_it_left_out() {
        let lines: Vec<String> = (0..10).map(|i| format!("line {i}\n")).collect();
        assert_eq!(newest_within(lines.clone(), 1000), lines.concat());
        let out = newest_within(lines, 21);
        assert_eq!(out, "[firecamp] 7 earlier lines left out (the response keeps the newest 21 bytes): ask with a later since\nline 7\nline 8\nline 9\n");
    }

    #[test]
    fn followers_are_capped_and_their_slots_come_back() {
        let slots: Vec<FollowerSlot> = std::iter::from_fn(FollowerSlot::take).take(MAX_FOLLOWERS + 5).collect();
        assert_eq!(slots.len(), MAX_FOLLOWERS);
        assert!(FollowerSlot::take().is_none());
        drop(slots);
        assert!(FollowerSlot::take().is_some());
    }
}
