//! Replacing a service's certificates: new member certificates from the same CA, or a new CA in
//! three stages so that no member and no client holding the published bundle ever meets a
//! certificate it does not trust — `add` (the new CA trusted next to the old, which still signs),
//! `switch` (the new CA signs every member's certificate; both still trusted), `drop` (only the
//! new CA trusted). Each stage is applied to the bundle once (`ROTATED_BY` names the operation),
//! then the members restart onto it; the caller runs the restarts.

use std::collections::BTreeMap;

use crate::bundle::CA_VALIDITY as CA_VALIDITY_FOR_ROTATION;
use crate::bundle::{Bundle, CA_CERT, CA_KEY, MemberNames, NEXT_CA_CERT, NEXT_CA_KEY, ROTATED_BY, pem_certs, renew};
use crate::{OffsetDateTime, PkiError};

/// What a rotation replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// Every member's certificate and key, from the CA that signs now.
    Members,
    /// A new CA made and trusted; nothing else changes.
    AddCa,
    /// The new CA signs every member's new certificate; the old one stays trusted.
    SwitchCa,
    /// Only the CA that signs stays trusted.
    DropCa,
}

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// The stages run add → switch → drop; this one cannot run now.
    #[error("{0}")]
    Order(String),
    #[error(transparent)]
    Pki(#[from] PkiError),
}

/// Whether `rotation` can run on the bundle `existing` now; the error says which stage is due.
pub fn check(existing: &BTreeMap<String, String>, rotation: Rotation) -> Result<(), String> {
    let pending = existing.contains_key(NEXT_CA_CERT);
    let trusted = existing.get(CA_CERT).map(|b| pem_certs(b).len()).unwrap_or(0);
    if trusted == 0 || !existing.contains_key(CA_KEY) {
        return Err("the service has no CA yet: its certificates are made when it is created".into());
    }
    match rotation {
        Rotation::Members => Ok(()),
        Rotation::AddCa if pending => Err("a new CA is already trusted and waits to sign: run the `switch` stage next".into()),
        Rotation::AddCa if trusted > 1 => Err("the old CA is still trusted: run the `drop` stage first".into()),
        Rotation::SwitchCa if !pending => Err("there is no new CA to switch to: run the `add` stage first".into()),
        Rotation::DropCa if pending => Err("the new CA does not sign yet: run the `switch` stage first".into()),
        Rotation::DropCa if trusted == 1 => Err("only one CA is trusted: there is nothing to drop (a CA rotation starts with the `add` stage)".into()),
        _ => Ok(()),
    }
}

