//! Day-2 operations: a durable record of an update, restart, config change, stop or start, with
//! its ordered steps. The Kubernetes manage service keeps it in the service's status, the local
//! runtime in its store; both plan the steps with [`plan_steps`], so the order is the same.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

use crate::spec::Resources;

/// Which member an ordered update touches first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum UpdatePolicy {
    /// The original FireCamp's order: the primary (or leader) first, then the others. Writes
    /// stop while the primary restarts and no switchover happens.
    #[serde(alias = "primary-first", alias = "primaryfirst")]
    PrimaryFirst,
    /// Replicas first, then a controlled switchover to an updated replica where the engine has
    /// one, then the old primary: writes pause once, briefly, and never on an old revision.
    #[serde(alias = "primary-last", alias = "primarylast")]
    PrimaryLast,
}

impl UpdatePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdatePolicy::PrimaryFirst => "PrimaryFirst",
            UpdatePolicy::PrimaryLast => "PrimaryLast",
        }
    }
    /// The policy named `PrimaryLast`, `primary-last` or `primarylast` (any case; the same for
    /// PrimaryFirst). Stored and shown in PascalCase.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "primaryfirst" => Ok(UpdatePolicy::PrimaryFirst),
            "primarylast" => Ok(UpdatePolicy::PrimaryLast),
            _ => Err(format!("unknown update policy {s:?}; allowed: PrimaryFirst, PrimaryLast (or primary-first, primary-last)")),
        }
    }
}

impl fmt::Display for UpdatePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OperationKind {
    /// A new engine version (the spec's `version`).
    Upgrade,
    /// Every member restarted in order, nothing else changed.
    Restart,
    /// Engine parameters (`config`, `memberConfig`): reloaded where the engine can, otherwise
    /// members restarted in order.
    Config,
    /// CPU and memory: members restarted in order.
    Resources,
    /// Every member stopped, data kept.
    Stop,
    /// Every member started again.
    Start,
    /// New member certificates, or one stage of a CA rotation (`ca`): the service's TLS
    /// bundle changes first, then every member restarts in order onto it.
    Certificates,
    /// A lost primary replaced by its most advanced replica. FireCamp starts it by itself
    /// (`spec.failover`); it cannot be requested.
    Failover,
    /// Members added or removed (`replicas`), with the engine's own steps for each.
    Scale,
    /// Every member's volume grown to `size` (`volume`: data, the default, or journal).
    Volume,
    /// A base backup of the service (PostgreSQL: from a streaming replica where there is one),
    /// kept with the archived WAL for restores (`spec.backup`).
    Backup,
}

impl OperationKind {
    pub const ALL: [OperationKind; 11] = [
        OperationKind::Upgrade,
        OperationKind::Restart,
        OperationKind::Config,
        OperationKind::Resources,
        OperationKind::Stop,
        OperationKind::Start,
        OperationKind::Certificates,
        OperationKind::Failover,
        OperationKind::Scale,
        OperationKind::Volume,
        OperationKind::Backup,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::Upgrade => "upgrade",
            OperationKind::Restart => "restart",
            OperationKind::Config => "config",
            OperationKind::Resources => "resources",
            OperationKind::Stop => "stop",
            OperationKind::Start => "start",
            OperationKind::Certificates => "certificates",
            OperationKind::Failover => "failover",
            OperationKind::Scale => "scale",
            OperationKind::Volume => "volume",
            OperationKind::Backup => "backup",
        }
    }
}

impl fmt::Display for OperationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stage of replacing a service's CA without a moment where two members, or a member and a
/// client holding the published CA bundle, distrust each other. Each stage is an operation of
/// its own (kind `certificates`) that restarts every member once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CaStage {
    /// A new CA is made and trusted next to the old one; certificates stay the old CA's.
    /// Clients then fetch the CA bundle again (it holds both).
    Add,
    /// Every member gets a certificate from the new CA, which signs from now on; the old one is
    /// still trusted.
    Switch,
    /// The old CA is no longer trusted.
    Drop,
}

impl CaStage {
    pub fn as_str(self) -> &'static str {
        match self {
            CaStage::Add => "add",
            CaStage::Switch => "switch",
            CaStage::Drop => "drop",
        }
    }
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "add" => Ok(CaStage::Add),
            "switch" => Ok(CaStage::Switch),
            "drop" => Ok(CaStage::Drop),
            _ => Err(format!("unknown CA stage {s:?}; allowed: add, switch, drop (in this order)")),
        }
    }
}

