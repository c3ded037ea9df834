//! Leader election on a coordination.k8s.io Lease with optimistic concurrency: only the holder
//! reconciles. A replica that cannot renew in time stops leading (the process exits and its
//! Deployment restarts it), so two replicas never act at once for longer than one renewal.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};

pub const LEASE_NAME: &str = "firecamp-manage";
pub const LEASE_SECONDS: i32 = 15;

pub struct Elector {
    api: Api<Lease>,
    identity: String,
}

impl Elector {
    pub fn new(client: Client, namespace: &str, identity: &str) -> Self {
        Elector { api: Api::namespaced(client, namespace), identity: identity.into() }
    }

    /// Tries once to take or renew the lease; `Ok(true)` when this replica holds it.
    pub async fn try_acquire(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let mine = |transitions: i32| LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(LEASE_SECONDS),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..Default::default()
        };
        let Some(mut lease) = self.api.get_opt(LEASE_NAME).await? else {
            let lease = Lease { metadata: ObjectMeta { name: Some(LEASE_NAME.into()), ..Default::default() }, spec: Some(mine(0)) };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let held_by_me = spec.holder_identity.as_deref() == Some(self.identity.as_str());
        let expired = spec.renew_time.as_ref().is_none_or(|t| {
            let ttl = spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS) as i64;
            t.0.as_second() + ttl < now.as_second()
        });
        if !held_by_me && !expired {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!held_by_me);
        let mut new = mine(transitions);
        if held_by_me {
            new.acquire_time = spec.acquire_time;
        }
        lease.spec = Some(new);
        // resourceVersion is kept from the read: a concurrent writer makes this a 409.
        match self.api.replace(LEASE_NAME, &PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the lease up if this replica holds it (on shutdown): it expires at once, so another
    /// replica takes it on its next try. A lease held by another is left alone.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(LEASE_NAME).await? else { return Ok(()) };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        lease.spec = Some(spec);
        match self.api.replace(LEASE_NAME, &PostParams::default(), &lease).await {
            Ok(_) => Ok(()),
            // Someone wrote it in between: it is no longer ours to release.
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Waits until this replica leads.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "leader election"),
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    /// Renews until a renewal fails to land within the lease; returns when leadership is lost.
    pub async fn hold(&self) {
        let period = Duration::from_secs((LEASE_SECONDS / 3) as u64);
        let mut last_ok = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(period).await;
            match self.try_acquire().await {
                Ok(true) => last_ok = tokio::time::Instant::now(),
                Ok(false) => return,
                Err(e) => tracing::warn!(error = %e, "renewing the lease"),
            }
            if last_ok.elapsed() > Duration::from_secs((LEASE_SECONDS - 2) as u64) {
                return;
            }
        }
    }
}
