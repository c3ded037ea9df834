//! Before a point-in-time restore reads a running PostgreSQL source's archive, the source's
//! latest transactions are archived, as the local runtime does: one more commit (so recovery
//! finds one after any target up to now) and a WAL switch on the primary, then a wait until its
//! archiver has the file. Over SQL as the superuser (TLS verified against the service's CA),
//! like the switchover; a source that is deleted, stopped, not ACTIVE or of another incarnation
//! is left alone (its archive is whatever it holds).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use firecamp_catalog::layout::KubernetesLayout;
use firecamp_core::{ClusterConfig, EngineKind};
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client, ResourceExt};

use super::roles::Engines;
use crate::crd::FireCampService;

/// How long the source's archiver may take to archive the switched file.
const ARCHIVED_WITHIN: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(200);

/// Archives the latest WAL of `source` (incarnation `uid`) when it runs; `Err` says why it
/// could not (the restore is then refused: its target may not be reachable).
pub async fn archive_latest(client: &Client, cluster: &ClusterConfig, source: &FireCampService, uid: &str) -> Result<(), String> {
    let running = source.status.as_ref().is_some_and(|s| s.phase == firecamp_api::Phase::Active) && !source.spec.0.stopped;
    if source.metadata.uid.as_deref() != Some(uid) || !running || source.spec.0.engine != EngineKind::Postgresql {
        return Ok(());
    }
    let name = source.name_any();
    let ns = source.namespace().unwrap_or_default();
    let plan = firecamp_catalog::plan(&name, &source.spec.0, cluster, &KubernetesLayout::default(), &BTreeMap::new()).map_err(|e| e.to_string())?;
    let pods = crate::reconcile::service_pods(&Api::<Pod>::namespaced(client.clone(), &ns), &name).await.map_err(|e| e.to_string())?;
    let engines = Engines::read(client, &plan, &ns, &pods).await.map_err(|e| e.to_string())?;
    let primary = source
        .status
        .as_ref()
        .and_then(|s| s.primary.clone())
        .or_else(|| plan.members.iter().find(|m| m.role == firecamp_catalog::Role::Primary).map(|m| m.member.name.to_string()));
    let primary = primary.ok_or_else(|| format!("{name} has no primary"))?;
    let fail = |e: tokio_postgres::Error| format!("archiving the latest WAL of {name} on {primary}: {e}");
    let c = engines.pg(&primary).await.map_err(|e| format!("archiving the latest WAL of {name}: {e}"))?;
    c.execute("SELECT txid_current()", &[]).await.map_err(fail)?;
    let file: String = c.query_one("SELECT pg_walfile_name(pg_switch_wal())", &[]).await.map_err(fail)?.get(0);
    let deadline = Instant::now() + ARCHIVED_WITHIN;
    loop {
        let last: String = c.query_one("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver", &[]).await.map_err(fail)?.get(0);
        if last >= file {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("{name} did not archive {file} within {} s (last archived: {last:?})", ARCHIVED_WITHIN.as_secs()));
        }
        tokio::time::sleep(POLL).await;
    }
}