impl fmt::Display for CaStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /v1/services/{name}/operations`: what to change. Fields that do not belong to `kind`
/// are refused by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperationRequest {
    pub kind: Option<OperationKind>,
    /// `upgrade`: the catalog version to move to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `config`: service-level engine parameters to set (an empty value removes the key).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// `config`: per-member engine parameters, by member name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub member_config: BTreeMap<String, BTreeMap<String, String>>,
    /// `resources`: the new requests and limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// `scale`: the number of members to have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// `scale` of a Redis Cluster: the number of shards to have (each with as many members as
    /// the shards have now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u32>,
    /// `volume`: which volume grows, `data` (the default) or `journal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
    /// `volume`: the new size, larger than the current one (`20Gi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// `certificates`: a stage of a CA rotation; absent, new member certificates from the same CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<CaStage>,
    /// The order; the service's `updatePolicy`, else the engine's default, when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<UpdatePolicy>,
    /// How long one step may take before the operation fails (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_timeout_seconds: Option<u32>,
}

pub const DEFAULT_STEP_TIMEOUT_SECONDS: u32 = 300;

/// Pending → Running → Succeeded | Failed | Cancelled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum OperationPhase {
    #[default]
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl OperationPhase {
    pub fn is_terminal(self) -> bool {
        matches!(self, OperationPhase::Succeeded | OperationPhase::Failed | OperationPhase::Cancelled)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            OperationPhase::Pending => "Pending",
            OperationPhase::Running => "Running",
            OperationPhase::Succeeded => "Succeeded",
            OperationPhase::Failed => "Failed",
            OperationPhase::Cancelled => "Cancelled",
        }
    }
}

/// What one step does to one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StepAction {
    /// Restart the member (Kubernetes: delete its pod) and wait until it is ready on the new
    /// revision and back in the engine's membership.
    Restart,
    /// Make `to` the primary in place of `member` (PostgreSQL promote + re-point, Redis
    /// `CLUSTER FAILOVER` / `REPLICAOF`), and wait until the old primary follows it.
    Switchover,
    /// Apply new parameters without a restart (PostgreSQL `pg_reload_conf()`, Redis `CONFIG SET`).
    Reload,
    Stop,
    Start,
    /// Failover: `to` is the primary from now on in every member's files, so the lost primary
    /// `member` can only come back as its replica; its server is stopped (a hung one killed).
    Fence,
    /// Failover: `member` (the most advanced replica) promoted, the others re-pointed to it,
    /// the fenced member started again to rejoin it.
    Promote,
    /// Scale out: a new member made ready for the engine (PostgreSQL: its slot on the primary)
    /// before it exists, then started and waited for until it serves in the membership.
    Add,
    /// Scale in: the member stopped and taken out of the engine (PostgreSQL: its slot dropped),
    /// then its address, names and data removed.
    Remove,
    /// Redis Cluster scale out: slots (and their keys) moved from the other shards until the
    /// new shards from `member`'s up hold their share.
    Fill,
    /// Redis Cluster scale in: every slot (and its keys) of the shards from `member`'s up
    /// moved to the shards that stay, before their members are removed.
    Drain,
    /// The member's volume grown to the spec's size: done once its capacity is that size
    /// (Kubernetes: the PVC's `status.capacity`; the local runtime records the size).
    Resize,
    /// A base backup taken from `member` (a streaming replica, else the primary); done once
    /// the backup is complete, checked and recorded, and retention applied.
    Backup,
}

