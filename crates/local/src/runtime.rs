//! The runtime: services from the store, their members as supervised processes, the names in
//! /etc/hosts and the embedded DNS zone. Every change goes through here, one at a time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use firecamp_api::{CreateService, Phase, Service, ServiceStatus};
use firecamp_catalog::{KubernetesLayout, LocalLayout, ServicePlan, plan, plan_mid_scale};
use firecamp_core::spec::RedisMode;
use firecamp_core::{ClusterConfig, EngineKind, MemberName};
use nix::sys::signal::Signal;
use rand::distr::{Alphanumeric, SampleString};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::dns::DnsZone;
use crate::error::{LocalError, Result};
use crate::logs::LogSink;
use crate::servers::{self, Installed};
use crate::store::{Desired, InitProgress, Retained, ServiceRecord, Store};
use crate::supervisor::{MemberProcess, RunState, Supervised, kill_stale};
use crate::{hosts, ips, materialize, status};

/// The members and init task of a running service.
#[derive(Default)]
pub(crate) struct Running {
    pub(crate) members: BTreeMap<String, Supervised>,
    init: Option<JoinHandle<()>>,
}

pub struct Runtime {
    pub cfg: Config,
    pub(crate) store: Store,
    node: String,
    /// Whether member names are in /etc/hosts; when not, rendered files carry IPs.
    hosts_managed: AtomicBool,
    dns: Option<DnsZone>,
    pub(crate) running: tokio::sync::Mutex<BTreeMap<String, Running>>,
    /// Why a service could not be started at boot.
    pub(crate) failures: Mutex<HashMap<String, String>>,
    logs: Mutex<HashMap<String, Arc<LogSink>>>,
    /// Serialises create, delete and the start of operations.
    pub(crate) ops: tokio::sync::Mutex<()>,
    /// The task running each service's current operation.
    pub(crate) op_tasks: Mutex<HashMap<String, JoinHandle<()>>>,
    /// Bumped whenever an operation record changes.
    pub(crate) op_changed: tokio::sync::watch::Sender<u64>,
    /// Operations someone asked to cancel (by id), so the executor's own writes keep the request.
    pub(crate) cancels: Mutex<std::collections::HashSet<String>>,
    /// The tasks watching primaries for failover (`failover.rs`) and backup schedules
    /// (`schedule.rs`).
    watchers: Mutex<Vec<JoinHandle<()>>>,
    /// Where backups are kept (the state directory or S3).
    pub(crate) repo: crate::backup::Repo,
    /// What `/metrics` counts since the daemon started.
    pub(crate) counters: crate::metrics::Counters,
}

/// 32 alphanumeric characters (about 190 bits); the start scripts refuse anything else.
pub(crate) fn password() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 32)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "localhost".into())
}

impl Runtime {
    pub(crate) fn new(cfg: Config, store: Store, dns: Option<DnsZone>, repo: crate::backup::Repo) -> Self {
        Runtime {
            cfg,
            store,
            node: hostname(),
            hosts_managed: AtomicBool::new(false),
            dns,
            running: Default::default(),
            failures: Default::default(),
            logs: Default::default(),
            ops: Default::default(),
            op_tasks: Default::default(),
            op_changed: tokio::sync::watch::Sender::new(0),
            cancels: Default::default(),
            watchers: Default::default(),
            repo,
            counters: Default::default(),
        }
    }

    pub fn cluster(&self) -> ClusterConfig {
        // No namespaces locally: members keep `<member>.<cluster>-firecamp.com`.
        ClusterConfig { networks: vec!["127.0.0.0/8".into()], namespaced_names: false, backups: true, ..ClusterConfig::new(self.cfg.cluster.clone()) }
    }

    pub fn record(&self, name: &str) -> Result<Option<ServiceRecord>> {
        self.store.get(name)
    }

    pub fn update_init(&self, name: &str, f: impl FnOnce(&mut InitProgress)) -> Result<()> {
        // Init tasks update only their own service, so a read-modify-write is safe here.
        if let Some(mut rec) = self.store.get(name)? {
            let before = rec.init.clone();
            f(&mut rec.init);
            // A restored service, once up, starts like any other from then on.
            let restored = rec.init.done && rec.restore.take().is_some();
            if restored {
                crate::backup::forget_restore(&self.cfg, name);
            }
            if rec.init != before || restored {
                self.store.put(&rec)?;
            }
        }
        Ok(())
    }

