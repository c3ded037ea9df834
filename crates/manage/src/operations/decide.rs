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
    /// A Redis Cluster scale: whether the engine's part of this member's step is done (an
    /// `add`: met by the cluster and replicating its shard's primary; a `fill` or `drain`: the
    /// slots moved), or why not yet (None: not looked at).
    pub cluster: Option<Result<(), String>>,
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
    /// Redis Cluster scale out: `member`'s pod is Ready; the cluster meets it and, unless it is
    /// its shard's first member, it replicates that one.
    Join { member: String },
    /// Redis Cluster `fill` or `drain` from `member` on: the slots move in a Job, run once per
    /// step (`key`: operation and step).
    MoveSlots { member: String, drain: bool, key: String },
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
    /// A Redis Cluster with roles from its engines: new members join the cluster before their
    /// `add` is done.
    pub joins: bool,
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
            if is_primary(to) && !is_primary(m.role) && m.role != Role::Unknown {
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
        StepAction::Promote => {
            if is_primary(m.role) {
                Ok(())
            } else {
                Err(format!("{} is {}", step.member, m.role.as_str()))
            }
        }
        StepAction::Resize => m.volume.clone().unwrap_or_else(|| Err("its volumes were not looked at".into())),
        StepAction::Add if !step.prepared => Err("waiting for the engine to be ready for it".into()),
        StepAction::Add => match &m.pod_uid {
            None => Err(m.waiting.clone().unwrap_or_else(|| "no pod yet".into())),
            Some(_) if !m.ready => Err(m.waiting.clone().map(|w| format!("not Ready: {w}")).unwrap_or_else(|| "not Ready".into())),
            Some(_) if m.role == Role::Unknown => Err("not in the engine's membership yet (no role)".into()),
            Some(_) if o.joins => m.cluster.clone().unwrap_or_else(|| Err("not met by the cluster yet".into())),
            Some(_) => Ok(()),
        },
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
                        StepAction::Remove if !step.prepared && m.is_none_or(|m| m.pod_uid.is_none()) => {
                            return vec![Effect::Forget { member: step.member.clone() }];
                        }
                        _ => {}
                    }
                    if step.action == StepAction::Switchover && o.repeat_switchover {
                        let to = step.to.clone().unwrap_or_default();
                        if !o.members.get(&to).is_some_and(|v| is_primary(v.role)) {
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
mod tests {
    use super::*;
    use firecamp_core::operation::{OperationKind, OperationStep, UpdatePolicy};

    fn op(steps: Vec<OperationStep>) -> Operation {
        Operation {
            id: "op-1".into(),
            kind: OperationKind::Upgrade,
            policy: UpdatePolicy::PrimaryLast,
            target: None,
            ca: None,
            phase: OperationPhase::Pending,
            steps,
            step_timeout_seconds: 60,
            message: None,
            created: "2026-01-01T00:00:00Z".into(),
            finished: None,
            cancel_requested: false,
        }
    }
    fn view(uid: &str, rev: &str, ready: bool, role: Role) -> MemberView {
        MemberView { pod_uid: Some(uid.into()), revision: Some(rev.into()), ready, role, ..Default::default() }
    }
    fn obs<'a>(members: &'a BTreeMap<String, MemberView>, now: i64) -> Observed<'a> {
        Observed {
            members,
            update_revision: Some("new"),
            statefulset_current: true,
            now,
            now_text: "2026-01-01T00:00:00Z",
            repeat_switchover: false,
            primary: None,
            prepare_adds: false,
            joins: false,
        }
    }
    fn repeat(members: &BTreeMap<String, MemberView>, now: i64) -> Observed<'_> {
        Observed { repeat_switchover: true, ..obs(members, now) }
    }
    fn restart(m: &str) -> OperationStep {
        OperationStep::new(StepAction::Restart, m)
    }

    #[test]
    fn one_step_at_a_time_and_the_next_only_when_the_member_is_back_on_the_new_revision() {
        let mut o = op(vec![restart("pg-1"), restart("pg-0")]);
        let mut members = BTreeMap::from([("pg-0".to_string(), view("a", "old", true, Role::Primary)), ("pg-1".into(), view("b", "old", true, Role::Replica))]);
        assert_eq!(advance(&mut o, &obs(&members, 0)), vec![Effect::DeletePod { member: "pg-1".into(), uid: "b".into() }]);
        assert_eq!(o.steps[0].replaced.as_deref(), Some("b"));
        // The new pod exists but is not Ready: wait, touch nothing else.
        members.insert("pg-1".into(), view("c", "new", false, Role::Unknown));
        assert_eq!(advance(&mut o, &obs(&members, 10)), vec![]);
        assert_eq!(o.steps[0].phase, OperationPhase::Running);
        // Ready but the engine does not know it yet.
        members.insert("pg-1".into(), view("c", "new", true, Role::Unknown));
        assert_eq!(advance(&mut o, &obs(&members, 10)), vec![]);
        // Back: the next step starts in the same pass.
        members.insert("pg-1".into(), view("c", "new", true, Role::Replica));
        assert_eq!(advance(&mut o, &obs(&members, 10)), vec![Effect::DeletePod { member: "pg-0".into(), uid: "a".into() }]);
        members.insert("pg-0".into(), view("d", "new", true, Role::Primary));
        assert_eq!(advance(&mut o, &obs(&members, 20)), vec![]);
        assert_eq!(o.phase, OperationPhase::Succeeded);
    }

    #[test]
    fn a_member_that_does_not_come_back_fails_the_operation_at_its_step() {
        let mut o = op(vec![restart("pg-1"), restart("pg-0")]);
        let mut members = BTreeMap::from([("pg-0".to_string(), view("a", "old", true, Role::Primary)), ("pg-1".into(), view("b", "old", true, Role::Replica))]);
        advance(&mut o, &obs(&members, 0));
        members.insert("pg-1".into(), MemberView { waiting: Some("0/3 nodes are available".into()), ..Default::default() });
        o.steps[0].started = Some("2026-01-01T00:00:00Z".into());
        assert_eq!(advance(&mut o, &obs(&members, 1_767_225_600 + 61)), vec![]);
        assert_eq!(o.phase, OperationPhase::Failed);
        assert!(o.message.as_deref().unwrap().contains("restart pg-1") && o.message.as_deref().unwrap().contains("0/3 nodes"), "{:?}", o.message);
        assert_eq!(o.steps[1].phase, OperationPhase::Pending, "nothing else touched");
    }

    #[test]
    fn no_restart_starts_before_the_statefulset_controller_saw_the_template() {
        let mut o = op(vec![restart("pg-1")]);
        let members = BTreeMap::from([("pg-1".to_string(), view("b", "old", true, Role::Replica))]);
        let stale = Observed { statefulset_current: false, ..obs(&members, 0) };
        assert_eq!(advance(&mut o, &stale), vec![]);
        assert_eq!(o.steps[0].phase, OperationPhase::Pending);
        assert_eq!(advance(&mut o, &obs(&members, 1)).len(), 1);
    }

    #[test]
    fn a_lost_delete_is_repeated_and_a_done_restart_is_not() {
        let mut o = op(vec![restart("pg-1")]);
        let members = BTreeMap::from([("pg-1".to_string(), view("b", "old", true, Role::Replica))]);
        advance(&mut o, &obs(&members, 0));
        // Resumed with the old pod still there and not terminating: delete it again.
        assert_eq!(advance(&mut o, &obs(&members, 5)), vec![Effect::DeletePod { member: "pg-1".into(), uid: "b".into() }]);
        let back = BTreeMap::from([("pg-1".to_string(), view("c", "new", true, Role::Replica))]);
        assert_eq!(advance(&mut o, &obs(&back, 6)), vec![]);
        assert_eq!(o.phase, OperationPhase::Succeeded);
        assert_eq!(advance(&mut o, &obs(&back, 7)), vec![], "a finished operation does nothing");
    }

    #[test]
    fn a_cancel_stops_the_operation_where_it_is() {
        let mut o = op(vec![restart("pg-1"), restart("pg-0")]);
        let members = BTreeMap::from([("pg-0".to_string(), view("a", "old", true, Role::Primary)), ("pg-1".into(), view("b", "old", true, Role::Replica))]);
        advance(&mut o, &obs(&members, 0));
        o.cancel_requested = true;
        assert_eq!(advance(&mut o, &obs(&members, 1)), vec![], "no further pod deleted");
        assert_eq!(o.phase, OperationPhase::Cancelled);
        assert!(o.steps.iter().all(|s| s.phase == OperationPhase::Cancelled));
        assert!(o.message.as_deref().unwrap().contains("after 0 of 2 steps"), "{:?}", o.message);
    }

    #[test]
    fn a_switchover_is_done_when_the_roles_have_swapped_and_the_old_primary_restarts_a_pass_later() {
        let mut s = OperationStep::new(StepAction::Switchover, "pg-0");
        s.to = Some("pg-1".into());
        let mut o = op(vec![s, restart("pg-0")]);
        let mut members = BTreeMap::from([("pg-0".to_string(), view("a", "old", true, Role::Primary)), ("pg-1".into(), view("b", "new", true, Role::Replica))]);
        assert_eq!(advance(&mut o, &obs(&members, 0)), vec![Effect::Switchover { from: "pg-0".into(), to: "pg-1".into(), uid: Some("a".into()) }]);
        assert_eq!(advance(&mut o, &obs(&members, 1)), vec![], "not swapped yet");
        members.insert("pg-0".into(), view("a", "old", true, Role::Replica));
        members.insert("pg-1".into(), view("b", "new", true, Role::Primary));
        // Swapped: the files follow the new primary first; the old primary's pod is untouched.
        assert_eq!(advance(&mut o, &obs(&members, 2)), vec![Effect::FollowPrimary { primary: "pg-1".into(), old: "pg-0".into() }]);
        assert_eq!((o.steps[0].phase, o.steps[1].phase), (OperationPhase::Succeeded, OperationPhase::Pending));
        assert_eq!(advance(&mut o, &obs(&members, 3)), vec![Effect::DeletePod { member: "pg-0".into(), uid: "a".into() }]);
        members.insert("pg-0".into(), view("c", "new", true, Role::Replica));
        advance(&mut o, &obs(&members, 4));
        assert_eq!(o.phase, OperationPhase::Succeeded);
    }

    #[test]
    fn a_postgresql_switchover_is_taken_up_again_until_promoted_and_its_new_pod_is_the_restart() {
        let mut s = OperationStep::new(StepAction::Switchover, "pg-0");
        s.to = Some("pg-1".into());
        let mut o = op(vec![s, restart("pg-0")]);
        let mut members = BTreeMap::from([("pg-0".to_string(), view("a", "old", true, Role::Primary)), ("pg-1".into(), view("b", "new", true, Role::Replica))]);
        let switchover = vec![Effect::Switchover { from: "pg-0".into(), to: "pg-1".into(), uid: Some("a".into()) }];
        assert_eq!(advance(&mut o, &repeat(&members, 0)), switchover);
        // Interrupted after the old primary's pod went, before the promotion: acted on again.
        members.insert("pg-0".into(), MemberView::default());
        assert_eq!(advance(&mut o, &repeat(&members, 1)), switchover);
        // Promoted; the old primary's new pod is not back yet: nothing to repeat, wait.
        members.insert("pg-1".into(), view("b", "new", true, Role::Primary));
        assert_eq!(advance(&mut o, &repeat(&members, 2)), vec![]);
        members.insert("pg-0".into(), view("c", "new", true, Role::Replica));
        assert_eq!(advance(&mut o, &repeat(&members, 3)), vec![Effect::FollowPrimary { primary: "pg-1".into(), old: "pg-0".into() }]);
        // Its restart is the pod the switchover made: no second delete.
        assert_eq!(advance(&mut o, &repeat(&members, 4)), vec![]);
        assert_eq!(o.steps[1].replaced.as_deref(), Some("a"));
        advance(&mut o, &repeat(&members, 5));
        assert_eq!(o.phase, OperationPhase::Succeeded, "{o:#?}");
    }

    #[test]
    fn a_failover_fences_then_promotes_each_acted_on_until_done() {
        let mut fence = OperationStep::new(StepAction::Fence, "pg-0");
        fence.to = Some("pg-2".into());
        let mut o = op(vec![fence, OperationStep::new(StepAction::Promote, "pg-2")]);
        o.kind = OperationKind::Failover;
        let mut members = BTreeMap::from([
            ("pg-0".to_string(), MemberView { pod_uid: Some("a".into()), ..Default::default() }),
            ("pg-1".into(), view("b", "new", true, Role::Replica)),
            ("pg-2".into(), view("c", "new", true, Role::Replica)),
        ]);
        let fence = vec![Effect::Fence { lost: "pg-0".into(), heir: "pg-2".into(), uid: Some("a".into()) }];
        assert_eq!(advance(&mut o, &obs(&members, 0)), fence);
        // Not recorded yet (the write was lost): fenced again.
        assert_eq!(advance(&mut o, &obs(&members, 1)), fence);
        let fenced = Observed { primary: Some("pg-2"), ..obs(&members, 2) };
        let promote = vec![Effect::Promote { heir: "pg-2".into(), lost: "pg-0".into() }];
        assert_eq!(advance(&mut o, &fenced), promote);
        assert_eq!(advance(&mut o, &Observed { primary: Some("pg-2"), ..obs(&members, 3) }), promote, "not promoted yet: again");
        members.insert("pg-2".into(), view("c", "new", true, Role::Primary));
        assert_eq!(advance(&mut o, &Observed { primary: Some("pg-2"), ..obs(&members, 4) }), vec![]);
        assert_eq!(o.phase, OperationPhase::Succeeded, "the lost member's return is not waited for: {o:#?}");
    }

    #[test]
    fn a_step_failed_while_acting_fails_the_operation_there() {
        let mut s = OperationStep::new(StepAction::Switchover, "rd-0");
        s.to = Some("rd-1".into());
        let mut o = op(vec![restart("rd-1"), s, restart("rd-0")]);
        o.steps[0].phase = OperationPhase::Succeeded;
        o.steps[1].phase = OperationPhase::Running;
        fail_current_step(&mut o, "FAILOVER TO rd-1 on rd-0: ERR no such replica", "t");
        assert_eq!(o.phase, OperationPhase::Failed);
        assert_eq!(o.steps.iter().map(|s| s.phase).collect::<Vec<_>>(), [OperationPhase::Succeeded, OperationPhase::Failed, OperationPhase::Pending]);
        assert!(o.message.as_deref().unwrap().contains("step 2/3") && o.message.as_deref().unwrap().contains("ERR no such replica"), "{:?}", o.message);
    }

    #[test]
    fn a_resize_step_waits_for_the_members_volume_and_touches_no_pod() {
        let mut o = op(vec![OperationStep::new(StepAction::Resize, "pg-0"), OperationStep::new(StepAction::Resize, "pg-1")]);
        let mut members = BTreeMap::from([("pg-0".to_string(), view("a", "new", true, Role::Primary)), ("pg-1".into(), view("b", "new", true, Role::Replica))]);
        assert_eq!(advance(&mut o, &obs(&members, 0)), vec![], "no pod deleted");
        assert_eq!(advance(&mut o, &obs(&members, 1)), vec![]);
        assert_eq!(o.steps[0].message.as_deref(), Some("its volumes were not looked at"));
        members.get_mut("pg-0").unwrap().volume = Some(Err("data: 10Gi of 20Gi".into()));
        advance(&mut o, &obs(&members, 2));
        assert_eq!((o.steps[0].phase, o.steps[0].message.as_deref()), (OperationPhase::Running, Some("data: 10Gi of 20Gi")));
        members.get_mut("pg-0").unwrap().volume = Some(Ok(()));
        members.get_mut("pg-1").unwrap().volume = Some(Ok(()));
        assert_eq!(advance(&mut o, &obs(&members, 3)), vec![]);
        assert_eq!(advance(&mut o, &obs(&members, 4)), vec![]);
        assert_eq!(o.phase, OperationPhase::Succeeded, "{o:#?}");
        let mut late = op(vec![OperationStep::new(StepAction::Resize, "pg-0")]);
        members.get_mut("pg-0").unwrap().volume = Some(Err("data: 10Gi of 20Gi".into()));
        advance(&mut late, &obs(&members, 0));
        advance(&mut late, &obs(&members, 1_767_225_600 + 61));
        assert_eq!(late.phase, OperationPhase::Failed, "a resize that never ends fails at the step timeout");
        assert!(late.message.as_deref().unwrap().contains("10Gi of 20Gi"), "{late:#?}");
    }

    #[test]
    fn an_add_waits_for_the_engine_then_its_pod_and_a_remove_for_its_pod_then_its_volumes() {
        let mut o = op(vec![OperationStep::new(StepAction::Add, "pg-2"), OperationStep::new(StepAction::Remove, "pg-2")]);
        let mut members = BTreeMap::from([("pg-0".to_string(), view("a", "new", true, Role::Primary))]);
        fn prepared(m: &BTreeMap<String, MemberView>) -> Observed<'_> {
            Observed { prepare_adds: true, ..obs(m, 0) }
        }
        // PostgreSQL: the slot first, asked again until done.
        assert_eq!(advance(&mut o, &prepared(&members)), vec![Effect::Prepare { member: "pg-2".into() }]);
        assert_eq!(advance(&mut o, &prepared(&members)), vec![Effect::Prepare { member: "pg-2".into() }]);
        o.steps[0].prepared = true;
        assert_eq!(advance(&mut o, &prepared(&members)), vec![]);
        assert_eq!(o.steps[0].message.as_deref(), Some("no pod yet"));
        members.insert("pg-2".into(), view("c", "new", true, Role::Replica));
        assert_eq!(advance(&mut o, &prepared(&members)), vec![], "the add ends; the remove starts with no effect");
        assert_eq!((o.steps[0].phase, o.steps[1].phase), (OperationPhase::Succeeded, OperationPhase::Running));
        assert_eq!(advance(&mut o, &prepared(&members)), vec![], "its pod is still there");
        members.remove("pg-2");
        assert_eq!(advance(&mut o, &prepared(&members)), vec![Effect::Forget { member: "pg-2".into() }]);
        o.steps[1].prepared = true;
        advance(&mut o, &prepared(&members));
        assert_eq!(o.phase, OperationPhase::Succeeded, "{o:#?}");
        // Redis: nothing to prepare, the add is prepared as it starts.
        let mut r = op(vec![OperationStep::new(StepAction::Add, "rd-1")]);
        assert_eq!(advance(&mut r, &obs(&members, 0)), vec![]);
        assert!(r.steps[0].prepared);
    }

    #[test]
    fn a_cluster_member_joins_before_its_add_ends_and_slots_move_in_their_own_step() {
        let mut o = op(vec![OperationStep::new(StepAction::Add, "rd-3"), OperationStep::new(StepAction::Fill, "rd-3")]);
        let mut members = BTreeMap::from([("rd-0".to_string(), view("a", "new", true, Role::Primary))]);
        fn cluster(m: &BTreeMap<String, MemberView>) -> Observed<'_> {
            Observed { joins: true, ..obs(m, 0) }
        }
        assert_eq!(advance(&mut o, &cluster(&members)), vec![], "nothing to prepare: the shard's pods are created");
        members.insert("rd-3".into(), view("c", "new", true, Role::Primary));
        // Ready with a role, but not met yet: the cluster meets it, again until it has.
        assert_eq!(advance(&mut o, &cluster(&members)), vec![Effect::Join { member: "rd-3".into() }]);
        members.get_mut("rd-3").unwrap().cluster = Some(Err("rd-0 has not met rd-3 yet".into()));
        assert_eq!(advance(&mut o, &cluster(&members)), vec![Effect::Join { member: "rd-3".into() }]);
        assert_eq!(o.steps[0].message.as_deref(), Some("rd-0 has not met rd-3 yet"));
        // Joined: the fill starts its Job, keyed by operation and step, and is asked again
        // (a failed Job fails it) until the slots have moved.
        members.get_mut("rd-3").unwrap().cluster = Some(Ok(()));
        let fill = Effect::MoveSlots { member: "rd-3".into(), drain: false, key: "op-1/1".into() };
        assert_eq!(advance(&mut o, &cluster(&members)), vec![fill.clone()]);
        members.get_mut("rd-3").unwrap().cluster = Some(Err("moving the slots (Job rd-slots)".into()));
        assert_eq!(advance(&mut o, &cluster(&members)), vec![fill]);
        assert_eq!(o.phase, OperationPhase::Running);
        members.get_mut("rd-3").unwrap().cluster = Some(Ok(()));
        assert_eq!(advance(&mut o, &cluster(&members)), vec![]);
        assert_eq!(o.phase, OperationPhase::Succeeded, "{o:#?}");
    }
}