impl StepAction {
    pub fn as_str(self) -> &'static str {
        match self {
            StepAction::Restart => "restart",
            StepAction::Switchover => "switchover",
            StepAction::Reload => "reload",
            StepAction::Stop => "stop",
            StepAction::Start => "start",
            StepAction::Fence => "fence",
            StepAction::Promote => "promote",
            StepAction::Add => "add",
            StepAction::Remove => "remove",
            StepAction::Fill => "fill",
            StepAction::Drain => "drain",
            StepAction::Resize => "resize",
            StepAction::Backup => "backup",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationStep {
    pub action: StepAction,
    pub member: String,
    /// `switchover`: the member that becomes primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub phase: OperationPhase,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The incarnation of the member this step replaces (Kubernetes: the pod's uid), so a
    /// resumed step knows whether the restart already happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<String>,
    /// `add`: the engine is ready for the member (PostgreSQL: its slot on the primary), so it
    /// may be created; `remove`: the member is out of the engine and its volumes are deleted;
    /// `promote` (and a PostgreSQL `switchover`): the new primary's pod is labelled primary and
    /// the other replicas follow it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prepared: bool,
    /// `remove` of a ZooKeeper member: the ensemble no longer has it (`reconfig`), so its pod
    /// may go.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub left: bool,
}

impl OperationStep {
    pub fn new(action: StepAction, member: impl Into<String>) -> Self {
        OperationStep {
            action,
            member: member.into(),
            to: None,
            phase: OperationPhase::Pending,
            started: None,
            finished: None,
            message: None,
            replaced: None,
            prepared: false,
            left: false,
        }
    }
    pub fn describe(&self) -> String {
        match &self.to {
            Some(to) => format!("{} {} → {}", self.action.as_str(), self.member, to),
            None => format!("{} {}", self.action.as_str(), self.member),
        }
    }
}

/// One operation, as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// Unique within the service, sortable by creation (`op-<unix millis>`).
    pub id: String,
    pub kind: OperationKind,
    pub policy: UpdatePolicy,
    /// What the operation moves to, for display (`version 16.6`, `work_mem=8MB`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `certificates`: the CA rotation stage, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<CaStage>,
    pub phase: OperationPhase,
    pub steps: Vec<OperationStep>,
    pub step_timeout_seconds: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// RFC 3339.
    pub created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// Someone asked to cancel it: no further step starts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancel_requested: bool,
}

impl Operation {
    /// Steps done so far, for progress displays.
    pub fn done_steps(&self) -> usize {
        self.steps.iter().filter(|s| s.phase == OperationPhase::Succeeded).count()
    }
    /// Ends a cancelled operation: the steps not finished are Cancelled, and so is the operation.
    pub fn cancel(&mut self, now: &str) {
        let done = self.done_steps();
        for st in self.steps.iter_mut().filter(|st| !st.phase.is_terminal()) {
            st.phase = OperationPhase::Cancelled;
            st.finished = Some(now.to_string());
        }
        self.phase = OperationPhase::Cancelled;
        self.finished = Some(now.to_string());
        self.message = Some(format!(
            "cancelled on request after {done} of {} steps; the spec stays as requested, members not restarted keep running the previous one until their next restart",
            self.steps.len()
        ));
    }

    /// The step under way or next, if any.
    pub fn current_step(&self) -> Option<usize> {
        self.steps.iter().position(|s| !s.phase.is_terminal())
    }
}

/// `GET /v1/services/{name}/operations`, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OperationList {
    pub items: Vec<Operation>,
}

/// A member as the planner sees it: its engine role at the start of the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRole {
    pub member: String,
    /// Primary or leader (the member writes go to).
    pub primary: bool,
    /// The Redis Cluster shard; `None` for engines with one primary.
    pub shard: Option<u32>,
}

/// The ordered steps of an operation that restarts members. `PrimaryFirst`: primaries, then
/// the others, by index. `PrimaryLast`: the others first, then for each primary a switchover to
/// an already-updated replica of its shard (when the engine has one and such a replica exists)
/// followed by the old primary's restart. `members` are in index order.
pub fn restart_steps(members: &[MemberRole], policy: UpdatePolicy, switchover: bool, action: StepAction) -> Vec<OperationStep> {
    let primaries: Vec<&MemberRole> = members.iter().filter(|m| m.primary).collect();
    let others: Vec<&MemberRole> = members.iter().filter(|m| !m.primary).collect();
    let mut steps = Vec::new();
    match policy {
        UpdatePolicy::PrimaryFirst => {
            steps.extend(primaries.iter().map(|m| OperationStep::new(action, &m.member)));
            steps.extend(others.iter().map(|m| OperationStep::new(action, &m.member)));
        }
        UpdatePolicy::PrimaryLast => {
            steps.extend(others.iter().map(|m| OperationStep::new(action, &m.member)));
            for p in primaries {
                let heir = others.iter().find(|o| o.shard == p.shard);
                if let (true, Some(heir)) = (switchover, heir) {
                    let mut s = OperationStep::new(StepAction::Switchover, &p.member);
                    s.to = Some(heir.member.clone());
                    steps.push(s);
                }
                steps.push(OperationStep::new(action, &p.member));
            }
        }
    }
    steps
}