    /// The OS user (uid, gid) an engine's servers run as when the daemon is root: each its own
    /// unprivileged user, as Debian's packages create them. `None` when not root (servers then
    /// run as the daemon's user, which is not privileged either).
    pub(crate) fn member_user(&self, engine: EngineKind) -> Result<Option<(u32, u32)>> {
        if !nix::unistd::Uid::effective().is_root() {
            return Ok(None);
        }
        crate::users::lookup(engine, crate::users::system).map(Some)
    }

    /// Where the service's members live, archive WAL and (restored) start from.
    /// Without `installed`: a layout for names and shapes only (no executables, no metrics).
    pub(crate) fn layout(&self, rec: &ServiceRecord, installed: Option<&Installed>) -> LocalLayout {
        let backup = firecamp_catalog::layout::BackupPaths {
            archive_dir: self.archive(rec).unwrap_or_default(),
            restore: rec.restore.as_ref().map(|r| firecamp_catalog::layout::RestorePaths {
                base_dir: r.base_dir.clone(),
                wal_dir: r.wal_dir.clone(),
                target_time: r.target_time.clone(),
                fetch: None,
            }),
            s3: self.s3_access(rec),
        };
        LocalLayout {
            service_dir: self.cfg.service_dir(&rec.name).display().to_string(),
            bin_dir: installed.map(|i| i.bin_dir.clone()).unwrap_or_default(),
            backup,
            metrics: installed.and_then(|i| i.metrics.clone()),
        }
    }

    pub(crate) fn plan_of(&self, rec: &ServiceRecord, installed: &Installed) -> Result<ServicePlan> {
        let layout = self.layout(rec, Some(installed));
        Ok(plan_mid_scale(&rec.name, &rec.spec, &self.cluster(), &layout, &rec.ips, rec.primary.as_deref())?)
    }

    pub(crate) fn installed(&self, rec: &ServiceRecord) -> Result<Installed> {
        let redis_cluster = status::is_redis_cluster(rec);
        servers::detect(&self.cfg, rec.spec.engine, rec.spec.version.as_deref(), redis_cluster)
    }

    pub(crate) fn log_sink(&self, service: &str, member: &str) -> Arc<LogSink> {
        let key = format!("{service}/{member}");
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        let path = self.cfg.service_dir(service).join(member).join("member.log");
        logs.entry(key).or_insert_with(|| Arc::new(LogSink::new(path, self.cfg.member_log_max_bytes))).clone()
    }

    /// Closes a removed member's log and forgets it.
    pub(crate) fn forget_member_logs(&self, service: &str, member: &str) {
        if let Some(sink) = self.logs.lock().unwrap_or_else(|p| p.into_inner()).remove(&format!("{service}/{member}")) {
            sink.close();
        }
    }

    /// DNS name → addresses of every member of every service, and of the primary and replicas
    /// endpoints of single-writer services (they follow `ServiceRecord::primary`).
    fn names(&self) -> Result<hosts::Names> {
        let cluster = self.cluster();
        let domain = cluster.domain();
        let mut names = hosts::Names::new();
        for r in self.store.list()? {
            names.extend(r.endpoint_addresses(&cluster).into_iter().flatten().filter(|(_, ips)| !ips.is_empty()));
            names.extend(r.ips.into_iter().map(|(m, ip)| (format!("{m}.{domain}"), vec![ip])));
        }
        Ok(names)
    }

    /// Brings /etc/hosts and the DNS zone in line with the store (members and endpoints): after
    /// every change of a service's members or of its primary.
    pub async fn sync_names(&self) -> Result<()> {
        let names = self.names()?;
        if let Some(dns) = &self.dns {
            dns.set(&names).await;
        }
        if self.cfg.manage_hosts {
            match hosts::write_block(&self.cfg.hosts_file, &self.cfg.cluster, &names) {
                Ok(()) => self.hosts_managed.store(true, Ordering::SeqCst),
                Err(e) => {
                    if self.hosts_managed.swap(false, Ordering::SeqCst) || !names.is_empty() {
                        tracing::warn!(file = %self.cfg.hosts_file.display(), error = %e,
                            "cannot write member names into the hosts file; members are configured with IP addresses instead, and clients must use IPs or the embedded DNS server");
                    }
                }
            }
        }
        Ok(())
    }

