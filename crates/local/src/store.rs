//! The embedded store: one redb file in the runtime's directory. redb is pure Rust (no C
//! library to build, unlike SQLite), ACID with one writer, and a file lock keeps a second daemon
//! off the same directory. Records are JSON values keyed by service name.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use firecamp_core::ServiceSpec;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::error::{LocalError, Result};

const SERVICES: TableDefinition<&str, &str> = TableDefinition::new("services");
/// Identities of deleted services whose data was kept, so a re-created service of the same name
/// finds its data with the same addresses and passwords.
const RETAINED: TableDefinition<&str, &str> = TableDefinition::new("retained");
/// Day-2 operations, keyed `<service>/<operation id>` (ids sort by creation).
const OPERATIONS: TableDefinition<&str, &str> = TableDefinition::new("operations");

/// An operation as the runtime keeps it: what the API shows, and what it needs to finish the
/// operation after a daemon restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationRecord {
    pub service: String,
    pub operation: firecamp_core::operation::Operation,
    /// The spec the operation moves the service to.
    pub spec: ServiceSpec,
    /// The server version that spec runs on.
    pub server_version: String,
    /// Engine parameters whose value changes (config operations).
    #[serde(default)]
    pub changed_keys: Vec<String>,
    /// The TLS bundle the operation moves the service to (kind `certificates`), until it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<BTreeMap<String, String>>,
}

/// What the user asked a service to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Desired {
    Running,
    Stopped,
}

/// Progress of a service's init tasks, kept so a restarted daemon resumes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitProgress {
    pub done: bool,
    /// Steps finished, by name (e.g. `cluster-create`, `replica redis-4`).
    #[serde(default)]
    pub steps: Vec<String>,
    /// What the init task is waiting for or last failed at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRecord {
    pub name: String,
    /// The spec with the version resolved to the installed server's catalog version.
    pub spec: ServiceSpec,
    /// The installed server's own version (e.g. `15.14`).
    pub server_version: String,
    pub ips: BTreeMap<String, Ipv4Addr>,
    /// Generated passwords by secret key; only ever written to members' secret files.
    pub secrets: BTreeMap<String, String>,
    pub desired: Desired,
    #[serde(default)]
    pub init: InitProgress,
    /// The member that is primary since a switchover; `None`: the member that bootstrapped as
    /// primary (PostgreSQL, Redis replication). Rendered configs and restarts follow it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
    /// The service's TLS bundle (`firecamp_pki::bundle`: its CA, each member's certificate and
    /// key); only ever written to members' TLS files.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tls: BTreeMap<String, String>,
    /// This incarnation of the name (random, made at create; kept with retained data): its
    /// backups live under it, so a later service of the same name never mixes its WAL in.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// What the service is being restored from, until its first start is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreRecord>,
}

/// A restore under way: the backup the first member starts from (checked when asked for).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreRecord {
    pub source: String,
    pub backup: String,
    pub base_dir: String,
    pub wal_dir: String,
    /// RFC 3339 (UTC), as PostgreSQL reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_time: Option<String>,
}

impl ServiceRecord {
    /// The member writes go to, as the runtime renders it: the switched-over one, else member
    /// 0 (the bootstrap primary of every single-writer engine).
    pub fn current_primary(&self) -> String {
        self.primary.clone().unwrap_or_else(|| firecamp_core::MemberName::new(&self.name, 0).to_string())
    }

    /// The primary and replicas endpoints with their addresses (the replicas in member order),
    /// for engines with a single writer.
    pub fn endpoint_addresses(&self, cluster: &firecamp_core::ClusterConfig) -> Option<[(String, Vec<Ipv4Addr>); 2]> {
        let engine = firecamp_catalog::engine(self.spec.engine);
        if engine.client_role(&self.spec) != Some(firecamp_catalog::Role::Primary) {
            return None;
        }
        let e = firecamp_core::Endpoints::of(&self.name, cluster);
        let primary = self.current_primary();
        let mut replicas: Vec<(u32, Ipv4Addr)> =
            self.ips.iter().filter(|(m, _)| **m != primary).filter_map(|(m, ip)| Some((m.rsplit_once('-')?.1.parse().ok()?, *ip))).collect();
        replicas.sort();
        Some([(e.primary, self.ips.get(&primary).copied().into_iter().collect()), (e.replicas, replicas.into_iter().map(|(_, ip)| ip).collect())])
    }

    /// The endpoints as the API shows them.
    pub fn endpoints(&self, cluster: &firecamp_core::ClusterConfig) -> Vec<firecamp_api::Endpoint> {
        let Some([(_, primary), (_, replicas)]) = self.endpoint_addresses(cluster) else {
            return Vec::new();
        };
        let text = |ips: Vec<Ipv4Addr>| ips.iter().map(Ipv4Addr::to_string).collect();
        firecamp_api::Endpoint::pair(&firecamp_core::Endpoints::of(&self.name, cluster), text(primary), text(replicas))
    }
}

impl std::fmt::Debug for ServiceRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceRecord")
            .field("name", &self.name)
            .field("engine", &self.spec.engine)
            .field("ips", &self.ips)
            .field("desired", &self.desired)
            .field("init", &self.init)
            .finish_non_exhaustive()
    }
}

