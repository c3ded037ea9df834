//! Route53: the cluster's private hosted zone `<cluster>-firecamp.com` (created at install time,
//! `create_zone`; only found by the manage service, `zone_id`) and its member A records.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_route53::types::{HostedZoneConfig, RrType, Vpc, VpcRegion};
use firecamp_core::cloud::{BoxFuture, CloudError, DnsRecord, MemberAddress, MemberDns, RecordChange, normalize_name, record_changes};

use crate::call::Caller;
use crate::config::Clients;
use crate::dns_batch::{DEFAULT_TTL, change_batch, fqdn};
use crate::error::{AwsError, CallError};
use crate::retry::Verdict;
use firecamp_core::member::{PRIMARY_ENDPOINT, REPLICAS_ENDPOINT};

/// Member DNS in the cluster's private hosted zone, associated with the cluster's VPC.
pub struct Route53Dns {
    client: aws_sdk_route53::Client,
    calls: Arc<Caller>,
    region: String,
    cluster: String,
    domain: String,
    vpc_id: String,
    ttl: u32,
    zone_id: tokio::sync::Mutex<Option<String>>,
}

impl Route53Dns {
    pub fn new(clients: &Clients, cluster: &str, vpc_id: &str) -> Self {
        Route53Dns {
            client: clients.route53.clone(),
            calls: clients.route53_calls.clone(),
            region: clients.region.clone(),
            cluster: cluster.into(),
            domain: format!("{cluster}{}", firecamp_core::names::DOMAIN_SUFFIX),
            vpc_id: vpc_id.into(),
            ttl: DEFAULT_TTL,
            zone_id: tokio::sync::Mutex::new(None),
        }
    }