    /// Records `member` as `service`'s primary (read afresh, so nothing else recorded meanwhile
    /// is lost) and moves the primary endpoint to it; returns the record as stored.
    pub(crate) async fn set_primary(&self, service: &str, member: &str) -> Result<ServiceRecord> {
        let mut rec = self.store.get(service)?.ok_or_else(|| LocalError::NotFound(format!("service {service}")))?;
        if rec.primary.as_deref() != Some(member) {
            rec.primary = Some(member.to_string());
            self.store.put(&rec)?;
        }
        self.sync_names().await?;
        Ok(rec)
    }

    pub fn hosts_managed(&self) -> bool {
        self.hosts_managed.load(Ordering::SeqCst)
    }

    /// Writes the service's files and starts its members (and its init task if unfinished).
    pub(crate) async fn start_service(self: &Arc<Self>, rec: &ServiceRecord, installed: &Installed) -> Result<()> {
        let plan = self.plan_of(rec, installed)?;
        let rec = &self.ensure_secrets(rec, &plan)?;
        let rec = &self.ensure_tls(rec, &plan)?;
        self.prepare_service(rec, installed)?;
        for m in &plan.members {
            self.write_member(rec, &plan, m.member.name.as_str())?;
        }
        let mut running = self.running.lock().await;
        let entry = running.entry(rec.name.clone()).or_default();
        for m in &plan.members {
            let name = m.member.name.to_string();
            if entry.members.contains_key(&name) {
                continue;
            }
            // A Cassandra ring being formed starts its seeds together; the init task starts the
            // others one at a time (crate::cassandra::start_joining).
            if crate::cassandra::joins_later(rec, m.member.index) {
                continue;
            }
            let sup = self.spawn_member(rec, &plan, &name)?;
            entry.members.insert(name, sup);
        }
        if !rec.init.done && entry.init.is_none() {
            entry.init = Some(tokio::spawn(crate::init::run(self.clone(), rec.name.clone(), plan, installed.bin_dir.clone())));
        }
        Ok(())
    }

