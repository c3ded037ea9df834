//! The operation state machine on Kubernetes, pure: given the operation as recorded and what
//! the controller sees of the members now, advance it and say what to do. One step acts at a
//! time; a step is done only when the member is back — a new pod (another uid) on the
//! StatefulSet's update revision, Ready, and known to the engine again (it has a role) — and a
//! step that takes longer than the operation's step timeout fails the operation, touching
//! nothing else.

use std::collections::BTreeMap;

use firecamp_api::Role;
use firecamp_core::operation::{Operation, OperationPhase, StepAction};

/// A member as the controller sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberView {
    /// The pod's uid, when the member has a pod.
    pub pod_uid: Option<String>,
    /// The pod is being deleted.
    pub terminating: bool,
    /// The pod's `controller-revision-hash`.
    pub revision: Option<String>,
    pub ready: bool,
    /// The engine's view (Unknown until the member is back in its membership).
    pub role: Role,
    /// Why the pod is not running, when the scheduler or kubelet says.
    pub waiting: Option<String>,
    /// A volume operation: whether every volume of the member has the spec's size as its
    /// capacity, or why not yet (None: not looked at).
    pub volume: Option<Result<(), String>>,
    /// A scale: whether the engine's part of this member's step is done (a Redis Cluster's
    /// `add`: met by the cluster and replicating its shard's primary; its `fill` or `drain`: the
    /// slots moved; a ZooKeeper `add`: in the ensemble), or why not yet (None: not looked at).
    pub cluster: Option<Result<(), String>>,
    /// A backup: whether the step's Job has taken it, or why not yet (None: not looked at).
    pub backup: Option<Result<(), String>>,
}

/// What the controller must do after [`advance`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Delete this pod (uid precondition: never a newer one).
    DeletePod { member: String, uid: String },
    /// Make `to` the primary in place of `from` (whose pod, when the step began, was `uid`).
    Switchover { from: String, to: String, uid: Option<String> },
    /// Failover, first step: `heir` is the primary in the status and every member's files; the
    /// lost primary's pod (`uid` when the step began) is relabelled and deleted.
    Fence { lost: String, heir: String, uid: Option<String> },
    /// Failover, second step: `heir` promoted, the replicas other than `lost` following it.
    Promote { heir: String, lost: String },
    /// A switchover to `primary` is done: the members' files name it as the primary from now
    /// on (before any further step restarts a member with them), and the other replicas
    /// follow it.
    FollowPrimary { primary: String, old: String },
    /// Scale out: make the engine ready for `member` (PostgreSQL: its slot on the primary);
    /// once done the step is `prepared` and the member is created.
    Prepare { member: String },
    /// Scale in: `member`'s pod is gone; drop what the engine kept for it (its slot, its node
    /// in a Redis Cluster) and delete its PVCs; once done the step is `prepared` and ends.
    Forget { member: String },
    /// Scale out, `member`'s pod Ready: it joins the engine's membership (a Redis Cluster meets
    /// it and, unless it is its shard's first member, it replicates that one; a ZooKeeper
    /// ensemble adds it with `reconfig`).
    Join { member: String },
    /// ZooKeeper scale in: the ensemble drops `member` (`reconfig`) while its pod still runs;
    /// once done the step is `left` and the pod goes.
    Leave { member: String },
    /// Redis Cluster `fill` or `drain` from `member` on: the slots move in a Job, run once per
    /// step (`key`: operation and step).
    MoveSlots { member: String, drain: bool, key: String },
    /// A base backup of `member` into the cluster's bucket, in a Job run once per step (`key`:
    /// operation and step).
    TakeBackup { member: String, key: String },
}

/// What the controller knows besides the members.
pub struct Observed<'a> {
    pub members: &'a BTreeMap<String, MemberView>,
    /// The StatefulSet's `status.updateRevision`.
    pub update_revision: Option<&'a str>,
    /// The StatefulSet controller has seen the latest template (`observedGeneration`): until
    /// then a deleted pod could come back on the old revision, so no restart starts.
    pub statefulset_current: bool,
    /// Seconds since the Unix epoch, and the same instant as RFC 3339.
    pub now: i64,
    pub now_text: &'a str,
    /// A switchover still running is acted on again until its target is the primary: it is
    /// run by steps that each check what is done (PostgreSQL's), and may have been interrupted.
    pub repeat_switchover: bool,
    /// The primary the status records (`status.primary`).
    pub primary: Option<&'a str>,
    /// A new member needs the engine prepared before it exists (PostgreSQL's slot, made from
    /// the manage service); otherwise an `add` is prepared as it starts.
    pub prepare_adds: bool,
    /// Roles from the engines of a Redis Cluster or a ZooKeeper ensemble: new members join the
    /// engine's membership before their `add` is done.
    pub joins: bool,
    /// A ZooKeeper ensemble: a member leaves it (`reconfig`) before its pod goes.
    pub leaves: bool,
}