/// The bundle after `rotation`, or `None` when the operation `marker` already applied it.
/// `ca_name` names a new CA (a stamp of `now` is added, so the old and the new CA never share a
/// subject).
pub fn rotate(
    existing: &BTreeMap<String, String>,
    rotation: Rotation,
    ca_name: &str,
    members: &[MemberNames],
    now: OffsetDateTime,
    marker: &str,
    what: &str,
) -> Result<Option<Bundle>, RotateError> {
    if existing.get(ROTATED_BY).map(String::as_str) == Some(marker) {
        return Ok(None);
    }
    check(existing, rotation).map_err(RotateError::Order)?;
    let mut data = existing.clone();
    let trusted = pem_certs(&existing[CA_CERT]);
    let reissue = match rotation {
        Rotation::Members => true,
        Rotation::AddCa => {
            let stamp = format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", now.year(), u8::from(now.month()), now.day(), now.hour(), now.minute(), now.second());
            let next = crate::new_ca(&format!("{ca_name} {stamp}"), CA_VALIDITY_FOR_ROTATION, now)?;
            data.insert(CA_CERT.into(), trusted.concat() + &next.cert);
            data.insert(NEXT_CA_CERT.into(), next.cert);
            data.insert(NEXT_CA_KEY.into(), next.key);
            false
        }
        Rotation::SwitchCa => {
            let (cert, key) = (data.remove(NEXT_CA_CERT).unwrap_or_default(), data.remove(NEXT_CA_KEY).unwrap_or_default());
            crate::check_ca(&crate::CaPem { cert: cert.clone(), key: key.clone() }, &format!("the new CA in {what}"))?;
            let same = |c: &String| c.trim() == cert.trim();
            let others: String = trusted.iter().filter(|c| !same(c)).cloned().collect();
            data.insert(CA_CERT.into(), format!("{cert}{others}"));
            data.insert(CA_KEY.into(), key);
            true
        }
        Rotation::DropCa => {
            data.insert(CA_CERT.into(), trusted[0].clone());
            false
        }
    };
    if reissue {
        for m in members {
            data.remove(&crate::bundle::cert_key(&m.member));
            data.remove(&crate::bundle::key_key(&m.member));
        }
    }
    data.insert(ROTATED_BY.into(), marker.to_string());
    let mut b = renew(&data, ca_name, members, now, what)?;
    b.new_ca = rotation == Rotation::AddCa;
    Ok(Some(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{cert_key, key_key};

    fn members() -> Vec<MemberNames> {
        (0..2).map(|i| MemberNames { member: format!("pg-{i}"), names: vec![format!("pg-{i}.db.svc")], ips: vec![] }).collect()
    }
    fn issuer_of(cert: &str) -> String {
        let (_, pem) = x509_parser::pem::parse_x509_pem(cert.as_bytes()).unwrap();
        pem.parse_x509().unwrap().issuer().to_string()
    }
    fn subject_of(cert: &str) -> String {
        let (_, pem) = x509_parser::pem::parse_x509_pem(cert.as_bytes()).unwrap();
        pem.parse_x509().unwrap().subject().to_string()
    }

    #[test]
    fn member_rotation_reissues_every_certificate_from_the_same_ca_once() {
        let now = OffsetDateTime::now_utc();
        let b0 = renew(&BTreeMap::new(), "FireCamp CA db/pg", &members(), now, "t").unwrap().data;
        let b1 = rotate(&b0, Rotation::Members, "FireCamp CA db/pg", &members(), now, "op-1", "t").unwrap().unwrap();
        assert_eq!(b1.issued, ["pg-0", "pg-1"]);
        assert_eq!(b1.data[CA_CERT], b0[CA_CERT]);
        assert_eq!(b1.data[CA_KEY], b0[CA_KEY]);
        assert_ne!(b1.data[&cert_key("pg-0")], b0[&cert_key("pg-0")]);
        assert_ne!(b1.data[&key_key("pg-1")], b0[&key_key("pg-1")]);
        assert!(rotate(&b1.data, Rotation::Members, "x", &members(), now, "op-1", "t").unwrap().is_none(), "applied once");
        // A later renew keeps it all.
        assert_eq!(renew(&b1.data, "x", &members(), now, "t").unwrap().data, b1.data);
    }

    #[test]
    fn a_ca_rotation_trusts_both_while_certificates_move_then_only_the_new() {
        let now = OffsetDateTime::now_utc();
        let name = "FireCamp CA db/pg";
        let b0 = renew(&BTreeMap::new(), name, &members(), now, "t").unwrap().data;
        let old = b0[CA_CERT].clone();
        for stage in [Rotation::SwitchCa, Rotation::DropCa] {
            assert!(matches!(rotate(&b0, stage, name, &members(), now, "op-x", "t"), Err(RotateError::Order(_))), "{stage:?} before add");
        }
        let added = rotate(&b0, Rotation::AddCa, name, &members(), now, "op-1", "t").unwrap().unwrap().data;
        let trusted = pem_certs(&added[CA_CERT]);
        assert_eq!(trusted.len(), 2);
        assert_eq!(trusted[0].trim(), old.trim(), "the old CA still signs");
        assert_ne!(subject_of(&trusted[1]), subject_of(&old), "the new CA has its own name");
        assert_eq!(added[&cert_key("pg-0")], b0[&cert_key("pg-0")], "certificates unchanged");
        assert_eq!(renew(&added, name, &members(), now, "t").unwrap().data, added, "a reconcile keeps the stage");
        assert!(matches!(rotate(&added, Rotation::AddCa, name, &members(), now, "op-2", "t"), Err(RotateError::Order(_))));
        assert!(matches!(rotate(&added, Rotation::DropCa, name, &members(), now, "op-2", "t"), Err(RotateError::Order(_))));

        let switched = rotate(&added, Rotation::SwitchCa, name, &members(), now, "op-2", "t").unwrap().unwrap().data;
        let trusted = pem_certs(&switched[CA_CERT]);
        assert_eq!(trusted.len(), 2);
        assert_eq!(trusted[0].trim(), added[NEXT_CA_CERT].trim(), "the new CA signs");
        assert_eq!(trusted[1].trim(), old.trim(), "the old one is still trusted");
        assert!(!switched.contains_key(NEXT_CA_CERT) && !switched.contains_key(NEXT_CA_KEY));
        for m in ["pg-0", "pg-1"] {
            assert_eq!(issuer_of(&switched[&cert_key(m)]), subject_of(&trusted[0]), "{m}");
        }
        assert_eq!(renew(&switched, name, &members(), now, "t").unwrap().data, switched);

        let dropped = rotate(&switched, Rotation::DropCa, name, &members(), now, "op-3", "t").unwrap().unwrap().data;
        assert_eq!(pem_certs(&dropped[CA_CERT]), vec![trusted[0].clone()]);
        assert_eq!(dropped[&cert_key("pg-0")], switched[&cert_key("pg-0")]);
        assert!(matches!(rotate(&dropped, Rotation::DropCa, name, &members(), now, "op-4", "t"), Err(RotateError::Order(_))));
        assert!(rotate(&dropped, Rotation::AddCa, name, &members(), now, "op-4", "t").unwrap().is_some(), "a next rotation may start");
    }

    #[test]
    fn pem_bundles_split_into_their_certificates() {
        let now = OffsetDateTime::now_utc();
        let (a, b) = (crate::new_ca("a", CA_VALIDITY_FOR_ROTATION, now).unwrap(), crate::new_ca("b", CA_VALIDITY_FOR_ROTATION, now).unwrap());
        assert_eq!(pem_certs(&format!("{}{}", a.cert, b.cert)).len(), 2);
        assert_eq!(pem_certs(&format!("junk\n{}\n\n{}", a.cert.trim(), b.cert)), vec![a.cert.clone(), b.cert.clone()]);
        assert!(pem_certs("").is_empty());
    }
}