    /// The service's directory and, for the JVM engines, the launchers of the installed server.
    pub(crate) fn prepare_service(&self, rec: &ServiceRecord, installed: &Installed) -> Result<()> {
        materialize::service_dir(&self.cfg.service_dir(&rec.name))?;
        self.prepare_backups(rec, self.member_user(rec.spec.engine)?)?;
        for (name, script) in &installed.launchers {
            let dir = PathBuf::from(&installed.bin_dir);
            std::fs::create_dir_all(&dir).map_err(LocalError::io(format!("creating {}", dir.display())))?;
            let launcher = dir.join(name);
            std::fs::write(&launcher, script).map_err(LocalError::io(format!("writing {}", launcher.display())))?;
            std::fs::set_permissions(&launcher, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .map_err(LocalError::io(format!("chmod {}", launcher.display())))?;
        }
        Ok(())
    }

    /// Every password the engine's start script reads: a service recorded before its engine had
    /// one (ZooKeeper's SASL users came with TLS) gets it generated and recorded, the others
    /// keep theirs.
    pub(crate) fn ensure_secrets(&self, rec: &ServiceRecord, plan: &ServicePlan) -> Result<ServiceRecord> {
        let mut updated = rec.clone();
        if !fill_secrets(&mut updated.secrets, &plan.secret_keys) {
            return Ok(rec.clone());
        }
        self.store.put(&updated)?;
        Ok(updated)
    }

    /// The service's TLS bundle made or brought up to date (`firecamp_pki::bundle`), and recorded
    /// when it changed: a member's certificate names its DNS name, its address and `localhost`.
    pub(crate) fn ensure_tls(&self, rec: &ServiceRecord, plan: &ServicePlan) -> Result<ServiceRecord> {
        if !plan.tls {
            return Ok(rec.clone());
        }
        let members = tls_names(rec, plan);
        let store = format!("the runtime's record of {}", rec.name);
        let bundle =
            firecamp_pki::bundle::renew(&rec.tls, &firecamp_catalog::tls::ca_name(None, &rec.name), &members, firecamp_pki::OffsetDateTime::now_utc(), &store)
                .map_err(|e| LocalError::Internal(format!("TLS of {}: {e}", rec.name)))?;
        if bundle.data == rec.tls {
            return Ok(rec.clone());
        }
        let mut updated = rec.clone();
        updated.tls = bundle.data;
        self.store.put(&updated)?;
        Ok(updated)
    }

    /// Writes one member's files from `plan` (the running server reads them at its next start
    /// or reload).
    pub(crate) fn write_member(&self, rec: &ServiceRecord, plan: &ServicePlan, member: &str) -> Result<()> {
        let m = plan.member(member).ok_or_else(|| LocalError::Internal(format!("{member} is not in the plan of {}", rec.name)))?;
        let domain = self.cluster().domain();
        let by_name: BTreeMap<String, Ipv4Addr> = rec.ips.iter().map(|(m, ip)| (format!("{m}.{domain}"), *ip)).collect();
        let fallback = (!self.hosts_managed()).then_some(&by_name);
        let member_dir = self.cfg.service_dir(&rec.name).join(member);
        materialize::member(&materialize::MemberFiles {
            member_dir: &member_dir,
            plan: m,
            secret_dir: &member_dir.join("secret"),
            secrets: &self.member_secrets(rec),
            tls: &member_tls(rec, member),
            has_journal: rec.spec.volumes.journal.is_some(),
            owner: self.member_user(rec.spec.engine)?,
            ip_fallback: fallback,
        })
    }

    /// Starts one member's server under a supervisor (its files must be written).
    pub(crate) fn spawn_member(&self, rec: &ServiceRecord, plan: &ServicePlan, member: &str) -> Result<Supervised> {
        let m = plan.member(member).ok_or_else(|| LocalError::Internal(format!("{member} is not in the plan of {}", rec.name)))?;
        let (stop_signal, grace) = match rec.spec.engine {
            EngineKind::Postgresql => (Signal::SIGINT, Duration::from_secs(60)),
            EngineKind::Redis => (Signal::SIGTERM, Duration::from_secs(30)),
            EngineKind::Zookeeper => (Signal::SIGTERM, Duration::from_secs(20)),
            // A controlled shutdown hands its partitions' leadership to the other brokers first.
            EngineKind::Kafka => (Signal::SIGTERM, Duration::from_secs(60)),
            // A clean shutdown: clients disconnected, InnoDB flushed.
            EngineKind::Mariadb => (Signal::SIGTERM, Duration::from_secs(60)),
            // Its shutdown hook drains the member (no more writes taken, memtables flushed).
            EngineKind::Cassandra => (Signal::SIGTERM, Duration::from_secs(120)),
        };
        let dir = self.cfg.service_dir(&rec.name).join(member);
        kill_stale(&dir);
        let p = MemberProcess {
            member: member.to_string(),
            script: PathBuf::from(&m.paths.config_dir).join("start.sh"),
            dir,
            user: self.member_user(rec.spec.engine)?,
            stop_signal,
            stop_grace: grace,
            pid_file: crate::supervisor::SERVER_PID,
        };
        let log = self.log_sink(&rec.name, member);
        log.set_owner(p.user);
        log.line(&format!("firecamp: starting {member} at {} ({} {})", rec.ips[member], rec.spec.engine, rec.server_version));
        // The member's metrics exporter (docs/monitoring.md), as the same user, logging into the
        // member's log; it starts again on its own when it exits, as the server does.
        let exporter = m.files.iter().any(|f| f.name == firecamp_catalog::metrics::SCRIPT).then(|| MemberProcess {
            member: format!("{member}'s metrics exporter"),
            script: PathBuf::from(&m.paths.config_dir).join(firecamp_catalog::metrics::SCRIPT),
            dir: p.dir.clone(),
            user: p.user,
            stop_signal: Signal::SIGTERM,
            stop_grace: Duration::from_secs(5),
            pid_file: crate::supervisor::METRICS_PID,
        });
        let server = Supervised::spawn(p, log.clone());
        server.state.lock().unwrap_or_else(|p| p.into_inner()).metrics =
            plan.metrics.map(|port| firecamp_catalog::metrics::url(&rec.ips[member].to_string(), port));
        Ok(match exporter {
            Some(e) => server.with_sidecar(Supervised::spawn(e, log)),
            None => server,
        })
    }

    /// Stops one member's server (clean stop) and waits until it is gone; nothing if it does
    /// not run.
    pub(crate) async fn stop_member(&self, service: &str, member: &str) {
        let sup = self.running.lock().await.get_mut(service).and_then(|r| r.members.remove(member));
        if let Some(sup) = sup {
            sup.stop().await;
        }
    }

    /// Kills a member at once (a fenced one: lost, so hung or dead; no clean stop awaited).
    pub(crate) async fn kill_member(&self, service: &str, member: &str) {
        let sup = self.running.lock().await.get_mut(service).and_then(|r| r.members.remove(member));
        if let Some(sup) = sup {
            sup.kill().await;
        }
    }

    /// Whether the daemon runs (supervises) `member` of `service`.
    pub(crate) async fn is_running(&self, service: &str, member: &str) -> bool {
        self.running.lock().await.get(service).is_some_and(|r| r.members.contains_key(member))
    }

    /// Writes one member's files from the service's current record and starts it, unless it runs.
    pub(crate) async fn start_member(&self, rec: &ServiceRecord, member: &str) -> Result<()> {
        let installed = self.installed(rec)?;
        let plan = self.plan_of(rec, &installed)?;
        self.prepare_service(rec, &installed)?;
        let mut running = self.running.lock().await;
        let entry = running.entry(rec.name.clone()).or_default();
        if entry.members.contains_key(member) {
            return Ok(());
        }
        self.write_member(rec, &plan, member)?;
        let sup = self.spawn_member(rec, &plan, member)?;
        entry.members.insert(member.to_string(), sup);
        Ok(())
    }

    /// Stops a service's members (data kept) and its init task.
    pub(crate) async fn stop_members(&self, name: &str) {
        let r = self.running.lock().await.remove(name);
        if let Some(r) = r {
            if let Some(t) = r.init {
                t.abort();
            }
            futures::future::join_all(r.members.into_values().map(Supervised::stop)).await;
        }
    }

    /// Restarts every service the store says should run (after `local up`).
    pub async fn boot(self: &Arc<Self>) -> Result<()> {
        self.sync_names().await?;
        for rec in self.store.list()? {
            if rec.desired != Desired::Running {
                continue;
            }
            let started = match self.installed(&rec) {
                Ok(inst) => self.start_service(&rec, &inst).await,
                Err(e) => Err(e),
            };
            if let Err(e) = started {
                tracing::error!(service = %rec.name, error = %e, "cannot start service");
                self.failures.lock().unwrap_or_else(|p| p.into_inner()).insert(rec.name.clone(), e.to_string());
            }
        }
        self.resume_operations()?;
        let watchers = [tokio::spawn(self.clone().watch_primaries()), tokio::spawn(crate::schedule::run(self.clone()))];
        self.watchers.lock().unwrap_or_else(|p| p.into_inner()).extend(watchers);
        Ok(())
    }

    /// Stops every member (the store keeps what should run for the next boot) and removes the
    /// cluster's names from /etc/hosts.
    pub async fn shutdown(&self) {
        // The failover watcher first: a stopping member must not look like a lost primary (and
        // no scheduled backup starts).
        let watchers: Vec<JoinHandle<()>> = self.watchers.lock().unwrap_or_else(|p| p.into_inner()).drain(..).collect();
        for w in watchers {
            w.abort();
            let _ = w.await;
        }
        // Operations next: a stopping member must not look like a failed step.
        let tasks: Vec<JoinHandle<()>> = self.op_tasks.lock().unwrap_or_else(|p| p.into_inner()).drain().map(|(_, t)| t).collect();
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
        let names: Vec<String> = self.running.lock().await.keys().cloned().collect();
        futures::future::join_all(names.iter().map(|n| self.stop_members(n))).await;
        if self.cfg.manage_hosts && self.hosts_managed() {
            let removed = hosts::write_block(&self.cfg.hosts_file, &self.cfg.cluster, &hosts::Names::new());
            if let Err(e) = removed {
                tracing::warn!(error = %e, "cannot remove the member names from the hosts file");
            }
        }
    }

    pub async fn create(self: &Arc<Self>, req: CreateService) -> Result<Service> {
        let _op = self.ops.lock().await;
        self.create_locked(req, None).await
    }

    /// `create` with the runtime's operations lock held; a restore passes what its first
    /// member starts from.
    pub(crate) async fn create_locked(self: &Arc<Self>, req: CreateService, restore: Option<crate::store::RestoreRecord>) -> Result<Service> {
        let CreateService { name, mut spec } = req;
        if self.store.get(&name)?.is_some() {
            return Err(LocalError::AlreadyExists(name));
        }
        // The spec's own rules first (no addresses needed for them), all errors at once.
        plan(&name, &spec, &self.cluster(), &KubernetesLayout::default(), &BTreeMap::new())?;
        let redis_cluster = spec.engine == EngineKind::Redis && spec.redis.as_ref().is_some_and(|r| r.mode == RedisMode::Cluster);
        // A version other than the installed server's is the spec's mistake: named as such.
        let installed = servers::detect(&self.cfg, spec.engine, spec.version.as_deref(), redis_cluster).map_err(|e| match e {
            LocalError::BadRequest(m) => LocalError::invalid("spec.version", m),
            e => e,
        })?;
        spec.version = Some(installed.catalog_version.to_string());
        self.member_user(spec.engine)?;

        let members: Vec<String> = (0..spec.replicas).map(|i| MemberName::new(&name, i).to_string()).collect();
        let retained = self.store.retained(&name)?.filter(|r| r.engine == spec.engine);
        let mut taken: BTreeSet<Ipv4Addr> = self.store.list()?.iter().flat_map(|r| r.ips.values().copied()).collect();
        let kept = retained.as_ref().map(|r| r.ips.clone()).unwrap_or_default();
        for r in self.store.all_retained()? {
            taken.extend(r.ips.values().filter(|ip| !kept.values().any(|k| k == *ip)));
        }
        let ips = ips::allocate(&self.cfg.ips, &taken, &members, &kept).map_err(|e| LocalError::Unavailable(e.to_string()))?;
        let service_dir = self.cfg.service_dir(&name);
        if retained.is_none() && service_dir.exists() {
            return Err(LocalError::Conflict(format!(
                "{} exists but belongs to no service FireCamp knows; move it away or choose another name",
                service_dir.display()
            )));
        }
        let mut rec = ServiceRecord {
            name: name.clone(),
            spec,
            server_version: installed.server_version.clone(),
            ips,
            secrets: BTreeMap::new(),
            desired: Desired::Running,
            init: InitProgress { message: Some("starting members".into()), ..Default::default() },
            primary: None,
            tls: retained.as_ref().map(|r| r.tls.clone()).unwrap_or_default(),
            uid: retained.as_ref().map(|r| r.uid.clone()).filter(|u| !u.is_empty()).unwrap_or_else(crate::backup::new_uid),
            restore,
        };
        let plan = self.plan_of(&rec, &installed)?;
        // A retained service's passwords are kept (its data may depend on them); missing ones made.
        rec.secrets = retained.as_ref().map(|r| r.secrets.clone()).unwrap_or_default();
        fill_secrets(&mut rec.secrets, &plan.secret_keys);
        for (member, ip) in &rec.ips {
            ports_free(member, *ip, &plan)?;
        }

        self.store.put(&rec)?;
        let made = async {
            self.sync_names().await?;
            self.start_service(&rec, &installed).await
        }
        .await;
        if let Err(e) = made {
            tracing::warn!(service = %name, error = %e, "create failed; undoing it");
            self.stop_members(&name).await;
            let _ = self.store.remove(&name);
            if retained.is_none() {
                let _ = std::fs::remove_dir_all(&service_dir);
            }
            let _ = self.sync_names().await;
            return Err(e);
        }
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&name);
        let status = ServiceStatus { phase: Phase::Creating, message: rec.init.message.clone(), members: Vec::new(), endpoints: Vec::new() };
        Ok(Service { name, spec: rec.spec, status })
    }