fn is_primary(r: Role) -> bool {
    matches!(r, Role::Primary | Role::Leader)
}

fn parse_time(s: &Option<String>) -> Option<i64> {
    s.as_deref().and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok()).map(|t| t.as_second())
}

/// Whether a running step is done, or why not yet.
fn done(step: &firecamp_core::operation::OperationStep, o: &Observed) -> Result<(), String> {
    let none = MemberView::default();
    let m = o.members.get(&step.member).unwrap_or(&none);
    match step.action {
        StepAction::Restart | StepAction::Reload => {
            let Some(uid) = &m.pod_uid else {
                return Err(m.waiting.clone().unwrap_or_else(|| "no pod yet".into()));
            };
            if step.replaced.as_ref() == Some(uid) {
                return Err("the old pod is still there".into());
            }
            if let (Some(want), Some(have)) = (o.update_revision, m.revision.as_deref())
                && want != have
            {
                return Err(format!("the pod runs revision {have}, not {want}"));
            }
            if !m.ready {
                return Err(m.waiting.clone().map(|w| format!("not Ready: {w}")).unwrap_or_else(|| "not Ready".into()));
            }
            if m.role == Role::Unknown {
                return Err("not back in the engine's membership (no role)".into());
            }
            Ok(())
        }
        StepAction::Switchover => {
            let to = step.to.as_deref().and_then(|t| o.members.get(t)).map(|v| v.role).unwrap_or_default();
            if is_primary(to) && o.repeat_switchover && !step.prepared {
                // As for a failover's promotion: promoted is not enough, the new primary's
                // slots, its label and the other replicas' re-pointing come after it.
                Err(format!("{} is promoted; its slots, label and the other replicas' re-pointing are not done yet", step.to.as_deref().unwrap_or("?")))
            } else if is_primary(to) && !is_primary(m.role) && m.role != Role::Unknown {
                Ok(())
            } else {
                Err(format!("{} is {}, {} is {}", step.to.as_deref().unwrap_or("?"), to.as_str(), step.member, m.role.as_str()))
            }
        }
        StepAction::Stop => {
            if m.pod_uid.is_none() {
                Ok(())
            } else {
                Err("the pod is still there".into())
            }
        }
        StepAction::Start => {
            if m.ready {
                Ok(())
            } else {
                Err(m.waiting.clone().unwrap_or_else(|| "not Ready".into()))
            }
        }
        StepAction::Fence => {
            if o.primary.is_some() && o.primary == step.to.as_deref() {
                Ok(())
            } else {
                Err(format!("{} is not recorded as the primary yet", step.to.as_deref().unwrap_or("?")))
            }
        }
        StepAction::Promote if !is_primary(m.role) => Err(format!("{} is {}", step.member, m.role.as_str())),
        // Promoted in its engine is not enough: a manage service stopped between the promotion
        // and the re-pointing would leave the other replicas following the lost primary.
        StepAction::Promote if !step.prepared => Err(format!("{} is promoted; its label and the other replicas' re-pointing are not done yet", step.member)),
        StepAction::Promote => Ok(()),
        StepAction::Resize => m.volume.clone().unwrap_or_else(|| Err("its volumes were not looked at".into())),
        StepAction::Backup => m.backup.clone().unwrap_or_else(|| Err("the backup Job was not looked at".into())),
        StepAction::Add if !step.prepared => Err("waiting for the engine to be ready for it".into()),
        StepAction::Add => match &m.pod_uid {
            None => Err(m.waiting.clone().unwrap_or_else(|| "no pod yet".into())),
            Some(_) if !m.ready => Err(m.waiting.clone().map(|w| format!("not Ready: {w}")).unwrap_or_else(|| "not Ready".into())),
            Some(_) if m.role == Role::Unknown => Err("not in the engine's membership yet (no role)".into()),
            Some(_) if o.joins => m.cluster.clone().unwrap_or_else(|| Err("not in the engine's membership yet".into())),
            Some(_) => Ok(()),
        },
        StepAction::Remove if o.leaves && !step.left => Err("still in the ensemble".into()),
        StepAction::Remove if m.pod_uid.is_some() => Err("its pod is still there".into()),
        StepAction::Remove if !step.prepared => Err("its slot and volumes are not gone yet".into()),
        StepAction::Remove => Ok(()),
        StepAction::Fill | StepAction::Drain => m.cluster.clone().unwrap_or_else(|| Err("the slots' move was not looked at".into())),
    }
}

