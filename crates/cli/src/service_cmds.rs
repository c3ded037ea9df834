//! `firecamp service list|get|members|delete|stop|start|logs`, against the manage service.

use firecamp_api::{Service, paths};
use futures::StreamExt;
use std::io::Write;

use crate::args::{Format, LogsArgs, WaitArgs};
use crate::backend::Backend;
use crate::client::Client;
use crate::error::CliError;
use crate::output;
use crate::wait::{Until, wait};

pub(crate) fn print_as<T: serde::Serialize>(format: Format, v: &T, table: impl FnOnce() -> String) -> Result<(), CliError> {
    let text = match format {
        Format::Json => output::json(v)? + "\n",
        Format::Yaml => output::yaml(v)?,
        Format::Table => table(),
    };
    print!("{text}");
    Ok(())
}

fn service_rows(items: &[Service]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|s| {
            let ready = s.status.members.iter().filter(|m| m.ready).count();
            vec![
                s.name.clone(),
                s.spec.engine.to_string(),
                s.spec.version.clone().unwrap_or_default(),
                format!("{ready}/{}", s.spec.replicas),
                s.status.phase.as_str().into(),
                s.status.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(&["NAME", "ENGINE", "VERSION", "READY", "PHASE", "MESSAGE"], &rows)
}

fn member_rows(s: &Service) -> String {
    // The metrics column only where members have metrics endpoints (docs/monitoring.md).
    let metrics = s.status.members.iter().any(|m| m.metrics.is_some());
    let rows: Vec<Vec<String>> = s
        .status
        .members
        .iter()
        .map(|m| {
            let mut row = vec![
                m.name.clone(),
                m.zone.clone(),
                m.role.as_str().into(),
                if m.ready { "yes" } else { "no" }.into(),
                m.address.clone().or_else(|| m.static_ip.clone()).unwrap_or_default(),
                m.dns_name.clone(),
                m.node.clone().unwrap_or_default(),
            ];
            if metrics {
                row.push(m.metrics.clone().unwrap_or_default());
            }
            row.push(m.message.clone().unwrap_or_default());
            row
        })
        .collect();
    let mut headers = vec!["MEMBER", "ZONE", "ROLE", "READY", "ADDRESS", "DNS NAME", "NODE"];
    if metrics {
        headers.push("METRICS");
    }
    headers.push("MESSAGE");
    output::table(&headers, &rows)
}

/// The endpoints of a single-writer service; nothing for the others.
fn endpoint_rows(s: &Service) -> String {
    if s.status.endpoints.is_empty() {
        return String::new();
    }
    let rows: Vec<Vec<String>> = s
        .status
        .endpoints
        .iter()
        .map(|e| {
            let to = if e.addresses.is_empty() { "-".to_string() } else { e.addresses.join(",") };
            vec![e.role.clone(), e.dns_name.clone().unwrap_or_else(|| "-".into()), to, e.kube_service.clone().unwrap_or_else(|| "-".into())]
        })
        .collect();
    "\n".to_string() + &output::table(&["ENDPOINT", "DNS NAME", "LEADS TO", "KUBERNETES SERVICE"], &rows)
}

pub async fn list(client: &Backend, format: Format) -> Result<(), CliError> {
    let list = client.list().await?;
    print_as(format, &list, || service_rows(&list.items))
}

pub async fn get(client: &Backend, name: &str, format: Format) -> Result<(), CliError> {
    let s = client.get(name).await?;
    print_as(format, &s, || service_rows(std::slice::from_ref(&s)) + "\n" + &member_rows(&s) + &endpoint_rows(&s) + &volume_rows(&s))
}

/// Each member's volumes as the spec sizes them (a scale gives new members the same).
fn volume_rows(s: &Service) -> String {
    let v = &s.spec.volumes;
    let rows: Vec<Vec<String>> = std::iter::once(("data", &v.data))
        .chain(v.journal.as_ref().map(|j| ("journal", j)))
        .map(|(name, vol)| {
            let perf = [vol.iops.map(|i| format!("{i} IOPS")), vol.throughput.map(|t| format!("{t} MiB/s"))];
            vec![
                name.to_string(),
                vol.size.clone(),
                vol.volume_type.as_str().to_string(),
                if vol.encrypted { "yes" } else { "no" }.to_string(),
                perf.into_iter().flatten().collect::<Vec<_>>().join(", "),
            ]
        })
        .collect();
    "\n".to_string() + &output::table(&["VOLUME (EACH MEMBER)", "SIZE", "TYPE", "ENCRYPTED", "PERFORMANCE"], &rows)
}

pub use crate::credentials_cmd::credentials;

pub async fn members(client: &Backend, name: &str, format: Format) -> Result<(), CliError> {
    let s = client.get(name).await?;
    print_as(format, &s.status.members, || member_rows(&s))
}

pub async fn delete(client: &Backend, name: &str, delete_volumes: bool, w: WaitArgs) -> Result<(), CliError> {
    client.delete(name, delete_volumes).await?;
    if delete_volumes {
        println!("deleting {name} and its data volumes");
    } else {
        println!("deleting {name}; its data volumes are kept (add --delete-volumes to remove them)");
    }
    if w.wait {
        wait(client, name, Until::Gone, w).await?;
    }
    Ok(())
}

pub async fn logs(client: &Client, a: &LogsArgs) -> Result<(), CliError> {
    let mut query = vec![format!("follow={}", a.follow)];
    if let Some(m) = &a.member {
        query.push(format!("member={m}"));
    }
    if let Some(s) = &a.since {
        query.push(format!("since={s}"));
    }
    let resp = client.stream(&format!("{}?{}", paths::logs(&a.service), query.join("&"))).await?;
    let mut body = resp.bytes_stream();
    let mut out = std::io::stdout();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| CliError::Failed(format!("reading logs: {e}")))?;
        out.write_all(&chunk).and_then(|_| out.flush()).map_err(|e| CliError::Failed(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_shows_each_members_volume_sizes() {
        let spec = serde_json::from_value(serde_json::json!({
            "engine": "postgresql", "replicas": 3, "zones": ["a"],
            "volumes": { "data": { "size": "100Gi" }, "journal": { "size": "10Gi", "type": "io2", "iops": 3000 } },
        }))
        .unwrap();
        let mut s = Service { name: "pg".into(), spec, status: Default::default() };
        let text = volume_rows(&s);
        let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        assert!(lines[0].starts_with("VOLUME (EACH MEMBER)") && lines[0].contains("SIZE"), "{text}");
        assert!(lines[1].starts_with("data") && lines[1].contains("100Gi") && lines[1].contains("gp3"), "{text}");
        assert!(lines[2].starts_with("journal") && lines[2].contains("10Gi") && lines[2].contains("3000 IOPS"), "{text}");
        s.spec.volumes.journal = None;
        assert_eq!(volume_rows(&s).lines().filter(|l| !l.is_empty()).count(), 2);
    }
}