    pub async fn delete(&self, name: &str, delete_volumes: bool) -> Result<Service> {
        let _op = self.ops.lock().await;
        let rec = self.store.get(name)?.ok_or_else(|| LocalError::NotFound(name.into()))?;
        if let Some(busy) = self.unfinished_operation(name)? {
            return Err(busy);
        }
        self.stop_members(name).await;
        self.store.remove_operations(name)?;
        crate::backup::forget_restore(&self.cfg, name);
        let service_dir = self.cfg.service_dir(name);
        {
            let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
            logs.retain(|k, sink| {
                let mine = k.starts_with(&format!("{name}/"));
                if mine {
                    sink.close();
                }
                !mine
            });
        }
        if delete_volumes {
            std::fs::remove_dir_all(&service_dir)
                .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
                .map_err(LocalError::io(format!("removing {}", service_dir.display())))?;
            self.store.set_retained(name, None)?;
        } else {
            for m in rec.ips.keys() {
                for sub in ["config", "secret", "run"] {
                    let _ = std::fs::remove_dir_all(service_dir.join(m).join(sub));
                }
            }
            self.store.set_retained(
                name,
                Some(&Retained { engine: rec.spec.engine, ips: rec.ips.clone(), secrets: rec.secrets.clone(), tls: rec.tls.clone(), uid: rec.uid.clone() }),
            )?;
        }
        self.store.remove(name)?;
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(name);
        self.sync_names().await?;
        let status = ServiceStatus { phase: Phase::Deleting, message: None, members: Vec::new(), endpoints: Vec::new() };
        Ok(Service { name: rec.name, spec: rec.spec, status })
    }

