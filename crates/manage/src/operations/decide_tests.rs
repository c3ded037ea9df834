//! The tests of `decide`: the step state machine, pure.

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
        leaves: false,
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
    // Promoted, but the pass stopped before the slots, the label and the re-pointing: again.
    members.insert("pg-1".into(), view("b", "new", true, Role::Primary));
    assert_eq!(advance(&mut o, &repeat(&members, 2)), switchover, "promoted, not followed: again");
    o.steps[0].prepared = true;
    // Followed; the old primary's new pod is not back yet: nothing to repeat, wait.
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
    // Promoted in its engine, but the pass that promoted it stopped before the label and the
    // re-pointing (a manage service restarted): acted on again.
    assert_eq!(advance(&mut o, &Observed { primary: Some("pg-2"), ..obs(&members, 4) }), promote, "promoted, not followed: again");
    assert!(o.steps[1].message.as_deref().is_some_and(|m| m.contains("re-pointing")), "{o:#?}");
    o.steps[1].prepared = true;
    assert_eq!(advance(&mut o, &Observed { primary: Some("pg-2"), ..obs(&members, 5) }), vec![]);
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

fn zk(m: &BTreeMap<String, MemberView>) -> Observed<'_> {
    Observed { joins: true, leaves: true, ..obs(m, 0) }
}

/// Issue #16: a ZooKeeper member joins the ensemble before its `add` is done, and leaves it
/// before its pod goes.
#[test]
fn a_zookeeper_member_joins_the_ensemble_and_leaves_it_before_its_pod_goes() {
    let mut o = op(vec![OperationStep::new(StepAction::Add, "zk-3")]);
    o.kind = OperationKind::Scale;
    let mut members = BTreeMap::from([("zk-0".to_string(), view("a", "new", true, Role::Leader))]);
    assert_eq!(advance(&mut o, &zk(&members)), vec![]);
    assert!(o.steps[0].prepared, "nothing to prepare: the pod is created");
    // Ready as a non-voting learner: the ensemble adds it.
    members.insert("zk-3".into(), view("b", "new", true, Role::Follower));
    assert_eq!(advance(&mut o, &zk(&members)), vec![Effect::Join { member: "zk-3".into() }]);
    members.get_mut("zk-3").unwrap().cluster = Some(Err("not in the ensemble yet".into()));
    assert_eq!(advance(&mut o, &zk(&members)), vec![Effect::Join { member: "zk-3".into() }]);
    assert_eq!(o.steps[0].message.as_deref(), Some("not in the ensemble yet"));
    members.get_mut("zk-3").unwrap().cluster = Some(Ok(()));
    assert_eq!(advance(&mut o, &zk(&members)), vec![]);
    assert_eq!(o.phase, OperationPhase::Succeeded);

    let mut o = op(vec![OperationStep::new(StepAction::Remove, "zk-3")]);
    o.kind = OperationKind::Scale;
    assert_eq!(advance(&mut o, &zk(&members)), vec![Effect::Leave { member: "zk-3".into() }]);
    assert_eq!(advance(&mut o, &zk(&members)), vec![Effect::Leave { member: "zk-3".into() }], "again until it has left");
    assert_eq!(o.steps[0].message.as_deref(), Some("still in the ensemble"));
    o.steps[0].left = true;
    assert_eq!(advance(&mut o, &zk(&members)), vec![], "its pod is still there");
    members.remove("zk-3");
    assert_eq!(advance(&mut o, &zk(&members)), vec![Effect::Forget { member: "zk-3".into() }]);
    o.steps[0].prepared = true;
    assert_eq!(advance(&mut o, &zk(&members)), vec![]);
    assert_eq!(o.phase, OperationPhase::Succeeded);
}

/// Issue #15 on Kubernetes: a backup's one step starts its Job (keyed by operation and step),
/// asks again while it runs (a failed Job fails the step), and ends when the Job is complete.
#[test]
fn a_backup_step_runs_its_job_until_it_completes() {
    let mut o = op(vec![OperationStep::new(StepAction::Backup, "pg-1")]);
    o.kind = OperationKind::Backup;
    let mut members = BTreeMap::from([("pg-0".to_string(), view("a", "new", true, Role::Primary)), ("pg-1".into(), view("b", "new", true, Role::Replica))]);
    let take = Effect::TakeBackup { member: "pg-1".into(), key: "op-1/0".into() };
    assert_eq!(advance(&mut o, &obs(&members, 0)), vec![take.clone()]);
    members.get_mut("pg-1").unwrap().backup = Some(Err("taking the base backup (Job pg-backup)".into()));
    assert_eq!(advance(&mut o, &obs(&members, 1)), vec![take]);
    assert_eq!(o.steps[0].message.as_deref(), Some("taking the base backup (Job pg-backup)"));
    members.get_mut("pg-1").unwrap().backup = Some(Ok(()));
    assert_eq!(advance(&mut o, &obs(&members, 2)), vec![]);
    assert_eq!(o.phase, OperationPhase::Succeeded, "{o:#?}");
}