    /// TTL of the records this writes (default 60 s; JVM clients must cache no longer).
    pub fn with_ttl(mut self, ttl: u32) -> Self {
        self.ttl = ttl;
        self
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The id of the cluster's zone, found by name (and VPC); remembered once found. The
    /// manage service never creates it (its IAM policy has no route53:CreateHostedZone): a
    /// missing zone is [`AwsError::ZoneMissing`], naming the install command that makes it.
    pub async fn zone_id(&self) -> Result<String, AwsError> {
        let mut cached = self.zone_id.lock().await;
        if let Some(id) = cached.as_ref() {
            return Ok(id.clone());
        }
        let id = self.find_zone().await?.ok_or_else(|| AwsError::ZoneMissing {
            domain: self.domain.clone(),
            cluster: self.cluster.clone(),
            vpc_id: self.vpc_id.clone(),
        })?;
        *cached = Some(id.clone());
        Ok(id)
    }

    /// Install time (`firecamp install aws-zone`, an administrator's credentials): the id of the
    /// cluster's private zone associated with the VPC, created if there is none, and whether
    /// this call created it. Idempotent: run again, it finds the zone and creates nothing.
    pub async fn create_zone(&self) -> Result<(String, bool), AwsError> {
        // One caller reference for every attempt of this creation: AWS then refuses a second
        // zone for a retried request whose first reply was lost. And before each new attempt
        // we look again, which also covers emulators that ignore the reference.
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        let caller_ref = format!("firecamp-{}-{}-{nanos}", self.domain, self.vpc_id);
        let mut attempt = 1;
        let mut created = false;
        let id = loop {
            if let Some(id) = self.find_zone().await? {
                break id;
            }
            let res = self
                .calls
                .once("CreateHostedZone", || {
                    self.client
                        .create_hosted_zone()
                        .name(&self.domain)
                        .caller_reference(&caller_ref)
                        .vpc(Vpc::builder().vpc_id(&self.vpc_id).vpc_region(VpcRegion::from(self.region.as_str())).build())
                        .hosted_zone_config(HostedZoneConfig::builder().private_zone(true).comment("FireCamp member DNS").build())
                        .send()
                })
                .await;
            match res {
                Ok(out) => match out.hosted_zone() {
                    Some(z) => {
                        created = true;
                        break z.id().to_string();
                    }
                    None => {
                        return Err(AwsError::Unexpected("CreateHostedZone without a hosted zone".into()));
                    }
                },
                // Someone (or our lost first attempt) created it meanwhile: look again.
                Err(e) if e.is(&["HostedZoneAlreadyExists", "ConflictingDomainExists"]) => {}
                Err(e) => retry_or_fail(&self.calls, e, attempt).await?,
            }
            attempt += 1;
        };
        *self.zone_id.lock().await = Some(id.clone());
        Ok((id, created))
    }

    /// The private zone of our name associated with our VPC, if any. Filtered by name: never
    /// lists every zone of the account.
    async fn find_zone(&self) -> Result<Option<String>, AwsError> {
        let want = fqdn(&self.domain);
        let out = self.calls.call("ListHostedZonesByName", || self.client.list_hosted_zones_by_name().dns_name(&self.domain).max_items(10).send()).await?;
        let mut candidates: Vec<String> = out
            .hosted_zones()
            .iter()
            .filter(|z| z.name().eq_ignore_ascii_case(&want) && z.config().is_some_and(|c| c.private_zone()))
            .map(|z| z.id().to_string())
            .collect();
        candidates.sort();
        for id in candidates {
            let z = self.calls.call("GetHostedZone", || self.client.get_hosted_zone().id(&id).send()).await?;
            if z.vpcs().iter().any(|v| v.vpc_id() == Some(self.vpc_id.as_str())) {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// A records of `service`'s members in `domain` (`<service>-<i>.<domain>`; `domain` is the
    /// zone or a namespace's subdomain of it), and its primary endpoint's. Route53 sorts names
    /// with their labels reversed, so the members' records are one run starting at `<service>-0`.
    pub async fn list_service_records(&self, service: &str, domain: &str) -> Result<Vec<DnsRecord>, AwsError> {
        let domain = normalize_name(domain);
        if domain != self.domain && !domain.ends_with(&format!(".{}", self.domain)) {
            return Err(AwsError::Invalid(format!("{domain} is not inside the cluster's zone {}", self.domain)));
        }
        let zone = self.zone_id().await?;
        let mut start = fqdn(&format!("{service}-0.{domain}"));
        let mut out = Vec::new();
        loop {
            let page = self
                .calls
                .call("ListResourceRecordSets", || {
                    self.client.list_resource_record_sets().hosted_zone_id(&zone).start_record_name(&start).max_items(300).send()
                })
                .await?;
            let mut past_service = false;
            for s in page.resource_record_sets() {
                let name = normalize_name(s.name());
                // Only names directly under `domain`: a namespace's subdomain is another run.
                let label = name.strip_suffix(&format!(".{domain}")).unwrap_or(&name);
                // Names under a member's name (`primary.pg-0.<domain>`, the endpoint of a
                // service named `pg-0`) sort inside the run without ending it.
                let top = label.rsplit('.').next().unwrap_or(label);
                if !top.starts_with(&format!("{service}-")) {
                    past_service = true;
                    continue;
                }
                if *s.r#type() != RrType::A || top != label || !is_member_label(service, label) {
                    continue;
                }
                let Some(ip) = s.resource_records().first().and_then(|r| r.value().parse().ok()) else {
                    continue;
                };
                out.push(DnsRecord { name, ip, ttl: s.ttl().unwrap_or_default().try_into().unwrap_or(0) });
            }
            match page.next_record_name() {
                Some(next) if page.is_truncated() && !past_service => start = next.to_string(),
                _ => break,
            }
        }
        out.extend(self.endpoint_records(&zone, service, &domain).await?);
        out.sort();
        Ok(out)
    }

    /// The service's endpoint records, `primary.<service>.<domain>` and
    /// `replicas.<service>.<domain>` (a record set of several addresses), if it has them: names
    /// of its own subtree, so not in the members' run. They sort next to each other, so one read
    /// of two record sets finds both; a second read only when something sorts between them.
    async fn endpoint_records(&self, zone: &str, service: &str, domain: &str) -> Result<Vec<DnsRecord>, AwsError> {
        let names = [format!("{PRIMARY_ENDPOINT}.{service}.{domain}"), format!("{REPLICAS_ENDPOINT}.{service}.{domain}")];
        let mut out = Vec::new();
        let mut found = [false; 2];
        for (i, start) in names.iter().enumerate() {
            if found[i] {
                continue;
            }
            let page = self
                .calls
                .call("ListResourceRecordSets", || {
                    self.client.list_resource_record_sets().hosted_zone_id(zone).start_record_name(fqdn(start)).start_record_type(RrType::A).max_items(2).send()
                })
                .await?;
            for s in page.resource_record_sets().iter().filter(|s| *s.r#type() == RrType::A) {
                let name = normalize_name(s.name());
                let Some(j) = names.iter().position(|n| *n == name) else {
                    continue;
                };
                found[j] = true;
                let ttl = s.ttl().unwrap_or_default().try_into().unwrap_or(0);
                out.extend(s.resource_records().iter().filter_map(|r| Some(DnsRecord { name: name.clone(), ip: r.value().parse().ok()?, ttl })));
            }
            if !page.is_truncated() {
                break;
            }
        }
        Ok(out)
    }

    /// Sends `changes` as one batch (nothing to send, no call). Safe to retry: UPSERT is
    /// idempotent, and a DELETE is only ever planned from a fresh listing.
    pub async fn apply_changes(&self, changes: &[RecordChange]) -> Result<(), AwsError> {
        if changes.is_empty() {
            return Ok(());
        }
        let zone = self.zone_id().await?;
        let batch = change_batch(changes, &format!("firecamp: {} change(s)", changes.len()))?;
        self.calls
            .call("ChangeResourceRecordSets", || self.client.change_resource_record_sets().hosted_zone_id(&zone).change_batch(batch.clone()).send())
            .await?;
        Ok(())
    }

    /// Makes the service's records exactly `desired`, in one batch: reads, plans, applies.
    /// A failed batch is all-or-nothing in Route53, so a retry reads again and re-plans (a lost
    /// reply to an applied DELETE must not be sent twice). Returns the changes of the batch sent
    /// last: empty when nothing was to change (or a batch whose reply was lost had applied).
    pub async fn sync_service(&self, service: &str, domain: &str, desired: &[MemberAddress]) -> Result<Vec<RecordChange>, AwsError> {
        let mut attempt = 1;
        loop {
            let current = self.list_service_records(service, domain).await?;
            let changes = record_changes(&current, desired, self.ttl);
            if changes.is_empty() {
                return Ok(changes);
            }
            let zone = self.zone_id().await?;
            let batch = change_batch(&changes, &format!("firecamp: service {service}"))?;
            let res = self
                .calls
                .once("ChangeResourceRecordSets", || self.client.change_resource_record_sets().hosted_zone_id(&zone).change_batch(batch).send())
                .await;
            match res {
                Ok(_) => return Ok(changes),
                Err(e) => retry_or_fail(&self.calls, e, attempt).await?,
            }
            attempt += 1;
        }
    }
}

/// Backs off after a failed step when it is worth another try; the error otherwise.
pub(crate) async fn retry_or_fail(calls: &Caller, e: CallError, attempt: u32) -> Result<(), AwsError> {
    if e.verdict == Verdict::Retry && calls.back_off(attempt).await { Ok(()) } else { Err(CallError { attempts: attempt, ..e }.into()) }
}

/// `<service>-<digits>`: a member of exactly this service (not of `<service>-x`).
fn is_member_label(service: &str, label: &str) -> bool {
    label.strip_prefix(service).and_then(|r| r.strip_prefix('-')).is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
}

impl MemberDns for Route53Dns {
    fn ttl(&self) -> u32 {
        self.ttl
    }

    fn service_records<'a>(&'a self, service: &'a str, domain: &'a str) -> BoxFuture<'a, Result<Vec<DnsRecord>, CloudError>> {
        Box::pin(async move { Ok(self.list_service_records(service, domain).await?) })
    }

    fn apply<'a>(&'a self, changes: &'a [RecordChange]) -> BoxFuture<'a, Result<(), CloudError>> {
        Box::pin(async move { Ok(self.apply_changes(changes).await?) })
    }
}

#[cfg(test)]
mod tests {
    use super::is_member_label;

    #[test]
    fn member_labels_belong_to_exactly_one_service() {
        assert!(is_member_label("pg", "pg-0"));
        assert!(is_member_label("pg", "pg-12"));
        assert!(!is_member_label("pg", "pg-x-0"));
        assert!(!is_member_label("pg", "pg-"));
        assert!(!is_member_label("pg", "pgx-0"));
    }
}