    /// `POST …/stop`: a `stop` operation (others first, the primary last), waited for; nothing
    /// to do when the service is already stopped.
    pub async fn stop(self: &Arc<Self>, name: &str) -> Result<Service> {
        self.stop_or_start(name, firecamp_core::operation::OperationKind::Stop).await
    }

    /// `POST …/start`: a `start` operation (the primary first), waited for.
    pub async fn start(self: &Arc<Self>, name: &str) -> Result<Service> {
        self.stop_or_start(name, firecamp_core::operation::OperationKind::Start).await
    }

    async fn stop_or_start(self: &Arc<Self>, name: &str, kind: firecamp_core::operation::OperationKind) -> Result<Service> {
        use firecamp_core::operation::{OperationKind, OperationRequest};
        let rec = self.store.get(name)?.ok_or_else(|| LocalError::NotFound(name.into()))?;
        let failed_at_boot = self.failures.lock().unwrap_or_else(|p| p.into_inner()).contains_key(name);
        let already = match kind {
            OperationKind::Stop => rec.desired == Desired::Stopped,
            _ => rec.desired == Desired::Running && !failed_at_boot,
        };
        if kind == OperationKind::Start && failed_at_boot && rec.desired == Desired::Running {
            // The service could not start at boot (e.g. its server was missing): try it again.
            let _op = self.ops.lock().await;
            let installed = self.installed(&rec)?;
            self.start_service(&rec, &installed).await?;
            self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(name);
        } else if !already {
            let req = OperationRequest { kind: Some(kind), ..Default::default() };
            let op = self.submit_operation(name, req).await?;
            let done = self.wait_operation(name, &op.id).await?;
            if done.phase != firecamp_core::operation::OperationPhase::Succeeded {
                return Err(LocalError::Internal(format!("{kind} of {name} ({}) did not succeed: {}", done.id, done.message.unwrap_or_default())));
            }
        }
        self.get(name).await
    }