/// Stop: the others first, primaries last (no write is acknowledged by a primary whose
/// replicas are already gone without it being the last one standing). Start: primaries first.
pub fn stop_start_steps(members: &[MemberRole], action: StepAction) -> Vec<OperationStep> {
    let policy = if action == StepAction::Start { UpdatePolicy::PrimaryFirst } else { UpdatePolicy::PrimaryLast };
    restart_steps(members, policy, false, action)
}

/// The steps of a scale from the members now (`members`, index order) to `to` members. Out:
/// one `add` per new member, lowest index first. In: the highest members removed first; when
/// the primary is among them, a switchover to the lowest remaining member comes before.
pub fn scale_steps(service: &str, members: &[MemberRole], to: usize) -> Vec<OperationStep> {
    let mut steps = Vec::new();
    if to >= members.len() {
        steps.extend((members.len()..to).map(|i| OperationStep::new(StepAction::Add, format!("{service}-{i}"))));
        return steps;
    }
    let (kept, removed) = members.split_at(to.max(1));
    if let (Some(p), Some(heir)) = (removed.iter().find(|m| m.primary), kept.first()) {
        let mut s = OperationStep::new(StepAction::Switchover, &p.member);
        s.to = Some(heir.member.clone());
        steps.push(s);
    }
    steps.extend(removed.iter().rev().map(|m| OperationStep::new(StepAction::Remove, &m.member)));
    steps
}

/// The steps of a Redis Cluster scale from the members now (index order, shards of
/// `per_shard` consecutive members) to `to_shards` shards. Out: every new member added (the
/// first of a shard joins as its primary, the others as its replicas), then one `fill` that
/// moves the new shards' share of slots to them. In: one `drain` that moves every slot of the
/// leaving shards to the others, then their members removed, highest first. No switchover: a
/// drained primary holds nothing to hand over.
pub fn shard_scale_steps(service: &str, members: &[MemberRole], per_shard: usize, to_shards: usize) -> Vec<OperationStep> {
    let to = to_shards * per_shard;
    let first_moved = format!("{service}-{}", to.min(members.len()));
    if to >= members.len() {
        let mut steps: Vec<OperationStep> = (members.len()..to).map(|i| OperationStep::new(StepAction::Add, format!("{service}-{i}"))).collect();
        if !steps.is_empty() {
            steps.push(OperationStep::new(StepAction::Fill, first_moved));
        }
        return steps;
    }
    let mut steps = vec![OperationStep::new(StepAction::Drain, first_moved)];
    steps.extend(members[to..].iter().rev().map(|m| OperationStep::new(StepAction::Remove, &m.member)));
    steps
}

#[cfg(test)]
mod tests {
    /// Issue #19: the policy in the spellings users type; stored and shown in PascalCase.
    #[test]
    fn policies_are_accepted_in_the_usual_spellings() {
        for s in ["PrimaryLast", "primary-last", "primarylast", "PRIMARY_LAST"] {
            assert_eq!(UpdatePolicy::parse(s), Ok(UpdatePolicy::PrimaryLast), "{s}");
        }
        assert_eq!(UpdatePolicy::parse("primary-first"), Ok(UpdatePolicy::PrimaryFirst));
        assert!(UpdatePolicy::parse("last").unwrap_err().contains("allowed: PrimaryFirst, PrimaryLast"));
        for s in ["\"PrimaryLast\"", "\"primary-last\"", "\"primarylast\""] {
            assert_eq!(serde_json::from_str::<UpdatePolicy>(s).unwrap(), UpdatePolicy::PrimaryLast, "{s}");
        }
        assert_eq!(serde_json::to_string(&UpdatePolicy::PrimaryLast).unwrap(), "\"PrimaryLast\"");
    }

    use super::*;

    fn m(name: &str, primary: bool, shard: Option<u32>) -> MemberRole {
        MemberRole { member: name.into(), primary, shard }
    }
    fn line(steps: &[OperationStep]) -> Vec<String> {
        steps.iter().map(|s| s.describe()).collect()
    }

    #[test]
    fn primary_last_updates_replicas_then_switches_over_then_the_old_primary() {
        let members = [m("pg-0", false, None), m("pg-1", true, None), m("pg-2", false, None)];
        let got = restart_steps(&members, UpdatePolicy::PrimaryLast, true, StepAction::Restart);
        assert_eq!(line(&got), ["restart pg-0", "restart pg-2", "switchover pg-1 → pg-0", "restart pg-1"]);
    }