/// Advances `op` as far as the observation allows and returns what to do now. The caller
/// records the operation *before* acting, so an effect is never lost, and repeats an effect
/// whose step is still running with the old pod in place (the delete did not happen).
pub fn advance(op: &mut Operation, o: &Observed) -> Vec<Effect> {
    if op.phase.is_terminal() {
        return Vec::new();
    }
    op.phase = OperationPhase::Running;
    let timeout = i64::from(op.step_timeout_seconds);
    loop {
        // Cancelled on request: on Kubernetes at once, even mid-step (a pod already deleted comes
        // back on its own; nothing is half done by stopping to wait for it).
        if op.cancel_requested {
            op.cancel(o.now_text);
            return Vec::new();
        }
        let Some(i) = op.current_step() else {
            op.phase = OperationPhase::Succeeded;
            op.finished = Some(o.now_text.to_string());
            op.message = None;
            return Vec::new();
        };
        let total = op.steps.len();
        // The pod of this step's member that a finished switchover replaced, if one did.
        let switched_pod = op.steps[..i]
            .iter()
            .rev()
            .find(|s| s.action == StepAction::Switchover && s.member == op.steps[i].member && s.phase == OperationPhase::Succeeded)
            .and_then(|s| s.replaced.clone());
        // A failover's lost primary (its fence step's member), for its promote step.
        let lost_primary = op.steps[..i].iter().rev().find(|s| s.action == StepAction::Fence).map(|s| s.member.clone());
        let step = &mut op.steps[i];
        match step.phase {
            OperationPhase::Pending => {
                if matches!(step.action, StepAction::Restart | StepAction::Reload) && !o.statefulset_current {
                    op.message = Some("waiting for the StatefulSet controller to see the new template".into());
                    return Vec::new();
                }
                step.phase = OperationPhase::Running;
                step.started = Some(o.now_text.to_string());
                let m = o.members.get(&step.member).cloned().unwrap_or_default();
                let effect = match step.action {
                    // The switchover before it already replaced this member's pod (PostgreSQL's
                    // stops the old primary): that new pod is the restart.
                    StepAction::Restart if switched_pod.is_some() && m.pod_uid.is_some() && m.pod_uid != switched_pod => {
                        step.replaced = switched_pod;
                        None
                    }
                    StepAction::Restart | StepAction::Reload => {
                        step.replaced = m.pod_uid.clone();
                        m.pod_uid.map(|uid| Effect::DeletePod { member: step.member.clone(), uid })
                    }
                    StepAction::Switchover => {
                        step.replaced = m.pod_uid.clone();
                        Some(Effect::Switchover { from: step.member.clone(), to: step.to.clone().unwrap_or_default(), uid: m.pod_uid })
                    }
                    StepAction::Fence => {
                        step.replaced = m.pod_uid.clone();
                        Some(Effect::Fence { lost: step.member.clone(), heir: step.to.clone().unwrap_or_default(), uid: m.pod_uid })
                    }
                    StepAction::Promote => Some(Effect::Promote { heir: step.member.clone(), lost: lost_primary.clone().unwrap_or_default() }),
                    StepAction::Add if o.prepare_adds => Some(Effect::Prepare { member: step.member.clone() }),
                    StepAction::Add => {
                        step.prepared = true;
                        None
                    }
                    StepAction::Fill | StepAction::Drain => Some(move_slots(&op.id, i, step)),
                    StepAction::Backup => Some(take_backup(&op.id, i, step)),
                    StepAction::Remove if o.leaves => Some(Effect::Leave { member: step.member.clone() }),
                    // A resize was asked by the reconcile pass that applied the PVCs' new size;
                    // a removal starts with the next pass, whose size leaves the member out.
                    StepAction::Stop | StepAction::Start | StepAction::Remove | StepAction::Resize => None,
                };
                op.message = Some(format!("step {}/{total}: {}", i + 1, op.steps[i].describe()));
                return effect.into_iter().collect();
            }
            _ => match done(step, o) {
                Ok(()) => {
                    step.phase = OperationPhase::Succeeded;
                    step.finished = Some(o.now_text.to_string());
                    step.message = None;
                    // The next step waits for the next pass: by then the members' files name
                    // the new primary (a restarted old primary must come back as a replica).
                    if step.action == StepAction::Switchover {
                        let (primary, old) = (step.to.clone().unwrap_or_default(), step.member.clone());
                        op.message = Some(format!("{primary} is the primary now"));
                        return vec![Effect::FollowPrimary { primary, old }];
                    }
                }
                Err(why) => {
                    let waited = parse_time(&step.started).map(|s| o.now - s).unwrap_or(0);
                    if waited > timeout {
                        let reason = format!("step {}/{total} ({}) did not finish in {timeout} s: {why}", i + 1, step.describe());
                        step.phase = OperationPhase::Failed;
                        step.finished = Some(o.now_text.to_string());
                        step.message = Some(why);
                        op.phase = OperationPhase::Failed;
                        op.finished = Some(o.now_text.to_string());
                        op.message = Some(reason);
                        return Vec::new();
                    }
                    step.message = Some(why);
                    let m = o.members.get(&step.member);
                    // A failover's steps are acted on until done (each checks what is done).
                    match step.action {
                        StepAction::Fence => {
                            return vec![Effect::Fence { lost: step.member.clone(), heir: step.to.clone().unwrap_or_default(), uid: step.replaced.clone() }];
                        }
                        StepAction::Promote => return vec![Effect::Promote { heir: step.member.clone(), lost: lost_primary.unwrap_or_default() }],
                        StepAction::Add if !step.prepared => return vec![Effect::Prepare { member: step.member.clone() }],
                        StepAction::Add if o.joins && m.is_some_and(|m| m.ready && m.role != Role::Unknown) => {
                            return vec![Effect::Join { member: step.member.clone() }];
                        }
                        StepAction::Fill | StepAction::Drain => return vec![move_slots(&op.id, i, step)],
                        StepAction::Backup => return vec![take_backup(&op.id, i, step)],
                        StepAction::Remove if o.leaves && !step.left => return vec![Effect::Leave { member: step.member.clone() }],
                        StepAction::Remove if !step.prepared && m.is_none_or(|m| m.pod_uid.is_none()) => {
                            return vec![Effect::Forget { member: step.member.clone() }];
                        }
                        _ => {}
                    }
                    if step.action == StepAction::Switchover && o.repeat_switchover {
                        let to = step.to.clone().unwrap_or_default();
                        if !o.members.get(&to).is_some_and(|v| is_primary(v.role)) || !step.prepared {
                            return vec![Effect::Switchover { from: step.member.clone(), to, uid: step.replaced.clone() }];
                        }
                    }
                    // The step started but its pod is untouched: the delete was lost (a restart
                    // of the manage service between recording and acting); do it now.
                    if matches!(step.action, StepAction::Restart | StepAction::Reload)
                        && let (Some(uid), Some(m)) = (&step.replaced, m)
                        && m.pod_uid.as_ref() == Some(uid)
                        && !m.terminating
                    {
                        return vec![Effect::DeletePod { member: step.member.clone(), uid: uid.clone() }];
                    }
                    return Vec::new();
                }
            },
        }
    }
}

fn move_slots(op: &str, i: usize, step: &firecamp_core::operation::OperationStep) -> Effect {
    Effect::MoveSlots { member: step.member.clone(), drain: step.action == StepAction::Drain, key: format!("{op}/{i}") }
}

/// Fails the operation at its current step, for a reason found while acting on it (an engine
/// that refused a switchover); nothing else is touched.
pub fn fail_current_step(op: &mut Operation, reason: &str, now_text: &str) {
    let Some(i) = op.current_step() else { return };
    let total = op.steps.len();
    let step = &mut op.steps[i];
    step.phase = OperationPhase::Failed;
    step.finished = Some(now_text.to_string());
    step.message = Some(reason.to_string());
    op.message = Some(format!("step {}/{total} ({}) failed: {reason}", i + 1, step.describe()));
    op.phase = OperationPhase::Failed;
    op.finished = Some(now_text.to_string());
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;

fn take_backup(op: &str, i: usize, step: &firecamp_core::operation::OperationStep) -> Effect {
    Effect::TakeBackup { member: step.member.clone(), key: format!("{op}/{i}") }
}