    /// The certificate of the service's CA; `Missing` for a service without TLS.
    pub fn service_ca(&self, name: &str) -> Result<firecamp_api::ServiceCa> {
        let rec = self.store.get(name)?.ok_or_else(|| LocalError::NotFound(name.into()))?;
        match rec.tls.get(firecamp_catalog::tls::CA_FILE) {
            Some(ca) => Ok(firecamp_api::ServiceCa { ca: ca.clone() }),
            None => Err(LocalError::Missing(format!("service {name:?} has no CA: its engine serves no TLS"))),
        }
    }

    pub async fn get(&self, name: &str) -> Result<Service> {
        let rec = self.store.get(name)?.ok_or_else(|| LocalError::NotFound(name.into()))?;
        Ok(self.service_of(&rec).await)
    }

    pub async fn list(&self) -> Result<Vec<Service>> {
        let recs = self.store.list()?;
        Ok(futures::future::join_all(recs.iter().map(|r| self.service_of(r))).await)
    }

    async fn service_of(&self, rec: &ServiceRecord) -> Service {
        let run: BTreeMap<String, RunState> = {
            let running = self.running.lock().await;
            running.get(&rec.name).map(|r| r.members.iter().map(|(m, s)| (m.clone(), s.run_state())).collect()).unwrap_or_default()
        };
        let failure =
            self.failures.lock().unwrap_or_else(|p| p.into_inner()).get(&rec.name).cloned().or_else(|| crate::backup::restore_failure(&self.cfg, rec));
        // A plan for names and zones; paths need the installed server, which status does not.
        let layout = self.layout(rec, None);
        let plan = plan_mid_scale(&rec.name, &rec.spec, &self.cluster(), &layout, &rec.ips, rec.primary.as_deref()).ok();
        let cx = status::Context { rec, plan: plan.as_ref(), run: &run, node: &self.node, failure };
        let mut status = status::status(&cx).await;
        // An operation under way says where it is.
        if let Ok(ops) = self.store.operations(&rec.name)
            && let Some(op) = ops.iter().map(|r| &r.operation).find(|o| !o.phase.is_terminal())
        {
            let at = op.current_step().map(|i| format!(", step {} of {}: {}", i + 1, op.steps.len(), op.steps[i].describe())).unwrap_or_default();
            let note = format!("operation {} ({}{at})", op.id, op.kind);
            status.message = Some(match status.message.take() {
                Some(m) => format!("{note}; {m}"),
                None => note,
            });
        }
        let mut spec = rec.spec.clone();
        spec.stopped = rec.desired == Desired::Stopped;
        Service { name: rec.name.clone(), spec, status }
    }