    #[test]
    fn primary_first_restarts_the_primary_first_and_never_switches_over() {
        let members = [m("pg-0", false, None), m("pg-1", true, None), m("pg-2", false, None)];
        let got = restart_steps(&members, UpdatePolicy::PrimaryFirst, true, StepAction::Restart);
        assert_eq!(line(&got), ["restart pg-1", "restart pg-0", "restart pg-2"]);
    }

    #[test]
    fn an_engine_without_switchover_puts_the_leader_last() {
        let members = [m("zk-0", true, None), m("zk-1", false, None), m("zk-2", false, None)];
        let got = restart_steps(&members, UpdatePolicy::PrimaryLast, false, StepAction::Restart);
        assert_eq!(line(&got), ["restart zk-1", "restart zk-2", "restart zk-0"]);
    }

    #[test]
    fn redis_cluster_switches_each_shard_to_a_replica_of_the_same_shard() {
        let members = [m("r-0", true, Some(0)), m("r-1", true, Some(1)), m("r-2", false, Some(1)), m("r-3", false, Some(0))];
        let got = restart_steps(&members, UpdatePolicy::PrimaryLast, true, StepAction::Restart);
        assert_eq!(line(&got), ["restart r-2", "restart r-3", "switchover r-0 → r-3", "restart r-0", "switchover r-1 → r-2", "restart r-1"]);
    }

    #[test]
    fn a_lone_primary_is_restarted_without_switchover() {
        let got = restart_steps(&[m("pg-0", true, None)], UpdatePolicy::PrimaryLast, true, StepAction::Restart);
        assert_eq!(line(&got), ["restart pg-0"]);
    }

    #[test]
    fn stop_takes_the_primary_last_and_start_first() {
        let members = [m("pg-0", true, None), m("pg-1", false, None)];
        assert_eq!(line(&stop_start_steps(&members, StepAction::Stop)), ["stop pg-1", "stop pg-0"]);
        assert_eq!(line(&stop_start_steps(&members, StepAction::Start)), ["start pg-0", "start pg-1"]);
    }

    #[test]
    fn scale_out_adds_the_next_members_in_order() {
        let members = [m("pg-0", true, None), m("pg-1", false, None), m("pg-2", false, None)];
        assert_eq!(line(&scale_steps("pg", &members, 5)), ["add pg-3", "add pg-4"]);
    }

    #[test]
    fn scale_in_removes_the_highest_members_and_never_the_primary_before_a_switchover() {
        let members = [m("pg-0", false, None), m("pg-1", false, None), m("pg-2", false, None), m("pg-3", true, None), m("pg-4", false, None)];
        assert_eq!(line(&scale_steps("pg", &members, 2)), ["switchover pg-3 → pg-0", "remove pg-4", "remove pg-3", "remove pg-2"]);
        let members = [m("pg-0", true, None), m("pg-1", false, None), m("pg-2", false, None)];
        assert_eq!(line(&scale_steps("pg", &members, 1)), ["remove pg-2", "remove pg-1"]);
    }

    #[test]
    fn requests_refuse_unknown_fields_by_name() {
        let err = serde_json::from_str::<OperationRequest>(r#"{"kind":"upgrade","versoin":"16"}"#).unwrap_err().to_string();
        assert!(err.contains("versoin"), "{err}");
    }

    #[test]
    fn shards_are_added_then_filled_and_drained_then_removed() {
        let members: Vec<MemberRole> = (0..6).map(|i| m(&format!("rd-{i}"), i % 2 == 0, Some(i / 2))).collect();
        assert_eq!(line(&shard_scale_steps("rd", &members, 2, 4)), ["add rd-6", "add rd-7", "fill rd-6"]);
        assert_eq!(line(&shard_scale_steps("rd", &members, 2, 3)), Vec::<String>::new());
        let eight: Vec<MemberRole> = (0..10).map(|i| m(&format!("rd-{i}"), i % 2 == 1, Some(i / 2))).collect();
        assert_eq!(line(&shard_scale_steps("rd", &eight, 2, 3)), ["drain rd-6", "remove rd-9", "remove rd-8", "remove rd-7", "remove rd-6"]);
    }
}