/// What a deleted service leaves behind with its data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retained {
    pub engine: firecamp_core::EngineKind,
    pub ips: BTreeMap<String, Ipv4Addr>,
    pub secrets: BTreeMap<String, String>,
    /// The CA clients trust survives a re-creation with the kept data.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tls: BTreeMap<String, String>,
    /// The incarnation the kept data belongs to (its WAL archive goes on).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

pub struct Store {
    db: Database,
}

fn err(e: impl std::fmt::Display) -> LocalError {
    LocalError::Store(e.to_string())
}

impl Store {
    pub fn open(path: &Path) -> Result<Self> {
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => LocalError::Conflict(format!("{} is in use by another firecamp local runtime", path.display())),
            e => LocalError::Store(format!("opening {}: {e}", path.display())),
        })?;
        // The store holds passwords: only its owner reads it.
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).map_err(LocalError::io(format!("securing {}", path.display())))?;
        let txn = db.begin_write().map_err(err)?;
        txn.open_table(SERVICES).map_err(err)?;
        txn.open_table(RETAINED).map_err(err)?;
        txn.open_table(OPERATIONS).map_err(err)?;
        txn.commit().map_err(err)?;
        Ok(Store { db })
    }

    fn get_json<T: for<'de> Deserialize<'de>>(&self, table: TableDefinition<&str, &str>, key: &str) -> Result<Option<T>> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(table).map_err(err)?;
        match t.get(key).map_err(err)? {
            None => Ok(None),
            Some(v) => serde_json::from_str(v.value()).map(Some).map_err(err),
        }
    }

    fn put_json<T: Serialize>(&self, table: TableDefinition<&str, &str>, key: &str, value: Option<&T>) -> Result<()> {
        let txn = self.db.begin_write().map_err(err)?;
        {
            let mut t = txn.open_table(table).map_err(err)?;
            match value {
                Some(v) => {
                    let json = serde_json::to_string(v).map_err(err)?;
                    t.insert(key, json.as_str()).map_err(err)?;
                }
                None => {
                    t.remove(key).map_err(err)?;
                }
            }
        }
        txn.commit().map_err(err)
    }

    pub fn get(&self, name: &str) -> Result<Option<ServiceRecord>> {
        self.get_json(SERVICES, name)
    }

    pub fn put(&self, rec: &ServiceRecord) -> Result<()> {
        self.put_json(SERVICES, &rec.name, Some(rec))
    }

    pub fn remove(&self, name: &str) -> Result<()> {
        self.put_json::<ServiceRecord>(SERVICES, name, None)
    }

    pub fn list(&self) -> Result<Vec<ServiceRecord>> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(SERVICES).map_err(err)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(err)? {
            let (_, v) = item.map_err(err)?;
            out.push(serde_json::from_str(v.value()).map_err(err)?);
        }
        Ok(out)
    }

    pub fn retained(&self, name: &str) -> Result<Option<Retained>> {
        self.get_json(RETAINED, name)
    }

    pub fn all_retained(&self) -> Result<Vec<Retained>> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(RETAINED).map_err(err)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(err)? {
            let (_, v) = item.map_err(err)?;
            out.push(serde_json::from_str(v.value()).map_err(err)?);
        }
        Ok(out)
    }

    pub fn put_operation(&self, r: &OperationRecord) -> Result<()> {
        self.put_json(OPERATIONS, &format!("{}/{}", r.service, r.operation.id), Some(r))
    }

    pub fn operation(&self, service: &str, id: &str) -> Result<Option<OperationRecord>> {
        self.get_json(OPERATIONS, &format!("{service}/{id}"))
    }

    /// A service's operations, oldest first.
    pub fn operations(&self, service: &str) -> Result<Vec<OperationRecord>> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(OPERATIONS).map_err(err)?;
        let (from, to) = (format!("{service}/"), format!("{service}0"));
        let mut out = Vec::new();
        for item in t.range(from.as_str()..to.as_str()).map_err(err)? {
            let (_, v) = item.map_err(err)?;
            out.push(serde_json::from_str(v.value()).map_err(err)?);
        }
        Ok(out)
    }

    /// Every operation not yet finished, of every service.
    pub fn unfinished_operations(&self) -> Result<Vec<OperationRecord>> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(OPERATIONS).map_err(err)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(err)? {
            let (_, v) = item.map_err(err)?;
            let r: OperationRecord = serde_json::from_str(v.value()).map_err(err)?;
            if !r.operation.phase.is_terminal() {
                out.push(r);
            }
        }
        Ok(out)
    }

    pub fn remove_operations(&self, service: &str) -> Result<()> {
        let ids: Vec<String> = self.operations(service)?.into_iter().map(|r| r.operation.id).collect();
        for id in ids {
            self.put_json::<OperationRecord>(OPERATIONS, &format!("{service}/{id}"), None)?;
        }
        Ok(())
    }

    pub fn set_retained(&self, name: &str, r: Option<&Retained>) -> Result<()> {
        self.put_json(RETAINED, name, r)
    }
}