    /// The log sinks of a service's members (one member, or all), by member name.
    pub fn member_logs(&self, name: &str, member: Option<&str>) -> Result<Vec<(String, Arc<LogSink>)>> {
        let rec = self.store.get(name)?.ok_or_else(|| LocalError::NotFound(name.into()))?;
        let members: Vec<String> = match member {
            Some(m) if rec.ips.contains_key(m) => vec![m.to_string()],
            Some(m) => {
                return Err(LocalError::invalid(
                    "member",
                    format!("{m:?} is not a member of {name}; members: {}", rec.ips.keys().cloned().collect::<Vec<_>>().join(", ")),
                ));
            }
            None => rec.ips.keys().cloned().collect(),
        };
        Ok(members.into_iter().map(|m| (m.clone(), self.log_sink(name, &m))).collect())
    }
}

/// Generates a password for each of `keys` that `secrets` lacks; whether any was.
/// Every port the engine uses is free on `ip` for `member`: binding is the only sure test.
pub(crate) fn ports_free(member: &str, ip: Ipv4Addr, plan: &ServicePlan) -> Result<()> {
    for port in &plan.ports {
        if let Err(e) = TcpListener::bind((ip, port.port)) {
            return Err(LocalError::Conflict(format!(
                "{ip}:{} ({} port of {member}) is not free: {e}; stop what uses it or start the runtime with another --ip-pool",
                port.port, port.name
            )));
        }
    }
    Ok(())
}

fn fill_secrets(secrets: &mut BTreeMap<String, String>, keys: &[&str]) -> bool {
    let mut added = false;
    for k in keys {
        if !secrets.contains_key(*k) {
            secrets.insert(k.to_string(), password());
            added = true;
        }
    }
    added
}

/// What each member's certificate names: its DNS name, the service's endpoints (any member may
/// come to hold either role), `localhost`, its address.
pub(crate) fn tls_names(rec: &ServiceRecord, plan: &ServicePlan) -> Vec<firecamp_pki::bundle::MemberNames> {
    plan.members
        .iter()
        .map(|m| firecamp_pki::bundle::MemberNames {
            member: m.member.name.to_string(),
            names: [m.member.dns_name.clone()]
                .into_iter()
                .chain(plan.endpoints.iter().flat_map(|e| e.names().map(String::from)))
                .chain(["localhost".into()])
                .collect(),
            ips: rec.ips.get(m.member.name.as_str()).map(|ip| std::net::IpAddr::from(*ip)).into_iter().collect(),
        })
        .collect()
}

/// A member's TLS files: the CA's certificate, its own certificate and key (never the CA's key
/// nor another member's).
fn member_tls(rec: &ServiceRecord, member: &str) -> BTreeMap<String, String> {
    use firecamp_catalog::tls::{CA_FILE, cert_file, key_file};
    [CA_FILE.to_string(), cert_file(member), key_file(member)].into_iter().filter_map(|k| rec.tls.get(&k).map(|v| (k, v.clone()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_passwords_are_made_and_present_ones_kept() {
        let mut s = BTreeMap::from([("quorum-password".to_string(), "kept".to_string())]);
        assert!(fill_secrets(&mut s, &["quorum-password", "super-password"]));
        assert_eq!(s["quorum-password"], "kept");
        assert_eq!(s["super-password"].len(), 32);
        assert!(s["super-password"].chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(!fill_secrets(&mut s, &["quorum-password", "super-password"]), "nothing more to make");
    }
}
