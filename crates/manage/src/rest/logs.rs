//! `GET /v1/services/{name}/logs`: the members' lines from their CloudWatch streams
//! (`<namespace>/<service>/<member>`: only the caller's namespace's), so a member's log is whole wherever its pod ran. `?member=` picks one,
//! `?since=` a start (`10m`, RFC 3339), `?follow=true` keeps the response open.

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
    let q = q.map(|Query(q)| q).map_err(|e| fail(ErrorCode::Invalid, format!("bad query parameters: {}", e.body_text())))?;
    let ns = st.namespace(&super::services::Params { namespace: q.namespace.clone(), ..Default::default() })?;
    st.auth.authorize(&headers, &Access { verb: "get", namespace: &ns, name: Some(&name) }).await?;
    let Some(logs) = st.cloud.logs.clone() else {
        return Err(Fail(
            ApiError::new(ErrorCode::Unavailable, "member logs need CloudWatch Logs: start the manage service with --aws (see docs/aws.md)"),
            Some(StatusCode::NOT_IMPLEMENTED),
        ));
    };
    let since = match q.since.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(firecamp_api::since::parse_since(s, SystemTime::now()).map_err(|e| invalid_field("since", e))?),
        None => None,
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
            read_all(logs.as_ref(), &key, m, since, None).await.map_err(|e| fail(ErrorCode::Unavailable, format!("reading {m}'s log stream: {e}")))?;
        backlog.extend(events.into_iter().map(|e| (e.time, tagged(prefix, m, &e))));
        cursors.push((m.clone(), next));
    }
    backlog.sort();
    let head: String = backlog.into_iter().map(|(_, l)| l).collect();
    let headers = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    if !q.follow {
        return Ok((headers, head).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(256);
    let _ = tx.send(Ok(Bytes::from(head))).await;
    for (m, mut next) in cursors {
        let (tx, logs, key) = (tx.clone(), logs.clone(), key.clone());
        tokio::spawn(async move {
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
