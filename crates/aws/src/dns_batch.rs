//! The Route53 change batch of one service operation, built purely from FireCamp's changes.

use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
use firecamp_core::cloud::RecordChange;

use crate::error::AwsError;

/// Route53 takes at most 1 000 ResourceRecord elements per batch, and an UPSERT counts twice.
pub const MAX_BATCH_ELEMENTS: usize = 1000;

/// Default TTL of member records: short, so clients follow a moved member within a minute.
pub const DEFAULT_TTL: u32 = 60;

/// Elements the changes count for in Route53's batch limit.
pub fn batch_elements(changes: &[RecordChange]) -> usize {
    changes.iter().map(|c| if matches!(c, RecordChange::Upsert(_)) { 2 } else { 1 }).sum()
}

/// One `ChangeResourceRecordSets` batch with every change, in the given order. Refuses an empty
/// batch (nothing to send) and one over Route53's limit (FireCamp never splits a service
/// operation: 99 members make at most 198 elements).
pub fn change_batch(changes: &[RecordChange], comment: &str) -> Result<ChangeBatch, AwsError> {
    if changes.is_empty() {
        return Err(AwsError::Invalid("an empty change batch".into()));
    }
    let n = batch_elements(changes);
    if n > MAX_BATCH_ELEMENTS {
        return Err(AwsError::Invalid(format!("{n} record elements exceed Route53's {MAX_BATCH_ELEMENTS} per batch")));
    }
    let built = |e: aws_sdk_route53::error::BuildError| AwsError::Invalid(format!("change batch: {e}"));
    // A name's addresses are one record set: its changes (adjacent or not) become one Change
    // with every address, in the order the name first appears (Route53 refuses a batch that
    // changes one record set twice).
    let mut sets: Vec<(ChangeAction, &str, u32, Vec<ResourceRecord>)> = Vec::new();
    for c in changes {
        let (action, rec) = match c {
            RecordChange::Upsert(r) => (ChangeAction::Upsert, r),
            RecordChange::Delete(r) => (ChangeAction::Delete, r),
        };
        let value = ResourceRecord::builder().value(rec.ip.to_string()).build().map_err(built)?;
        match sets.iter_mut().find(|(a, n, t, _)| *a == action && fqdn(n) == fqdn(&rec.name) && *t == rec.ttl) {
            Some(set) => set.3.push(value),
            None => sets.push((action, &rec.name, rec.ttl, vec![value])),
        }
    }
    let mut b = ChangeBatch::builder().comment(comment);
    for (action, name, ttl, values) in sets {
        let set =
            ResourceRecordSet::builder().name(fqdn(name)).r#type(RrType::A).ttl(i64::from(ttl)).set_resource_records(Some(values)).build().map_err(built)?;
        b = b.changes(Change::builder().action(action).resource_record_set(set).build().map_err(built)?);
    }
    b.build().map_err(built)
}

/// Route53's absolute form of a name: with the trailing dot.
pub fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use firecamp_core::cloud::DnsRecord;

    fn rec(name: &str, ip: [u8; 4]) -> DnsRecord {
        DnsRecord { name: name.into(), ip: ip.into(), ttl: 60 }
    }

    /// The batch as (action, name, type, ttl, values): what Route53 will be sent.
    fn summary(b: &ChangeBatch) -> Vec<String> {
        b.changes()
            .iter()
            .map(|c| {
                let s = c.resource_record_set().unwrap();
                let values: Vec<_> = s.resource_records().iter().map(|r| r.value()).collect();
                format!("{} {} {} {} {}", c.action().as_str(), s.name(), s.r#type().as_str(), s.ttl().unwrap(), values.join(","))
            })
            .collect()
    }

    #[test]
    fn one_batch_carries_every_change_of_an_operation() {
        let changes = vec![
            RecordChange::Upsert(rec("pg-0.prod-firecamp.com", [10, 0, 1, 10])),
            RecordChange::Upsert(rec("pg-1.prod-firecamp.com.", [10, 0, 2, 11])),
            RecordChange::Delete(rec("pg-2.prod-firecamp.com", [10, 0, 3, 12])),
        ];
        let b = change_batch(&changes, "firecamp pg").unwrap();
        assert_eq!(b.comment(), Some("firecamp pg"));
        assert_eq!(
            summary(&b),
            vec![
                "UPSERT pg-0.prod-firecamp.com. A 60 10.0.1.10",
                "UPSERT pg-1.prod-firecamp.com. A 60 10.0.2.11",
                "DELETE pg-2.prod-firecamp.com. A 60 10.0.3.12",
            ]
        );
    }

    #[test]
    fn the_largest_service_fits_one_batch_and_oversize_or_empty_batches_are_refused() {
        let up = |i: u32| RecordChange::Upsert(rec(&format!("s-{i}.c-firecamp.com"), [10, 0, 0, (i % 250) as u8]));
        let max_service: Vec<_> = (0..99).map(up).collect();
        assert_eq!(batch_elements(&max_service), 198);
        assert_eq!(change_batch(&max_service, "").unwrap().changes().len(), 99);
        let too_many: Vec<_> = (0..501).map(up).collect();
        assert!(matches!(change_batch(&too_many, ""), Err(AwsError::Invalid(_))));
        assert!(matches!(change_batch(&[], ""), Err(AwsError::Invalid(_))));
    }

    #[test]
    fn a_names_addresses_are_one_change() {
        let changes = vec![
            RecordChange::Upsert(rec("pg-0.prod-firecamp.com", [10, 0, 1, 10])),
            RecordChange::Upsert(rec("replicas.pg.prod-firecamp.com", [10, 0, 2, 11])),
            RecordChange::Upsert(rec("replicas.pg.prod-firecamp.com.", [10, 0, 3, 12])),
            RecordChange::Delete(rec("replicas.pg-old.prod-firecamp.com", [10, 0, 2, 11])),
            RecordChange::Delete(rec("replicas.pg-old.prod-firecamp.com", [10, 0, 3, 12])),
        ];
        assert_eq!(
            summary(&change_batch(&changes, "").unwrap()),
            vec![
                "UPSERT pg-0.prod-firecamp.com. A 60 10.0.1.10",
                "UPSERT replicas.pg.prod-firecamp.com. A 60 10.0.2.11,10.0.3.12",
                "DELETE replicas.pg-old.prod-firecamp.com. A 60 10.0.2.11,10.0.3.12",
            ]
        );
    }
}
